//! Entry points shared by the cargo-fuzz targets (fuzz/) and the malformed-input
//! corpus test (rtmp/tests/corpus.rs), so both exercise exactly the same path.
//! Each panics only on a real bug: a panic inside the session, or an AMF value
//! that does not survive a round trip.

use crate::amf::{amf0, DecodeLimits};
use crate::message::{command_payload, type_id};
use crate::{
    AmfValue, AudioCodec, ObjectEncoding, ServerSession, SessionConfig, SessionError, SessionEvent,
};

/// How the fuzz input is cut into reads, as TCP may deliver it.
#[derive(Debug, Clone, Copy)]
pub struct Split(usize);

impl Split {
    pub fn from_byte(b: u8) -> Split {
        Split(usize::from(b) % 64 + 1)
    }

    pub fn whole() -> Split {
        Split(usize::MAX)
    }
}

/// Bytes that complete a plain (non-digest) handshake and a `connect`.
pub fn connected_preamble() -> Vec<u8> {
    let mut wire = vec![3u8];
    wire.extend_from_slice(&[0u8; 1536]); // C1: zero time, zero version: plain handshake
    wire.extend_from_slice(&[0u8; 1536]); // C2: not checked against S1 (rml_rtmp)
    let connect = command_payload(
        ObjectEncoding::Amf0,
        &[
            "connect".into(),
            1.0.into(),
            AmfValue::object([
                ("app", AmfValue::from("phone")),
                ("objectEncoding", AmfValue::Number(3.0)),
            ]),
        ],
    );
    let mut encoder = crate::chunk::ChunkEncoder::default();
    encoder.encode(3, 0, type_id::COMMAND_AMF0, 0, &connect, &mut wire);
    wire
}

/// Runs `input` through a connected session in reads of `split` bytes, answering
/// every event the way the connection actor does; the error that closed it, if any.
pub fn drive_session(input: &[u8], split: Split) -> Result<(), SessionError> {
    drive_session_in(input, split, crate::api::ClientApi::Sono)
}

/// As [`drive_session`], the client speaking `api`: its methods parsed, and
/// sono's events (one of each kind, after every read) rendered as its
/// callbacks.
pub fn drive_session_in(
    input: &[u8],
    split: Split,
    api: crate::api::ClientApi,
) -> Result<(), SessionError> {
    let mut session = ServerSession::new(SessionConfig::default());
    session.set_api(crate::api::ApiAdapter::new(
        api,
        "example.com",
        "sip/alice@example.com",
    ));
    let preamble = connected_preamble();
    let feed = |session: &mut ServerSession, bytes: &[u8]| -> Result<(), SessionError> {
        let result = session.handle_input(bytes);
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::ConnectRequested(_) => {
                    let _ = session.accept_connect(vec![]);
                }
                SessionEvent::Phone { transaction_id, .. } => {
                    session.answer_error(transaction_id, "Sono.Call.Failed", "fuzzing");
                    for (id, event) in sample_events().into_iter().enumerate() {
                        session.send_event(&event, Some(id as u32 % 3 + 1));
                    }
                }
                SessionEvent::Api {
                    request: crate::api::ApiRequest::Login { user, domain, .. },
                    ..
                } => session.login_result(&user, &domain, user.len() % 2 == 0),
                SessionEvent::Api { .. } => session.logout_result(),
                SessionEvent::Playing { stream_id, .. } => {
                    session.send_audio(stream_id, 0, AudioCodec::Speex, &[0; 70]);
                }
                _ => {}
            }
        }
        let _ = session.take_output();
        result
    };
    if let Err(e) = feed(&mut session, &preamble) {
        panic!("the preamble must connect: {e}");
    }
    for piece in input.chunks(split.0.min(input.len().max(1))) {
        feed(&mut session, piece)?;
    }
    Ok(())
}

