//! Registrations and call set-ups per second through Kamailio and HAProxy,
//! with 1 sono node against 3, on the same machine and in the same run
//! (testkit's `cluster`: network namespaces on a bridge; needs root).
//!
//! `cargo bench --bench cluster_load [-- CLIENTS SECONDS --runs N]`
//! (defaults 600 clients, 10 s of calls, 3 runs of each size, alternated).
//!
//! - **Registrations per second**: CLIENTS clients connect through HAProxy
//!   from 8 threads and `register()`; each node registers the implicit URI
//!   at Kamailio. The clock stops when every node's `sono_registrations`
//!   adds up to CLIENTS (Kamailio answered every REGISTER).
//! - **Call set-ups per second**: 48 threads, each with 4 of those
//!   clients, dial the trunk (SIPp behind Kamailio) one call after
//!   another for SECONDS: dial, answered (status 4), hang up, ended. A
//!   set-up is a call answered; its time is dial to status 4.

use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::cluster::Cluster;
use sono_testkit::FlashClient;

/// Threads connecting and registering clients.
const THREADS: usize = 8;
/// Concurrent callers (each a client calling one call after another): a
/// closed loop, so enough of them to keep the nodes busy.
const CALLERS: usize = 48;

struct Run {
    nodes: usize,
    /// CPU time of every sono node per call set up, and sono's share of
    /// the machine's busy CPU meanwhile.
    sono_cpu_ms_per_setup: f64,
    sono_share: f64,
    registrations_per_second: f64,
    setups_per_second: f64,
    setup_ms_median: f64,
    failed: usize,
}

/// CPU seconds a process used so far (utime + stime, /proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) ends with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // utime and stime: the 12th and 13th fields after the name.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

/// The machine's busy CPU seconds so far (all but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle) as f64 / 100.0
}

fn connect(cluster: &Cluster) -> FlashClient {
    let mut c = FlashClient::connect(cluster.rtmp(), "phone", ObjectEncoding::Amf3)
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", cluster.logs()));
    c.register_implicit()
        .unwrap_or_else(|e| panic!("register: {e}\n{}", cluster.logs()));
    c
}

fn run(nodes: usize, clients: usize, seconds: u64) -> Run {
    let cluster = Cluster::start(
        env!("CARGO_BIN_EXE_sono"),
        nodes,
        "[log]\nlevel = \"warn\"\n",
    );
    // Registrations.
    let start = Instant::now();
    let held: Vec<Vec<FlashClient>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let cluster = &cluster;
                s.spawn(move || {
                    (0..clients)
                        .filter(|i| i % THREADS == t)
                        .map(|_| connect(cluster))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a client thread"))
            .collect()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.total("sono_registrations") < clients as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let registered = cluster.total("sono_registrations");
    assert_eq!(registered, clients as f64, "{}", cluster.logs());
    let registrations_per_second = clients as f64 / start.elapsed().as_secs_f64();

    // Call set-ups: CALLERS threads, each with its own few clients.
    let window = Duration::from_secs(seconds);
    let mut callers: Vec<Vec<FlashClient>> = (0..CALLERS).map(|_| Vec::new()).collect();
    for (i, c) in held.into_iter().flatten().enumerate() {
        callers[i % CALLERS].push(c);
    }
    let sono_cpu = |cluster: &Cluster| -> f64 {
        (0..cluster.node_count())
            .map(|i| cpu_seconds(cluster.node_pid(i)))
            .sum()
    };
    let (sono_before, busy_before) = (sono_cpu(&cluster), machine_busy_seconds());
    let results: Vec<(usize, Vec<f64>, usize)> = std::thread::scope(|s| {
        let workers: Vec<_> = callers
            .iter_mut()
            .filter(|mine| !mine.is_empty())
            .map(|mine| {
                s.spawn(move || {
                    let n = mine.len().min(4);
                    let mine = &mut mine[..n];
                    let end = Instant::now() + window;
                    let (mut setups, mut times, mut failed) = (0usize, Vec::new(), 0usize);
                    let mut k = 0;
                    while Instant::now() < end {
                        let c = &mut mine[k % mine.len()];
                        k += 1;
                        let before = c.call_statuses().len();
                        let dialled = Instant::now();
                        if c.send_call("dial", vec!["sip:trunk@10.200.0.2".into()])
                            .is_err()
                        {
                            failed += 1;
                            continue;
                        }
                        let answered = c.wait_for(Duration::from_secs(10), |c| {
                            c.call_statuses()[before..]
                                .iter()
                                .any(|(st, _, _)| *st == 4 || *st == 0)
                        }) && c.call_statuses()[before..]
                            .iter()
                            .any(|(st, _, _)| *st == 4);
                        if answered {
                            setups += 1;
                            times.push(dialled.elapsed().as_secs_f64() * 1000.0);
                        } else {
                            if failed == 0 {
                                eprintln!("a call failed: {:?}", &c.call_statuses()[before..]);
                            }
                            failed += 1;
                        }
                        let _ = c.call("hangup", vec![]);
                        let _ = c.wait_for(Duration::from_secs(10), |c| {
                            c.call_statuses().last().is_some_and(|(st, _, _)| *st == 0)
                        });
                    }
                    (setups, times, failed)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a caller thread"))
            .collect()
    });
    let sono_used = sono_cpu(&cluster) - sono_before;
    let busy = machine_busy_seconds() - busy_before;
    let setups: usize = results.iter().map(|r| r.0).sum();
    let failed: usize = results.iter().map(|r| r.2).sum();
    let mut times: Vec<f64> = results.into_iter().flat_map(|r| r.1).collect();
    times.sort_by(f64::total_cmp);
    drop(callers);
    Run {
        nodes,
        sono_cpu_ms_per_setup: sono_used * 1000.0 / setups.max(1) as f64,
        sono_share: sono_used / busy.max(1e-9),
        registrations_per_second,
        setups_per_second: setups as f64 / window.as_secs_f64(),
        setup_ms_median: times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        failed,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u64> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3usize);
    let clients = numbers.first().copied().unwrap_or(600) as usize;
    let seconds = numbers.get(1).copied().unwrap_or(10);
    let mut all = Vec::new();
    for r in 0..runs {
        // Alternated, so both sizes see the same drift of a shared machine.
        for nodes in [1, 3] {
            let result = run(nodes, clients, seconds);
            println!(
                "run {r} nodes {}: {:.0} registrations/s, {:.1} call set-ups/s (median set-up {:.1} ms, {} failed); sono {:.2} ms CPU per set-up, {:.0} % of the busy CPU",
                result.nodes,
                result.registrations_per_second,
                result.setups_per_second,
                result.setup_ms_median,
                result.failed,
                result.sono_cpu_ms_per_setup,
                result.sono_share * 100.0
            );
            all.push(result);
        }
    }
    for nodes in [1, 3] {
        let of =
            |f: fn(&Run) -> f64| median(all.iter().filter(|r| r.nodes == nodes).map(f).collect());
        println!(
            "median, {nodes} node(s): {:.0} registrations/s, {:.1} call set-ups/s, set-up {:.1} ms, sono {:.2} ms CPU per set-up ({:.0} % of the busy CPU)",
            of(|r| r.registrations_per_second),
            of(|r| r.setups_per_second),
            of(|r| r.setup_ms_median),
            of(|r| r.sono_cpu_ms_per_setup),
            of(|r| r.sono_share * 100.0)
        );
    }
    println!(
        "{clients} clients, {CALLERS} concurrent callers, {seconds} s of calls, {} CPU(s)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
