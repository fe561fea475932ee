//! AAC as FLV carries it (Video File Format Specification v10, §E.4.2.2,
//! AACAUDIODATA): one AACPacketType byte, then either the
//! AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1; type 0, the "sequence
//! header", sent once before any audio) or one raw AAC frame (type 1). What
//! OBS always publishes, and ffmpeg by default.
//!
//! We read the AudioSpecificConfig ourselves, to refuse clearly what cannot
//! be decoded; decoding is symphonia's AAC-LC decoder (pure Rust). HE-AAC
//! (v1 and v2) is AAC-LC at half the rate plus spectral band replication
//! (and parametric stereo) on top: its LC core is decoded and the rest
//! ignored, which keeps everything up to a quarter of the output rate —
//! more than a phone call carries at 48 kHz (up to 12 kHz), less at lower
//! rates (see docs/media.md). Stereo is mixed down to mono.

use symphonia_codec_aac::AacDecoder as SymphoniaAac;
use symphonia_core::codecs::{CodecParameters, Decoder, DecoderOptions, CODEC_TYPE_AAC};
use symphonia_core::formats::Packet;

use crate::symphonia_pcm::{append_mono, guarded};

/// AACPacketType.
const SEQUENCE_HEADER: u8 = 0;
const RAW: u8 = 1;

/// Audio object types (ISO/IEC 14496-3 §1.5.1.1).
const AOT_LC: u8 = 2;
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;

const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Why an AAC message was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacError {
    #[error("an empty AAC message")]
    Empty,
    #[error("AAC audio before its sequence header (AudioSpecificConfig)")]
    NoSequenceHeader,
    #[error("an AudioSpecificConfig that does not parse: {0}")]
    BadConfig(&'static str),
    #[error("AAC we cannot decode: {0}")]
    Unsupported(String),
    #[error("unknown AACPacketType {0}")]
    UnknownPacketType(u8),
    #[error("the decoder refused a frame: {0}")]
    Decode(String),
}

/// What an AudioSpecificConfig says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The object type of the core (2 for AAC-LC, under SBR/PS too).
    pub object_type: u8,
    /// The rate of the core, which is what we decode.
    pub core_rate: u32,
    pub channels: u8,
    /// HE-AAC: the rate with SBR (twice the core's).
    pub sbr_rate: Option<u32>,
    /// HE-AAC v2.
    pub parametric_stereo: bool,
    /// 960-sample frames instead of 1024.
    pub short_frames: bool,
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.at / 8)
                .ok_or(AacError::BadConfig("it ends early"))?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, AacError> {
        let t = self.read(5)? as u8;
        Ok(if t == 31 { 32 + self.read(6)? as u8 } else { t })
    }

    fn rate(&mut self) -> Result<u32, AacError> {
        match self.read(4)? {
            15 => Ok(self.read(24)?),
            i => RATES
                .get(i as usize)
                .copied()
                .ok_or(AacError::BadConfig("a reserved sampling frequency index")),
        }
    }
}

impl AudioSpecificConfig {
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig, AacError> {
        let mut bits = Bits { data, at: 0 };
        let mut object_type = bits.object_type()?;
        let mut core_rate = bits.rate()?;
        let channels = bits.read(4)? as u8;
        let (mut sbr_rate, mut parametric_stereo) = (None, false);
        if object_type == AOT_SBR || object_type == AOT_PS {
            parametric_stereo = object_type == AOT_PS;
            sbr_rate = Some(bits.rate()?);
            object_type = bits.object_type()?;
        }
        if !(1..=655_350).contains(&core_rate) {
            return Err(AacError::BadConfig(
                "a sampling rate of 0 or beyond 655 kHz",
            ));
        }
        let short_frames = object_type == AOT_LC && bits.read(1)? == 1;
        if let Some(rate) = sbr_rate {
            // Explicit hierarchical signalling gives the core rate first.
            core_rate = core_rate.min(rate);
        }
        Ok(AudioSpecificConfig {
            object_type,
            core_rate,
            channels,
            sbr_rate,
            parametric_stereo,
            short_frames,
        })
    }

    /// Why this stream cannot be decoded, if it cannot.
    fn unsupported(&self) -> Option<String> {
        if self.object_type != AOT_LC {
            return Some(format!(
                "audio object type {} (only AAC-LC, alone or under HE-AAC, is decoded)",
                self.object_type
            ));
        }
        if !(1..=2).contains(&self.channels) {
            return Some(format!(
                "channel configuration {} (mono and stereo are decoded)",
                self.channels
            ));
        }
        if self.short_frames {
            return Some("960-sample frames".into());
        }
        if !(7_350..=96_000).contains(&self.core_rate) {
            return Some(format!("a rate of {} Hz", self.core_rate));
        }
        None
    }
}

/// Decodes the AAC a client publishes.
#[derive(Default)]
pub struct AacDecoder {
    config: Option<(AudioSpecificConfig, Vec<u8>)>,
    decoder: Option<SymphoniaAac>,
}

/// What one AAC message gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AacOutput {
    /// A sequence header, taken; no audio.
    Configured(AudioSpecificConfig),
    /// A frame decoded, at this rate.
    Audio { rate: u32 },
}

