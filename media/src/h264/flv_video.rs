//! FLV `VIDEODATA` (Adobe "Video File Format Specification" v10, §E.4.3.1):
//! the first byte's frame type and codec id, and for AVC (codec 7) the
//! `AVCVIDEOPACKET`: packet type (0 sequence header, 1 NAL units, 2 end of
//! sequence), a signed 24-bit composition time, and either an
//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1) or NAL units
//! each prefixed by its length (in `lengthSizeMinusOne + 1` bytes).
//!
//! Reading borrows the message; writing builds what sono sends a client.

use base64::Engine;

/// FLV codec ids (§E.4.3.1).
pub const CODEC_SORENSON_H263: u8 = 2;
pub const CODEC_AVC: u8 = 7;

/// Frame types (§E.4.3.1).
pub const FRAME_KEY: u8 = 1;
pub const FRAME_INTER: u8 = 2;

/// Most parameter sets a configuration record may carry here; the
/// record allows 31 SPS and 255 PPS, encoders send one of each.
const MAX_PARAMETER_SETS: usize = 16;

/// Why a video message cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvVideoError {
    #[error("empty video message")]
    Empty,
    #[error("AVC packet shorter than its 5-byte header")]
    TruncatedHeader,
    #[error("AVC sequence header truncated or malformed: {0}")]
    BadConfig(&'static str),
    #[error("a NAL unit's length ({length}) runs past the message ({left} bytes left)")]
    NalPastEnd { length: usize, left: usize },
    #[error("NAL units before any AVC sequence header")]
    NoConfig,
    #[error("AVC packet type {0} is not 0, 1 or 2")]
    BadPacketType(u8),
}

/// The AVCDecoderConfigurationRecord: profile, level, NAL length size and
/// the parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// Bytes before each NAL unit in the FLV message: 1, 2 or 4.
    pub length_size: u8,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Reads a record (§5.2.4.1.1); what follows the PPS (the High
    /// profile's chroma fields) is ignored.
    pub fn parse(data: &[u8]) -> Result<AvcConfig, FlvVideoError> {
        let bad = FlvVideoError::BadConfig;
        if data.len() < 7 {
            return Err(bad("shorter than its 7 fixed bytes"));
        }
        if data[0] != 1 {
            return Err(bad("configurationVersion is not 1"));
        }
        let length_size = (data[4] & 0x03) + 1;
        if length_size == 3 {
            return Err(bad("a NAL length size of 3 bytes is not allowed"));
        }
        let mut at = 5;
        let sets = |count: usize, at: &mut usize| -> Result<Vec<Vec<u8>>, FlvVideoError> {
            if count > MAX_PARAMETER_SETS {
                return Err(bad("too many parameter sets"));
            }
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let len = data
                    .get(*at..*at + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(bad("a parameter set's length is cut off"))?;
                let set = data
                    .get(*at + 2..*at + 2 + len)
                    .ok_or(bad("a parameter set runs past the record"))?;
                if set.is_empty() {
                    return Err(bad("an empty parameter set"));
                }
                out.push(set.to_vec());
                *at += 2 + len;
            }
            Ok(out)
        };
        let sps_count = usize::from(data[at] & 0x1F);
        at += 1;
        let sps = sets(sps_count, &mut at)?;
        let pps_count = usize::from(*data.get(at).ok_or(bad("the PPS count is cut off"))?);
        at += 1;
        let pps = sets(pps_count, &mut at)?;
        if sps.is_empty() || pps.is_empty() {
            return Err(bad("no SPS or no PPS"));
        }
        Ok(AvcConfig {
            profile: data[1],
            compatibility: data[2],
            level: data[3],
            length_size,
            sps,
            pps,
        })
    }

    /// The record for parameter sets seen in-band (RTP), with 4-byte NAL
    /// lengths; `None` without an SPS long enough to name its profile.
    pub fn from_parameter_sets(sps: Vec<Vec<u8>>, pps: Vec<Vec<u8>>) -> Option<AvcConfig> {
        let first = sps.first()?;
        if first.len() < 4 || pps.is_empty() {
            return None;
        }
        Some(AvcConfig {
            profile: first[1],
            compatibility: first[2],
            level: first[3],
            length_size: 4,
            sps,
            pps,
        })
    }

    /// Parameter sets from SDP's `sprop-parameter-sets` (RFC 6184 §8.1):
    /// base64 NAL units, comma-separated.
    pub fn from_sprop(value: &str) -> Option<AvcConfig> {
        let (mut sps, mut pps) = (Vec::new(), Vec::new());
        for part in value.split(',').take(MAX_PARAMETER_SETS) {
            let nal = base64::engine::general_purpose::STANDARD
                .decode(part.trim())
                .ok()?;
            match super::nal_unit_type(&nal) {
                super::nal_type::SPS => sps.push(nal),
                super::nal_type::PPS => pps.push(nal),
                _ => {}
            }
        }
        AvcConfig::from_parameter_sets(sps, pps)
    }

    /// `profile-level-id` (RFC 6184 §8.1): the SPS's profile_idc,
    /// constraint flags and level_idc as six hex digits.
    pub fn profile_level_id(&self) -> String {
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }

    /// `sprop-parameter-sets` (RFC 6184 §8.1).
    pub fn sprop_parameter_sets(&self) -> String {
        self.sps
            .iter()
            .chain(&self.pps)
            .map(|n| base64::engine::general_purpose::STANDARD.encode(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The record's bytes, with 4-byte NAL lengths.
    pub fn write_record(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[1, self.profile, self.compatibility, self.level, 0xFF]);
        out.push(0xE0 | (self.sps.len().min(31) as u8));
        for s in self.sps.iter().take(31) {
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s);
        }
        out.push(self.pps.len().min(255) as u8);
        for p in self.pps.iter().take(255) {
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
            out.extend_from_slice(p);
        }
    }
}

/// One video message as a publisher sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoMessage<'a> {
    /// An AVC sequence header.
    Config(AvcConfig),
    /// One access unit's NAL units.
    AccessUnit {
        keyframe: bool,
        /// Milliseconds from decode to presentation time.
        composition_time: i32,
        nalus: Vec<&'a [u8]>,
    },
    EndOfSequence,
    /// A codec other than AVC (its FLV codec id), or a video info/command
    /// frame (frame type 5): nothing to carry.
    Other {
        codec_id: u8,
        frame_type: u8,
    },
}

