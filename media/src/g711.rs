//! G.711 (ITU-T Rec. G.711, 1988): µ-law and A-law companding of 16-bit
//! linear PCM at 8 kHz, one byte per sample. Encoding follows the segment
//! tables of the recommendation (µ-law with its bias of 33 on 14-bit
//! magnitudes, A-law on 13-bit magnitudes, even bits inverted); decoding
//! returns the midpoint of each quantisation interval, as the recommendation's
//! decoder tables do. RTP payload types 0 (PCMU) and 8 (PCMA), RFC 3551 §4.5.14.

/// µ-law: 16-bit linear → 8-bit code.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84; // 33 << 2: the bias on the 14-bit magnitude, in 16-bit units
    const CLIP: i32 = 32_635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0x00 };
    let magnitude = s.unsigned_abs().min(CLIP as u32) as i32 + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let segment = (7 - (magnitude << 17).leading_zeros().min(7)) as i32;
    let mantissa = (magnitude >> (segment + 3)) & 0x0F;
    !(sign | (segment << 4) as u8 | mantissa as u8)
}

/// µ-law: 8-bit code → 16-bit linear.
pub fn ulaw_decode(code: u8) -> i16 {
    let code = !code;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84;
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law: 16-bit linear → 8-bit code.
pub fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3; // 13-bit
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0x00, -s - 1) };
    let magnitude = magnitude.min(0x0FFF);
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let segment = 31 - (magnitude as u32).leading_zeros() as i32 - 4; // 1..=7
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    (sign | code as u8) ^ 0x55
}

/// A-law: 8-bit code → 16-bit linear.
pub fn alaw_decode(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        _ => ((mantissa << 4) + 0x108) << (segment - 1),
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Encodes a frame of samples, appending one byte per sample to `out`.
pub fn encode(law: Law, samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len());
    match law {
        Law::Mu => out.extend(samples.iter().map(|s| ulaw_encode(*s))),
        Law::A => out.extend(samples.iter().map(|s| alaw_encode(*s))),
    }
}

/// Decodes a payload, appending one sample per byte to `out`.
pub fn decode(law: Law, payload: &[u8], out: &mut Vec<i16>) {
    out.reserve(payload.len());
    match law {
        Law::Mu => out.extend(payload.iter().map(|c| ulaw_decode(*c))),
        Law::A => out.extend(payload.iter().map(|c| alaw_decode(*c))),
    }
}

/// Which companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, North America and Japan.
    Mu,
    /// PCMA, the rest of the world.
    A,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_and_reencodes_to_itself() {
        for code in 0..=255u8 {
            let u = ulaw_decode(code);
            // µ-law has two codes for zero (0x7F and 0xFF); both decode to 0.
            if code != 0x7F {
                assert_eq!(ulaw_encode(u), code, "µ-law {code:#04x} → {u}");
            }
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn known_points_of_the_recommendation() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32_256);
        assert_eq!(alaw_decode(0x2A), -32_256);
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            let s = i32::from(s);
            // The largest step of either law is 1024 (µ) / 1024 (A) in 16-bit units.
            assert!((u - s).abs() <= 1024, "µ-law {s} → {u}");
            assert!((a - s).abs() <= 1024, "A-law {s} → {a}");
        }
    }
}
