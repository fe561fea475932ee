//! `RtpPacer`: sends audio up on the RTP clock, not in the client's bursts.
//!
//! RTMP runs over TCP, and clients write in bursts: ffmpeg sends three or four
//! 20 ms Speex messages at once every 60–70 ms, and any client's packets bunch
//! up after a TCP stall. Sent on as they arrive, such bursts overflow small
//! jitter buffers (hardware phones, and baresip's, whose G.722 decoder then
//! never recovers). The pacer releases each packet when its RTP timestamp
//! (RFC 3550 §5.1) says it is due, measured from the first packet of a run.
//!
//! A packet that arrives after its due time with nothing queued starts a new
//! run at once (the client is behind: it is not made later still), and so
//! does one that arrives only a little early (the run's anchor was late);
//! a queue
//! longer than `max_queue` (a client faster than real time) loses its oldest
//! packets, so delay stays bounded.
//!
//! Each packet keeps the instant its audio arrived, so what pacing adds to
//! the way through sono can be measured.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How late a packet may be before the run is re-anchored on it.
const LATE: Duration = Duration::from_millis(40);
/// A packet this little ahead of its due time, with nothing queued, is not
/// part of a burst: the run's first packet came late (the client's own
/// scheduling, the network), so the run is re-anchored on it and it goes at
/// once. Otherwise every later packet of the run would wait for that
/// lateness, and for the next clock tick.
const EARLY: Duration = Duration::from_millis(5);

pub struct RtpPacer {
    clock_rate: u32,
    max_queue: Duration,
    /// When the packet with this RTP timestamp was (or is) due.
    anchor: Option<(Instant, u32)>,
    /// (RTP timestamp, datagram, when its audio arrived).
    queue: VecDeque<(u32, Vec<u8>, Instant)>,
    dropped: u64,
}