/// The codec id of a video message, without reading further.
pub fn codec_id(data: &[u8]) -> Option<u8> {
    data.first().map(|b| b & 0x0F)
}

/// Reads a video message. NAL units are split with `config`'s length size
/// (the last sequence header's); without one, 4 bytes are assumed only to
/// report the error.
pub fn parse<'a>(
    data: &'a [u8],
    config: Option<&AvcConfig>,
) -> Result<VideoMessage<'a>, FlvVideoError> {
    let first = *data.first().ok_or(FlvVideoError::Empty)?;
    let (frame_type, codec_id) = (first >> 4, first & 0x0F);
    if codec_id != CODEC_AVC || frame_type == 5 {
        return Ok(VideoMessage::Other {
            codec_id,
            frame_type,
        });
    }
    if data.len() < 5 {
        return Err(FlvVideoError::TruncatedHeader);
    }
    // SI24, sign-extended.
    let composition_time = (i32::from_be_bytes([data[2], data[3], data[4], 0])) >> 8;
    let body = &data[5..];
    match data[1] {
        0 => AvcConfig::parse(body).map(VideoMessage::Config),
        1 => {
            let config = config.ok_or(FlvVideoError::NoConfig)?;
            Ok(VideoMessage::AccessUnit {
                keyframe: frame_type == FRAME_KEY,
                composition_time,
                nalus: split_nalus(body, usize::from(config.length_size))?,
            })
        }
        2 => Ok(VideoMessage::EndOfSequence),
        other => Err(FlvVideoError::BadPacketType(other)),
    }
}

/// Length-prefixed NAL units; empty ones are skipped.
fn split_nalus(mut body: &[u8], length_size: usize) -> Result<Vec<&[u8]>, FlvVideoError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < length_size {
            return Err(FlvVideoError::NalPastEnd {
                length: length_size,
                left: body.len(),
            });
        }
        let length = body[..length_size]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        let rest = &body[length_size..];
        let nal = rest.get(..length).ok_or(FlvVideoError::NalPastEnd {
            length,
            left: rest.len(),
        })?;
        if !nal.is_empty() {
            out.push(nal);
        }
        body = &rest[length..];
    }
    Ok(out)
}

