//! An adaptive jitter buffer for one incoming RTP stream. Packets come in
//! when the network delivers them — late, early, out of order, twice, or
//! never; the playout clock takes them out every frame, in sequence order,
//! after a delay that follows the network: the target is the spread of
//! recent transit times (their 95th percentile above their minimum) plus a
//! frame, between the configured bounds. A packet still missing when its
//! turn comes is reported lost (the caller conceals it); one arriving after
//! its turn is dropped as late. A long underrun (the peer paused, or the
//! network stalled) makes the buffer refill before playing again.
//!
//! Ordering is by sequence number, not timestamp, so that silence
//! suppression (timestamps jump, sequence numbers do not; RFC 3551 §4.1)
//! plays out without a gap.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets held at most: two seconds of 20 ms audio. Beyond that the
/// oldest go, so a flood cannot grow memory.
const CAPACITY: usize = 100;
/// Transit times kept to size the target delay (about 2 s of packets).
const WINDOW: usize = 100;
/// The target until enough transit times are known to size it (a quarter
/// of the window): enough for ordinary Internet jitter, so the first
/// second of a call does not stutter while the buffer learns.
const INITIAL_TARGET: Duration = Duration::from_millis(60);
const LEARNING: usize = WINDOW / 4;
/// Underruns in a row after which the buffer refills (100 ms).
const REFILL_AFTER: u32 = 5;
/// Turns between two packets dropped to bring the delay down (1 s at
/// 20 ms): 2 % time compression at most.
const DISCARD_EVERY: u32 = 50;

/// What the playout clock gets for one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next packet in sequence.
    Packet {
        payload_type: u8,
        timestamp: u32,
        payload: Vec<u8>,
    },
    /// The next packet is missing and later ones are here: it is lost;
    /// conceal one packet's worth.
    Lost,
    /// The next packet has not arrived and nothing after it either (late,
    /// or the peer paused): conceal if something must be played, but the
    /// packet will still be played if it comes.
    Waiting,
    /// Nothing to play (not started, or refilling): play silence.
    Idle,
}

/// Counters for the call's statistics and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub played: u64,
    pub lost: u64,
    /// Turns when the buffer had run dry.
    pub underruns: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Dropped to bring the delay down, or because the buffer was full.
    pub discarded: u64,
}

struct Entry {
    payload_type: u8,
    timestamp: u32,
    payload: Vec<u8>,
}

pub struct JitterBuffer {
    clock_rate: f64,
    frame: Duration,
    min_delay: Duration,
    max_delay: Duration,
    packets: BTreeMap<u64, Entry>,
    /// Extended sequence number of the next packet to play.
    next: Option<u64>,
    highest: Option<u64>,
    playing: bool,
    underruns: u32,
    /// When the buffer began filling (for the start of playout).
    filling_since: Option<Instant>,
    /// The origin of the arrival clock for transit times.
    epoch: Option<Instant>,
    /// Recent transit times (arrival − timestamp), in seconds.
    transits: Vec<f64>,
    /// Room to find the transits' 95th percentile in.
    scratch: Vec<f64>,
    transit_at: usize,
    target: Duration,
    turns_since_discard: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// `frame`: how often the playout clock takes a packet (the ptime).
    pub fn new(
        clock_rate: u32,
        frame: Duration,
        min_delay: Duration,
        max_delay: Duration,
    ) -> JitterBuffer {
        let min_delay = min_delay.min(max_delay);
        JitterBuffer {
            clock_rate: f64::from(clock_rate.max(1)),
            frame,
            min_delay,
            max_delay,
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            playing: false,
            underruns: 0,
            filling_since: None,
            epoch: None,
            transits: Vec::with_capacity(WINDOW),
            scratch: Vec::with_capacity(WINDOW),
            transit_at: 0,
            target: INITIAL_TARGET.clamp(min_delay, max_delay),
            turns_since_discard: 0,
            stats: JitterStats::default(),
        }
    }

    /// Forgets the stream (its packets and numbering) for a new one from
    /// another source; the delay learnt and the counters stay.
    pub fn restart(&mut self) {
        self.packets.clear();
        self.next = None;
        self.highest = None;
        self.playing = false;
        self.underruns = 0;
        self.filling_since = None;
        self.epoch = None;
        self.transits.clear();
        self.transit_at = 0;
    }

