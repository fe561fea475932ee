//! Packet-loss concealment in the PCM domain, for every codec alike: a lost
//! frame is replaced by the last pitch period heard, repeated, fading out
//! over successive losses (the idea of G.711 Appendix I, much simplified:
//! no overlap-add at the splice beyond a short cross-fade). After four
//! losses in a row the output is silence, because repeating sound longer
//! than that is worse than a gap.

/// History kept to find the pitch: 30 ms.
const HISTORY_MS: usize = 30;
/// Gains at the end of the 1st, 2nd, 3rd and 4th lost frame in a row.
const FADE: [f32; 4] = [0.9, 0.6, 0.3, 0.0];

pub struct Concealment {
    rate: usize,
    history: Vec<i16>,
    period: usize,
    /// Where in the period the next concealed sample comes from.
    phase: usize,
    run: usize,
}

impl Concealment {
    pub fn new(rate: u32) -> Concealment {
        let rate = rate.max(1000) as usize;
        Concealment {
            rate,
            history: Vec::with_capacity(rate * HISTORY_MS / 1000),
            period: 0,
            phase: 0,
            run: 0,
        }
    }

    /// Audio that was really received: it becomes the history, and ends a
    /// run of losses. After a loss its first few milliseconds are
    /// cross-faded from the concealment's continuation into the real
    /// signal, so the splice does not click.
    pub fn received(&mut self, pcm: &mut [i16]) {
        if self.run > 0 && self.period > 0 {
            let gain = FADE[(self.run - 1).min(3)];
            let n = (self.rate / 200).min(pcm.len()); // 5 ms
            let base = self.history.len() - self.period;
            for (i, sample) in pcm[..n].iter_mut().enumerate() {
                let w = (i + 1) as f32 / (n + 1) as f32;
                let extrapolated = f32::from(self.history[base + self.phase]) * gain;
                self.phase = (self.phase + 1) % self.period;
                *sample = (f32::from(*sample) * w + extrapolated * (1.0 - w)) as i16;
            }
        }
        let keep = self.rate * HISTORY_MS / 1000;
        if pcm.len() >= keep {
            self.history.clear();
            self.history.extend_from_slice(&pcm[pcm.len() - keep..]);
        } else {
            let excess = (self.history.len() + pcm.len()).saturating_sub(keep);
            self.history.drain(..excess.min(self.history.len()));
            self.history.extend_from_slice(pcm);
        }
        self.run = 0;
    }

    /// `samples` of concealment for one lost frame, appended to `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.run == 0 {
            self.period = self.pitch_period();
            self.phase = 0;
        }
        let start_gain = if self.run == 0 {
            1.0
        } else {
            FADE[(self.run - 1).min(3)]
        };
        let end_gain = FADE[self.run.min(3)];
        self.run += 1;
        if self.period == 0 || start_gain == 0.0 {
            out.resize(out.len() + samples, 0);
            return;
        }
        let base = self.history.len() - self.period;
        for i in 0..samples {
            let g = start_gain + (end_gain - start_gain) * i as f32 / samples as f32;
            let s = f32::from(self.history[base + self.phase]) * g;
            out.push(s as i16);
            self.phase = (self.phase + 1) % self.period;
        }
    }

    /// The lag (2.5–15 ms) at which the history best matches itself; 0
    /// when there is too little history.
    fn pitch_period(&self) -> usize {
        let (min, max) = (self.rate / 400, self.rate * 15 / 1000);
        let h = &self.history;
        if h.len() < 2 * min || min == 0 {
            return 0;
        }
        let max = max.min(h.len() / 2);
        let window = &h[h.len() - max..];
        let mut best = (f64::MIN, min);
        for lag in min..=max {
            let earlier = &h[h.len() - max - lag..h.len() - lag];
            let (mut xy, mut yy) = (0.0f64, 0.0f64);
            for (&x, &y) in window.iter().zip(earlier) {
                xy += f64::from(x) * f64::from(y);
                yy += f64::from(y) * f64::from(y);
            }
            let score = if yy > 0.0 { xy / yy.sqrt() } else { 0.0 };
            if score > best.0 {
                best = (score, lag);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_signal_is_continued_then_fades_to_silence() {
        // 200 Hz at 8 kHz: a 40-sample period.
        let tone: Vec<i16> = (0..480)
            .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI / 40.0).sin() * 8000.0) as i16)
            .collect();
        let mut c = Concealment::new(8000);
        c.received(&mut tone[..320].to_vec());
        assert_eq!(c.pitch_period(), 40);
        let mut out = Vec::new();
        c.conceal(160, &mut out);
        // The first concealed frame continues the tone (nearly full gain at first).
        let snr = crate::quality::snr_db(&tone[320..360], &out[..40]);
        assert!(snr > 15.0, "continuation SNR {snr:.1} dB");
        for _ in 0..4 {
            c.conceal(160, &mut out);
        }
        assert!(
            out[4 * 160..].iter().all(|&s| s == 0),
            "silence after four losses"
        );
        c.received(&mut tone[..160].to_vec());
        let mut again = Vec::new();
        c.conceal(160, &mut again);
        assert!(
            again.iter().any(|&s| s != 0),
            "a new run starts at full gain"
        );
    }

    #[test]
    fn the_signal_after_a_loss_is_spliced_in_without_a_jump() {
        let tone: Vec<i16> = (0..800)
            .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI / 40.0).sin() * 8000.0) as i16)
            .collect();
        let mut c = Concealment::new(8000);
        c.received(&mut tone[..320].to_vec());
        let mut out = Vec::new();
        c.conceal(160, &mut out);
        // The real signal resumes with a phase jump of a quarter period.
        let mut resumed = tone[510..670].to_vec();
        let first_real = resumed[0];
        c.received(&mut resumed);
        let last_concealed = *out.last().unwrap();
        assert!(
            (i32::from(resumed[0]) - i32::from(last_concealed)).abs()
                < (i32::from(first_real) - i32::from(last_concealed)).abs(),
            "the splice moves towards the concealment"
        );
        assert_eq!(
            resumed[100..],
            tone[610..670],
            "only the first 5 ms are touched"
        );
    }

    #[test]
    fn no_history_gives_silence() {
        let mut c = Concealment::new(16_000);
        let mut out = Vec::new();
        c.conceal(320, &mut out);
        assert_eq!(out, vec![0; 320]);
    }
}
