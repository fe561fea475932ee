//! Video for tests: H.264 clips made with ffmpeg (libx264), the checksum of
//! every decoded frame (ffmpeg's `framemd5`), and a relay that stands
//! between an RTP sender and sono, dropping a share of the packets and
//! counting the keyframe requests (RTCP PLI and FIR, RFC 4585 §6.3.1,
//! RFC 5104 §4.3.1) sono sends back towards the sender.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sono::require_tool;

/// What a clip is made of.
#[derive(Debug, Clone, Copy)]
pub struct Clip {
    pub seconds: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Frames from one IDR to the next.
    pub gop: u32,
    pub kbps: u32,
}

impl Clip {
    /// A phone's stream: 30 frames a second, an IDR every second.
    pub fn phone(seconds: u32, (width, height): (u32, u32), kbps: u32) -> Clip {
        Clip {
            seconds,
            width,
            height,
            fps: 30,
            gop: 30,
            kbps,
        }
    }

    /// ffmpeg's libx264 arguments for the clip: Constrained Baseline (no
    /// B-frames), as Flash Player 11 and SIP phones use it.
    fn x264(&self, repeat_headers: bool) -> Vec<String> {
        let mut params = "bframes=0".to_owned();
        if repeat_headers {
            params.push_str(":repeat-headers=1");
        }
        [
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "-g".into(),
            self.gop.to_string(),
            "-b:v".into(),
            format!("{}k", self.kbps),
            "-maxrate".into(),
            format!("{}k", self.kbps),
            "-bufsize".into(),
            format!("{}k", self.kbps),
            "-x264-params".into(),
            params,
        ])
        .collect()
    }

    fn source(&self) -> Vec<String> {
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!(
                "testsrc=size={}x{}:rate={}:duration={}",
                self.width, self.height, self.fps, self.seconds
            ),
        ]
    }

    /// An FLV file of the clip with a 440 Hz tone in Speex wideband, as
    /// Flash Player 11 publishes a camera and microphone.
    pub fn flv_with_speex(&self, path: &Path) {
        let mut args = self.source();
        args.extend(
            [
                "-f",
                "lavfi",
                "-i",
                &format!(
                    "sine=frequency=440:sample_rate=16000:duration={}",
                    self.seconds
                ),
            ]
            .map(String::from),
        );
        args.extend(self.x264(false));
        args.extend(["-c:a", "libspeex", "-ar", "16000", "-ac", "1"].map(String::from));
        ffmpeg(&args, path, "flv");
    }

    /// An MPEG-TS file of the clip alone, SPS and PPS before every IDR (as
    /// SIP phones send them in-band).
    pub fn ts(&self, path: &Path) {
        let mut args = self.source();
        args.extend(self.x264(true));
        ffmpeg(&args, path, "mpegts");
    }
}

fn ffmpeg(args: &[String], out: &Path, format: &str) {
    require_tool("ffmpeg", "ffmpeg");
    let done = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .args(["-f", format])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .expect("running ffmpeg");
    assert!(
        done.status.success(),
        "ffmpeg could not make {}: {}",
        out.display(),
        String::from_utf8_lossy(&done.stderr)
    );
}

/// The frames of a video as ffmpeg decodes them.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The MD5 of each decoded frame, in order.
    pub frames: Vec<String>,
    /// What the decoder complained of (empty when every frame decoded).
    pub errors: String,
}

