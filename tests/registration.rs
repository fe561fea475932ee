//! Registration at a real registrar: Kamailio with digest authentication
//! (`tests/peers/kamailio/`). The client registers with credentials and
//! gets the binding; a wrong password is refused with the reason; a
//! Kamailio restart (bindings lost) is followed by re-registration; baresip
//! calls the registered user through Kamailio and the client takes the
//! call; a client that disconnects removes its binding at once (a call
//! right after is 404 at Kamailio).

use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{Baresip, FlashClient, Kamailio, Reply, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

/// The Kamailio tests run one at a time: each runs a registrar, sono and
/// baresip, and baresip's RTP port range is shared.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const WAIT: Duration = Duration::from_secs(10);
const CONFIG: &str =
    "[sip]\nregister_expires = 10\nregister_retry_min = \"1s\"\nregister_retry_max = \"2s\"\n\
[media]\nrtp_port_min = 33000\nrtp_port_max = 33999\n";

fn client(sono: &Sono) -> FlashClient {
    FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap()
}

fn register(c: &mut FlashClient, user: &str, domain: &str, password: &str) -> Reply {
    let txn = c
        .send_call(
            "register",
            vec![
                user.into(),
                domain.into(),
                user.into(),
                password.into(),
                "Alice Tester".into(),
            ],
        )
        .unwrap();
    assert!(
        c.wait_for(WAIT, |c| c.has_reply(txn)),
        "no answer to register"
    );
    c.reply(txn).unwrap()
}

/// The `Sono.Registration.Status` events, as (registered, sip_code).
fn statuses(c: &FlashClient) -> Vec<(bool, Option<u16>)> {
    c.events
        .iter()
        .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::REGISTRATION_STATUS))
        .map(|e| {
            (
                matches!(e.get("registered"), Some(AmfValue::Boolean(true))),
                e.get("sip_code")
                    .and_then(AmfValue::as_number)
                    .map(|n| n as u16),
            )
        })
        .collect()
}

/// baresip calling `target` with PCMU, playing a tone for `seconds` (at
/// 8 kHz: its file source wants its pipeline's rate).
fn pcmu_caller(target: &str, seconds: u32, name: &str) -> (Baresip, std::path::PathBuf) {
    let tone = std::env::temp_dir().join(format!("sono-reg-{name}-{}.wav", std::process::id()));
    sono_testkit::audio::tone_wav(&tone, 8000, seconds, 300);
    let caller = Baresip::call(
        &tone,
        (31000, 31999),
        Duration::from_secs(u64::from(seconds) + 10),
        "PCMU/8000/1",
        8000,
        target,
    );
    (caller, tone)
}

#[test]
fn digest_registration_restart_inbound_call_and_unregistration_at_kamailio() {
    let _serial = serial();
    let mut kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let sono = Sono::start(SONO, CONFIG);

    // A wrong password: refused, with the registrar's answer.
    let mut mallory = client(&sono);
    let refused = register(&mut mallory, "bob", &domain, "not-bobs");
    assert_eq!(
        refused.error_code(),
        Some(code::REGISTRATION_FAILED),
        "{refused:?}"
    );
    assert!(format!("{refused:?}").contains("401"), "{refused:?}");

    // The right one: registered, for what Kamailio granted.
    let mut alice = client(&sono);
    let reply = register(&mut alice, "alice", &domain, "alicepw");
    let Reply::Result(values) = &reply else {
        panic!("register: {reply:?}\n{}\n{}", sono.log(), kamailio.log());
    };
    let info = &values[values.len() - 1];
    assert_eq!(
        info.get("uri").and_then(AmfValue::as_str),
        Some(format!("sip:alice@{domain}").as_str())
    );
    assert_eq!(
        info.get("expires").and_then(AmfValue::as_number),
        Some(10.0)
    );
    assert!(alice.wait_for(WAIT, |c| statuses(c).contains(&(true, Some(200)))));

    // Kamailio restarts and forgets the binding: the refresh (due at 9 s)
    // fails while it is down and is retried within register_retry_max.
    // (Kamailio's own log is buffered until it exits, so the client's
    // events are the clock here: drain those in flight, restart, then
    // two more renewals — the later one certainly at the new instance.)
    alice.pump(Duration::from_millis(300)).unwrap();
    let registered = |c: &FlashClient| {
        statuses(c)
            .iter()
            .filter(|s| **s == (true, Some(200)))
            .count()
    };
    let before = registered(&alice);
    kamailio.restart();
    assert!(
        alice.wait_for(Duration::from_secs(25), |c| registered(c) >= before + 2),
        "no re-registration: {:?}\n{}\n{}",
        statuses(&alice),
        sono.log(),
        kamailio.log()
    );

    // baresip calls alice through Kamailio; the client answers; audio flows.
    let (caller, tone) = pcmu_caller(&format!("sip:alice@{domain}"), 20, "call");
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
    assert!(alice.wait_call_status(4, WAIT));
    assert!(
        caller.wait_log("Call established", WAIT),
        "{}",
        caller.log()
    );
    let play = alice.create_stream().unwrap();
    alice.play(play, "remote").unwrap();
    alice.pump(Duration::from_secs(2)).unwrap();
    let down = alice.audio.iter().filter(|(s, _, _)| *s == play).count();
    assert!(down > 50, "{down} audio messages reached the client");
    alice.call("hangup", vec![]).unwrap();
    assert!(alice.wait_call_status(0, WAIT));

    // The client goes: its binding is removed at once (Expires: 0), not
    // left to lapse: a call to alice right after is 404 at Kamailio, while
    // the binding would have lived up to 10 s more.
    drop(caller);
    drop(alice);
    std::thread::sleep(Duration::from_millis(500));
    let second = Baresip::call(
        &tone,
        (31000, 31999),
        Duration::from_secs(10),
        "PCMU/8000/1",
        8000,
        &format!("sip:alice@{domain}"),
    );
    assert!(
        second.wait_log("404 Not Found", Duration::from_secs(3)),
        "the binding outlived its client\n{}\n{}",
        second.log(),
        sono.log()
    );
    let _ = std::fs::remove_file(&tone);
}

