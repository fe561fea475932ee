//! The reorder buffer of a call's video down: RTP packets come out in
//! sequence order (RFC 3550 §A.1's extended sequence numbers); a gap that
//! stays open longer than the wait (or while the buffer fills) is declared
//! lost, so the access unit it belongs to can be dropped and a keyframe
//! asked for. Unlike audio's jitter buffer there is no playout clock:
//! video goes on as soon as it is in order, the client's own buffer paces
//! it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a gap may stay open before its packets count as lost.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(40);
/// Packets held at most: about a second of 1.5 Mbit/s video.
pub const MAX_PACKETS: usize = 200;

/// One packet as it left the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// What the buffer releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    Packet(Ordered),
    /// This many packets will never come.
    Lost(u64),
}

#[derive(Debug)]
pub struct VideoJitterBuffer {
    held: BTreeMap<u64, (Instant, Ordered)>,
    /// The extended sequence number released next.
    next: Option<u64>,
    highest: Option<u64>,
    wait: Duration,
    late: u64,
}

impl Default for VideoJitterBuffer {
    fn default() -> Self {
        VideoJitterBuffer::new(DEFAULT_WAIT)
    }
}

impl VideoJitterBuffer {
    pub fn new(wait: Duration) -> VideoJitterBuffer {
        VideoJitterBuffer {
            held: BTreeMap::new(),
            next: None,
            highest: None,
            wait,
            late: 0,
        }
    }

    /// Packets that came after their turn had passed, or twice.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The extended sequence number nearest the highest seen.
    fn extend(&self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(sequence) + (1 << 16);
        };
        let base = highest & !0xFFFF;
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b | u64::from(sequence))
            .min_by_key(|c| c.abs_diff(highest))
            .unwrap_or(base | u64::from(sequence))
    }

    /// Takes a packet in; false if it came too late or twice.
    pub fn push(&mut self, sequence: u16, packet: Ordered, now: Instant) -> bool {
        let seq = self.extend(sequence);
        if self.next.is_some_and(|n| seq < n) || self.held.contains_key(&seq) {
            self.late += 1;
            return false;
        }
        // A jump far ahead (the sender restarted): start again there.
        if self.highest.is_some_and(|h| seq > h + 3000) {
            self.held.clear();
            self.next = None;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.next.get_or_insert(seq);
        self.held.insert(seq, (now, packet));
        true
    }

    /// The next packet in order, or a loss once the gap has waited long
    /// enough; `None` while waiting.
    pub fn pop(&mut self, now: Instant) -> Option<Released> {
        let next = self.next?;
        if let Some((_, p)) = self.held.remove(&next) {
            self.next = Some(next + 1);
            return Some(Released::Packet(p));
        }
        let (&first, (arrived, _)) = self.held.iter().next()?;
        if now.duration_since(*arrived) >= self.wait || self.held.len() > MAX_PACKETS {
            self.next = Some(first);
            return Some(Released::Lost(first - next));
        }
        None
    }

    /// When [`pop`](Self::pop) may next declare a loss.
    pub fn deadline(&self) -> Option<Instant> {
        let next = self.next?;
        if self.held.contains_key(&next) {
            return None;
        }
        self.held.values().next().map(|(t, _)| *t + self.wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ts: u32) -> Ordered {
        Ordered {
            timestamp: ts,
            marker: false,
            payload: vec![ts as u8],
        }
    }

    fn drain(b: &mut VideoJitterBuffer, now: Instant) -> Vec<Released> {
        std::iter::from_fn(|| b.pop(now)).collect()
    }

    #[test]
    fn reorders_across_the_wrap_and_declares_a_gap_lost_after_the_wait() {
        let mut b = VideoJitterBuffer::new(Duration::from_millis(40));
        let t = Instant::now();
        assert!(b.push(65_534, p(1), t));
        assert!(b.push(0, p(3), t));
        assert!(b.push(65_535, p(2), t));
        let out = drain(&mut b, t);
        assert_eq!(
            out,
            vec![
                Released::Packet(p(1)),
                Released::Packet(p(2)),
                Released::Packet(p(3))
            ]
        );
        // 1 and 2 missing: nothing until the wait is over, then a loss of 2.
        assert!(b.push(3, p(6), t));
        assert_eq!(drain(&mut b, t), vec![]);
        assert_eq!(b.deadline(), Some(t + Duration::from_millis(40)));
        let later = t + Duration::from_millis(40);
        assert_eq!(
            drain(&mut b, later),
            vec![Released::Lost(2), Released::Packet(p(6))]
        );
        // What comes after its turn is late.
        assert!(!b.push(1, p(4), later));
        assert_eq!(b.late(), 1);
    }

    #[test]
    fn a_full_buffer_gives_up_on_the_gap_at_once() {
        let mut b = VideoJitterBuffer::default();
        let t = Instant::now();
        b.push(0, p(0), t);
        assert_eq!(b.pop(t), Some(Released::Packet(p(0))));
        for s in 2..(MAX_PACKETS as u16 + 3) {
            b.push(s, p(u32::from(s)), t);
        }
        assert_eq!(b.pop(t), Some(Released::Lost(1)));
    }
}
