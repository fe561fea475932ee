//! Soak mode (`--soak MINUTES`): sono under CALLS concurrent transcoded calls
//! (Speex WB clients ⇄ a PCMU or G.722 SIPp echo) for MINUTES, the way a
//! production node lives rather than a benchmark window:
//! - calls end and start all the time: each lasts 20–90 s; most clients hang
//!   up, one in seven vanishes (its TCP connection dropped, no hangup), and
//!   a new call replaces each one;
//! - the SIP peer is restarted every 5 minutes (killed by PID, a new one on
//!   a new port): calls to the old one lose their peer and must be ended by
//!   sono (`media.rtp_timeout`), new calls go to the new one;
//! - a scanner (as sipvicious' svmap/svwar) sweeps sono's SIP port from
//!   127.0.0.2 with OPTIONS, REGISTER and INVITE at 200 requests a second,
//!   under the default per-source limits (loopback not exempt here).
//!
//! Every 30 s it prints sono's CPU per call-second, calls up, RSS and open
//! file descriptors; at the end: whether sono crashed, calls and media
//! bridges left once every client is gone (calls that did not end), the
//! RSS and fd trend over the run, and what the scanner got.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::*;

/// How often the figures are sampled.
const SAMPLE: Duration = Duration::from_secs(30);
/// How often the SIP peer is restarted.
const PEER_RESTART: Duration = Duration::from_secs(300);
/// The scanner's requests a second.
const SCAN_RATE: u64 = 200;
/// Every this many calls, the client vanishes instead of hanging up.
const VANISH_EVERY: u64 = 7;

#[derive(Default)]
struct Counters {
    dialled: AtomicU64,
    failed: AtomicU64,
    hung_up: AtomicU64,
    vanished: AtomicU64,
    /// Connections sono closed under a client (it never should).
    closed_by_sono: AtomicU64,
    frames_down: AtomicU64,
    scanned: AtomicU64,
    scan_503: AtomicU64,
    scan_other: AtomicU64,
}

struct Sample {
    minute: f64,
    calls: f64,
    cpu_ms_per_call_second: f64,
    rss_kib: u64,
    fds: usize,
}

