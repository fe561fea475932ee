//! Per-source rate limits (`[limits]`) against real floods: a SIPp sweep of
//! OPTIONS at thousands a second while a call is up (the call keeps its
//! audio; the sweep is refused with 503 and counted), RTMP connects in a
//! loop from one address, and REST calls with one token (429). Loopback is
//! exempt by default, so these tests turn that off.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{http, FlashClient, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

fn config(sip: u32, rtmp: u32, rest: u32) -> String {
    format!(
        "[media]\nrtp_port_min = 37000\nrtp_port_max = 37999\n\
[limits]\nexempt_loopback = false\n\
sip_requests_per_second = {sip}\nsip_burst = {sip}\n\
rtmp_connects_per_second = {rtmp}\nrtmp_burst = {rtmp}\n\
rest_calls_per_second = {rest}\nrest_burst = {rest}\n"
    )
}

#[test]
fn a_sip_sweep_is_limited_and_counted_while_a_call_keeps_its_audio() {
    let dir = AudioDir::new("sweep");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 6, 440);
    let sono = Sono::start(SONO, &config(20, 0, 0));
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let mut peer = Sipp::uas(
        &scenario("uas_pcmu_at"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &port],
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![peer.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();

    // The sweep: 6,000 OPTIONS at 3,000 a second from one address, while
    // the client talks for six seconds.
    let mut sweep = Sipp::uac(
        &scenario("uac_options_flood"),
        sono.sip,
        "100",
        Duration::from_secs(30),
        &["-r", "3000", "-m", "6000", "-l", "6000"],
    );
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (start, mut packets) = (Instant::now(), 0usize);
        while start.elapsed() < Duration::from_secs(6) {
            if rtp.recv(&mut buf).is_ok() {
                packets += 1;
            }
        }
        packets
    });
    c.publish_wav_as_speex(mic, &tone).unwrap();
    let packets = counter.join().unwrap();
    let _ = sweep.wait(WAIT);

    let limited = sono.metric("sono_rate_limited_total{limit=\"sip\"}");
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", sono.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    eprintln!("sweep: {limited} of 6000 OPTIONS refused; {packets} RTP packets up meanwhile; sono RSS {rss_kib} KiB");
    let allowed_at_most = 20.0 + 20.0 * 8.0;
    assert!(
        limited >= 6000.0 - allowed_at_most - 600.0,
        "{limited} of 6000 refused\n{}",
        sono.log()
    );
    // The call's audio up went on: 20 ms packets for most of the six seconds.
    assert!(
        packets >= 250,
        "{packets} RTP packets reached the peer during the sweep"
    );
    // One log line per source per minute, not one per request.
    let lines = sono.log().matches("over the per-source limit").count();
    assert!(lines <= 2, "{lines} log lines for one source");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    peer.assert_success(WAIT);
}

#[test]
fn rtmp_connects_and_rest_calls_over_their_limits_are_refused() {
    let sono = Sono::start(SONO, &config(0, 5, 5));
    let mut connected = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3) {
            Ok(c) => connected.push(c),
            Err(_) => refused += 1,
        }
    }
    assert!(
        connected.len() >= 5 && connected.len() <= 8,
        "{} connected",
        connected.len()
    );
    assert!(refused >= 12, "{refused} refused");
    assert_eq!(
        sono.metric("sono_rate_limited_total{limit=\"rtmp\"}"),
        f64::from(refused)
    );

    let c = &connected[0];
    let path = format!("/api/v1/connections/{}", c.connection_id());
    let statuses: Vec<u16> = (0..20)
        .map(|_| http::get(sono.http, &path, &c.token()).unwrap().status)
        .collect();
    let too_many = statuses.iter().filter(|s| **s == 429).count();
    assert!(too_many >= 12, "{statuses:?}");
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    let response = http::get(sono.http, &path, &c.token()).unwrap();
    if response.status == 429 {
        assert_eq!(
            response
                .header("retry-after")
                .or(response.header("Retry-After")),
            Some("1")
        );
    }
    // Another token has its own bucket.
    let other = &connected[1];
    let path = format!("/api/v1/connections/{}", other.connection_id());
    assert_eq!(
        http::get(sono.http, &path, &other.token()).unwrap().status,
        200
    );
    assert!(sono.metric("sono_rate_limited_total{limit=\"rest\"}") >= 12.0);
}
