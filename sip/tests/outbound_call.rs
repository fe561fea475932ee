//! The outbound call core against a scripted peer, in simulated time: the
//! messages it sends, the events it reports, and when.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sono_sip::dial_plan::DialPlan;
use sono_sip::digest::Credentials;
use sono_sip::message::{parse, Received};
use sono_sip::mid_call::MidCallCore;
use sono_sip::outbound_call::{Auth, CallEvent, OutboundCall, OutboundCallConfig};
use sono_sip::response::response_text;
use sono_sip::sdp::{Codec, LocalMedia};
use sono_sip::transaction::Timers;

const PEER: &str = "127.0.0.1:5080";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn config() -> OutboundCallConfig {
    OutboundCallConfig {
        target: format!("sip:bob@{PEER}"),
        from: "\"Sono\" <sip:alice@127.0.0.1>".into(),
        contact: "sip:alice@127.0.0.1:5060".into(),
        via_sent_by: "127.0.0.1:5060".into(),
        next_hop: peer(),
        outbound_proxy: None,
        user_agent: "sono-test".into(),
        media: LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            port: 20000,
            codecs: vec![Codec::Speex16k, Codec::Pcmu],
            telephone_event: true,
            ptime: 20,
            session_id: 7,
            session_version: 1,
            srtp: None,
            video: None,
        },
        timers: Timers::default(),
        transport: Default::default(),
        auth: Auth::None,
        dial_plan: Some(DialPlan::new(false, &[r"sip:.*@127\.0\.0\.1:5080".into()], &[]).unwrap()),
        call_id: String::new(),
        extra_headers: Vec::new(),
    }
}

fn alice_for(realms: &[&str]) -> Auth {
    Auth::Realms {
        credentials: Credentials {
            username: "alice".into(),
            password: "secret".into(),
        },
        realms: realms.iter().map(|r| r.to_string()).collect(),
    }
}

/// What the peer received, parsed.
fn sent(call: &mut OutboundCall) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(t) = call.poll_transmit() {
        assert_eq!(t.to, peer(), "everything goes to the peer");
        out.push(parse(&t.bytes).expect("we send valid SIP"));
    }
    out
}

fn events(call: &mut OutboundCall) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

fn method(r: &Received) -> String {
    r.request()
        .map(|r| r.method.to_string())
        .unwrap_or_default()
}

/// The peer's response to one of our requests.
fn reply(
    to: &Received,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
    sdp: Option<&str>,
) -> Received {
    let text = response_text(
        to,
        "127.0.0.1:5060".parse().unwrap(),
        code,
        reason,
        (code > 100).then_some("bobtag"),
        extra,
        sdp.map(|s| ("application/sdp", s)),
    );
    parse(text.as_bytes()).unwrap()
}

fn contact() -> [(&'static str, &'static str); 1] {
    [("Contact", "<sip:bob@127.0.0.1:5080>")]
}

