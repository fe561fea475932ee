//! The multi-line softphone against real peers (SIPp scenarios that check
//! every re-INVITE's SDP direction): two lines on one connection, call
//! waiting, hold and resume moving the client's audio from one line to the
//! other (counted as RTP at each peer's own socket), call ids on every
//! event, and the connection's calls as REST shows them; transfers both
//! ways (REFER, NOTIFY sipfrag, Replaces) with the dial plan in force.

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

/// The `Sono.Call.Transfer` events of call `id`, as (sip_code, done).
fn transfer_progress(c: &FlashClient, id: u32) -> Vec<(u16, bool)> {
    events_with(c, code::CALL_TRANSFER)
        .iter()
        .filter(|(call, _)| *call == Some(id))
        .map(|(_, e)| {
            let sip = match e.get("sip_code") {
                Some(AmfValue::Number(n)) => *n as u16,
                _ => 0,
            };
            (sip, matches!(e.get("done"), Some(AmfValue::Boolean(true))))
        })
        .collect()
}

/// The reason call `id` ended with (its status 0 event).
fn end_reason(c: &FlashClient, id: u32) -> Option<String> {
    events_with(c, code::CALL_STATUS)
        .iter()
        .find(|(call, e)| {
            *call == Some(id)
                && matches!(e.get("status_code"), Some(AmfValue::Number(n)) if *n == 0.0)
        })
        .and_then(|(_, e)| {
            e.get("reason")
                .and_then(AmfValue::as_str)
                .map(str::to_owned)
        })
}

#[test]
fn a_blind_transfer_refers_the_peer_within_the_dial_plan_and_ends_the_call_when_it_succeeds() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let mut peer = Sipp::uas(&scenario("uas_transferee"), 1, Duration::from_secs(30), &[]);
    c.call("dial", vec![peer.uri("bob").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );

    // Outside the dial plan: refused here, nothing reaches the peer (its
    // scenario fails on any REFER but the one to carol on loopback).
    let outside = c
        .call("transfer", vec!["sip:carol@192.0.2.7".into()])
        .unwrap();
    assert_eq!(
        outside.error_code(),
        Some(code::CALL_FORBIDDEN),
        "{outside:?}"
    );
    assert!(sono.wait_log("transfer refused by the dial plan", WAIT));

    // Over REST, naming the call.
    let response = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{}/calls/1/transfer", c.connection_id()),
        &c.token(),
        &serde_json::json!({ "uri": "sip:carol@127.0.0.1:5099" }),
    )
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.json());
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 0)),
        "{:?}\n{}\n{}",
        c.events,
        sono.log(),
        peer.messages()
    );
    assert_eq!(
        transfer_progress(&c, 1),
        [(202, false), (180, false), (200, true)],
        "{:?}",
        c.events
    );
    assert_eq!(end_reason(&c, 1).as_deref(), Some("transferred"));
    peer.assert_success(WAIT);
}

#[test]
fn the_peers_refer_is_judged_by_the_dial_plan_and_the_target_replaces_the_call_when_answered() {
    let dir = AudioDir::new("referred");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 1, 500);
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let rtp_target = RtpCounter::new();
    let mut target = Sipp::uas(
        &scenario("uas_transfer_target"),
        1,
        Duration::from_secs(30),
        &["-key", "rtp_port", &rtp_target.port()],
    );
    let target_uri = target.uri("carol");
    let mut referrer = Sipp::uas(
        &scenario("uas_referrer"),
        1,
        Duration::from_secs(30),
        &["-key", "target", &target_uri],
    );
    c.call("dial", vec![referrer.uri("bob").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    // The referrer's REFER to a target outside the dial plan got 403 (its
    // scenario checks), the one to carol a new call on line 2, which
    // replaces line 1 once answered; the referrer then hangs up line 1.
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 2, 4) && call_reached(c, 1, 0)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    let referred = events_with(&c, code::CALL_REFERRED);
    assert_eq!(referred.len(), 1, "{referred:?}");
    let (on, event) = &referred[0];
    assert_eq!(*on, Some(1));
    assert_eq!(event.get("new_call"), Some(&AmfValue::Number(2.0)));
    assert_eq!(
        event.get("target").and_then(AmfValue::as_str),
        Some(target_uri.as_str())
    );
    assert!(sono.wait_log("the peer transfers the call (REFER accepted)", WAIT));
    referrer.assert_success(WAIT);

    // The client's audio goes to the target now.
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    c.publish_wav_as_speex(mic, &tone).unwrap();
    c.pump(Duration::from_millis(300)).unwrap();
    let heard = rtp_target.drain();
    assert!(heard >= 40, "{heard} packets reached the transfer target");

    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 2, 0)));
    target.assert_success(WAIT);
}

