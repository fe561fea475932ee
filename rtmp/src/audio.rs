//! The one-byte FLV audio tag header that starts every RTMP audio message
//! (Adobe "Video File Format Specification" v10, §E.4.2.1, AUDIODATA).
//!
//! SoundFormat (4 bits), SoundRate (2: 5.5, 11, 22, 44 kHz), SoundSize
//! (1: 8 or 16 bits) and SoundType (1: mono or stereo). Some formats fix
//! their own rate and ignore those bits: Speex is always 16 kHz mono (Flash
//! writes 0xB2, ffmpeg 0xB6), Nellymoser 8 and 16 kHz, G.711 8 kHz, MP3 8 kHz
//! (format 14), and AAC's rate and channels come from its AudioSpecificConfig
//! (the header is always 0xAF).

use bytes::Bytes;

/// FLV SoundFormat values.
const FORMAT_PCM: u8 = 0;
const FORMAT_ADPCM: u8 = 1;
const FORMAT_MP3: u8 = 2;
const FORMAT_PCM_LE: u8 = 3;
const FORMAT_NELLYMOSER_16K: u8 = 4;
const FORMAT_NELLYMOSER_8K: u8 = 5;
const FORMAT_NELLYMOSER: u8 = 6;
const FORMAT_PCMA: u8 = 7;
const FORMAT_PCMU: u8 = 8;
const FORMAT_AAC: u8 = 10;
const FORMAT_SPEEX: u8 = 11;
const FORMAT_MP3_8K: u8 = 14;

/// The rates of the SoundRate bits.
const RATES: [u32; 4] = [5_512, 11_025, 22_050, 44_100];

/// The codec and clock rate an audio message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Speex wideband, 16 kHz, one or more 20 ms frames per message.
    Speex,
    /// Nellymoser Asao at the given sample rate (5512, 8000, 11025, 16000, 22050 or 44100).
    Nellymoser { rate: u32 },
    /// G.711 µ-law at 8 kHz (Flash Player 11's `SoundCodec.PCMU`).
    Pcmu,
    /// G.711 A-law at 8 kHz (`SoundCodec.PCMA`).
    Pcma,
    /// Linear PCM, little-endian when 16-bit (format 0, "platform endian",
    /// is read as little-endian: every publisher that writes it runs on
    /// little-endian machines, and ffmpeg reads it so).
    Pcm {
        rate: u32,
        stereo: bool,
        sixteen_bit: bool,
    },
    /// Flash's ADPCM (SWF spec, "ADPCM compression"), 2 to 5 bits a sample.
    Adpcm { rate: u32, stereo: bool },
    /// MPEG-1/2 Layer III; the frames say their own rate.
    Mp3,
    /// AAC: an AACPacketType byte, then an AudioSpecificConfig or a raw frame.
    Aac,
    /// Any other FLV SoundFormat, kept so it can be counted and refused.
    Other { format: u8 },
}

impl AudioCodec {
    /// Reads the codec from an FLV audio tag header byte.
    pub fn from_header(header: u8) -> AudioCodec {
        let format = header >> 4;
        let rate = RATES[usize::from((header >> 2) & 3)];
        let sixteen_bit = header & 0b10 != 0;
        let stereo = header & 1 != 0;
        match format {
            FORMAT_SPEEX => AudioCodec::Speex,
            FORMAT_NELLYMOSER_16K => AudioCodec::Nellymoser { rate: 16_000 },
            FORMAT_NELLYMOSER_8K => AudioCodec::Nellymoser { rate: 8_000 },
            FORMAT_NELLYMOSER => AudioCodec::Nellymoser { rate },
            FORMAT_PCMU => AudioCodec::Pcmu,
            FORMAT_PCMA => AudioCodec::Pcma,
            FORMAT_PCM | FORMAT_PCM_LE => AudioCodec::Pcm {
                rate,
                stereo,
                sixteen_bit,
            },
            FORMAT_ADPCM => AudioCodec::Adpcm { rate, stereo },
            FORMAT_MP3 | FORMAT_MP3_8K => AudioCodec::Mp3,
            FORMAT_AAC => AudioCodec::Aac,
            other => AudioCodec::Other { format: other },
        }
    }

