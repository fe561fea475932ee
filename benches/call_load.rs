//! Whole-call load: the release `sono` binary between many Flash-like clients
//! and a SIPp UAS (`tests/sipp/uas_200.xml`) on loopback. Each client thread
//! loops dial → `Sono.Call.Status` 4 → hangup → status 0 for the run's length;
//! the tool prints completed calls per second and set-up latency percentiles
//! (dial sent to status 4 received).
//!
//! `cargo bench --bench call_load [-- CLIENTS SECONDS]` (default 50 clients, 10 s).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::{FlashClient, Sipp, Sono};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let binary = env!("CARGO_BIN_EXE_sono");
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_200.xml");
    let limit = Duration::from_secs(seconds + 60);
    let sipp = Sipp::uas(&scenario, 10_000_000, limit, &["-max_recv_loops", "10000"]);
    let sono = Sono::start(
        binary,
        "[log]\nlevel = \"warn\"\n[media]\nrtp_port_min = 32000\nrtp_port_max = 39999\n",
    );
    println!(
        "call_load: {clients} clients for {seconds} s against SIPp at {}",
        sipp.addr
    );

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let setups = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let target = sipp.uri("load");
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done, failed, setups) =
                (stop.clone(), done.clone(), failed.clone(), setups.clone());
            let (rtmp, target) = (sono.rtmp, target.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = FlashClient::connect(rtmp, "load", ObjectEncoding::Amf3) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    c.events.clear();
                    let t0 = Instant::now();
                    if c.send_call("dial", vec![target.as_str().into()]).is_err() {
                        break;
                    }
                    let up = c.wait_for(Duration::from_secs(10), |c| {
                        c.has_call_status(4) || c.has_call_status(0)
                    });
                    if !up || !c.has_call_status(4) {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let _ = c.wait_for(Duration::from_secs(40), |c| c.has_call_status(0));
                        continue;
                    }
                    let setup = t0.elapsed();
                    if c.send_call("hangup", vec![]).is_err() {
                        break;
                    }
                    if c.wait_for(Duration::from_secs(10), |c| c.has_call_status(0)) {
                        done.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut s) = setups.lock() {
                            s.push(setup);
                        }
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let mut setups = setups.lock().map(|s| s.clone()).unwrap_or_default();
    setups.sort();
    let pct = |p: f64| {
        setups
            .get(((setups.len() as f64 * p) as usize).min(setups.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "call_load: {done} calls completed, {failed} failed, {:.0} calls/s; set-up ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        done as f64 / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "call_load: sono metrics: answered {} failed {} rejected SIP messages {}",
        sono.metric("sono_sip_calls_answered_total"),
        sono.metric("sono_sip_calls_failed_total"),
        sono.metric("sono_sip_messages_rejected_total")
    );
    drop(sipp);
}
