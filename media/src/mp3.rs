//! MP3 as FLV carries it (SoundFormat 2, and 14 for 8 kHz): MPEG-1, -2 and
//! -2.5 Layer III frames (ISO/IEC 11172-3 §2.4.2.3, 13818-3), one or more
//! per message, what ffmpeg publishes with `-c:a libmp3lame`.
//!
//! Our part is finding the frames: each 4-byte header says its version,
//! rate, bit rate and padding, hence the frame's length. Decoding is
//! symphonia's (pure Rust); it keeps the bit reservoir across frames, so
//! frames must come in order, whole. Stereo is mixed down to mono.

use symphonia_bundle_mp3::MpaDecoder;
use symphonia_core::codecs::{CodecParameters, Decoder, DecoderOptions, CODEC_TYPE_MP3};
use symphonia_core::formats::Packet;

use crate::symphonia_pcm::{append_mono, guarded};

/// kbit/s by bit rate index, Layer III: MPEG-1, then MPEG-2 and 2.5.
const BITRATES: [[u32; 16]; 2] = [
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
    ],
    [
        0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0,
    ],
];

/// Why an MP3 message was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp3Error {
    #[error("no MPEG audio frame header at byte {0}")]
    NoHeader(usize),
    #[error("an MPEG audio frame that is not Layer III")]
    NotLayer3,
    #[error("a free-format or reserved bit rate or rate")]
    Unsupported,
    #[error("a frame of {needs} bytes with only {has} in the message")]
    Truncated { needs: usize, has: usize },
    #[error("the decoder refused a frame: {0}")]
    Decode(String),
}

/// What a frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub sample_rate: u32,
    /// Bytes in the frame, header included.
    pub length: usize,
    /// Samples per channel: 1152 (MPEG-1) or 576.
    pub samples: usize,
    pub stereo: bool,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8]) -> Result<FrameHeader, Mp3Error> {
        let &[a, b, c, d, ..] = bytes else {
            return Err(Mp3Error::Truncated {
                needs: 4,
                has: bytes.len(),
            });
        };
        if a != 0xFF || b & 0xE0 != 0xE0 {
            return Err(Mp3Error::NoHeader(0));
        }
        // Version: 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5, 1 reserved.
        let version = (b >> 3) & 3;
        if (b >> 1) & 3 != 1 {
            return Err(Mp3Error::NotLayer3);
        }
        let kbps = BITRATES[usize::from(version != 3)][usize::from(c >> 4)];
        let base = match (c >> 2) & 3 {
            0 => 44_100,
            1 => 48_000,
            2 => 32_000,
            _ => return Err(Mp3Error::Unsupported),
        };
        let sample_rate = match version {
            3 => base,
            2 => base / 2,
            0 => base / 4,
            _ => return Err(Mp3Error::Unsupported),
        };
        if kbps == 0 {
            return Err(Mp3Error::Unsupported);
        }
        let padding = usize::from((c >> 1) & 1);
        let (samples, factor) = if version == 3 {
            (1152, 144_000)
        } else {
            (576, 72_000)
        };
        Ok(FrameHeader {
            sample_rate,
            length: (factor * kbps / sample_rate) as usize + padding,
            samples,
            stereo: d >> 6 != 3,
        })
    }
}

/// Decodes the MP3 a client publishes.
pub struct Mp3Decoder {
    decoder: Option<MpaDecoder>,
    rate: u32,
}

impl Default for Mp3Decoder {
    fn default() -> Self {
        Mp3Decoder::new()
    }
}

impl Mp3Decoder {
    pub fn new() -> Mp3Decoder {
        Mp3Decoder {
            decoder: None,
            rate: 0,
        }
    }

    /// Decodes the frames of one message, appending mono PCM to `out`;
    /// returns the rate of the PCM. A message that breaks off mid-frame
    /// gives the frames before the break, then the error.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) -> Result<u32, Mp3Error> {
        let mut at = 0;
        while at < data.len() {
            let header = FrameHeader::parse(&data[at..]).map_err(|e| match e {
                Mp3Error::NoHeader(_) => Mp3Error::NoHeader(at),
                other => other,
            })?;
            let frame = data
                .get(at..at + header.length)
                .ok_or(Mp3Error::Truncated {
                    needs: header.length,
                    has: data.len() - at,
                })?;
            at += header.length;
            if header.sample_rate != self.rate {
                // A new stream (or its first frame): a decoder for its rate.
                self.decoder = None;
                self.rate = header.sample_rate;
            }
            let decoder = match &mut self.decoder {
                Some(d) => d,
                slot => {
                    let mut params = CodecParameters::new();
                    params.for_codec(CODEC_TYPE_MP3);
                    let d = MpaDecoder::try_new(&params, &DecoderOptions::default())
                        .map_err(|e| Mp3Error::Decode(e.to_string()))?;
                    slot.insert(d)
                }
            };
            let packet = Packet::new_from_slice(0, 0, header.samples as u64, frame);
            let decoded = guarded(|| match decoder.decode(&packet) {
                Ok(buffer) => {
                    append_mono(buffer, out);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            });
            match decoded {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(Mp3Error::Decode(e)),
                None => {
                    self.decoder = None;
                    return Err(Mp3Error::Decode("the decoder failed".into()));
                }
            }
        }
        Ok(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_give_the_frame_length() {
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding, joint stereo.
        let h = FrameHeader::parse(&[0xFF, 0xFB, 0x90, 0x44]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                sample_rate: 44_100,
                length: 417,
                samples: 1152,
                stereo: true
            }
        );
        // MPEG-2 Layer III, 32 kbit/s, 16 kHz, padded, mono.
        let h = FrameHeader::parse(&[0xFF, 0xF3, 0x4A, 0xC4]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                sample_rate: 16_000,
                length: 145,
                samples: 576,
                stereo: false
            }
        );
        // MPEG-2.5, 8 kHz (FLV's format 14), 16 kbit/s.
        let h = FrameHeader::parse(&[0xFF, 0xE3, 0x28, 0xC4]).unwrap();
        assert_eq!((h.sample_rate, h.length), (8_000, 144));
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB]),
            Err(Mp3Error::Truncated { needs: 4, has: 2 })
        );
        assert_eq!(
            FrameHeader::parse(&[0x00, 0xFB, 0x90, 0x44]),
            Err(Mp3Error::NoHeader(0))
        );
        // Layer II.
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFD, 0x90, 0x44]),
            Err(Mp3Error::NotLayer3)
        );
        // Free format, bad bit rate, reserved rate, reserved version.
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB, 0x00, 0x44]),
            Err(Mp3Error::Unsupported)
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB, 0xF0, 0x44]),
            Err(Mp3Error::Unsupported)
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB, 0x9C, 0x44]),
            Err(Mp3Error::Unsupported)
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xEB, 0x90, 0x44]),
            Err(Mp3Error::Unsupported)
        );
    }

    #[test]
    fn a_frame_cut_short_is_an_error_not_a_panic() {
        let mut d = Mp3Decoder::new();
        let mut out = Vec::new();
        assert_eq!(
            d.decode(&[0xFF, 0xFB, 0x90, 0x44, 0, 0], &mut out),
            Err(Mp3Error::Truncated { needs: 417, has: 6 })
        );
        // A frame of zeros decodes (to silence) or is refused; never panics.
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x44]);
        let _ = d.decode(&frame, &mut out);
    }
}
