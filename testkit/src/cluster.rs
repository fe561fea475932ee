//! A cluster of sono nodes behind Kamailio and HAProxy, each in its own
//! network namespace (see [`crate::netns`]), for the cluster test and the
//! cluster load tool. The topology and the peers' configs are the ones
//! docs/cluster.md shows (tests/peers/cluster/):
//!
//! | member | address | what |
//! |---|---|---|
//! | `kam` | 10.200.0.2 | Kamailio: registrar, dispatcher, record-route |
//! | `hap` | 10.200.0.3 | HAProxy: RTMP 1935 (TCP), HTTP 8080 |
//! | `n1`..`n3` | 10.200.0.11..13 | sono nodes (RTMP 1935, HTTP 8080, SIP 5060) |
//! | `cli` | 10.200.0.100 | clients, the SIP trunk (SIPp, 5070), SIP callers |
//!
//! [`Cluster::start`] moves the calling thread into `cli`, so the test's own
//! clients connect from there.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::netns::{Network, Process};
use crate::sono::require_tool;

/// The admin key of every node.
pub const ADMIN: &str = "cluster-admin-key-0123456789abcdef";
pub const KAMAILIO: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
pub const HAPROXY: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 3);
pub const CLIENTS: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 100);
/// Where the trunk (SIPp answering dialled calls) listens, in `cli`.
pub const TRUNK_PORT: u16 = 5070;

/// Node `i` (0-based: n1 is 0).
pub fn node_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, 0, 11 + i as u8)
}

pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// Which node (0-based) handed out a token or RTMPT session id (`n2-…`).
pub fn node_of(secret: &str) -> Option<usize> {
    let (name, _) = secret.split_once('-')?;
    let n: usize = name.strip_prefix('n')?.parse().ok()?;
    n.checked_sub(1)
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/cluster")
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/sipp/{name}.xml"))
}

pub struct Cluster {
    binary: String,
    extra: String,
    node_count: usize,
    nodes: Vec<Option<Process>>,
    kamailio: Option<Process>,
    haproxy: Option<Process>,
    trunk: Option<Process>,
    pub dir: PathBuf,
    // Last: the namespaces go once every process in them is stopped.
    pub net: Network,
}

impl Cluster {
    /// `nodes` sono nodes (1 to 3) with `extra` appended to each one's
    /// settings, Kamailio, HAProxy and the trunk; returns once all answer.
    pub fn start(binary: &str, nodes: usize, extra: &str) -> Cluster {
        assert!((1..=3).contains(&nodes));
        for (tool, package) in [
            ("kamailio", "kamailio"),
            ("haproxy", "haproxy"),
            ("sipp", "sip-tester"),
            ("ip", "iproute2"),
        ] {
            require_tool(tool, package);
        }
        let mut members = vec![("kam", KAMAILIO), ("hap", HAPROXY), ("cli", CLIENTS)];
        let names: Vec<String> = (0..nodes).map(node_name).collect();
        for (i, name) in names.iter().enumerate() {
            members.push((name.as_str(), node_address(i)));
        }
        let net = Network::create(&members);
        let dir = std::env::temp_dir().join(format!("sono-cluster-{}", net.ns("x")));
        std::fs::create_dir_all(&dir).expect("a folder for the cluster");
        net.enter("cli");
        let mut cluster = Cluster {
            binary: binary.to_owned(),
            extra: extra.to_owned(),
            node_count: nodes,
            nodes: (0..nodes).map(|_| None).collect(),
            kamailio: None,
            haproxy: None,
            trunk: None,
            dir,
            net,
        };
        for i in 0..nodes {
            cluster.start_node(i);
        }
        cluster.start_kamailio();
        cluster.start_haproxy();
        cluster.start_trunk();
        cluster
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The settings of node `i`.
    fn node_config(&self, i: usize) -> String {
        let me = node_address(i);
        let nodes: Vec<String> = (0..3)
            .map(|n| format!("{} = \"{}:8080\"", node_name(n), node_address(n)))
            .collect();
        // The caller's own [log] (a load run's "warn") replaces ours.
        let log = if self.extra.contains("[log]") {
            ""
        } else {
            "[log]\nlevel = \"info\"\n"
        };
        format!(
            "{log}\
             [rtmp]\nlisten = \"{me}:1935\"\nmax_connections = 5000\nidle_timeout = \"600s\"\nping_interval = \"300s\"\n\
             [http]\nlisten = \"{me}:8080\"\nadmin_key = \"{ADMIN}\"\n\
             [sip]\nlisten = \"{me}:5060\"\ndomain = \"{KAMAILIO}\"\noutbound_proxy = \"sip:{KAMAILIO}:5060\"\nimplicit_registrar = \"{KAMAILIO}:5060\"\nregister_expires = 60\nmax_calls = 2000\n\
             [sip.dial_plan]\nallow = ['sip:[^@]+@10\\.200\\.0\\.2(:5060)?']\n\
             [media]\naddress = \"{me}\"\nrtp_port_min = 30000\nrtp_port_max = 39999\nrtp_timeout = \"6s\"\n\
             [limits]\nexempt = [\"{KAMAILIO}/32\"]\nrtmp_connects_per_second = 2000\nrtmp_burst = 2000\nrest_calls_per_second = 2000\nrest_burst = 2000\n\
             [cluster]\nnode_id = \"{}\"\nnodes = {{ {} }}\ntrusted_proxies = [\"{HAPROXY}/32\"]\nproxy_protocol = true\n\
             [shutdown]\ngrace = \"30s\"\n{}\n",
            node_name(i),
            nodes.join(", "),
            self.extra
        )
    }

    /// Starts (or restarts) node `i` and waits for its `/healthz`.
    pub fn start_node(&mut self, i: usize) {
        let config = self.dir.join(format!("{}.toml", node_name(i)));
        std::fs::write(&config, self.node_config(i)).expect("writing a node's settings");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", node_name(i))))
            .expect("a node's log");
        let mut command = self.net.command(&node_name(i), &self.binary);
        command
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log);
        self.nodes[i] = Some(self.net.spawn(command, &node_name(i)));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.healthz(i) == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start:\n{}", node_name(i), self.node_log(i));
    }