/// A request from the peer inside the dialog.
fn peer_request(call_id: &str, tag: &str, method: &str, cseq: u32, body: Option<&str>) -> Received {
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let text = format!(
        "{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKpeer{cseq}{method}\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=bobtag\r\n\
To: \"Sono\" <sip:alice@127.0.0.1>;tag={tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(text.as_bytes()).unwrap()
}

fn answered_call(now: Instant) -> (OutboundCall, Received, String) {
    let mut call = OutboundCall::new(config(), now).unwrap();
    let invite = sent(&mut call).remove(0);
    call.handle_message(
        reply(&invite, 180, "Ringing", &contact(), None),
        peer(),
        now,
    );
    call.handle_message(
        reply(&invite, 200, "OK", &contact(), Some(ANSWER)),
        peer(),
        now,
    );
    let local_tag = invite.from_tag.clone().unwrap();
    (call, invite, local_tag)
}

#[test]
fn invite_carries_the_offer_and_a_200_is_acked_and_answered() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    let out = sent(&mut call);
    assert_eq!(out.len(), 1);
    let invite = &out[0];
    assert_eq!(method(invite), "INVITE");
    assert!(invite.top_via.branch.starts_with("z9hG4bK"));
    assert_eq!(invite.top_via.rport, Some(None));
    let body = String::from_utf8_lossy(&invite.request().unwrap().body).into_owned();
    assert!(body.contains("m=audio 20000 RTP/AVP 97 0 101"), "{body}");
    assert!(body.contains("a=rtpmap:97 speex/16000"), "{body}");

    call.handle_message(reply(invite, 100, "Trying", &[], None), peer(), now);
    call.handle_message(reply(invite, 180, "Ringing", &contact(), None), peer(), now);
    call.handle_message(
        reply(invite, 200, "OK", &contact(), Some(ANSWER)),
        peer(),
        now,
    );
    let out = sent(&mut call);
    assert_eq!(out.iter().map(method).collect::<Vec<_>>(), ["ACK"]);
    let ack = &out[0];
    assert_eq!(ack.cseq, invite.cseq);
    assert_eq!(ack.to_tag.as_deref(), Some("bobtag"));
    assert_ne!(
        ack.top_via.branch, invite.top_via.branch,
        "a 2xx ACK is its own transaction"
    );
    assert_eq!(
        ack.request().unwrap().uri.to_string(),
        "sip:bob@127.0.0.1:5080"
    );
    let ev = events(&mut call);
    assert!(matches!(&ev[0], CallEvent::Progress { code: 100, .. }));
    assert!(matches!(&ev[1], CallEvent::Progress { code: 180, reason } if reason == "Ringing"));
    match &ev[2] {
        CallEvent::Answered {
            code: 200, media, ..
        } => {
            assert_eq!(media.codec, Codec::Pcmu);
            assert_eq!(media.telephone_event, Some(101));
            assert_eq!(media.remote, Some("127.0.0.1:40000".parse().unwrap()));
        }
        other => panic!("expected Answered, got {other:?}"),
    }
    // A retransmitted 200 gets the same ACK again.
    call.handle_message(
        reply(invite, 200, "OK", &contact(), Some(ANSWER)),
        peer(),
        now,
    );
    let again = sent(&mut call);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].top_via.branch, ack.top_via.branch);
}

#[test]
fn hangup_after_the_answer_ends_the_call_at_once_and_the_bye_runs_on() {
    let now = Instant::now();
    let (mut call, invite, _) = answered_call(now);
    sent(&mut call);
    events(&mut call);
    call.hangup(now);
    let bye = sent(&mut call).remove(0);
    assert_eq!(method(&bye), "BYE");
    assert_eq!(bye.cseq, invite.cseq + 1);
    assert_eq!(bye.call_id, invite.call_id);
    // The user hears of the end when the BYE leaves, not when (or if) the
    // peer answers it (RFC 3261 §15.1.1).
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ended { answered: true, reason, .. }] if reason == "hung up"
    ));
    assert!(call.is_ended() && !call.is_finished());
    // The unanswered BYE is still retransmitted (timer E), reporting nothing.
    let mut t = now;
    let mut resent = 0;
    while let Some(next) = call.poll_timeout() {
        if next > now + Duration::from_secs(5) {
            break;
        }
        t = next;
        call.handle_timeout(t);
        resent += sent(&mut call)
            .iter()
            .filter(|m| method(m) == "BYE")
            .count();
    }
    assert!(resent >= 3, "BYE retransmitted {resent} times in 5 s");
    assert!(events(&mut call).is_empty());
    call.handle_message(reply(&bye, 200, "OK", &[], None), peer(), t);
    assert!(events(&mut call).is_empty(), "one Ended only");
    // Done once every transaction is (the INVITE's lasts 64·T1, RFC 6026).
    call.handle_timeout(now + Duration::from_secs(33));
    assert!(call.is_finished());
}

