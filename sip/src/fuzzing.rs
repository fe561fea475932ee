//! Drivers shared by the SIP fuzz targets and the corpus tests, so a crash the
//! fuzzer finds becomes a seed the test suite replays. Each checks one
//! property beyond "does not panic": everything sono sends parses again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{error_response, parse, refusal, Received};
use crate::mid_call::MidCallCore;
use crate::outbound_call::{OutboundCall, OutboundCallConfig};
use crate::response::response_text;
use crate::sdp::{Codec, LocalMedia};
use crate::transaction::Timers;

/// One datagram through the transport's path: parse, then the stateless
/// answer the transport would send. Any answer to a request whose Via parsed
/// must itself parse.
pub fn message(data: &[u8]) {
    let source: SocketAddr = ([192, 0, 2, 9], 5060).into();
    match parse(data) {
        Ok(m) => {
            let _ = refusal(&m);
            if m.is_request() {
                let text = response_text(
                    &m,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                    Some("t"),
                    &[],
                    None,
                );
                if let Err(e) = parse(text.as_bytes()) {
                    panic!("our response does not parse: {e}\n{text}");
                }
            }
            let _ = m.top_via.response_address(source);
        }
        Err(e) => {
            let _ = error_response(data, &e, source, "t");
        }
    }
}

/// A TCP stream: the first byte sets the read size; the messages framed from
/// reads of that size must equal those framed from one read of everything.
pub fn stream(data: &[u8]) {
    use crate::stream_framer::StreamFramer;
    let Some((&size, data)) = data.split_first() else {
        return;
    };
    let frame = |reads: &mut dyn Iterator<Item = &[u8]>| {
        let mut framer = StreamFramer::new();
        let mut out = Vec::new();
        for read in reads {
            framer.push(read);
            while let Some(m) = framer.next_message() {
                let failed = m.is_err();
                out.push(m);
                if failed {
                    return out;
                }
            }
        }
        out
    };
    let whole = frame(&mut std::iter::once(data));
    let pieces = frame(&mut data.chunks(usize::from(size).max(1)));
    // Piecewise framing may stop earlier only when an error cut it short.
    let n = pieces.len().min(whole.len());
    assert_eq!(whole[..n], pieces[..n], "framing depends on read sizes");
    for m in whole.into_iter().flatten() {
        message(&m);
    }
}

