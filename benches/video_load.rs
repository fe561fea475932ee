//! Video call load: what H.264 passthrough costs sono per call-second, and
//! the latency it adds per frame, against an anchor measured in the same
//! run: ffmpeg repacking the same stream from FLV to RTP (`-c copy -f rtp`),
//! which is the same work (read FLV, cut NAL units into RTP) with no
//! gateway around it.
//!
//! Each call is a Flash-like client (a thread of this tool) publishing a
//! 720p30 1.5 Mbit/s H.264 + Speex FLV at its own pace to the release
//! `sono`, which calls a SIPp video phone (`tests/sipp/uas_video.xml`)
//! whose audio and video ends are sockets of this tool. sono's CPU time
//! (utime + stime from /proc) over the publishing window, divided by the
//! call-seconds, is the figure; the added latency is
//! `sono_video_latency_seconds{direction="up"}` (a client's video message
//! read to its last RTP packet sent). The same calls with the client
//! publishing no video (the call still negotiates it) give what the audio
//! costs, so the difference is video's own. The anchor runs the same number of ffmpeg
//! processes on the same clip. Runs alternate; medians are printed.
//!
//! `cargo bench --bench video_load [-- CALLS SECONDS] [--runs N]`
//! (default 4 calls, 15 s, 3 runs).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::process_stats::{clock_ticks_per_second, cpu_ticks};
use sono_testkit::video::Clip;
use sono_testkit::{read_flv_audio, read_flv_video, AudioDir, FlashClient, Sipp, Sono};

/// One FLV tag: RTMP message type (8 audio, 9 video), timestamp, body.
type Tag = (u8, u32, Vec<u8>);

fn tags(flv: &Path) -> Vec<Tag> {
    let mut all: Vec<Tag> = read_flv_audio(flv)
        .expect("the clip's audio")
        .into_iter()
        .map(|t| (8, t.timestamp, t.data))
        .chain(
            read_flv_video(flv)
                .expect("the clip's video")
                .into_iter()
                .map(|t| (9, t.timestamp, t.data)),
        )
        .collect();
    // Sequence headers first at equal times, as encoders write them.
    all.sort_by_key(|(kind, ts, data)| (*ts, data.get(1) != Some(&0), *kind));
    all
}

/// A UDP socket that swallows what comes, counting bytes, until stopped.
fn sink(stop: Arc<AtomicBool>) -> (u16, Arc<AtomicU64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a sink port");
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = bytes.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(n) = socket.recv(&mut buf) {
                counted.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    });
    (port, bytes)
}

struct Run {
    ms_per_call_second: f64,
    mean_latency_ms: f64,
    mbits_out: f64,
}

/// `sono_video_latency_seconds{direction="up"}` sum and count.
fn latency(sono: &Sono) -> (f64, f64) {
    let m = sono.metrics();
    (
        m.get("sono_video_latency_seconds_sum{direction=\"up\"}")
            .copied()
            .unwrap_or(0.0),
        m.get("sono_video_latency_seconds_count{direction=\"up\"}")
            .copied()
            .unwrap_or(0.0),
    )
}

fn run_sono(calls: usize, seconds: u64, clip: &[Tag], video: bool) -> Run {
    let binary = env!("CARGO_BIN_EXE_sono");
    let stop = Arc::new(AtomicBool::new(false));
    let (audio_port, _) = sink(stop.clone());
    let (video_port, video_bytes) = sink(stop.clone());
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_video.xml");
    let sipp = Sipp::uas(
        &scenario,
        calls as u32,
        Duration::from_secs(seconds + 60),
        &[
            "-key",
            "rtp_port",
            &audio_port.to_string(),
            "-key",
            "video_port",
            &video_port.to_string(),
        ],
    );
    let sono = Sono::start(
        binary,
        "[log]\nlevel = \"warn\"\n[media]\nrtp_port_min = 41000\nrtp_port_max = 41999\n[video]\noffer = \"always\"\n",
    );
    let clip: Vec<Tag> = clip
        .iter()
        .filter(|(kind, _, _)| video || *kind == 8)
        .cloned()
        .collect();
    let clip = Arc::new(clip);
    let ready = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..calls)
        .map(|_| {
            let (clip, ready, go) = (clip.clone(), ready.clone(), go.clone());
            let (rtmp, target) = (sono.rtmp, sipp.uri("camera"));
            std::thread::spawn(move || {
                let mut c =
                    FlashClient::connect(rtmp, "phone", ObjectEncoding::Amf3).expect("connecting");
                let mic = c.create_stream().expect("a stream");
                c.publish(mic, "camera").expect("publishing");
                c.send_call(
                    "dial",
                    vec![
                        target.as_str().into(),
                        AmfValue::object([("video", AmfValue::Boolean(true))]),
                    ],
                )
                .expect("dialling");
                assert!(
                    c.wait_call_status(4, Duration::from_secs(20)),
                    "{:?}",
                    c.call_statuses()
                );
                let _ = c.set_chunk_size(65_536);
                ready.fetch_add(1, Ordering::Relaxed);
                while !go.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let start = Instant::now();
                for (kind, ts, data) in clip.iter() {
                    let due = start + Duration::from_millis(u64::from(*ts));
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        let _ = c.pump(wait.min(Duration::from_millis(10)));
                        if let Some(rest) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(rest);
                        }
                    }
                    let sent = match kind {
                        8 => c.send_audio(mic, *ts, data),
                        _ => c.send_video(mic, *ts, data),
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                let _ = c.call("hangup", vec![]);
            })
        })
        .collect();
    let all_up = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < calls as u64 && Instant::now() < all_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        ready.load(Ordering::Relaxed),
        calls as u64,
        "not every call came up\n{}",
        sono.log()
    );
    let (sum0, count0) = latency(&sono);
    let ticks0 = cpu_ticks(sono.pid());
    let bytes0 = video_bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    go.store(true, Ordering::Relaxed);
    // The steady window: the clip's length less a second at each end.
    std::thread::sleep(Duration::from_secs(1));
    let (sum1, count1) = latency(&sono);
    let ticks1 = cpu_ticks(sono.pid());
    let b1 = video_bytes.load(Ordering::Relaxed);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(2).max(1)));
    let elapsed = window.elapsed().as_secs_f64();
    let ticks2 = cpu_ticks(sono.pid());
    let (sum2, count2) = latency(&sono);
    let b2 = video_bytes.load(Ordering::Relaxed);
    let _ = (ticks0, sum0, count0, bytes0, started);
    for t in threads {
        let _ = t.join();
    }
    stop.store(true, Ordering::Relaxed);
    let cpu_ms = (ticks2 - ticks1) as f64 / clock_ticks_per_second() * 1000.0;
    Run {
        ms_per_call_second: cpu_ms / (elapsed * calls as f64),
        mean_latency_ms: (sum2 - sum1) / (count2 - count1).max(1.0) * 1000.0,
        mbits_out: (b2 - b1) as f64 * 8.0 / elapsed / 1e6,
    }
}

