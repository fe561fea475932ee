//! How the 198 detail bits of each half-block are shared among its 124
//! coefficients, from the band energies alone — the decoder recomputes what
//! the encoder did, so this integer arithmetic must be exact. The idea: each
//! coefficient gets about (3/4 of its log energy − an offset) bits, capped at
//! 0..6, and the offset is searched (stepping, then bisecting) until the
//! total is 198; if it stays above, the excess is cut from the end.

use super::{BIT_CAP, DETAIL_BITS, FILL_LEN};

/// The format's constants for the offset search.
const BASE_OFFSET: i32 = 4228;
const BASE_SHIFT: i32 = 19;

fn shift_by(value: i32, shift: i32) -> i32 {
    if shift > 0 {
        value << shift
    } else {
        value >> -shift
    }
}

/// Normalises `value` so its top bit is bit 30; returns the shift used
/// (31 for zero).
fn normalise(value: &mut i32) -> i32 {
    if *value == 0 {
        return 31;
    }
    let shift = 30 - (31 - value.unsigned_abs().leading_zeros() as i32);
    *value <<= shift;
    shift
}

fn bits_for(level: i16, offset: i32, shift: i32) -> i32 {
    let b = i32::from(level).wrapping_sub(offset);
    (((b >> (shift - 1)) + 1) >> 1).clamp(0, BIT_CAP)
}

fn total_bits(levels: &[i16; FILL_LEN], offset: i32, shift: i32) -> i32 {
    levels.iter().map(|&l| bits_for(l, offset, shift)).sum()
}

/// Bits per coefficient for band energies `energy` (log2 × 2048, one value
/// per coefficient).
pub fn allocate(energy: &[f32; FILL_LEN]) -> [i32; FILL_LEN] {
    let mut peak = energy.iter().fold(0i32, |m, &e| m.max(e as i32));
    let mut shift = -16 + normalise(&mut peak);

    let mut levels = [0i16; FILL_LEN];
    let mut sum = 0i32;
    for (level, &e) in levels.iter_mut().zip(energy) {
        let scaled = shift_by(e as i32, shift) as i16;
        *level = ((3 * i32::from(scaled)) >> 2) as i16;
        sum += i32::from(*level);
    }
    shift += 11;
    let unit = shift;
    debug_assert!((1..32).contains(&unit));
    // Wrapping, like the reference's int arithmetic, for degenerate blocks.
    sum = sum.wrapping_sub(DETAIL_BITS.wrapping_shl(shift as u32));
    let extra = normalise(&mut sum);
    let mut low = (BASE_OFFSET * (sum >> 16)) >> 15;
    low = shift_by(low, unit - (BASE_SHIFT + unit + extra - 31));

    let mut total = total_bits(&levels, low, unit);
    if total != DETAIL_BITS {
        let mut step = total - DETAIL_BITS;
        let mut doublings = 0;
        while step.abs() <= 16_383 {
            step *= 2;
            doublings += 1;
        }
        step = (step * BASE_OFFSET) >> 15;
        step = shift_by(step, unit - (BASE_SHIFT + doublings - 15));

        // Step the offset until the total crosses 198...
        let (mut previous, mut previous_total) = (low, total);
        let mut rounds = 1;
        while rounds < 20 {
            previous = low;
            previous_total = total;
            low = low.wrapping_add(step);
            total = total_bits(&levels, low, unit);
            if (total - DETAIL_BITS) * (previous_total - DETAIL_BITS) <= 0 {
                break;
            }
            rounds += 1;
        }
        // ...then bisect between the last two offsets.
        let (mut high, mut high_total, mut low_total);
        if total > DETAIL_BITS {
            high = low;
            high_total = total;
            low = previous;
            low_total = previous_total;
        } else {
            high = previous;
            high_total = previous_total;
            low_total = total;
        }
        while total != DETAIL_BITS && rounds <= 19 {
            let middle = ((i64::from(high) + i64::from(low)) >> 1) as i32;
            total = total_bits(&levels, middle, unit);
            if total > DETAIL_BITS {
                high = middle;
                high_total = total;
            } else {
                low = middle;
                low_total = total;
            }
            rounds += 1;
        }
        if (high_total - DETAIL_BITS).abs() >= (low_total - DETAIL_BITS).abs() {
            total = low_total;
        } else {
            low = high;
            total = high_total;
        }
    }

    let mut bits = [0i32; FILL_LEN];
    for (b, &level) in bits.iter_mut().zip(&levels) {
        *b = bits_for(level, low, unit);
    }
    if total > DETAIL_BITS {
        // Cut the excess from the coefficient where the running total
        // passes 198; the ones after it get nothing.
        let mut running = 0;
        let mut i = 0;
        while running < DETAIL_BITS {
            running += bits[i];
            i += 1;
        }
        bits[i - 1] -= running - DETAIL_BITS;
        for b in &mut bits[i..] {
            *b = 0;
        }
    }
    bits
}