/// `%XX` escapes decoded (a Refer-To's URI header value).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The first message `sipp` received that starts with `start`.
fn received_starting(sipp: &Sipp, start: &str) -> String {
    sipp.received()
        .into_iter()
        .find(|m| m.starts_with(start))
        .unwrap_or_else(|| panic!("no {start} received:\n{}", sipp.messages()))
}

/// The value of header `name` in `message`.
fn traced_header(message: &str, name: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in\n{message}"))
        .trim()
        .to_owned()
}

#[test]
fn join_refers_the_first_peer_to_the_second_with_replaces_and_both_calls_end() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let (rtp_a, rtp_b) = (RtpCounter::new(), RtpCounter::new());
    let mut a = Sipp::uas(
        &scenario("uas_join_a"),
        1,
        Duration::from_secs(30),
        &["-key", "rtp_port", &rtp_a.port()],
    );
    let mut b = Sipp::uas(
        &scenario("uas_join_b"),
        1,
        Duration::from_secs(30),
        &["-key", "rtp_port", &rtp_b.port()],
    );
    c.call("dial", vec![a.uri("alice").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{}",
        sono.log()
    );
    let held = c.call("hold", vec![]).unwrap();
    assert!(matches!(held, Reply::Result(_)), "{held:?}");
    assert!(c.wait_for(WAIT, |c| held_by_client(c, 1, true)));
    c.call("dial", vec![b.uri("bob").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 2, 4)),
        "{}",
        sono.log()
    );

    // Joining one call with itself, or with a call that does not exist.
    let same = c
        .call("join", vec![AmfValue::Number(1.0), AmfValue::Number(1.0)])
        .unwrap();
    assert_eq!(same.error_code(), Some(code::CALL_NO_CALL), "{same:?}");

    let joined = c
        .call("join", vec![AmfValue::Number(1.0), AmfValue::Number(2.0)])
        .unwrap();
    assert!(matches!(joined, Reply::Result(_)), "{joined:?}");
    assert!(
        c.wait_for(Duration::from_secs(15), |c| call_reached(c, 1, 0)
            && call_reached(c, 2, 0)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    assert_eq!(end_reason(&c, 1).as_deref(), Some("transferred"));
    assert_eq!(transfer_progress(&c, 1), [(202, false), (200, true)]);
    a.assert_success(WAIT);
    b.assert_success(WAIT);

    // A's REFER named B's contact, and sono's dialog with B in Replaces,
    // tags as B sees them (RFC 3891 §3: to-tag is B's own).
    let refer_to = traced_header(&received_starting(&a, "REFER "), "Refer-To");
    let b_invite = received_starting(&b, "INVITE ");
    let b_call_id = traced_header(&b_invite, "Call-ID");
    let sono_tag = traced_header(&b_invite, "From")
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_owned();
    let b_ack = received_starting(&b, "ACK ");
    let b_tag = traced_header(&b_ack, "To")
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (uri, replaces) = refer_to
        .trim_matches(['<', '>'])
        .split_once("?Replaces=")
        .unwrap_or_else(|| panic!("{refer_to}"));
    assert!(
        uri.starts_with(&format!("sip:peer@{}", b.addr)),
        "{refer_to}"
    );
    assert_eq!(
        percent_decoded(replaces),
        format!("{b_call_id};to-tag={b_tag};from-tag={sono_tag}"),
        "{refer_to}"
    );
}

/// μ-law payloads (160 bytes, 20 ms each) of `text` spoken at 8 kHz; the
/// spoken WAV is `source`.
fn spoken_pcmu(text: &str, source: &std::path::Path, dir: &AudioDir, name: &str) -> Vec<Vec<u8>> {
    audio::speech_wav(text, 8000, source);
    let ulaw = dir.file(&format!("{name}.ul"));
    audio::ffmpeg(&[
        "-i",
        &source.display().to_string(),
        "-c:a",
        "pcm_mulaw",
        "-f",
        "mulaw",
        &ulaw.display().to_string(),
    ]);
    std::fs::read(&ulaw)
        .unwrap()
        .chunks(160)
        .map(<[u8]>::to_vec)
        .collect()
}

/// What an RTP peer received as PCMU, decoded by ffmpeg to an 8 kHz WAV.
fn heard_pcmu(received: &[(u8, Vec<u8>)], dir: &AudioDir, name: &str) -> std::path::PathBuf {
    let ulaw = dir.file(&format!("{name}.ul"));
    let bytes: Vec<u8> = received
        .iter()
        .filter(|(pt, _)| *pt == 0)
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    std::fs::write(&ulaw, bytes).unwrap();
    let wav = dir.file(&format!("{name}.wav"));
    audio::ffmpeg(&[
        "-f",
        "mulaw",
        "-ar",
        "8000",
        "-i",
        &ulaw.display().to_string(),
        &wav.display().to_string(),
    ]);
    wav
}

/// The offline chain a peer's speech takes to the other peer in a
/// three-way call: μ-law at the sender, the mix at 16 kHz, μ-law again.
fn three_way_chain(source: &std::path::Path, dir: &AudioDir, name: &str) -> std::path::PathBuf {
    let first = dir.file(&format!("{name}-1.wav"));
    audio::round_trip(
        source,
        &["-ar", "8000", "-c:a", "pcm_mulaw"],
        "au",
        16_000,
        &first,
    );
    let out = dir.file(&format!("{name}-chain.wav"));
    audio::round_trip(
        &first,
        &["-ar", "8000", "-c:a", "pcm_mulaw"],
        "au",
        8000,
        &out,
    );
    out
}

#[test]
fn a_three_way_call_lets_each_peer_hear_the_other_and_ends_when_one_leaves() {
    use sono_testkit::rtp_peer;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = AudioDir::new("three-way");
    let (a_src, b_src) = (dir.file("a-src.wav"), dir.file("b-src.wav"));
    let a_says = spoken_pcmu(
        "The first caller reads the weather report for the coast this evening.",
        &a_src,
        &dir,
        "a",
    );
    let b_says = spoken_pcmu(
        "The second caller asks whether the meeting moved to Thursday afternoon.",
        &b_src,
        &dir,
        "b",
    );
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let (sock_a, sock_b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (port_a, port_b) = (
        sock_a.local_addr().unwrap().port().to_string(),
        sock_b.local_addr().unwrap().port().to_string(),
    );
    // Each peer starts speaking once sono's RTP reaches it: when the mix
    // starts, as the client itself says nothing.
    let (a_sent, b_sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let run_for = Duration::from_secs(40);
    let peer_a = rtp_peer::spawn(
        sock_a,
        rtp_peer::stream(&a_says, 0, 160),
        run_for,
        a_sent.clone(),
    );
    let peer_b = rtp_peer::spawn(
        sock_b,
        rtp_peer::stream(&b_says, 0, 160),
        run_for,
        b_sent.clone(),
    );
    let mut a = Sipp::uas(
        &scenario("uas_line"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &port_a],
    );
    let mut b = Sipp::uas(
        &scenario("uas_pcmu_at"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &port_b],
    );

    c.call("dial", vec![a.uri("alice").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{}",
        sono.log()
    );
    assert!(matches!(c.call("hold", vec![]).unwrap(), Reply::Result(_)));
    assert!(c.wait_for(WAIT, |c| held_by_client(c, 1, true)));
    c.call("dial", vec![b.uri("bob").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 2, 4)),
        "{}",
        sono.log()
    );
    // Bad pairs first: one call twice, a call that does not exist.
    let same = c
        .call(
            "three_way",
            vec![AmfValue::Number(2.0), AmfValue::Number(2.0)],
        )
        .unwrap();
    assert_eq!(same.error_code(), Some(code::CALL_NO_CALL), "{same:?}");
    let unknown = c
        .call(
            "three_way",
            vec![AmfValue::Number(2.0), AmfValue::Number(7.0)],
        )
        .unwrap();
    assert_eq!(
        unknown.error_code(),
        Some(code::CALL_NO_CALL),
        "{unknown:?}"
    );

    // Call 1 is held: the three-way call resumes it (A's scenario checks
    // the a=sendrecv re-INVITE) and hosts the mix.
    let joined = c
        .call(
            "three_way",
            vec![AmfValue::Number(1.0), AmfValue::Number(2.0)],
        )
        .unwrap();
    assert!(matches!(joined, Reply::Result(_)), "{joined:?}");
    assert!(
        c.wait_for(WAIT, |c| held_by_client(c, 1, false)),
        "{}",
        sono.log()
    );
    let on = events_with(&c, code::CALL_THREE_WAY);
    assert_eq!(on.len(), 2, "told on both calls: {on:?}");
    assert!(on
        .iter()
        .all(|(_, e)| e.get("on") == Some(&AmfValue::Boolean(true))));
    assert!(
        c.wait_for(Duration::from_secs(20), |_| a_sent.load(Ordering::Acquire)
            && b_sent.load(Ordering::Acquire)),
        "both peers spoke\n{}",
        sono.log()
    );
    c.pump(Duration::from_millis(800)).unwrap();

    // B leaves: back to a normal call with A, still the active one.
    c.call("hangup", vec![AmfValue::Number(2.0)]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 2, 0)));
    assert!(
        c.wait_for(WAIT, |c| events_with(c, code::CALL_THREE_WAY).iter().any(
            |(call, e)| *call == Some(1) && e.get("on") == Some(&AmfValue::Boolean(false))
        )),
        "{:?}",
        c.events
    );
    assert!(sono.wait_log("three-way call over: back to a normal call", WAIT));
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 1, 0)));
    a.assert_success(WAIT);
    b.assert_success(WAIT);
    let (heard_by_a, heard_by_b) = (peer_a.join().unwrap(), peer_b.join().unwrap());

    // Each peer heard the other's speech; scored against the same chain
    // applied offline (μ-law, the 16 kHz mix, μ-law).
    let a_heard = heard_pcmu(&heard_by_a, &dir, "a-heard");
    let b_heard = heard_pcmu(&heard_by_b, &dir, "b-heard");
    let a_live = audio::pesq("nb", &b_src, &a_heard);
    let b_live = audio::pesq("nb", &a_src, &b_heard);
    let a_offline = audio::pesq("nb", &b_src, &three_way_chain(&b_src, &dir, "b"));
    let b_offline = audio::pesq("nb", &a_src, &three_way_chain(&a_src, &dir, "a"));
    eprintln!(
        "three-way PESQ-NB: A hears B {a_live:.2} (offline {a_offline:.2}), B hears A {b_live:.2} (offline {b_offline:.2})"
    );
    assert!(
        a_live >= a_offline - 0.5,
        "A hears B: {a_live:.2} vs offline {a_offline:.2}"
    );
    assert!(
        b_live >= b_offline - 0.5,
        "B hears A: {b_live:.2} vs offline {b_offline:.2}"
    );
}

