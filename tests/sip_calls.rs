//! Outbound calls end to end: the Flash-like client dials through the real
//! `sono` binary to real SIP peers on loopback: SIPp (`sip-tester`) playing
//! one UAS scenario per test from `tests/sipp/`. Each test asserts the exact
//! `Sono.Call.Status` sequence the client sees, the dial's answer, and what
//! the peer received (SIPp fails its scenario on any unexpected message).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{Baresip, FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);

/// Test RTP ports stay clear of the peers' ranges.
const MEDIA: &str = "[media]\nrtp_port_min = 30000\nrtp_port_max = 30999\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

fn client(sono: &Sono) -> FlashClient {
    FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).expect("RTMP connect")
}

fn statuses(c: &FlashClient) -> Vec<(u8, Option<u16>)> {
    c.call_status_codes()
}

#[test]
fn a_200_ok_connects_and_hangup_sends_bye() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, WAIT, &[]);
    let mut c = client(&sono);
    let dial = c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(
        statuses(&c),
        [(1, None), (2, Some(200)), (4, Some(200))],
        "{:?}",
        c.call_statuses()
    );
    assert!(matches!(c.reply(dial), Some(Reply::Result(_))));
    assert_eq!(sono.metric("sono_sip_calls"), 1.0);

    let reply = c.call("hangup", vec![]).unwrap();
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    assert_eq!(
        statuses(&c)[3..],
        [(3, None), (0, None)],
        "{:?}",
        c.call_statuses()
    );
    sipp.assert_success(WAIT);
    let got = sipp.received();
    let methods: Vec<&str> = got
        .iter()
        .map(|m| m.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"], "{}", sipp.messages());
    let invite = &got[0];
    assert!(
        invite.contains("From: <sip:sono@127.0.0.1>;tag="),
        "{invite}"
    );
    assert!(
        invite.contains(&format!("To: <{}>", sipp.uri("bob"))),
        "{invite}"
    );
    assert!(invite.contains("c=IN IP4 127.0.0.1"), "{invite}");
    // The RTP port announced is from the configured range.
    let port: u16 = invite
        .split("m=audio ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an m=audio line");
    assert!((30000..=30999).contains(&port), "{port}");
    // After the call the client may dial again (no Sono.Call.Existing).
    assert_eq!(sono.metric("sono_sip_calls_answered_total"), 1.0);
}

#[test]
fn ringing_then_answer_reports_each_response() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_180_200"), 1, WAIT, &[]);
    let mut c = client(&sono);
    let dial = c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let all = c.call_statuses();
    assert_eq!(
        statuses(&c),
        [(1, None), (1, Some(180)), (2, Some(200)), (4, Some(200))],
        "{all:?}"
    );
    assert_eq!(all[1].2.as_deref(), Some("Ringing"));
    assert!(matches!(c.reply(dial), Some(Reply::Result(_))));
    // A second dial while the call is up is refused.
    let again = c.call("dial", vec![sipp.uri("carol").into()]).unwrap();
    assert_eq!(again.error_code(), Some(code::CALL_EXISTING));
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
}

#[test]
fn busy_fails_the_dial_with_the_sip_code_and_reason() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_486"), 1, WAIT, &[]);
    let mut c = client(&sono);
    let dial = c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| c.has_reply(dial)), "{}", sono.log());
    match c.reply(dial) {
        Some(Reply::Error(info)) => {
            assert_eq!(
                info.get("code").and_then(AmfValue::as_str),
                Some(code::CALL_FAILED)
            );
            assert_eq!(
                info.get("sip_code").and_then(AmfValue::as_number),
                Some(486.0)
            );
            assert_eq!(
                info.get("reason").and_then(AmfValue::as_str),
                Some("Busy Here")
            );
        }
        other => panic!("dial answered {other:?}"),
    }
    assert_eq!(
        statuses(&c),
        [(1, None), (1, Some(100)), (0, Some(486))],
        "{:?}",
        c.call_statuses()
    );
    sipp.assert_success(WAIT);
    let got = sipp.received();
    assert_eq!(got.len(), 2, "{}", sipp.messages());
    assert!(got[1].starts_with("ACK "), "{}", got[1]);
    assert_eq!(sono.metric("sono_sip_calls_failed_total"), 1.0);
}

#[test]
fn hangup_while_ringing_cancels_and_the_487_ends_the_call() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_ring_cancel"), 1, WAIT, &[]);
    let mut c = client(&sono);
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| c
        .call_statuses()
        .iter()
        .any(|(_, code, _)| *code == Some(180))));
    c.call("hangup", vec![]).unwrap();
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(
        statuses(&c),
        [(1, None), (1, Some(180)), (3, None), (0, Some(487))],
        "{:?}",
        c.call_statuses()
    );
    sipp.assert_success(WAIT);
    let methods: Vec<String> = sipp
        .received()
        .iter()
        .map(|m| m.split(' ').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(methods, ["INVITE", "CANCEL", "ACK"], "{}", sipp.messages());
}