impl AacDecoder {
    pub fn new() -> AacDecoder {
        AacDecoder::default()
    }

    /// The config of the stream, once its sequence header came.
    pub fn config(&self) -> Option<AudioSpecificConfig> {
        self.config.as_ref().map(|(c, _)| *c)
    }

    /// One AAC message (after the FLV header byte): mono PCM appended to
    /// `out` for a frame.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) -> Result<AacOutput, AacError> {
        let (&kind, body) = data.split_first().ok_or(AacError::Empty)?;
        match kind {
            SEQUENCE_HEADER => {
                let config = AudioSpecificConfig::parse(body)?;
                self.decoder = None;
                self.config = None;
                if let Some(why) = config.unsupported() {
                    return Err(AacError::Unsupported(why));
                }
                self.config = Some((config, body.to_vec()));
                self.make_decoder()?;
                Ok(AacOutput::Configured(config))
            }
            RAW => {
                let Some((config, _)) = &self.config else {
                    return Err(AacError::NoSequenceHeader);
                };
                let rate = config.core_rate;
                if self.decoder.is_none() {
                    self.make_decoder()?;
                }
                let decoder = self.decoder.as_mut().ok_or(AacError::NoSequenceHeader)?;
                let packet = Packet::new_from_slice(0, 0, 1024, body);
                match guarded(|| match decoder.decode(&packet) {
                    Ok(buffer) => {
                        append_mono(buffer, out);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }) {
                    Some(Ok(())) => Ok(AacOutput::Audio { rate }),
                    Some(Err(e)) => Err(AacError::Decode(e)),
                    None => {
                        // Made again from the config on the next frame.
                        self.decoder = None;
                        Err(AacError::Decode("the decoder failed".into()))
                    }
                }
            }
            other => Err(AacError::UnknownPacketType(other)),
        }
    }

    fn make_decoder(&mut self) -> Result<(), AacError> {
        let Some((_, asc)) = &self.config else {
            return Err(AacError::NoSequenceHeader);
        };
        let mut params = CodecParameters::new();
        params
            .for_codec(CODEC_TYPE_AAC)
            .with_extra_data(asc.clone().into_boxed_slice());
        let made = guarded(|| SymphoniaAac::try_new(&params, &DecoderOptions::default()));
        match made {
            Some(Ok(d)) => {
                self.decoder = Some(d);
                Ok(())
            }
            Some(Err(e)) => {
                self.config = None;
                Err(AacError::Unsupported(e.to_string()))
            }
            None => {
                self.config = None;
                Err(AacError::Unsupported(
                    "the decoder refused the config".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_configs_publishers_send() {
        // ffmpeg/OBS: AAC-LC, 48 kHz, stereo.
        let c = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!((c.object_type, c.core_rate, c.channels), (2, 48_000, 2));
        assert_eq!((c.sbr_rate, c.short_frames), (None, false));
        // AAC-LC, 44.1 kHz, mono.
        let c = AudioSpecificConfig::parse(&[0x12, 0x08]).unwrap();
        assert_eq!((c.object_type, c.core_rate, c.channels), (2, 44_100, 1));
        // HE-AAC v1, explicit: SBR, core 24 kHz, stereo, 48 kHz with SBR, LC.
        let c = AudioSpecificConfig::parse(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(
            (c.object_type, c.core_rate, c.channels, c.sbr_rate),
            (2, 24_000, 2, Some(48_000))
        );
        assert!(!c.parametric_stereo);
        assert!(c.unsupported().is_none());
    }

    #[test]
    fn refuses_what_it_cannot_decode_clearly() {
        // AAC Main.
        let c = AudioSpecificConfig::parse(&[0x09, 0x90]).unwrap();
        assert!(c.unsupported().unwrap().contains("object type 1"));
        // 5.1.
        let c = AudioSpecificConfig::parse(&[0x11, 0xB0]).unwrap();
        assert!(c.unsupported().unwrap().contains("channel configuration 6"));
        // 960-sample frames.
        let c = AudioSpecificConfig::parse(&[0x11, 0x94]).unwrap();
        assert!(c.unsupported().unwrap().contains("960"));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x11]),
            Err(AacError::BadConfig("it ends early"))
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::BadConfig("a reserved sampling frequency index"))
        );
    }

    #[test]
    fn audio_before_the_sequence_header_is_refused() {
        let mut d = AacDecoder::new();
        let mut out = Vec::new();
        assert_eq!(
            d.decode(&[1, 0x21, 0x10], &mut out),
            Err(AacError::NoSequenceHeader)
        );
        assert_eq!(d.decode(&[], &mut out), Err(AacError::Empty));
        assert_eq!(
            d.decode(&[7], &mut out),
            Err(AacError::UnknownPacketType(7))
        );
        assert!(matches!(
            d.decode(&[0, 0x11, 0x90], &mut out),
            Ok(AacOutput::Configured(_))
        ));
        // A frame of garbage: an error, never a panic.
        let _ = d.decode(&[1, 0xFF, 0xFF, 0xFF, 0x00, 0x12], &mut out);
    }
}
