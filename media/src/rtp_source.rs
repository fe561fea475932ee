//! Which RTP packets belong to the peer's stream, decided before anything
//! reaches the receive statistics or the jitter buffer (RFC 3550 §8.2 and
//! Appendix A.1). The media bridge already hears only the latched address;
//! this guards against what comes from that address but is not the stream:
//! packets of another SSRC (a spoofer who knows the address, a stale stream
//! of a B2BUA) and wild sequence jumps.
//!
//! - The first SSRC heard is the stream.
//! - Another SSRC is held on probation (A.1): it must send `MIN_SEQUENTIAL`
//!   packets in sequence, and it takes over only once the current stream has
//!   been silent for `TAKEOVER_SILENCE` (a real change of source: the peer
//!   restarted its stream, a re-INVITE moved it). While the current stream
//!   keeps talking, the other one is dropped, however well-formed it is.
//! - Within the stream, a jump of more than `MAX_DROPOUT` is taken only when
//!   the next packet confirms it (A.1's `bad_seq`): a single stray packet
//!   cannot move the sequence space.
//!
//! Sans-I/O: SSRC, sequence number and time in, a verdict out.

use std::time::{Duration, Instant};

/// Packets in sequence a new source must send before it is believed (A.1).
pub const MIN_SEQUENTIAL: u16 = 2;
/// Largest forward jump taken without confirmation (A.1).
const MAX_DROPOUT: u16 = 3000;
/// A packet this far behind the highest is misordered, not a jump (A.1).
const MAX_MISORDER: u16 = 100;
/// How long the current stream must have been silent before another SSRC
/// may take over: five 20 ms packets.
pub const TAKEOVER_SILENCE: Duration = Duration::from_millis(100);

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceVerdict {
    /// Part of the stream.
    Accept,
    /// The stream is now this (new) SSRC: what was buffered of the old one
    /// must go, and this packet is accepted.
    Switched,
    /// Another SSRC while the stream is alive, or still on probation.
    OtherSource,
    /// A jump in the stream's sequence numbers not (yet) confirmed.
    BadSequence,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    max_seq: u16,
    /// The sequence number that would confirm a jump (A.1's `bad_seq`).
    bad_seq: Option<u16>,
    last_heard: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: u32,
    next_seq: u16,
    in_sequence: u16,
}

/// Counts of what was dropped, for the call's summary and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub other_source: u64,
    pub bad_sequence: u64,
    pub switches: u64,
}

#[derive(Debug, Default)]
pub struct SourceFilter {
    stream: Option<Stream>,
    candidate: Option<Candidate>,
    stats: SourceStats,
}

impl SourceFilter {
    pub fn new() -> SourceFilter {
        SourceFilter::default()
    }

    pub fn stats(&self) -> SourceStats {
        self.stats
    }

    /// The stream's SSRC, once one was heard.
    pub fn ssrc(&self) -> Option<u32> {
        self.stream.map(|s| s.ssrc)
    }

    /// Judges a packet of `ssrc` numbered `sequence` arriving at `now`.
    pub fn check(&mut self, now: Instant, ssrc: u32, sequence: u16) -> SourceVerdict {
        let Some(stream) = &mut self.stream else {
            self.stream = Some(Stream {
                ssrc,
                max_seq: sequence,
                bad_seq: None,
                last_heard: now,
            });
            return SourceVerdict::Accept;
        };
        if stream.ssrc == ssrc {
            let verdict = in_stream(stream, sequence);
            if verdict == SourceVerdict::Accept {
                stream.last_heard = now;
            } else {
                self.stats.bad_sequence += 1;
            }
            return verdict;
        }
        // Another SSRC: probation.
        let candidate = match &mut self.candidate {
            Some(c) if c.ssrc == ssrc && c.next_seq == sequence => {
                c.in_sequence = c.in_sequence.saturating_add(1);
                c.next_seq = sequence.wrapping_add(1);
                *c
            }
            _ => {
                let c = Candidate {
                    ssrc,
                    next_seq: sequence.wrapping_add(1),
                    in_sequence: 1,
                };
                self.candidate = Some(c);
                c
            }
        };
        let stream_silent = now.saturating_duration_since(stream.last_heard) >= TAKEOVER_SILENCE;
        if candidate.in_sequence >= MIN_SEQUENTIAL && stream_silent {
            *stream = Stream {
                ssrc,
                max_seq: sequence,
                bad_seq: None,
                last_heard: now,
            };
            self.candidate = None;
            self.stats.switches += 1;
            return SourceVerdict::Switched;
        }
        self.stats.other_source += 1;
        SourceVerdict::OtherSource
    }
}