#[test]
fn a_401_challenge_is_answered_with_digest_credentials() {
    let sono = Sono::start(
        SONO,
        &format!("{MEDIA}[sip]\nauth_user = \"alice\"\npassword = \"secret\"\nauth_realms = [\"sono.test\"]\n"),
    );
    let mut sipp = Sipp::uas(&scenario("uas_401"), 1, WAIT, &[]);
    let mut c = client(&sono);
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(
        statuses(&c),
        [(1, None), (2, Some(200)), (4, Some(200))],
        "{:?}",
        c.call_statuses()
    );
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    let got = sipp.received();
    assert!(
        got[2].contains("Authorization: Digest username=\"alice\""),
        "{}",
        got[2]
    );
    assert!(
        !sono.log().contains("secret"),
        "the password reached the log"
    );
}

#[test]
fn a_remote_bye_ends_the_call() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_remote_bye"), 1, WAIT, &[]);
    let mut c = client(&sono);
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let all = c.call_statuses();
    assert_eq!(
        statuses(&c),
        [(1, None), (2, Some(200)), (4, Some(200)), (0, None)],
        "{all:?}"
    );
    assert!(
        all[3].2.as_deref().is_some_and(|r| r.contains("BYE")),
        "{all:?}"
    );
    sipp.assert_success(WAIT);
    // The client can hang up nothing now.
    let reply = c.call("hangup", vec![]).unwrap();
    assert_eq!(reply.error_code(), Some(code::CALL_NO_CALL));
}

#[test]
fn a_client_that_disconnects_mid_call_ends_the_sip_side_within_a_second() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, WAIT, &[]);
    let mut c = client(&sono);
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(c.wait_call_status(4, WAIT), "{:?}", c.call_statuses());
    drop(c);
    let gone = Instant::now();
    let deadline = gone + Duration::from_secs(1);
    while sono.metric("sono_sip_calls") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        sono.metric("sono_sip_calls"),
        0.0,
        "the call was still up 1 s after the client left:\n{}",
        sono.log()
    );
    sipp.assert_success(WAIT);
    assert!(sipp
        .received()
        .last()
        .is_some_and(|m| m.starts_with("BYE ")));
}

#[test]
fn a_silent_peer_times_out_and_the_dial_fails_with_408() {
    // A socket that swallows everything: timer B, shortened through sip.t1.
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("sip:nobody@{}", hole.local_addr().unwrap());
    let sono = Sono::start(
        SONO,
        &format!("{MEDIA}[sip]\nt1 = \"50ms\"\nt2 = \"200ms\"\n"),
    );
    let mut c = client(&sono);
    let dial = c.send_call("dial", vec![target.into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| c.has_reply(dial)), "{}", sono.log());
    let reply = c.reply(dial).unwrap();
    assert_eq!(reply.error_code(), Some(code::CALL_FAILED), "{reply:?}");
    assert_eq!(statuses(&c), [(1, None), (0, Some(408))]);
    // Timer A: the INVITE went out 7 times in 64·T1 = 3.2 s.
    hole.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut invites = 0;
    while let Ok((n, _)) = hole.recv_from(&mut buf) {
        invites += usize::from(buf[..n].starts_with(b"INVITE "));
    }
    assert_eq!(invites, 7);
}

#[test]
fn the_outbound_proxy_receives_every_request_with_a_route() {
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, WAIT, &[]);
    let sono = Sono::start(
        SONO,
        &format!(
            "{MEDIA}[sip]\noutbound_proxy = \"sip:{}\"\nfrom_name = \"Front Desk\"\nfrom_user = \"desk\"\nfrom_domain = \"example.org\"\n\
[sip.dial_plan]\nallow = ['sip:bob@192\\.0\\.2\\.55']\n",
            sipp.addr
        ),
    );
    let mut c = client(&sono);
    c.send_call("dial", vec!["sip:bob@192.0.2.55".into()])
        .unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    let got = sipp.received();
    let invite = &got[0];
    assert!(
        invite.starts_with("INVITE sip:bob@192.0.2.55 SIP/2.0"),
        "{invite}"
    );
    assert!(
        invite.contains(&format!("Route: <sip:{};lr>", sipp.addr)),
        "{invite}"
    );
    assert!(
        invite.contains("From: \"Front Desk\" <sip:desk@example.org>;tag="),
        "{invite}"
    );
}

