//! The phone in a plain browser: Debian's headless Chromium (playwright-core,
//! `tests/browser/webrtc_call.mjs`) loads the demo page, opens a WebRTC
//! session (`POST /api/v1/webrtc`) with Chromium's fake microphone playing
//! a sentence, and calls baresip through sono, or answers baresip's call.
//! What baresip recorded and what the page heard are scored with PESQ
//! against the same codec chain applied offline (Opus ⇄ PCMU, Opus ⇄
//! G.722), each way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{browser_dir, Baresip, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
/// sono may cost at most this much MOS over the offline chain, each way.
const MAX_COST: f64 = 0.3;

const PAGE_SAYS: &str =
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.";
const PEER_SAYS: &str =
    "Please call Stella. Ask her to bring these things with her from the store.";

/// One browser at a time: each test runs Chromium, sono and a peer, and the
/// PESQ figures are timing-sensitive; two at once on two cores would load
/// the machine for each other.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// sono with its media and WebRTC ports apart from the other tests' peers.
fn start_sono(extra: &str) -> Sono {
    Sono::start(
        SONO,
        &format!(
            "[media]\nrtp_port_min = 37000\nrtp_port_max = 37999\n\
             [webrtc]\nport_min = 38000\nport_max = 38999\n{extra}"
        ),
    )
}

/// A run of `node webrtc_call.mjs …`: its stdout lines as they come.
struct PageRun {
    child: Option<Child>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl PageRun {
    /// Starts the page, recording what it hears to `recording`.
    fn start(
        sono: &Sono,
        capture: &Path,
        recording: &Path,
        mode: &str,
        uri: &str,
        seconds: u32,
        ending: &str,
    ) -> PageRun {
        Self::start_with(
            sono, capture, recording, mode, uri, seconds, ending, None, None,
        )
    }

    /// As [`PageRun::start`]; with `attach`, the page attaches its audio to
    /// the connection that token (or stream key) controls.
    #[allow(clippy::too_many_arguments)]
    fn start_with(
        sono: &Sono,
        capture: &Path,
        recording: &Path,
        mode: &str,
        uri: &str,
        seconds: u32,
        ending: &str,
        attach: Option<&str>,
        codec: Option<&str>,
    ) -> PageRun {
        let mut command = Command::new("node");
        if let Some(token) = attach {
            command.env("ATTACH_TOKEN", token);
        }
        if let Some(codec) = codec {
            command.env("PAGE_CODEC", codec);
        }
        let mut child = command
            .current_dir(browser_dir())
            .env("RECORDING", recording)
            .arg("webrtc_call.mjs")
            .arg(format!("http://{}", sono.http))
            .arg(capture)
            .args([mode, uri, &seconds.to_string(), ending])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting node");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        PageRun {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next JSON line that has `key`, within a minute.
    fn wait_for(&mut self, key: &str, sono: &Sono) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "the page never said {key:?}: {:?}\n{}",
                    self.seen,
                    sono.log()
                );
            };
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v.get(key).is_some() {
                    return v;
                }
                if v.get("error").is_some() {
                    panic!("the page failed: {line}\n{}", sono.log());
                }
            }
        }
    }

    /// The page's result (its last line), once it exited successfully.
    fn finish(mut self, sono: &Sono) -> serde_json::Value {
        let child = self.child.take().expect("running");
        let status = sono_testkit::wait_or_kill(child, Duration::from_secs(90));
        // The reader thread ends with the pipe; collect what it still has.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "the browser run failed: {:?}\n{stderr}\n{}",
            self.seen,
            sono.log()
        );
        let last = self.seen.last().cloned().unwrap_or_default();
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {:?}", self.seen))
    }
}

/// The page's recording (16-bit PCM at 48 kHz) as a WAV at `rate`.
fn page_heard(raw: &Path, rate: u32) -> PathBuf {
    let bytes = std::fs::metadata(raw).map_or(0, |m| m.len());
    assert!(bytes > 48_000 * 2, "{bytes} bytes recorded");
    let wav = raw.with_extension("wav");
    audio::ffmpeg(&[
        "-f",
        "s16le",
        "-ar",
        "48000",
        "-ac",
        "1",
        "-i",
        &raw.display().to_string(),
        "-ar",
        &rate.to_string(),
        &wav.display().to_string(),
    ]);
    wav
}