/// A.1's `update_seq` for the current stream.
fn in_stream(stream: &mut Stream, sequence: u16) -> SourceVerdict {
    let delta = sequence.wrapping_sub(stream.max_seq);
    if delta < MAX_DROPOUT {
        if delta != 0 {
            stream.max_seq = sequence;
        }
        stream.bad_seq = None;
        SourceVerdict::Accept
    } else if delta <= u16::MAX - MAX_MISORDER {
        // A big jump: believed only if the next packet follows it.
        if stream.bad_seq == Some(sequence) {
            stream.max_seq = sequence;
            stream.bad_seq = None;
            SourceVerdict::Accept
        } else {
            stream.bad_seq = Some(sequence.wrapping_add(1));
            SourceVerdict::BadSequence
        }
    } else {
        // Misordered or duplicated, shortly behind: the jitter buffer sorts it.
        SourceVerdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    #[test]
    fn a_spoofer_interleaved_with_the_stream_never_gets_in() {
        let t0 = Instant::now();
        let mut f = SourceFilter::new();
        let mut accepted = 0;
        for i in 0..200u16 {
            let now = t0 + MS20 * u32::from(i);
            if f.check(now, 0x1111, 1000 + i) == SourceVerdict::Accept {
                accepted += 1;
            }
            // Three in-sequence spoofed packets per genuine one.
            for k in 0..3u16 {
                let v = f.check(now, 0xBAD, 5000 + i * 3 + k);
                assert_eq!(v, SourceVerdict::OtherSource);
            }
        }
        assert_eq!(accepted, 200);
        assert_eq!(f.ssrc(), Some(0x1111));
        assert_eq!(f.stats().other_source, 600);
        assert_eq!(f.stats().switches, 0);
    }

    #[test]
    fn a_new_ssrc_takes_over_once_the_old_stream_stops() {
        let t0 = Instant::now();
        let mut f = SourceFilter::new();
        for i in 0..10u16 {
            assert_eq!(
                f.check(t0 + MS20 * u32::from(i), 1, i),
                SourceVerdict::Accept
            );
        }
        // The old stream stops at 180 ms; the new one starts at 200 ms.
        let verdicts: Vec<SourceVerdict> = (0..8u16)
            .map(|i| f.check(t0 + MS20 * u32::from(10 + i), 2, 700 + i))
            .collect();
        let first = verdicts
            .iter()
            .position(|v| *v == SourceVerdict::Switched)
            .expect("switched");
        assert!(
            verdicts[..first]
                .iter()
                .all(|v| *v == SourceVerdict::OtherSource),
            "{verdicts:?}"
        );
        // 100 ms after the old stream's last packet, in sequence.
        assert_eq!(first, 4, "{verdicts:?}");
        assert!(verdicts[first + 1..]
            .iter()
            .all(|v| *v == SourceVerdict::Accept));
        assert_eq!(f.ssrc(), Some(2));
        // The old SSRC, coming back, is now the stranger.
        assert_eq!(f.check(t0 + MS20 * 19, 1, 10), SourceVerdict::OtherSource);
    }

    #[test]
    fn probation_restarts_when_the_candidate_is_out_of_sequence() {
        let t0 = Instant::now();
        let mut f = SourceFilter::new();
        f.check(t0, 1, 0);
        let late = t0 + Duration::from_secs(1);
        // Random sequence numbers never pass probation.
        for (i, s) in [5u16, 900, 17, 40000, 3].into_iter().enumerate() {
            let v = f.check(late + MS20 * i as u32, 2, s);
            assert_eq!(v, SourceVerdict::OtherSource, "{s}");
        }
    }

    #[test]
    fn a_sequence_jump_needs_the_next_packet_to_confirm_it() {
        let t0 = Instant::now();
        let mut f = SourceFilter::new();
        for i in 0..5u16 {
            f.check(t0, 9, 100 + i);
        }
        // A stray jump is dropped, the stream goes on.
        assert_eq!(f.check(t0, 9, 30000), SourceVerdict::BadSequence);
        assert_eq!(f.check(t0, 9, 105), SourceVerdict::Accept);
        // A jump the next packet confirms is the peer renumbering.
        assert_eq!(f.check(t0, 9, 50000), SourceVerdict::BadSequence);
        assert_eq!(f.check(t0, 9, 50001), SourceVerdict::Accept);
        assert_eq!(f.check(t0, 9, 50002), SourceVerdict::Accept);
        // Misordered and duplicated packets pass; the jitter buffer sorts them.
        assert_eq!(f.check(t0, 9, 49990), SourceVerdict::Accept);
        assert_eq!(f.check(t0, 9, 50002), SourceVerdict::Accept);
        // Wrapping round is in sequence.
        let mut f = SourceFilter::new();
        f.check(t0, 3, 65534);
        assert_eq!(f.check(t0, 3, 65535), SourceVerdict::Accept);
        assert_eq!(f.check(t0, 3, 0), SourceVerdict::Accept);
        assert_eq!(f.stats().bad_sequence, 0);
    }
}