fn config() -> OutboundCallConfig {
    OutboundCallConfig {
        target: "sip:bob@192.0.2.7:5060".into(),
        from: "\"Sono\" <sip:alice@127.0.0.1>".into(),
        contact: "sip:alice@127.0.0.1:5060".into(),
        via_sent_by: "127.0.0.1:5060".into(),
        next_hop: ([192, 0, 2, 7], 5060).into(),
        outbound_proxy: None,
        user_agent: "sono-fuzz".into(),
        media: LocalMedia {
            address: [127, 0, 0, 1].into(),
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
        auth: crate::outbound_call::Auth::Realms {
            credentials: crate::digest::Credentials {
                username: "alice".into(),
                password: "secret".into(),
            },
            realms: vec!["r".into()],
        },
        // Targets the peer names elsewhere than 192.0.2.7 are refused.
        dial_plan: crate::dial_plan::DialPlan::new(
            false,
            &[r"sip:.*@192\.0\.2\.7(:5060)?".into()],
            &[],
        )
        .ok(),
        call_id: "fuzz-call@sono".into(),
        extra_headers: Vec::new(),
    }
}

/// An outbound call fed a script of peer messages built from `data`: chunks
/// separated by `\n--\n`, whose first byte picks a response to the INVITE,
/// a request inside the dialog (REFER and NOTIFY among them), raw bytes, a
/// hangup, a transfer step of ours, or the passing of time.
/// The peer's messages carry the call's real identifiers so the fuzzer
/// reaches the call's states. Everything the call sends must parse.
pub fn call(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let peer: SocketAddr = ([192, 0, 2, 7], 5060).into();
    let Ok(mut call) = OutboundCall::new(config(), now) else {
        return;
    };
    let mut sent: Vec<Received> = Vec::new();
    let drain = |call: &mut OutboundCall, sent: &mut Vec<Received>| {
        while let Some(t) = call.poll_transmit() {
            match parse(&t.bytes) {
                Ok(m) => sent.push(m),
                Err(e) => panic!(
                    "the call sent something that does not parse: {e}\n{}",
                    String::from_utf8_lossy(&t.bytes)
                ),
            }
        }
        while call.poll_event().is_some() {}
    };
    drain(&mut call, &mut sent);
    for chunk in split(data, b"\n--\n").take(32) {
        let Some((&kind, rest)) = chunk.split_first() else {
            continue;
        };
        let last_request = sent.iter().rev().find(|m| m.is_request()).cloned();
        let bytes: Vec<u8> = match kind % 6 {
            0 => {
                let Some(req) = &last_request else { continue };
                let code = 100 + u16::from(rest.first().copied().unwrap_or(0)) * 2 % 600;
                let text = response_text(req, peer, code, "Fuzz", Some("peer"), &[], None);
                // The rest goes between the headers and the end.
                let head = text.trim_end_matches("Content-Length: 0\r\n\r\n");
                let mut b = head.as_bytes().to_vec();
                b.extend_from_slice(rest.get(1..).unwrap_or_default());
                b
            }
            1 => {
                let methods = [
                    "BYE", "INVITE", "OPTIONS", "INFO", "ACK", "CANCEL", "UPDATE", "REFER",
                    "NOTIFY",
                ];
                let m = methods[usize::from(rest.first().copied().unwrap_or(0)) % methods.len()];
                let local_tag = sent
                    .first()
                    .and_then(|s| s.from_tag.clone())
                    .unwrap_or_default();
                let mut b = format!(
                    "{m} sip:alice@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKp{}\r\n\
From: <sip:bob@192.0.2.7>;tag=peer\r\nTo: <sip:alice@127.0.0.1>;tag={local_tag}\r\n\
Call-ID: fuzz-call@sono\r\nCSeq: {} {m}\r\n",
                    rest.len(),
                    rest.len()
                )
                .into_bytes();
                b.extend_from_slice(rest.get(1..).unwrap_or_default());
                b
            }
            2 => rest.to_vec(),
            3 => {
                call.hangup(now);
                drain(&mut call, &mut sent);
                continue;
            }
            4 => {
                match transfer_step(rest) {
                    Ok(target) => {
                        let _ = call.transfer(target, now);
                    }
                    Err(code) => call.notify_transfer(code, "Fuzz", now),
                }
                drain(&mut call, &mut sent);
                continue;
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0)) * 250);
                call.handle_timeout(now);
                drain(&mut call, &mut sent);
                continue;
            }
        };
        if let Ok(m) = parse(&bytes) {
            call.handle_message(m, peer, now);
        }
        drain(&mut call, &mut sent);
    }
    // Whatever happened, the call ends within 64·T1 plus T4 of the last input.
    now += Duration::from_secs(40);
    call.hangup(now);
    for _ in 0..64 {
        match call.poll_timeout() {
            Some(t) if t <= now + Duration::from_secs(120) => {
                now = now.max(t);
                call.handle_timeout(now);
                drain(&mut call, &mut sent);
            }
            _ => break,
        }
    }
}

/// The user's side of a transfer, as a script step: `Ok(target)` for our
/// REFER (an even first byte), `Err(code)` for a NOTIFY of our call to the
/// target of the peer's REFER, with the code the byte picks.
fn transfer_step(rest: &[u8]) -> Result<&'static str, u16> {
    let arg = rest.first().copied().unwrap_or(0);
    if arg % 2 == 0 {
        Ok("sip:carol@192.0.2.7:5060")
    } else {
        Err(100 + u16::from(arg) * 2)
    }
}

