//! Media load: N concurrent transcoded calls with speech both ways, through
//! the release `sono` binary (and, with `--against-sems`, through SEMS' RTMP
//! gateway, the seed, under the same load, alternating), to a SIPp UAS that
//! answers with one codec and echoes every RTP packet back (`-rtp_echo`).
//!
//! Each client is Flash-like: it dials, plays the call and publishes Speex
//! wideband speech (espeak-ng, encoded by ffmpeg's libspeex, half speech and
//! half pauses as in a conversation) at real-time pace, one 20 ms frame per
//! message. One thread drives every client (a tokio task each), so the load
//! client costs little of the 2 cores it shares with the gateway and SIPp.
//!
//! Reported per run, over the measured window (after a warm-up):
//! - the gateway's CPU (user + system, from /proc) per call-second;
//! - its resident memory per call (RSS with the calls up minus before them);
//! - frames towards the clients: received, lost (gaps in their RTMP
//!   timestamps) and late (arrival against the stream's own 20 ms timeline,
//!   relative to the earliest frame of the same call) with p50/p99/max;
//! - sono only: its added latency per direction from `/metrics`
//!   (`sono_media_latency_seconds`), p50/p99 as bucket bounds.
//!
//! With `--webrtc`, each run also places the same calls from browsers: one
//! headless Chromium page (`tests/browser/webrtc_load.mjs`) opens CALLS
//! WebRTC phones with sono.js, its fake microphone playing the same speech
//! with pauses; Opus ⇄ PCMU/G.722 through sono. Reported besides: the time
//! from offer to answer (the page's POST), memory per idle WebRTC session,
//! and what the browsers received and lost, with their jitter estimate.
//!
//! With `--client aac`, the RTMP clients publish what OBS does instead of
//! Speex (AAC-LC, 48 kHz stereo, 128 kbit/s, one 21.3 ms frame a message,
//! its sequence header first); with `--client pcmu`, G.711 µ-law as Flash
//! Player 11 does (160 bytes a message), which a PCMU peer gets untouched
//! both ways.
//!
//! `cargo bench --bench media_load -- CALLS SECONDS [--codec pcmu|g722]
//! [--client speex|aac|pcmu] [--against-sems] [--webrtc] [--runs N]`
//! (default 20 calls, 20 s, PCMU, Speex clients, 1 run).
//! `cargo bench --bench media_load -- CALLS 0 --soak MINUTES` runs the soak
//! instead (see `media_load/soak.rs`): CALLS calls with churn, a SIP peer
//! restarted every 5 minutes, vanishing clients and a scanner.
//! `MEDIA_LOAD_BINARY=path` runs another build of sono instead of this one (to
//! compare two builds in alternating runs).
//! SEMS is found at /usr/local/sbin/sems (`../shared/anchors/build-sems.sh`
//! installs it); without it the tool says so and runs sono alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sono_rtmp::amf::DecodeLimits;
use sono_rtmp::chunk::{ChunkDecoder, ChunkEncoder};
use sono_rtmp::message::{type_id, user_control, user_control_payload, Message};
use sono_rtmp::ObjectEncoding;
use sono_testkit::process_stats::{clock_ticks_per_second, cpu_ticks, rss_kib};
use sono_testkit::{audio, flash_speex_tags, free_port, AudioDir, FlashClient, Sipp, Sono};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "media_load/soak.rs"]
mod soak;

const SEMS: &str = "/usr/local/sbin/sems";
const SEMS_PLUGINS: &str = "/usr/local/lib/sems/plug-in";
/// Calls are set up, then run this long before the measured window opens.
const WARM_UP: Duration = Duration::from_secs(3);
/// A frame this much behind its call's timeline counts as late.
const LATE: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, PartialEq)]
enum Gateway {
    Sono,
    /// sono, its RTMP clients publishing another codec (`--client`).
    SonoClient(&'static str),
    Sems,
    /// sono, its clients browsers over WebRTC.
    SonoWebRtc,
}

impl Gateway {
    fn name(self) -> &'static str {
        match self {
            Gateway::Sono => "sono",
            Gateway::SonoClient("aac") => "sono-aac",
            Gateway::SonoClient(_) => "sono-pcmu",
            Gateway::Sems => "SEMS",
            Gateway::SonoWebRtc => "sono-webrtc",
        }
    }
}