/// A call to `user` at Kamailio right now must be 404: no binding.
fn assert_no_binding(kamailio: &Kamailio, user: &str, sono: &Sono) {
    let (caller, tone) = pcmu_caller(&format!("sip:{user}@{}", kamailio.addr), 2, user);
    let removed = caller.wait_log("404 Not Found", Duration::from_secs(3));
    let _ = std::fs::remove_file(&tone);
    assert!(
        removed,
        "{user}'s binding is still there\n{}\n{}",
        caller.log(),
        sono.log()
    );
}

#[test]
fn registering_again_and_stopping_sono_remove_the_old_bindings() {
    let _serial = serial();
    let kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let mut sono = Sono::start(SONO, CONFIG);
    let mut c = client(&sono);
    let reply = register(&mut c, "alice", &domain, "alicepw");
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    // The same client registers as bob: alice's binding goes at once.
    let reply = register(&mut c, "bob", &domain, "bobpw");
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    assert_no_binding(&kamailio, "alice", &sono);
    assert!(c.wait_for(WAIT, |_| sono.metric("sono_registrations") == 1.0));
    // SIGTERM: the graceful shutdown sends Expires: 0 before sono exits.
    let status = sono.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_no_binding(&kamailio, "bob", &sono);
}

#[test]
fn implicit_uris_are_registered_at_the_implicit_registrar_and_reachable_through_it() {
    let _serial = serial();
    let kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let sono = Sono::start(
        SONO,
        &format!("[sip]\nimplicit_registrar = \"{domain}\"\nregister_expires = 30\n"),
    );
    let mut c = client(&sono);
    let user = c.register_implicit().unwrap();
    assert!(user.starts_with("sono-"), "{user}");
    // The implicit user registered at Kamailio too, without credentials.
    let at_registrar = format!("sip:{user}@{domain}");
    assert!(
        c.wait_registered(&at_registrar, WAIT),
        "{:?}\n{}",
        c.events,
        sono.log()
    );
    // A call to that user at Kamailio reaches the client; its reject
    // reaches the caller through Kamailio.
    let (caller, tone) = pcmu_caller(&at_registrar, 2, "implicit");
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
        c.call("reject", vec![AmfValue::Number(486.0)]).unwrap(),
        Reply::Result(_)
    ));
    assert!(
        caller.wait_log("session closed: 486", WAIT),
        "{}",
        caller.log()
    );
    let _ = std::fs::remove_file(&tone);
}

