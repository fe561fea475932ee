//! The codecs on each side of the bridge and their per-call state. On the
//! SIP side: PCMU, PCMA, G.722, Speex wideband and Opus as negotiated in SDP; on
//! the client side: Speex wideband (what Flash publishes as 0xB2),
//! Nellymoser, G.711 (Flash Player 11 and AIR), what RTMP tools publish
//! (AAC, MP3, ADPCM, linear PCM: decoded only), and Opus or G.722 from
//! WebRTC browsers. Rates and RTP clocks per RFC 3551
//! §4.5 (G.722's clock is 8000 although it samples at 16 kHz), RFC 5574 and
//! RFC 7587 (Opus: 48 kHz clock).

use crate::g711::{self, Law};
use crate::g722::{G722Decoder, G722Encoder};
use crate::opus::{OpusDecoder, OpusEncoder};
use crate::speex::{SpeexWbDecoder, SpeexWbEncoder};

/// The audio codec negotiated with the SIP peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipCodec {
    Pcmu,
    Pcma,
    G722,
    SpeexWb,
    Opus,
}

impl SipCodec {
    /// Samples per second of the audio the codec carries.
    pub fn sample_rate(self) -> u32 {
        match self {
            SipCodec::Pcmu | SipCodec::Pcma => 8_000,
            // Opus is carried at 48 kHz; sono codes it at 16 kHz.
            SipCodec::G722 | SipCodec::SpeexWb | SipCodec::Opus => 16_000,
        }
    }

    /// The RTP timestamp clock.
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            SipCodec::Pcmu | SipCodec::Pcma | SipCodec::G722 => 8_000,
            SipCodec::SpeexWb => 16_000,
            SipCodec::Opus => crate::opus::OPUS_CLOCK,
        }
    }

    /// The packet interval used with a peer that asked for `ptime` ms:
    /// Opus frames last 10, 20, 40 or 60 ms (RFC 6716 §2.1.4), so another
    /// ptime gets 20.
    pub fn packet_ms(self, ptime: u32) -> u32 {
        match self {
            SipCodec::Opus if ![10, 20, 40, 60].contains(&ptime) => 20,
            _ => ptime,
        }
    }

    /// Whether the client's codec goes to the peer as it is, both ways.
    pub fn passes_through(self, client: ClientCodec) -> bool {
        matches!(
            (self, client),
            (SipCodec::SpeexWb, ClientCodec::SpeexWb)
                | (SipCodec::Opus, ClientCodec::Opus)
                | (SipCodec::Pcmu, ClientCodec::G711(Law::Mu))
                | (SipCodec::Pcma, ClientCodec::G711(Law::A))
                | (SipCodec::G722, ClientCodec::G722)
        )
    }

    /// RTP clock ticks for `samples` at the codec's sample rate.
    pub fn rtp_ticks(self, samples: usize) -> u32 {
        (samples as u64 * u64::from(self.rtp_clock_rate()) / u64::from(self.sample_rate())) as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            SipCodec::Pcmu => "PCMU",
            SipCodec::Pcma => "PCMA",
            SipCodec::G722 => "G722",
            SipCodec::SpeexWb => "speex/16000",
            SipCodec::Opus => "opus/48000/2",
        }
    }
}

/// What the client speaks: Flash on its RTMP streams, an RTMP tool, a
/// browser over WebRTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCodec {
    SpeexWb,
    Nellymoser {
        rate: u32,
    },
    /// Opus at 48 kHz, 20 ms a packet (RFC 7587).
    Opus,
    /// G.711 at 8 kHz: Flash Player 11 and AIR's `SoundCodec.PCMU`/`PCMA`.
    G711(Law),
    /// G.722 at 16 kHz, 64 kbit/s: a browser that prefers it
    /// (`setCodecPreferences`), to reach a G.722 phone untouched.
    G722,
    /// Linear PCM at the FLV header's rate (decoded only).
    Pcm {
        rate: u32,
        stereo: bool,
        sixteen_bit: bool,
    },
    /// Flash's ADPCM (decoded only).
    Adpcm {
        rate: u32,
        stereo: bool,
    },
    /// MP3, any rate (decoded only).
    Mp3,
    /// AAC-LC, or HE-AAC's LC core (decoded only).
    Aac,
}

/// G.711 is 8000 samples a second: 160 in 20 ms.
pub const G711_FRAME: usize = 160;

