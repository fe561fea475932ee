//! The inbound call core against a scripted caller, in simulated time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sono_sip::dial_plan::DialPlan;
use sono_sip::inbound_call::{InboundCall, InboundCallConfig, InboundEvent};
use sono_sip::message::{parse, Received};
use sono_sip::mid_call::MidCallCore;
use sono_sip::sdp::{Codec, LocalMedia};
use sono_sip::transaction::Timers;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const VIDEO_ONLY: &str =
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n";

fn caller() -> SocketAddr {
    "127.0.0.1:5090".parse().unwrap()
}

fn config() -> InboundCallConfig {
    InboundCallConfig {
        contact: "sip:sono-1@127.0.0.1:5060".into(),
        via_sent_by: "127.0.0.1:5060".into(),
        user_agent: "sono-test".into(),
        media: LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            port: 20002,
            codecs: vec![Codec::Speex16k, Codec::G722, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            ptime: 20,
            session_id: 3,
            session_version: 1,
            srtp: None,
            video: None,
        },
        timers: Timers::default(),
        transport: Default::default(),
        dial_plan: Some(DialPlan::new(false, &[r"sip:.*@127\.0\.0\.1:5090".into()], &[]).unwrap()),
    }
}

/// A request from the caller; `to_tag` once the dialog exists.
fn request(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>, body: &str) -> Received {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let text = format!(
        "{method} sip:sono-1@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch={branch};rport\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5090>;tag=alicetag\r\n\
To: <sip:sono-1@127.0.0.1>{tag}\r\nCall-ID: in-1@alice\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:alice@127.0.0.1:5090>\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(text.as_bytes()).unwrap()
}

fn invite(body: &str) -> Received {
    request("INVITE", "z9hG4bKinv", 1, None, body)
}

fn sent(call: &mut InboundCall) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(t) = call.poll_transmit() {
        assert_eq!(t.to, caller());
        out.push(parse(&t.bytes).expect("we send valid SIP"));
    }
    out
}

fn codes(msgs: &[Received]) -> Vec<u16> {
    msgs.iter().filter_map(Received::status_code).collect()
}

fn events(call: &mut InboundCall) -> Vec<InboundEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

#[test]
fn ring_accept_ack_then_the_callers_bye() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    assert_eq!(codes(&sent(&mut call)), [100]);
    assert_eq!(call.caller(), "\"Alice\" <sip:alice@127.0.0.1:5090>");
    assert_eq!(call.offered_media().map(|m| m.codec), Some(Codec::Pcmu));
    call.ring(now);
    let ringing = sent(&mut call).remove(0);
    assert_eq!(ringing.status_code(), Some(180));
    let tag = ringing.to_tag.clone().expect("a To tag on 180");
    call.accept(now);
    let ok = sent(&mut call).remove(0);
    assert_eq!(ok.status_code(), Some(200));
    assert_eq!(
        ok.to_tag.as_deref(),
        Some(tag.as_str()),
        "one tag for the whole dialog"
    );
    let body = String::from_utf8_lossy(&ok.response().unwrap().body).into_owned();
    assert!(body.contains("m=audio 20002 RTP/AVP 0 101"), "{body}");
    // No ACK yet: the 200 is sent again at T1 and 2·T1.
    call.handle_timeout(now + Duration::from_millis(500));
    call.handle_timeout(now + Duration::from_millis(1500));
    assert_eq!(codes(&sent(&mut call)), [200, 200]);
    call.handle_message(
        request("ACK", "z9hG4bKack", 1, Some(&tag), ""),
        caller(),
        now,
    );
    assert!(
        matches!(&events(&mut call)[..], [InboundEvent::Confirmed(m)] if m.codec == Codec::Pcmu)
    );
    call.handle_timeout(now + Duration::from_millis(3500));
    assert!(sent(&mut call).is_empty(), "the ACK stopped the 200");

    call.handle_message(
        request("BYE", "z9hG4bKbye", 2, Some(&tag), ""),
        caller(),
        now,
    );
    assert_eq!(codes(&sent(&mut call)), [200]);
    assert!(matches!(
        &events(&mut call)[..],
        [InboundEvent::Ended {
            code: None,
            answered: true,
            ..
        }]
    ));
}

