//! SIP over TLS (RFC 3261 §26.2, RFC 5630) against real peers, with
//! certificates a test CA made by openssl signs:
//! - baresip with a TLS account is called by a client and calls the
//!   client's implicit URI on sono's TLS port; both calls carry audio;
//! - sono registers at Kamailio over TLS (its tls module), and a call to
//!   the registered user comes back to sono over TLS through Kamailio;
//! - a TLS peer whose certificate is for another name is refused with a
//!   reason that says so, at once rather than after timer B;
//! - a `sips:` target behind a proxy reached without TLS is refused before
//!   anything is sent, and a `sips:` request over UDP is answered 416;
//! - SRTP with SDES keys (RFC 4568, RFC 3711): baresip with a TLS account
//!   and mandatory SRTP calls and is called, speech both ways scored by
//!   PESQ against the same codec chain offline; `required` SRTP against a
//!   plain answer (SIPp) fails the call with 488 and the reason, a plain
//!   offer gets 488, and keys never go out over plain UDP signalling.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{
    free_port, Baresip, BaresipTls, FlashClient, Kamailio, Reply, Sipp, Sono, TestCertificates,
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

/// Waits for `Sono.Call.Incoming` and accepts the call; `logs` says why not.
fn accept_incoming(c: &mut FlashClient, logs: impl Fn() -> String) {
    assert!(
        c.wait_for(WAIT, |c| c
            .events
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)
            )),
        "no incoming call\n{}",
        logs()
    );
    assert!(matches!(
        c.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
}

/// baresip over TLS (`tls`) calls the client's implicit URI on sono's TLS
/// port, playing `play` in `codec` at `srate`; the client accepts.
fn called_by_baresip(
    c: &mut FlashClient,
    sono: &Sono,
    tls_port: u16,
    play: &std::path::Path,
    codec: &str,
    srate: u32,
    tls: &BaresipTls,
) -> Baresip {
    let user = c.register_implicit().unwrap();
    let target = format!("sip:{user}@127.0.0.1:{tls_port};transport=tls");
    let caller = Baresip::start_tls(
        play,
        (31500, 31999),
        Duration::from_secs(60),
        codec,
        srate,
        Some(&target),
        tls,
    );
    accept_incoming(c, || format!("{}\n{}", sono.log(), caller.log()));
    caller
}

/// The client hears the peer for two seconds (audio down flows), hangs up,
/// and the peer closes its session on our BYE.
fn talk_and_hang_up(c: &mut FlashClient, peer: &Baresip) {
    let down = audio_down(c);
    assert!(down > 50, "{down} audio messages reached the client");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
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
    // The BYE goes over TLS too: baresip closes its session.
    talk_and_hang_up(&mut c, &peer);
    drop(peer);

    // baresip calls the client's implicit URI on sono's TLS port.
    let caller = called_by_baresip(&mut c, &sono, tls_port, &wav, "PCMU/8000/1", 8000, &tls);
    assert!(
        caller.wait_log("Call established", WAIT),
        "{}",
        caller.log()
    );
    talk_and_hang_up(&mut c, &caller);
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
    accept_incoming(&mut alice, || {
        format!("{}\n{}\n{}", sono.log(), kamailio.log(), caller.log())
    });
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

/// How much worse than the offline chain SRTP calls may sound (the bound).
const MAX_COST: f64 = 0.3;

const CLIENT_SAYS: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.";
const PEER_SAYS: &str =
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// One G.722 call between the client (Speex wideband) and baresip over
/// TLS with mandatory SRTP, placed by the client or by baresip; returns
/// PESQ-WB (up through sono, up offline, down through sono, down offline).
fn srtp_call(dial_out: bool) -> (f64, f64, f64, f64) {
    let name = if dial_out { "srtp-out" } else { "srtp-in" };
    let certs = TestCertificates::make(name);
    let (sono, tls_port) = sono_with_tls(&certs, "srtp = \"required\"\n");
    let dir = AudioDir::new(name);
    let client_src = dir.file("client-src.wav");
    let peer_src = dir.file("peer-src.wav");
    audio::speech_wav(CLIENT_SAYS, 16_000, &client_src);
    audio::speech_wav(PEER_SAYS, 16_000, &peer_src);
    let peer_play = dir.file("peer-play.wav");
    audio::ffmpeg(&[
        "-i",
        &peer_src.display().to_string(),
        "-af",
        "adelay=1000,apad=pad_dur=20",
        "-ar",
        "16000",
        &peer_play.display().to_string(),
    ]);
    let tls = BaresipTls {
        certificate: certs.combined("peer"),
        ca: certs.ca(),
        mediaenc: Some("srtp-mand".into()),
    };
    let mut c = client(&sono);
    let peer = if dial_out {
        let peer = Baresip::start_tls(
            &peer_play,
            (31000, 31999),
            Duration::from_secs(60),
            "G722/16000/1",
            16_000,
            None,
            &tls,
        );
        c.send_call("dial", vec![peer.uri().into()]).unwrap();
        peer
    } else {
        called_by_baresip(
            &mut c,
            &sono,
            tls_port,
            &peer_play,
            "G722/16000/1",
            16_000,
            &tls,
        )
    };
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}\n{}",
        c.call_statuses(),
        sono.log(),
        peer.log()
    );
    // The SDP both ways was RTP/SAVP with SDES keys, and baresip took it.
    assert!(peer.wait_log("RTP/SAVP", WAIT), "{}", peer.log());
    assert!(peer.log().contains("a=crypto:"), "{}", peer.log());
    assert!(
        sono.wait_log("srtp=Some(AesCm128HmacSha1_", WAIT),
        "the media bridge runs SRTP\n{}",
        sono.log()
    );
    let publish = c.create_stream().unwrap();
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    c.publish(publish, "mic").unwrap();
    c.publish_wav_as_speex(publish, &client_src).unwrap();
    c.pump(Duration::from_secs(2)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let m = sono.metrics();
    let received = m
        .get("sono_rtp_packets_received_total{outcome=\"accepted\"}")
        .copied()
        .unwrap_or(0.0);
    let refused = m
        .get("sono_rtp_packets_received_total{outcome=\"srtp_refused\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(received > 150.0, "{received} SRTP packets accepted");
    assert_eq!(
        refused,
        0.0,
        "SRTP packets failed authentication\n{}",
        sono.log()
    );

    let heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard, 16_000, &peer_heard);
    let g722 = ["-ar", "16000", "-c:a", "g722"];
    let up = audio::pesq("wb", &client_src, &peer_heard);
    let client_leg = dir.file("up-client.wav");
    audio::speex_round_trip(&client_src, 16_000, &client_leg);
    let up_offline_wav = dir.file("up-offline.wav");
    audio::round_trip(&client_leg, &g722, "g722", 16_000, &up_offline_wav);
    let up_offline = audio::pesq("wb", &client_src, &up_offline_wav);
    let client_heard = audio::heard_by_client(&c, play, &dir, 16_000);
    let down = audio::pesq("wb", &peer_src, &client_heard);
    let sip_leg = dir.file("down-sip.wav");
    audio::round_trip(&peer_src, &g722, "g722", 16_000, &sip_leg);
    let down_offline_wav = dir.file("down-offline.wav");
    audio::speex_round_trip(&sip_leg, 16_000, &down_offline_wav);
    let down_offline = audio::pesq("wb", &peer_src, &down_offline_wav);
    eprintln!(
        "{name} PESQ-WB: up {up:.2} (offline {up_offline:.2}), down {down:.2} (offline {down_offline:.2})"
    );
    (up, up_offline, down, down_offline)
}

#[test]
fn srtp_over_tls_with_baresip_both_ways_sounds_like_the_offline_chain() {
    let _serial = serial();
    for dial_out in [true, false] {
        let (up, up_offline, down, down_offline) = srtp_call(dial_out);
        assert!(
            up >= up_offline - MAX_COST,
            "audio up over SRTP scores {up:.2}, the offline chain {up_offline:.2}"
        );
        assert!(
            down >= down_offline - MAX_COST,
            "audio down over SRTP scores {down:.2}, the offline chain {down_offline:.2}"
        );
    }
}

#[test]
fn required_srtp_refuses_plain_answers_and_offers_and_keeps_keys_off_plain_signalling() {
    let _serial = serial();
    let scenarios = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp");
    // Keys allowed over UDP here, so SIPp (no TLS) can see the offer.
    let sono = Sono::start(
        SONO,
        "[sip]\nsrtp = \"required\"\nsrtp_without_tls = true\n[media]\nrtp_port_min = 36000\nrtp_port_max = 36999\n",
    );
    let mut peer = Sipp::uas(
        &scenarios.join("uas_plain_answer_to_savp.xml"),
        1,
        Duration::from_secs(20),
        &[],
    );
    let mut c = client(&sono);
    c.send_call("dial", vec![peer.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let statuses = c.call_statuses();
    let (_, code, reason) = statuses.last().cloned().unwrap();
    assert_eq!(code, Some(488), "{statuses:?}");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("SRTP") && reason.contains("required"),
        "the client hears why: {reason}"
    );
    // SIPp checked the RTP/SAVP offer and both keys, got its ACK and BYE.
    peer.assert_success(WAIT);

    // A plain offer to a client's URI: 488.
    let user = c.register_implicit().unwrap();
    let refused = std::fs::read_to_string(scenarios.join("uac_refused.xml"))
        .unwrap()
        .replace("@CODE@", "488");
    let refused_path =
        std::env::temp_dir().join(format!("sono-srtp-refused-{}.xml", std::process::id()));
    std::fs::write(&refused_path, refused).unwrap();
    let mut caller = Sipp::uac(&refused_path, sono.sip, &user, Duration::from_secs(10), &[]);
    caller.assert_success(WAIT);
    assert!(
        !c.events
            .iter()
            .any(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)),
        "a plain call rang"
    );
    drop(c);
    drop(sono);

    // Without srtp_without_tls, a UDP target cannot get keys: the dial is
    // refused before anything is sent, saying why.
    let sono = Sono::start(
        SONO,
        "[sip]\nsrtp = \"required\"\n[media]\nrtp_port_min = 36000\nrtp_port_max = 36999\n",
    );
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut c = client(&sono);
    let reply = c
        .call(
            "dial",
            vec![format!("sip:bob@{}", silent.local_addr().unwrap()).into()],
        )
        .unwrap();
    let text = format!("{reply:?}");
    assert!(matches!(reply, Reply::Error(_)), "{text}");
    assert!(text.contains("TLS"), "{text}");
    let mut buf = [0u8; 2048];
    assert!(
        silent.recv_from(&mut buf).is_err(),
        "an INVITE went out over UDP"
    );
    let _ = std::fs::remove_file(&refused_path);
}
