//! SIPp (Debian's `sip-tester`) as a scripted SIP peer: one call of a scenario
//! file on a free loopback port, every message it sends and receives traced
//! to a file, stopped by PID when the test is done with it.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::sono::{require_tool, wait_or_kill};

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// A free base for SIPp's media ports: it binds audio RTP and RTCP at
/// `-mp` and `-mp`+1, and video at +2 and +3, so all four must be free
/// (one free port alone once collided with another test's video port).
fn free_media_ports() -> u16 {
    for _ in 0..100 {
        let base = free_udp_port() & !1;
        if !(1024..=u16::MAX - 3).contains(&base) {
            continue;
        }
        let held: Vec<_> = (base..base + 4)
            .map_while(|p| UdpSocket::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == 4 {
            return base;
        }
    }
    panic!("no four free UDP ports in a row on loopback for SIPp's media");
}

pub struct Sipp {
    child: Option<Child>,
    dir: PathBuf,
    pub addr: SocketAddr,
    pub media_port: u16,
}

impl Sipp {
    /// Runs `scenario` as a UAS for `calls` calls (`-m`), giving up after `limit`.
    pub fn uas(scenario: &Path, calls: u32, limit: Duration, extra: &[&str]) -> Sipp {
        let sipp = Self::spawn(scenario, calls, limit, extra, None);
        // SIPp binds before it reads the scenario's first message; give it a moment.
        let tcp = extra
            .windows(2)
            .any(|w| w[0] == "-t" && w[1].starts_with('t'));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let ready = if tcp {
                std::net::TcpStream::connect(sipp.addr).is_ok()
            } else {
                UdpSocket::bind(sipp.addr).is_err()
            };
            if ready {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sipp
    }

    /// Runs `scenario` as a UAC: one call to `sip:USER@TARGET` (`-s USER`),
    /// giving up after `limit`.
    pub fn uac(
        scenario: &Path,
        target: SocketAddr,
        user: &str,
        limit: Duration,
        extra: &[&str],
    ) -> Sipp {
        let mut args = vec!["-s".to_owned(), user.to_owned()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::spawn(scenario, 1, limit, &args, Some(target))
    }

    fn spawn(
        scenario: &Path,
        calls: u32,
        limit: Duration,
        extra: &[&str],
        target: Option<SocketAddr>,
    ) -> Sipp {
        require_tool("sipp", "sip-tester");
        let port = free_udp_port();
        let media_port = free_media_ports();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!("sono-sipp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for SIPp's traces");
        let out = std::fs::File::create(dir.join("stdout.log")).expect("SIPp's output file");
        let err = out.try_clone().expect("SIPp's output file");
        let mut cmd = Command::new("sipp");
        if let Some(t) = target {
            cmd.arg(t.to_string());
        }
        let child = cmd
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
            .args(["-m", &calls.to_string()])
            .args(["-timeout", &format!("{}s", limit.as_secs().max(1))])
            .arg("-timeout_error")
            .args(["-trace_msg", "-message_file", "messages.log"])
            .args(["-trace_err", "-error_file", "errors.log"])
            .args(["-nostdin"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting sipp");
        Sipp {
            child: Some(child),
            dir,
            addr,
            media_port,
        }
    }

    /// The SIPp process id (0 once it has been waited for).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `sip:USER@127.0.0.1:PORT` of this SIPp.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Waits for SIPp to finish its calls; kills it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.take()?;
        wait_or_kill(child, timeout)
    }

    /// Asserts SIPp ran its scenario to the end (exit status 0), showing its traces if not.
    pub fn assert_success(&mut self, timeout: Duration) {
        let status = self.wait(timeout);
        assert!(
            status.is_some_and(|s| s.success()),
            "SIPp did not complete its scenario ({status:?}).\n--- errors ---\n{}\n--- output ---\n{}\n--- messages ---\n{}",
            self.read("errors.log"),
            self.read("stdout.log"),
            self.messages()
        );
    }

    /// Every message SIPp sent and received, as it traced them.
    pub fn messages(&self) -> String {
        self.read("messages.log")
    }

    /// A file in SIPp's working folder (what a scenario's `<exec>` wrote).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    /// The messages SIPp received, each as text.
    pub fn received(&self) -> Vec<String> {
        let log = self.messages();
        log.split("----------------------------------------------- ")
            .filter(|block| block.contains("message received"))
            .filter_map(|block| {
                block
                    .split_once("bytes :")
                    .map(|(_, m)| m.trim().to_owned())
            })
            .collect()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