#[test]
fn a_cancel_while_ringing_gets_200_and_the_invite_487() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    call.ring(now);
    sent(&mut call);
    call.handle_message(request("CANCEL", "z9hG4bKinv", 1, None, ""), caller(), now);
    let out = sent(&mut call);
    assert_eq!(codes(&out), [200, 487]);
    assert_eq!(out[0].cseq_method, "CANCEL");
    assert_eq!(out[1].cseq_method, "INVITE");
    assert!(matches!(
        &events(&mut call)[..],
        [InboundEvent::Ended {
            code: Some(487),
            ..
        }]
    ));
    // Its ACK stops the 487's retransmissions; the transaction ends after T4.
    call.handle_message(
        request("ACK", "z9hG4bKinv", 1, Some("x"), ""),
        caller(),
        now,
    );
    call.handle_timeout(now + Duration::from_secs(1));
    assert!(sent(&mut call).is_empty());
    call.handle_timeout(now + Duration::from_secs(6));
    assert!(call.is_finished());
}

#[test]
fn a_rejection_is_retransmitted_until_its_ack() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    sent(&mut call);
    call.reject(486, "Busy Here", now);
    assert_eq!(codes(&sent(&mut call)), [486]);
    call.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(codes(&sent(&mut call)), [486], "timer G");
    call.handle_message(
        request("ACK", "z9hG4bKinv", 1, Some("x"), ""),
        caller(),
        now,
    );
    call.handle_timeout(now + Duration::from_millis(1500));
    assert!(sent(&mut call).is_empty());
    assert!(matches!(
        &events(&mut call)[..],
        [InboundEvent::Ended {
            code: Some(486),
            answered: false,
            ..
        }]
    ));
}

#[test]
fn an_offer_without_our_codecs_is_refused_488() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(VIDEO_ONLY), caller(), config(), now);
    assert_eq!(codes(&sent(&mut call)), [100, 488]);
    assert!(call.is_ended());
}

#[test]
fn local_hangup_after_the_answer_sends_bye_to_the_contact() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    call.accept(now);
    let ok = sent(&mut call).pop().unwrap();
    let tag = ok.to_tag.clone().unwrap();
    call.handle_message(
        request("ACK", "z9hG4bKack", 1, Some(&tag), ""),
        caller(),
        now,
    );
    events(&mut call);
    call.hangup(now);
    // Over for the client as the BYE leaves (RFC 3261 §15.1.1).
    assert!(matches!(
        &events(&mut call)[..],
        [InboundEvent::Ended { answered: true, .. }]
    ));
    let bye = sent(&mut call).remove(0);
    assert!(bye.is_request());
    assert_eq!(bye.cseq_method, "BYE");
    assert_eq!(
        bye.request().unwrap().uri.to_string(),
        "sip:alice@127.0.0.1:5090"
    );
    assert_eq!(bye.from_tag.as_deref(), Some(tag.as_str()));
    assert_eq!(bye.to_tag.as_deref(), Some("alicetag"));
    let text = sono_sip::response::response_text(
        &bye,
        "127.0.0.1:5060".parse().unwrap(),
        200,
        "OK",
        None,
        &[],
        None,
    );
    call.handle_message(parse(text.as_bytes()).unwrap(), caller(), now);
    assert!(events(&mut call).is_empty(), "one Ended only");
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_the_ack_answers() {
    let now = Instant::now();
    let mut call = InboundCall::new(invite(""), caller(), config(), now);
    call.accept(now);
    let ok = sent(&mut call).pop().unwrap();
    let body = String::from_utf8_lossy(&ok.response().unwrap().body).into_owned();
    assert!(
        body.contains("m=audio 20002 RTP/AVP 97 9 0 8 101"),
        "{body}"
    );
    let tag = ok.to_tag.clone().unwrap();
    let answer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8");
    call.handle_message(
        request("ACK", "z9hG4bKack", 1, Some(&tag), &answer),
        caller(),
        now,
    );
    assert!(
        matches!(&events(&mut call)[..], [InboundEvent::Confirmed(m)] if m.codec == Codec::Pcma)
    );
}

