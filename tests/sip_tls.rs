//! SIP over TLS (RFC 3261 §26.2, RFC 5630) against real peers, with
//! certificates a test CA made by openssl signs:
//! - baresip with a TLS account is called by a client and calls the
//!   client's implicit URI on sono's TLS port; both calls carry audio;
//! - sono registers at Kamailio over TLS (its tls module), and a call to
//!   the registered user comes back to sono over TLS through Kamailio;
//! - a TLS peer whose certificate is for another name is refused with a
//!   reason that says so, at once rather than after timer B;
//! - a `sips:` target behind a proxy reached without TLS is refused before
//!   anything is sent, and a `sips:` request over UDP is answered 416.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{
    free_port, Baresip, BaresipTls, FlashClient, Kamailio, Reply, Sono, TestCertificates,
};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);

/// These tests share baresip's RTP port range: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn sono_with_tls(certs: &TestCertificates, extra: &str) -> (Sono, u16) {
    let port = free_port();
    let settings = format!(
        "[sip]\n{}{extra}\n[media]\nrtp_port_min = 36000\nrtp_port_max = 36999\n",
        certs.sono_settings(port)
    );
    (Sono::start(SONO, &settings), port)
}

fn client(sono: &Sono) -> FlashClient {
    FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap()
}

fn tone(name: &str) -> std::path::PathBuf {
    let wav = std::env::temp_dir().join(format!("sono-tls-{name}-{}.wav", std::process::id()));
    sono_testkit::audio::tone_wav(&wav, 8000, 8, 440);
    wav
}

/// Audio messages the client receives in two seconds of the call.
fn audio_down(c: &mut FlashClient) -> usize {
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    c.pump(Duration::from_secs(2)).unwrap();
    c.audio.iter().filter(|(s, _, _)| *s == play).count()
}

