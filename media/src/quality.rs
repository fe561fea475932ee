//! Signal measures used by tests and benchmarks to judge audio paths without
//! listening: the SNR of a received signal against its source, after the
//! best alignment, as the media tests require.

/// SNR in dB of `received` against `reference`, same length and alignment.
pub fn snr_db(reference: &[i16], received: &[i16]) -> f64 {
    let n = reference.len().min(received.len());
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &x) in reference[..n].iter().zip(&received[..n]) {
        let r = f64::from(r);
        signal += r * r;
        noise += (r - f64::from(x)).powi(2);
    }
    if noise == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (signal / noise).log10()
}

/// The best [`snr_db`] over delays of `received` from 0 to `max_lag`
/// samples, and that delay: codecs and resamplers delay their output.
pub fn aligned_snr_db(reference: &[i16], received: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (f64::NEG_INFINITY, 0);
    for lag in 0..=max_lag.min(received.len()) {
        let snr = snr_db(reference, &received[lag..]);
        if snr > best.0 {
            best = (snr, lag);
        }
    }
    best
}

/// SNR in dB of a pure tone of `hz` in `signal` (sampled at `rate`): the
/// least-squares fit of a sine and a cosine at that frequency is the signal,
/// the residual the noise. Independent of delay, fractional ones included,
/// which resamplers between unrelated rates (44.1 → 16 kHz) introduce.
pub fn tone_snr_db(signal: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let (mut ss, mut sc, mut cc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &x) in signal.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let x = f64::from(x);
        ss += s * s;
        sc += s * c;
        cc += c * c;
        xs += x * s;
        xc += x * c;
    }
    let det = ss * cc - sc * sc;
    if det.abs() < f64::EPSILON {
        return f64::NEG_INFINITY;
    }
    let a = (xs * cc - xc * sc) / det;
    let b = (xc * ss - xs * sc) / det;
    let (mut fit, mut noise) = (0.0, 0.0);
    for (i, &x) in signal.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let y = a * s + b * c;
        fit += y * y;
        noise += (f64::from(x) - y).powi(2);
    }
    if noise == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (fit / noise).log10()
}
