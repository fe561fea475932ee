//! Load on the HTTP side: the release `sono` binary, N RTMPT tunnel clients
//! that connect and `register` and then only poll, and K live-event (SSE)
//! subscribers on the admin stream. Prints how fast sessions open, sono's
//! resident memory per idle tunnel session and per event stream, the rate
//! of idle polls one client thread gets answered, and how long one event
//! takes to reach every subscriber.
//!
//! `cargo bench --bench http_load [-- SESSIONS [STREAMS]]` (default 500 500).

use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::http::EventStream;
use sono_testkit::process_stats::rss_kib;
use sono_testkit::{FlashClient, Reply, Sono};

const ADMIN: &str = "http-load-admin-key-0123456789";

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse::<usize>().ok());
    let sessions = args.next().unwrap_or(500);
    let streams = args.next().unwrap_or(500);
    let sono = Sono::start(
        env!("CARGO_BIN_EXE_sono"),
        &format!(
            "[log]\nlevel = \"warn\"\n[http]\nadmin_key = \"{ADMIN}\"\nmax_event_streams = {}\n\
             [rtmpt]\nmax_sessions_per_address = {}\nsession_timeout = \"5m\"\n",
            streams + 10,
            sessions + 10
        ),
    );
    std::thread::sleep(Duration::from_millis(500));

    // Tunnel sessions.
    let before = rss_kib(sono.pid());
    let start = Instant::now();
    let mut clients = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let mut c = FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf3)
            .unwrap_or_else(|e| panic!("tunnel client {i}: {e}"));
        match c.call("register", vec![]) {
            Ok(Reply::Result(_)) => {}
            other => panic!("tunnel client {i}: register answered {other:?}"),
        }
        clients.push(c);
    }
    let opened = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after_sessions = rss_kib(sono.pid());
    println!(
        "http_load: {sessions} RTMPT sessions opened, connected and registered in {opened:.2?} \
         ({:.0} per second); RSS {before} KiB → {after_sessions} KiB: {:.1} KiB per session",
        sessions as f64 / opened.as_secs_f64(),
        after_sessions.saturating_sub(before) as f64 / sessions as f64
    );

    // Idle polls, every session in turn, as their clients would.
    let rounds = 10;
    let start = Instant::now();
    for _ in 0..rounds {
        for c in clients.iter_mut() {
            c.tunnel()
                .expect("a tunnel client")
                .poll()
                .expect("an idle poll answered");
        }
    }
    let polled = start.elapsed();
    println!(
        "http_load: {} polls from one client thread in {polled:.2?}: {:.0} per second, {:.0} µs each",
        rounds * sessions,
        (rounds * sessions) as f64 / polled.as_secs_f64(),
        polled.as_micros() as f64 / (rounds * sessions) as f64
    );

    // Event streams, then one event to all of them.
    let before = rss_kib(sono.pid());
    let mut subscribers: Vec<EventStream> = (0..streams)
        .map(|i| {
            let s = EventStream::open(sono.http, "/api/v1/events", ADMIN)
                .unwrap_or_else(|e| panic!("stream {i}: {e}"));
            assert_eq!(s.status, 200, "stream {i}");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let after_streams = rss_kib(sono.pid());
    let sent = Instant::now();
    match clients[0].call("register", vec![]) {
        Ok(Reply::Result(_)) => {}
        other => panic!("register answered {other:?}"),
    }
    for (i, s) in subscribers.iter_mut().enumerate() {
        s.wait_for("Sono.Registration.Status", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("stream {i} did not get the event"));
    }
    let fanned = sent.elapsed();
    println!(
        "http_load: {streams} event streams: RSS {before} KiB → {after_streams} KiB: {:.1} KiB per stream; \
         one event reached all of them in {fanned:.2?}",
        after_streams.saturating_sub(before) as f64 / streams as f64
    );
    drop(subscribers);
    drop(clients);
}