#[test]
fn baresip_over_tls_is_called_by_sono_and_calls_the_client_back() {
    let _serial = serial();
    let certs = TestCertificates::make("baresip");
    let (sono, tls_port) = sono_with_tls(&certs, "");
    let wav = tone("baresip");
    let tls = BaresipTls {
        certificate: certs.combined("peer"),
        ca: certs.ca(),
        mediaenc: None,
    };

    // The client calls baresip's TLS account.
    let peer = Baresip::start_tls(
        &wav,
        (31000, 31499),
        Duration::from_secs(40),
        "PCMU/8000/1",
        8000,
        None,
        &tls,
    );
    let mut c = client(&sono);
    c.send_call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}\n{}",
        c.call_statuses(),
        sono.log(),
        peer.log()
    );
    // baresip's trace shows our INVITE came over TLS, with a TLS Via and a
    // Contact that asks for TLS back.
    assert!(
        peer.wait_log("SIP/2.0/TLS 127.0.0.1", WAIT),
        "{}",
        peer.log()
    );
    assert!(
        peer.log()
            .contains(&format!("127.0.0.1:{tls_port};transport=tls")),
        "{}",
        peer.log()
    );
    let down = audio_down(&mut c);
    assert!(down > 50, "{down} audio messages reached the client");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    // The BYE went over TLS too: baresip closed its session.
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    drop(peer);

    // baresip calls the client's implicit URI on sono's TLS port.
    let user = c.register_implicit().unwrap();
    let target = format!("sip:{user}@127.0.0.1:{tls_port};transport=tls");
    let caller = Baresip::start_tls(
        &wav,
        (31500, 31999),
        Duration::from_secs(40),
        "PCMU/8000/1",
        8000,
        Some(&target),
        &tls,
    );
    assert!(
        c.wait_for(WAIT, |c| c
            .events
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)
            )),
        "{}\n{}",
        sono.log(),
        caller.log()
    );
    assert!(matches!(
        c.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(
        caller.wait_log("Call established", WAIT),
        "{}",
        caller.log()
    );
    let down = audio_down(&mut c);
    assert!(down > 50, "{down} audio messages reached the client");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    assert!(caller.wait_log("session closed", WAIT), "{}", caller.log());
    let _ = std::fs::remove_file(&wav);
}

#[test]
fn sono_registers_at_kamailio_over_tls_and_is_called_through_it() {
    let _serial = serial();
    let certs = TestCertificates::make("kamailio");
    let kamailio = Kamailio::start_tls(&certs);
    let registrar = kamailio.tls_addr.expect("Kamailio's TLS address");
    let (sono, tls_port) = sono_with_tls(
        &certs,
        "register_expires = 30\nregister_retry_min = \"1s\"\nregister_retry_max = \"2s\"\n",
    );
    let mut alice = client(&sono);
    let domain = format!("{registrar};transport=tls");
    let txn = alice
        .send_call(
            "register",
            vec![
                "alice".into(),
                domain.into(),
                "alice".into(),
                "alicepw".into(),
            ],
        )
        .unwrap();
    assert!(
        alice.wait_for(WAIT, |c| c.has_reply(txn)),
        "no answer to register"
    );
    let reply = alice.reply(txn).unwrap();
    assert!(
        matches!(reply, Reply::Result(_)),
        "register: {reply:?}\n{}\n{}",
        sono.log(),
        kamailio.log()
    );

    // baresip (plain UDP) calls alice at Kamailio; Kamailio relays the
    // INVITE to the binding, which names sono's TLS port.
    let wav = tone("kamailio");
    let caller = Baresip::call(
        &wav,
        (31000, 31999),
        Duration::from_secs(30),
        "PCMU/8000/1",
        8000,
        &format!("sip:alice@{}", kamailio.addr),
    );
    assert!(
        alice.wait_for(WAIT, |c| c
            .events
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)
            )),
        "{}\n{}\n{}",
        sono.log(),
        kamailio.log(),
        caller.log()
    );
    assert!(matches!(
        alice.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(
        caller.wait_log("Call established", WAIT),
        "{}",
        caller.log()
    );
    let down = audio_down(&mut alice);
    assert!(down > 50, "{down} audio messages reached the client");
    alice.call("hangup", vec![]).unwrap();
    assert!(alice.wait_call_status(0, WAIT));
    drop(caller);
    drop(alice);
    drop(sono);
    // Kamailio's log (complete once it stops) shows the REGISTER over TLS
    // with a Contact on sono's TLS port.
    let mut kamailio = kamailio;
    kamailio.stop();
    let log = kamailio.log();
    assert!(log.contains("REGISTER alice over tls"), "{log}");
    assert!(
        log.contains(&format!("127.0.0.1:{tls_port};transport=tls")),
        "{log}"
    );
    let _ = std::fs::remove_file(&wav);
}

#[test]
fn a_tls_peer_with_a_certificate_for_another_name_is_refused_with_the_reason() {
    let _serial = serial();
    sono_testkit::require_tool("openssl", "openssl");
    let certs = TestCertificates::make("wrong-name");
    let (sono, _) = sono_with_tls(&certs, "");
    // openssl's TLS server, presenting a certificate for other.test only.
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(certs.certificate("other"))
        .arg("-key")
        .arg(certs.key("other"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting openssl s_server");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = client(&sono);
    let started = Instant::now();
    c.send_call(
        "dial",
        vec![format!("sip:bob@127.0.0.1:{port};transport=tls").into()],
    )
    .unwrap();
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    // Refused at the handshake, not after timer B's 32 s.
    assert!(started.elapsed() < Duration::from_secs(6));
    let statuses = c.call_statuses();
    let (_, code, reason) = statuses.last().cloned().unwrap();
    assert_eq!(code, Some(503), "{statuses:?}");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("certificate") && reason.contains("127.0.0.1"),
        "the reason names the certificate problem and the expected name: {reason}"
    );
    eprintln!("refused: {reason}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn sips_needs_tls_on_every_hop() {
    let _serial = serial();
    let certs = TestCertificates::make("sips");
    // A proxy reached over UDP: a sips: target cannot go through it.
    let proxy = UdpSocket::bind("127.0.0.1:0").unwrap();
    proxy
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let extra = format!(
        "outbound_proxy = \"sip:{}\"\n[sip.dial_plan]\nallow = [\".*\"]\n",
        proxy.local_addr().unwrap()
    );
    let (sono, _) = sono_with_tls(&certs, &extra);
    let mut c = client(&sono);
    let reply = c.call("dial", vec!["sips:bob@example.com".into()]).unwrap();
    match &reply {
        Reply::Error(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("sips:") && text.contains("TLS"), "{text}");
        }
        other => panic!("a sips: dial through a UDP proxy was accepted: {other:?}"),
    }
    let mut buf = [0u8; 2048];
    assert!(
        proxy.recv_from(&mut buf).is_err(),
        "something was sent to the proxy"
    );

    // A sips: INVITE over UDP: 416.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(WAIT)).unwrap();
    let me = probe.local_addr().unwrap();
    let invite = format!(
        "INVITE sips:alice@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-sips1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p1\r\nTo: <sips:alice@{sip}>\r\n\
         Call-ID: sips-over-udp@test\r\nCSeq: 1 INVITE\r\nContact: <sip:probe@{me}>\r\n\
         Content-Length: 0\r\n\r\n",
        sip = sono.sip
    );
    probe.send_to(invite.as_bytes(), sono.sip).unwrap();
    let (n, _) = probe
        .recv_from(&mut buf)
        .expect("an answer to the sips: INVITE");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 416 "), "{answer}");
}