    /// The header byte we write for this codec.
    pub fn header(self) -> u8 {
        let rate_bits = |rate: u32| match rate {
            0..=8_000 => 0,
            8_001..=16_000 => 1,
            16_001..=33_000 => 2,
            _ => 3,
        };
        // (format, rate bits, 16-bit, stereo)
        let (format, rate, sixteen_bit, stereo) = match self {
            // Flash's own choice: rate bits 0, as the format fixes 16 kHz.
            AudioCodec::Speex => (FORMAT_SPEEX, 0, true, false),
            AudioCodec::Nellymoser { rate: 16_000 } => (FORMAT_NELLYMOSER_16K, 0, true, false),
            AudioCodec::Nellymoser { rate: 8_000 } => (FORMAT_NELLYMOSER_8K, 0, true, false),
            AudioCodec::Nellymoser { rate } => (FORMAT_NELLYMOSER, rate_bits(rate), true, false),
            // What Flash Player 11 writes for its G.711 microphone.
            AudioCodec::Pcmu => (FORMAT_PCMU, 0, true, false),
            AudioCodec::Pcma => (FORMAT_PCMA, 0, true, false),
            AudioCodec::Pcm {
                rate,
                stereo,
                sixteen_bit,
            } => (FORMAT_PCM_LE, rate_bits(rate), sixteen_bit, stereo),
            AudioCodec::Adpcm { rate, stereo } => (FORMAT_ADPCM, rate_bits(rate), true, stereo),
            AudioCodec::Mp3 => (FORMAT_MP3, 3, true, false),
            AudioCodec::Aac => (FORMAT_AAC, 3, true, true),
            AudioCodec::Other { format } => (format & 0x0f, 3, true, false),
        };
        (format << 4) | (rate << 2) | (u8::from(sixteen_bit) << 1) | u8::from(stereo)
    }

    /// A short name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Speex => "speex",
            AudioCodec::Nellymoser { .. } => "nellymoser",
            AudioCodec::Pcmu => "pcmu",
            AudioCodec::Pcma => "pcma",
            AudioCodec::Pcm { .. } => "pcm",
            AudioCodec::Adpcm { .. } => "adpcm",
            AudioCodec::Mp3 => "mp3",
            AudioCodec::Aac => "aac",
            AudioCodec::Other { .. } => "other",
        }
    }

    /// Every name [`AudioCodec::name`] gives, for metric labels.
    pub const NAMES: [&'static str; 9] = [
        "speex",
        "nellymoser",
        "pcmu",
        "pcma",
        "pcm",
        "adpcm",
        "mp3",
        "aac",
        "other",
    ];
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
        // OBS and ffmpeg's AAC; Flash Player 11's G.711.
        assert_eq!(AudioCodec::from_header(0xAF), AudioCodec::Aac);
        assert_eq!(AudioCodec::from_header(0x82), AudioCodec::Pcmu);
        assert_eq!(AudioCodec::from_header(0x72), AudioCodec::Pcma);
        // ffmpeg: libmp3lame at 44.1 kHz stereo, adpcm_swf at 22 kHz mono,
        // pcm_s16le at 44.1 kHz mono, pcm_u8 at 11 kHz.
        assert_eq!(AudioCodec::from_header(0x2F), AudioCodec::Mp3);
        assert_eq!(AudioCodec::from_header(0xE2), AudioCodec::Mp3);
        assert_eq!(
            AudioCodec::from_header(0x1A),
            AudioCodec::Adpcm {
                rate: 22_050,
                stereo: false
            }
        );
        assert_eq!(
            AudioCodec::from_header(0x3E),
            AudioCodec::Pcm {
                rate: 44_100,
                stereo: false,
                sixteen_bit: true
            }
        );
        assert_eq!(
            AudioCodec::from_header(0x04),
            AudioCodec::Pcm {
                rate: 11_025,
                stereo: false,
                sixteen_bit: false
            }
        );
        assert_eq!(
            AudioCodec::from_header(0x92),
            AudioCodec::Other { format: 9 }
        );
    }

    #[test]
    fn writes_headers_that_read_back() {
        assert_eq!(AudioCodec::Speex.header(), 0xB2);
        assert_eq!(AudioCodec::Pcmu.header(), 0x82);
        assert_eq!(AudioCodec::Pcma.header(), 0x72);
        assert_eq!(AudioCodec::Aac.header(), 0xAF);
        for rate in [5_512, 8_000, 11_025, 16_000, 22_050, 44_100] {
            let c = AudioCodec::Nellymoser { rate };
            assert_eq!(AudioCodec::from_header(c.header()), c);
        }
        for rate in [5_512, 11_025, 22_050, 44_100] {
            for stereo in [false, true] {
                let c = AudioCodec::Pcm {
                    rate,
                    stereo,
                    sixteen_bit: true,
                };
                assert_eq!(AudioCodec::from_header(c.header()), c);
                let c = AudioCodec::Adpcm { rate, stereo };
                assert_eq!(AudioCodec::from_header(c.header()), c);
            }
        }
    }

    #[test]
    fn every_codec_has_a_metric_label() {
        for header in 0..=255u8 {
            let name = AudioCodec::from_header(header).name();
            assert!(AudioCodec::NAMES.contains(&name), "{name}");
        }
    }
}
