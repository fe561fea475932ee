//! The Nellymoser encoder: 256 samples to a 64-byte block. Per block: the
//! MDCT of each half; one energy per band from both halves' coefficients,
//! quantised to the nearest table step (greedily, band after band, so the
//! running value follows the target); the bit allocation the decoder will
//! compute from those energies; each coefficient to the nearest level its
//! bits allow.

use super::bit_allocation::allocate;
use super::decoder::{GAIN, INVERSE_SCALE};
use super::mdct::Mdct;
use super::tables::{BAND_SIZES, ENERGY_DELTA, INITIAL_ENERGY, LEVELS};
use super::{
    energies_of, BitWriter, BANDS, BLOCK_BYTES, BLOCK_SAMPLES, DETAIL_BITS, HALF, HEADER_BITS,
};

/// What the forward MDCT's coefficients are multiplied by so that the
/// decoder's inverse gives the input back (time-domain aliasing
/// cancellation with the sine window: 1/N for N = 128 coefficients).
pub(crate) const FORWARD_SCALE: f32 = 1.0 / HALF as f32;

pub struct NellymoserEncoder {
    mdct: Mdct,
    /// The previous 128 input samples (the first half of the next window).
    history: [f32; HALF],
    pending: Vec<i16>,
    window: Vec<f32>,
}

impl Default for NellymoserEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl NellymoserEncoder {
    pub fn new() -> NellymoserEncoder {
        NellymoserEncoder {
            mdct: Mdct::new(),
            history: [0.0; HALF],
            pending: Vec::new(),
            window: vec![0.0; 2 * HALF],
        }
    }

    /// Feeds samples; appends a 64-byte block for every 256 gathered.
    /// Returns the number of blocks written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> usize {
        self.pending.extend_from_slice(pcm);
        let mut blocks = 0;
        let mut at = 0;
        while self.pending.len() - at >= BLOCK_SAMPLES {
            let block: Vec<f32> = self.pending[at..at + BLOCK_SAMPLES]
                .iter()
                .map(|&s| f32::from(s))
                .collect();
            at += BLOCK_SAMPLES;
            self.encode_block(&block, out);
            blocks += 1;
        }
        self.pending.drain(..at);
        blocks
    }

    fn half_coefficients(&mut self, first: &[f32], second: &[f32], out: &mut [f32; HALF]) {
        for t in 0..HALF {
            self.window[t] = first[t] * self.mdct.window[t];
            self.window[HALF + t] = second[t] * self.mdct.window[HALF + t];
        }
        self.mdct.forward(&self.window, out);
        for c in out.iter_mut() {
            *c *= FORWARD_SCALE / INVERSE_SCALE;
        }
    }

    fn encode_block(&mut self, block: &[f32], out: &mut Vec<u8>) {
        let mut halves = [[0f32; HALF]; 2];
        let history = self.history;
        self.half_coefficients(&history, &block[..HALF], &mut halves[0]);
        self.half_coefficients(&block[..HALF], &block[HALF..], &mut halves[1]);
        self.history.copy_from_slice(&block[HALF..]);

        // Target energy per band: log2 of the band's RMS in the decoder's
        // units, × 2048.
        let mut targets = [0f32; BANDS];
        let mut at = 0;
        for (band, target) in targets.iter_mut().enumerate() {
            let size = BAND_SIZES[band];
            let power: f32 = halves
                .iter()
                .flat_map(|h| h[at..at + size].iter())
                .map(|c| c * c)
                .sum::<f32>()
                / (2 * size) as f32;
            let rms = power.sqrt() / GAIN.abs();
            *target = if rms > 1e-6 { rms.log2() * 2048.0 } else { 0.0 };
            at += size;
        }
        let mut indices = [0u8; BANDS];
        indices[0] = nearest(INITIAL_ENERGY.iter().map(|&v| f32::from(v)), targets[0]) as u8;
        let mut value = f32::from(INITIAL_ENERGY[usize::from(indices[0])]);
        for band in 1..BANDS {
            let i = nearest(
                ENERGY_DELTA.iter().map(|&d| value + f32::from(d)),
                targets[band],
            );
            indices[band] = i as u8;
            value += f32::from(ENERGY_DELTA[i]);
        }
        let energies = energies_of(&indices);
        let bits = allocate(&energies);

        let start = out.len();
        out.resize(start + BLOCK_BYTES, 0);
        let block_out = &mut out[start..];
        let mut w = BitWriter::new(block_out, 0);
        w.write(u32::from(indices[0]), 6);
        for &i in &indices[1..] {
            w.write(u32::from(i), 5);
        }
        for (half, coefficients) in halves.iter().enumerate() {
            let mut w = BitWriter::new(block_out, HEADER_BITS + half * DETAIL_BITS as usize);
            for ((&b, &energy), &coefficient) in bits.iter().zip(&energies).zip(coefficients) {
                if b <= 0 {
                    continue;
                }
                let scale = (energy / 2048.0).exp2() * GAIN;
                let normalised = coefficient / scale;
                let first = (1usize << b) - 1;
                let levels = &LEVELS[first..first + (1 << b)];
                let v = nearest(levels.iter().copied(), normalised);
                w.write(v as u32, b as usize);
            }
        }
    }
}

/// Index of the value nearest `target`.
fn nearest(values: impl Iterator<Item = f32>, target: f32) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (i, v) in values.enumerate() {
        let d = (v - target).abs();
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}