/// A caller whose Contact (or first Record-Route) is elsewhere than where
/// its INVITE came from, and outside the dial plan: refused before it rings,
/// so our BYE could never be sent there.
#[test]
fn a_caller_whose_target_is_outside_the_dial_plan_is_refused_with_403() {
    let now = Instant::now();
    for (header, target) in [
        (
            "Contact: <sip:alice@127.0.0.1:5090>",
            "Contact: <sip:alice@127.0.0.9:5060>",
        ),
        (
            "Contact: <sip:alice@127.0.0.1:5090>",
            "Contact: <sip:alice@127.0.0.1:5090;maddr=127.0.0.9>",
        ),
        (
            "Max-Forwards: 70",
            "Record-Route: <sip:127.0.0.9;lr>\r\nMax-Forwards: 70",
        ),
    ] {
        let text = String::from_utf8(invite(OFFER).message.to_string().into_bytes()).unwrap();
        let text = text.replace(header, target);
        let mut call = InboundCall::new(parse(text.as_bytes()).unwrap(), caller(), config(), now);
        let out = sent(&mut call);
        assert_eq!(codes(&out), [100, 403], "{target}");
        let ev = events(&mut call);
        assert!(
            matches!(&ev[0], InboundEvent::TargetRefused { target, .. } if target.contains("127.0.0.9")),
            "{ev:?}"
        );
        assert!(
            matches!(
                &ev[1],
                InboundEvent::Ended {
                    code: Some(403),
                    ..
                }
            ),
            "{ev:?}"
        );
    }
    // Where the INVITE came from is trusted, whatever the plan says.
    let mut call = InboundCall::new(
        invite(OFFER),
        caller(),
        InboundCallConfig {
            dial_plan: Some(DialPlan::new(false, &[], &[]).unwrap()),
            ..config()
        },
        now,
    );
    assert_eq!(codes(&sent(&mut call)), [100]);
}

#[test]
fn the_callee_holds_with_a_reinvite_to_the_callers_contact_and_resumes() {
    use sono_sip::reoffer::ReofferOutcome;
    use sono_sip::response::response_text;
    use sono_sip::sdp::Direction;
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    assert!(!call.hold(true, now), "nothing to hold before the answer");
    call.accept(now);
    let tag = sent(&mut call).pop().unwrap().to_tag.unwrap();
    call.handle_message(
        request("ACK", "z9hG4bKack", 1, Some(&tag), ""),
        caller(),
        now,
    );
    let _ = events(&mut call);

    assert!(call.hold(true, now));
    let reinvite = sent(&mut call).remove(0);
    let text = reinvite
        .request()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap();
    assert_eq!(
        reinvite.cseq, 1,
        "our own CSeq space starts at 1 (RFC 3261 §12.1.1)"
    );
    assert!(
        text.contains("RTP/AVP 0 101\r\n"),
        "the codec in use only: {text}"
    );
    assert!(text.contains("a=sendonly"), "{text}");
    let held = OFFER
        .replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n")
        .replace(" 0 8 101", " 0 101");
    let ok = response_text(
        &reinvite,
        "127.0.0.1:5060".parse().unwrap(),
        200,
        "OK",
        None,
        &[],
        Some(("application/sdp", &held)),
    );
    call.handle_message(parse(ok.as_bytes()).unwrap(), caller(), now);
    let acks = sent(&mut call);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].cseq_method, "ACK");
    match events(&mut call).as_slice() {
        [InboundEvent::Reoffer(ReofferOutcome::Settled(m))] => {
            assert_eq!(m.direction, Direction::SendOnly)
        }
        other => panic!("{other:?}"),
    }
    assert!(call.hold(false, now));
    let resume = sent(&mut call).remove(0);
    assert_eq!(resume.cseq, 2);
}