/// Opus as a browser sends it (libopus, 48 kHz, 32 kbit/s, VoIP), decoded
/// to a WAV at `rate`: the WebRTC link of an offline chain.
fn opus_round_trip(input: &Path, rate: u32, out: &Path) {
    audio::round_trip(
        input,
        &[
            "-ar",
            "48000",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-application",
            "voip",
        ],
        "ogg",
        rate,
        out,
    );
}

struct SipSide {
    baresip_codec: &'static str,
    /// baresip's audio pipeline (its Opus runs at 48 kHz, in stereo).
    baresip_rate: u32,
    baresip_channels: u32,
    /// PESQ's mode and rate.
    mode: &'static str,
    rate: u32,
    /// The SIP codec's link of the offline chain (ffmpeg's encoder arguments
    /// and container); `None` when the browser's Opus passes through.
    encode: Option<(&'static [&'static str], &'static str)>,
    /// The page prefers this codec to Opus (`codec` of sono.js): the
    /// browser's G.711 or G.722 then passes through to the peer, both ways.
    page_codec: Option<&'static str>,
}

const PCMU: SipSide = SipSide {
    baresip_codec: "PCMU/8000/1",
    baresip_rate: 8000,
    baresip_channels: 1,
    mode: "nb",
    rate: 8000,
    encode: Some((&["-ar", "8000", "-c:a", "pcm_mulaw"], "au")),
    page_codec: None,
};

const PCMU_FROM_THE_PAGE: SipSide = SipSide {
    page_codec: Some("pcmu"),
    ..PCMU
};

const G722: SipSide = SipSide {
    baresip_codec: "G722/16000/1",
    baresip_rate: 16_000,
    baresip_channels: 1,
    mode: "wb",
    rate: 16_000,
    encode: Some((&["-ar", "16000", "-c:a", "g722"], "g722")),
    page_codec: None,
};

const G722_FROM_THE_PAGE: SipSide = SipSide {
    page_codec: Some("g722"),
    ..G722
};

const OPUS: SipSide = SipSide {
    baresip_codec: "opus/48000/2",
    baresip_rate: 48_000,
    baresip_channels: 2,
    mode: "wb",
    rate: 16_000,
    encode: None,
    page_codec: None,
};

