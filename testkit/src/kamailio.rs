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
    /// Its SIP over TLS address, when started with [`Kamailio::start_tls`].
    pub tls_addr: Option<SocketAddr>,
}

impl Kamailio {
    pub fn start() -> Kamailio {
        Self::launch(None)
    }

    /// As [`Kamailio::start`], also listening for SIP over TLS (its tls
    /// module, `kamailio-tls-modules`) with `certs`' `peer` certificate; as
    /// a TLS client it verifies servers against the test CA.
    pub fn start_tls(certs: &crate::TestCertificates) -> Kamailio {
        Self::launch(Some(certs))
    }

    fn launch(certs: Option<&crate::TestCertificates>) -> Kamailio {
        require_tool("kamailio", "kamailio");
        let modules = "/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so";
        if certs.is_some() && !Path::new(modules).exists() {
            panic!("Kamailio's tls module is missing: install kamailio-tls-modules (scripts/install-deps.sh)");
        }
        let port = free_udp_port();
        let tls_port = crate::sono::free_port();
        let dir = std::env::temp_dir().join(format!("sono-kamailio-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for Kamailio");
        let template =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/kamailio/kamailio.cfg");
        let cfg = std::fs::read_to_string(template)
            .expect("tests/peers/kamailio/kamailio.cfg")
            .replace("@PORT@", &port.to_string())
            .replace("@TLS_PORT@", &tls_port.to_string())
            .replace("@TLS_CFG@", &dir.join("tls.cfg").display().to_string());
        std::fs::write(dir.join("kamailio.cfg"), cfg).expect("writing Kamailio's config");
        if let Some(certs) = certs {
            let tls = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                 certificate = {}\nprivate_key = {}\n\n\
                 [client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\nca_list = {}\n",
                certs.certificate("peer").display(),
                certs.key("peer").display(),
                certs.ca().display()
            );
            std::fs::write(dir.join("tls.cfg"), tls).expect("writing Kamailio's tls.cfg");
        }
        let mut k = Kamailio {
            child: None,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls_addr: certs.map(|_| SocketAddr::from(([127, 0, 0, 1], tls_port))),
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
        let mut command = Command::new("kamailio");
        if self.tls_addr.is_some() {
            command.args(["-A", "WITH_TLS"]);
        }
        let child = command
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