#[test]
fn a_busy_peer_ends_the_call_with_its_code_and_gets_an_ack() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    let invite = sent(&mut call).remove(0);
    call.handle_message(reply(&invite, 486, "Busy Here", &[], None), peer(), now);
    let out = sent(&mut call);
    assert_eq!(out.iter().map(method).collect::<Vec<_>>(), ["ACK"]);
    assert_eq!(
        out[0].top_via.branch, invite.top_via.branch,
        "non-2xx ACK: same branch"
    );
    match &events(&mut call)[..] {
        [CallEvent::Ended {
            code: Some(486),
            reason,
            answered: false,
        }] => assert_eq!(reason, "Busy Here"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hangup_while_ringing_cancels_and_the_487_ends_the_call() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    let invite = sent(&mut call).remove(0);
    call.hangup(now);
    assert!(
        sent(&mut call).is_empty(),
        "no CANCEL before a provisional (RFC 3261 §9.1)"
    );
    call.handle_message(
        reply(&invite, 180, "Ringing", &contact(), None),
        peer(),
        now,
    );
    let cancel = sent(&mut call).remove(0);
    assert_eq!(method(&cancel), "CANCEL");
    assert_eq!(cancel.top_via.branch, invite.top_via.branch);
    assert_eq!(cancel.cseq, invite.cseq);
    call.handle_message(reply(&cancel, 200, "OK", &[], None), peer(), now);
    call.handle_message(
        reply(&invite, 487, "Request Terminated", &[], None),
        peer(),
        now,
    );
    assert_eq!(
        sent(&mut call).iter().map(method).collect::<Vec<_>>(),
        ["ACK"]
    );
    let ev = events(&mut call);
    assert!(
        matches!(
            ev.last(),
            Some(CallEvent::Ended {
                code: Some(487),
                ..
            })
        ),
        "{ev:?}"
    );
}

#[test]
fn a_401_is_answered_once_with_digest_credentials() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.auth = alice_for(&["sono.test"]);
    let mut call = OutboundCall::new(cfg, now).unwrap();
    let invite = sent(&mut call).remove(0);
    let challenge = [(
        "WWW-Authenticate",
        "Digest realm=\"sono.test\", nonce=\"abc123\", algorithm=MD5, qop=\"auth\"",
    )];
    call.handle_message(
        reply(&invite, 401, "Unauthorized", &challenge, None),
        peer(),
        now,
    );
    let out = sent(&mut call);
    assert_eq!(
        out.iter().map(method).collect::<Vec<_>>(),
        ["ACK", "INVITE"]
    );
    let retry = &out[1];
    assert_eq!(retry.cseq, invite.cseq + 1);
    assert_eq!(retry.call_id, invite.call_id);
    assert_eq!(retry.from_tag, invite.from_tag);
    let auth = sono_sip::response::header_value(&retry.request().unwrap().headers, "Authorization")
        .expect("an Authorization header");
    assert!(
        auth.contains("username=\"alice\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert!(!auth.contains("secret"));
    assert!(events(&mut call).is_empty());
    // A second challenge to the retry is answered once more, a third ends the call.
    call.handle_message(
        reply(retry, 401, "Unauthorized", &challenge, None),
        peer(),
        now,
    );
    let third = sent(&mut call).pop().unwrap();
    assert_eq!(method(&third), "INVITE");
    call.handle_message(
        reply(&third, 401, "Unauthorized", &challenge, None),
        peer(),
        now,
    );
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ended {
            code: Some(401),
            ..
        }]
    ));
}

#[test]
fn a_remote_bye_is_answered_and_ends_the_call() {
    let now = Instant::now();
    let (mut call, invite, tag) = answered_call(now);
    sent(&mut call);
    events(&mut call);
    let bye = peer_request(&invite.call_id, &tag, "BYE", 1, None);
    call.handle_message(bye.clone(), peer(), now);
    let out = sent(&mut call);
    assert_eq!(out[0].status_code(), Some(200));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ended {
            code: None,
            answered: true,
            ..
        }]
    ));
    // Its retransmission gets the same 200, not a 481.
    call.handle_message(bye, peer(), now);
    assert_eq!(sent(&mut call)[0].status_code(), Some(200));
    // Timer J ends the server transaction; then the call is finished.
    call.handle_timeout(now + Duration::from_secs(33));
    assert!(call.is_finished());
}

