//! Inbound calls to a client's implicit URI, end to end: SIPp calls the
//! user `register` gave the connection, at sono's SIP address. Each test
//! checks what the client is told and the SIP code the caller gets:
//! accepted (200, ACK, statuses 2 and 4, the caller's BYE), rejected (603
//! by default, or the client's code), unanswered (480 after
//! `sip.no_answer_timeout`), cancelled by the caller (487), a second call
//! while one rings (486), and a user nobody holds (404).

use std::path::PathBuf;
use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 32000\nrtp_port_max = 32999\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// `uac_refused.xml` expecting `code`, written where SIPp can read it.
fn refused_scenario(code: u16) -> PathBuf {
    let text = std::fs::read_to_string(scenario("uac_refused"))
        .unwrap()
        .replace("@CODE@", &code.to_string());
    let path = std::env::temp_dir().join(format!(
        "sono-uac-refused-{}-{code}.xml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// A client registered with an implicit URI; returns it and its SIP user.
fn registered_client(sono: &Sono) -> (FlashClient, String) {
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let user = c.register_implicit().unwrap();
    assert!(user.starts_with("sono-"), "register answered {user:?}");
    (c, user)
}

fn incoming(c: &FlashClient) -> Option<AmfValue> {
    c.events
        .iter()
        .find(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING))
        .cloned()
}

#[test]
fn an_accepted_call_connects_and_the_callers_bye_ends_it() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    let mut sipp = Sipp::uac(&scenario("uac_answered"), sono.sip, &user, WAIT, &[]);
    assert!(
        c.wait_for(WAIT, |c| incoming(c).is_some()),
        "{}",
        sono.log()
    );
    let event = incoming(&c).unwrap();
    let caller = event
        .get("uri")
        .and_then(AmfValue::as_str)
        .unwrap_or_default();
    assert!(caller.starts_with("sip:caller@127.0.0.1"), "{event:?}");
    assert_eq!(
        event.get("display_name").and_then(AmfValue::as_str),
        Some("SIPp Caller")
    );
    let reply = c.call("accept", vec![]).unwrap();
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    let codes = c.call_status_codes();
    assert_eq!(codes[..2], [(2, Some(200)), (4, Some(200))], "{codes:?}");
    sipp.assert_success(WAIT);
    // A second accept has nothing to answer.
    let again = c.call("accept", vec![]).unwrap();
    assert_eq!(again.error_code(), Some(code::CALL_NO_CALL));
}

#[test]
fn reject_answers_603_by_default_and_the_clients_code_otherwise() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    for (args, expected) in [(vec![], 603u16), (vec![AmfValue::Number(486.0)], 486)] {
        let before = c.call_statuses().len();
        let mut sipp = Sipp::uac(&refused_scenario(expected), sono.sip, &user, WAIT, &[]);
        assert!(
            c.wait_for(WAIT, |c| c
                .events
                .iter()
                .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING))
                .count()
                > usize::from(expected == 486)),
            "{}",
            sono.log()
        );
        let reply = c.call("reject", args).unwrap();
        assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
        assert!(c.wait_for(WAIT, |c| c.call_statuses()[before..]
            .iter()
            .any(|(s, _, _)| *s == 0)));
        let last = c.call_statuses().last().cloned().unwrap();
        assert_eq!((last.0, last.1), (0, Some(expected)), "{last:?}");
        sipp.assert_success(WAIT);
    }
}

#[test]
fn an_unanswered_call_gets_480_after_the_timeout() {
    let sono = Sono::start(SONO, &format!("[sip]\nno_answer_timeout = \"1s\"\n{MEDIA}"));
    let (mut c, user) = registered_client(&sono);
    let mut sipp = Sipp::uac(&refused_scenario(480), sono.sip, &user, WAIT, &[]);
    assert!(c.wait_for(WAIT, |c| incoming(c).is_some()));
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    assert_eq!(c.call_status_codes().last(), Some(&(0, Some(480))));
    sipp.assert_success(WAIT);
}

#[test]
fn the_callers_cancel_gets_487_and_the_client_status_0() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    let mut sipp = Sipp::uac(&scenario("uac_cancel"), sono.sip, &user, WAIT, &[]);
    assert!(c.wait_for(WAIT, |c| incoming(c).is_some()));
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert_eq!(c.call_status_codes().last(), Some(&(0, Some(487))));
    sipp.assert_success(WAIT);
    let late = c.call("accept", vec![]).unwrap();
    assert_eq!(late.error_code(), Some(code::CALL_NO_CALL));
}