/// Speech both ways on a call baresip places through Kamailio to a
/// registered client, scored with PESQ against the same codec chain run
/// offline, as the media tests do (the gateway may cost 0.3 MOS at most).
#[test]
fn speech_both_ways_on_a_call_through_kamailio_costs_at_most_0_3_mos() {
    use sono_testkit::audio::{self, AudioDir};
    let dir = AudioDir::new("kamailio-call");
    let client_src = dir.file("client-src.wav");
    let peer_src = dir.file("peer-src.wav");
    audio::speech_wav(
        "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
        16_000,
        &client_src,
    );
    audio::speech_wav(
        "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.",
        8000,
        &peer_src,
    );
    // Silence first (the client answers and starts publishing meanwhile),
    // and after (baresip hangs up when its file ends).
    let peer_play = dir.file("peer-play.wav");
    audio::ffmpeg(&[
        "-i",
        &peer_src.display().to_string(),
        "-af",
        "adelay=2500,apad=pad_dur=20",
        "-ar",
        "8000",
        &peer_play.display().to_string(),
    ]);
    let _serial = serial();
    let kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let sono = Sono::start(SONO, CONFIG);
    let mut alice = client(&sono);
    assert!(matches!(
        register(&mut alice, "alice", &domain, "alicepw"),
        Reply::Result(_)
    ));
    let caller = Baresip::call(
        &peer_play,
        (31000, 31999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
        &format!("sip:alice@{domain}"),
    );
    assert!(alice.wait_for(WAIT, |c| c
        .events
        .iter()
        .any(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING))));
    assert!(matches!(
        alice.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(alice.wait_call_status(4, WAIT));
    let play = alice.create_stream().unwrap();
    alice.play(play, "remote").unwrap();
    let mic = alice.create_stream().unwrap();
    alice.publish(mic, "mic").unwrap();
    alice.publish_wav_as_speex(mic, &client_src).unwrap();
    alice.pump(Duration::from_secs(2)).unwrap();
    alice.call("hangup", vec![]).unwrap();
    assert!(alice.wait_call_status(0, WAIT));
    assert!(caller.wait_log("session closed", WAIT), "{}", caller.log());

    // Up: client → sono → Kamailio's callee side → baresip.
    let heard = caller
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", caller.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard, 8000, &peer_heard);
    let client_ref = dir.file("client-ref.wav");
    audio::convert(&client_src, 8000, &client_ref);
    let up = audio::pesq("nb", &client_ref, &peer_heard);
    let speex = dir.file("up-speex.wav");
    audio::speex_round_trip(&client_src, 16_000, &speex);
    let up_offline_wav = dir.file("up-offline.wav");
    audio::round_trip(
        &speex,
        &["-ar", "8000", "-c:a", "pcm_mulaw"],
        "au",
        8000,
        &up_offline_wav,
    );
    let up_offline = audio::pesq("nb", &client_ref, &up_offline_wav);
    // Down: baresip → sono → client.
    let client_heard = audio::heard_by_client(&alice, play, &dir, 8000);
    let down = audio::pesq("nb", &peer_src, &client_heard);
    let sip_leg = dir.file("down-sip.wav");
    audio::round_trip(
        &peer_src,
        &["-ar", "8000", "-c:a", "pcm_mulaw"],
        "au",
        16_000,
        &sip_leg,
    );
    let down_offline_wav = dir.file("down-offline.wav");
    audio::speex_round_trip(&sip_leg, 8000, &down_offline_wav);
    let down_offline = audio::pesq("nb", &peer_src, &down_offline_wav);
    eprintln!(
        "through Kamailio, PCMU PESQ-NB: up {up:.2} (offline {up_offline:.2}), down {down:.2} (offline {down_offline:.2})"
    );
    assert!(
        up >= up_offline - 0.3,
        "up {up:.2} vs {up_offline:.2}\n{}",
        sono.log()
    );
    assert!(
        down >= down_offline - 0.3,
        "down {down:.2} vs {down_offline:.2}\n{}",
        sono.log()
    );
}

#[test]
fn a_registrar_name_that_does_not_resolve_is_refused_with_the_reason() {
    let sono = Sono::start(SONO, "[sip]\nregistrars = [\"*\"]\n");
    let mut c = client(&sono);
    let reply = register(&mut c, "alice", "no-such-registrar.invalid:5060", "pw");
    assert_eq!(
        reply.error_code(),
        Some(code::REGISTRATION_FAILED),
        "{reply:?}"
    );
    assert!(
        format!("{reply:?}").contains("cannot resolve no-such-registrar.invalid"),
        "{reply:?}"
    );
    assert!(c.wait_for(WAIT, |_| sono.metric("sono_registrations") == 0.0));
}
