//! Calls through a record-routing proxy (RFC 3261 §12.1.1, §16.6 step 4):
//! Kamailio (`record_route()`, tests/peers/kamailio/) relays baresip's INVITE
//! to a client's implicit URI; sono's 180 and 200 copy the INVITE's
//! Record-Route, so the caller's ACK and BYE, and sono's own BYE, all pass
//! the proxy; so do our hold re-INVITEs, our REFER and our BYE after a
//! transfer, and the transferee's NOTIFYs come back through it. Kamailio
//! logs each in-dialog request it relays, with its source.

use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{Baresip, FlashClient, Kamailio, Reply, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);

/// Registers the client's implicit URI at Kamailio and returns the URI a
/// caller dials there.
fn implicit_uri_at(c: &mut FlashClient, domain: &str) -> String {
    let user = c.register_implicit().unwrap();
    let at_registrar = format!("sip:{user}@{domain}");
    assert!(
        c.wait_registered(&at_registrar, WAIT),
        "not registered at Kamailio: {:?}",
        c.events
    );
    at_registrar
}

/// baresip calls `target` through Kamailio; the client accepts.
fn answered_call(c: &mut FlashClient, target: &str, seconds: u32, name: &str) -> Baresip {
    let tone = std::env::temp_dir().join(format!("sono-rr-{name}-{}.wav", std::process::id()));
    sono_testkit::audio::tone_wav(&tone, 8000, seconds, 300);
    let caller = Baresip::call(
        &tone,
        (31000, 31999),
        Duration::from_secs(u64::from(seconds) + 15),
        "PCMU/8000/1",
        8000,
        target,
    );
    let incoming = c.events.len();
    assert!(
        c.wait_for(WAIT, |c| c.events[incoming..]
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)
            )),
        "no incoming call\n{}",
        caller.log()
    );
    let statuses = c.call_statuses().len();
    assert!(matches!(
        c.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(
        c.wait_for(WAIT, |c| c.call_statuses()[statuses..]
            .iter()
            .any(|(s, _, _)| *s == 4)),
        "{:?}\n{}",
        c.call_statuses(),
        caller.log()
    );
    caller
}

#[test]
fn ack_and_bye_both_ways_pass_a_record_routing_proxy() {
    let kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let sono = Sono::start(
        SONO,
        &format!("[sip]\nimplicit_registrar = \"{domain}\"\nregister_expires = 30\n"),
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let target = implicit_uri_at(&mut c, &domain);

    // The client hangs up: sono's BYE goes through Kamailio (its route set).
    let caller = answered_call(&mut c, &target, 8, "ours");
    let ack_from_caller = format!("in-dialog ACK from {}", caller.addr);
    assert!(
        kamailio.wait_log(&ack_from_caller, WAIT),
        "the caller's ACK did not pass the proxy (no Record-Route in our 200?)\n{}\n{}",
        kamailio.log(),
        caller.log()
    );
    c.call("hangup", vec![]).unwrap();
    let bye_from_sono = format!("in-dialog BYE from {}", sono.sip);
    assert!(
        kamailio.wait_log(&bye_from_sono, WAIT),
        "{}",
        kamailio.log()
    );
    assert!(caller.wait_log("session closed", WAIT), "{}", caller.log());
    drop(caller);

    // The caller hangs up (its 2 s file ends): its BYE goes through Kamailio.
    let caller = answered_call(&mut c, &target, 2, "theirs");
    let statuses = c.call_statuses().len();
    assert!(
        c.wait_for(WAIT, |c| c.call_statuses()[statuses..]
            .iter()
            .any(|(s, _, _)| *s == 0)),
        "the caller's BYE did not end the call: {:?}\n{}",
        c.call_statuses(),
        caller.log()
    );
    let bye_from_caller = format!("in-dialog BYE from {}", caller.addr);
    assert!(
        kamailio.wait_log(&bye_from_caller, WAIT),
        "the caller's BYE did not pass the proxy\n{}\n{}",
        kamailio.log(),
        caller.log()
    );
    let ack_from_caller = format!("in-dialog ACK from {}", caller.addr);
    assert!(kamailio.log().contains(&ack_from_caller));
}

/// Whether call `id`'s `Sono.Call.Held` by the client says `held`.
fn held(c: &FlashClient, held: bool) -> bool {
    c.events.iter().any(|e| {
        e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_HELD)
            && e.get("by").and_then(AmfValue::as_str) == Some("client")
            && e.get("held") == Some(&AmfValue::Boolean(held))
    })
}

#[test]
fn hold_and_a_blind_transfer_follow_the_route_set_through_the_proxy() {
    let kamailio = Kamailio::start();
    let domain = kamailio.addr.to_string();
    let sono = Sono::start(
        SONO,
        &format!("[sip]\nimplicit_registrar = \"{domain}\"\nregister_expires = 30\n"),
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let target = implicit_uri_at(&mut c, &domain);
    let tone = std::env::temp_dir().join(format!("sono-rr-transfer-{}.wav", std::process::id()));
    sono_testkit::audio::tone_wav(&tone, 16_000, 20, 300);
    // baresip plays its file at 16 kHz: G.722 with sono, and with the target.
    let caller = Baresip::call(
        &tone,
        (31000, 31999),
        Duration::from_secs(40),
        "G722/16000/1",
        16_000,
        &target,
    );
    assert!(
        c.wait_for(WAIT, |c| c
            .events
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING)
            )),
        "no incoming call\n{}",
        caller.log()
    );
    assert!(matches!(
        c.call("accept", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(c.wait_call_status(4, WAIT), "{:?}", c.call_statuses());

    // Hold and resume: our re-INVITEs take the route set.
    assert!(matches!(c.call("hold", vec![]).unwrap(), Reply::Result(_)));
    assert!(
        c.wait_for(WAIT, |c| held(c, true)),
        "{:?}\n{}",
        c.events,
        caller.log()
    );
    assert!(matches!(
        c.call("unhold", vec![]).unwrap(),
        Reply::Result(_)
    ));
    assert!(c.wait_for(WAIT, |c| held(c, false)), "{:?}", c.events);
    let reinvite_from_sono = format!("in-dialog INVITE from {}", sono.sip);
    assert!(
        kamailio.wait_log(&reinvite_from_sono, WAIT),
        "{}",
        kamailio.log()
    );

    // Transfer: the REFER takes the route set, baresip's NOTIFYs come back
    // through the proxy, baresip calls the target itself, and sono's BYE
    // (the transfer done) takes the route set too.
    let mut carol = sono_testkit::Sipp::uas(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp/uas_transfer_answer.xml"),
        1,
        Duration::from_secs(30),
        &[],
    );
    let transfer = c.call("transfer", vec![carol.uri("carol").into()]).unwrap();
    assert!(matches!(transfer, Reply::Result(_)), "{transfer:?}");
    assert!(
        c.wait_call_status(0, Duration::from_secs(15)),
        "{:?}\n{}\n{}",
        c.call_statuses(),
        sono.log(),
        caller.log()
    );
    let reason = c
        .call_statuses()
        .last()
        .and_then(|(_, _, reason)| reason.clone());
    assert_eq!(
        reason.as_deref(),
        Some("transferred"),
        "{:?}",
        c.call_statuses()
    );
    for (method, from) in [
        ("REFER", sono.sip.to_string()),
        ("NOTIFY", caller.addr.to_string()),
        ("BYE", sono.sip.to_string()),
    ] {
        let line = format!("in-dialog {method} from {from}");
        assert!(kamailio.wait_log(&line, WAIT), "{line}\n{}", kamailio.log());
    }
    carol.assert_success(WAIT);
}