#[test]
fn reinvite_and_options_are_answered_and_strangers_get_481() {
    let now = Instant::now();
    let (mut call, invite, tag) = answered_call(now);
    sent(&mut call);
    events(&mut call);
    let reinvite = peer_request(&invite.call_id, &tag, "INVITE", 2, Some(ANSWER));
    call.handle_message(reinvite, peer(), now);
    let ok = sent(&mut call).remove(0);
    assert_eq!(ok.status_code(), Some(200));
    let body = String::from_utf8_lossy(&ok.response().unwrap().body).into_owned();
    assert!(body.contains("m=audio 20000 RTP/AVP 0 101"), "{body}");
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::MediaChanged(_)]
    ));
    // Without its ACK the 2xx is retransmitted after T1.
    call.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(sent(&mut call).len(), 1);
    let ack = peer_request(&invite.call_id, &tag, "ACK", 2, None);
    call.handle_message(ack, peer(), now + Duration::from_millis(600));
    call.handle_timeout(now + Duration::from_millis(1600));
    assert!(
        sent(&mut call).is_empty(),
        "the ACK stopped the retransmissions"
    );

    let options = peer_request(&invite.call_id, &tag, "OPTIONS", 3, None);
    call.handle_message(options, peer(), now);
    assert_eq!(sent(&mut call)[0].status_code(), Some(200));

    let stranger = peer_request("someone-else", &tag, "BYE", 9, None);
    call.handle_message(stranger, peer(), now);
    assert_eq!(sent(&mut call)[0].status_code(), Some(481));
}

#[test]
fn no_answer_times_out_after_64_t1() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    sent(&mut call);
    let mut t = now;
    let mut sends = 0;
    while let Some(next) = call.poll_timeout() {
        if next > now + Duration::from_secs(40) {
            break;
        }
        t = next;
        call.handle_timeout(t);
        sends += sent(&mut call).len();
        if call.is_ended() {
            break;
        }
    }
    assert_eq!(
        sends, 6,
        "INVITE retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s"
    );
    assert_eq!(t - now, Duration::from_secs(32));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ended {
            code: Some(408),
            ..
        }]
    ));
}

#[test]
fn over_tcp_nothing_is_retransmitted_and_via_says_tcp() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.transport = sono_sip::transmit::Transport::Tcp;
    let mut call = OutboundCall::new(cfg, now).unwrap();
    let invite = sent(&mut call).remove(0);
    assert_eq!(invite.top_via.transport, "TCP");
    call.handle_timeout(now + Duration::from_secs(10));
    assert!(sent(&mut call).is_empty(), "no timer A over TCP");
    call.handle_timeout(now + Duration::from_secs(32));
    assert!(matches!(
        &events(&mut call)[..],
        [CallEvent::Ended {
            code: Some(408),
            ..
        }]
    ));
}