#[test]
fn sip_requests_outside_any_call_get_proper_answers() {
    let sono = Sono::start(SONO, MEDIA);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = sock.local_addr().unwrap();
    let ask = |method: &str, to_tag: &str, extra: &str| -> String {
        let msg = format!(
            "{method} sip:someone@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}x;rport\r\n\
From: <sip:t@{me}>;tag=f\r\nTo: <sip:someone@{sip}>{to_tag}\r\nCall-ID: {method}-test\r\n\
CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n",
            sip = sono.sip
        );
        sock.send_to(msg.as_bytes(), sono.sip).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let status = |r: &str| r.split(' ').nth(1).unwrap_or("").to_owned();
    let options = ask("OPTIONS", "", "");
    assert_eq!(status(&options), "200", "{options}");
    assert!(
        options.contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"),
        "{options}"
    );
    assert!(
        options.contains(&format!("rport={}", me.port())),
        "{options}"
    );
    // An INVITE for a user no client holds.
    assert_eq!(status(&ask("INVITE", "", "")), "404");
    assert_eq!(status(&ask("BYE", ";tag=x", "")), "481");
    assert_eq!(status(&ask("CANCEL", "", "")), "481");
    assert_eq!(status(&ask("REGISTER", "", "")), "405");
    assert_eq!(status(&ask("FOO", "", "")), "501");
    // Malformed: a version we do not speak, and a CSeq that lies about the method.
    let bad = format!(
        "OPTIONS sip:x@{sip} SIP/3.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKv3\r\nFrom: <sip:t@{me}>;tag=f\r\n\
To: <sip:x@{sip}>\r\nCall-ID: v3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        sip = sono.sip
    );
    sock.send_to(bad.as_bytes(), sono.sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 505 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(sono.metric("sono_sip_messages_rejected_total") >= 1.0);
    // Garbage does not stop sono: it still answers afterwards.
    sock.send_to(b"\x00\xff garbage \r\n\r\n", sono.sip)
        .unwrap();
    assert_eq!(status(&ask("OPTIONS", "", "")), "200");
}

#[test]
fn baresip_auto_answers_and_hears_our_bye() {
    sono_testkit::require_tool("sox", "sox");
    let wav = std::env::temp_dir().join(format!("sono-tone-{}.wav", std::process::id()));
    let made = std::process::Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .args(["synth", "5", "sine", "440"])
        .status()
        .expect("running sox");
    assert!(made.success());
    let peer = Baresip::start(&wav, (31000, 31999), Duration::from_secs(30));
    let sono = Sono::start(SONO, MEDIA);
    let mut c = client(&sono);
    let dial = c.send_call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}\n{}",
        c.call_statuses(),
        sono.log(),
        peer.log()
    );
    let seen = statuses(&c);
    // Calling, then whatever provisionals baresip sends, then the answer.
    assert_eq!(seen[0], (1, None), "{seen:?}");
    assert!(seen[1..seen.len() - 2]
        .iter()
        .all(|(s, c)| *s == 1 && c.is_some_and(|c| c < 200)));
    assert_eq!(
        seen[seen.len() - 2..],
        [(2, Some(200)), (4, Some(200))],
        "{seen:?}"
    );
    assert!(matches!(c.reply(dial), Some(Reply::Result(_))));
    // baresip has no Speex: G.722, the first codec of ours it has, is what it answers.
    assert!(
        sono.wait_log("codec=G722", Duration::from_secs(2)),
        "{}",
        sono.log()
    );
    assert!(
        peer.wait_log("Call established", Duration::from_secs(5)),
        "{}",
        peer.log()
    );

    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    // The BYE goes to the Contact baresip gave, and closes its session.
    assert!(
        peer.wait_log("BYE sip:peer-", Duration::from_secs(5)),
        "{}",
        peer.log()
    );
    assert!(
        peer.wait_log("session closed", Duration::from_secs(5)),
        "{}",
        peer.log()
    );
    let _ = std::fs::remove_file(&wav);
}

#[test]
fn hold_by_reinvite_and_options_inside_the_call_are_answered() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_reinvite_hold"), 1, WAIT, &[]);
    let mut c = client(&sono);
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    // The peer holds, asks OPTIONS, then hangs up: the call survives until its BYE.
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(
        statuses(&c),
        [(1, None), (2, Some(200)), (4, Some(200)), (0, None)],
        "{:?}",
        c.call_statuses()
    );
    // The peer's a=sendonly reached the client as its hold.
    assert_eq!(holds(&c), [(true, "peer".to_owned())]);
    sipp.assert_success(WAIT);
}

