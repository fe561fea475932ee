//! The one-byte FLV audio tag header that starts every RTMP audio message
//! (Adobe "Video File Format Specification" v10, §E.4.2.1, AUDIODATA).
//!
//! Flash Player writes Speex as 0xB2, ffmpeg as 0xB6 (its rate bits say 11 kHz):
//! Speex in FLV is always 16 kHz mono, so for Speex the rate bits are ignored.

use bytes::Bytes;

/// FLV SoundFormat values that a phone may send.
const FORMAT_NELLYMOSER_16K: u8 = 4;
const FORMAT_NELLYMOSER_8K: u8 = 5;
const FORMAT_NELLYMOSER: u8 = 6;
const FORMAT_SPEEX: u8 = 11;

/// The codec and clock rate an audio message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Speex wideband, 16 kHz, one or more 20 ms frames per message.
    Speex,
    /// Nellymoser Asao at the given sample rate (5512, 8000, 11025, 16000, 22050 or 44100).
    Nellymoser { rate: u32 },
    /// Any other FLV SoundFormat (MP3, AAC, PCM…), kept so it can be counted and refused.
    Other { format: u8 },
}

impl AudioCodec {
    /// Reads the codec from an FLV audio tag header byte.
    pub fn from_header(header: u8) -> AudioCodec {
        let format = header >> 4;
        match format {
            FORMAT_SPEEX => AudioCodec::Speex,
            FORMAT_NELLYMOSER_16K => AudioCodec::Nellymoser { rate: 16_000 },
            FORMAT_NELLYMOSER_8K => AudioCodec::Nellymoser { rate: 8_000 },
            FORMAT_NELLYMOSER => AudioCodec::Nellymoser {
                rate: [5_512, 11_025, 22_050, 44_100][usize::from((header >> 2) & 3)],
            },
            other => AudioCodec::Other { format: other },
        }
    }

    /// The header byte we write for this codec (mono, 16-bit).
    pub fn header(self) -> u8 {
        let (format, rate_bits) = match self {
            // Flash's own choice: rate bits 0, as the format fixes 16 kHz.
            AudioCodec::Speex => (FORMAT_SPEEX, 0),
            AudioCodec::Nellymoser { rate: 16_000 } => (FORMAT_NELLYMOSER_16K, 0),
            AudioCodec::Nellymoser { rate: 8_000 } => (FORMAT_NELLYMOSER_8K, 0),
            AudioCodec::Nellymoser { rate } => (
                FORMAT_NELLYMOSER,
                match rate {
                    0..=8_000 => 0,
                    8_001..=16_000 => 1,
                    16_001..=33_000 => 2,
                    _ => 3,
                },
            ),
            AudioCodec::Other { format } => (format & 0x0f, 3),
        };
        (format << 4) | (rate_bits << 2) | 0b10
    }

    /// A short name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Speex => "speex",
            AudioCodec::Nellymoser { .. } => "nellymoser",
            AudioCodec::Other { .. } => "other",
        }
    }
}

/// An audio message split into its header and codec data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    pub codec: AudioCodec,
    pub data: Bytes,
}

impl AudioTag {
    /// Splits an audio message; `None` for an empty one (Flash sends those when muted).
    pub fn parse(payload: &Bytes) -> Option<AudioTag> {
        let header = *payload.first()?;
        Some(AudioTag {
            codec: AudioCodec::from_header(header),
            data: payload.slice(1..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flash_and_ffmpeg_headers() {
        assert_eq!(AudioCodec::from_header(0xB2), AudioCodec::Speex);
        assert_eq!(AudioCodec::from_header(0xB6), AudioCodec::Speex);
        assert_eq!(
            AudioCodec::from_header(0x52),
            AudioCodec::Nellymoser { rate: 8_000 }
        );
        assert_eq!(
            AudioCodec::from_header(0x42),
            AudioCodec::Nellymoser { rate: 16_000 }
        );
        assert_eq!(
            AudioCodec::from_header(0x62),
            AudioCodec::Nellymoser { rate: 5_512 }
        );
        assert_eq!(
            AudioCodec::from_header(0x66),
            AudioCodec::Nellymoser { rate: 11_025 }
        );
        assert_eq!(
            AudioCodec::from_header(0x6A),
            AudioCodec::Nellymoser { rate: 22_050 }
        );
        assert_eq!(
            AudioCodec::from_header(0x6E),
            AudioCodec::Nellymoser { rate: 44_100 }
        );
        assert_eq!(
            AudioCodec::from_header(0xAF),
            AudioCodec::Other { format: 10 }
        );
    }

    #[test]
    fn writes_headers_that_read_back() {
        assert_eq!(AudioCodec::Speex.header(), 0xB2);
        for rate in [5_512, 8_000, 11_025, 16_000, 22_050, 44_100] {
            let c = AudioCodec::Nellymoser { rate };
            assert_eq!(AudioCodec::from_header(c.header()), c);
        }
    }
}
