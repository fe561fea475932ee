//! The MDCT of the format: 256 windowed samples to 128 coefficients, and
//! back, with the sine window and 50 % overlap (Princen–Bradley, so the
//! halves add back to the input). Direct O(N²) sums over a precomputed
//! cosine table: 16 K multiply-adds per half-block.

use super::HALF;

pub struct Mdct {
    /// cos(π/128 · (n + 1/2 + 64) · (k + 1/2)) for n in 0..256, k in 0..128.
    cosines: Vec<f32>,
    /// sin(π/256 · (n + 1/2)), n in 0..256.
    pub window: Vec<f32>,
}

impl Default for Mdct {
    fn default() -> Self {
        Self::new()
    }
}

impl Mdct {
    pub fn new() -> Mdct {
        let n = 2 * HALF;
        let mut cosines = vec![0f32; n * HALF];
        for t in 0..n {
            for k in 0..HALF {
                let arg = std::f64::consts::PI / HALF as f64
                    * (t as f64 + 0.5 + HALF as f64 / 2.0)
                    * (k as f64 + 0.5);
                cosines[t * HALF + k] = arg.cos() as f32;
            }
        }
        let window = (0..n)
            .map(|t| ((std::f64::consts::PI / n as f64) * (t as f64 + 0.5)).sin() as f32)
            .collect();
        Mdct { cosines, window }
    }

    /// 256 time samples (already windowed) to 128 coefficients.
    pub fn forward(&self, input: &[f32], out: &mut [f32; HALF]) {
        out.fill(0.0);
        for (t, &x) in input.iter().enumerate().take(2 * HALF) {
            if x == 0.0 {
                continue;
            }
            let row = &self.cosines[t * HALF..(t + 1) * HALF];
            for (o, &c) in out.iter_mut().zip(row) {
                *o += x * c;
            }
        }
    }

    /// 128 coefficients to 256 time samples (to be windowed and overlapped).
    pub fn inverse(&self, coefficients: &[f32; HALF], out: &mut [f32]) {
        for (t, o) in out.iter_mut().enumerate().take(2 * HALF) {
            let row = &self.cosines[t * HALF..(t + 1) * HALF];
            *o = row.iter().zip(coefficients).map(|(c, x)| c * x).sum();
        }
    }
}