/// One event of each kind sono sends a client, for the foreign APIs' renderers.
fn sample_events() -> Vec<crate::PhoneEvent> {
    use crate::phone::CallStatus;
    use crate::PhoneEvent;
    let status = |status, sip_code| PhoneEvent::CallStatus {
        status,
        sip_code,
        reason: Some("fuzz".into()),
    };
    vec![
        PhoneEvent::CallIncoming {
            uri: "sip:bob@example.com".into(),
            display_name: Some("Bob".into()),
        },
        status(CallStatus::InProgress, Some(180)),
        status(CallStatus::Connected, Some(200)),
        status(CallStatus::ConnectStreams, Some(200)),
        PhoneEvent::Held {
            held: true,
            by_peer: true,
        },
        PhoneEvent::Dtmf { digit: '5' },
        status(CallStatus::NotConnected, Some(486)),
    ]
}

/// Decodes `data` as AMF0; if it decodes, its encoding must be a fixed point.
pub fn amf_round_trip(data: &[u8]) {
    let limits = DecodeLimits::default();
    let Ok(values) = amf0::decode_all(data, limits) else {
        return;
    };
    let mut once = Vec::new();
    amf0::encode_all(&values, &mut once);
    let again = amf0::decode_all(&once, limits).expect("what we encode decodes");
    let mut twice = Vec::new();
    amf0::encode_all(&again, &mut twice);
    assert_eq!(once, twice, "AMF encoding is not stable");
}

/// RTMPT requests: each line of `data` is a request path. Whatever parses
/// must print back to a path that parses the same; sequence numbers of a
/// session must only rise; the polling interval stays in Flash's range.
pub fn tunnel_requests(data: &[u8]) {
    use crate::tunnel::{parse_path, PollInterval, TunnelRequest, TunnelSequence};
    let text = String::from_utf8_lossy(data);
    let mut sequence = TunnelSequence::default();
    let mut interval = PollInterval::default();
    let mut last_accepted: Option<u64> = None;
    for (i, path) in text.lines().enumerate() {
        let Ok(request) = parse_path(path) else {
            continue;
        };
        let printed = match request {
            TunnelRequest::Ident { version2 } => {
                format!("/fcs/ident{}", if version2 { "2" } else { "" })
            }
            TunnelRequest::Open => "/open/1".to_owned(),
            TunnelRequest::Send { session, seq } => format!("/send/{session}/{seq}"),
            TunnelRequest::Idle { session, seq } => format!("/idle/{session}/{seq}"),
            TunnelRequest::Close { session, seq } => format!("/close/{session}/{seq}"),
        };
        assert_eq!(
            parse_path(&printed),
            Ok(request),
            "{path:?} printed as {printed:?}"
        );
        if let Some((_, seq)) = request.session() {
            match sequence.accept(seq) {
                Ok(()) => {
                    assert!(
                        last_accepted.is_none_or(|l| seq > l),
                        "{seq} accepted after {last_accepted:?}"
                    );
                    last_accepted = Some(seq);
                }
                Err(_) => assert!(last_accepted.is_some_and(|l| seq <= l)),
            }
        }
        let byte = interval.next(i % 3 == 0);
        assert!((PollInterval::MIN..=PollInterval::MAX).contains(&byte));
    }
}

/// A PROXY protocol v2 header as the listener reads it: the fixed 16 bytes
/// first, then as many as they announce. Whatever is accepted must be the
/// announced length exactly, and a client address must survive being
/// written back out.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy_header::{client_address, encode, header_length, FIXED_LEN, MAX_HEADER_LEN};
    let Some(fixed) = data
        .get(..FIXED_LEN)
        .and_then(|b| <&[u8; FIXED_LEN]>::try_from(b).ok())
    else {
        return;
    };
    let Ok(total) = header_length(fixed) else {
        return;
    };
    assert!((FIXED_LEN..=MAX_HEADER_LEN).contains(&total));
    let Some(header) = data.get(..total) else {
        return;
    };
    if let Ok(Some(client)) = client_address(header) {
        let server = std::net::SocketAddr::from(([10, 0, 0, 1], 1935));
        let again = encode(client, server);
        let client_again = client_address(&again);
        // An IPv4 client beside an IPv6 server is written as a mapped IPv6 one.
        let same = match client_again {
            Ok(Some(c)) => c == client || c.port() == client.port(),
            _ => false,
        };
        assert!(same, "{client} came back as {client_again:?}");
    }
}
