//! The registration core against a scripted registrar, in simulated time:
//! digest on 401, the expiry granted, refresh before it lapses, backoff on
//! silence and 5xx, 423 Min-Expires, refusal, and removal with Expires: 0.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sono_sip::digest::Credentials;
use sono_sip::message::{parse, Received};
use sono_sip::registration::{Registration, RegistrationConfig, RegistrationEvent};
use sono_sip::response::response_text;
use sono_sip::transaction::Timers;
use sono_sip::transmit::Transport;

const REGISTRAR: &str = "127.0.0.1:5090";

fn config(password: Option<&str>) -> RegistrationConfig {
    RegistrationConfig {
        registrar_uri: "sip:example.test".into(),
        next_hop: REGISTRAR.parse().unwrap(),
        aor: "sip:alice@example.test".into(),
        display_name: Some("Alice".into()),
        contact: "sip:alice-1@127.0.0.1:5060".into(),
        via_sent_by: "127.0.0.1:5060".into(),
        user_agent: "sono-test".into(),
        credentials: password.map(|p| Credentials {
            username: "alice".into(),
            password: p.into(),
        }),
        expires: 600,
        timers: Timers::default(),
        transport: Transport::Udp,
        retry_min: Duration::from_secs(2),
        retry_max: Duration::from_secs(8),
    }
}

/// The REGISTERs the core sent since last asked, parsed.
fn sent(r: &mut Registration) -> Vec<Received> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|t| {
            assert_eq!(t.to, REGISTRAR.parse::<SocketAddr>().unwrap());
            parse(&t.bytes).expect("our REGISTER parses")
        })
        .collect()
}

fn header(m: &Received, name: &str) -> Option<String> {
    m.request()
        .and_then(|r| sono_sip::response::header_value(&r.headers, name))
}

fn answer(
    r: &mut Registration,
    to: &Received,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    now: Instant,
) {
    let me: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let text = response_text(to, me, code, reason, Some("reg"), extra, None);
    let rx = parse(text.as_bytes()).expect("the registrar's response parses");
    r.handle_message(rx, REGISTRAR.parse().unwrap(), now);
}

fn events(r: &mut Registration) -> Vec<RegistrationEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

const CHALLENGE: &str =
    "Digest realm=\"example.test\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5";

#[test]
fn a_challenge_is_answered_and_the_binding_refreshed_before_it_lapses() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(Some("secret")), t0);
    let first = sent(&mut r);
    assert_eq!(first.len(), 1);
    let register = &first[0];
    assert_eq!(header(register, "Expires").as_deref(), Some("600"));
    assert!(header(register, "Contact")
        .unwrap()
        .contains("<sip:alice-1@127.0.0.1:5060>;expires=600"));
    assert!(header(register, "From")
        .unwrap()
        .starts_with("\"Alice\" <sip:alice@example.test>;tag="));
    answer(
        &mut r,
        register,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", CHALLENGE)],
        t0,
    );
    let retry = sent(&mut r);
    assert_eq!(retry.len(), 1);
    let auth = header(&retry[0], "Authorization").expect("an Authorization header");
    assert!(
        auth.contains("username=\"alice\"") && auth.contains("uri=\"sip:example.test\""),
        "{auth}"
    );
    assert_eq!((retry[0].cseq, &retry[0].call_id), (2, &register.call_id));
    // The registrar grants less than asked, on our Contact.
    answer(
        &mut r,
        &retry[0],
        200,
        "OK",
        &[("Contact", "<sip:alice-1@127.0.0.1:5060>;expires=120")],
        t0,
    );
    assert_eq!(
        events(&mut r),
        [RegistrationEvent::Registered {
            expires: 120,
            code: 200,
            reason: "OK".into()
        }]
    );
    // Past the transaction's own timer (K), the next deadline is the refresh.
    let mut refresh = r.poll_timeout().expect("a refresh is due");
    while refresh < t0 + Duration::from_secs(100) {
        r.handle_timeout(refresh);
        assert!(sent(&mut r).is_empty());
        refresh = r.poll_timeout().expect("a refresh is due");
    }
    assert_eq!(
        refresh,
        t0 + Duration::from_secs(108),
        "10 % before the expiry"
    );
    r.handle_timeout(refresh);
    let again = sent(&mut r);
    assert_eq!((again[0].cseq, &again[0].call_id), (3, &register.call_id));
}

