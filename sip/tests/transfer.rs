//! The transfer core (RFC 3515 REFER, RFC 5589) against a scripted peer:
//! our REFER and the peer's NOTIFYs, and the peer's REFER judged by the
//! dial plan before anything is dialled.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use sono_sip::dial_plan::DialPlan;
use sono_sip::dialog::{Dialog, RequestContext};
use sono_sip::dialog_server::DialogServer;
use sono_sip::message::{parse, Received};
use sono_sip::response::response_text;
use sono_sip::sdp::{Codec, LocalMedia};
use sono_sip::transaction::Timers;
use sono_sip::transfer::{TransferEvent, Transfers};
use sono_sip::transmit::{Transmit, Transport};

fn peer() -> SocketAddr {
    "127.0.0.1:5080".parse().unwrap()
}

fn dialog() -> Dialog {
    Dialog {
        call_id: "t-1@sono".into(),
        local_tag: "ours".into(),
        remote_tag: "theirs".into(),
        local_uri: "<sip:alice@127.0.0.1>".into(),
        remote_uri: "<sip:bob@127.0.0.1:5080>".into(),
        local_seq: 1,
        remote_seq: Some(1),
        remote_target: "sip:bob@127.0.0.1:5080".into(),
        route_set: Vec::new(),
    }
}

fn ctx() -> RequestContext<'static> {
    RequestContext {
        via_sent_by: "127.0.0.1:5060",
        user_agent: "sono-test",
        outbound_proxy: None,
        fallback: peer(),
        transport: Transport::Udp,
    }
}

fn server() -> DialogServer {
    let media = LocalMedia {
        address: "127.0.0.1".parse().unwrap(),
        port: 20000,
        codecs: vec![Codec::Pcmu],
        telephone_event: true,
        ptime: 20,
        session_id: 1,
        session_version: 1,
        srtp: None,
        video: None,
    };
    DialogServer::new(
        Timers::default(),
        "sip:alice@127.0.0.1:5060".into(),
        "ours".into(),
        media,
        Transport::Udp,
    )
}

fn parsed(out: &mut VecDeque<Transmit>) -> Vec<Received> {
    out.drain(..)
        .map(|t| parse(&t.bytes).expect("valid SIP"))
        .collect()
}

