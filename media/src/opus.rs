//! Opus (RFC 6716) through libopus (Debian's `libopus-dev`, by the `opus`
//! crate): what WebRTC browsers speak. RFC 7587 fixes its RTP clock at
//! 48 kHz whatever the audio's bandwidth, and one packet carries one Opus
//! packet of 2.5 to 120 ms.
//!
//! sono's PCM for Opus is wideband, 16 kHz: all a telephone call carries
//! (G.722's 7 kHz is the widest SIP codec it transcodes to), and libopus
//! then encodes in SILK mode and decodes without its 48 kHz stage, for a
//! fraction of the fullband cost. Any Opus decoder plays what it encodes;
//! it decodes anything a browser sends, mono (a stereo packet is downmixed).
//! Encoding: 20 ms frames, VoIP mode, in-band FEC, complexity 8.

use opus::{Application, Bitrate, Channels};

/// Opus's RTP clock (RFC 7587 §4.1), in which packet durations count.
pub const OPUS_CLOCK: u32 = 48_000;
/// The rate sono decodes Opus to and encodes it from.
pub const OPUS_PCM_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at [`OPUS_PCM_RATE`].
pub const OPUS_FRAME: usize = 320;
/// The longest Opus packet (120 ms) in ticks of the 48 kHz clock, and in
/// samples at the PCM rate.
const MAX_PACKET_TICKS: usize = 5760;
const MAX_PACKET_SAMPLES: usize = 1920;
/// RFC 6716 §3.4 R2: no packet is longer than 1275 bytes per frame.
const MAX_PACKET_BYTES: usize = 1500;
/// libopus's encoder effort, 0–10 (its default is 10). Measured through
/// sono (tests/webrtc_calls.rs, media_load --webrtc): 8 scores the PESQ of
/// 10 for a little less CPU; 5 loses 0.25 MOS in SILK mode.
const COMPLEXITY: i32 = 8;

/// Why libopus refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("libopus: {0}")]
pub struct OpusError(String);

impl From<opus::Error> for OpusError {
    fn from(e: opus::Error) -> Self {
        OpusError(e.to_string())
    }
}

/// How long an Opus packet lasts in ticks of the 48 kHz RTP clock, from its
/// TOC byte and frame count (RFC 6716 §3.1); `None` if they do not parse.
pub fn clock_ticks(packet: &[u8]) -> Option<usize> {
    opus::packet::get_nb_samples(packet, OPUS_CLOCK)
        .ok()
        .filter(|n| (1..=MAX_PACKET_TICKS).contains(n))
}

/// A mono Opus encoder for audio down to a browser.
pub struct OpusEncoder {
    encoder: opus::Encoder,
    buffer: Vec<u8>,
}

impl OpusEncoder {
    /// `bitrate`: bits per second (browsers send 32 kbit/s speech by default).
    pub fn new(bitrate: u32) -> Result<OpusEncoder, OpusError> {
        let mut encoder = opus::Encoder::new(OPUS_PCM_RATE, Channels::Mono, Application::Voip)?;
        encoder.set_bitrate(Bitrate::Bits(bitrate.clamp(6_000, 510_000) as i32))?;
        encoder.set_complexity(COMPLEXITY)?;
        // Browsers decode FEC; a little redundancy pays off on lossy paths.
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(5)?;
        Ok(OpusEncoder {
            encoder,
            buffer: vec![0; MAX_PACKET_BYTES],
        })
    }

    /// Encodes one frame (2.5, 5, 10, 20, 40 or 60 ms at 16 kHz), appending
    /// the packet to `out`. A frame of another length is an error.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), OpusError> {
        let n = self.encoder.encode(pcm, &mut self.buffer)?;
        out.extend_from_slice(&self.buffer[..n]);
        Ok(())
    }
}

/// A mono Opus decoder for audio up from a browser.
pub struct OpusDecoder {
    decoder: opus::Decoder,
    buffer: Vec<i16>,
}

impl OpusDecoder {
    pub fn new() -> Result<OpusDecoder, OpusError> {
        Ok(OpusDecoder {
            decoder: opus::Decoder::new(OPUS_PCM_RATE, Channels::Mono)?,
            buffer: vec![0; MAX_PACKET_SAMPLES],
        })
    }

    /// Decodes one packet, appending 16 kHz PCM to `out`; returns the
    /// samples decoded. A packet libopus cannot parse is an error and
    /// appends nothing.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if packet.is_empty() {
            return Err(OpusError("an empty packet".into()));
        }
        let n = self.decoder.decode(packet, &mut self.buffer, false)?;
        out.extend_from_slice(&self.buffer[..n]);
        Ok(n)
    }

    /// Conceals `samples` lost samples (libopus's PLC, or its FEC when
    /// `next` is the packet after the loss), appending them to `out`.
    pub fn conceal(
        &mut self,
        samples: usize,
        next: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) -> Result<(), OpusError> {
        // libopus conceals in multiples of 2.5 ms.
        let step = OPUS_PCM_RATE as usize / 400;
        let samples = (samples / step * step).min(MAX_PACKET_SAMPLES);
        if samples == 0 {
            return Ok(());
        }
        let buffer = &mut self.buffer[..samples];
        let n = match next {
            Some(packet) if !packet.is_empty() => self.decoder.decode(packet, buffer, true)?,
            _ => self.decoder.decode(&[], buffer, false)?,
        };
        out.extend_from_slice(&self.buffer[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::aligned_snr_db;

    fn tone(samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                let t = i as f64 / f64::from(OPUS_PCM_RATE);
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 3000.0 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn speech_band_audio_survives_a_round_trip() {
        let input = tone(OPUS_FRAME * 50);
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut output = Vec::new();
        for frame in input.chunks(OPUS_FRAME) {
            let mut packet = Vec::new();
            encoder.encode(frame, &mut packet).unwrap();
            assert!(packet.len() < 200, "{} bytes for 20 ms", packet.len());
            assert_eq!(clock_ticks(&packet), Some(960), "20 ms on the 48 kHz clock");
            assert_eq!(decoder.decode(&packet, &mut output).unwrap(), OPUS_FRAME);
        }
        // Opus delays by its look-ahead; the measure finds the alignment.
        let (snr, _) = aligned_snr_db(&input[OPUS_FRAME * 5..], &output[OPUS_FRAME * 5..], 400);
        eprintln!("Opus 32 kbit/s round trip: {snr:.1} dB");
        assert!(snr > 15.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn a_lost_packet_is_concealed_with_audio_not_silence() {
        let input = tone(OPUS_FRAME * 20);
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut output = Vec::new();
        for (i, frame) in input.chunks(OPUS_FRAME).enumerate() {
            let mut packet = Vec::new();
            encoder.encode(frame, &mut packet).unwrap();
            if i == 10 {
                decoder.conceal(OPUS_FRAME, None, &mut output).unwrap();
            } else {
                decoder.decode(&packet, &mut output).unwrap();
            }
        }
        assert_eq!(output.len(), input.len());
        let lost = &output[OPUS_FRAME * 10..OPUS_FRAME * 11];
        let energy = lost.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / lost.len() as f64;
        assert!(
            energy.sqrt() > 1000.0,
            "concealment RMS {:.0}",
            energy.sqrt()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert!(decoder.decode(&[], &mut out).is_err());
        // Code 3 (arbitrary frame count) with a frame count of 0 is invalid.
        assert!(decoder.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(out.is_empty());
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        assert!(encoder.encode(&[0; 100], &mut Vec::new()).is_err());
    }
}
