//! HAProxy as the balancer in front of sono: a config of the test's own,
//! `@PORT@` replaced by a free loopback port, run in the foreground (`-db`)
//! and stopped by PID.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sono::{free_port, require_tool};

pub struct Haproxy {
    child: Option<Child>,
    dir: PathBuf,
    /// Where the config's `@PORT@` frontend listens.
    pub addr: SocketAddr,
}

impl Haproxy {
    /// Starts HAProxy with `config` (without a `global` section: one that
    /// logs to stderr is put first). Ready once `@PORT@` accepts.
    pub fn start(config: &str) -> Haproxy {
        require_tool("haproxy", "haproxy");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sono-haproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for HAProxy");
        let text = format!(
            "global\n  log stderr format raw local0 info\n  maxconn 4096\n\n{}",
            config.replace("@PORT@", &port.to_string())
        );
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, text).expect("writing HAProxy's config");
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("HAProxy's log");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting haproxy");
        let h = Haproxy {
            child: Some(child),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(h.addr).is_ok() {
                return h;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("HAProxy did not start:\n{}", h.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
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
