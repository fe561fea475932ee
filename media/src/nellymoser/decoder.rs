//! The Nellymoser decoder: 64-byte blocks to 256 samples each.

use super::bit_allocation::allocate;
use super::mdct::Mdct;
use super::tables::LEVELS;
use super::{
    energies_of, BitReader, BANDS, BLOCK_BYTES, BLOCK_SAMPLES, DETAIL_BITS, FILL_LEN, HALF,
    HEADER_BITS,
};

/// From a band energy to a coefficient's scale, in 16-bit sample units:
/// 2^(energy/2048) / 8. (FFmpeg's decoder negates it, but its inverse MDCT
/// has the opposite sign convention to our cosine sum: the output is the
/// same, which the test against it checks.)
pub(crate) const GAIN: f32 = 1.0 / 8.0;
/// What makes our inverse MDCT (a plain cosine sum) match the format's.
pub(crate) const INVERSE_SCALE: f32 = 1.0;

pub struct NellymoserDecoder {
    mdct: Mdct,
    overlap: [f32; HALF],
    coefficients: [f32; HALF],
    time: Vec<f32>,
    /// xorshift32 state for the signs of noise-filled coefficients.
    noise: u32,
}

impl Default for NellymoserDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The header's band indices and the per-coefficient bits and scales.
pub(crate) struct Header {
    pub energies: [f32; FILL_LEN],
    pub bits: [i32; FILL_LEN],
}

pub(crate) fn read_header(block: &[u8]) -> Header {
    let mut r = BitReader::new(block, 0);
    let mut indices = [0u8; BANDS];
    indices[0] = r.read(6) as u8;
    for i in indices.iter_mut().skip(1) {
        *i = r.read(5) as u8;
    }
    let energies = energies_of(&indices);
    let bits = allocate(&energies);
    Header { energies, bits }
}

impl NellymoserDecoder {
    pub fn new() -> NellymoserDecoder {
        NellymoserDecoder {
            mdct: Mdct::new(),
            overlap: [0.0; HALF],
            coefficients: [0.0; HALF],
            time: vec![0.0; 2 * HALF],
            noise: 0x2545_F491,
        }
    }

    /// Decodes every whole block of `data`, appending 256 samples per block;
    /// returns the number of blocks (a trailing partial block is ignored).
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) -> usize {
        let mut blocks = 0;
        for block in data.chunks_exact(BLOCK_BYTES) {
            self.decode_block(block, out);
            blocks += 1;
        }
        blocks
    }

    fn decode_block(&mut self, block: &[u8], out: &mut Vec<i16>) {
        let header = read_header(block);
        let scales: Vec<f32> = header
            .energies
            .iter()
            .map(|e| (e / 2048.0).exp2() * GAIN * INVERSE_SCALE)
            .collect();
        out.reserve(BLOCK_SAMPLES);
        for half in 0..2 {
            let mut r = BitReader::new(block, HEADER_BITS + half * DETAIL_BITS as usize);
            let filled = self
                .coefficients
                .iter_mut()
                .zip(header.bits.iter().zip(&scales));
            for (coefficient, (&b, &scale)) in filled {
                *coefficient = if b <= 0 {
                    // No bits: noise at the band's level, with a random sign
                    // (a constant sign would sound tonal).
                    self.noise ^= self.noise << 13;
                    self.noise ^= self.noise >> 17;
                    self.noise ^= self.noise << 5;
                    let sign = if self.noise & 1 == 0 { 1.0 } else { -1.0 };
                    sign * std::f32::consts::FRAC_1_SQRT_2 * scale
                } else {
                    let v = r.read(b as usize) as usize;
                    LEVELS[(1 << b) - 1 + v] * scale
                };
            }
            self.coefficients[FILL_LEN..].fill(0.0);
            self.mdct.inverse(&self.coefficients, &mut self.time);
            for (t, x) in self.time.iter_mut().enumerate() {
                *x *= self.mdct.window[t];
            }
            for t in 0..HALF {
                let s = self.time[t] + self.overlap[t];
                out.push(s.round().clamp(-32_768.0, 32_767.0) as i16);
            }
            self.overlap.copy_from_slice(&self.time[HALF..]);
        }
    }
}