#[test]
fn a_call_over_tcp_when_the_target_asks_for_it() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, WAIT, &["-t", "t1"]);
    let mut c = client(&sono);
    let target = format!("{};transport=tcp", sipp.uri("bob"));
    c.send_call("dial", vec![target.into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(statuses(&c), [(1, None), (2, Some(200)), (4, Some(200))]);
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    sipp.assert_success(WAIT);
    let log = sipp.messages();
    assert!(log.contains("TCP message received"), "{log}");
    let got = sipp.received();
    assert!(got[0].contains("Via: SIP/2.0/TCP "), "{}", got[0]);
    assert!(got[0].contains(";transport=tcp>"), "{}", got[0]);
    assert_eq!(
        got.iter()
            .map(|m| m.split(' ').next().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["INVITE", "ACK", "BYE"]
    );
}

#[test]
fn sip_over_tcp_is_answered_on_the_same_connection_and_garbage_closes_it() {
    use std::io::{Read, Write};
    let sono = Sono::start(SONO, MEDIA);
    let mut s = std::net::TcpStream::connect(sono.sip).expect("sono listens for SIP over TCP");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = s.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:x@{sip} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp1\r\n\
From: <sip:t@{me}>;tag=f\r\nTo: <sip:x@{sip}>\r\nCall-ID: tcp-1\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sip = sono.sip
    );
    // Two messages in one write, the second split: the framer must cut them right.
    let both = format!("{options}{}", options.replace("tcp-1", "tcp-2"));
    s.write_all(&both.as_bytes()[..both.len() - 10]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&both.as_bytes()[both.len() - 10..]).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.matches("SIP/2.0 200 OK").count() < 2 && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert_eq!(got.matches("SIP/2.0 200 OK").count(), 2, "{got}");
    assert!(got.contains("Call-ID: tcp-1") && got.contains("Call-ID: tcp-2"));
    // A header section without Content-Length cannot be framed: sono closes.
    s.write_all(b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bKq\r\n\r\n")
        .unwrap();
    let closed = matches!(s.read(&mut buf), Ok(0));
    assert!(closed, "sono keeps a connection it cannot frame");
    assert!(
        sono.wait_log("unframeable stream", Duration::from_secs(2)),
        "{}",
        sono.log()
    );
}

/// The `Sono.Call.Held` events the client got so far: (held, by).
fn holds(c: &FlashClient) -> Vec<(bool, String)> {
    c.events
        .iter()
        .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_HELD))
        .map(|e| {
            (
                matches!(e.get("held"), Some(AmfValue::Boolean(true))),
                e.get("by")
                    .and_then(AmfValue::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_client_holds_and_resumes_and_hears_the_peers_own_hold() {
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = Sipp::uas(&scenario("uas_hold_both_ways"), 1, WAIT, &[]);
    let mut c = client(&sono);
    // Nothing to hold yet.
    let early = c.call("hold", vec![]).unwrap();
    assert_eq!(early.error_code(), Some(code::CALL_NO_CALL), "{early:?}");
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );

    let held = c.call("hold", vec![]).unwrap();
    assert!(held.error_code().is_none(), "{held:?}");
    assert!(
        c.wait_for(WAIT, |c| holds(c) == [(true, "client".into())]),
        "{:?}\n{}",
        holds(&c),
        sono.log()
    );
    let twice = c.call("hold", vec![]).unwrap();
    assert_eq!(
        twice.error_code(),
        Some(code::CALL_HOLD_FAILED),
        "{twice:?}"
    );

    let resumed = c.call("unhold", vec![]).unwrap();
    assert!(resumed.error_code().is_none(), "{resumed:?}");
    // Then the peer holds with c=0.0.0.0 and resumes.
    let expected: Vec<(bool, String)> = vec![
        (true, "client".into()),
        (false, "client".into()),
        (true, "peer".into()),
        (false, "peer".into()),
    ];
    assert!(
        c.wait_for(WAIT, |c| holds(c) == expected),
        "{:?}\n{}",
        holds(&c),
        sono.log()
    );
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    sipp.assert_success(WAIT);
    let reinvites: Vec<String> = sipp
        .received()
        .into_iter()
        .filter(|m| m.starts_with("INVITE") && !m.contains("CSeq: 1 INVITE"))
        .collect();
    assert_eq!(reinvites.len(), 2, "{reinvites:?}");
    assert!(reinvites[0].contains("CSeq: 2 INVITE"), "{}", reinvites[0]);
    assert!(reinvites[1].contains("CSeq: 3 INVITE"), "{}", reinvites[1]);
    // A re-offer keeps to the codec in use (PCMU here) and telephone-event.
    for r in &reinvites {
        assert!(
            r.contains("m=audio ") && r.contains(" RTP/AVP 0 101\r\n"),
            "{r}"
        );
    }
}
