//! baresip as a real SIP user agent: auto-answers on a free loopback port,
//! plays a WAV, records what it hears, traces its SIP (`-s`) to a log file,
//! and is stopped by PID. Configured from `tests/peers/baresip/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::free_udp_port;
use crate::sono::require_tool;

pub struct Baresip {
    child: Option<Child>,
    dir: PathBuf,
    pub addr: SocketAddr,
    tls: bool,
}

/// SIP over TLS for baresip (it listens for TLS one port above its SIP
/// port), and optionally SRTP with SDES keys (its `mediaenc`, e.g.
/// `srtp-mand`: RTP/SAVP offered and required).
#[derive(Clone)]
pub struct BaresipTls {
    /// Its certificate and key in one PEM file.
    pub certificate: PathBuf,
    /// The CA that signed sono's certificate; baresip verifies servers.
    pub ca: PathBuf,
    pub mediaenc: Option<String>,
}

impl Baresip {
    /// Starts baresip with the project's config, offering G.722, PCMU and PCMA
    /// at 16 kHz; it plays `play` in calls and quits by itself after `limit`.
    pub fn start(play: &Path, rtp: (u16, u16), limit: Duration) -> Baresip {
        Self::start_with(
            play,
            rtp,
            limit,
            "G722/16000/1,PCMU/8000/1,PCMA/8000/1",
            16_000,
        )
    }

    /// As [`Baresip::start`], with baresip's codec list (its `audio_codecs`)
    /// and the sample rate of its audio pipeline and recordings.
    pub fn start_with(
        play: &Path,
        rtp: (u16, u16),
        limit: Duration,
        codecs: &str,
        srate: u32,
    ) -> Baresip {
        Self::launch(play, rtp, limit, codecs, srate, None, None)
    }

    /// As [`Baresip::start_with`] or [`Baresip::call`] (when `dial` is
    /// given), with its account on TLS (and SRTP when `tls.mediaenc` says).
    #[allow(clippy::too_many_arguments)]
    pub fn start_tls(
        play: &Path,
        rtp: (u16, u16),
        limit: Duration,
        codecs: &str,
        srate: u32,
        dial: Option<&str>,
        tls: &BaresipTls,
    ) -> Baresip {
        Self::launch(play, rtp, limit, codecs, srate, dial, Some(tls))
    }

    /// As [`Baresip::start_with`], and baresip calls `target` at once (its
    /// `/dial` command), playing `play` once answered.
    pub fn call(
        play: &Path,
        rtp: (u16, u16),
        limit: Duration,
        codecs: &str,
        srate: u32,
        target: &str,
    ) -> Baresip {
        Self::launch(play, rtp, limit, codecs, srate, Some(target), None)
    }

    /// baresip binds its SIP port over UDP, TCP and TLS: a port free for UDP
    /// may be taken for TCP by another test's connection, so a start that
    /// fails on "Address already in use" is tried again on another port.
    fn launch(
        play: &Path,
        rtp: (u16, u16),
        limit: Duration,
        codecs: &str,
        srate: u32,
        dial: Option<&str>,
        tls: Option<&BaresipTls>,
    ) -> Baresip {
        for _ in 0..4 {
            match Self::try_launch(play, rtp, limit, codecs, srate, dial, tls) {
                Ok(b) => return b,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("baresip did not start:\n{log}"),
            }
        }
        panic!("baresip found no free SIP port in four tries");
    }

    fn try_launch(
        play: &Path,
        rtp: (u16, u16),
        limit: Duration,
        codecs: &str,
        srate: u32,
        dial: Option<&str>,
        tls: Option<&BaresipTls>,
    ) -> Result<Baresip, String> {
        require_tool("baresip", "baresip");
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!("sono-baresip-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for baresip");
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/baresip");
        for file in ["config", "accounts", "contacts"] {
            let text = std::fs::read_to_string(peers.join(file)).expect("tests/peers/baresip");
            let text = text
                .replace("@PORT@", &port.to_string())
                .replace("@PLAY@", &play.display().to_string())
                .replace("@RECORD_DIR@", &dir.display().to_string())
                .replace("@RTP@", &format!("{}-{}", rtp.0, rtp.1))
                .replace("@CODECS@", codecs)
                .replace("@SRATE@", &srate.to_string());
            let text = match (file, tls) {
                // srtp.so before account.so: accounts name its mediaenc.
                ("config", Some(t)) => format!(
                    "{}sip_certificate\t\t{}\nsip_cafile\t\t{}\nsip_verify_server\tyes\n",
                    text.replace(
                        "module\t\t\taccount.so",
                        "module\t\t\tsrtp.so\nmodule\t\t\taccount.so"
                    ),
                    t.certificate.display(),
                    t.ca.display()
                ),
                ("accounts", Some(t)) => {
                    let tls_port = port + 1;
                    let mut account = text.replace(
                        &format!(":{port};transport=udp>"),
                        &format!(":{tls_port};transport=tls>"),
                    );
                    if let Some(m) = &t.mediaenc {
                        account = account.trim_end().to_owned() + &format!(";mediaenc={m}\n");
                    }
                    account
                }
                _ => text,
            };
            std::fs::write(dir.join(file), text).expect("writing baresip's config");
        }
        let log = std::fs::File::create(dir.join("baresip.log")).expect("baresip's log");
        let mut command = Command::new("baresip");
        if let Some(target) = dial {
            command.args(["-e", &format!("/dial {target}")]);
        }
        let child = command
            .arg("-f")
            .arg(&dir)
            .arg("-s")
            .args(["-t", &limit.as_secs().max(1).to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting baresip");
        let b = Baresip {
            child: Some(child),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: tls.is_some(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !b.log().contains("baresip is ready") {
            if b.log().contains("Address already in use") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if b.log().contains("baresip is ready") {
            Ok(b)
        } else {
            // Dropping it stops the process and removes its folder.
            Err(b.log())
        }
    }

    /// Its account's URI: over TLS (one port above `addr`) when it was
    /// started with TLS.
    pub fn uri(&self) -> String {
        if self.tls {
            format!("sip:peer@127.0.0.1:{};transport=tls", self.addr.port() + 1)
        } else {
            format!("sip:peer@{}", self.addr)
        }
    }

    /// Everything baresip printed, SIP trace included.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log().contains(needle)
    }

    /// The folder baresip records into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recording of what baresip heard in its (first) call: sndfile's
    /// `dump-…-dec.wav`, complete once the call has ended.
    pub fn heard(&self) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        found.sort();
        found.into_iter().next()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
