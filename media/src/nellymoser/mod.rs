//! Nellymoser Asao, Flash's other microphone codec (FLV sound formats 4, 5
//! and 6), our own encoder and decoder. A block of 64 bytes carries 256
//! samples at whatever rate the stream has (5.5, 8, 11, 16, 22 or 44.1 kHz):
//! two halves of 128 MDCT coefficients (sine window, 50 % overlap) sharing
//! one set of 23 band energies. The bit stream is read least significant
//! bit first: 6 bits for the first band's energy, 5 bits for each later
//! band's step (116 header bits), then 198 bits of coefficients for each
//! half, shared out by [`bit_allocation`] from the energies alone.

pub mod bit_allocation;
pub mod decoder;
pub mod encoder;
pub mod mdct;
pub mod tables;

pub use decoder::NellymoserDecoder;
pub use encoder::NellymoserEncoder;

/// Bytes in a block.
pub const BLOCK_BYTES: usize = 64;
/// Samples a block carries.
pub const BLOCK_SAMPLES: usize = 256;
/// Coefficients in a half-block, and those that carry audio.
pub const HALF: usize = 128;
pub const FILL_LEN: usize = 124;
pub const BANDS: usize = 23;
pub const HEADER_BITS: usize = 116;
pub const DETAIL_BITS: i32 = 198;
pub const BIT_CAP: i32 = 6;

/// Reads bits least significant first, as the format stores them.
pub struct BitReader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], at: usize) -> BitReader<'a> {
        BitReader { data, at }
    }

    /// The next `n` bits (n ≤ 8); bits past the end read as zero.
    pub fn read(&mut self, n: usize) -> u32 {
        let mut v = 0;
        for k in 0..n {
            let i = self.at + k;
            let bit = self.data.get(i / 8).map_or(0, |b| (b >> (i % 8)) & 1);
            v |= u32::from(bit) << k;
        }
        self.at += n;
        v
    }
}

/// Writes bits least significant first into a block.
pub struct BitWriter<'a> {
    data: &'a mut [u8],
    at: usize,
}

impl<'a> BitWriter<'a> {
    pub fn new(data: &'a mut [u8], at: usize) -> BitWriter<'a> {
        BitWriter { data, at }
    }

    pub fn write(&mut self, value: u32, n: usize) {
        for k in 0..n {
            let i = self.at + k;
            if let Some(byte) = self.data.get_mut(i / 8) {
                if (value >> k) & 1 == 1 {
                    *byte |= 1 << (i % 8);
                } else {
                    *byte &= !(1 << (i % 8));
                }
            }
        }
        self.at += n;
    }
}

/// The band energy (log2 × 2048) of every coefficient, from the header.
pub(crate) fn energies_of(indices: &[u8; BANDS]) -> [f32; FILL_LEN] {
    let mut out = [0f32; FILL_LEN];
    let mut value = f32::from(tables::INITIAL_ENERGY[usize::from(indices[0] & 63)]);
    let mut at = 0;
    for band in 0..BANDS {
        if band > 0 {
            value += f32::from(tables::ENERGY_DELTA[usize::from(indices[band] & 31)]);
        }
        for slot in &mut out[at..at + tables::BAND_SIZES[band]] {
            *slot = value;
        }
        at += tables::BAND_SIZES[band];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_written_read_back_least_significant_first() {
        let mut block = [0u8; 4];
        let mut w = BitWriter::new(&mut block, 3);
        w.write(0b101, 3);
        w.write(0x3F, 6);
        assert_eq!(block[0], 0b0010_1000 | 0b1100_0000, "bits 3..8 of byte 0");
        let mut r = BitReader::new(&block, 3);
        assert_eq!((r.read(3), r.read(6)), (0b101, 0x3F));
        assert_eq!(
            BitReader::new(&block, 31).read(8),
            0,
            "past the end reads zero"
        );
    }

    #[test]
    fn every_header_allocates_at_most_198_bits_of_at_most_6_each() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut indices = [0u8; BANDS];
            for i in &mut indices {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *i = (seed & 63) as u8;
            }
            let bits = bit_allocation::allocate(&energies_of(&indices));
            let total: i32 = bits.iter().sum();
            assert!(total <= DETAIL_BITS, "{total} bits for {indices:?}");
            assert!(bits.iter().all(|b| (0..=BIT_CAP).contains(b)));
        }
    }

    #[test]
    fn a_tone_round_trips_through_our_encoder_and_decoder() {
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 700.0 / 16_000.0).sin() * 9000.0) as i16
            })
            .collect();
        let mut blocks = Vec::new();
        assert_eq!(NellymoserEncoder::new().encode(&tone, &mut blocks), 62);
        assert_eq!(blocks.len(), 62 * BLOCK_BYTES);
        let mut out = Vec::new();
        assert_eq!(NellymoserDecoder::new().decode(&blocks, &mut out), 62);
        // A pure tone is what this codec keeps best: it comes back clean
        // (the codec delays by half a block).
        let snr = crate::quality::tone_snr_db(&out[1024..15_000], 700.0, 16_000);
        assert!(snr > 15.0, "tone SNR {snr:.1} dB");
    }
}