struct Options {
    calls: usize,
    seconds: u64,
    codec: &'static str,
    /// What the RTMP clients publish: speex, aac or pcmu.
    client: &'static str,
    against_sems: bool,
    webrtc: bool,
    runs: usize,
    /// Minutes of soak instead of measured runs.
    soak: Option<u64>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut numbers = args.iter().filter_map(|a| a.parse::<u64>().ok());
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let calls = numbers.next().unwrap_or(20) as usize;
    let seconds = numbers.next().unwrap_or(20);
    let codec = match value("--codec").as_deref() {
        Some("g722") => "g722",
        _ => "pcmu",
    };
    let client = match value("--client").as_deref() {
        Some("aac") => "aac",
        Some("pcmu") => "pcmu",
        _ => "speex",
    };
    Options {
        calls,
        seconds,
        codec,
        client,
        against_sems: args.iter().any(|a| a == "--against-sems"),
        webrtc: args.iter().any(|a| a == "--webrtc"),
        runs: value("--runs").and_then(|r| r.parse().ok()).unwrap_or(1),
        soak: value("--soak").and_then(|m| m.parse().ok()),
    }
}

fn main() {
    let o = options();
    let runs = o.runs;
    let speech = speech_frames("speex");
    if let Some(minutes) = o.soak {
        soak::run(&o, &speech, minutes);
        return;
    }
    let other_mic = (o.client != "speex").then(|| speech_frames(o.client));
    let mut gateways = vec![Gateway::Sono];
    if o.client != "speex" {
        gateways.push(Gateway::SonoClient(o.client));
    }
    if o.against_sems {
        let g722 = Path::new(SEMS_PLUGINS).join("g722.so");
        if o.codec == "g722" && !g722.exists() {
            println!(
                "media_load: SEMS has no G.722 plug-in ({} is missing: SEMS builds it only with spandsp); running sono alone",
                g722.display()
            );
        } else if Path::new(SEMS).exists() {
            gateways.push(Gateway::Sems);
        } else {
            println!(
                "media_load: SEMS is not installed at {SEMS} (bash ../shared/anchors/build-sems.sh installs it); running sono alone"
            );
        }
    }
    if o.webrtc {
        gateways.push(Gateway::SonoWebRtc);
    }
    println!(
        "media_load: {} calls of Speex WB (and {} from the sono-{} clients, Opus from browsers) ⇄ {} for {} s (+{} s warm-up), {} run(s) of {}",
        o.calls,
        o.client,
        o.client,
        o.codec.to_uppercase(),
        o.seconds,
        WARM_UP.as_secs(),
        runs,
        gateways
            .iter()
            .map(|g| g.name())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let mut results: HashMap<&str, Vec<RunResult>> = HashMap::new();
    for run in 0..runs {
        for &gateway in &gateways {
            let mic = match (gateway, &other_mic) {
                (Gateway::SonoClient(_), Some(m)) => m,
                _ => &speech,
            };
            let r = run_once(gateway, &o, mic);
            println!(
                "media_load: run {} {}: {}",
                run + 1,
                gateway.name(),
                r.line()
            );
            if let Some(lat) = &r.latency {
                println!("media_load:   sono added latency: {lat}");
            }
            results.entry(gateway.name()).or_default().push(r);
        }
    }
    let median_cpu = |name: &str| {
        let mut v: Vec<f64> = results
            .get(name)
            .map(|rs| rs.iter().map(|r| r.cpu_ms_per_call_second).collect())
            .unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    for g in &gateways {
        let all: Vec<String> = results
            .get(g.name())
            .map(|rs| {
                rs.iter()
                    .map(|r| format!("{:.2}", r.cpu_ms_per_call_second))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = median_cpu(g.name()) {
            println!(
                "media_load: {} median CPU {m:.2} ms per call-second (runs: {})",
                g.name(),
                all.join(", ")
            );
        }
    }
    if let (Some(s), Some(e)) = (median_cpu("sono"), median_cpu("SEMS")) {
        println!("media_load: sono / SEMS CPU per call-second = {:.2}", s / e);
    }
    for other in ["sono-aac", "sono-pcmu"] {
        if let (Some(c), Some(s)) = (median_cpu(other), median_cpu("sono")) {
            println!(
                "media_load: {other} / sono (Speex clients) CPU per call-second = {:.2}",
                c / s
            );
        }
        if let (Some(c), Some(e)) = (median_cpu(other), median_cpu("SEMS")) {
            println!(
                "media_load: {other} / SEMS (Speex clients) CPU per call-second = {:.2}",
                c / e
            );
        }
    }
    if let (Some(w), Some(s)) = (median_cpu("sono-webrtc"), median_cpu("sono")) {
        println!(
            "media_load: sono WebRTC / sono RTMP CPU per call-second = {:.2}",
            w / s
        );
    }
    if let (Some(w), Some(e)) = (median_cpu("sono-webrtc"), median_cpu("SEMS")) {
        println!(
            "media_load: sono WebRTC / SEMS RTMP CPU per call-second = {:.2}",
            w / e
        );
    }
}

/// The client's microphone: FLV audio messages (header byte first) of
/// `client`'s codec, about half speech and half silence, and how long each
/// lasts.
struct Microphone {
    messages: Vec<Vec<u8>>,
    period: Duration,
}

fn speech_frames(client: &str) -> Microphone {
    let dir = AudioDir::new("media-load");
    let said = dir.file("said.wav");
    audio::speech_wav(
        "Hello, this is a load test of the gateway. The quick brown fox jumps over the lazy dog. \
         Please call me back when you have a moment.",
        16_000,
        &said,
    );
    let talk = dir.file("talk.wav");
    // Speech, then as long again of silence: each side talks about half the time.
    audio::ffmpeg(&[
        "-i",
        &said.display().to_string(),
        "-af",
        "apad=pad_dur=6",
        &talk.display().to_string(),
    ]);
    let tags = |args: &[&str]| -> Vec<Vec<u8>> {
        let flv = dir.file("talk.flv");
        let mut all = vec!["-i".to_owned(), talk.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        all.push(flv.display().to_string());
        audio::ffmpeg(&all.iter().map(String::as_str).collect::<Vec<_>>());
        sono_testkit::read_flv_audio(&flv)
            .expect("ffmpeg's FLV")
            .into_iter()
            .map(|t| t.data)
            .collect()
    };
    match client {
        // The sequence header comes first; sent again each time the speech
        // loops, which costs a decoder reset every 12 s.
        "aac" => Microphone {
            messages: tags(&["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"]),
            period: Duration::from_micros(21_333),
        },
        // One 20 ms message each, whatever size ffmpeg's FLV messages are.
        "pcmu" => {
            let bytes: Vec<u8> = tags(&["-c:a", "pcm_mulaw", "-ar", "8000"])
                .into_iter()
                .flat_map(|m| m[1..].to_vec())
                .collect();
            Microphone {
                messages: bytes
                    .chunks_exact(160)
                    .map(|c| [&[0x82u8][..], c].concat())
                    .collect(),
                period: Duration::from_millis(20),
            }
        }
        _ => Microphone {
            messages: flash_speex_tags(&talk)
                .expect("ffmpeg's Speex encoding of the speech")
                .into_iter()
                .map(|t| t.data)
                .collect(),
            period: Duration::from_millis(20),
        },
    }
}

struct RunResult {
    calls: usize,
    cpu_ms_per_call_second: f64,
    cpu_percent: f64,
    /// The gateway, SIPp and the load client together, as a share of every core.
    machine_busy_percent: f64,
    rss_kib_per_call: f64,
    frames: u64,
    lost: u64,
    late: u64,
    late_p50_ms: f64,
    late_p99_ms: f64,
    late_max_ms: f64,
    hung_up: usize,
    latency: Option<String>,
}

impl RunResult {
    fn line(&self) -> String {
        format!(
            "{} calls up; CPU {:.2} ms per call-second ({:.0} % of one core; with SIPp and the clients {:.0} % of all cores); RSS {:.1} KiB per call; \
             frames to clients {} lost {} late>5ms {} (lateness p50 {:.2} p99 {:.2} max {:.1} ms); calls dropped {}",
            self.calls,
            self.cpu_ms_per_call_second,
            self.cpu_percent,
            self.machine_busy_percent,
            self.rss_kib_per_call,
            self.frames,
            self.lost,
            self.late,
            self.late_p50_ms,
            self.late_p99_ms,
            self.late_max_ms,
            self.hung_up,
        )
    }
}

/// What a client saw of its call's audio in the measured window.
#[derive(Default)]
struct LegStats {
    /// (arrival µs since the window opened, RTMP timestamp ms) per frame.
    frames: Vec<(i64, u32)>,
    closed: bool,
}

/// SIPp answering every call with the run's codec and echoing its RTP.
fn echo_peer(codec: &str, limit: Duration) -> Sipp {
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_echo.xml");
    let (pt, rtpmap) = match codec {
        "g722" => ("9", "G722/8000"),
        _ => ("0", "PCMU/8000"),
    };
    Sipp::uas(
        &scenario,
        1_000_000,
        limit,
        &["-rtp_echo", "-key", "pt", pt, "-key", "rtpmap", rtpmap],
    )
}

fn run_once(gateway: Gateway, o: &Options, speech: &Microphone) -> RunResult {
    if gateway == Gateway::SonoWebRtc {
        return run_webrtc(o);
    }
    let sipp = echo_peer(o.codec, Duration::from_secs(o.seconds + 120));
    let mut process = match gateway {
        Gateway::Sems => GatewayProcess::sems(o.codec),
        _ => GatewayProcess::sono(o.calls),
    };
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(process.pid());
    let target = sipp.uri("echo");
    let mut legs = Vec::new();
    for i in 0..o.calls {
        match set_up_call(process.rtmp(), &target) {
            Ok(leg) => legs.push(leg),
            Err(e) => {
                println!("media_load: call {} not set up: {e}", i + 1);
                println!("{}", process.log_tail(400));
                let sip = sipp.messages();
                println!("SIPp saw:\n{}", &sip[sip.len().saturating_sub(3000)..]);
                break;
            }
        }
    }
    let calls = legs.len();
    let window = Duration::from_secs(o.seconds);
    let stats: Vec<Arc<Mutex<LegStats>>> = (0..calls).map(|_| Default::default()).collect();
    let period = speech.period;
    let speech: Arc<Vec<Vec<u8>>> = Arc::new(speech.messages.clone());
    let measure = {
        let pid = process.pid();
        let sipp_pid = sipp.pid();
        let metrics_from = process.http();
        std::thread::spawn(move || {
            std::thread::sleep(WARM_UP);
            let before = metrics_from.map(latency_buckets);
            let others =
                |p: u32| cpu_ticks(sipp_pid) + cpu_ticks(std::process::id()) + cpu_ticks(p);
            let all0 = others(pid);
            let cpu0 = cpu_ticks(pid);
            let t0 = Instant::now();
            std::thread::sleep(window);
            let cpu = cpu_ticks(pid).saturating_sub(cpu0);
            let elapsed = t0.elapsed();
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
            let all_ticks = others(pid).saturating_sub(all0) as f64;
            let machine_busy = all_ticks / clock_ticks_per_second() / elapsed.as_secs_f64() / cores;
            let rss = rss_kib(pid);
            let after = metrics_from.map(latency_buckets);
            (cpu, elapsed, rss, before, after, machine_busy)
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the clients");
    let opened = Instant::now() + WARM_UP;
    runtime.block_on(async {
        let tasks: Vec<_> = legs
            .into_iter()
            .zip(stats.iter().cloned())
            .enumerate()
            .map(|(i, (leg, stats))| {
                let speech = speech.clone();
                // Spread the clients over the 20 ms period, as real ones are.
                let phase =
                    Duration::from_micros((i as u64 * 20_000 / calls.max(1) as u64) % 20_000);
                tokio::spawn(drive_leg(
                    leg,
                    speech,
                    period,
                    stats,
                    phase,
                    opened,
                    WARM_UP + window,
                    None,
                ))
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let (cpu, elapsed, rss, before, after, machine_busy) =
        measure.join().expect("the measuring thread");
    process.stop();
    drop(sipp);

    let hz = clock_ticks_per_second();
    let cpu_s = cpu as f64 / hz;
    let call_seconds = calls as f64 * elapsed.as_secs_f64();
    let mut late_ms = Vec::new();
    let (mut frames, mut lost, mut hung_up) = (0u64, 0u64, 0usize);
    for s in &stats {
        let Ok(s) = s.lock() else { continue };
        if s.closed {
            hung_up += 1;
        }
        frames += s.frames.len() as u64;
        let Some(first_ts) = s.frames.first().map(|f| f.1) else {
            continue;
        };
        let last_ts = s.frames.last().map_or(first_ts, |f| f.1);
        let expected = u64::from(last_ts.wrapping_sub(first_ts)) / 20 + 1;
        lost += expected.saturating_sub(s.frames.len() as u64);
        let offsets: Vec<i64> = s
            .frames
            .iter()
            .map(|&(at, ts)| at - i64::from(ts.wrapping_sub(first_ts)) * 1000)
            .collect();
        let earliest = offsets.iter().copied().min().unwrap_or(0);
        late_ms.extend(offsets.iter().map(|o| (o - earliest) as f64 / 1000.0));
    }
    late_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&late_ms, p);
    let late = late_ms
        .iter()
        .filter(|&&l| l > LATE.as_secs_f64() * 1000.0)
        .count() as u64;
    let latency = match (before, after) {
        (Some(b), Some(a)) => Some(latency_report(&b, &a)),
        _ => None,
    };
    RunResult {
        calls,
        cpu_ms_per_call_second: if call_seconds > 0.0 {
            cpu_s * 1000.0 / call_seconds
        } else {
            0.0
        },
        cpu_percent: cpu_s * 100.0 / elapsed.as_secs_f64(),
        machine_busy_percent: machine_busy * 100.0,
        rss_kib_per_call: if calls > 0 {
            rss.saturating_sub(rss_before) as f64 / calls as f64
        } else {
            0.0
        },
        frames,
        lost,
        late,
        late_p50_ms: pct(0.5),
        late_p99_ms: pct(0.99),
        late_max_ms: pct(1.0),
        hung_up,
        latency,
    }
}

/// The same calls placed from browsers (`--webrtc`): one headless Chromium
/// page with CALLS sono.js phones over WebRTC, its fake microphone playing
/// speech with pauses, to the same echoing SIPp.
fn run_webrtc(o: &Options) -> RunResult {
    let sipp = echo_peer(o.codec, Duration::from_secs(o.seconds + 120));
    let mut process = GatewayProcess::sono(o.calls);
    std::thread::sleep(Duration::from_millis(300));
    let pid = process.pid();
    let rss_before = rss_kib(pid);
    let dir = AudioDir::new("media-load-webrtc");
    let said = dir.file("said.wav");
    audio::speech_wav(
        "Hello, this is a load test of the gateway. The quick brown fox jumps over the lazy dog. \
         Please call me back when you have a moment.",
        48_000,
        &said,
    );
    let capture = dir.file("capture.wav");
    audio::ffmpeg(&[
        "-i",
        &said.display().to_string(),
        "-af",
        "apad=pad_dur=6",
        &capture.display().to_string(),
    ]);
    let browser = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let window = Duration::from_secs(o.seconds);
    let hold = WARM_UP + window + Duration::from_secs(1);
    let Some(http) = process.http() else {
        panic!("sono has no HTTP address");
    };
    let mut node = Command::new("node")
        .current_dir(&browser)
        .arg("webrtc_load.mjs")
        .arg(format!("http://{http}"))
        .arg(&capture)
        .arg(sipp.uri("echo"))
        .args([o.calls.to_string(), "2".into(), hold.as_secs().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (nodejs) and playwright-core (scripts/install-deps.sh)");
    let stdout = node.stdout.take().expect("piped");
    let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = |key: &str| -> serde_json::Value {
        loop {
            match lines.recv_timeout(Duration::from_secs(120)) {
                Ok(v) if v.get(key).is_some() => return v,
                Ok(v) if v.get("error").is_some() => panic!("the browsers failed: {v}"),
                Ok(_) => continue,
                Err(_) => panic!("the browsers never said {key:?}"),
            }
        }
    };
    let idle = next("idle");
    std::thread::sleep(Duration::from_millis(1500));
    let rss_idle = rss_kib(pid);
    next("ready");
    std::thread::sleep(WARM_UP);
    let chromium = || -> u64 {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(capture.display().to_string())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(cpu_ticks)
            .sum()
    };
    let everyone = || cpu_ticks(pid) + cpu_ticks(sipp.pid()) + chromium();
    let (cpu0, all0, t0) = (cpu_ticks(pid), everyone(), Instant::now());
    std::thread::sleep(window);
    let cpu = cpu_ticks(pid).saturating_sub(cpu0);
    let all = everyone().saturating_sub(all0);
    let elapsed = t0.elapsed();
    let rss = rss_kib(pid);
    let done = next("done");
    let _ = sono_testkit::wait_or_kill(node, Duration::from_secs(30));
    process.stop();
    drop(sipp);

    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        let mut n: Vec<f64> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        n.sort_by(f64::total_cmp);
        n
    };
    let offer_answer = numbers(&idle["offerAnswerMs"]);
    let connect = numbers(&idle["connectMs"]);
    let jitter = numbers(&done["jitterMs"]);
    let calls = o.calls;
    println!(
        "media_load:   WebRTC: offer → answer p50 {:.1} ms p99 {:.1} ms (whole connect, getUserMedia to events open, p50 {:.0} ms); \
         RSS per idle session {:.0} KiB; browsers received {} packets, lost {}, jitter p50 {:.1} ms max {:.1} ms",
        percentile(&offer_answer, 0.5),
        percentile(&offer_answer, 0.99),
        percentile(&connect, 0.5),
        rss_idle.saturating_sub(rss_before) as f64 / calls.max(1) as f64,
        done["received"],
        done["lost"],
        percentile(&jitter, 0.5),
        percentile(&jitter, 1.0),
    );
    let hz = clock_ticks_per_second();
    let cpu_s = cpu as f64 / hz;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    RunResult {
        calls,
        cpu_ms_per_call_second: cpu_s * 1000.0 / (calls as f64 * elapsed.as_secs_f64()),
        cpu_percent: cpu_s * 100.0 / elapsed.as_secs_f64(),
        machine_busy_percent: all as f64 / hz / elapsed.as_secs_f64() / cores * 100.0,
        rss_kib_per_call: rss.saturating_sub(rss_before) as f64 / calls.max(1) as f64,
        frames: done["received"].as_u64().unwrap_or(0),
        lost: done["lost"].as_u64().unwrap_or(0),
        late: 0,
        late_p50_ms: percentile(&jitter, 0.5),
        late_p99_ms: percentile(&jitter, 0.99),
        late_max_ms: percentile(&jitter, 1.0),
        hung_up: 0,
        latency: None,
    }
}

/// The `p` quantile (0–1) of sorted values; 0 for none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// A client with its call up, playing and publishing, handed over to the
/// load loop.
struct Leg {
    stream: std::net::TcpStream,
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
    publish: u32,
}

fn set_up_call(rtmp: SocketAddr, target: &str) -> std::io::Result<Leg> {
    let mut c = FlashClient::connect(rtmp, "phone", ObjectEncoding::Amf0)?;
    c.send_call("dial", vec![target.into()])?;
    let up = c.wait_for(Duration::from_secs(10), |c| {
        c.has_call_status(4) || c.has_call_status(0)
    });
    if !up || !c.has_call_status(4) {
        return Err(std::io::Error::other(format!(
            "the call did not come up: {:?}",
            c.events
        )));
    }
    // Neither waits for its NetStream status: SEMS sends those on stream 0.
    let play = c.create_stream()?;
    c.send_command(play, "play", 0.0, vec!["remote".into()])?;
    let publish = c.create_stream()?;
    c.send_command(publish, "publish", 0.0, vec!["mic".into(), "live".into()])?;
    c.pump(Duration::from_millis(50))?;
    let (stream, encoder, decoder) = c
        .into_tcp_parts()
        .ok_or_else(|| std::io::Error::other("not a TCP client"))?;
    Ok(Leg {
        stream,
        encoder,
        decoder,
        publish,
    })
}

/// Publishes one frame every 20 ms (from `phase` on) and reads everything
/// the gateway sends, until `until` after `opened - WARM_UP`; then writes
/// `farewell` (a hangup) and reads on a moment before closing, or just
/// closes (a client that vanishes).
#[allow(clippy::too_many_arguments)]
async fn drive_leg(
    leg: Leg,
    speech: Arc<Vec<Vec<u8>>>,
    period: Duration,
    stats: Arc<Mutex<LegStats>>,
    phase: Duration,
    opened: Instant,
    until: Duration,
    farewell: Option<Vec<u8>>,
) {
    let Leg {
        stream,
        mut encoder,
        mut decoder,
        publish,
    } = leg;
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let (mut read, mut write) = stream.into_split();
    let start = tokio::time::Instant::now() + phase;
    let end = start + until;
    let mut ticker = tokio::time::interval_at(start, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(256);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if tokio::time::Instant::now() >= end {
                    if let Some(bye) = &farewell {
                        let _ = write.write_all(bye).await;
                        let _ = tokio::time::timeout(
                            Duration::from_millis(500),
                            read.read(&mut buf),
                        )
                        .await;
                    }
                    break;
                }
                let frame = &speech[sent % speech.len().max(1)];
                out.clear();
                let at = (sent as u128 * period.as_micros() / 1000) as u32;
                encoder.encode(4, at, type_id::AUDIO, publish, frame, &mut out);
                sent += 1;
                if write.write_all(&out).await.is_err() {
                    break;
                }
            }
            n = read.read(&mut buf) => {
                let Ok(n) = n else { break };
                if n == 0 {
                    if let Ok(mut s) = stats.lock() { s.closed = true; }
                    break;
                }
                let now = Instant::now();
                decoder.push(&buf[..n]);
                let mut pong = Vec::new();
                while let Ok(Some(raw)) = decoder.next_message() {
                    match Message::parse(&raw, DecodeLimits::default()) {
                        Ok(Message::SetChunkSize(size)) => {
                            let _ = decoder.set_chunk_size(size);
                        }
                        Ok(Message::UserControl { event, data })
                            if event == user_control::PING_REQUEST && data.len() >= 4 =>
                        {
                            let t = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                            let p = user_control_payload(user_control::PING_RESPONSE, t);
                            encoder.encode(2, 0, type_id::USER_CONTROL, 0, &p, &mut pong);
                        }
                        Ok(Message::Audio(_)) if now >= opened => {
                            let at = now.duration_since(opened).as_micros() as i64;
                            if let Ok(mut s) = stats.lock() {
                                s.frames.push((at, raw.timestamp));
                            }
                        }
                        _ => {}
                    }
                }
                if !pong.is_empty() && write.write_all(&pong).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// The gateway under load, stopped by PID.
enum GatewayProcess {
    Sono(Sono),
    Sems {
        child: Option<Child>,
        rtmp: SocketAddr,
        dir: PathBuf,
    },
}

impl GatewayProcess {
    fn sono(calls: usize) -> GatewayProcess {
        Self::sono_with(calls, "")
    }

    /// sono for `calls`, with `extra` settings (whole sections) after ours.
    fn sono_with(calls: usize, extra: &str) -> GatewayProcess {
        let limits = calls + 50;
        // MEDIA_LOAD_BINARY picks another build, to compare two side by side.
        let binary =
            std::env::var("MEDIA_LOAD_BINARY").unwrap_or(env!("CARGO_BIN_EXE_sono").to_owned());
        GatewayProcess::Sono(Sono::start(
            &binary,
            &format!(
                "[log]\nlevel = \"warn\"\n[rtmp]\nmax_connections = {limits}\n\
                 [sip]\nmax_calls = {limits}\n[media]\nrtp_port_min = 32000\nrtp_port_max = 39999\n\
                 [webrtc]\nmax_sessions_per_address = {limits}\nport_min = 30000\nport_max = 31999\n{extra}"
            ),
        ))
    }

    /// SEMS with its RTMP application, as `../shared/anchors/README.md` runs
    /// it; one media and one RTP receiver thread per core, as sono has one
    /// arbiter per core.
    fn sems(codec: &str) -> GatewayProcess {
        // Ports are probed free, then bound by SEMS: another process may take
        // one in between, and SEMS then never listens. Try again on new ones.
        for attempt in 1..=3 {
            let sems = GatewayProcess::sems_once(codec);
            if std::net::TcpStream::connect(sems.rtmp()).is_ok() {
                return sems;
            }
            println!(
                "media_load: SEMS did not listen (attempt {attempt}); its log:\n{}",
                sems.log_tail(20)
            );
        }
        panic!("SEMS did not start in three attempts");
    }

    fn sems_once(codec: &str) -> GatewayProcess {
        let dir = std::env::temp_dir().join(format!(
            "sono-media-load-sems-{}-{}",
            std::process::id(),
            next_serial()
        ));
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).expect("a folder for SEMS' settings");
        let sip_port = sono_testkit::free_udp_port();
        let rtmp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SEMS offers every codec it loaded; the echo answers one. G.722
        // needs SEMS' g722 plug-in (built with spandsp, which build-sems.sh
        // leaves out).
        let g722 = if codec == "g722" { ";g722" } else { "" };
        let conf = format!(
            "sip_ip=127.0.0.1\nsip_port={sip_port}\nmedia_ip=127.0.0.1\n\
             rtp_low_port=40000\nrtp_high_port=49999\n\
             plugin_path={SEMS_PLUGINS}\n\
             load_plugins=wav;speex;rtmp;session_timer;uac_auth;registrar_client{g722}\n\
             application=rtmp\nplugin_config_path={}/\nfork=no\nstderr=yes\nloglevel=1\n\
             media_processor_threads={cores}\nrtp_receiver_threads={cores}\n",
            etc.display()
        );
        std::fs::write(dir.join("sems.conf"), conf).expect("writing sems.conf");
        std::fs::write(
            etc.join("rtmp.conf"),
            format!("listen_address=127.0.0.1\nlisten_port={}\n", rtmp.port()),
        )
        .expect("writing rtmp.conf");
        let log = std::fs::File::create(dir.join("sems.log")).expect("SEMS' log file");
        let child = Command::new(SEMS)
            .arg("-f")
            .arg(dir.join("sems.conf"))
            .arg("-E")
            .arg("-D")
            .arg("2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting SEMS");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(rtmp).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        GatewayProcess::Sems {
            child: Some(child),
            rtmp,
            dir,
        }
    }

    /// The end of the gateway's log, to say why calls failed.
    fn log_tail(&self, lines: usize) -> String {
        let log = match self {
            GatewayProcess::Sono(s) => s.log(),
            GatewayProcess::Sems { dir, .. } => {
                std::fs::read_to_string(dir.join("sems.log")).unwrap_or_default()
            }
        };
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn pid(&self) -> u32 {
        match self {
            GatewayProcess::Sono(s) => s.pid(),
            GatewayProcess::Sems { child, .. } => child.as_ref().map_or(0, Child::id),
        }
    }

    fn rtmp(&self) -> SocketAddr {
        match self {
            GatewayProcess::Sono(s) => s.rtmp,
            GatewayProcess::Sems { rtmp, .. } => *rtmp,
        }
    }

    /// sono's HTTP side, for its latency histogram.
    fn http(&self) -> Option<SocketAddr> {
        match self {
            GatewayProcess::Sono(s) => Some(s.http),
            GatewayProcess::Sems { .. } => None,
        }
    }

    fn stop(&mut self) {
        match self {
            GatewayProcess::Sono(s) => {
                let _ = s.terminate(Duration::from_secs(10));
            }
            GatewayProcess::Sems { child, dir, .. } => {
                // SEMS hangs on SIGTERM while it unloads its RTMP plug-in.
                if let Some(c) = child.take() {
                    let _ = Command::new("kill")
                        .arg("-TERM")
                        .arg(c.id().to_string())
                        .status();
                    let _ = sono_testkit::wait_or_kill(c, Duration::from_secs(2));
                }
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `sono_media_latency_seconds` cumulative buckets by (direction, le).
fn latency_buckets(http: SocketAddr) -> HashMap<(String, String), f64> {
    let text = sono_testkit::http::request(http, "GET", "/metrics", &[], b"")
        .map(|r| r.text())
        .unwrap_or_default();
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("sono_media_latency_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let get = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(key))
                .map(|v| v.trim_matches('"').to_owned())
        };
        if let (Some(d), Some(le), Ok(v)) = (get("direction="), get("le="), value.parse()) {
            out.insert((d, le), v);
        }
    }
    out
}

/// p50/p99 per direction over the window, as the bucket bound that holds them.
fn latency_report(
    before: &HashMap<(String, String), f64>,
    after: &HashMap<(String, String), f64>,
) -> String {
    let mut parts = Vec::new();
    for direction in ["up", "down"] {
        let mut buckets: Vec<(f64, f64)> = after
            .iter()
            .filter(|((d, _), _)| d == direction)
            .map(|((d, le), v)| {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                let b = before.get(&(d.clone(), le.clone())).copied().unwrap_or(0.0);
                (bound, v - b)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            parts.push(format!("{direction}: no frames"));
            continue;
        }
        let at = |p: f64| {
            buckets
                .iter()
                .find(|(_, c)| *c >= total * p)
                .map_or(f64::INFINITY, |(b, _)| *b * 1000.0)
        };
        parts.push(format!(
            "{direction} p50 ≤ {} ms, p99 ≤ {} ms ({total} frames)",
            at(0.5),
            at(0.99)
        ));
    }
    parts.join("; ")
}