#[test]
fn a_second_call_while_one_rings_is_busy_and_an_unknown_user_is_not_found() {
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    let mut first = Sipp::uac(&refused_scenario(603), sono.sip, &user, WAIT, &[]);
    assert!(c.wait_for(WAIT, |c| incoming(c).is_some()));
    let mut second = Sipp::uac(&refused_scenario(486), sono.sip, &user, WAIT, &[]);
    second.assert_success(WAIT);
    let mut nobody = Sipp::uac(&refused_scenario(404), sono.sip, "sono-nobody", WAIT, &[]);
    nobody.assert_success(WAIT);
    c.call("reject", vec![]).unwrap();
    first.assert_success(WAIT);
}

#[test]
fn baresip_calls_the_implicit_uri_and_audio_flows_both_ways() {
    let wav = std::env::temp_dir().join(format!("sono-inbound-tone-{}.wav", std::process::id()));
    sono_testkit::audio::tone_wav(&wav, 16_000, 20, 440);
    let sono = Sono::start(SONO, MEDIA);
    let (mut c, user) = registered_client(&sono);
    let target = format!("sip:{user}@{}", sono.sip);
    let peer = sono_testkit::Baresip::call(
        &wav,
        (31000, 31999),
        Duration::from_secs(30),
        "G722/16000/1,PCMU/8000/1",
        16_000,
        &target,
    );
    assert!(
        c.wait_for(WAIT, |c| incoming(c).is_some()),
        "{}\n{}",
        sono.log(),
        peer.log()
    );
    assert!(matches!(
        c.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert!(peer.wait_log("Call established", WAIT), "{}", peer.log());
    // Audio down: baresip's tone reaches the client as Speex.
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    let mic_wav = wav.with_extension("mic.wav");
    sono_testkit::audio::tone_wav(&mic_wav, 16_000, 3, 300);
    c.publish_wav_as_speex(mic, &mic_wav).unwrap();
    let _ = std::fs::remove_file(&mic_wav);
    let down = c.audio.iter().filter(|(s, _, _)| *s == play).count();
    assert!(down > 100, "{down} audio messages down");
    // Audio up: baresip decoded packets from sono.
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    assert!(
        peer.wait_log("session closed", WAIT) || peer.wait_log("terminated", WAIT),
        "{}",
        peer.log()
    );
    assert!(sono.wait_log("media stopped", WAIT), "{}", sono.log());
    let log = sono.log();
    let stopped = log
        .lines()
        .find(|l| l.contains("media stopped"))
        .unwrap_or_default();
    assert!(stopped.contains("packets_received="), "{stopped}");
    let received: u64 = stopped
        .split("packets_received=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let sent: u64 = stopped
        .split("packets_sent=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(received > 100 && sent > 100, "{stopped}");
    let _ = std::fs::remove_file(&wav);
}

/// sono's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_thousand_clients_register_and_a_sample_of_them_takes_calls() {
    const CLIENTS: usize = 2000;
    let sono = Sono::start(SONO, &format!("[log]\nlevel = \"warn\"\n{MEDIA}"));
    let started = std::time::Instant::now();
    let before = rss_kib(sono.pid());
    let mut clients: Vec<(FlashClient, String)> =
        (0..CLIENTS).map(|_| registered_client(&sono)).collect();
    let registering = started.elapsed();
    let after = rss_kib(sono.pid());
    eprintln!(
        "{CLIENTS} clients registered in {registering:?}; sono's RSS {before} → {after} KiB ({:.1} KiB per idle registered connection, debug build)",
        (after.saturating_sub(before)) as f64 / CLIENTS as f64
    );
    assert!(registering < Duration::from_secs(90), "{registering:?}");
    assert_eq!(sono.metric("sono_rtmp_connections"), CLIENTS as f64);
    let users: std::collections::HashSet<&String> = clients.iter().map(|(_, u)| u).collect();
    assert_eq!(users.len(), CLIENTS, "every connection has its own user");
    // Calls to every 100th client: each rings that client and no other,
    // and its rejection reaches the caller.
    let calling = std::time::Instant::now();
    for i in (0..CLIENTS).step_by(100) {
        let (c, user) = &mut clients[i];
        let mut sipp = Sipp::uac(&refused_scenario(603), sono.sip, user, WAIT, &[]);
        assert!(
            c.wait_for(WAIT, |c| incoming(c).is_some()),
            "client {i} was not called"
        );
        assert!(matches!(
            c.call("reject", vec![]).unwrap(),
            Reply::Result(_)
        ));
        sipp.assert_success(WAIT);
    }
    assert!(
        calling.elapsed() < Duration::from_secs(60),
        "{:?}",
        calling.elapsed()
    );
    // Nobody else heard a thing.
    for (i, (c, _)) in clients.iter_mut().enumerate().filter(|(i, _)| i % 100 == 1) {
        c.pump(Duration::from_millis(1)).unwrap();
        assert!(incoming(c).is_none(), "client {i} was called by mistake");
    }
}