#[test]
fn baresip_transferred_blindly_calls_the_target_itself_and_the_call_ends_transferred() {
    let dir = AudioDir::new("blind-baresip");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 10, 440);
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let peer = sono_testkit::Baresip::start(&tone, (36000, 36999), Duration::from_secs(40));
    let mut target = Sipp::uas(
        &scenario("uas_transfer_answer"),
        1,
        Duration::from_secs(30),
        &[],
    );
    c.call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{:?}\n{}\n{}",
        c.events,
        sono.log(),
        peer.log()
    );
    let transfer = c
        .call("transfer", vec![target.uri("carol").into()])
        .unwrap();
    assert!(matches!(transfer, Reply::Result(_)), "{transfer:?}");
    assert!(
        c.wait_for(Duration::from_secs(15), |c| call_reached(c, 1, 0)),
        "{:?}\n{}\n{}",
        c.events,
        sono.log(),
        peer.log()
    );
    assert_eq!(
        end_reason(&c, 1).as_deref(),
        Some("transferred"),
        "{:?}\n{}",
        c.events,
        peer.log()
    );
    let progress = transfer_progress(&c, 1);
    assert_eq!(progress.first(), Some(&(202, false)), "{progress:?}");
    assert_eq!(progress.last(), Some(&(200, true)), "{progress:?}");
    target.assert_success(WAIT);
    // The target's INVITE came from baresip, not from sono.
    let invite = received_starting(&target, "INVITE ");
    assert!(
        !invite.contains(&format!("{}", sono.sip)),
        "sono must not call the target itself:\n{invite}"
    );
}

