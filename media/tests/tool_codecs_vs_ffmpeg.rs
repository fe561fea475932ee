//! Our decoding of what RTMP tools publish (AAC, MP3, Flash ADPCM, linear
//! PCM) against ffmpeg's decoding of the same FLV files, which ffmpeg's own
//! encoders made: mixed down to mono at the stream's rate, the two must
//! agree sample for sample (ADPCM and PCM, integer algorithms) or within a
//! high SNR (AAC and MP3, where decoders differ in float rounding).

use std::path::Path;

use sono_media::aac::{AacDecoder, AacOutput};
use sono_media::mp3::Mp3Decoder;
use sono_media::quality::aligned_snr_db;
use sono_media::{adpcm, pcm};
use sono_testkit::audio::{self, AudioDir};

const SAYS: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Speech at `rate`, `channels` channels (the second a delayed copy, so a
/// wrong downmix shows), encoded by ffmpeg into FLV with `codec_args`;
/// returns the FLV audio tags and ffmpeg's own mono decoding at `rate`.
fn made_by_ffmpeg(
    dir: &AudioDir,
    name: &str,
    rate: u32,
    channels: u32,
    codec_args: &[&str],
) -> (Vec<sono_testkit::FlvAudioTag>, Vec<i16>) {
    let mono = dir.file(&format!("{name}-mono.wav"));
    audio::speech_wav(SAYS, rate, &mono);
    let src = dir.file(&format!("{name}-src.wav"));
    let filter = if channels == 2 {
        "pan=stereo|c0=c0|c1=c0,adelay=0|3"
    } else {
        "anull"
    };
    audio::ffmpeg(&["-i", &s(&mono), "-filter_complex", filter, &s(&src)]);
    let flv = dir.file(&format!("{name}.flv"));
    let mut args = vec!["-i".to_owned(), s(&src)];
    args.extend(codec_args.iter().map(|a| a.to_string()));
    args.push(s(&flv));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    audio::ffmpeg(&args);
    let tags = sono_testkit::read_flv_audio(&flv).unwrap();
    let theirs = dir.file(&format!("{name}-theirs.raw"));
    audio::ffmpeg(&[
        "-i",
        &s(&flv),
        "-ac",
        "1",
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        &s(&theirs),
    ]);
    let bytes = std::fs::read(&theirs).unwrap();
    let pcm = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (tags, pcm)
}

fn assert_close(name: &str, theirs: &[i16], ours: &[i16], min_snr: f64) {
    assert!(
        ours.len().abs_diff(theirs.len()) <= 2048,
        "{name}: we decoded {} samples, ffmpeg {}",
        ours.len(),
        theirs.len()
    );
    let (snr, lag) = aligned_snr_db(theirs, ours, 2048);
    eprintln!("{name}: SNR against ffmpeg's decoding {snr:.1} dB at lag {lag}");
    assert!(
        snr >= min_snr,
        "{name}: {snr:.1} dB against ffmpeg's decoding"
    );
}

#[test]
fn flash_adpcm_decodes_as_ffmpeg_decodes_it() {
    let dir = AudioDir::new("adpcm");
    for (rate, channels) in [(22_050, 1), (44_100, 2), (11_025, 1)] {
        let name = format!("adpcm-{rate}-{channels}");
        let (tags, theirs) = made_by_ffmpeg(
            &dir,
            &name,
            rate,
            channels,
            &["-c:a", "adpcm_swf", "-ar", &rate.to_string()],
        );
        let mut ours = Vec::new();
        for t in &tags {
            assert_eq!(t.data[0] >> 4, 1, "{name}: FLV format");
            assert_eq!(t.data[0] & 1, u8::from(channels == 2));
            adpcm::decode(&t.data[1..], channels == 2, &mut ours).unwrap();
        }
        // ffmpeg averages stereo the same way up to rounding of one step.
        assert_close(
            &name,
            &theirs,
            &ours,
            if channels == 1 { 90.0 } else { 60.0 },
        );
    }
}

#[test]
fn linear_pcm_decodes_as_ffmpeg_decodes_it() {
    let dir = AudioDir::new("pcm");
    for (codec, rate, channels) in [
        ("pcm_s16le", 44_100, 2),
        ("pcm_s16le", 22_050, 1),
        ("pcm_u8", 11_025, 1),
    ] {
        let name = format!("{codec}-{rate}-{channels}");
        let (tags, theirs) = made_by_ffmpeg(
            &dir,
            &name,
            rate,
            channels,
            &["-c:a", codec, "-ar", &rate.to_string()],
        );
        let mut ours = Vec::new();
        for t in &tags {
            let header = t.data[0];
            pcm::decode(&t.data[1..], header & 1 == 1, header & 2 == 2, &mut ours).unwrap();
        }
        assert_close(&name, &theirs, &ours, 60.0);
    }
}

#[test]
fn mp3_decodes_as_ffmpeg_decodes_it() {
    let dir = AudioDir::new("mp3");
    for (rate, channels, bitrate) in [(44_100, 2, "128k"), (22_050, 1, "32k"), (11_025, 1, "16k")] {
        let name = format!("mp3-{rate}-{channels}");
        let (tags, theirs) = made_by_ffmpeg(
            &dir,
            &name,
            rate,
            channels,
            &[
                "-c:a",
                "libmp3lame",
                "-ar",
                &rate.to_string(),
                "-b:a",
                bitrate,
            ],
        );
        let mut decoder = Mp3Decoder::new();
        let mut ours = Vec::new();
        for t in &tags {
            let got = decoder.decode(&t.data[1..], &mut ours).unwrap();
            assert_eq!(got, rate, "{name}: the rate the frames say");
        }
        assert_close(&name, &theirs, &ours, 50.0);
    }
}

#[test]
fn aac_decodes_as_ffmpeg_decodes_it() {
    let dir = AudioDir::new("aac");
    for (rate, channels) in [(48_000, 2), (44_100, 1), (16_000, 1)] {
        let name = format!("aac-{rate}-{channels}");
        let (tags, theirs) = made_by_ffmpeg(
            &dir,
            &name,
            rate,
            channels,
            &["-c:a", "aac", "-ar", &rate.to_string(), "-b:a", "96k"],
        );
        let mut decoder = AacDecoder::new();
        let mut ours = Vec::new();
        let mut configs = 0;
        for t in &tags {
            assert_eq!(t.data[0], 0xAF);
            match decoder.decode(&t.data[1..], &mut ours).unwrap() {
                AacOutput::Configured(c) => {
                    configs += 1;
                    assert_eq!((c.core_rate, u32::from(c.channels)), (rate, channels));
                }
                AacOutput::Audio { rate: r } => assert_eq!(r, rate),
            }
        }
        assert_eq!(configs, 1, "{name}: one sequence header");
        assert_close(&name, &theirs, &ours, 50.0);
    }
}