    /// The delay the buffer currently aims for.
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// A packet arrived at `now`.
    pub fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        payload_type: u8,
        payload: &[u8],
    ) {
        let ext = self.extend(sequence);
        self.learn_transit(now, timestamp);
        if !self.playing && self.filling_since.is_none() {
            self.filling_since = Some(now);
        }
        if self.playing && self.next.is_some_and(|next| ext < next) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.packets.insert(
            ext,
            Entry {
                payload_type,
                timestamp,
                payload: payload.to_vec(),
            },
        );
        if self.packets.len() > CAPACITY {
            self.packets.pop_first();
            self.stats.discarded += 1;
            self.next = self.packets.keys().next().copied();
        }
    }

    /// The playout clock's turn at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        if !self.playing {
            let Some((&first, _)) = self.packets.first_key_value() else {
                return Playout::Idle;
            };
            // Start once the buffer holds the target delay's worth.
            let held = self.span_from(first);
            let waited = self
                .filling_since
                .map_or(Duration::ZERO, |t| now.duration_since(t));
            if held + self.frame < self.target && waited < self.target {
                return Playout::Idle;
            }
            self.playing = true;
            self.next = Some(first);
        }
        let Some(next) = self.next else {
            return Playout::Idle;
        };
        // Too much buffered for the current target (a stall, or jitter
        // that has calmed down): drop one packet to shrink the delay, at
        // most one per DISCARD_EVERY turns, so the delay comes down
        // gradually instead of audio being chopped.
        self.turns_since_discard = self.turns_since_discard.saturating_add(1);
        if self.turns_since_discard >= DISCARD_EVERY && self.packets.len() > 2 {
            if let Some((&first, _)) = self.packets.first_key_value() {
                if self.span_from(first) > self.target + self.frame * 3 {
                    self.packets.pop_first();
                    self.stats.discarded += 1;
                    self.next = Some(first + 1);
                    self.turns_since_discard = 0;
                }
            }
        }
        let next = self.next.unwrap_or(next);
        if let Some(entry) = self.packets.remove(&next) {
            self.next = Some(next + 1);
            self.underruns = 0;
            self.stats.played += 1;
            return Playout::Packet {
                payload_type: entry.payload_type,
                timestamp: entry.timestamp,
                payload: entry.payload,
            };
        }
        if self.packets.is_empty() {
            // Nothing newer is here either: the packet may be late, or the
            // peer paused (silence suppression). Keep waiting for this
            // sequence number while concealing.
            self.underruns += 1;
            if self.underruns >= REFILL_AFTER {
                // A long pause: buffer again before playing, rather than
                // counting every silent turn as a loss.
                self.playing = false;
                self.next = None;
                self.underruns = 0;
                self.filling_since = None;
                return Playout::Idle;
            }
            self.stats.underruns += 1;
            return Playout::Waiting;
        }
        self.next = Some(next + 1);
        self.stats.lost += 1;
        Playout::Lost
    }

    /// Time covered by the packets from `first` to the newest, from their
    /// timestamps.
    fn span_from(&self, first: u64) -> Duration {
        match (self.packets.get(&first), self.packets.last_key_value()) {
            (Some(a), Some((_, b))) => {
                let ticks = b.timestamp.wrapping_sub(a.timestamp);
                if ticks > u32::MAX / 2 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(f64::from(ticks) / self.clock_rate) + self.frame
                }
            }
            _ => Duration::ZERO,
        }
    }

    /// Extends a 16-bit sequence number to 64 bits, nearest to the highest
    /// seen (RFC 3550 A.1's idea, without its probation).
    fn extend(&mut self, sequence: u16) -> u64 {
        let ext = match self.highest {
            None => (1u64 << 32) + u64::from(sequence),
            Some(high) => {
                let delta = sequence.wrapping_sub(high as u16) as i16;
                (high as i64 + i64::from(delta)) as u64
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    fn learn_transit(&mut self, now: Instant, timestamp: u32) {
        let start = *self.epoch.get_or_insert(now);
        let arrival = now.duration_since(start).as_secs_f64();
        let transit = arrival - f64::from(timestamp) / self.clock_rate;
        if self.transits.len() < WINDOW {
            self.transits.push(transit);
        } else {
            self.transits[self.transit_at] = transit;
            self.transit_at = (self.transit_at + 1) % WINDOW;
        }
        if self.transits.len() >= 2 {
            // Once per packet: a selection in a reused buffer, not a sort of a copy.
            let n = self.transits.len();
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.transits);
            let min = self.scratch.iter().copied().fold(f64::INFINITY, f64::min);
            let (_, &mut p95, _) = self
                .scratch
                .select_nth_unstable_by((n * 95 / 100).min(n - 1), f64::total_cmp);
            let spread = Duration::from_secs_f64((p95 - min).clamp(0.0, 10.0));
            let mut target = spread + self.frame;
            if n < LEARNING {
                target = target.max(INITIAL_TARGET);
            }
            self.target = target.clamp(self.min_delay, self.max_delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn buffer() -> JitterBuffer {
        JitterBuffer::new(8000, 20 * MS, 20 * MS, 200 * MS)
    }

    fn played(p: &Playout) -> Option<u32> {
        match p {
            Playout::Packet { timestamp, .. } => Some(*timestamp / 160),
            _ => None,
        }
    }

    #[test]
    fn reordered_packets_play_in_order_and_a_missing_one_is_lost() {
        let t0 = Instant::now();
        let mut jb = buffer();
        // Packet i arrives at 20·i ms, except 3 and 4 swapped; 7 never comes.
        let arrivals = [0u16, 1, 2, 4, 3, 5, 6, 8, 9];
        let mut got = Vec::new();
        for tick in 0..11u32 {
            let now = t0 + 20 * MS * tick;
            if let Some(&seq) = arrivals.get(tick as usize) {
                jb.push(now, seq, u32::from(seq) * 160, 0, &[seq as u8]);
            }
            if tick >= 1 {
                got.push(played(&jb.pop(now)));
            }
        }
        assert_eq!(
            got,
            [
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                None,
                Some(8),
                Some(9)
            ]
        );
        assert_eq!(jb.stats().played, 9);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn a_late_packet_and_a_duplicate_are_dropped() {
        let t0 = Instant::now();
        let mut jb = buffer();
        jb.push(t0, 0, 0, 0, &[]);
        jb.push(t0, 0, 0, 0, &[]);
        jb.push(t0 + 20 * MS, 2, 320, 0, &[]);
        assert!(played(&jb.pop(t0 + 40 * MS)).is_some());
        assert_eq!(jb.pop(t0 + 60 * MS), Playout::Lost);
        jb.push(t0 + 70 * MS, 1, 160, 0, &[]);
        assert_eq!(played(&jb.pop(t0 + 80 * MS)), Some(2));
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().duplicates, 1);
    }

    #[test]
    fn the_target_delay_follows_the_jitter_within_bounds() {
        let t0 = Instant::now();
        let mut jb = buffer();
        for i in 0..100u32 {
            jb.push(t0 + 20 * MS * i, i as u16, i * 160, 0, &[]);
        }
        assert_eq!(jb.target_delay(), 20 * MS, "steady arrival: one frame");
        let mut jb = buffer();
        for i in 0..100u32 {
            // Up to 60 ms of extra delay, every third packet.
            let extra = if i % 3 == 0 { 60 * MS } else { Duration::ZERO };
            jb.push(t0 + 20 * MS * i + extra, i as u16, i * 160, 0, &[]);
        }
        let target = jb.target_delay();
        assert!(target >= 70 * MS && target <= 90 * MS, "target {target:?}");
        let mut jb = JitterBuffer::new(8000, 20 * MS, 20 * MS, 50 * MS);
        for i in 0..100u32 {
            let extra = if i % 3 == 0 { 500 * MS } else { Duration::ZERO };
            jb.push(t0 + 20 * MS * i + extra, i as u16, i * 160, 0, &[]);
        }
        assert_eq!(jb.target_delay(), 50 * MS, "capped at the maximum");
    }

    #[test]
    fn a_pause_refills_and_silence_suppression_plays_on() {
        let t0 = Instant::now();
        let mut jb = buffer();
        jb.push(t0, 10, 1600, 0, &[]);
        assert_eq!(
            jb.pop(t0 + 20 * MS),
            Playout::Idle,
            "filling to the initial target"
        );
        assert_eq!(played(&jb.pop(t0 + 60 * MS)), Some(10), "waited the target");
        for i in 0..REFILL_AFTER - 1 {
            assert_eq!(jb.pop(t0 + 80 * MS + 20 * MS * i), Playout::Waiting);
        }
        assert_eq!(jb.pop(t0 + 240 * MS), Playout::Idle, "refilling");
        // The talker resumes: the next sequence number, a much later timestamp.
        let back = t0 + Duration::from_secs(2);
        jb.push(back, 11, 1600 + 16_000, 0, &[]);
        assert_eq!(played(&jb.pop(back + 60 * MS)), Some(110));
    }

    #[test]
    fn a_flood_is_capped() {
        let t0 = Instant::now();
        let mut jb = buffer();
        for i in 0..1000u32 {
            jb.push(t0, i as u16, i * 160, 0, &[0; 160]);
        }
        assert!(jb.len() <= CAPACITY);
        assert!(jb.stats().discarded >= 900);
    }

    #[test]
    fn after_a_stall_the_delay_comes_down_one_packet_per_second() {
        let t0 = Instant::now();
        let mut jb = buffer();
        let mut played = 0;
        // Steady 20 ms packets; the playout clock stalls for 200 ms at 1 s,
        // then catches up one turn per packet as before.
        for i in 0..300u32 {
            let now = t0 + 20 * MS * i;
            jb.push(now, i as u16, i * 160, 0, &[]);
            if !(50..60).contains(&i) {
                if let Playout::Packet { .. } = jb.pop(now) {
                    played += 1;
                }
            }
        }
        let discarded = jb.stats().discarded;
        assert!((1..=6).contains(&discarded), "{:?}", jb.stats());
        assert!(played >= 280, "{played}");
        assert_eq!(jb.stats().lost, 0);
    }
}