#[test]
fn a_refer_storm_is_answered_one_by_one_and_nothing_is_dialled() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let mut storm = Sipp::uas(
        &scenario("uas_refer_storm"),
        1,
        Duration::from_secs(30),
        &[],
    );
    c.call("dial", vec![storm.uri("bob").into()]).unwrap();
    // The peer hangs up once every REFER got its answer (403, 400, 416)
    // and an OPTIONS showed the call alive.
    assert!(
        c.wait_for(Duration::from_secs(15), |c| call_reached(c, 1, 0)),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    storm.assert_success(WAIT);
    assert!(events_with(&c, code::CALL_REFERRED).is_empty());
    assert_eq!(
        end_reason(&c, 1).as_deref(),
        Some("the other party hung up (BYE)")
    );
    // Only one call was ever placed: nothing was dialled for the storm.
    assert_eq!(sono.metric("sono_sip_calls_started_total"), 1.0);
    assert!(!sono.log().contains("panicked"));

    // Bad arguments for the new methods get clear errors.
    for (method, args, expected) in [
        ("transfer", vec![], code::CALL_NO_URI),
        ("transfer", vec![AmfValue::Boolean(true)], code::CALL_NO_URI),
        (
            "transfer",
            vec!["sip:a@b".into(), "one".into()],
            code::CALL_NO_CALL,
        ),
        (
            "transfer",
            vec!["sip:a@b".into(), 1.0.into(), 2.0.into()],
            code::CALL_NO_CALL,
        ),
        ("join", vec![AmfValue::Boolean(true)], code::CALL_NO_CALL),
        ("join", vec![], code::CALL_NO_CALL),
        (
            "three_way",
            vec![1.0.into(), 2.0.into(), 3.0.into()],
            code::CALL_NO_CALL,
        ),
        ("three_way", vec![], code::CALL_NO_CALL),
        (
            "transfer",
            vec!["sip:carol@127.0.0.1".into()],
            code::CALL_NO_CALL,
        ),
    ] {
        let reply = c.call(method, args.clone()).unwrap();
        assert_eq!(
            reply.error_code(),
            Some(expected),
            "{method}{args:?}: {reply:?}"
        );
    }
}

