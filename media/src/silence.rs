//! `SilenceGate`: lets the downlink skip the client's encoder while the SIP
//! side is silent.
//!
//! Encoding Speex wideband is most of a transcoded call's CPU, and half of a
//! conversation is one side listening: the peer sends silence, or noise far
//! below speech. A frame whose level (RMS, in dBov: dB below a full-scale
//! square wave, ITU-T G.100.1) is under the threshold is quiet; once a run of
//! quiet frames has lasted the hangover, each further quiet frame is replaced
//! by one ready-made silent frame of the client's codec instead of being
//! encoded. The hangover frames are still encoded, so the encoder's memory
//! settles on silence before it stops, and the first loud frame is encoded
//! from there: speech onsets are never clipped, and nothing above the
//! threshold is ever replaced.
//!
//! (RFC 3389 comfort noise and DTX gaps never reach the encoder at all: the
//! downlink sends nothing for time without packets.)

/// Quiet frames encoded as they are before silent frames replace them:
/// 100 ms of 20 ms frames.
const HANGOVER_FRAMES: u32 = 5;

#[derive(Debug, Clone)]
pub struct SilenceGate {
    /// Sum of squares per sample below which a frame is quiet.
    mean_square_below: f64,
    quiet_run: u32,
    replaced: u64,
}

impl SilenceGate {
    /// A gate for frames quieter than `dbov` (for example -60).
    pub fn new(dbov: f64) -> SilenceGate {
        // 0 dBov is a full-scale square wave: RMS 32768.
        let rms = 32_768.0 * 10f64.powf(dbov / 20.0);
        SilenceGate {
            mean_square_below: rms * rms,
            quiet_run: 0,
            replaced: 0,
        }
    }

    /// Whether `frame` (one client frame of PCM) may be replaced by a silent
    /// frame rather than encoded.
    pub fn replace(&mut self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return false;
        }
        let sum: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        let quiet = (sum as f64 / frame.len() as f64) < self.mean_square_below;
        if !quiet {
            self.quiet_run = 0;
            return false;
        }
        self.quiet_run = self.quiet_run.saturating_add(1);
        let replace = self.quiet_run > HANGOVER_FRAMES;
        if replace {
            self.replaced += 1;
        }
        replace
    }

    /// Frames replaced so far.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f64) -> Vec<i16> {
        (0..320)
            .map(|i| (amplitude * (i as f64 * 0.3).sin()) as i16)
            .collect()
    }

    #[test]
    fn quiet_frames_are_replaced_only_after_the_hangover() {
        let mut gate = SilenceGate::new(-60.0);
        let silence = vec![0i16; 320];
        let verdicts: Vec<bool> = (0..8).map(|_| gate.replace(&silence)).collect();
        assert_eq!(
            verdicts,
            [false, false, false, false, false, true, true, true]
        );
        assert_eq!(gate.replaced(), 3);
    }

    #[test]
    fn a_loud_frame_is_never_replaced_and_restarts_the_hangover() {
        let mut gate = SilenceGate::new(-60.0);
        let silence = vec![0i16; 320];
        for _ in 0..10 {
            gate.replace(&silence);
        }
        // -40 dBov speech-like tone: encoded, and the quiet run starts over.
        assert!(!gate.replace(&tone(327.0 * 1.414)));
        assert!(!gate.replace(&silence));
    }

    #[test]
    fn the_threshold_is_in_dbov() {
        // A sine of peak A has RMS A/√2: -55 dBov is RMS 58.3, peak 82.4.
        let mut gate = SilenceGate::new(-60.0);
        for _ in 0..HANGOVER_FRAMES {
            gate.replace(&tone(82.4));
        }
        assert!(!gate.replace(&tone(82.4)), "-55 dBov is not quiet at -60");
        let mut gate = SilenceGate::new(-50.0);
        for _ in 0..HANGOVER_FRAMES {
            gate.replace(&tone(82.4));
        }
        assert!(gate.replace(&tone(82.4)), "-55 dBov is quiet at -50");
    }
}
