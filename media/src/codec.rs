//! The codecs on each side of the bridge and their per-call state. On the
//! SIP side: PCMU, PCMA, G.722 and Speex wideband as negotiated in SDP; on
//! the client side: Speex wideband (what Flash publishes as 0xB2),
//! Nellymoser, and Opus from WebRTC browsers. Rates and RTP clocks per RFC 3551
//! §4.5 (G.722's clock is 8000 although it samples at 16 kHz) and RFC 5574.

use crate::g711::{self, Law};
use crate::g722::{G722Decoder, G722Encoder};
use crate::speex::{SpeexWbDecoder, SpeexWbEncoder};

/// The audio codec negotiated with the SIP peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipCodec {
    Pcmu,
    Pcma,
    G722,
    SpeexWb,
}

impl SipCodec {
    /// Samples per second of the audio the codec carries.
    pub fn sample_rate(self) -> u32 {
        match self {
            SipCodec::Pcmu | SipCodec::Pcma => 8_000,
            SipCodec::G722 | SipCodec::SpeexWb => 16_000,
        }
    }

    /// The RTP timestamp clock.
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            SipCodec::Pcmu | SipCodec::Pcma | SipCodec::G722 => 8_000,
            SipCodec::SpeexWb => 16_000,
        }
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
        }
    }
}

/// What the client speaks: Flash on its RTMP streams, a browser over WebRTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCodec {
    SpeexWb,
    Nellymoser {
        rate: u32,
    },
    /// Opus at 48 kHz, 20 ms a packet (RFC 7587).
    Opus,
}

impl ClientCodec {
    /// The rate the client's audio is decoded to and encoded from, and the
    /// samples in one frame sent down.
    pub fn rate_and_frame(self) -> (u32, usize) {
        match self {
            ClientCodec::SpeexWb => (16_000, crate::speex::SPEEX_WB_FRAME),
            ClientCodec::Nellymoser { rate } => (rate, crate::nellymoser::BLOCK_SAMPLES),
            ClientCodec::Opus => (crate::opus::OPUS_RATE, crate::opus::OPUS_FRAME),
        }
    }
}

/// Encoder state for the SIP side.
pub enum SipEncoder {
    G711(Law),
    G722(Box<G722Encoder>),
    Speex(Box<SpeexWbEncoder>),
}

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
        }
    }

    /// Encodes one packet's worth of PCM at the codec's rate.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            SipEncoder::G711(law) => g711::encode(*law, pcm, out),
            SipEncoder::G722(e) => e.encode(pcm, out),
            SipEncoder::Speex(e) => e.encode(pcm, out),
        }
    }
}

/// Decoder state for the SIP side.
pub enum SipDecoder {
    G711(Law),
    G722(Box<G722Decoder>),
    Speex(Box<SpeexWbDecoder>),
}

impl SipDecoder {
    pub fn new(codec: SipCodec) -> SipDecoder {
        match codec {
            SipCodec::Pcmu => SipDecoder::G711(Law::Mu),
            SipCodec::Pcma => SipDecoder::G711(Law::A),
            SipCodec::G722 => SipDecoder::G722(Box::default()),
            SipCodec::SpeexWb => SipDecoder::Speex(Box::default()),
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
        }
    }
}
