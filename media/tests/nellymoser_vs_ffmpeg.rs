//! Our Nellymoser decoder against ffmpeg's on files ffmpeg's encoder made,
//! and ffmpeg's decoder on what our encoder makes, at the rates Flash uses.

use std::path::{Path, PathBuf};

use sono_media::nellymoser::{NellymoserDecoder, NellymoserEncoder};
use sono_media::quality::{aligned_snr_db, snr_db};
use sono_testkit::audio::{self, AudioDir};

const SAYS: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.";

fn read_wav(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    // ffmpeg's WAV: a 44-byte header for pcm_s16le mono (no extra chunks with -bitexact).
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    bytes[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn write_wav(path: &Path, rate: u32, pcm: &[i16]) {
    let mut b = Vec::new();
    let len = (pcm.len() * 2) as u32;
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&len.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// ffmpeg encodes speech at `rate`; returns the Nellymoser blocks (FLV tag
/// bodies without their header byte), ffmpeg's own decoding, and the source.
fn ffmpeg_made(dir: &AudioDir, rate: u32) -> (Vec<u8>, Vec<i16>, PathBuf) {
    let src = dir.file(&format!("src-{rate}.wav"));
    audio::speech_wav(SAYS, rate, &src);
    let flv = dir.file(&format!("theirs-{rate}.flv"));
    audio::ffmpeg(&["-i", &s(&src), "-c:a", "nellymoser", &s(&flv)]);
    let tags = sono_testkit::read_flv_audio(&flv).unwrap();
    let blocks: Vec<u8> = tags.iter().flat_map(|t| t.data[1..].to_vec()).collect();
    let decoded = dir.file(&format!("theirs-{rate}-decoded.wav"));
    audio::ffmpeg(&[
        "-i",
        &s(&flv),
        "-c:a",
        "pcm_s16le",
        "-bitexact",
        &s(&decoded),
    ]);
    (blocks, read_wav(&decoded), src)
}

/// PESQ (wideband from 16 kHz up, else narrowband) against the source of
/// `ours` and of ffmpeg's own round trip (`ffmpeg_made` left it in `dir`).
fn pesq_against_ffmpeg(
    dir: &AudioDir,
    rate: u32,
    src: &Path,
    ours: &Path,
) -> (&'static str, f64, f64) {
    let (mode, pesq_rate) = if rate >= 16_000 {
        ("wb", 16_000)
    } else {
        ("nb", 8000)
    };
    let reference = dir.file(&format!("ref-{rate}.wav"));
    audio::convert(src, pesq_rate, &reference);
    let ours_r = dir.file(&format!("ours-{rate}-r.wav"));
    audio::convert(ours, pesq_rate, &ours_r);
    let theirs_r = dir.file(&format!("theirs-{rate}-r.wav"));
    audio::convert(
        &dir.file(&format!("theirs-{rate}-decoded.wav")),
        pesq_rate,
        &theirs_r,
    );
    (
        mode,
        audio::pesq(mode, &reference, &ours_r),
        audio::pesq(mode, &reference, &theirs_r),
    )
}

#[test]
fn our_decoder_matches_ffmpegs_on_ffmpeg_made_files() {
    let dir = AudioDir::new("nelly-dec");
    for rate in [8000, 16_000, 11_025, 22_050, 44_100] {
        let (blocks, theirs, src) = ffmpeg_made(&dir, rate);
        let mut ours = Vec::new();
        let n = NellymoserDecoder::new().decode(&blocks, &mut ours);
        assert_eq!(n * 64, blocks.len());
        let len = ours.len().min(theirs.len());
        let dot: f64 = ours[..len]
            .iter()
            .zip(&theirs[..len])
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let own: f64 = ours[..len].iter().map(|a| f64::from(*a).powi(2)).sum();
        let (snr, lag) = aligned_snr_db(&theirs[..len - 512], &ours, 300);
        eprintln!(
            "{rate} Hz: ratio {:.4}, SNR {snr:.1} dB at lag {lag}, plain {:.1}",
            dot / own,
            snr_db(&theirs[..len], &ours[..len])
        );
        if snr >= 30.0 {
            continue;
        }
        // Coefficients without bits are noise with a random sign, in
        // ffmpeg as in ours, so sample-exact agreement is not possible:
        // then the other measure, PESQ of both against the source.
        let ours_wav = dir.file(&format!("ours-{rate}.wav"));
        write_wav(&ours_wav, rate, &ours);
        let (mode, p_ours, p_theirs) = pesq_against_ffmpeg(&dir, rate, &src, &ours_wav);
        eprintln!("{rate} Hz: PESQ-{mode} ours {p_ours:.2}, ffmpeg {p_theirs:.2}");
        assert!(
            (p_ours - p_theirs).abs() <= 0.1,
            "{rate} Hz: PESQ ours {p_ours:.2} vs ffmpeg {p_theirs:.2}"
        );
    }
}

/// The FLV audio header byte of Nellymoser at `rate` (FLV spec, annex E).
fn nelly_header(rate: u32) -> u8 {
    match rate {
        8000 => 0x52,
        16_000 => 0x42,
        5512 => 0x62,
        11_025 => 0x66,
        22_050 => 0x6A,
        _ => 0x6E,
    }
}

#[test]
fn ffmpeg_decodes_our_encoder_about_as_well_as_its_own() {
    let dir = AudioDir::new("nelly-enc");
    for rate in [8000, 16_000, 11_025, 22_050, 44_100] {
        let (_, _, src) = ffmpeg_made(&dir, rate);
        let source = read_wav(&src);
        let mut enc = NellymoserEncoder::new();
        let mut blocks = Vec::new();
        enc.encode(&source, &mut blocks);
        // Our own decoder first: the codec's round trip.
        let mut own = Vec::new();
        NellymoserDecoder::new().decode(&blocks, &mut own);
        let (own_snr, lag) = aligned_snr_db(&source[..source.len() - 1024], &own, 300);
        // As FLV tags of 4 blocks, for ffmpeg.
        let tags: Vec<sono_testkit::FlvAudioTag> = blocks
            .chunks(256)
            .enumerate()
            .map(|(i, chunk)| {
                let mut data = vec![nelly_header(rate)];
                data.extend_from_slice(chunk);
                sono_testkit::FlvAudioTag {
                    timestamp: (i as u64 * 1024 * 1000 / u64::from(rate)) as u32,
                    data,
                }
            })
            .collect();
        let flv = dir.file(&format!("ours-{rate}.flv"));
        audio::write_flv_audio(&flv, &tags);
        let decoded = dir.file(&format!("ours-{rate}-by-ffmpeg.wav"));
        audio::ffmpeg(&[
            "-i",
            &s(&flv),
            "-c:a",
            "pcm_s16le",
            "-bitexact",
            &s(&decoded),
        ]);
        let (mode, p_ours, p_theirs) = pesq_against_ffmpeg(&dir, rate, &src, &decoded);
        eprintln!(
            "{rate} Hz: our round trip SNR {own_snr:.1} dB (lag {lag}); PESQ-{mode} of ffmpeg decoding ours {p_ours:.2}, its own {p_theirs:.2}"
        );
        assert!(
            p_ours >= p_theirs - 0.3,
            "{rate} Hz: ours {p_ours:.2} vs ffmpeg's {p_theirs:.2}"
        );
    }
}