#[test]
fn a_wrong_password_is_refused_once_not_retried() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(Some("wrong")), t0);
    let first = sent(&mut r);
    answer(
        &mut r,
        &first[0],
        401,
        "Unauthorized",
        &[("WWW-Authenticate", CHALLENGE)],
        t0,
    );
    let retry = sent(&mut r);
    answer(
        &mut r,
        &retry[0],
        401,
        "Unauthorized",
        &[("WWW-Authenticate", CHALLENGE)],
        t0,
    );
    let ev = events(&mut r);
    assert!(
        matches!(&ev[..], [RegistrationEvent::Refused { code: 401, .. }]),
        "{ev:?}"
    );
    assert!(sent(&mut r).is_empty());
    // No retry is scheduled: once the transaction's timer runs out, it is over.
    while let Some(at) = r.poll_timeout() {
        r.handle_timeout(at);
        assert!(
            sent(&mut r).is_empty(),
            "a refused registration is not retried"
        );
    }
    assert!(r.is_done());
    let mut no_credentials = Registration::new(config(None), t0);
    let first = sent(&mut no_credentials);
    answer(&mut no_credentials, &first[0], 403, "Forbidden", &[], t0);
    assert!(matches!(
        &events(&mut no_credentials)[..],
        [RegistrationEvent::Refused { code: 403, .. }]
    ));
}

#[test]
fn silence_and_server_errors_are_retried_with_growing_backoff() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(None), t0);
    sent(&mut r);
    // Nobody answers: the transaction times out after 64·T1 (32 s).
    let mut now = t0;
    while let Some(at) = r.poll_timeout() {
        now = at;
        r.handle_timeout(now);
        sent(&mut r);
        if !events(&mut r).is_empty() || now > t0 + Duration::from_secs(60) {
            break;
        }
    }
    assert_eq!(now, t0 + Duration::from_secs(32));
    // The retry, 2 s later, is answered 503: the next wait doubles.
    let at = r.poll_timeout().unwrap();
    assert_eq!(at, now + Duration::from_secs(2));
    r.handle_timeout(at);
    let again = sent(&mut r);
    assert_eq!(again.len(), 1);
    answer(&mut r, &again[0], 503, "Service Unavailable", &[], at);
    let ev = events(&mut r);
    assert!(
        matches!(&ev[..], [RegistrationEvent::Retrying { code: Some(503), retry_in, .. }] if *retry_in == Duration::from_secs(4)),
        "{ev:?}"
    );
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(None), t0);
    let first = sent(&mut r);
    answer(
        &mut r,
        &first[0],
        423,
        "Interval Too Brief",
        &[("Min-Expires", "3600")],
        t0,
    );
    let retry = sent(&mut r);
    assert_eq!(header(&retry[0], "Expires").as_deref(), Some("3600"));
    answer(&mut r, &retry[0], 200, "OK", &[("Expires", "3600")], t0);
    assert!(matches!(
        &events(&mut r)[..],
        [RegistrationEvent::Registered { expires: 3600, .. }]
    ));
}

#[test]
fn unregistering_sends_expires_0_and_ends() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(None), t0);
    let first = sent(&mut r);
    answer(&mut r, &first[0], 200, "OK", &[], t0);
    events(&mut r);
    r.unregister(t0 + Duration::from_secs(1));
    let bye = sent(&mut r);
    assert_eq!(header(&bye[0], "Expires").as_deref(), Some("0"));
    assert!(header(&bye[0], "Contact").unwrap().ends_with(";expires=0"));
    answer(&mut r, &bye[0], 200, "OK", &[], t0 + Duration::from_secs(1));
    assert_eq!(events(&mut r), [RegistrationEvent::Unregistered]);
    // Done once the transaction has absorbed late retransmissions (timer K).
    let mut now = t0;
    while let Some(at) = r.poll_timeout() {
        now = at;
        r.handle_timeout(at);
    }
    assert!(r.is_done());
    assert!(now <= t0 + Duration::from_secs(10));
    assert!(sent(&mut r).is_empty(), "nothing more is sent");
}

#[test]
fn a_transport_failure_fails_the_attempt_with_its_reason_and_retries() {
    let t0 = Instant::now();
    let mut r = Registration::new(config(None), t0);
    assert_eq!(sent(&mut r).len(), 1);
    r.transport_failed("TLS: certificate not valid for name \"127.0.0.1\"", t0);
    assert_eq!(
        events(&mut r),
        vec![RegistrationEvent::Retrying {
            code: Some(503),
            reason: "TLS: certificate not valid for name \"127.0.0.1\"".into(),
            retry_in: Duration::from_secs(2),
        }]
    );
    // A second report for the same attempt changes nothing.
    r.transport_failed("again", t0);
    assert!(events(&mut r).is_empty());
    // The retry goes out after the backoff.
    r.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(sent(&mut r).len(), 1);
}