    fn start_kamailio(&mut self) {
        let cfg = std::fs::read_to_string(peers_dir().join("kamailio.cfg"))
            .expect("tests/peers/cluster/kamailio.cfg")
            .replace("@DIR@", &self.dir.display().to_string());
        std::fs::write(self.dir.join("kamailio.cfg"), cfg).expect("writing kamailio.cfg");
        std::fs::copy(
            peers_dir().join("dispatcher.list"),
            self.dir.join("dispatcher.list"),
        )
        .expect("copying dispatcher.list");
        let log = std::fs::File::create(self.dir.join("kamailio.log")).expect("Kamailio's log");
        let mut command = self.net.command("kam", "kamailio");
        command
            .arg("-f")
            .arg(self.dir.join("kamailio.cfg"))
            .args(["-DD", "-E", "-w"])
            .arg(&self.dir)
            // 256 MB of shared memory: at hundreds of set-ups a second the
            // default 64 MB runs out (every transaction waits 5 s after).
            .args(["-m", "256"])
            .arg("-P")
            .arg(self.dir.join("kamailio.pid"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.kamailio = Some(self.net.spawn(command, "kamailio"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if sip_options(SocketAddr::from((KAMAILIO, 5060)), "").as_deref() == Some("200") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Kamailio did not start:\n{}", self.kamailio_log());
    }

    fn start_haproxy(&mut self) {
        let log = std::fs::File::create(self.dir.join("haproxy.log")).expect("HAProxy's log");
        let mut command = self.net.command("hap", "haproxy");
        command
            .args(["-db", "-f"])
            .arg(peers_dir().join("haproxy.cfg"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.haproxy = Some(self.net.spawn(command, "haproxy"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&self.http(), Duration::from_millis(200))
                .is_ok()
            {
                // Its first health checks (every 500 ms) see the nodes up.
                std::thread::sleep(Duration::from_millis(1200));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("HAProxy did not start:\n{}", self.haproxy_log());
    }

    fn start_trunk(&mut self) {
        let out = std::fs::File::create(self.dir.join("trunk.log")).expect("the trunk's log");
        let mut command = self.net.command("cli", "sipp");
        command
            .current_dir(&self.dir)
            .arg("-sf")
            .arg(scenario("cluster_trunk"))
            .args(["-i", &CLIENTS.to_string(), "-mi", &CLIENTS.to_string()])
            .args(["-p", &TRUNK_PORT.to_string(), "-mp", "6000"])
            .args(["-m", "1000000", "-aa", "-nostdin", "-trace_err"])
            .args(["-error_file", "trunk_errors.log"])
            .stdout(out.try_clone().expect("log"))
            .stderr(out);
        self.trunk = Some(self.net.spawn(command, "the trunk (sipp)"));
        std::thread::sleep(Duration::from_millis(300));
    }

    /// HAProxy's RTMP frontend.
    pub fn rtmp(&self) -> SocketAddr {
        SocketAddr::from((HAPROXY, 1935))
    }

    /// HAProxy's HTTP frontend (RTMPT, REST, SSE).
    pub fn http(&self) -> SocketAddr {
        SocketAddr::from((HAPROXY, 8080))
    }

    /// Node `i`'s own HTTP address (the tests' look behind the proxy).
    pub fn node_http(&self, i: usize) -> SocketAddr {
        SocketAddr::from((node_address(i), 8080))
    }

    pub fn kamailio_sip(&self) -> SocketAddr {
        SocketAddr::from((KAMAILIO, 5060))
    }

    /// `/healthz` of node `i`: its status, 0 when it does not answer.
    pub fn healthz(&self, i: usize) -> u16 {
        crate::http::request(self.node_http(i), "GET", "/healthz", &[], b"").map_or(0, |r| r.status)
    }

    /// A Prometheus sample of node `i` (0 if it does not answer).
    pub fn metric(&self, i: usize, name: &str) -> f64 {
        crate::http::request(self.node_http(i), "GET", "/metrics", &[], b"")
            .ok()
            .and_then(|r| {
                r.text().lines().find_map(|l| {
                    let (k, v) = l.rsplit_once(' ')?;
                    (k == name).then(|| v.parse().ok())?
                })
            })
            .unwrap_or(0.0)
    }

    /// The sum of a sample over the running nodes.
    pub fn total(&self, name: &str) -> f64 {
        (0..self.node_count).map(|i| self.metric(i, name)).sum()
    }

    pub fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", node_name(i)))).unwrap_or_default()
    }

    pub fn kamailio_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    pub fn haproxy_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// Every log, for a failing assertion's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.node_count {
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                node_name(i),
                tail(&self.node_log(i), 60)
            ));
        }
        out.push_str(&format!(
            "--- kamailio ---\n{}\n--- haproxy ---\n{}\n",
            tail(&self.kamailio_log(), 60),
            tail(&self.haproxy_log(), 30)
        ));
        out
    }

    /// Waits until Kamailio's log holds `needle`; how long it took.
    pub fn wait_kamailio_log(&self, needle: &str, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.kamailio_log().contains(needle) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Node `i`'s process id (0 if it is not running).
    pub fn node_pid(&self, i: usize) -> u32 {
        self.nodes[i].as_ref().map_or(0, Process::pid)
    }

    /// Sends `signal` (`-TERM`, `-KILL`) to node `i`.
    pub fn signal_node(&self, i: usize, signal: &str) {
        if let Some(p) = &self.nodes[i] {
            p.signal(signal);
        }
    }

    /// Waits for node `i` to exit; its exit status.
    pub fn wait_node(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.nodes[i].as_mut()?.wait(timeout)
    }

    /// SIPp in `cli` calling, through Kamailio, each user of `users` once
    /// (`calls_per_second` at most): the scenario `cluster_call_users`.
    pub fn call_users(&self, users: &[String], calls_per_second: u32, tag: &str) -> Process {
        let inf = self.dir.join(format!("{tag}.csv"));
        let mut text = String::from("SEQUENTIAL\n");
        for u in users {
            text.push_str(&format!("{u};\n"));
        }
        std::fs::write(&inf, text).expect("writing the injection file");
        let out = std::fs::File::create(self.dir.join(format!("{tag}.log"))).expect("a log");
        let mut command = self.net.command("cli", "sipp");
        command
            .current_dir(&self.dir)
            .arg(self.kamailio_sip().to_string())
            .arg("-sf")
            .arg(scenario("cluster_call_users"))
            .arg("-inf")
            .arg(&inf)
            .args(["-i", &CLIENTS.to_string(), "-mi", &CLIENTS.to_string()])
            .args(["-p", "0", "-mp", "7000"])
            .args(["-m", &users.len().to_string()])
            .args(["-r", &calls_per_second.to_string()])
            .args([
                "-timeout",
                "60s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
            ])
            .args(["-error_file", &format!("{tag}_errors.log")])
            .args(["-trace_stat", "-stf", &format!("{tag}_stats.csv")])
            .stdout(out.try_clone().expect("log"))
            .stderr(out);
        self.net.spawn(command, "sipp (caller)")
    }

    /// What a `call_users` run wrote: its output and errors.
    pub fn sipp_report(&self, tag: &str) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "{}\n{}",
            tail(&read(&format!("{tag}.log")), 40),
            tail(&read(&format!("{tag}_errors.log")), 40)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends an OPTIONS to `to` (a user, or none); the status it got back.
pub fn sip_options(to: SocketAddr, user: &str) -> Option<String> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let port = sock.local_addr().ok()?.port();
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let msg = format!(
        "OPTIONS sip:{at}{to} SIP/2.0\r\nVia: SIP/2.0/UDP {CLIENTS}:{port};branch=z9hG4bKprobe{port};rport\r\n\
From: <sip:probe@{CLIENTS}>;tag=p{port}\r\nTo: <sip:{at}{to}>\r\nCall-ID: probe-{port}@{CLIENTS}\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), to).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .map(str::to_owned)
}
