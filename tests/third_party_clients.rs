//! Third-party RTMP clients against the real binary: ffmpeg publishing Speex and
//! Nellymoser FLV files made from speech, every audio message counted against
//! ffprobe; python-librtmp (Debian's librtmp) invoking phone API methods.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sono_testkit::{require_tool, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sono-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A spoken sentence, as a Flash client's microphone would hear it.
fn speech_wav(dir: &Path) -> PathBuf {
    require_tool("espeak-ng", "espeak-ng");
    let wav = dir.join("speech.wav");
    run(Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("Hello, this is sono. The quick brown fox jumps over the lazy dog, twice a day."));
    wav
}

fn encode_flv(wav: &Path, out: &Path, codec_args: &[&str]) {
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args(codec_args)
        .args(["-f", "flv"])
        .arg(out));
}

fn audio_packets(flv: &Path) -> u64 {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-count_packets",
            "-show_entries",
        ])
        .args(["stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(flv));
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe said {out:?}"))
}

fn ffmpeg_publish(sono: &Sono, flv: &Path, stream: &str) {
    let url = format!("rtmp://{}/phone/{stream}", sono.rtmp);
    run(Command::new("timeout")
        .args(["60", "ffmpeg", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(flv)
        .args(["-c", "copy", "-f", "flv"])
        .arg(url));
}

fn wait_metric(sono: &Sono, name: &str, expected: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = sono.metric(name);
        if v == expected || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ffmpeg_publishes_speex_and_nellymoser_and_every_audio_message_arrives() {
    require_tool("ffmpeg", "ffmpeg");
    require_tool("ffprobe", "ffmpeg");
    let dir = workdir("ffmpeg");
    let wav = speech_wav(&dir);
    let sono = Sono::start(SONO, "");

    let speex = dir.join("speex.flv");
    encode_flv(
        &wav,
        &speex,
        &["-ac", "1", "-ar", "16000", "-c:a", "libspeex"],
    );
    let n = audio_packets(&speex);
    assert!(n > 50, "the Speex file has only {n} packets");
    ffmpeg_publish(&sono, &speex, "speex");
    let got = wait_metric(
        &sono,
        "sono_rtmp_audio_messages_received_total{codec=\"speex\"}",
        n as f64,
    );
    assert_eq!(
        got, n as f64,
        "Speex audio messages received vs ffprobe's count"
    );

    let mut nelly_total = 0;
    for rate in ["8000", "16000", "22050", "44100"] {
        let flv = dir.join(format!("nelly{rate}.flv"));
        encode_flv(&wav, &flv, &["-ac", "1", "-ar", rate, "-c:a", "nellymoser"]);
        let n = audio_packets(&flv);
        assert!(n > 20, "the Nellymoser {rate} Hz file has only {n} packets");
        nelly_total += n;
        ffmpeg_publish(&sono, &flv, &format!("nelly{rate}"));
        let got = wait_metric(
            &sono,
            "sono_rtmp_audio_messages_received_total{codec=\"nellymoser\"}",
            nelly_total as f64,
        );
        assert_eq!(
            got, nelly_total as f64,
            "Nellymoser {rate} Hz messages received vs ffprobe"
        );
    }
    assert_eq!(
        sono.metric("sono_rtmp_connections_closed_on_error_total"),
        0.0
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn librtmp_call(sono: &Sono, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/librtmp_call.py");
    let probe = Command::new("python3")
        .args(["-c", "import librtmp"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "python-librtmp is missing: pip install python-librtmp (needs librtmp-dev, libffi-dev; scripts/install-deps.sh does it)"
    );
    let url = format!("rtmp://{}/phone", sono.rtmp);
    let out = run(Command::new("timeout")
        .args(["20", "python3"])
        .arg(script)
        .arg(url)
        .args(args));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("librtmp_call printed {out:?}: {e}"))
}

#[test]
fn librtmp_invokes_phone_methods() {
    let sono = Sono::start(SONO, "[log]\nlevel = \"debug\"\n");
    let reg = librtmp_call(&sono, &["register"]);
    let uri = reg["result"]["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("register answered {reg}"));
    assert!(
        uri.starts_with("sip:sono-") && uri.ends_with("@127.0.0.1"),
        "{uri}"
    );
    assert_eq!(reg["result"]["level"], "status");

    let dial = librtmp_call(&sono, &["dial"]);
    assert_eq!(dial["error"]["code"], "Sono.Call.NoUri", "{dial}");
    let dtmf = librtmp_call(&sono, &["sendDTMF", "12x"]);
    assert_eq!(dtmf["error"]["code"], "Sono.DTMF.Invalid", "{dtmf}");
    let reg = librtmp_call(
        &sono,
        &["register", "alice", "registrar.example:5090", "", "secret"],
    );
    assert_eq!(reg["error"]["code"], "Sono.Registration.Failed", "{reg}");
    // The password never reaches the log, even at debug level where requests are logged.
    assert!(
        sono.log().contains("RegisterRequest"),
        "requests were not logged at debug level"
    );
    assert!(
        !sono.log().contains("secret"),
        "a password was logged:\n{}",
        sono.log()
    );
}

#[test]
fn the_test_client_publishes_speech_as_flash_does_in_real_time() {
    require_tool("ffmpeg", "ffmpeg");
    let dir = workdir("flash-speex");
    let wav = speech_wav(&dir);
    let sono = Sono::start(
        SONO,
        "[rtmp]\nidle_timeout = \"3s\"\nping_interval = \"1s\"\n",
    );
    let mut c =
        sono_testkit::FlashClient::connect(sono.rtmp, "phone", sono_rtmp::ObjectEncoding::Amf3)
            .unwrap();
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    let speaker = c.create_stream().unwrap();
    c.play(speaker, "speaker").unwrap();
    let started = Instant::now();
    let sent = c.publish_wav_as_speex(mic, &wav).unwrap();
    // One 20 ms frame per message, paced like a microphone.
    let audio_ms = sent as u128 * 20;
    assert!(
        started.elapsed().as_millis() + 100 >= audio_ms,
        "{sent} messages sent in {:?}, faster than real time",
        started.elapsed()
    );
    let got = wait_metric(
        &sono,
        "sono_rtmp_audio_messages_received_total{codec=\"speex\"}",
        sent as f64,
    );
    assert_eq!(got, sent as f64);
    std::fs::remove_dir_all(&dir).ok();
}
