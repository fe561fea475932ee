//! Flash's ADPCM (SWF File Format Specification v19, "ADPCM compression";
//! FLV SoundFormat 1): what ffmpeg publishes with `-c:a adpcm_swf`.
//!
//! A message starts with a 2-bit code size (2 to 5 bits a sample), then
//! packets: per channel a 16-bit signed initial sample and a 6-bit step
//! index, then up to 4095 codes per channel, interleaved. Each code is
//! decoded the IMA ADPCM way: the step from the index, the sign in the top
//! bit, the index moved by a per-size table. Bits are read most significant
//! first. Stereo is mixed down to mono.

/// The IMA ADPCM step sizes, by index.
const STEPS: [i32; 89] = [
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66,
    73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449,
    494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272,
    2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493,
    10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767,
];

/// How the step index moves after a code of 2, 3, 4 or 5 bits, by its
/// magnitude bits.
const INDEX_MOVES: [&[i32]; 4] = [
    &[-1, 2],
    &[-1, -1, 2, 4],
    &[-1, -1, -1, -1, 2, 4, 6, 8],
    &[-1, -1, -1, -1, -1, -1, -1, -1, 1, 2, 4, 6, 8, 10, 13, 16],
];

/// Codes per channel after a packet's initial sample.
const CODES_PER_PACKET: usize = 4095;

/// Why an ADPCM message was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdpcmError {
    #[error("an ADPCM message too short for its header")]
    Truncated,
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn left(&self) -> usize {
        self.data.len() * 8 - self.at
    }

    /// `n` ≤ 16 bits; the caller checked that they are there.
    fn read(&mut self, n: usize) -> u32 {
        let mut v = 0u32;
        for _ in 0..n {
            let bit = (self.data[self.at / 8] >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.at += 1;
        }
        v
    }
}

#[derive(Clone, Copy, Default)]
struct Channel {
    predictor: i32,
    index: usize,
}

impl Channel {
    fn decode(&mut self, code: u32, bits: usize) -> i32 {
        let sign = 1u32 << (bits - 1);
        let mut step = STEPS[self.index];
        let mut diff = 0;
        let mut k = sign >> 1;
        while k > 0 {
            if code & k != 0 {
                diff += step;
            }
            step >>= 1;
            k >>= 1;
        }
        diff += step;
        self.predictor = if code & sign != 0 {
            self.predictor - diff
        } else {
            self.predictor + diff
        }
        .clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        let moved = self.index as i32 + INDEX_MOVES[bits - 2][(code & (sign - 1)) as usize];
        self.index = moved.clamp(0, STEPS.len() as i32 - 1) as usize;
        self.predictor
    }
}

/// Appends the mono samples of one ADPCM message to `out`; returns how
/// many. Trailing bits too few for a whole packet header or code are
/// padding, as the format pads messages to a byte.
pub fn decode(data: &[u8], stereo: bool, out: &mut Vec<i16>) -> Result<usize, AdpcmError> {
    let channels = usize::from(stereo) + 1;
    let mut bits = Bits { data, at: 0 };
    if bits.left() < 2 + 22 * channels {
        return Err(AdpcmError::Truncated);
    }
    let size = bits.read(2) as usize + 2;
    let before = out.len();
    let mut state = [Channel::default(); 2];
    let mix = |s: &[i32]| -> i16 { (s.iter().sum::<i32>() / s.len() as i32) as i16 };
    while bits.left() >= 22 * channels {
        let mut first = [0i32; 2];
        for (c, ch) in state.iter_mut().enumerate().take(channels) {
            ch.predictor = i32::from(bits.read(16) as u16 as i16);
            ch.index = (bits.read(6) as usize).min(STEPS.len() - 1);
            first[c] = ch.predictor;
        }
        out.push(mix(&first[..channels]));
        let mut codes = 0;
        while codes < CODES_PER_PACKET && bits.left() >= size * channels {
            let mut samples = [0i32; 2];
            for (c, ch) in state.iter_mut().enumerate().take(channels) {
                samples[c] = ch.decode(bits.read(size), size);
            }
            out.push(mix(&samples[..channels]));
            codes += 1;
        }
    }
    Ok(out.len() - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_alone_gives_the_initial_sample() {
        // Code size 4 (bits 10), initial sample 0x1234, index 0, padding.
        let bits: u32 = (0b10 << 22) | (0x1234 << 6);
        let bytes = (bits << 8).to_be_bytes();
        let mut out = Vec::new();
        assert_eq!(decode(&bytes[..3], false, &mut out), Ok(1));
        assert_eq!(out, vec![0x1234]);
    }

    #[test]
    fn codes_move_the_predictor_by_the_step() {
        // 4-bit codes from 0 at index 0 (step 7): each magnitude bit adds
        // the step halved once more (7, 3, 1), then what is left (0).
        let mut ch = Channel::default();
        assert_eq!(ch.decode(0b0111, 4), 7 + 3 + 1);
        assert_eq!(ch.index, 8);
        // The sign bit subtracts; a code of 0 shrinks the step index.
        let mut ch = Channel {
            predictor: 100,
            index: 10,
        };
        assert_eq!(ch.decode(0b1000, 4), 100 - (17 >> 3));
        assert_eq!(ch.index, 9);
    }

    #[test]
    fn the_predictor_saturates() {
        let mut ch = Channel {
            predictor: 32_000,
            index: 88,
        };
        assert_eq!(ch.decode(0b0111, 4), 32_767);
        assert_eq!(ch.index, 88);
    }

    #[test]
    fn too_short_is_refused() {
        assert_eq!(
            decode(&[0x80, 0], false, &mut Vec::new()),
            Err(AdpcmError::Truncated)
        );
        assert_eq!(
            decode(&[0; 5], true, &mut Vec::new()),
            Err(AdpcmError::Truncated)
        );
    }
}
