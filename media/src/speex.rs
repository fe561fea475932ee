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

/// Bits after the 5-bit header (wideband flag 0, 4-bit mode) of each
/// narrowband mode 0–8, and the whole size of each wideband-layer submode
/// 0–4 (flag 1, 3-bit submode, data); from the mode tables of the Speex
/// manual (§9, "Bit-stream definition").
const NB_MODE_BITS: [usize; 9] = [0, 38, 114, 155, 215, 295, 359, 487, 74];
const WB_LAYER_BITS: [usize; 5] = [4, 36, 112, 192, 352];
/// In-band signal payload sizes by signal id (narrowband mode 14).
const INBAND_BITS: [usize; 16] = [1, 1, 4, 4, 4, 4, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64];

/// How many 20 ms wideband frames a packet holds, from the mode bits alone
/// (no decoding): passthrough must advance the RTP clock by the packet's
/// duration without touching its frames. `None` for a bit stream that does
/// not parse (then the packet is not passed on).
pub fn frames_in_packet(packet: &[u8]) -> Option<usize> {
    let total = packet.len() * 8;
    let bits = |at: usize, n: usize| -> Option<usize> {
        if at + n > total {
            return None;
        }
        let mut v = 0usize;
        for i in at..at + n {
            v = (v << 1) | usize::from((packet[i / 8] >> (7 - i % 8)) & 1);
        }
        Some(v)
    };
    let mut at = 0;
    let mut frames = 0;
    while at + 5 <= total && frames <= MAX_FRAMES_PER_PACKET {
        if bits(at, 1)? == 1 {
            // A wideband layer: it belongs to the narrowband frame before.
            let submode = bits(at + 1, 3)?;
            at += WB_LAYER_BITS.get(submode)?;
            continue;
        }
        let mode = bits(at + 1, 4)?;
        at += 5;
        match mode {
            0..=8 => {
                at += NB_MODE_BITS[mode];
                if at > total {
                    return None;
                }
                frames += 1;
            }
            13 => {
                // User in-band data: a 5-bit byte count, then the bytes.
                at += 5 + 8 * bits(at, 5)?;
            }
            14 => at += 4 + INBAND_BITS[bits(at, 4)?],
            15 => break, // terminator
            _ => return None,
        }
    }
    // A layer or in-band message that claims more bits than there are.
    if at > total {
        return None;
    }
    (frames <= MAX_FRAMES_PER_PACKET).then_some(frames)
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
    fn frames_are_counted_without_decoding_at_every_quality() {
        for quality in 0..=10 {
            let mut enc = SpeexWbEncoder::new(quality, 2);
            for n in 1..=4 {
                let mut packet = Vec::new();
                enc.encode(&tone(n), &mut packet);
                assert_eq!(
                    frames_in_packet(&packet),
                    Some(n),
                    "quality {quality}, {n} frames"
                );
            }
        }
        assert_eq!(frames_in_packet(&[]), Some(0));
        assert_eq!(frames_in_packet(&[0x7F]), Some(0), "a terminator alone");
        assert_eq!(
            frames_in_packet(&[0b0110_0000]),
            None,
            "narrowband mode 12 does not exist"
        );
        assert_eq!(frames_in_packet(&[0b0011_0000]), None, "mode 6 cut short");
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