impl ClientCodec {
    /// The rate audio down is encoded from in this codec, and the samples
    /// in one 20 ms frame; `None` for the codecs sono only decodes.
    pub fn rate_and_frame(self) -> Option<(u32, usize)> {
        match self {
            ClientCodec::SpeexWb => Some((16_000, crate::speex::SPEEX_WB_FRAME)),
            ClientCodec::Nellymoser { rate } => Some((rate, crate::nellymoser::BLOCK_SAMPLES)),
            ClientCodec::Opus => Some((crate::opus::OPUS_PCM_RATE, crate::opus::OPUS_FRAME)),
            ClientCodec::G711(_) => Some((8_000, G711_FRAME)),
            ClientCodec::G722 => Some((16_000, 2 * G711_FRAME)),
            ClientCodec::Pcm { .. }
            | ClientCodec::Adpcm { .. }
            | ClientCodec::Mp3
            | ClientCodec::Aac => None,
        }
    }

    /// Samples (at the codec's rate) in one message of audio down: G.711
    /// and G.722 passed through come in whatever size the peer sent; every
    /// other codec one frame a message.
    pub fn samples_in(self, data: &[u8]) -> usize {
        match self {
            ClientCodec::G711(_) => data.len(),
            // Two 16 kHz samples a byte.
            ClientCodec::G722 => 2 * data.len(),
            other => other.rate_and_frame().map_or(0, |(_, frame)| frame),
        }
    }

    /// A short name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ClientCodec::SpeexWb => "speex",
            ClientCodec::Nellymoser { .. } => "nellymoser",
            ClientCodec::Opus => "opus",
            ClientCodec::G711(Law::Mu) => "pcmu",
            ClientCodec::G711(Law::A) => "pcma",
            ClientCodec::G722 => "g722",
            ClientCodec::Pcm { .. } => "pcm",
            ClientCodec::Adpcm { .. } => "adpcm",
            ClientCodec::Mp3 => "mp3",
            ClientCodec::Aac => "aac",
        }
    }
}

/// Encoder state for the SIP side.
pub enum SipEncoder {
    G711(Law),
    G722(Box<G722Encoder>),
    Speex(Box<SpeexWbEncoder>),
    /// `None` if libopus refused to make one (it does not, at 48 kHz mono).
    Opus(Option<Box<OpusEncoder>>),
}

/// Opus towards a SIP peer: the rate browsers use for speech.
const SIP_OPUS_BITRATE: u32 = 32_000;

impl SipEncoder {
    pub fn new(codec: SipCodec, speex_quality: u8, speex_complexity: u8) -> SipEncoder {
        match codec {
            SipCodec::Pcmu => SipEncoder::G711(Law::Mu),
            SipCodec::Pcma => SipEncoder::G711(Law::A),
            SipCodec::G722 => SipEncoder::G722(Box::default()),
            SipCodec::SpeexWb => SipEncoder::Speex(Box::new(SpeexWbEncoder::new(
                speex_quality,
                speex_complexity,
            ))),
            SipCodec::Opus => {
                SipEncoder::Opus(OpusEncoder::new(SIP_OPUS_BITRATE).ok().map(Box::new))
            }
        }
    }

    /// Encodes one packet's worth of PCM at the codec's rate.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            SipEncoder::G711(law) => g711::encode(*law, pcm, out),
            SipEncoder::G722(e) => e.encode(pcm, out),
            SipEncoder::Speex(e) => e.encode(pcm, out),
            // A packet of a length Opus has no frame for is left empty.
            SipEncoder::Opus(Some(e)) => {
                let _ = e.encode(pcm, out);
            }
            SipEncoder::Opus(None) => {}
        }
    }
}

/// Decoder state for the SIP side.
pub enum SipDecoder {
    G711(Law),
    G722(Box<G722Decoder>),
    Speex(Box<SpeexWbDecoder>),
    Opus(Option<Box<OpusDecoder>>),
}

impl SipDecoder {
    pub fn new(codec: SipCodec) -> SipDecoder {
        match codec {
            SipCodec::Pcmu => SipDecoder::G711(Law::Mu),
            SipCodec::Pcma => SipDecoder::G711(Law::A),
            SipCodec::G722 => SipDecoder::G722(Box::default()),
            SipCodec::SpeexWb => SipDecoder::Speex(Box::default()),
            SipCodec::Opus => SipDecoder::Opus(OpusDecoder::new().ok().map(Box::new)),
        }
    }

    /// Decodes one RTP payload, appending PCM at the codec's rate.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            SipDecoder::G711(law) => g711::decode(*law, payload, out),
            SipDecoder::G722(d) => d.decode(payload, out),
            SipDecoder::Speex(d) => {
                d.decode(payload, out);
            }
            // A packet libopus cannot decode adds nothing; the downlink's
            // clock then conceals the gap.
            SipDecoder::Opus(Some(d)) => {
                let _ = d.decode(payload, out);
            }
            SipDecoder::Opus(None) => {}
        }
    }
}