/// The page dials baresip; both talk; PESQ each way against the offline chain.
fn page_calls_baresip(sip: SipSide) {
    let name = format!(
        "webrtc-{}{}",
        sip.baresip_codec.split('/').next().unwrap_or("codec"),
        sip.page_codec
            .map_or(String::new(), |c| format!("-page-{c}"))
    );
    let dir = AudioDir::new(&name);
    let page_src = dir.file("page-src.wav");
    let peer_src = dir.file("peer-src.wav");
    audio::speech_wav(PAGE_SAYS, 48_000, &page_src);
    audio::speech_wav(PEER_SAYS, 16_000, &peer_src);
    // Chromium's fake microphone loops its file from getUserMedia on: the
    // sentence sits between silences so the call, answered within a second
    // of the page connecting, hears all of it once.
    let capture = dir.file("capture.wav");
    audio::ffmpeg(&[
        "-i",
        &page_src.display().to_string(),
        "-af",
        "adelay=2500,apad=pad_dur=6",
        "-ar",
        "48000",
        &capture.display().to_string(),
    ]);
    let peer_play = dir.file("peer-play.wav");
    audio::ffmpeg(&[
        "-i",
        &peer_src.display().to_string(),
        "-af",
        "adelay=1500,apad=pad_dur=20",
        "-ar",
        &sip.baresip_rate.to_string(),
        "-ac",
        &sip.baresip_channels.to_string(),
        &peer_play.display().to_string(),
    ]);
    let page_ref = dir.file("page-ref.wav");
    audio::convert(&page_src, sip.rate, &page_ref);
    let peer_ref = dir.file("peer-ref.wav");
    audio::convert(&peer_src, sip.rate, &peer_ref);

    // The offline chains. Up: page → Opus → PCMU/G.722 (or the same Opus)
    // → baresip; down: baresip → PCMU/G.722 (or Opus) → Opus → the page.
    let up_offline_wav = dir.file("up-offline.wav");
    let down_offline_wav = dir.file("down-offline.wav");
    match sip.encode {
        // G.711 or G.722 from the browser to the peer and back: one link.
        Some((args, container)) if sip.page_codec.is_some() => {
            audio::round_trip(&page_src, args, container, sip.rate, &up_offline_wav);
            audio::round_trip(&peer_src, args, container, sip.rate, &down_offline_wav);
        }
        Some((args, container)) => {
            let up_opus = dir.file("up-opus.wav");
            opus_round_trip(&page_src, 48_000, &up_opus);
            audio::round_trip(&up_opus, args, container, sip.rate, &up_offline_wav);
            let down_sip = dir.file("down-sip.wav");
            audio::round_trip(&peer_src, args, container, 48_000, &down_sip);
            opus_round_trip(&down_sip, sip.rate, &down_offline_wav);
        }
        None => {
            opus_round_trip(&page_src, sip.rate, &up_offline_wav);
            opus_round_trip(&peer_src, sip.rate, &down_offline_wav);
        }
    }
    let up_offline = audio::pesq(sip.mode, &page_ref, &up_offline_wav);
    let down_offline = audio::pesq(sip.mode, &peer_ref, &down_offline_wav);

    // Three calls, and the median each way: what the page hears goes
    // through Chromium's adaptive playout, whose time-stretching on this
    // shared machine moves one call's score by 0.1 now and then (seen:
    // 3.47 to 3.59 down over PCMU, the offline chain 3.70).
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    let mut last_log = String::new();
    for call in 0..3 {
        let (up, down, log) =
            one_call(&sip, &dir, call, &capture, &peer_play, &page_ref, &peer_ref);
        ups.push(up);
        downs.push(down);
        last_log = log;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (up, down) = (median(&mut ups), median(&mut downs));
    eprintln!(
        "{name} PESQ-{}: up {up:.2} (offline {up_offline:.2}; calls {ups:.2?}), down {down:.2} (offline {down_offline:.2}; calls {downs:.2?})",
        sip.mode
    );
    assert!(
        up >= up_offline - MAX_COST,
        "audio up through sono scores {up:.2}, the offline chain {up_offline:.2}\n{last_log}"
    );
    assert!(
        down >= down_offline - MAX_COST,
        "audio down through sono scores {down:.2}, the offline chain {down_offline:.2}\n{last_log}"
    );
}

/// One call of [`page_calls_baresip`]: PESQ up and down, and sono's log.
#[allow(clippy::too_many_arguments)]
fn one_call(
    sip: &SipSide,
    dir: &AudioDir,
    call: u32,
    capture: &Path,
    peer_play: &Path,
    page_ref: &Path,
    peer_ref: &Path,
) -> (f64, f64, String) {
    let peer = Baresip::start_with(
        peer_play,
        (39000, 39999),
        Duration::from_secs(60),
        sip.baresip_codec,
        sip.baresip_rate,
    );
    let sono = start_sono("[log]\nlevel = \"info,sono_actors::media_bridge=debug\"\n");
    let recording = dir.file(&format!("page-heard-{call}.s16"));
    let run = PageRun::start_with(
        &sono,
        capture,
        &recording,
        "dial",
        &peer.uri(),
        9,
        "page-hangs-up",
        None,
        sip.page_codec,
    );
    // On failure, baresip's side of the story too.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.finish(&sono)))
        .unwrap_or_else(|e| {
            eprintln!("baresip's log:\n{}", peer.log());
            std::panic::resume_unwind(e)
        });
    eprintln!(
        "page connected in {} ms; stats {}",
        result["connectMs"], result["stats"]
    );
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    assert_call_ended_on_the_page(&result);
    // DTMF from the keypad (REST) and from the browser's RTCDTMFSender
    // (RFC 4733 over WebRTC) both reach the peer as RFC 4733 events.
    assert_eq!(result["rtcDtmf"], true, "{result}");
    assert!(peer.wait_log("received event: '5'", WAIT), "{}", peer.log());
    assert!(
        peer.wait_log("received event: '7'", WAIT),
        "{}\n{}",
        peer.log(),
        sono.log()
    );
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let peer_heard = dir.file(&format!("peer-heard-{call}.wav"));
    audio::convert(&heard, sip.rate, &peer_heard);
    let up = audio::pesq(sip.mode, page_ref, &peer_heard);
    let page_heard = page_heard(&recording, sip.rate);
    let down = audio::pesq(sip.mode, peer_ref, &page_heard);
    if sip.encode.is_none() || sip.page_codec.is_some() {
        assert!(sono.log().contains("passthrough=true"), "{}", sono.log());
    }
    for line in sono
        .log()
        .lines()
        .filter(|l| l.contains("media stopped") || l.contains("client audio dropped"))
    {
        eprintln!("{line}");
    }
    (up, down, sono.log())
}

#[test]
fn a_page_calls_a_pcmu_peer_over_webrtc_and_each_hears_the_other() {
    let _one = one_at_a_time();
    page_calls_baresip(PCMU);
}

#[test]
fn a_page_that_prefers_pcmu_reaches_a_pcmu_peer_untouched_both_ways() {
    let _one = one_at_a_time();
    page_calls_baresip(PCMU_FROM_THE_PAGE);
}

#[test]
fn a_page_calls_a_g722_peer_over_webrtc_and_each_hears_the_other() {
    let _one = one_at_a_time();
    page_calls_baresip(G722);
}

/// Wideband with no codec work: the page prefers G.722 (Chromium's own
/// encoder), sono answers with it, and a G.722 peer gets the browser's
/// packets untouched, and the browser the peer's.
#[test]
fn a_page_that_prefers_g722_reaches_a_g722_peer_untouched_both_ways() {
    let _one = one_at_a_time();
    page_calls_baresip(G722_FROM_THE_PAGE);
}

/// A peer that speaks Opus gets the browser's packets untouched, and the
/// browser the peer's: no codec work either way.
#[test]
fn a_page_calls_an_opus_peer_and_opus_passes_through_both_ways() {
    let _one = one_at_a_time();
    page_calls_baresip(OPUS);
}

/// A tab that closes mid-call, with `ending` "tab-closes" (sono.js sends
/// its DELETE on pagehide) or "tab-vanishes" (no goodbye: sono notices the
/// browser's audio stop): the peer gets its BYE within two seconds of the
/// tab going. The session goes too: at once with the goodbye, or once its
/// event stream is found closed (keep-alives every second here) and
/// `webrtc.connect_timeout` (3 s here) has passed with no new peer
/// connection.
fn tab_goes_mid_call(ending: &str) {
    let dir = AudioDir::new(&format!("webrtc-{ending}"));
    let ToneCall {
        capture,
        recording,
        peer,
        sono,
    } = tone_call(
        &dir,
        "connect_timeout = \"3s\"\n[http]\nevent_keepalive = \"1s\"\n",
    );
    let mut run = PageRun::start(&sono, &capture, &recording, "dial", &peer.uri(), 2, ending);
    run.wait_for("closing", &sono);
    let closed = Instant::now();
    assert!(
        peer.wait_log("session closed", Duration::from_secs(5)),
        "{}\n{}",
        peer.log(),
        sono.log()
    );
    let took = closed.elapsed();
    eprintln!(
        "{ending}: the peer's call ended {} ms after the tab closed",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(2),
        "{ending}: the call ended {} ms after the tab closed\n{}",
        took.as_millis(),
        sono.log()
    );
    assert!(
        sono.wait_log("WebRTC session closed", WAIT),
        "{}",
        sono.log()
    );
    if ending == "tab-vanishes" {
        assert!(
            sono.log()
                .contains("the page is gone: no peer connection nor event stream"),
            "{}",
            sono.log()
        );
    }
    for line in sono
        .log()
        .lines()
        .filter(|l| l.contains("closing WebRTC") || l.contains("WebRTC session closed"))
    {
        eprintln!("{line}");
    }
    run.finish(&sono);
}

/// A browser that stops dead (its processes stopped with SIGSTOP, as a
/// lost network or a hung machine looks to sono: no audio, no goodbye):
/// after `webrtc.media_timeout` (1 s) sono ends the call.
#[test]
fn a_browser_that_stops_sending_is_gone_after_the_media_timeout() {
    let _one = one_at_a_time();
    let dir = AudioDir::new("webrtc-freeze");
    let ToneCall {
        capture,
        recording,
        peer,
        sono,
    } = tone_call(&dir, "");
    let mut run = PageRun::start(
        &sono,
        &capture,
        &recording,
        "dial",
        &peer.uri(),
        2,
        "tab-freezes",
    );
    run.wait_for("freeze", &sono);
    // Chromium's processes of this run: the ones whose command line names
    // this test's capture file.
    let pgrep = Command::new("pgrep")
        .arg("-f")
        .arg(capture.display().to_string())
        .output()
        .expect("pgrep (procps)");
    let pids: Vec<String> = String::from_utf8_lossy(&pgrep.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(!pids.is_empty(), "no Chromium process found");
    let signal = |sig: &str| {
        let _ = Command::new("kill").arg(sig).args(&pids).status();
    };
    signal("-STOP");
    let frozen = Instant::now();
    let ended = peer.wait_log("session closed", Duration::from_secs(5));
    let took = frozen.elapsed();
    signal("-CONT");
    assert!(ended, "{}\n{}", peer.log(), sono.log());
    eprintln!(
        "frozen browser: the peer's call ended after {} ms",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "the call ended {} ms after the browser froze\n{}",
        took.as_millis(),
        sono.log()
    );
    assert!(
        sono.log().contains("the browser sent no audio for 1000 ms"),
        "{}",
        sono.log()
    );
    let result = run.finish(&sono);
    assert_call_ended_on_the_page(&result);
}

#[test]
fn a_tab_closed_mid_call_ends_the_call_within_two_seconds() {
    let _one = one_at_a_time();
    tab_goes_mid_call("tab-closes");
}

#[test]
fn a_tab_that_vanishes_without_a_goodbye_ends_the_call_within_two_seconds() {
    let _one = one_at_a_time();
    tab_goes_mid_call("tab-vanishes");
}

/// The level of a `hz` tone in a WAV (SNR of its best-fitting sine, dB).
fn tone_in(wav: &Path, hz: f64) -> f64 {
    let bytes = std::fs::read(wav).expect("a WAV");
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let pcm: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // The middle of the recording: past the call's start, before its end.
    let (a, b) = (pcm.len() / 4, pcm.len() * 3 / 4);
    sono_media::quality::tone_snr_db(&pcm[a..b], hz, rate)
}

/// baresip calls the page's implicit URI; the page accepts; each hears the
/// other's tone; the page hangs up, and refuses the next call with 486.
#[test]
fn baresip_calls_the_page_which_answers_and_then_rejects_the_next_call() {
    let _one = one_at_a_time();
    let dir = AudioDir::new("webrtc-inbound");
    let capture = dir.file("capture.wav");
    audio::tone_wav(&capture, 48_000, 30, 440);
    let peer_play = dir.file("peer.wav");
    audio::tone_wav(&peer_play, 8000, 30, 600);
    let sono = start_sono("");
    let recording = dir.file("page-heard.s16");
    let mut run = PageRun::start(&sono, &capture, &recording, "answer", "-", 4, "then-reject");
    let uri = run.wait_for("uri", &sono)["uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(uri.starts_with("sip:sono-"), "{uri}");
    // The implicit URI names sono's domain; the call goes to sono's SIP port.
    let user = uri
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or("");
    let target = format!("sip:{user}@{}", sono.sip);
    let first = Baresip::call(
        &peer_play,
        (39000, 39999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
        &target,
    );
    run.wait_for("firstCallEnded", &sono);
    assert!(first.wait_log("session closed", WAIT), "{}", first.log());
    let second = Baresip::call(
        &peer_play,
        (39000, 39999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
        &target,
    );
    let result = run.finish(&sono);
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    assert!(
        second.wait_log("486", WAIT),
        "the second call was not refused with 486:\n{}\n{}",
        second.log(),
        sono.log()
    );
    // Both ways: the page heard baresip's 600 Hz, baresip the page's 440 Hz.
    let page_heard = page_heard(&recording, 8000);
    let down = tone_in(&page_heard, 600.0);
    let heard = first
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", first.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard, 8000, &peer_heard);
    let up = tone_in(&peer_heard, 440.0);
    eprintln!("tone SNR: page heard {down:.1} dB, baresip heard {up:.1} dB");
    assert!(down > 10.0 && up > 10.0, "down {down:.1} dB, up {up:.1} dB");
    // The peer connection is the call's: closed when it ended, and the
    // microphone released. The session is the line: the next call still
    // rang on the page.
    assert_eq!(
        result["peerConnection"],
        serde_json::json!({"call": "closed", "now": "none", "microphone": "none"}),
        "{result}"
    );
}

/// A page whose fake microphone plays 440 Hz, a baresip peer (PCMU) that
/// plays 600 Hz, and sono: the set-up of the tests that look at a call's
/// life rather than its sound.
struct ToneCall {
    capture: PathBuf,
    recording: PathBuf,
    peer: Baresip,
    sono: Sono,
}

fn tone_call(dir: &AudioDir, settings: &str) -> ToneCall {
    let capture = dir.file("capture.wav");
    audio::tone_wav(&capture, 48_000, 30, 440);
    let peer_play = dir.file("peer.wav");
    audio::tone_wav(&peer_play, 8000, 60, 600);
    let peer = Baresip::start_with(
        &peer_play,
        (39000, 39999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
    );
    ToneCall {
        capture,
        recording: dir.file("page-heard.s16"),
        peer,
        sono: start_sono(settings),
    }
}

/// The page calls SIPp running `scenario` (a file in tests/sipp), stays
/// `seconds`, and ends as `ending` says; SIPp must complete.
fn page_calls_sipp(name: &str, scenario: &str, seconds: u32, ending: &str) -> serde_json::Value {
    let dir = AudioDir::new(name);
    let capture = dir.file("capture.wav");
    audio::tone_wav(&capture, 48_000, 30, 440);
    let sono = start_sono("");
    let calls = if ending.ends_with("-twice") { 2 } else { 1 };
    let mut sipp = sono_testkit::Sipp::uas(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sipp/{scenario}.xml")),
        calls,
        Duration::from_secs(30),
        &[],
    );
    let recording = dir.file("page-heard.s16");
    let run = PageRun::start(
        &sono,
        &capture,
        &recording,
        "dial",
        &sipp.uri("bob"),
        seconds,
        ending,
    );
    let result = run.finish(&sono);
    sipp.assert_success(WAIT);
    result
}

/// The page's call state after the call: "No call".
fn assert_call_ended_on_the_page(result: &serde_json::Value) {
    assert!(
        result["afterHangup"]
            .as_str()
            .unwrap_or("")
            .starts_with("No call"),
        "{result}"
    );
}

/// The page's events, oldest first (its log lists the newest first).
fn page_events(result: &serde_json::Value) -> Vec<String> {
    let mut events: Vec<String> = result["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    events.reverse();
    events
}

/// DTMF that SIPp plays reaches the page as `Sono.Call.DTMF` events, one per
/// digit.
#[test]
fn dtmf_from_sipp_reaches_the_page_as_events() {
    let _one = one_at_a_time();
    let result = page_calls_sipp("webrtc-sipp-dtmf", "uas_dtmf", 3, "page-hangs-up");
    let digits: String = page_events(&result)
        .iter()
        .filter(|e| e.contains("Sono.Call.DTMF"))
        .filter_map(|e| e.split("\"digit\":\"").nth(1))
        .filter_map(|rest| rest.chars().next())
        .collect();
    assert_eq!(digits, "15#", "{result}");
}

/// A SIP peer that hangs up: the page sees the call end (status 0) and its
/// peer connection is closed, the microphone released. The page then
/// dials again: a new peer connection (the same session, its token) carries
/// the next call, and is closed when the peer hangs up that one too.
#[test]
fn a_peer_hanging_up_ends_the_call_on_the_page() {
    let _one = one_at_a_time();
    let result = page_calls_sipp(
        "webrtc-remote-bye",
        "uas_remote_bye",
        0,
        "peer-hangs-up-twice",
    );
    assert_call_ended_on_the_page(&result);
    let ended = page_events(&result)
        .iter()
        .filter(|e| e.contains("Sono.Call.Status") && e.contains("\"status_code\":0"))
        .count();
    assert_eq!(ended, 2, "{result}");
    let closed = serde_json::json!({"call": "closed", "now": "none", "microphone": "none"});
    assert_eq!(result["peerConnection"], closed, "{result}");
    assert_eq!(result["secondPeerConnection"], closed, "{result}");
    // What the new peer connection adds to a call's set-up (SIPp answers
    // at once): the first call's was opened with the session.
    eprintln!(
        "dial to media: first call {} ms, the next (a new peer connection first) {} ms",
        result["dialToMediaMs"], result["secondDialToMediaMs"]
    );
    let second = &result["second"];
    assert_eq!(second["state"], "connected", "{result}");
    assert_eq!(second["fresh"], true, "{result}");
    assert!(second["sent"].as_u64().unwrap_or(0) > 0, "{result}");
    let closed_events = page_events(&result)
        .iter()
        .filter(|e| e.contains("Sono.Media.Closed"))
        .count();
    assert_eq!(closed_events, 2, "{result}");
}

/// An RTMP tool (ffmpeg publishing a 1 kHz tone under a stream key) is the
/// connection; the page attaches its WebRTC audio to it with the key as
/// token, dials baresip, and the call's audio is the page's both ways: the
/// peer hears the page's 440 Hz, not ffmpeg's 1 kHz, and the page hears the
/// peer. When the page goes, the connection is still there.
#[test]
fn a_page_attaches_its_webrtc_audio_to_a_stream_key_connection() {
    let _one = one_at_a_time();
    let dir = AudioDir::new("webrtc-attach");
    let ToneCall {
        capture,
        recording,
        peer,
        sono,
    } = tone_call(&dir, "");
    let key = "webrtc-attach-key-0123456789abcdef";
    let mut ffmpeg = sono.ffmpeg_publishing_under_key(key, 1000);
    let run = PageRun::start_with(
        &sono,
        &capture,
        &recording,
        "dial",
        &peer.uri(),
        3,
        "page-hangs-up",
        Some(key),
        None,
    );
    let result = run.finish(&sono);
    assert!(
        sono.log().contains("WebRTC media attached"),
        "{}",
        sono.log()
    );
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard, 8000, &peer_heard);
    let page_tone = tone_in(&peer_heard, 440.0);
    let ffmpeg_tone = tone_in(&peer_heard, 1000.0);
    let page_heard = page_heard(&recording, 8000);
    let down = tone_in(&page_heard, 600.0);
    eprintln!(
        "attached: peer heard the page at {page_tone:.1} dB (ffmpeg's tone {ffmpeg_tone:.1} dB); the page heard the peer at {down:.1} dB"
    );
    assert!(
        page_tone > 10.0 && ffmpeg_tone < 0.0,
        "{page_tone:.1} / {ffmpeg_tone:.1}"
    );
    assert!(down > 10.0, "{down:.1}");
    // The connection (ffmpeg's) outlives the page's media.
    let r = sono_testkit::http::get(sono.http, "/api/v1/token", key).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        sono.wait_log("WebRTC media detached", WAIT),
        "{}",
        sono.log()
    );
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}