/// The message of a sequence header for `config`.
pub fn write_config(config: &AvcConfig) -> Vec<u8> {
    let mut out = vec![(FRAME_KEY << 4) | CODEC_AVC, 0, 0, 0, 0];
    config.write_record(&mut out);
    out
}

/// The message of one access unit, 4-byte NAL lengths, composition time 0
/// (RTP carries presentation times only, and baseline has no B-frames).
pub fn write_access_unit<T: AsRef<[u8]>>(keyframe: bool, nalus: &[T]) -> Vec<u8> {
    let frame = if keyframe { FRAME_KEY } else { FRAME_INTER };
    let size: usize = nalus.iter().map(|n| 4 + n.as_ref().len()).sum();
    let mut out = Vec::with_capacity(5 + size);
    out.extend_from_slice(&[(frame << 4) | CODEC_AVC, 1, 0, 0, 0]);
    for n in nalus {
        out.extend_from_slice(&(n.as_ref().len() as u32).to_be_bytes());
        out.extend_from_slice(n.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Constrained Baseline 3.1 SPS and a PPS, as x264 writes them.
    pub(crate) const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xE8];
    pub(crate) const PPS: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];

    fn config() -> AvcConfig {
        AvcConfig::from_parameter_sets(vec![SPS.to_vec()], vec![PPS.to_vec()]).unwrap()
    }

    #[test]
    fn a_sequence_header_reads_back_and_names_the_profile() {
        let msg = write_config(&config());
        let VideoMessage::Config(c) = parse(&msg, None).unwrap() else {
            panic!("not a config");
        };
        assert_eq!(c, config());
        assert_eq!(c.profile_level_id(), "42c01f");
        let sprop = c.sprop_parameter_sets();
        assert_eq!(AvcConfig::from_sprop(&sprop), Some(c));
    }

    #[test]
    fn nal_units_split_on_their_lengths() {
        let idr = [0x65u8, 1, 2, 3];
        let sei = [0x06u8, 9];
        let msg = write_access_unit(true, &[&sei[..], &idr[..]]);
        let c = config();
        let VideoMessage::AccessUnit {
            keyframe, nalus, ..
        } = parse(&msg, Some(&c)).unwrap()
        else {
            panic!("not an access unit");
        };
        assert!(keyframe);
        assert_eq!(nalus, vec![&sei[..], &idr[..]]);
        // Composition time is signed.
        let mut neg = msg.clone();
        neg[2..5].copy_from_slice(&[0xFF, 0xFF, 0xD8]);
        let VideoMessage::AccessUnit {
            composition_time, ..
        } = parse(&neg, Some(&c)).unwrap()
        else {
            panic!()
        };
        assert_eq!(composition_time, -40);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let c = config();
        assert_eq!(parse(&[], None), Err(FlvVideoError::Empty));
        assert_eq!(
            parse(&[0x17, 1, 0], Some(&c)),
            Err(FlvVideoError::TruncatedHeader)
        );
        // A NAL length beyond the message.
        let over = [0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41, 1];
        assert_eq!(
            parse(&over, Some(&c)),
            Err(FlvVideoError::NalPastEnd { length: 9, left: 2 })
        );
        assert_eq!(
            parse(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41], None),
            Err(FlvVideoError::NoConfig)
        );
        // Every cut of a real sequence header is refused, none panics.
        let whole = write_config(&c);
        for cut in 5..whole.len() {
            assert!(
                matches!(parse(&whole[..cut], None), Err(FlvVideoError::BadConfig(_))),
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse(&[0x17, 3, 0, 0, 0], None),
            Err(FlvVideoError::BadPacketType(3))
        );
        // Sorenson H.263 is reported as another codec.
        assert_eq!(
            parse(&[0x22, 0, 0], None),
            Ok(VideoMessage::Other {
                codec_id: CODEC_SORENSON_H263,
                frame_type: 2
            })
        );
    }
}
