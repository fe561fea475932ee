//! The multi-line softphone against real peers (SIPp scenarios that check
//! every re-INVITE's SDP direction): two lines on one connection, call
//! waiting, hold and resume moving the client's audio from one line to the
//! other (counted as RTP at each peer's own socket), call ids on every
//! event, and the connection's calls as REST shows them.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{http, FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 38000\nrtp_port_max = 38999\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// A client with an implicit URI; returns it and its SIP user.
fn registered_client(sono: &Sono) -> (FlashClient, String) {
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let user = c.register_implicit().unwrap();
    assert!(user.starts_with("sono-"), "{user}");
    (c, user)
}

/// Events with `code` so far, each as its `call` id and the event.
fn events_with(c: &FlashClient, wanted: &str) -> Vec<(Option<u32>, AmfValue)> {
    c.events
        .iter()
        .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some(wanted))
        .map(|e| {
            let call = match e.get("call") {
                Some(AmfValue::Number(n)) => Some(*n as u32),
                _ => None,
            };
            (call, e.clone())
        })
        .collect()
}

/// Whether call `id` has reached `status` (`Sono.Call.Status`).
fn call_reached(c: &FlashClient, id: u32, status: u8) -> bool {
    events_with(c, code::CALL_STATUS).iter().any(|(call, e)| {
        *call == Some(id)
            && matches!(e.get("status_code"), Some(AmfValue::Number(n)) if *n as u8 == status)
    })
}

/// The client's own hold of call `id` took effect (`held`) or ended.
fn held_by_client(c: &FlashClient, id: u32, held: bool) -> bool {
    events_with(c, code::CALL_HELD).iter().any(|(call, e)| {
        *call == Some(id)
            && e.get("by").and_then(AmfValue::as_str) == Some("client")
            && matches!(e.get("held"), Some(AmfValue::Boolean(h)) if *h == held)
    })
}

/// A peer's RTP socket: how many packets arrived since it was last drained.
struct RtpCounter(UdpSocket);

impl RtpCounter {
    fn new() -> RtpCounter {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        RtpCounter(s)
    }

    fn port(&self) -> String {
        self.0.local_addr().unwrap().port().to_string()
    }

    fn drain(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while self.0.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

/// `dial`'s answer: the new call's id.
fn dialled(reply: &Reply) -> u32 {
    let Reply::Result(values) = reply else {
        panic!("dial: {reply:?}");
    };
    values
        .iter()
        .find_map(|v| match v.get("call") {
            Some(AmfValue::Number(n)) => Some(*n as u32),
            _ => None,
        })
        .unwrap_or_else(|| panic!("dial's answer names its call: {reply:?}"))
}

#[test]
fn two_lines_call_waiting_and_the_clients_audio_follows_the_active_line() {
    let dir = AudioDir::new("lines");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 1, 500);
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    let (rtp_a, rtp_b) = (RtpCounter::new(), RtpCounter::new());
    let mut a = Sipp::uas(
        &scenario("uas_line"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &rtp_a.port()],
    );
    let dial = c.send_call("dial", vec![a.uri("alice").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    let first = c.wait_reply(dial).unwrap();
    assert_eq!(dialled(&first), 1);
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    let talk = |c: &mut FlashClient| {
        c.publish_wav_as_speex(mic, &tone).unwrap();
        // What was sent last is paced out by now.
        c.pump(Duration::from_millis(300)).unwrap();
    };
    talk(&mut c);
    let (to_a, to_b) = (rtp_a.drain(), rtp_b.drain());
    assert!(
        to_a >= 40 && to_b == 0,
        "line 1 alone: {to_a} packets to A, {to_b} to B"
    );

    // A second caller while line 1 is up: call waiting, on line 2.
    let mut b = Sipp::uac(
        &scenario("uac_waiting"),
        sono.sip,
        &user,
        Duration::from_secs(60),
        &["-key", "rtp_port", &rtp_b.port()],
    );
    assert!(
        c.wait_for(WAIT, |c| !events_with(c, code::CALL_INCOMING).is_empty()),
        "{}",
        sono.log()
    );
    let (waiting, _) = events_with(&c, code::CALL_INCOMING).remove(0);
    assert_eq!(waiting, Some(2), "the waiting call is call 2");
    // Line 1 cannot be told to dial over it, and a third caller is busy
    // while line 2 rings.
    let over = c.call("dial", vec![a.uri("carol").into()]).unwrap();
    assert_eq!(over.error_code(), Some(code::CALL_EXISTING), "{over:?}");
    let busy = std::fs::read_to_string(scenario("uac_refused"))
        .unwrap()
        .replace("@CODE@", "486");
    let busy_path = dir.file("uac_busy.xml");
    std::fs::write(&busy_path, busy).unwrap();
    Sipp::uac(&busy_path, sono.sip, &user, WAIT, &[]).assert_success(WAIT);

    // Accepting it holds line 1 first.
    let accepted = c.call("accept", vec![]).unwrap();
    assert!(matches!(accepted, Reply::Result(_)), "{accepted:?}");
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 2, 4)
            && held_by_client(c, 1, true)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    rtp_a.drain();
    rtp_b.drain();
    talk(&mut c);
    let (to_a, to_b) = (rtp_a.drain(), rtp_b.drain());
    assert!(
        to_b >= 40 && to_a == 0,
        "line 2 active: {to_a} packets to A, {to_b} to B"
    );

    // REST sees both lines: 2 active, 1 held.
    let response = http::get(
        sono.http,
        &format!("/api/v1/connections/{}", c.connection_id()),
        &c.token(),
    )
    .unwrap();
    let state = response.json();
    assert_eq!(response.status, 200, "{state}");
    let calls = state["calls"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(u64, bool, bool)> = calls
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap_or(0),
                c["active"].as_bool().unwrap_or(false),
                c["held"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(summary, [(1, false, true), (2, true, false)], "{state}");

    // Taking line 1 back holds line 2.
    let resumed = c.call("unhold", vec![AmfValue::Number(1.0)]).unwrap();
    assert!(matches!(resumed, Reply::Result(_)), "{resumed:?}");
    assert!(
        c.wait_for(WAIT, |c| held_by_client(c, 1, false)
            && held_by_client(c, 2, true)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    rtp_a.drain();
    rtp_b.drain();
    talk(&mut c);
    let (to_a, to_b) = (rtp_a.drain(), rtp_b.drain());
    assert!(
        to_a >= 40 && to_b == 0,
        "line 1 active again: {to_a} packets to A, {to_b} to B"
    );

    // An unknown call id is refused; then each line is hung up by its id.
    let unknown = c.call("hangup", vec![AmfValue::Number(9.0)]).unwrap();
    assert_eq!(
        unknown.error_code(),
        Some(code::CALL_NO_CALL),
        "{unknown:?}"
    );
    c.call("hangup", vec![AmfValue::Number(2.0)]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 2, 0)));
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 1, 0)));
    a.assert_success(WAIT);
    b.assert_success(WAIT);
    // Every status event named its call.
    assert!(events_with(&c, code::CALL_STATUS)
        .iter()
        .all(|(call, _)| call.is_some()));
}
