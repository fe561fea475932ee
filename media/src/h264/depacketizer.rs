//! RTP payloads to NAL units, packetization-mode 1 (RFC 6184 §6.3): a
//! single NAL unit (§5.6), a STAP-A (§5.7.1) or the fragments of an FU-A
//! (§5.8), fed in sequence order. What cannot be rebuilt (a fragment
//! without its start, a STAP-A whose sizes overrun it, the interleaved
//! mode's types) is an error; the caller drops the access unit.

use super::nal_type;

/// Largest NAL unit rebuilt from fragments: a 1080p IDR at a high
/// bitrate is well under it; anything bigger is an attack or a bug.
pub const MAX_NAL: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    #[error("empty RTP payload")]
    Empty,
    #[error("FU-A fragment without its start (the start was lost)")]
    FragmentWithoutStart,
    #[error("FU-A start before the previous NAL unit's end")]
    UnfinishedFragment,
    #[error("STAP-A unit sizes run past the payload")]
    AggregateOverflow,
    #[error("NAL unit type {0} is not allowed in packetization-mode 1")]
    Unsupported(u8),
    #[error("a fragmented NAL unit grew past {MAX_NAL} bytes")]
    TooLarge,
}

/// Rebuilds NAL units from payloads in order.
#[derive(Debug, Default)]
pub struct Depacketizer {
    fragment: Option<Vec<u8>>,
}

impl Depacketizer {
    pub fn new() -> Depacketizer {
        Depacketizer::default()
    }

    /// A packet was lost, or the access unit ended: a fragment under way
    /// cannot be completed.
    pub fn reset(&mut self) {
        self.fragment = None;
    }

    /// Reads one payload; each NAL unit it completes goes to `out`.
    pub fn push(&mut self, payload: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), DepacketizeError> {
        let first = *payload.first().ok_or(DepacketizeError::Empty)?;
        match first & 0x1F {
            1..=23 => {
                let unfinished = self.fragment.take().is_some();
                out.push(payload.to_vec());
                if unfinished {
                    return Err(DepacketizeError::UnfinishedFragment);
                }
            }
            nal_type::STAP_A => {
                let unfinished = self.fragment.take().is_some();
                let mut rest = &payload[1..];
                let before = out.len();
                while !rest.is_empty() {
                    let size = rest
                        .get(..2)
                        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                    let nal = size.and_then(|s| rest.get(2..2 + s));
                    let (Some(size), Some(nal)) = (size, nal) else {
                        out.truncate(before);
                        return Err(DepacketizeError::AggregateOverflow);
                    };
                    if !nal.is_empty() {
                        out.push(nal.to_vec());
                    }
                    rest = &rest[2 + size..];
                }
                if unfinished {
                    return Err(DepacketizeError::UnfinishedFragment);
                }
            }
            nal_type::FU_A => {
                let header = *payload.get(1).ok_or(DepacketizeError::Empty)?;
                let (start, end) = (header & 0x80 != 0, header & 0x40 != 0);
                let data = &payload[2..];
                if start {
                    let unfinished = self.fragment.is_some();
                    let mut nal = Vec::with_capacity(data.len() * 8 + 1);
                    nal.push((first & 0xE0) | (header & 0x1F));
                    nal.extend_from_slice(data);
                    self.fragment = Some(nal);
                    if unfinished {
                        return Err(DepacketizeError::UnfinishedFragment);
                    }
                } else {
                    let nal = self
                        .fragment
                        .as_mut()
                        .ok_or(DepacketizeError::FragmentWithoutStart)?;
                    if nal.len() + data.len() > MAX_NAL {
                        self.fragment = None;
                        return Err(DepacketizeError::TooLarge);
                    }
                    nal.extend_from_slice(data);
                }
                if end {
                    if let Some(nal) = self.fragment.take() {
                        out.push(nal);
                    }
                }
            }
            other => {
                self.fragment = None;
                return Err(DepacketizeError::Unsupported(other));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::packetizer::Packetizer;

    #[test]
    fn what_the_packetizer_cuts_is_rebuilt() {
        let units = vec![
            vec![0x67, 0x42, 0xC0, 0x1F],
            vec![0x68, 0xCE],
            (0..3000)
                .map(|i| if i == 0 { 0x65 } else { i as u8 })
                .collect(),
            vec![0x06, 1, 2],
        ];
        let mut d = Depacketizer::new();
        let mut out = Vec::new();
        Packetizer::new(500).packetize(&units, |p, _| d.push(p, &mut out).unwrap());
        assert_eq!(out, units);
    }

    #[test]
    fn broken_payloads_are_errors_and_nothing_half_made_comes_out() {
        let mut d = Depacketizer::new();
        let mut out = Vec::new();
        assert_eq!(d.push(&[], &mut out), Err(DepacketizeError::Empty));
        assert_eq!(
            d.push(&[0x7C, 0x05, 1, 2], &mut out),
            Err(DepacketizeError::FragmentWithoutStart)
        );
        assert_eq!(
            d.push(&[0x78, 0, 5, 0x65, 1], &mut out),
            Err(DepacketizeError::AggregateOverflow)
        );
        assert_eq!(
            d.push(&[0x79], &mut out),
            Err(DepacketizeError::Unsupported(25))
        );
        assert!(out.is_empty());
        // A start, then a new start: the first is never output.
        d.push(&[0x7C, 0x85, 1], &mut out).unwrap();
        assert_eq!(
            d.push(&[0x7C, 0x85, 2], &mut out),
            Err(DepacketizeError::UnfinishedFragment)
        );
        d.push(&[0x7C, 0x45, 3], &mut out).unwrap();
        assert_eq!(out, vec![vec![0x65, 2, 3]]);
    }
}
