//! The real `sono` binary for end-to-end tests: free loopback ports, a settings
//! file of the test's own, logs captured to a file, stopped by PID on drop.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Fails the test, naming what to install, unless `tool` is on the PATH.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: install the Debian package {package} (scripts/install-deps.sh installs every peer)"
    );
}

/// What a bounded child process printed, and how it ended (`None`: killed
/// after its time).
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// As [`wait_or_kill`], reading the child's piped stdout and stderr meanwhile
/// (on threads, so a chatty child cannot block on a full pipe).
pub fn wait_with_output_or_kill(mut child: Child, timeout: Duration) -> Finished {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_or_kill(child, timeout);
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Waits up to `timeout` for `child` to exit; kills it after that (`None`).
pub fn wait_or_kill(mut child: Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Sends `signal` (`-TERM`, `-INT`, `-KILL`) to `child` by its PID.
pub fn send_signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status();
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Sono {
    child: Option<Child>,
    dir: PathBuf,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    pub sip: SocketAddr,
}

impl Sono {
    /// Starts `binary` with `extra` appended to its settings (TOML sections other
    /// than the listen addresses, which are chosen here). Ports are probed free
    /// and then bound by sono, so another process can take one in between: a
    /// start that fails with "in use" is retried on fresh ports.
    pub fn start(binary: &str, extra: &str) -> Sono {
        for _ in 0..4 {
            let mut sono = Sono::spawn(binary, extra);
            match sono.wait_ready() {
                Ok(()) => return sono,
                Err(log) if log.contains("in use") => continue,
                Err(log) => panic!("sono did not become ready; its log:\n{log}"),
            }
        }
        panic!("sono found no free ports in four tries");
    }

    fn spawn(binary: &str, extra: &str) -> Sono {
        let rtmp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let sip = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dir =
            std::env::temp_dir().join(format!("sono-test-{}-{}", std::process::id(), rtmp.port()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let mut extra = sections(extra);
        let mut config = String::new();
        for (section, ours) in [
            ("log", String::new()),
            ("rtmp", format!("listen = \"{rtmp}\"\n")),
            ("http", format!("listen = \"{http}\"\n")),
            ("sip", format!("listen = \"{sip}\"\n")),
        ] {
            let theirs = extra.remove(section).unwrap_or_default();
            config.push_str(&format!("[{section}]\n{ours}{theirs}\n"));
        }
        for (section, theirs) in extra {
            config.push_str(&format!("[{section}]\n{theirs}\n"));
        }
        let config_path = dir.join("sono.toml");
        std::fs::write(&config_path, config).expect("writing the test settings");
        let log = std::fs::File::create(dir.join("sono.log")).expect("creating the log file");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting sono");
        Sono {
            child: Some(child),
            dir,
            rtmp,
            http,
            sip,
        }
    }

    /// Waits for `/healthz`, which answers once every listener is bound. (An
    /// RTMP probe connection would count against `rtmp.max_connections`.)
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.get("/healthz").is_some() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            if exited {
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.log())
    }

    /// Everything sono logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sono.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; false after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `GET path` on the HTTP side: the body of a 200 answer.
    pub fn get(&self, path: &str) -> Option<String> {
        crate::http::request(self.http, "GET", path, &[], b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.text())
    }

    /// The Prometheus samples of `/metrics`, by name with labels.
    pub fn metrics(&self) -> HashMap<String, f64> {
        self.get("/metrics")
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    pub fn metric(&self, name: &str) -> f64 {
        self.metrics().get(name).copied().unwrap_or(0.0)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM (drain, then exit) and waits for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal_and_wait("-TERM", timeout)
    }

    /// Sends SIGINT (end calls at once, then exit) and waits for the process
    /// to exit.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal_and_wait("-INT", timeout)
    }

    /// Sends a signal (`-TERM`, `-INT`) without waiting.
    pub fn send_signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            send_signal(child, signal);
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; kills it
    /// after that (`None`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.take()?;
        wait_or_kill(child, timeout)
    }

    fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.take()?;
        send_signal(&child, signal);
        wait_or_kill(child, timeout)
    }
}

impl Drop for Sono {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Groups the lines of a TOML snippet by section, so the harness can merge its
/// own keys into the same sections (TOML forbids a section twice).
fn sections(extra: &str) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut current = String::new();
    for line in extra.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t.trim_matches(['[', ']']).to_owned();
            continue;
        }
        let section = out.entry(current.clone()).or_default();
        section.push_str(line);
        section.push('\n');
    }
    out
}

impl Sono {
    /// ffmpeg publishing a `hz` tone as Speex under the stream key `key`, as
    /// an RTMP tool does (a page then controls the connection with the key):
    /// returned once the key works as a token. Stop it by its handle.
    pub fn ffmpeg_publishing_under_key(&self, key: &str, hz: u32) -> Child {
        require_tool("ffmpeg", "ffmpeg");
        let child = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("sine=frequency={hz}:sample_rate=16000:duration=60"))
            .args(["-ar", "16000", "-ac", "1", "-c:a", "libspeex", "-f", "flv"])
            .arg(format!("rtmp://{}/phone/{key}", self.rtmp))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ffmpeg");
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::http::get(self.http, "/api/v1/token", key).map_or(true, |r| r.status != 200) {
            assert!(
                Instant::now() < deadline,
                "ffmpeg never published\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }
}

/// `tests/browser`, where the headless-Chromium drivers live, once Debian's
/// chromium, node and playwright-core are there (a test fails, naming what
/// to install, when one is missing).
pub fn browser_dir() -> PathBuf {
    require_tool("chromium", "chromium");
    require_tool("node", "nodejs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run scripts/install-deps.sh (npm ci in tests/browser)"
    );
    dir
}