/// The anchor: `calls` ffmpeg processes repacking the clip's video from
/// FLV to RTP at its own pace; their CPU per call-second.
fn run_ffmpeg(calls: usize, seconds: u64, flv: &Path) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let (port, bytes) = sink(stop.clone());
    let children: Vec<_> = (0..calls)
        .map(|_| {
            Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-nostdin",
                    "-re",
                    "-i",
                ])
                .arg(flv)
                .args(["-map", "0:v", "-c", "copy", "-f", "rtp"])
                .arg(format!("rtp://127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting ffmpeg")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let ticks = |cs: &[std::process::Child]| cs.iter().map(|c| cpu_ticks(c.id())).sum::<u64>();
    let t1 = ticks(&children);
    let b1 = bytes.load(Ordering::Relaxed);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(2).max(1)));
    let elapsed = window.elapsed().as_secs_f64();
    let t2 = ticks(&children);
    let b2 = bytes.load(Ordering::Relaxed);
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    stop.store(true, Ordering::Relaxed);
    Run {
        ms_per_call_second: (t2 - t1) as f64 / clock_ticks_per_second() * 1000.0
            / (elapsed * calls as f64),
        mean_latency_ms: f64::NAN,
        mbits_out: (b2 - b1) as f64 * 8.0 / elapsed / 1e6,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let calls: usize = plain.first().and_then(|a| a.parse().ok()).unwrap_or(4);
    let seconds: u64 = plain.get(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let dir = AudioDir::new("video-load");
    let flv = dir.file("720p30.flv");
    Clip {
        seconds: seconds as u32 + 2,
        width: 1280,
        height: 720,
        fps: 30,
        gop: 60,
        kbps: 1500,
    }
    .flv_with_speex(&flv);
    let clip = tags(&flv);
    println!("video_load: {calls} calls of 720p30 H.264 at 1.5 Mbit/s + Speex, {seconds} s, {runs} runs alternated with ffmpeg's FLV → RTP repacking");
    let (mut ours, mut audio, mut video, mut anchor, mut latencies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let s = run_sono(calls, seconds, &clip, true);
        let f = run_ffmpeg(calls, seconds, &flv);
        let a = run_sono(calls, seconds, &clip, false);
        println!(
            "run {}: sono {:.3} ms CPU per call-second ({:.2} Mbit/s of video out, mean added latency {:.3} ms per frame), the same audio only {:.3} ms, so video {:.3} ms; ffmpeg {:.3} ms ({:.2} Mbit/s)",
            i + 1,
            s.ms_per_call_second,
            s.mbits_out,
            s.mean_latency_ms,
            a.ms_per_call_second,
            s.ms_per_call_second - a.ms_per_call_second,
            f.ms_per_call_second,
            f.mbits_out
        );
        ours.push(s.ms_per_call_second);
        audio.push(a.ms_per_call_second);
        video.push(s.ms_per_call_second - a.ms_per_call_second);
        anchor.push(f.ms_per_call_second);
        latencies.push(s.mean_latency_ms);
    }
    let (o, v, a) = (median(ours), median(video), median(anchor));
    println!(
        "median: sono {o:.3} ms CPU per video call-second (audio only {:.3}, video's own {v:.3}), ffmpeg's repacking {a:.3} ms: video's own / ffmpeg {:.2}; mean added latency {:.3} ms per frame",
        median(audio),
        v / a,
        median(latencies)
    );
}