#[test]
fn the_host_of_a_three_way_call_leaving_leaves_the_other_call_active_with_the_clients_audio() {
    let dir = AudioDir::new("three-way-host");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 1, 500);
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, _) = registered_client(&sono);
    let (rtp_a, rtp_b) = (RtpCounter::new(), RtpCounter::new());
    let mut a = Sipp::uas(
        &scenario("uas_line"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &rtp_a.port()],
    );
    let mut b = Sipp::uas(
        &scenario("uas_pcmu_at"),
        1,
        Duration::from_secs(60),
        &["-key", "rtp_port", &rtp_b.port()],
    );
    c.call("dial", vec![a.uri("alice").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 1, 4)),
        "{}",
        sono.log()
    );
    c.call("hold", vec![]).unwrap();
    assert!(c.wait_for(WAIT, |c| held_by_client(c, 1, true)));
    c.call("dial", vec![b.uri("bob").into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| call_reached(c, 2, 4)),
        "{}",
        sono.log()
    );
    let joined = c.call("three_way", vec![]).unwrap();
    assert!(matches!(joined, Reply::Result(_)), "{joined:?}");
    assert!(c.wait_for(WAIT, |c| held_by_client(c, 1, false)));
    let on = events_with(&c, code::CALL_THREE_WAY);
    // Without ids: the active call (2, dialled last) hosts, 1 joins.
    assert_eq!(
        on[0].1.get("calls"),
        Some(&AmfValue::StrictArray(vec![
            AmfValue::Number(2.0),
            AmfValue::Number(1.0)
        ])),
        "{on:?}"
    );

    // The host (call 2) hangs up: call 1 goes on, active, and alone hears
    // the client.
    c.call("hangup", vec![AmfValue::Number(2.0)]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 2, 0)));
    assert!(
        c.wait_for(WAIT, |c| events_with(c, code::CALL_THREE_WAY).iter().any(
            |(call, e)| *call == Some(1) && e.get("on") == Some(&AmfValue::Boolean(false))
        ))
    );
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    rtp_a.drain();
    rtp_b.drain();
    c.publish_wav_as_speex(mic, &tone).unwrap();
    c.pump(Duration::from_millis(300)).unwrap();
    let (to_a, to_b) = (rtp_a.drain(), rtp_b.drain());
    assert!(
        to_a >= 40 && to_b == 0,
        "after the host left: {to_a} packets to A, {to_b} to B"
    );
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_for(WAIT, |c| call_reached(c, 1, 0)));
    a.assert_success(WAIT);
    b.assert_success(WAIT);
}