pub fn run(o: &Options, speech: &Microphone, minutes: u64) {
    let duration = Duration::from_secs(minutes * 60);
    println!(
        "media_load soak: {} calls of Speex WB ⇄ {} for {minutes} min; calls of 20–90 s, 1 in {VANISH_EVERY} clients vanish, SIP peer restarted every {} min, scanner at {SCAN_RATE} req/s",
        o.calls,
        o.codec.to_uppercase(),
        PEER_RESTART.as_secs() / 60
    );
    let mut sono = GatewayProcess::sono_with(
        o.calls,
        "[limits]\nexempt_loopback = false\nrtmp_connects_per_second = 1000\nrtmp_burst = 1000\n\
         [media]\nrtp_timeout = \"10s\"\n",
    );
    let pid = sono.pid();
    let http = sono.http().expect("sono's HTTP side");
    let sip = match &sono {
        GatewayProcess::Sono(s) => s.sip,
        GatewayProcess::Sems { .. } => unreachable!("the soak runs sono"),
    };
    let rtmp = sono.rtmp();
    let target = Arc::new(Mutex::new(String::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();

    // The SIP peer, restarted every PEER_RESTART.
    let peer_thread = {
        let (target, stop) = (target.clone(), stop.clone());
        let codec = o.codec;
        std::thread::spawn(move || {
            let mut restarts = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let peer = echo_peer(codec, PEER_RESTART + Duration::from_secs(120));
                if let Ok(mut t) = target.lock() {
                    *t = peer.uri("echo");
                }
                let until = Instant::now() + PEER_RESTART;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                drop(peer); // killed by PID
                restarts += 1;
            }
            restarts.saturating_sub(1)
        })
    };
    while target.lock().map(|t| t.is_empty()).unwrap_or(true) {
        std::thread::sleep(Duration::from_millis(50));
    }

    // The scanner.
    let scanner = {
        let (stop, counters) = (stop.clone(), counters.clone());
        std::thread::spawn(move || scan(sip, &stop, &counters))
    };

    // Clients: a dialler thread sets calls up (blocking, as Flash would
    // wait for its call) and hands them to one tokio thread that drives them.
    let active = Arc::new(AtomicUsize::new(0));
    let (legs_tx, legs_rx) = std::sync::mpsc::channel::<(Leg, Duration, bool)>();
    let dialler = {
        let (stop, counters, active, target) = (
            stop.clone(),
            counters.clone(),
            active.clone(),
            target.clone(),
        );
        let calls = o.calls;
        std::thread::spawn(move || {
            let mut serial = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if active.load(Ordering::Relaxed) >= calls {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                serial += 1;
                counters.dialled.fetch_add(1, Ordering::Relaxed);
                let to = target.lock().map(|t| t.clone()).unwrap_or_default();
                match set_up_call(rtmp, &to) {
                    Ok(leg) => {
                        // 20–90 s, spread by a cheap hash of the serial.
                        let secs = 20 + (serial.wrapping_mul(2_654_435_761) >> 7) % 71;
                        let vanish = serial.is_multiple_of(VANISH_EVERY);
                        active.fetch_add(1, Ordering::Relaxed);
                        if legs_tx
                            .send((leg, Duration::from_secs(secs), vanish))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(_) => {
                        // A call to a peer being restarted, or sono refusing.
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })
    };
    let driver = {
        let (counters, active) = (counters.clone(), active.clone());
        let period = speech.period;
        let speech: Arc<Vec<Vec<u8>>> = Arc::new(speech.messages.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the clients");
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                let mut n = 0u64;
                loop {
                    let next = legs_rx.try_recv();
                    let (leg, lasts, vanish) = match next {
                        Ok(x) => x,
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            tasks.retain(|t: &tokio::task::JoinHandle<()>| !t.is_finished());
                            continue;
                        }
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                    };
                    n += 1;
                    let (speech, counters, active) =
                        (speech.clone(), counters.clone(), active.clone());
                    let phase = Duration::from_micros((n * 7_919) % 20_000);
                    tasks.push(tokio::spawn(async move {
                        let stats = Arc::new(Mutex::new(LegStats::default()));
                        let farewell = (!vanish).then(hangup_bytes);
                        drive_leg(
                            leg,
                            speech,
                            period,
                            stats.clone(),
                            phase,
                            Instant::now(),
                            lasts,
                            farewell,
                        )
                        .await;
                        if let Ok(s) = stats.lock() {
                            counters
                                .frames_down
                                .fetch_add(s.frames.len() as u64, Ordering::Relaxed);
                            if s.closed {
                                counters.closed_by_sono.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let ended = if vanish {
                            &counters.vanished
                        } else {
                            &counters.hung_up
                        };
                        ended.fetch_add(1, Ordering::Relaxed);
                        active.fetch_sub(1, Ordering::Relaxed);
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };

    // Sampling until the end.
    let hz = clock_ticks_per_second();
    let mut samples = Vec::new();
    let mut crashed = None;
    let mut cpu_before = cpu_ticks(pid);
    let mut calls_before = metric(http, "sono_sip_calls");
    let mut at = Instant::now();
    while started.elapsed() < duration {
        std::thread::sleep(
            SAMPLE
                .min(duration.saturating_sub(started.elapsed()))
                .max(Duration::from_millis(1)),
        );
        if !Path::new(&format!("/proc/{pid}")).exists() {
            crashed = Some(started.elapsed());
            println!(
                "media_load soak: sono is gone after {:.1} min",
                started.elapsed().as_secs_f64() / 60.0
            );
            break;
        }
        let cpu = cpu_ticks(pid);
        let calls_now = metric(http, "sono_sip_calls");
        let interval = at.elapsed().as_secs_f64();
        let call_seconds = (calls_before + calls_now) / 2.0 * interval;
        let cpu_ms = cpu.saturating_sub(cpu_before) as f64 / hz * 1000.0;
        let s = Sample {
            minute: started.elapsed().as_secs_f64() / 60.0,
            calls: calls_now,
            cpu_ms_per_call_second: if call_seconds > 0.0 {
                cpu_ms / call_seconds
            } else {
                0.0
            },
            rss_kib: rss_kib(pid),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        };
        println!(
            "media_load soak: {:5.1} min: {:3.0} calls up, {:.2} ms CPU per call-second, RSS {} KiB, {} fds; dialled {}, failed {}, hung up {}, vanished {}, scanner {} sent / {} got 503",
            s.minute,
            s.calls,
            s.cpu_ms_per_call_second,
            s.rss_kib,
            s.fds,
            counters.dialled.load(Ordering::Relaxed),
            counters.failed.load(Ordering::Relaxed),
            counters.hung_up.load(Ordering::Relaxed),
            counters.vanished.load(Ordering::Relaxed),
            counters.scanned.load(Ordering::Relaxed),
            counters.scan_503.load(Ordering::Relaxed),
        );
        samples.push(s);
        cpu_before = cpu;
        calls_before = calls_now;
        at = Instant::now();
    }

    // Wind down: no new calls; every client ends its call; then nothing
    // may be left in sono.
    stop.store(true, Ordering::Relaxed);
    let _ = dialler.join();
    let _ = driver.join();
    let _ = scanner.join();
    let restarts = peer_thread.join().unwrap_or(0);
    let settle_until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < settle_until
        && (metric(http, "sono_sip_calls") > 0.0 || metric(http, "sono_media_bridges") > 0.0)
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    let left_calls = metric(http, "sono_sip_calls");
    let left_bridges = metric(http, "sono_media_bridges");
    let left_connections = metric(http, "sono_rtmp_connections");
    let limited = metric(http, "sono_rate_limited_total{limit=\"sip\"}");
    let rss_end = rss_kib(pid);
    let fds_end = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    sono.stop();

    // Trends over the steady part (after the first 5 minutes).
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.minute >= 5.0).collect();
    let slope = |f: &dyn Fn(&Sample) -> f64| -> f64 {
        let n = steady.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mx = steady.iter().map(|s| s.minute).sum::<f64>() / n;
        let my = steady.iter().map(|s| f(s)).sum::<f64>() / n;
        let sxy: f64 = steady.iter().map(|s| (s.minute - mx) * (f(s) - my)).sum();
        let sxx: f64 = steady.iter().map(|s| (s.minute - mx).powi(2)).sum();
        if sxx > 0.0 {
            sxy / sxx
        } else {
            0.0
        }
    };
    let mut cpus: Vec<f64> = samples.iter().map(|s| s.cpu_ms_per_call_second).collect();
    cpus.sort_by(f64::total_cmp);
    let c = &counters;
    println!("media_load soak: ---- summary ----");
    println!(
        "media_load soak: sono crashed: {}",
        crashed.map_or("no".to_owned(), |t| format!(
            "yes, after {:.1} min",
            t.as_secs_f64() / 60.0
        ))
    );
    println!(
        "media_load soak: calls dialled {}, not set up {}, hung up {}, vanished {}, connections sono closed under a client {}; SIP peer restarts {restarts}",
        c.dialled.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.hung_up.load(Ordering::Relaxed),
        c.vanished.load(Ordering::Relaxed),
        c.closed_by_sono.load(Ordering::Relaxed),
    );
    println!(
        "media_load soak: left in sono 60 s after the last client: {left_calls} calls, {left_bridges} media bridges, {left_connections} RTMP connections"
    );
    println!(
        "media_load soak: CPU per call-second over {} samples: median {:.2} ms, min {:.2}, max {:.2}",
        cpus.len(),
        percentile(&cpus, 0.5),
        percentile(&cpus, 0.0),
        percentile(&cpus, 1.0)
    );
    println!(
        "media_load soak: RSS {} → {} KiB (steady-state trend {:+.0} KiB/min), fds {} → {} (trend {:+.2}/min); after the calls: RSS {rss_end} KiB, {fds_end} fds",
        samples.first().map_or(0, |s| s.rss_kib),
        samples.last().map_or(0, |s| s.rss_kib),
        slope(&|s| s.rss_kib as f64),
        samples.first().map_or(0, |s| s.fds),
        samples.last().map_or(0, |s| s.fds),
        slope(&|s| s.fds as f64),
    );
    println!(
        "media_load soak: scanner sent {}, got 503 for {}, other answers {}; sono counted {limited} over the SIP limit; audio frames to clients {}",
        c.scanned.load(Ordering::Relaxed),
        c.scan_503.load(Ordering::Relaxed),
        c.scan_other.load(Ordering::Relaxed),
        c.frames_down.load(Ordering::Relaxed),
    );
}

/// An AMF0 `hangup` call, as a client sends it.
fn hangup_bytes() -> Vec<u8> {
    use sono_rtmp::message::command_payload;
    use sono_rtmp::AmfValue;
    let payload = command_payload(
        ObjectEncoding::Amf0,
        &[
            AmfValue::from("hangup"),
            AmfValue::Number(99.0),
            AmfValue::Null,
        ],
    );
    let mut out = Vec::new();
    ChunkEncoder::default().encode(3, 0, type_id::COMMAND_AMF0, 0, &payload, &mut out);
    out
}

/// One value from sono's /metrics (0 when absent).
fn metric(http: SocketAddr, name: &str) -> f64 {
    sono_testkit::http::request(http, "GET", "/metrics", &[], b"")
        .ok()
        .map(|r| r.text())
        .and_then(|body| {
            body.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// OPTIONS, REGISTER and INVITE to random users at SCAN_RATE a second from
/// 127.0.0.2, reading whatever comes back.
fn scan(sip: SocketAddr, stop: &AtomicBool, counters: &Counters) {
    let Ok(socket) = UdpSocket::bind("127.0.0.2:0") else {
        println!("media_load soak: the scanner cannot bind 127.0.0.2");
        return;
    };
    let _ = socket.set_nonblocking(true);
    let me = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let gap = Duration::from_micros(1_000_000 / SCAN_RATE);
    let mut next = Instant::now();
    let mut n = 0u64;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let method = ["OPTIONS", "REGISTER", "INVITE"][(n % 3) as usize];
        let user = 100 + n % 900;
        let request = format!(
            "{method} sip:{user}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-scan{n};rport\r\n\
             From: \"sipvicious\" <sip:{user}@{sip}>;tag=scan{n}\r\nTo: <sip:{user}@{sip}>\r\n\
             Call-ID: scan-{n}@sweep\r\nCSeq: 1 {method}\r\nContact: <sip:{user}@{me}>\r\n\
             Max-Forwards: 70\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
        );
        if socket.send_to(request.as_bytes(), sip).is_ok() {
            counters.scanned.fetch_add(1, Ordering::Relaxed);
        }
        n += 1;
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            if buf[..len].starts_with(b"SIP/2.0 503") {
                counters.scan_503.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.scan_other.fetch_add(1, Ordering::Relaxed);
            }
        }
        next += gap;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}