/// An inbound call driven by the same kind of script: chunks pick ring,
/// accept, reject, hangup, a request from the caller (its real tags filled
/// in), raw bytes, or time. Everything the call sends must parse.
pub fn inbound(data: &[u8]) {
    use crate::inbound_call::{InboundCall, InboundCallConfig};
    let mut now = Instant::now();
    let caller: SocketAddr = ([192, 0, 2, 7], 5060).into();
    let sdp = "v=0\r\no=a 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:sono@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKinv;rport\r\n\
From: <sip:a@192.0.2.7>;tag=caller\r\nTo: <sip:sono@127.0.0.1>\r\nCall-ID: fuzz-in@a\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:a@192.0.2.7>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let Ok(invite) = parse(invite.as_bytes()) else {
        return;
    };
    let base = config();
    let config = InboundCallConfig {
        contact: base.contact,
        via_sent_by: base.via_sent_by,
        user_agent: base.user_agent,
        media: base.media,
        timers: base.timers,
        transport: base.transport,
        dial_plan: base.dial_plan,
    };
    let mut call = InboundCall::new(invite, caller, config, now);
    let mut our_tag = String::new();
    let drain = |call: &mut InboundCall, tag: &mut String| {
        while let Some(t) = call.poll_transmit() {
            match parse(&t.bytes) {
                Ok(m) => {
                    if let (Some(t), false) = (&m.to_tag, m.is_request()) {
                        tag.clone_from(t);
                    }
                }
                Err(e) => panic!(
                    "the inbound call sent something that does not parse: {e}\n{}",
                    String::from_utf8_lossy(&t.bytes)
                ),
            }
        }
        while call.poll_event().is_some() {}
    };
    drain(&mut call, &mut our_tag);
    for chunk in split(data, b"\n--\n").take(32) {
        let Some((&kind, rest)) = chunk.split_first() else {
            continue;
        };
        let arg = rest.first().copied().unwrap_or(0);
        match kind % 8 {
            0 => call.ring(now),
            1 => call.accept(now),
            2 => call.reject(300 + u16::from(arg) * 2, "Fuzz", now),
            3 => call.hangup(now),
            4 => {
                let methods = [
                    "ACK", "BYE", "CANCEL", "INVITE", "OPTIONS", "INFO", "PRACK", "REFER", "NOTIFY",
                ];
                let m = methods[usize::from(arg) % methods.len()];
                let branch = if arg & 0x80 != 0 {
                    "z9hG4bKinv".to_owned()
                } else {
                    format!("z9hG4bKx{}", rest.len())
                };
                let cseq = if m == "CANCEL" || arg & 0x40 != 0 {
                    1
                } else {
                    2 + rest.len()
                };
                let mut b = format!(
                    "{m} sip:sono@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch={branch}\r\n\
From: <sip:a@192.0.2.7>;tag=caller\r\nTo: <sip:sono@127.0.0.1>;tag={our_tag}\r\n\
Call-ID: fuzz-in@a\r\nCSeq: {cseq} {m}\r\n"
                )
                .into_bytes();
                b.extend_from_slice(rest.get(1..).unwrap_or_default());
                if let Ok(m) = parse(&b) {
                    call.handle_message(m, caller, now);
                }
            }
            5 => {
                if let Ok(m) = parse(rest) {
                    call.handle_message(m, caller, now);
                }
            }
            6 => match transfer_step(rest) {
                Ok(target) => {
                    let _ = call.transfer(target, now);
                }
                Err(code) => call.notify_transfer(code, "Fuzz", now),
            },
            _ => {
                now += Duration::from_millis(u64::from(arg) * 250);
                call.handle_timeout(now);
            }
        }
        drain(&mut call, &mut our_tag);
    }
    now += Duration::from_secs(40);
    call.hangup(now);
    for _ in 0..64 {
        match call.poll_timeout() {
            Some(t) if t <= now + Duration::from_secs(120) => {
                now = now.max(t);
                call.handle_timeout(now);
                drain(&mut call, &mut our_tag);
            }
            _ => break,
        }
    }
}

fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A registrar answering anything: each chunk of the input either answers
/// the last REGISTER (a code, and headers drawn from the chunk: Contact with
/// expires, Expires, Min-Expires, a digest challenge, maybe stale), lets
/// time pass, or unregisters. Every REGISTER sent must parse, and the core
/// must end up done or still scheduling something.
pub fn registration(data: &[u8]) {
    use crate::registration::{Registration, RegistrationConfig};
    let mut now = Instant::now();
    let registrar: SocketAddr = ([192, 0, 2, 9], 5060).into();
    let mut r = Registration::new(
        RegistrationConfig {
            registrar_uri: "sip:example.test".into(),
            next_hop: registrar,
            aor: "sip:alice@example.test".into(),
            display_name: Some("A \"quoted\" name".into()),
            contact: "sip:alice-1@127.0.0.1:5060".into(),
            via_sent_by: "127.0.0.1:5060".into(),
            user_agent: "sono-fuzz".into(),
            credentials: Some(crate::digest::Credentials {
                username: "alice".into(),
                password: "pw".into(),
            }),
            expires: 600,
            timers: Timers::default(),
            transport: crate::transmit::Transport::Udp,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(8),
        },
        now,
    );
    let mut last: Option<Received> = None;
    let drain = |r: &mut Registration, last: &mut Option<Received>| {
        while let Some(t) = r.poll_transmit() {
            match parse(&t.bytes) {
                Ok(m) => *last = Some(m),
                Err(e) => panic!(
                    "the registration sent something that does not parse: {e}\n{}",
                    String::from_utf8_lossy(&t.bytes)
                ),
            }
        }
        while r.poll_event().is_some() {}
    };
    drain(&mut r, &mut last);
    for chunk in split(data, b"\n--\n").take(32) {
        let Some((&kind, rest)) = chunk.split_first() else {
            continue;
        };
        match kind % 4 {
            0 | 1 => {
                let Some(req) = &last else { continue };
                let code = 100 + u16::from(rest.first().copied().unwrap_or(0)) * 2 % 600;
                let text_of = |i: usize| {
                    String::from_utf8_lossy(rest.get(i..).unwrap_or_default())
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(80)
                        .collect::<String>()
                };
                let contact = format!("<sip:alice-1@127.0.0.1:5060>;expires={}", text_of(1));
                let challenge = format!(
                    "Digest realm=\"r\", nonce=\"{}\", qop=\"auth\"{}",
                    text_of(2).replace('"', ""),
                    if kind % 8 == 1 { ", stale=true" } else { "" }
                );
                let mut extra: Vec<(&str, &str)> = Vec::new();
                let expires = text_of(3);
                match rest.get(1).copied().unwrap_or(0) % 5 {
                    0 => extra.push(("Contact", &contact)),
                    1 => extra.push(("Expires", &expires)),
                    2 => extra.push(("Min-Expires", &expires)),
                    3 => extra.push(("WWW-Authenticate", &challenge)),
                    _ => extra.push(("Proxy-Authenticate", &challenge)),
                }
                let text = response_text(req, registrar, code, "Fuzz", Some("reg"), &extra, None);
                if let Ok(rx) = parse(text.as_bytes()) {
                    r.handle_message(rx, registrar, now);
                }
            }
            2 => {
                let step = u64::from(rest.first().copied().unwrap_or(1)) * 1000;
                now += Duration::from_millis(step);
                while r.poll_timeout().is_some_and(|at| at <= now) {
                    r.handle_timeout(now);
                    drain(&mut r, &mut last);
                }
            }
            _ => r.unregister(now),
        }
        drain(&mut r, &mut last);
    }
    assert!(
        r.is_done() || r.poll_timeout().is_some(),
        "a live registration with nothing scheduled"
    );
}

