//! Memory of idle registered connections: the release `sono` binary, N
//! Flash-like clients that connect and `register` (implicit URI) and then
//! sit idle; prints sono's resident memory before and after, and the growth
//! per connection, and how long registering took.
//!
//! `cargo bench --bench idle_connections [-- CLIENTS]` (default 2000).

use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::process_stats::rss_kib;
use sono_testkit::{FlashClient, Reply, Sono};

fn main() {
    let clients: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let sono = Sono::start(env!("CARGO_BIN_EXE_sono"), "[log]\nlevel = \"warn\"\n");
    // Let start-up allocations settle.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(sono.pid());
    let start = Instant::now();
    let mut held = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3)
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        match c.call("register", vec![]) {
            Ok(Reply::Result(_)) => {}
            other => panic!("client {i}: register answered {other:?}"),
        }
        held.push(c);
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(sono.pid());
    println!(
        "idle_connections: {clients} registered connections in {took:.2?} ({:.0} per second); \
         RSS {before} KiB → {after} KiB: {:.1} KiB per connection",
        clients as f64 / took.as_secs_f64(),
        after.saturating_sub(before) as f64 / clients as f64
    );
    drop(held);
}
