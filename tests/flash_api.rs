//! The Flash phone API over real RTMP against the real binary, with the
//! Flash-like test client in both object encodings: every method's answer and
//! each argument error's named code (docs/flash-api.md).

use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{FlashClient, Reply, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

fn check_every_method(sono: &Sono, encoding: ObjectEncoding) {
    let mut c = FlashClient::connect(sono.rtmp, "phone", encoding).expect("connect");
    assert_eq!(
        c.connect_info
            .get("objectEncoding")
            .and_then(AmfValue::as_number),
        Some(encoding.number()),
        "connect answers with the client's own object encoding"
    );

    // register without arguments: an implicit URI, the full SIP URI.
    let reply = c.call("register", vec![]).unwrap();
    let info = reply.value().cloned().expect("register answers _result");
    assert_eq!(info.get("level").and_then(AmfValue::as_str), Some("status"));
    let uri = info
        .get("uri")
        .and_then(AmfValue::as_str)
        .expect("uri")
        .to_owned();
    assert!(
        uri.starts_with("sip:sono-") && uri.ends_with("@127.0.0.1"),
        "{uri}"
    );
    let event = c
        .wait_event(code::REGISTRATION_STATUS, Duration::from_secs(2))
        .unwrap();
    assert_eq!(event.get("registered"), Some(&AmfValue::Boolean(true)));
    assert_eq!(
        event.get("uri").and_then(AmfValue::as_str),
        Some(uri.as_str())
    );
    // Registering again keeps the URI.
    let again = c.call("register", vec![AmfValue::Null]).unwrap();
    assert_eq!(
        again
            .value()
            .and_then(|v| v.get("uri"))
            .and_then(AmfValue::as_str),
        Some(uri.as_str())
    );

    let cases: Vec<(&str, Vec<AmfValue>, &str)> = vec![
        ("dial", vec![], code::CALL_NO_URI),
        ("dial", vec![AmfValue::Null], code::CALL_NO_URI),
        ("dial", vec!["".into()], code::CALL_NO_URI),
        ("dial", vec![AmfValue::Number(42.0)], code::CALL_NO_URI),
        // The default dial plan allows loopback targets only: no open relay.
        (
            "dial",
            vec!["sip:bob@example.com".into()],
            code::CALL_FORBIDDEN,
        ),
        (
            "dial",
            vec!["sip:bob@127.0.0.1.example.com".into()],
            code::CALL_FORBIDDEN,
        ),
        ("dial", vec!["tel:+15551234".into()], code::CALL_FAILED),
        ("hangup", vec![], code::CALL_NO_CALL),
        ("accept", vec![], code::CALL_NO_CALL),
        ("reject", vec![], code::CALL_NO_CALL),
        ("reject", vec![AmfValue::Number(486.0)], code::CALL_NO_CALL),
        (
            "reject",
            vec![AmfValue::Number(200.0)],
            code::CALL_INVALID_CODE,
        ),
        ("reject", vec!["busy".into()], code::CALL_INVALID_CODE),
        ("sendDTMF", vec![], code::DTMF_INVALID),
        ("sendDTMF", vec!["12x".into()], code::DTMF_INVALID),
        ("sendDTMF", vec!["123#".into()], code::CALL_NO_CALL),
        (
            "register",
            vec![AmfValue::Number(1.0)],
            code::REGISTRATION_FAILED,
        ),
        (
            "register",
            // A registrar outside sip.registrars: refused before anything is sent.
            vec![
                "alice".into(),
                "registrar.example:5090".into(),
                AmfValue::Null,
                "pw".into(),
            ],
            code::REGISTRATION_FAILED,
        ),
        (
            "register",
            vec![AmfValue::Null, AmfValue::Null, "alice".into(), "pw".into()],
            code::REGISTRATION_FAILED,
        ),
        ("makeCall", vec![], code::METHOD_NOT_FOUND),
    ];
    for (method, args, expected) in cases {
        let reply = c.call(method, args.clone()).unwrap();
        assert_eq!(
            reply.error_code(),
            Some(expected),
            "{method}({args:?}) in {encoding:?} answered {reply:?}"
        );
        let Reply::Error(info) = reply else {
            unreachable!()
        };
        assert_eq!(info.get("level").and_then(AmfValue::as_str), Some("error"));
        assert!(info
            .get("description")
            .and_then(AmfValue::as_str)
            .is_some_and(|d| !d.is_empty()));
    }

    // NetStream commands work alongside.
    let s = c.create_stream().unwrap();
    c.publish(s, "mic").unwrap();
    let p = c.create_stream().unwrap();
    c.play(p, "speaker").unwrap();
}

#[test]
fn every_method_answers_per_the_wire_contract_in_amf0_and_amf3() {
    let sono = Sono::start(SONO, "");
    check_every_method(&sono, ObjectEncoding::Amf0);
    check_every_method(&sono, ObjectEncoding::Amf3);
    // Two clients get two different implicit URIs.
    let mut a = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let mut b = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).unwrap();
    let ua = a.call("register", vec![]).unwrap();
    let ub = b.call("register", vec![]).unwrap();
    assert_ne!(
        ua.value().and_then(|v| v.get("uri")),
        ub.value().and_then(|v| v.get("uri"))
    );
}

