//! What a receiver knows of one incoming RTP stream (RFC 3550 Appendix A.1,
//! A.3 and A.8): the extended highest sequence number, packets expected and
//! lost, the interarrival jitter, and when the last packet came, for the
//! receiver report and for ending a call whose peer went silent.

use std::time::{Duration, Instant};

/// A source is valid once this many packets came in sequence (A.1's
/// MIN_SEQUENTIAL); a jump larger than MAX_DROPOUT restarts the count.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Jitter in timestamp units, scaled by 16 (A.8).
    jitter_q4: u32,
    last_transit: Option<i64>,
    first_arrival: Option<Instant>,
    last_arrival: Option<Instant>,
}

/// One report block's worth of figures (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionReport {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter: u32,
}

impl ReceiveStats {
    pub fn new(clock_rate: u32) -> ReceiveStats {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            base_seq: 0,
            max_seq: 0,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            first_arrival: None,
            last_arrival: None,
        }
    }

    /// Counts one packet. A new SSRC (the peer restarted its stream, or a
    /// re-INVITE moved it) starts the figures again.
    pub fn packet(&mut self, now: Instant, ssrc: u32, sequence: u16, timestamp: u32) {
        if self.ssrc != Some(ssrc) {
            *self = ReceiveStats::new(self.clock_rate);
            self.ssrc = Some(ssrc);
            self.base_seq = u32::from(sequence);
            self.max_seq = sequence.wrapping_sub(1);
            self.first_arrival = Some(now);
        }
        let delta = sequence.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            if sequence < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = sequence;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A large jump: the peer restarted its numbering. Resynchronise.
            self.base_seq = u32::from(sequence);
            self.max_seq = sequence;
            self.cycles = 0;
            self.received = 0;
            self.expected_prior = 0;
            self.received_prior = 0;
        }
        // else: a duplicate or a packet from shortly before; counted only.
        self.received = self.received.wrapping_add(1);

        // Jitter (A.8): transit in timestamp units from a local clock.
        let start = self.first_arrival.unwrap_or(now);
        let arrival = (now.duration_since(start).as_secs_f64() * f64::from(self.clock_rate)) as i64;
        let transit = arrival - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last)
                .unsigned_abs()
                .min(u64::from(u32::MAX >> 4)) as u32;
            let j = self.jitter_q4;
            self.jitter_q4 = j + d - ((j + 8) >> 4);
        }
        self.last_transit = Some(transit);
        self.last_arrival = Some(now);
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    pub fn extended_highest_sequence(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    pub fn packets_received(&self) -> u32 {
        self.received
    }

    /// Packets expected minus received, since the start (may be negative
    /// with duplicates, as the RFC allows).
    pub fn cumulative_lost(&self) -> i64 {
        let expected = i64::from(self.extended_highest_sequence()) - i64::from(self.base_seq) + 1;
        expected - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.jitter()) / f64::from(self.clock_rate))
    }

    /// Whether no packet came for `timeout` (counting from `since` when none
    /// ever came): the peer stopped sending.
    pub fn silent_for(&self, now: Instant, since: Instant, timeout: Duration) -> bool {
        now.duration_since(self.last_arrival.unwrap_or(since)) >= timeout
    }

    /// A report block, and the interval's counters start again (A.3).
    pub fn report(&mut self) -> Option<ReceptionReport> {
        let ssrc = self.ssrc?;
        let expected = self
            .extended_highest_sequence()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        Some(ReceptionReport {
            ssrc,
            fraction_lost,
            // 24-bit signed on the wire.
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_sequence: self.extended_highest_sequence(),
            jitter: self.jitter(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_wraparound_and_jitter_are_counted() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        // 65530..65535 and 0..=13, with 2 and 3 lost: 20 expected, 18 received.
        for (i, seq) in (65_530u16..=65_535).chain(0..=13).enumerate() {
            let i = i as u32;
            if seq == 2 || seq == 3 {
                continue;
            }
            s.packet(
                t0 + Duration::from_millis(20 * u64::from(i)),
                9,
                seq,
                i * 160,
            );
        }
        assert_eq!(s.extended_highest_sequence(), (1 << 16) + 13);
        assert_eq!(s.cumulative_lost(), 2);
        let r = s.report().unwrap();
        assert_eq!(
            (r.ssrc, r.cumulative_lost, r.fraction_lost),
            (9, 2, (2 * 256 / 20) as u8)
        );
        assert_eq!(r.jitter, 0, "perfectly paced packets");
        assert_eq!(s.report().unwrap().fraction_lost, 0, "a new interval");
    }

    #[test]
    fn jitter_grows_with_irregular_arrival_and_silence_is_seen() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        for i in 0..200u32 {
            let wobble = if i % 2 == 0 { 0 } else { 30 };
            s.packet(
                t0 + Duration::from_millis(u64::from(20 * i + wobble)),
                1,
                i as u16,
                i * 160,
            );
        }
        // Alternating 30 ms errors: |D| = 240 ticks each time, J → 240.
        assert!((200..=240).contains(&s.jitter()), "jitter {}", s.jitter());
        let last = t0 + Duration::from_millis(20 * 199 + 30);
        assert!(!s.silent_for(last + Duration::from_secs(1), t0, Duration::from_secs(2)));
        assert!(s.silent_for(last + Duration::from_secs(2), t0, Duration::from_secs(2)));
    }
}