impl RtpPacer {
    pub fn new(clock_rate: u32, max_queue: Duration) -> RtpPacer {
        RtpPacer {
            clock_rate: clock_rate.max(1),
            max_queue,
            anchor: None,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Packets dropped because the queue grew past `max_queue`.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn due(&self, timestamp: u32) -> Option<Instant> {
        let (at, base) = self.anchor?;
        // Timestamps before the anchor (reordered) are due at once.
        let ticks = timestamp.wrapping_sub(base) as i32;
        let ticks = u64::try_from(ticks).unwrap_or(0);
        Some(at + Duration::from_micros(ticks * 1_000_000 / u64::from(self.clock_rate)))
    }

    /// Queues an RTP datagram (12-byte header at least; anything shorter is
    /// sent as it is, at once, by the next [`Self::pop_due`]) whose audio
    /// arrived at `arrived`.
    pub fn push(&mut self, datagram: Vec<u8>, arrived: Instant, now: Instant) {
        let timestamp = match datagram.get(4..8) {
            Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            None => self.anchor.map_or(0, |a| a.1),
        };
        if self.queue.is_empty() {
            let reanchor = self
                .due(timestamp)
                .is_none_or(|due| due + LATE < now || (due > now && due - now <= EARLY));
            if reanchor {
                self.anchor = Some((now, timestamp));
            }
        }
        self.queue.push_back((timestamp, datagram, arrived));
        while self.queued_time() > self.max_queue {
            self.queue.pop_front();
            self.dropped += 1;
            // The next packet goes now, and the run restarts from it.
            if let Some(&(ts, _, _)) = self.queue.front() {
                self.anchor = Some((now, ts));
            }
        }
    }

    fn queued_time(&self) -> Duration {
        match (self.queue.front(), self.queue.back()) {
            (Some(&(first, _, _)), Some(&(last, _, _))) => {
                let ticks = u64::from(last.wrapping_sub(first).min(i32::MAX as u32));
                Duration::from_micros(ticks * 1_000_000 / u64::from(self.clock_rate))
            }
            _ => Duration::ZERO,
        }
    }

    /// Moves every packet due by `now` (and up to `slack` ahead, so a clock
    /// ticking at the packet rate does not lag a tick behind) to `out`, each
    /// with the instant its audio arrived.
    pub fn pop_due(&mut self, now: Instant, slack: Duration, out: &mut Vec<(Vec<u8>, Instant)>) {
        while let Some(&(timestamp, _, _)) = self.queue.front() {
            match self.due(timestamp) {
                Some(due) if due > now + slack => break,
                _ => {
                    if let Some((_, datagram, arrived)) = self.queue.pop_front() {
                        out.push((datagram, arrived));
                    }
                }
            }
        }
    }

    /// When the next queued packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().and_then(|&(ts, _, _)| self.due(ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(timestamp: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0];
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p
    }

    fn ts(p: &[u8]) -> u32 {
        u32::from_be_bytes([p[4], p[5], p[6], p[7]])
    }

    #[test]
    fn a_burst_goes_out_one_packet_per_20_ms() {
        let t0 = Instant::now();
        let mut pacer = RtpPacer::new(8000, Duration::from_millis(300));
        for i in 0..4 {
            pacer.push(packet(1000 + 160 * i), t0, t0);
        }
        let mut sent_at = Vec::new();
        for ms in (0..100).step_by(5) {
            let mut out = Vec::new();
            pacer.pop_due(t0 + Duration::from_millis(ms), Duration::ZERO, &mut out);
            sent_at.extend(out.iter().map(|p| (ms, ts(&p.0))));
        }
        assert_eq!(sent_at, [(0, 1000), (20, 1160), (40, 1320), (60, 1480)]);
    }

    #[test]
    fn a_late_packet_restarts_the_run_instead_of_bursting() {
        let t0 = Instant::now();
        let mut pacer = RtpPacer::new(16_000, Duration::from_millis(300));
        let mut out = Vec::new();
        pacer.push(packet(0), t0, t0);
        pacer.pop_due(t0, Duration::ZERO, &mut out);
        // The client stalls for half a second, then resumes in order.
        let later = t0 + Duration::from_millis(520);
        pacer.push(packet(320), later, later);
        pacer.push(packet(640), later, later);
        pacer.pop_due(later, Duration::ZERO, &mut out);
        assert_eq!(out.iter().map(|p| ts(&p.0)).collect::<Vec<_>>(), [0, 320]);
        assert_eq!(pacer.next_due(), Some(later + Duration::from_millis(20)));
    }

    #[test]
    fn a_late_first_packet_does_not_delay_the_rest_of_the_run() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut pacer = RtpPacer::new(16_000, Duration::from_millis(300));
        let mut out = Vec::new();
        // The first packet comes 4 ms late, then the client is on time.
        pacer.push(packet(0), ms(4), ms(4));
        pacer.pop_due(ms(4), Duration::ZERO, &mut out);
        for i in 1..5u64 {
            let at = ms(20 * i);
            pacer.push(packet(320 * i as u32), at, at);
            pacer.pop_due(at, Duration::ZERO, &mut out);
            assert_eq!(out.len() as u64, i + 1, "packet {i} was held back");
        }
        // Arrival instants travel with the packets.
        assert_eq!(out[2].1, ms(40));
    }

    #[test]
    fn the_queue_stays_within_its_bound() {
        let t0 = Instant::now();
        let mut pacer = RtpPacer::new(8000, Duration::from_millis(100));
        for i in 0..20 {
            pacer.push(packet(160 * i), t0, t0);
        }
        // 100 ms of timestamps span 6 packets (0 to 100 ms inclusive).
        assert_eq!(pacer.queued(), 6);
        assert_eq!(pacer.dropped(), 14);
        let mut out = Vec::new();
        pacer.pop_due(t0, Duration::ZERO, &mut out);
        assert_eq!(out.len(), 1, "the oldest kept packet goes at once");
        assert_eq!(ts(&out[0].0), 160 * 14);
    }
}