#[test]
fn the_dial_plan_is_a_setting() {
    let sono = Sono::start(
        SONO,
        "[sip.dial_plan]\nallow_loopback = false\nallow = ['sip:[0-9]+@pbx\\.example\\.org']\ndeny = ['sip:666@.*']\n",
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let dial = |c: &mut FlashClient, uri: &str| {
        c.call("dial", vec![uri.into()])
            .unwrap()
            .error_code()
            .map(str::to_owned)
    };
    assert_eq!(
        dial(&mut c, "sip:1234@pbx.example.org").as_deref(),
        Some(code::CALL_FAILED)
    );
    assert_eq!(
        dial(&mut c, "sip:666@pbx.example.org").as_deref(),
        Some(code::CALL_FORBIDDEN)
    );
    assert_eq!(
        dial(&mut c, "sip:bob@127.0.0.1").as_deref(),
        Some(code::CALL_FORBIDDEN)
    );
    assert!(sono.wait_log("dial refused by the dial plan", Duration::from_secs(1)));
}

#[test]
fn connect_to_an_application_not_in_the_list_is_rejected() {
    let sono = Sono::start(SONO, "[rtmp]\napps = [\"phone\"]\n");
    let mut c = FlashClient::handshake(sono.rtmp).unwrap();
    let reply = c.send_connect("other", ObjectEncoding::Amf0).unwrap();
    assert_eq!(reply.error_code(), Some("NetConnection.Connect.Rejected"));
    assert!(c.wait_closed(Duration::from_secs(3)));
    assert!(FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).is_ok());
}

#[test]
fn idle_clients_are_pinged_and_silent_ones_closed() {
    let sono = Sono::start(
        SONO,
        "[rtmp]\nidle_timeout = \"2s\"\nping_interval = \"500ms\"\n",
    );
    // The test client answers pings as Flash does: it stays connected.
    let mut live = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).unwrap();
    // A client that finished the handshake and then says nothing is closed.
    let mut silent = FlashClient::handshake(sono.rtmp).unwrap();
    let mut closed = false;
    for _ in 0..25 {
        live.pump(Duration::from_millis(150)).unwrap();
        if silent.wait_closed(Duration::from_millis(50)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the silent client was not closed");
    // The live client outlived the idle timeout by answering pings.
    live.pump(Duration::from_millis(1500)).unwrap();
    assert!(
        live.call("register", vec![]).unwrap().value().is_some(),
        "the live client was closed"
    );
    assert!(sono.wait_log("idle timeout", Duration::from_secs(1)));
}

#[test]
fn connections_over_the_limit_are_refused_and_counted() {
    let sono = Sono::start(SONO, "[rtmp]\nmax_connections = 2\n");
    let _a = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).unwrap();
    let _b = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).unwrap();
    assert!(
        FlashClient::handshake(sono.rtmp).is_err(),
        "a third connection got through"
    );
    assert_eq!(sono.metric("sono_rtmp_connections_refused_total"), 1.0);
    assert!(sono.wait_log("rtmp.max_connections reached", Duration::from_secs(1)));
}

#[test]
fn shutdown_tells_clients_and_exits_cleanly() {
    let mut sono = Sono::start(SONO, "");
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let status = sono
        .terminate(Duration::from_secs(10))
        .expect("sono exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(c.wait_closed(Duration::from_secs(3)));
    assert!(
        c.events
            .iter()
            .any(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::SERVER_SHUTDOWN)),
        "no shutdown event among {:?}",
        c.events
    );
}
