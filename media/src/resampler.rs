//! Sample-rate conversion between the rates the two sides speak: 8 kHz
//! (G.711), 16 kHz (Speex wideband, G.722), and Nellymoser's 5.5, 11, 22 and
//! 44.1 kHz. rubato's FFT resampler does the filtering (its anti-aliasing
//! keeps > 80 dB SNR for 16→8 kHz); this type turns it into a stream: any
//! number of samples in, whatever is ready out, the rest kept for the next
//! call.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Why a resampler could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample {from} Hz to {to} Hz: {reason}")]
pub struct ResamplerError {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A mono stream resampler from one fixed rate to another.
pub struct Resampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    output: Vec<f32>,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResamplerError> {
        let err = |reason: String| ResamplerError { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("a rate of 0".into()));
        }
        let inner = if from == to {
            None
        } else {
            // Chunks of 20 ms in: the pipeline's frame, so a frame in gives
            // a frame out without waiting for a second one.
            let chunk = (from as usize / 50).max(1);
            Some(
                Fft::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                    .map_err(|e| err(e.to_string()))?,
            )
        };
        Ok(Resampler {
            inner,
            pending: Vec::new(),
            output: Vec::new(),
        })
    }

    /// Output samples by which the resampler delays the signal.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Feeds `input`, appends every output sample that is ready to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        self.pending
            .extend(input.iter().map(|&s| f32::from(s) / 32_768.0));
        let mut used = 0;
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() - used < need {
                break;
            }
            self.output.resize(inner.output_frames_next(), 0.0);
            let frames_out = self.output.len();
            let (Ok(input), Ok(mut output)) = (
                SequentialSlice::new(&self.pending[used..used + need], 1, need),
                SequentialSlice::new_mut(&mut self.output, 1, frames_out),
            ) else {
                break;
            };
            // Sizes and channel counts are what the resampler asked for,
            // so it cannot refuse them; if it did, the chunk is dropped.
            let written = match inner.process_into_buffer(&input, &mut output, None) {
                Ok((_, written)) => written,
                Err(_) => 0,
            };
            used += need;
            out.extend(
                self.output[..written]
                    .iter()
                    .map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16),
            );
        }
        self.pending.drain(..used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::tone_snr_db;

    fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<i16> {
        (0..(f64::from(rate) * seconds) as usize)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * hz / f64::from(rate)).sin() * 10_000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn twenty_ms_in_gives_twenty_ms_out_at_every_rate_pair() {
        for (from, to) in [
            (16_000, 8_000),
            (8_000, 16_000),
            (44_100, 16_000),
            (16_000, 44_100),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            let frame = vec![0i16; from as usize / 50];
            let mut out = Vec::new();
            for _ in 0..50 {
                r.process(&frame, &mut out);
            }
            assert_eq!(out.len(), to as usize, "{from} → {to}");
        }
    }

    #[test]
    fn a_tone_in_the_passband_comes_out_clean() {
        for (from, to) in [
            (16_000, 8_000),
            (8_000, 16_000),
            (44_100, 16_000),
            (11_025, 16_000),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            for chunk in tone(from, 1000.0, 1.0).chunks(97) {
                r.process(chunk, &mut out);
            }
            // Skip the filter's start; fit the tone whatever its (possibly
            // fractional) delay and call everything else noise.
            let settled = &out[to as usize / 10..];
            let snr = tone_snr_db(settled, 1000.0, to);
            assert!(snr > 60.0, "{from} → {to}: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn equal_rates_pass_samples_through_and_zero_is_refused() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&[1, 2, 3], &mut out);
        assert_eq!(out, [1, 2, 3]);
        assert!(Resampler::new(0, 8_000).is_err());
    }
}
