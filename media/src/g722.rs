//! G.722 (ITU-T Rec. G.722, 64 kbit/s mode 1): 16 kHz audio in sub-band
//! ADPCM, one byte per two samples, so a 20 ms frame is 160 bytes. The codec
//! itself is ezk-g722's translation of the spandsp/libg722 reference. In RTP
//! it is payload type 9 with an 8000 Hz clock although it samples at 16 kHz
//! (RFC 3551 §4.5.2), which [`crate::codec`] accounts for.

use ezk_g722::libg722::{decoder::Decoder, encoder::Encoder, Bitrate};

pub struct G722Encoder(Encoder);

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> G722Encoder {
        G722Encoder(Encoder::new(Bitrate::Mode1_64000, false, false))
    }

    /// Encodes 16 kHz samples (an even count; 20 ms is 320) onto `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.encode(pcm));
    }
}

pub struct G722Decoder(Decoder);

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> G722Decoder {
        G722Decoder(Decoder::new(Bitrate::Mode1_64000, false, false))
    }

    /// Decodes G.722 bytes into 16 kHz samples (two per byte) onto `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.extend_from_slice(&self.0.decode(payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_ms_is_160_bytes_and_a_tone_comes_back() {
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 16_000.0).sin() * 10_000.0)
                    as i16
            })
            .collect();
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let mut decoded = Vec::new();
        for frame in tone.chunks(320) {
            let mut bytes = Vec::new();
            enc.encode(frame, &mut bytes);
            assert_eq!(bytes.len(), 160);
            dec.decode(&bytes, &mut decoded);
        }
        assert_eq!(decoded.len(), tone.len());
        // The codec delays by a few samples; find the best alignment and
        // require a clean round trip (the reference codec gives > 30 dB here).
        let (snr, _) = crate::quality::aligned_snr_db(&tone[1000..15_000], &decoded[1000..], 40);
        assert!(snr > 30.0, "G.722 round trip SNR {snr:.1} dB");
    }
}