fn from_peer(method: &str, cseq: u32, extra: &str, body: &str) -> Received {
    let text = format!(
        "{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{method}{cseq}\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=theirs\r\nTo: <sip:alice@127.0.0.1>;tag=ours\r\nCall-ID: t-1@sono\r\n\
CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(text.as_bytes()).unwrap()
}

fn body(r: &Received) -> String {
    r.request()
        .map(|q| String::from_utf8_lossy(&q.body).into_owned())
        .unwrap_or_default()
}

#[test]
fn our_refer_follows_the_peers_notifies_to_the_final_status() {
    let now = Instant::now();
    let (mut t, mut d, mut out) = (Transfers::new(Timers::default()), dialog(), VecDeque::new());
    assert!(t.refer(
        &mut d,
        &ctx(),
        "sip:carol@127.0.0.1:5090",
        "sip:alice@127.0.0.1",
        now,
        &mut out
    ));
    assert!(
        !t.refer(
            &mut d,
            &ctx(),
            "sip:dave@127.0.0.1",
            "sip:alice@127.0.0.1",
            now,
            &mut out
        ),
        "one at a time"
    );
    let refer = parsed(&mut out).remove(0);
    let text =
        String::from_utf8_lossy(&refer.request().unwrap().to_string().into_bytes()).into_owned();
    assert!(
        text.starts_with("REFER sip:bob@127.0.0.1:5080 SIP/2.0"),
        "{text}"
    );
    assert!(
        text.contains("Refer-To: <sip:carol@127.0.0.1:5090>"),
        "{text}"
    );
    assert!(
        text.contains("Referred-By: <sip:alice@127.0.0.1>"),
        "{text}"
    );
    let accepted = response_text(&refer, peer(), 202, "Accepted", Some("theirs"), &[], None);
    assert!(t.handle_response(&parse(accepted.as_bytes()).unwrap(), now, &mut out));
    assert_eq!(
        t.poll_event(),
        Some(TransferEvent::Progress {
            code: 202,
            reason: "Accepted".into(),
            done: false
        })
    );
    let frag = "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag;version=2.0\r\n";
    let answer = t.on_request(
        &from_peer("NOTIFY", 2, frag, "SIP/2.0 180 Ringing\r\n"),
        |_| Ok(()),
    );
    assert_eq!(answer.code, 200);
    assert_eq!(
        t.poll_event(),
        Some(TransferEvent::Progress {
            code: 180,
            reason: "Ringing".into(),
            done: false
        })
    );
    let answer = t.on_request(&from_peer("NOTIFY", 3, frag, "SIP/2.0 200 OK\r\n"), |_| {
        Ok(())
    });
    assert_eq!(answer.code, 200);
    assert_eq!(
        t.poll_event(),
        Some(TransferEvent::Progress {
            code: 200,
            reason: "OK".into(),
            done: true
        })
    );
    // No transfer any more: another NOTIFY has no subscription.
    assert_eq!(
        t.on_request(&from_peer("NOTIFY", 4, frag, "SIP/2.0 200 OK\r\n"), |_| Ok(
            ()
        ))
        .code,
        481
    );
    // Not the refer package, or no status line: refused.
    assert_eq!(
        t.on_request(&from_peer("NOTIFY", 5, "Event: presence\r\n", ""), |_| Ok(
            ()
        ))
        .code,
        489
    );
}

#[test]
fn the_peers_refer_is_judged_by_the_dial_plan_and_accepted_ones_are_notified() {
    let now = Instant::now();
    let plan = DialPlan::new(false, &[r"sip:.*@127\.0\.0\.1:5090".into()], &[]).unwrap();
    let (mut t, mut d, mut s, mut out) = (
        Transfers::new(Timers::default()),
        dialog(),
        server(),
        VecDeque::new(),
    );
    // Outside the dial plan: 403, and nothing to dial.
    let outside = from_peer("REFER", 2, "Refer-To: <sip:premium@198.51.100.7>\r\n", "");
    t.answer(
        &outside,
        peer(),
        Some(&plan),
        &mut s,
        Some(&mut d),
        &ctx(),
        now,
        &mut out,
    );
    let sent = parsed(&mut out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status_code(), Some(403));
    assert_eq!(t.poll_event(), None);
    // No Refer-To, another scheme: refused too.
    t.answer(
        &from_peer("REFER", 3, "", ""),
        peer(),
        Some(&plan),
        &mut s,
        Some(&mut d),
        &ctx(),
        now,
        &mut out,
    );
    t.answer(
        &from_peer("REFER", 4, "Refer-To: <tel:+15551234>\r\n", ""),
        peer(),
        Some(&plan),
        &mut s,
        Some(&mut d),
        &ctx(),
        now,
        &mut out,
    );
    let codes: Vec<u16> = parsed(&mut out)
        .iter()
        .filter_map(Received::status_code)
        .collect();
    assert_eq!(codes, [400, 416]);
    // Allowed: 202, then NOTIFY 100 Trying; a second REFER meanwhile is refused.
    let allowed = from_peer("REFER", 5, "Refer-To: <sip:carol@127.0.0.1:5090?Replaces=x%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\nReferred-By: <sip:bob@127.0.0.1:5080>\r\n", "");
    t.answer(
        &allowed,
        peer(),
        Some(&plan),
        &mut s,
        Some(&mut d),
        &ctx(),
        now,
        &mut out,
    );
    let sent = parsed(&mut out);
    assert_eq!(sent[0].status_code(), Some(202));
    assert_eq!(sent[1].cseq_method, "NOTIFY");
    assert_eq!(body(&sent[1]), "SIP/2.0 100 Trying\r\n");
    assert_eq!(
        t.poll_event(),
        Some(TransferEvent::Referred {
            target: "sip:carol@127.0.0.1:5090".into(),
            replaces: Some("x@h;to-tag=1;from-tag=2".into()),
            referred_by: Some("<sip:bob@127.0.0.1:5080>".into()),
        })
    );
    t.answer(
        &from_peer("REFER", 6, "Refer-To: <sip:carol@127.0.0.1:5090>\r\n", ""),
        peer(),
        Some(&plan),
        &mut s,
        Some(&mut d),
        &ctx(),
        now,
        &mut out,
    );
    assert_eq!(parsed(&mut out)[0].status_code(), Some(403));
    // The final status ends the subscription.
    t.notify(&mut d, &ctx(), 200, "OK", now, &mut out);
    let last = parsed(&mut out).remove(0);
    let text = last.request().unwrap().to_string();
    assert!(
        text.contains("Subscription-State: terminated;reason=noresource"),
        "{text}"
    );
    assert_eq!(body(&last), "SIP/2.0 200 OK\r\n");
}
