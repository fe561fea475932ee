//! A bare RTP peer for tests that check bytes, not sound: it sends a
//! schedule of datagrams to wherever sono's RTP first comes from (as a
//! symmetric-RTP phone does) and keeps what sono sends (payload type and
//! payload). Its own minimal RTP (RFC 3550 §5.1, no CSRCs or extensions
//! written), so the test kit needs nothing of sono's.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The payload type and payload of an RTP datagram, if it is one.
pub fn parse(datagram: &[u8]) -> Option<(u8, &[u8])> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(datagram[0] & 0x0f) * 4;
    let mut at = 12 + csrcs;
    if datagram[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*datagram.get(at + 2)?, *datagram.get(at + 3)?]);
        at += 4 + usize::from(words) * 4;
    }
    let mut end = datagram.len();
    if datagram[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*datagram.last()?))?;
    }
    Some((datagram[1] & 0x7f, datagram.get(at..end)?))
}

/// RTP datagrams of `payloads`, one per 20 ms, as a steady sender makes
/// them (`ticks` of the RTP clock each).
pub fn stream(payloads: &[Vec<u8>], payload_type: u8, ticks: u32) -> Vec<(Duration, Vec<u8>)> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut d = vec![0x80, payload_type | if i == 0 { 0x80 } else { 0 }];
            d.extend_from_slice(&(1000u16.wrapping_add(i as u16)).to_be_bytes());
            d.extend_from_slice(&(ticks.wrapping_mul(i as u32)).to_be_bytes());
            d.extend_from_slice(&0x5EEDu32.to_be_bytes());
            d.extend_from_slice(payload);
            (Duration::from_millis(20 * i as u64), d)
        })
        .collect()
}

/// Runs the peer on `socket` for at most `run_for` (or until a second after
/// its schedule is sent and sono went quiet); `all_sent` turns true once
/// the schedule is out. Returns what sono sent.
pub fn spawn(
    socket: UdpSocket,
    schedule: Vec<(Duration, Vec<u8>)>,
    run_for: Duration,
    all_sent: Arc<AtomicBool>,
) -> JoinHandle<Vec<(u8, Vec<u8>)>> {
    std::thread::spawn(move || {
        run(socket, schedule, run_for, all_sent)
            .into_iter()
            .map(|(_, pt, payload)| (pt, payload))
            .collect()
    })
}

/// As [`spawn`], with when each packet arrived.
pub fn spawn_timed(
    socket: UdpSocket,
    schedule: Vec<(Duration, Vec<u8>)>,
    run_for: Duration,
    all_sent: Arc<AtomicBool>,
) -> JoinHandle<Vec<(Instant, u8, Vec<u8>)>> {
    std::thread::spawn(move || run(socket, schedule, run_for, all_sent))
}

fn run(
    socket: UdpSocket,
    schedule: Vec<(Duration, Vec<u8>)>,
    run_for: Duration,
    all_sent: Arc<AtomicBool>,
) -> Vec<(Instant, u8, Vec<u8>)> {
    {
        let mut received = Vec::new();
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        let mut sono: Option<(SocketAddr, Instant)> = None;
        let mut next = 0usize;
        let mut last_rx = Instant::now();
        let _ = socket.set_read_timeout(Some(Duration::from_millis(2)));
        while start.elapsed() < run_for {
            if next == schedule.len() && last_rx.elapsed() > Duration::from_secs(1) {
                break;
            }
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                last_rx = Instant::now();
                if let Some((pt, payload)) = parse(&buf[..n]) {
                    received.push((Instant::now(), pt, payload.to_vec()));
                    sono.get_or_insert((from, Instant::now()));
                }
            }
            if let Some((to, t0)) = sono {
                while let Some((at, datagram)) = schedule.get(next) {
                    if t0.elapsed() < *at {
                        break;
                    }
                    let _ = socket.send_to(datagram, to);
                    next += 1;
                }
                if next == schedule.len() {
                    all_sent.store(true, Ordering::Release);
                }
            }
        }
        received
    }
}

/// How many packets of payload type `pt` arrived at or after `since`, and
/// the longest wait between two of them (what a pace test asserts on).
pub fn arrival_pace(
    received: &[(Instant, u8, Vec<u8>)],
    pt: u8,
    since: Instant,
) -> (usize, Duration) {
    let arrivals: Vec<Instant> = received
        .iter()
        .filter(|(at, p, _)| *p == pt && *at >= since)
        .map(|(at, _, _)| *at)
        .collect();
    let longest = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    (arrivals.len(), longest)
}