/// A dial target as a client types it: the URI parser and the dial plan must
/// refuse what they do not take, never panic, and allow only loopback with
/// the default plan.
pub fn dial_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::uri::SipUri::parse(&text);
    let plan = match crate::dial_plan::DialPlan::new(true, &[], &[]) {
        Ok(plan) => plan,
        Err(_) => return,
    };
    if let crate::dial_plan::Verdict::Allowed(target) = plan.check(&text) {
        assert!(target.is_loopback(), "{text:?} allowed to {target}");
        // Where it really goes (its maddr) is loopback too, and nothing
        // that could add a hop survives.
        let destination = target.destination();
        assert!(
            destination.as_ref().is_ok_and(|d| d.is_loopback()),
            "{text:?} allowed, sent to {destination:?}"
        );
        assert!(target.headers().is_none(), "{text:?} allowed with headers");
        if let Ok(d) = destination {
            if let Some(addr) = crate::dialog::address_of(&target.to_string()) {
                assert!(
                    addr.ip().is_loopback() || d.host == "localhost",
                    "{text:?} → {addr}"
                );
            }
        }
    }
}

/// SDP from any peer: parse it, answer what parses with plain RTP,
/// best-effort SRTP and required SRTP (a=crypto, RFC 4568); our answer
/// must parse again, settle, and agree with itself on whether media is SRTP.
pub fn sdp(data: &[u8]) {
    use crate::sdp::{Codec, LocalMedia, LocalSrtp, SessionDescription};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = SessionDescription::parse(text) else {
        return;
    };
    // Plain RTP, best-effort SRTP and required SRTP (a=crypto, RFC 4568).
    for srtp in [
        None,
        Some(LocalSrtp {
            key: [7; 30],
            required: false,
        }),
        Some(LocalSrtp {
            key: [9; 30],
            required: true,
        }),
    ] {
        let local = LocalMedia {
            address: [127, 0, 0, 1].into(),
            port: 30000,
            codecs: vec![Codec::Speex16k, Codec::G722, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            ptime: 20,
            session_id: 1,
            session_version: 1,
            srtp,
            video: Some(crate::sdp::LocalVideo {
                port: 30002,
                profile_level_id: crate::video_sdp::CONSTRAINED_BASELINE_31.into(),
                sprop_parameter_sets: None,
            }),
        };
        if let Ok((answer, negotiated)) = local.answer(&offer) {
            let text = answer.to_text();
            let back = SessionDescription::parse(&text).expect("our answer parses");
            let settled = local.settle(&back);
            assert!(settled.is_ok(), "our answer settles: {text}");
            // Both ends of our own answer agree on whether media is SRTP.
            assert_eq!(
                settled.ok().and_then(|n| n.srtp).is_some(),
                negotiated.srtp.is_some(),
                "{text}"
            );
            // And on whether there is video, and its payload type.
            assert_eq!(
                local
                    .settle(&back)
                    .ok()
                    .and_then(|n| n.video)
                    .map(|v| v.payload_type),
                negotiated.video.map(|v| v.payload_type),
                "{text}"
            );
        }
        let _ = local.settle(&offer);
    }
}
