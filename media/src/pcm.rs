//! Linear PCM as FLV carries it (Video File Format Specification v10,
//! §E.4.2.1, SoundFormat 0 and 3): unsigned 8-bit, or signed 16-bit
//! little-endian, mono or interleaved stereo. What ffmpeg publishes with
//! `-c:a pcm_s16le` or `pcm_u8`; stereo is mixed down to mono, the only
//! thing a phone call carries.

/// Why a PCM message was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PcmError {
    #[error("{0} bytes is not a whole number of sample frames")]
    PartialFrame(usize),
}

/// Appends the mono samples of one message to `out`; returns how many.
pub fn decode(
    data: &[u8],
    stereo: bool,
    sixteen_bit: bool,
    out: &mut Vec<i16>,
) -> Result<usize, PcmError> {
    let width = usize::from(sixteen_bit) + 1;
    let channels = usize::from(stereo) + 1;
    if !data.len().is_multiple_of(width * channels) {
        return Err(PcmError::PartialFrame(data.len()));
    }
    let sample = |b: &[u8]| -> i32 {
        if sixteen_bit {
            i32::from(i16::from_le_bytes([b[0], b[1]]))
        } else {
            (i32::from(b[0]) - 128) << 8
        }
    };
    let before = out.len();
    for frame in data.chunks_exact(width * channels) {
        let (left, right) = frame.split_at(width);
        let mono = if stereo {
            (sample(left) + sample(right)) / 2
        } else {
            sample(left)
        };
        out.push(mono as i16);
    }
    Ok(out.len() - before)
}

/// Appends `mono` as 16-bit little-endian bytes (audio down to a tool that
/// asked for linear PCM).
pub fn encode(mono: &[i16], out: &mut Vec<u8>) {
    for s in mono {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_stereo_is_averaged() {
        let mut data = Vec::new();
        for (l, r) in [(1000i16, 3000i16), (-32768, -32768), (32767, -32767)] {
            data.extend_from_slice(&l.to_le_bytes());
            data.extend_from_slice(&r.to_le_bytes());
        }
        let mut out = Vec::new();
        assert_eq!(decode(&data, true, true, &mut out), Ok(3));
        assert_eq!(out, vec![2000, -32768, 0]);
    }

    #[test]
    fn eight_bit_is_unsigned_around_128() {
        let mut out = Vec::new();
        assert_eq!(decode(&[128, 255, 0], false, false, &mut out), Ok(3));
        assert_eq!(out, vec![0, 127 << 8, -128 << 8]);
    }

    #[test]
    fn a_partial_frame_is_refused_whole() {
        let mut out = Vec::new();
        assert_eq!(
            decode(&[1, 2, 3], false, true, &mut out),
            Err(PcmError::PartialFrame(3))
        );
        assert_eq!(
            decode(&[1, 2], true, true, &mut out),
            Err(PcmError::PartialFrame(2))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn encode_reads_back() {
        let pcm = [0i16, 1, -1, i16::MAX, i16::MIN];
        let mut bytes = Vec::new();
        encode(&pcm, &mut bytes);
        let mut back = Vec::new();
        decode(&bytes, false, true, &mut back).unwrap();
        assert_eq!(back, pcm);
    }
}