/// A challenge our credentials may not answer ends the call with its code
/// and says why; nothing with our username is ever sent.
#[test]
fn challenges_from_other_realms_sources_or_hops_get_no_credentials() {
    let now = Instant::now();
    let proxy_challenge = [(
        "Proxy-Authenticate",
        "Digest realm=\"evil.example\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
    )];
    let cases: [(Auth, SocketAddr, &str); 3] = [
        (
            alice_for(&["sono.test"]),
            peer(),
            "realm \"evil.example\" is not in sip.auth_realms",
        ),
        (
            alice_for(&["evil.example"]),
            "127.0.0.1:6666".parse().unwrap(),
            "came from 127.0.0.1:6666",
        ),
        (
            Auth::Withheld("the target is no registrar".into()),
            peer(),
            "the target is no registrar",
        ),
    ];
    for (auth, source, why) in cases {
        let mut cfg = config();
        cfg.auth = auth;
        let mut call = OutboundCall::new(cfg, now).unwrap();
        let invite = sent(&mut call).remove(0);
        call.handle_message(
            reply(
                &invite,
                407,
                "Proxy Authentication Required",
                &proxy_challenge,
                None,
            ),
            source,
            now,
        );
        let out = sent(&mut call);
        assert_eq!(out.iter().map(method).collect::<Vec<_>>(), ["ACK"], "{why}");
        let ev = events(&mut call);
        assert!(
            matches!(&ev[0], CallEvent::ChallengeRefused(r) if r.contains(why)),
            "{ev:?}"
        );
        match &ev[1] {
            CallEvent::Ended {
                code: Some(407),
                reason,
                ..
            } => {
                assert!(
                    reason.contains("credentials not sent") && reason.contains(why),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A 2xx whose Contact (or Record-Route) points outside the dial plan ends
/// the call: no ACK, no BYE, nothing sent there, ever.
#[test]
fn a_2xx_naming_a_target_outside_the_dial_plan_is_never_acked() {
    let now = Instant::now();
    for extra in [
        [("Contact", "<sip:900123@127.0.0.9:5060>")],
        [("Contact", "<sip:900123@127.0.0.1:5080;maddr=127.0.0.9>")],
        [("Record-Route", "<sip:127.0.0.9;lr>")],
    ] {
        let mut call = OutboundCall::new(config(), now).unwrap();
        let invite = sent(&mut call).remove(0);
        let mut headers = extra.to_vec();
        if extra[0].0 != "Contact" {
            headers.push(contact()[0]);
        }
        for _ in 0..3 {
            // The peer retransmits its unacknowledged 2xx.
            call.handle_message(
                reply(&invite, 200, "OK", &headers, Some(ANSWER)),
                peer(),
                now,
            );
            assert!(sent(&mut call).is_empty(), "{extra:?}");
        }
        let ev = events(&mut call);
        assert!(
            matches!(&ev[0], CallEvent::TargetRefused { target, .. } if target.contains("127.0.0.9")),
            "{ev:?}"
        );
        assert!(
            matches!(
                &ev[1],
                CallEvent::Ended {
                    code: Some(403),
                    ..
                }
            ),
            "{ev:?}"
        );
        assert_eq!(ev.len(), 2, "{ev:?}");
        call.hangup(now);
        assert!(sent(&mut call).is_empty());
    }
}

fn body_of(r: &Received) -> String {
    r.request()
        .map(|q| String::from_utf8_lossy(&q.body).into_owned())
        .unwrap_or_default()
}

#[test]
fn hold_sends_a_sendonly_reinvite_acks_its_2xx_and_resume_goes_back_to_sendrecv() {
    use sono_sip::reoffer::ReofferOutcome;
    use sono_sip::sdp::Direction;
    let now = Instant::now();
    let (mut call, _, _) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);

    assert!(call.hold(true, now));
    let out = sent(&mut call);
    assert_eq!(out.len(), 1, "{out:?}");
    let reinvite = &out[0];
    assert_eq!(method(reinvite), "INVITE");
    assert_eq!(reinvite.cseq, 2, "the dialog's next CSeq");
    assert_eq!(
        reinvite.to_tag.as_deref(),
        Some("bobtag"),
        "inside the dialog"
    );
    let sdp = body_of(reinvite);
    assert!(sdp.contains("a=sendonly\r\n"), "{sdp}");
    assert!(
        sdp.contains("o=sono 7 2 IN IP4"),
        "the version goes up: {sdp}"
    );

    let held = ANSWER.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n");
    call.handle_message(
        reply(reinvite, 200, "OK", &contact(), Some(&held)),
        peer(),
        now,
    );
    let ack = sent(&mut call);
    assert_eq!(ack.len(), 1);
    assert_eq!(method(&ack[0]), "ACK");
    assert_eq!(ack[0].cseq, 2);
    match events(&mut call).as_slice() {
        [CallEvent::Reoffer(ReofferOutcome::Settled(m))] => {
            assert_eq!(m.direction, Direction::SendOnly);
            assert!(
                !m.peer_holds,
                "recvonly to our sendonly is not the peer's hold"
            );
        }
        other => panic!("{other:?}"),
    }
    // The 2xx again: ACKed again, nothing new for the user.
    call.handle_message(
        reply(reinvite, 200, "OK", &contact(), Some(&held)),
        peer(),
        now,
    );
    assert_eq!(method(&sent(&mut call)[0]), "ACK");
    assert!(events(&mut call).is_empty());

    // While held, the peer's own refresh is answered without undoing our hold.
    let refresh = peer_request(
        call.call_id(),
        &ack[0].from_tag.clone().unwrap(),
        "INVITE",
        5,
        Some(ANSWER),
    );
    call.handle_message(refresh, peer(), now);
    let answer = sent(&mut call);
    let text = String::from_utf8_lossy(&answer[0].response().unwrap().body).into_owned();
    assert!(text.contains("a=sendonly\r\n"), "{text}");

    assert!(call.hold(false, now));
    let resume = sent(&mut call).remove(0);
    assert_eq!(resume.cseq, 3);
    assert!(body_of(&resume).contains("a=sendrecv\r\n"));
}

#[test]
fn glare_gets_491_both_ways_and_our_offer_is_retried_after_2_1_to_4_seconds() {
    use sono_sip::reoffer::ReofferOutcome;
    let now = Instant::now();
    let (mut call, invite, tag) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    assert!(call.hold(true, now));
    let ours = sent(&mut call).remove(0);
    // The peer offers at the same moment: 491 (RFC 3261 §14.2).
    call.handle_message(
        peer_request(&invite.call_id, &tag, "INVITE", 9, Some(ANSWER)),
        peer(),
        now,
    );
    let refused = sent(&mut call).remove(0);
    assert_eq!(refused.status_code(), Some(491));
    // And the peer refuses ours with 491: it is tried again later.
    call.handle_message(reply(&ours, 491, "Request Pending", &[], None), peer(), now);
    let acked: Vec<String> = sent(&mut call).iter().map(method).collect();
    assert_eq!(acked, ["ACK"], "the transaction ACKs the failure");
    assert!(events(&mut call).is_empty());
    // Not before 2.1 s (we own the Call-ID), and by 4 s.
    let invites = |call: &mut OutboundCall| -> Vec<Received> {
        sent(call)
            .into_iter()
            .filter(|r| method(r) == "INVITE")
            .collect()
    };
    call.handle_timeout(now + Duration::from_millis(2099));
    assert!(invites(&mut call).is_empty());
    assert!(call
        .poll_timeout()
        .is_some_and(|at| at <= now + Duration::from_millis(4000)));
    call.handle_timeout(now + Duration::from_millis(4000));
    let again = invites(&mut call);
    assert_eq!(again.len(), 1);
    assert!(again[0].cseq > ours.cseq);
    // A refusal that is not glare changes nothing and is reported.
    call.handle_message(
        reply(&again[0], 488, "Not Acceptable Here", &[], None),
        peer(),
        now + Duration::from_millis(4000),
    );
    let outcomes = events(&mut call);
    assert!(
        matches!(
            outcomes.as_slice(),
            [CallEvent::Reoffer(ReofferOutcome::Refused {
                code: 488,
                ..
            })]
        ),
        "{outcomes:?}"
    );
    assert!(!call.is_ended());
}

#[test]
fn a_481_to_our_reinvite_ends_the_call() {
    let now = Instant::now();
    let (mut call, _, _) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    assert!(call.hold(true, now));
    let ours = sent(&mut call).remove(0);
    call.handle_message(
        reply(&ours, 481, "Call/Transaction Does Not Exist", &[], None),
        peer(),
        now,
    );
    let out: Vec<String> = sent(&mut call).iter().map(method).collect();
    assert!(out.contains(&"BYE".to_owned()), "{out:?}");
    assert!(call.is_ended());
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Ended {
            code: Some(481),
            ..
        }]
    ));
}

#[test]
fn the_peers_hold_is_seen_with_sendonly_and_with_the_old_0_0_0_0() {
    let now = Instant::now();
    let (mut call, invite, tag) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    let sendonly = ANSWER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let zeroes = ANSWER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    for (cseq, sdp, holds) in [
        (5, sendonly.as_str(), true),
        (6, ANSWER, false),
        (7, zeroes.as_str(), true),
    ] {
        call.handle_message(
            peer_request(&invite.call_id, &tag, "INVITE", cseq, Some(sdp)),
            peer(),
            now,
        );
        let _ = sent(&mut call);
        call.handle_message(
            peer_request(&invite.call_id, &tag, "ACK", cseq, None),
            peer(),
            now,
        );
        match events(&mut call).as_slice() {
            [CallEvent::MediaChanged(m)] => assert_eq!(m.peer_holds, holds, "{sdp}"),
            other => panic!("{other:?}"),
        }
    }
}

/// A request from the peer inside the dialog with extra header lines and
/// a body of `ctype`.
fn peer_request_with(
    call_id: &str,
    tag: &str,
    method: &str,
    cseq: u32,
    headers: &str,
    body: Option<(&str, &str)>,
) -> Received {
    let (ct, body) = match body {
        Some((ctype, text)) => (format!("Content-Type: {ctype}\r\n"), text),
        None => (String::new(), ""),
    };
    let text = format!(
        "{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKpeer{cseq}{method}\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=bobtag\r\n\
To: \"Sono\" <sip:alice@127.0.0.1>;tag={tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
Contact: <sip:bob@127.0.0.1:5080>\r\n{headers}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(text.as_bytes()).unwrap()
}

fn header(r: &Received, name: &str) -> String {
    let headers = match (r.request(), r.response()) {
        (Some(q), _) => &q.headers,
        (_, Some(p)) => &p.headers,
        _ => return String::new(),
    };
    sono_sip::response::header_value(headers, name).unwrap_or_default()
}

#[test]
fn the_peers_refer_is_judged_by_the_dial_plan_and_our_call_to_its_target_is_notified() {
    use sono_sip::transfer::TransferEvent;
    let now = Instant::now();
    let (mut call, _, tag) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    let id = call.call_id().to_owned();

    // A target the dial plan refuses: 403, nothing else sent, no event.
    let outside = "Refer-To: <sip:mallory@192.0.2.7>\r\n";
    call.handle_message(
        peer_request_with(&id, &tag, "REFER", 2, outside, None),
        peer(),
        now,
    );
    let out = sent(&mut call);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].status_code(), Some(403));
    assert!(events(&mut call).is_empty());

    // An allowed one (attended: with Replaces): 202, then NOTIFY 100 Trying.
    let refer =
        "Refer-To: <sip:carol@127.0.0.1:5080?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n\
Referred-By: <sip:bob@127.0.0.1:5080>\r\n";
    call.handle_message(
        peer_request_with(&id, &tag, "REFER", 3, refer, None),
        peer(),
        now,
    );
    let out = sent(&mut call);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].status_code(), Some(202));
    assert_eq!(method(&out[1]), "NOTIFY");
    assert_eq!(header(&out[1], "Event"), "refer");
    assert!(header(&out[1], "Subscription-State").starts_with("active"));
    assert_eq!(body_of(&out[1]), "SIP/2.0 100 Trying\r\n");
    assert_eq!(
        events(&mut call),
        [CallEvent::Transfer(TransferEvent::Referred {
            target: "sip:carol@127.0.0.1:5080".into(),
            replaces: Some("abc@h;to-tag=1;from-tag=2".into()),
            referred_by: Some("<sip:bob@127.0.0.1:5080>".into()),
        })]
    );
    call.handle_message(reply(&out[1], 200, "OK", &[], None), peer(), now);

    // One transfer at a time.
    call.handle_message(
        peer_request_with(&id, &tag, "REFER", 4, refer, None),
        peer(),
        now,
    );
    assert_eq!(sent(&mut call)[0].status_code(), Some(403));

    // Our call to the target rings, then is answered: the last NOTIFY
    // ends the subscription; our call with the referrer stays up.
    call.notify_transfer(180, "Ringing", now);
    let ringing = sent(&mut call).remove(0);
    assert_eq!(body_of(&ringing), "SIP/2.0 180 Ringing\r\n");
    call.notify_transfer(200, "OK", now);
    let done = sent(&mut call).remove(0);
    assert_eq!(body_of(&done), "SIP/2.0 200 OK\r\n");
    assert!(header(&done, "Subscription-State").starts_with("terminated"));
    assert!(done.cseq > ringing.cseq);
    assert!(!call.is_ended());
    // Nothing more is told once the subscription ended.
    call.notify_transfer(200, "OK", now);
    assert!(sent(&mut call).is_empty());
}

