//! Speex wideband (16 kHz, 20 ms frames of 320 samples) through libspeex
//! (speex-safe). Flash's microphone codec: an RTMP audio message (FLV tag
//! 0xB2) carries one or more frames in one bit stream, and so does an RTP
//! packet of payload type speex/16000 (RFC 5574 §3). Neither the encoder nor
//! the decoder is `Send` (libspeex state behind raw pointers): create them in
//! the actor that uses them.

use speex_safe::{ControlFunctions, SpeexBits, SpeexDecoder, SpeexEncoder, WbMode};

/// Samples in one 20 ms wideband frame.
pub const SPEEX_WB_FRAME: usize = 320;

/// Frames decoded from one packet at most: a packet is a few frames in
/// practice (Flash sends 1–8); a hostile one must not make us loop long.
const MAX_FRAMES_PER_PACKET: usize = 16;

/// Encodes 20 ms frames of 16 kHz PCM into Speex wideband frames.
pub struct SpeexWbEncoder {
    encoder: SpeexEncoder<WbMode>,
    bits: SpeexBits<'static>,
    scratch: [i16; SPEEX_WB_FRAME],
}

impl SpeexWbEncoder {
    /// `quality` 0–10 (8 gives 27.8 kbit/s, 70 bytes a frame), `complexity`
    /// 1–10 (CPU spent searching the codebooks); both are clamped.
    pub fn new(quality: u8, complexity: u8) -> SpeexWbEncoder {
        let mut encoder = SpeexEncoder::<WbMode>::new();
        encoder.set_quality(i32::from(quality.min(10)));
        encoder.set_complexity(i32::from(complexity.clamp(1, 10)));
        SpeexWbEncoder {
            encoder,
            bits: SpeexBits::new(),
            scratch: [0; SPEEX_WB_FRAME],
        }
    }

    /// Encodes whole frames of `pcm` (a multiple of 320 samples; a short
    /// tail is padded with silence) into one packet appended to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        self.bits.reset();
        for frame in pcm.chunks(SPEEX_WB_FRAME) {
            // libspeex does not check the length it reads, hence the copy
            // into a buffer of exactly one frame.
            self.scratch[..frame.len()].copy_from_slice(frame);
            self.scratch[frame.len()..].fill(0);
            self.encoder.encode_int(&mut self.scratch, &mut self.bits);
        }
        let start = out.len();
        out.resize(start + self.bits.num_bytes().max(0) as usize, 0);
        let written = self.bits.write(&mut out[start..]) as usize;
        out.truncate(start + written);
    }
}

/// Decodes Speex wideband packets into 16 kHz PCM. Lost frames are concealed
/// by [`crate::concealment`], as for every codec: speex-safe cannot pass
/// libspeex the null bit stream that would run its own concealment.
pub struct SpeexWbDecoder {
    decoder: SpeexDecoder<WbMode>,
    bits: SpeexBits<'static>,
    input: Vec<u8>,
}

impl Default for SpeexWbDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeexWbDecoder {
    pub fn new() -> SpeexWbDecoder {
        let mut decoder = SpeexDecoder::<WbMode>::new();
        decoder.set_enhancement(true);
        SpeexWbDecoder {
            decoder,
            bits: SpeexBits::new(),
            input: Vec::new(),
        }
    }

    /// Decodes every frame of one packet, appending 320 samples per frame to
    /// `out`; returns how many frames it held. A corrupt frame ends the
    /// packet (what was decoded before it stays).
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> usize {
        self.input.clear();
        self.input.extend_from_slice(packet);
        self.bits.read_from(&mut self.input);
        let mut frames = 0;
        while frames < MAX_FRAMES_PER_PACKET {
            // Fewer than 5 bits left is the padding of the last byte
            // (speexdec's own test), and 15 in the next 4 bits is the
            // in-band terminator.
            if self.bits.remaining() < 5 || self.bits.peek_unsigned(4) == 15 {
                break;
            }
            let start = out.len();
            out.resize(start + SPEEX_WB_FRAME, 0);
            if self
                .decoder
                .decode_int(&mut self.bits, &mut out[start..])
                .is_err()
            {
                out.truncate(start);
                break;
            }
            frames += 1;
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize) -> Vec<i16> {
        (0..frames * SPEEX_WB_FRAME)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn quality_8_makes_70_byte_frames_and_several_frames_share_a_packet() {
        let mut enc = SpeexWbEncoder::new(8, 3);
        let mut one = Vec::new();
        enc.encode(&tone(1), &mut one);
        assert_eq!(one.len(), 70);
        let mut three = Vec::new();
        enc.encode(&tone(3), &mut three);
        assert_eq!(three.len(), 209, "3 × 556 bits, padded to a byte");
        let mut dec = SpeexWbDecoder::new();
        let mut pcm = Vec::new();
        assert_eq!(dec.decode(&three, &mut pcm), 3);
        assert_eq!(pcm.len(), 3 * SPEEX_WB_FRAME);
    }

    #[test]
    fn a_tone_survives_the_round_trip() {
        let source = tone(50);
        let mut enc = SpeexWbEncoder::new(8, 3);
        let mut dec = SpeexWbDecoder::new();
        let mut decoded = Vec::new();
        for frame in source.chunks(SPEEX_WB_FRAME) {
            let mut packet = Vec::new();
            enc.encode(frame, &mut packet);
            dec.decode(&packet, &mut decoded);
        }
        // Energy is kept within a few dB after the codec settles.
        let energy = |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
        let ratio = energy(&decoded[3200..]) / energy(&source[3200..]);
        assert!((0.5..2.0).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn garbage_and_empty_packets_give_whole_frames_or_nothing() {
        let mut dec = SpeexWbDecoder::new();
        let mut out = Vec::new();
        assert_eq!(dec.decode(&[], &mut out), 0);
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..97u8).map(|i| i.wrapping_mul(seed) ^ 0x5A).collect();
            let frames = dec.decode(&junk, &mut out);
            assert!(frames <= MAX_FRAMES_PER_PACKET);
        }
        assert_eq!(out.len() % SPEEX_WB_FRAME, 0);
    }
}
