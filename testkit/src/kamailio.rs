//! Kamailio as a real registrar with digest authentication, on a free
//! loopback port, from `tests/peers/kamailio/kamailio.cfg`; started in the
//! foreground, stopped (and restartable on the same port) by PID.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::free_udp_port;
use crate::sono::require_tool;

pub struct Kamailio {
    child: Option<Child>,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Kamailio {
    pub fn start() -> Kamailio {
        require_tool("kamailio", "kamailio");
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!("sono-kamailio-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for Kamailio");
        let template =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/kamailio/kamailio.cfg");
        let cfg = std::fs::read_to_string(template)
            .expect("tests/peers/kamailio/kamailio.cfg")
            .replace("@PORT@", &port.to_string());
        std::fs::write(dir.join("kamailio.cfg"), cfg).expect("writing Kamailio's config");
        let mut k = Kamailio {
            child: None,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        k.run();
        k
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kamailio.log"))
            .expect("Kamailio's log");
        // Its own process group, so stopping it stops its workers too.
        let child = Command::new("kamailio")
            .process_group(0)
            .arg("-f")
            .arg(self.dir.join("kamailio.cfg"))
            .args(["-DD", "-E", "-w"])
            .arg(&self.dir)
            .arg("-P")
            .arg(self.dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting kamailio");
        self.child = Some(child);
        // Ready once it holds the UDP port.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::UdpSocket::bind(self.addr).is_err() {
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Kamailio did not start:\n{}", self.log());
    }

    /// Stops it: SIGTERM to it (by PID), SIGKILL if it lingers; its
    /// in-memory bindings are lost, as with a real restart.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the main process: it stops its workers itself.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Its worker processes go with the main one; wait for the port.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && std::net::UdpSocket::bind(self.addr).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