#[test]
fn our_transfer_sends_refer_follows_the_notifies_and_a_final_2xx_ends_the_call_with_bye() {
    use sono_sip::transfer::TransferEvent;
    let now = Instant::now();
    let (mut call, _, tag) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    let id = call.call_id().to_owned();

    assert!(call.transfer("sip:carol@127.0.0.1:5090", now));
    let refer = sent(&mut call).remove(0);
    assert_eq!(method(&refer), "REFER");
    assert_eq!(refer.cseq, 2);
    assert_eq!(header(&refer, "Refer-To"), "<sip:carol@127.0.0.1:5090>");
    assert_eq!(header(&refer, "Referred-By"), "<sip:alice@127.0.0.1>");
    assert!(
        !call.transfer("sip:dave@127.0.0.1:5090", now),
        "one at a time"
    );

    call.handle_message(reply(&refer, 202, "Accepted", &[], None), peer(), now);
    let progress = |code: u16, done: bool| {
        CallEvent::Transfer(TransferEvent::Progress {
            code,
            reason: sono_sip::response::reason_phrase(code).into(),
            done,
        })
    };
    assert_eq!(events(&mut call), [progress(202, false)]);

    let notify = |cseq: u32, frag: &str, state: &str| {
        let headers = format!("Event: refer\r\nSubscription-State: {state}\r\n");
        peer_request_with(
            &id,
            &tag,
            "NOTIFY",
            cseq,
            &headers,
            Some(("message/sipfrag;version=2.0", frag)),
        )
    };
    call.handle_message(notify(2, "SIP/2.0 180 Ringing\r\n", "active"), peer(), now);
    assert_eq!(sent(&mut call)[0].status_code(), Some(200));
    assert_eq!(events(&mut call), [progress(180, false)]);

    // A NOTIFY of another event package is not ours to take.
    let other = peer_request_with(
        &id,
        &tag,
        "NOTIFY",
        3,
        "Event: presence\r\nSubscription-State: active\r\n",
        Some(("message/sipfrag;version=2.0", "SIP/2.0 180 Ringing\r\n")),
    );
    call.handle_message(other, peer(), now);
    assert_eq!(sent(&mut call)[0].status_code(), Some(489));

    call.handle_message(
        notify(4, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource"),
        peer(),
        now,
    );
    let out = sent(&mut call);
    assert_eq!(out[0].status_code(), Some(200));
    assert_eq!(method(&out[1]), "BYE", "the transferor hangs up: {out:?}");
    match events(&mut call).as_slice() {
        [first, CallEvent::Ended { reason, .. }] => {
            assert_eq!(*first, progress(200, true));
            assert_eq!(reason, "transferred");
        }
        other => panic!("{other:?}"),
    }
    assert!(call.is_ended());
}

#[test]
fn a_failed_transfer_leaves_the_call_up_and_another_may_follow() {
    use sono_sip::transfer::TransferEvent;
    let now = Instant::now();
    let (mut call, _, tag) = answered_call(now);
    let _ = sent(&mut call);
    let _ = events(&mut call);
    let id = call.call_id().to_owned();

    // Refused outright.
    assert!(call.transfer("sip:carol@127.0.0.1:5090", now));
    let refer = sent(&mut call).remove(0);
    call.handle_message(reply(&refer, 603, "Decline", &[], None), peer(), now);
    assert!(matches!(
        events(&mut call).as_slice(),
        [CallEvent::Transfer(TransferEvent::Progress {
            code: 603,
            done: true,
            ..
        })]
    ));
    assert!(!call.is_ended());

    // Accepted, then the target is busy.
    assert!(call.transfer("sip:carol@127.0.0.1:5090", now));
    let refer = sent(&mut call).remove(0);
    call.handle_message(reply(&refer, 202, "Accepted", &[], None), peer(), now);
    let busy = peer_request_with(
        &id,
        &tag,
        "NOTIFY",
        2,
        "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n",
        Some(("message/sipfrag;version=2.0", "SIP/2.0 486 Busy Here\r\n")),
    );
    call.handle_message(busy, peer(), now);
    assert_eq!(sent(&mut call).len(), 1, "only the 200 to the NOTIFY");
    let evs = events(&mut call);
    assert!(
        matches!(
            evs.last(),
            Some(CallEvent::Transfer(TransferEvent::Progress {
                code: 486,
                done: true,
                ..
            }))
        ),
        "{evs:?}"
    );
    assert!(!call.is_ended());
    assert!(call.transfer("sip:dave@127.0.0.1:5090", now), "free again");
}

#[test]
fn a_transport_failure_before_any_answer_ends_the_call_as_503_with_its_reason() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    assert_eq!(sent(&mut call).len(), 1);
    call.transport_failed("TLS: invalid peer certificate: NotValidForName");
    let ended = events(&mut call);
    assert!(
        ended.contains(&CallEvent::Ended {
            code: Some(503),
            reason: "TLS: invalid peer certificate: NotValidForName".into(),
            answered: false,
        }),
        "{ended:?}"
    );
    assert!(call.is_ended());
    // Nothing more is sent to a hop that cannot be reached.
    call.handle_timeout(now + std::time::Duration::from_secs(1));
    assert!(sent(&mut call).is_empty());
}

#[test]
fn a_transport_failure_after_a_provisional_changes_nothing() {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).unwrap();
    let invite = sent(&mut call).remove(0);
    call.handle_message(reply(&invite, 180, "Ringing", &[], None), peer(), now);
    events(&mut call);
    call.transport_failed("connection lost");
    assert!(!call.is_ended());
}
