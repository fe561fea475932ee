//! The SIP work of one whole outbound call in the sans-I/O core, both sides'
//! parsing included: INVITE out, 100/180/200 in (each parsed as the transport
//! parses), ACK out, hangup, BYE out, 200 in. Divide one second by the figure
//! for the call set-ups per second one core can do, before any I/O.

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use sono_sip::message::{parse, Received};
use sono_sip::outbound_call::{OutboundCall, OutboundCallConfig};
use sono_sip::response::response_text;
use sono_sip::sdp::{Codec, LocalMedia};
use sono_sip::transaction::Timers;

const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn config() -> OutboundCallConfig {
    OutboundCallConfig {
        target: "sip:bob@127.0.0.1:5080".into(),
        from: "<sip:sono@127.0.0.1>".into(),
        contact: "sip:sono@127.0.0.1:5060".into(),
        via_sent_by: "127.0.0.1:5060".into(),
        next_hop: "127.0.0.1:5080".parse().unwrap(),
        outbound_proxy: None,
        user_agent: "sono-bench".into(),
        media: LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            port: 30000,
            codecs: vec![Codec::Speex16k, Codec::G722, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            ptime: 20,
            session_id: 1,
            session_version: 1,
            srtp: None,
            video: None,
        },
        timers: Timers::default(),
        transport: Default::default(),
        auth: sono_sip::outbound_call::Auth::None,
        dial_plan: None,
        call_id: String::new(),
        extra_headers: Vec::new(),
    }
}

/// What the peer parses of what the call sent.
fn sent(call: &mut OutboundCall) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(t) = call.poll_transmit() {
        out.push(parse(&t.bytes).expect("valid"));
    }
    while call.poll_event().is_some() {}
    out
}

fn one_call(peer: SocketAddr, us: SocketAddr) {
    let now = Instant::now();
    let mut call = OutboundCall::new(config(), now).expect("a call");
    let invite = sent(&mut call).remove(0);
    let contact = [("Contact", "<sip:bob@127.0.0.1:5080>")];
    for (code, reason, body) in [
        (100, "Trying", None),
        (180, "Ringing", None),
        (200, "OK", Some(ANSWER)),
    ] {
        let text = response_text(
            &invite,
            us,
            code,
            reason,
            (code > 100).then_some("bobtag"),
            &contact,
            body.map(|b| ("application/sdp", b)),
        );
        call.handle_message(parse(text.as_bytes()).expect("valid"), peer, now);
    }
    let _ack = sent(&mut call);
    call.hangup(now);
    let bye = sent(&mut call).remove(0);
    let ok = response_text(&bye, us, 200, "OK", None, &[], None);
    call.handle_message(parse(ok.as_bytes()).expect("valid"), peer, now);
    sent(&mut call);
    assert!(call.is_ended());
}

fn bench(c: &mut Criterion) {
    let peer: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let us: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    c.bench_function("outbound call: INVITE/100/180/200/ACK/BYE/200", |b| {
        b.iter(|| one_call(peer, us))
    });
    let datagram = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK0123456789abcdef;rport=5060;received=127.0.0.1\r\n\
From: <sip:sono@127.0.0.1>;tag=0123456789abcdef\r\nTo: <sip:bob@127.0.0.1:5080>;tag=bobtag\r\n\
Call-ID: 0123456789abcdef@sono\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n";
    c.bench_function("parse and check a 180 Ringing", |b| {
        b.iter(|| parse(std::hint::black_box(datagram)).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
