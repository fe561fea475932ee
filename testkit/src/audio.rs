//! Audio for the media tests: speech made by espeak-ng, codec chains run by
//! ffmpeg (the independent reference), FLV written from the audio messages a
//! client received, and PESQ scores from `tests/tools/pesq_score.py` (the
//! `pesq` Python package). Each helper fails loudly, naming what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::flash_client::FlashClient;
use crate::flv::FlvAudioTag;
use crate::sono::require_tool;

/// A scratch folder for one test's audio files, removed on drop.
pub struct AudioDir {
    pub path: PathBuf,
}

impl AudioDir {
    pub fn new(name: &str) -> AudioDir {
        let path = std::env::temp_dir().join(format!("sono-audio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a scratch folder for audio");
        AudioDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for AudioDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_AUDIO").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs ffmpeg quietly, panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    require_tool("ffmpeg", "ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("running ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Speaks `text` with espeak-ng into a mono 16-bit WAV at `rate`.
pub fn speech_wav(text: &str, rate: u32, out: &Path) {
    require_tool("espeak-ng", "espeak-ng");
    let raw = out.with_extension("espeak.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("running espeak-ng");
    assert!(status.success(), "espeak-ng failed");
    convert(&raw, rate, out);
    let _ = std::fs::remove_file(raw);
}

/// Any audio file to a mono 16-bit WAV at `rate`.
pub fn convert(input: &Path, rate: u32, out: &Path) {
    ffmpeg(&[
        "-i",
        &s(input),
        "-ac",
        "1",
        "-ar",
        &rate.to_string(),
        "-c:a",
        "pcm_s16le",
        &s(out),
    ]);
}

/// Encodes a WAV with an ffmpeg codec into `container` and decodes it back
/// to a mono WAV at `rate`: one link of an offline reference chain.
/// `codec_args` are the encoder's arguments (`-c:a g722`, `-ar 8000 -c:a pcm_mulaw`).
pub fn round_trip(input: &Path, codec_args: &[&str], container: &str, rate: u32, out: &Path) {
    let coded = out.with_extension(container);
    let mut args = vec!["-i".to_owned(), s(input), "-ac".into(), "1".into()];
    args.extend(codec_args.iter().map(|a| a.to_string()));
    args.push(s(&coded));
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    convert(&coded, rate, out);
}

/// The Speex wideband round trip Flash's side makes (ffmpeg's libspeex at
/// quality 8, one frame per packet, in FLV).
pub fn speex_round_trip(input: &Path, rate: u32, out: &Path) {
    round_trip(
        input,
        &[
            "-ar",
            "16000",
            "-c:a",
            "libspeex",
            "-cbr_quality",
            "8",
            "-frames_per_packet",
            "1",
        ],
        "flv",
        rate,
        out,
    );
}

/// Writes audio messages (FLV header byte first) as an FLV file, so ffmpeg
/// can decode what a client received.
pub fn write_flv_audio(path: &Path, tags: &[FlvAudioTag]) {
    let mut f = Vec::new();
    f.extend_from_slice(b"FLV\x01\x04\x00\x00\x00\x09");
    f.extend_from_slice(&0u32.to_be_bytes());
    for tag in tags {
        let size = tag.data.len() as u32;
        f.push(8);
        f.extend_from_slice(&size.to_be_bytes()[1..]);
        f.extend_from_slice(&tag.timestamp.to_be_bytes()[1..]);
        f.push((tag.timestamp >> 24) as u8);
        f.extend_from_slice(&[0, 0, 0]);
        f.extend_from_slice(&tag.data);
        f.extend_from_slice(&(size + 11).to_be_bytes());
    }
    std::fs::write(path, f).expect("writing an FLV file");
}

/// PESQ (`nb` at 8 kHz or `wb` at 16 kHz) of `degraded` against `reference`.
pub fn pesq(mode: &str, reference: &Path, degraded: &Path) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/pesq_score.py");
    let out = Command::new("python3")
        .arg(script)
        .args([mode, &s(reference), &s(degraded)])
        .output()
        .expect("running python3 (install python3, and pesq and numpy from PyPI)");
    assert!(
        out.status.success(),
        "pesq_score.py failed (pip install pesq numpy): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("pesq_score.py printed {text:?}"))
}

/// What `client` received on its play stream, decoded by ffmpeg to a mono
/// WAV at `rate` in `dir`. A Nellymoser client gets Speex until its first
/// Nellymoser message comes in (it plays before it publishes), then
/// Nellymoser: what came in the final codec is kept, and must be nearly all.
pub fn heard_by_client(client: &FlashClient, stream: u32, dir: &AudioDir, rate: u32) -> PathBuf {
    let tags: Vec<FlvAudioTag> = client
        .audio
        .iter()
        .filter(|(s, _, _)| *s == stream)
        .map(|(_, timestamp, data)| FlvAudioTag {
            timestamp: *timestamp,
            data: data.clone(),
        })
        .collect();
    assert!(
        tags.len() > 100,
        "the client got only {} audio messages",
        tags.len()
    );
    let last = tags.last().map_or(0, |t| t.data[0]);
    let before = tags.iter().take_while(|t| t.data[0] != last).count();
    assert!(
        before < 30,
        "{before} messages before audio down switched codec"
    );
    assert!(
        tags[before..].iter().all(|t| t.data[0] == last),
        "audio down changed codec more than once"
    );
    let flv = dir.file("client-heard.flv");
    write_flv_audio(&flv, &tags[before..]);
    let wav = dir.file("client-heard.wav");
    convert(&flv, rate, &wav);
    wav
}

/// A sine tone of `hz` for `seconds`, mono 16-bit at `rate`, as a WAV.
pub fn tone_wav(path: &Path, rate: u32, seconds: u32, hz: u32) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency={hz}:sample_rate={rate}:duration={seconds}"),
        "-c:a",
        "pcm_s16le",
        &s(path),
    ]);
}

/// 16-bit mono samples of a WAV at `rate`, through ffmpeg.
pub fn samples(wav: &Path, rate: u32) -> Vec<i16> {
    let raw = wav.with_extension("raw");
    ffmpeg(&[
        "-i",
        &wav.display().to_string(),
        "-ar",
        &rate.to_string(),
        "-ac",
        "1",
        "-f",
        "s16le",
        &raw.display().to_string(),
    ]);
    std::fs::read(&raw)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Root-mean-square level of `samples` in dB below 16-bit full scale.
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    let n = samples.len().max(1) as f64;
    let power = samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n;
    10.0 * (power.max(1e-9) / f64::from(i16::MAX).powi(2)).log10()
}