/// A request from the caller inside the dialog with extra header lines and
/// a body of its own type.
fn request_with(
    method: &str,
    cseq: u32,
    to_tag: &str,
    headers: &str,
    body: Option<(&str, &str)>,
) -> Received {
    let (ct, body) = match body {
        Some((ctype, text)) => (format!("Content-Type: {ctype}\r\n"), text),
        None => (String::new(), ""),
    };
    let text = format!(
        "{method} sip:sono-1@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK{method}{cseq};rport\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5090>;tag=alicetag\r\n\
To: <sip:sono-1@127.0.0.1>;tag={to_tag}\r\nCall-ID: in-1@alice\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:alice@127.0.0.1:5090>\r\nMax-Forwards: 70\r\n{headers}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(text.as_bytes()).unwrap()
}

#[test]
fn transfers_work_both_ways_on_an_inbound_call() {
    use sono_sip::response::{header_value, response_text};
    use sono_sip::transfer::TransferEvent;
    let now = Instant::now();
    let mut call = InboundCall::new(invite(OFFER), caller(), config(), now);
    // Before the answer there is nothing to transfer.
    assert!(!call.transfer("sip:carol@127.0.0.1:5090", now));
    call.accept(now);
    let tag = sent(&mut call).pop().unwrap().to_tag.unwrap();
    call.handle_message(
        request("ACK", "z9hG4bKack", 1, Some(&tag), ""),
        caller(),
        now,
    );
    let _ = events(&mut call);

    // The caller transfers us: judged (a target outside the plan: 403).
    let outside = "Refer-To: <sip:carol@192.0.2.7>\r\n";
    call.handle_message(request_with("REFER", 2, &tag, outside, None), caller(), now);
    assert_eq!(codes(&sent(&mut call)), [403]);
    let inside = "Refer-To: <sip:carol@127.0.0.1:5090>\r\n";
    call.handle_message(request_with("REFER", 3, &tag, inside, None), caller(), now);
    let out = sent(&mut call);
    assert_eq!(codes(&out), [202]);
    assert_eq!(out[1].cseq_method, "NOTIFY");
    assert!(matches!(
        events(&mut call).as_slice(),
        [InboundEvent::Transfer(TransferEvent::Referred { target, replaces: None, .. })]
            if target == "sip:carol@127.0.0.1:5090"
    ));
    call.notify_transfer(486, "Busy Here", now);
    let last = sent(&mut call).remove(0);
    let state = header_value(&last.request().unwrap().headers, "Subscription-State");
    assert!(state.unwrap_or_default().starts_with("terminated"));

    // We transfer the caller: REFER to its Contact, Referred-By is us.
    assert!(call.transfer("sip:dave@127.0.0.1:5090", now));
    let refer = sent(&mut call).remove(0);
    let headers = &refer.request().unwrap().headers;
    assert_eq!(
        header_value(headers, "Refer-To").as_deref(),
        Some("<sip:dave@127.0.0.1:5090>")
    );
    assert_eq!(
        header_value(headers, "Referred-By").as_deref(),
        Some("<sip:sono-1@127.0.0.1:5060>")
    );
    let accepted = response_text(
        &refer,
        "127.0.0.1:5060".parse().unwrap(),
        202,
        "Accepted",
        None,
        &[],
        None,
    );
    call.handle_message(parse(accepted.as_bytes()).unwrap(), caller(), now);
    let notify = request_with(
        "NOTIFY",
        4,
        &tag,
        "Event: refer\r\nSubscription-State: terminated\r\n",
        Some(("message/sipfrag", "SIP/2.0 200 OK\r\n")),
    );
    call.handle_message(notify, caller(), now);
    let out = sent(&mut call);
    assert_eq!(codes(&out), [200]);
    assert_eq!(out[1].cseq_method, "BYE", "{out:?}");
    assert!(matches!(
        events(&mut call).last(),
        Some(InboundEvent::Ended { reason, .. }) if reason == "transferred"
    ));
}