/// Decodes the first video stream of `input` (`before` goes before `-i`).
pub fn decode(input: &Path, before: &[&str]) -> Decoded {
    require_tool("ffmpeg", "ffmpeg");
    let done = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(before)
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("running ffmpeg");
    let frames = String::from_utf8_lossy(&done.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .filter(|h| h.len() == 32)
        .collect();
    Decoded {
        frames,
        errors: String::from_utf8_lossy(&done.stderr).into_owned(),
    }
}

/// Where `received` sits in `source`: the index of its first frame, if
/// every received frame is the source's next one (nothing lost, nothing
/// changed between the first and the last).
pub fn contiguous_in(received: &[String], source: &[String]) -> Option<usize> {
    let first = received.first()?;
    let start = source.iter().position(|f| f == first)?;
    (source.get(start..start + received.len())? == received).then_some(start)
}

/// Whether every frame of `received` is one of `source`'s, each after the
/// one before (frames may be missing, none changed or out of order).
pub fn in_order_of(received: &[String], source: &[String]) -> bool {
    let mut rest = source.iter();
    received.iter().all(|f| rest.any(|s| s == f))
}

/// A relay from an RTP sender to sono: the sender sends to `input`; the
/// relay forwards from `port` (the port the SDP offer named) to sono once
/// told where, dropping `loss_percent` of the packets (the same ones on
/// every run), and watches `port + 1` for sono's RTCP.
pub struct RtpRelay {
    pub input: u16,
    pub port: u16,
    target: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    pub keyframe_requests: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RtpRelay {
    /// Starts the relay; it stops when dropped, or after `limit`.
    pub fn start(loss_percent: u32, limit: Duration) -> RtpRelay {
        RtpRelay::start_skipping(loss_percent, 0, limit)
    }

    /// The same, dropping the first `skip` packets as well (a receiver
    /// that joins in the middle of a group of pictures).
    pub fn start_skipping(loss_percent: u32, skip: u64, limit: Duration) -> RtpRelay {
        let input = UdpSocket::bind("127.0.0.1:0").expect("a relay input port");
        let (rtp, rtcp) = loop {
            let rtp = UdpSocket::bind("127.0.0.1:0").expect("a relay port");
            let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
            if port.is_multiple_of(2) {
                if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                    break (rtp, rtcp);
                }
            }
        };
        let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
        let input_port = input.local_addr().map(|a| a.port()).unwrap_or(0);
        // The input waits a little for the next packet; RTCP is only
        // looked at in passing, so a burst of video never waits behind it.
        input
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        rtcp.set_nonblocking(true).expect("a non-blocking socket");
        let target = Arc::new(Mutex::new(None::<SocketAddr>));
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let keyframe_requests = Arc::new(AtomicU64::new(0));
        let thread = {
            let (target, stop) = (target.clone(), stop.clone());
            let (forwarded, dropped, requests) = (
                forwarded.clone(),
                dropped.clone(),
                keyframe_requests.clone(),
            );
            std::thread::spawn(move || {
                let end = Instant::now() + limit;
                let mut buf = vec![0u8; 65_536];
                // A fixed linear congruential sequence: the same packets
                // are lost on every run.
                let mut seed: u32 = 12_345;
                while !stop.load(Ordering::Acquire) && Instant::now() < end {
                    if let Ok(n) = input.recv(&mut buf) {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let to = *target.lock().unwrap_or_else(|e| e.into_inner());
                        let seen =
                            dropped.load(Ordering::Relaxed) + forwarded.load(Ordering::Relaxed);
                        if seen < skip || (seed >> 16) % 100 < loss_percent {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else if let Some(to) = to {
                            if rtp.send_to(&buf[..n], to).is_ok() {
                                forwarded.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if let Ok(n) = rtcp.recv(&mut buf) {
                        requests.fetch_add(keyframe_requests_in(&buf[..n]), Ordering::Relaxed);
                    }
                }
            })
        };
        RtpRelay {
            input: input_port,
            port,
            target,
            stop,
            forwarded,
            dropped,
            keyframe_requests,
            thread: Some(thread),
        }
    }

    /// Where sono's video RTP is.
    pub fn set_target(&self, to: SocketAddr) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(to);
    }
}

impl Drop for RtpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// PLI and FIR packets (payload-specific feedback, PT 206, FMT 1 or 4) in
/// an RTCP compound.
pub fn keyframe_requests_in(mut compound: &[u8]) -> u64 {
    let mut n = 0;
    while compound.len() >= 4 {
        let len = (usize::from(u16::from_be_bytes([compound[2], compound[3]])) + 1) * 4;
        if compound[1] == 206 && matches!(compound[0] & 0x1F, 1 | 4) {
            n += 1;
        }
        compound = compound.get(len..).unwrap_or_default();
    }
    n
}
