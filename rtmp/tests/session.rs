//! The server session driven byte by byte as a client would, without sockets.

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use sono_rtmp::amf::{amf0, amf3, AmfValue, DecodeLimits};
use sono_rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
use sono_rtmp::message::{command_payload, type_id, Message};
use sono_rtmp::phone::code;
use sono_rtmp::{
    AudioCodec, ObjectEncoding, PhoneRequest, ServerSession, SessionConfig, SessionError,
    SessionEvent,
};

/// The client end: handshake, chunk encoder and decoder.
struct Client {
    server: ServerSession,
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
}

impl Client {
    fn handshaken(config: SessionConfig) -> Client {
        let mut server = ServerSession::new(config);
        let mut hs = Handshake::new(PeerType::Client);
        let c0c1 = hs.generate_outbound_p0_and_p1().unwrap();
        server.handle_input(&c0c1).unwrap();
        let s = server.take_output();
        let HandshakeProcessResult::Completed { response_bytes, .. } =
            hs.process_bytes(&s).unwrap()
        else {
            panic!("handshake did not complete on S0S1S2")
        };
        server.handle_input(&response_bytes).unwrap();
        assert!(server.handshake_done());
        Client {
            server,
            encoder: ChunkEncoder::default(),
            decoder: ChunkDecoder::new(ChunkLimits::default()),
        }
    }

    fn connected(encoding: ObjectEncoding) -> Client {
        let mut c = Client::handshaken(SessionConfig::default());
        let obj = AmfValue::object([
            ("app", AmfValue::from("phone")),
            ("objectEncoding", AmfValue::Number(encoding.number())),
        ]);
        c.send_command(
            ObjectEncoding::Amf0,
            0,
            &["connect".into(), 1.0.into(), obj],
        )
        .unwrap();
        match c.server.poll_event() {
            Some(SessionEvent::ConnectRequested(r)) => {
                assert_eq!(r.app, "phone");
                assert_eq!(r.object_encoding, encoding);
            }
            other => panic!("expected a connect request, got {other:?}"),
        }
        c.server.accept_connect(vec![]).unwrap();
        let answers = c.read();
        let result = answers
            .iter()
            .find(|v| v[0].as_str() == Some("_result"))
            .expect("connect _result");
        assert_eq!(
            result[3].get("code").and_then(AmfValue::as_str),
            Some("NetConnection.Connect.Success")
        );
        assert_eq!(
            result[3]
                .get("objectEncoding")
                .and_then(AmfValue::as_number),
            Some(encoding.number())
        );
        c
    }

    fn send_command(
        &mut self,
        encoding: ObjectEncoding,
        stream: u32,
        values: &[AmfValue],
    ) -> Result<(), SessionError> {
        let payload = match encoding {
            ObjectEncoding::Amf0 => command_payload(encoding, values),
            ObjectEncoding::Amf3 => {
                // Name and transaction id in AMF0, the rest behind the AVM+ switch, as Flash does.
                let mut p = vec![0u8];
                amf0::encode_all(&values[..2], &mut p);
                for v in &values[2..] {
                    p.push(0x11);
                    amf3::encode(v, &mut p);
                }
                p
            }
        };
        let t = match encoding {
            ObjectEncoding::Amf0 => type_id::COMMAND_AMF0,
            ObjectEncoding::Amf3 => type_id::COMMAND_AMF3,
        };
        self.send(3, 0, t, stream, &payload)
    }

    fn send(
        &mut self,
        csid: u32,
        ts: u32,
        t: u8,
        stream: u32,
        p: &[u8],
    ) -> Result<(), SessionError> {
        let mut wire = Vec::new();
        self.encoder.encode(csid, ts, t, stream, p, &mut wire);
        self.server.handle_input(&wire)
    }

    /// Every command the server wrote since the last read, as AMF values.
    fn read(&mut self) -> Vec<Vec<AmfValue>> {
        self.decoder.push(&self.server.take_output());
        let mut out = Vec::new();
        while let Some(raw) = self.decoder.next_message().unwrap() {
            match Message::parse(&raw, DecodeLimits::default()).unwrap() {
                Message::SetChunkSize(n) => self.decoder.set_chunk_size(n).unwrap(),
                Message::Command { values, .. } => out.push(values),
                _ => {}
            }
        }
        out
    }

    fn call(
        &mut self,
        encoding: ObjectEncoding,
        name: &str,
        args: Vec<AmfValue>,
    ) -> Vec<Vec<AmfValue>> {
        let mut v = vec![AmfValue::from(name), AmfValue::Number(7.0), AmfValue::Null];
        v.extend(args);
        self.send_command(encoding, 0, &v).unwrap();
        self.read()
    }
}

fn error_code(answers: &[Vec<AmfValue>]) -> Option<String> {
    answers
        .iter()
        .find(|v| v[0].as_str() == Some("_error"))
        .and_then(|v| {
            v[3].get("code")
                .and_then(AmfValue::as_str)
                .map(str::to_owned)
        })
}

#[test]
fn phone_calls_work_in_both_encodings() {
    for enc in [ObjectEncoding::Amf0, ObjectEncoding::Amf3] {
        let mut c = Client::connected(enc);
        let answers = c.call(enc, "dial", vec!["sip:bob@127.0.0.1".into()]);
        assert!(
            answers.is_empty(),
            "valid requests are answered by the owner"
        );
        assert_eq!(
            c.server.poll_event(),
            Some(SessionEvent::Phone {
                transaction_id: 7.0,
                request: PhoneRequest::Dial {
                    uri: "sip:bob@127.0.0.1".into(),
                    codec: None,
                    video: false
                }
            })
        );
        assert_eq!(
            error_code(&c.call(enc, "dial", vec![])).as_deref(),
            Some(code::CALL_NO_URI)
        );
        assert_eq!(
            error_code(&c.call(enc, "sendDTMF", vec!["x".into()])).as_deref(),
            Some(code::DTMF_INVALID)
        );
        assert_eq!(
            error_code(&c.call(enc, "nosuch", vec![])).as_deref(),
            Some(code::METHOD_NOT_FOUND)
        );
        c.server.answer_error(7.0, code::CALL_FAILED, "no");
        let answers = c.read();
        assert_eq!(error_code(&answers).as_deref(), Some(code::CALL_FAILED));
    }
}

#[test]
fn publish_and_audio_reach_the_owner() {
    let mut c = Client::connected(ObjectEncoding::Amf3);
    let answers = c.call(ObjectEncoding::Amf3, "createStream", vec![]);
    let id = answers[0][3].as_number().unwrap() as u32;
    // Audio before publish goes nowhere.
    c.send(4, 0, type_id::AUDIO, id, &[0xB2, 1, 2]).unwrap();
    assert_eq!(c.server.poll_event(), None);
    c.send_command(
        ObjectEncoding::Amf3,
        id,
        &[
            "publish".into(),
            0.0.into(),
            AmfValue::Null,
            "mic".into(),
            "live".into(),
        ],
    )
    .unwrap();
    assert_eq!(
        c.server.poll_event(),
        Some(SessionEvent::Publishing {
            stream_id: id,
            name: "mic".into()
        })
    );
    for i in 0..3 {
        c.send(4, i * 20, type_id::AUDIO, id, &[0xB6, i as u8])
            .unwrap();
    }
    for i in 0..3u32 {
        match c.server.poll_event() {
            Some(SessionEvent::Audio {
                stream_id,
                timestamp,
                tag,
            }) => {
                assert_eq!((stream_id, timestamp), (id, i * 20));
                assert_eq!(tag.codec, AudioCodec::Speex);
                assert_eq!(tag.data.as_ref(), &[i as u8]);
            }
            other => panic!("expected audio, got {other:?}"),
        }
    }
}

#[test]
fn commands_before_connect_close_the_session() {
    let mut c = Client::handshaken(SessionConfig::default());
    let r = c.send_command(
        ObjectEncoding::Amf0,
        0,
        &["dial".into(), 2.0.into(), AmfValue::Null],
    );
    assert!(matches!(r, Err(SessionError::Protocol(_))), "{r:?}");
    assert_eq!(c.server.handle_input(&[0]), Err(SessionError::Closed));
}

#[test]
fn bad_handshake_is_refused() {
    let mut s = ServerSession::new(SessionConfig::default());
    let r = s.handle_input(&[6; 1537]);
    assert!(matches!(r, Err(SessionError::Handshake(_))), "{r:?}");
}

#[test]
fn ping_requests_are_answered() {
    let mut c = Client::connected(ObjectEncoding::Amf0);
    c.send(2, 0, type_id::USER_CONTROL, 0, &[0, 6, 0, 0, 1, 0])
        .unwrap();
    c.decoder.push(&c.server.take_output());
    let raw = c.decoder.next_message().unwrap().unwrap();
    assert_eq!(raw.type_id, type_id::USER_CONTROL);
    assert_eq!(raw.payload.as_ref(), &[0, 7, 0, 0, 1, 0]);
}

#[test]
fn acknowledges_the_total_received_per_window() {
    let mut c = Client::connected(ObjectEncoding::Amf0);
    c.send(2, 0, type_id::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes())
        .unwrap();
    let before = c.server.bytes_received();
    c.send(5, 0, type_id::VIDEO, 0, &[0u8; 1200]).unwrap();
    c.decoder.push(&c.server.take_output());
    let raw = c.decoder.next_message().unwrap().unwrap();
    assert_eq!(raw.type_id, type_id::ACKNOWLEDGEMENT);
    let acked = u32::from_be_bytes([
        raw.payload[0],
        raw.payload[1],
        raw.payload[2],
        raw.payload[3],
    ]);
    assert_eq!(u64::from(acked), c.server.bytes_received());
    assert!(u64::from(acked) > before + 1200);
}

#[test]
fn plain_handshake_echoes_c1_as_s2() {
    let mut s = ServerSession::new(SessionConfig::default());
    let mut c1 = vec![0u8; 1536];
    for (i, b) in c1.iter_mut().enumerate().skip(8) {
        *b = (i * 7) as u8;
    }
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&c1);
    s.handle_input(&c0c1).unwrap();
    let out = s.take_output();
    assert_eq!(out.len(), 1 + 1536 + 1536, "S0 S1 S2");
    assert_eq!(out[0], 3);
    assert_eq!(&out[1537..], &c1[..], "S2 echoes C1 in the plain handshake");
    let s1 = out[1..1537].to_vec();
    s.handle_input(&s1).unwrap();
    assert!(s.handshake_done());
}

#[test]
fn audio_goes_down_only_to_a_playing_unmuted_stream() {
    let mut c = Client::connected(ObjectEncoding::Amf0);
    let answers = c.call(ObjectEncoding::Amf0, "createStream", vec![]);
    let id = answers[0][3].as_number().unwrap() as u32;
    assert!(
        !c.server.send_audio(id, 0, AudioCodec::Speex, &[1, 2, 3]),
        "not playing yet"
    );
    c.send_command(
        ObjectEncoding::Amf0,
        id,
        &["play".into(), 0.0.into(), AmfValue::Null, "speaker".into()],
    )
    .unwrap();
    assert!(matches!(
        c.server.poll_event(),
        Some(SessionEvent::Playing { .. })
    ));
    let codecs = [
        AudioCodec::Speex,
        AudioCodec::Nellymoser { rate: 8_000 },
        AudioCodec::Nellymoser { rate: 44_100 },
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        assert!(c.server.send_audio(id, i as u32 * 20, codec, &[9; 70]));
    }
    c.decoder.push(&c.server.take_output());
    let mut audio = Vec::new();
    while let Some(raw) = c.decoder.next_message().unwrap() {
        if let Message::SetChunkSize(n) = Message::parse(&raw, DecodeLimits::default()).unwrap() {
            c.decoder.set_chunk_size(n).unwrap();
        }
        if raw.type_id == type_id::AUDIO {
            audio.push(raw);
        }
    }
    let headers: Vec<u8> = audio.iter().map(|m| m.payload[0]).collect();
    assert_eq!(headers, vec![0xB2, 0x52, 0x6E]);
    assert!(audio
        .iter()
        .all(|m| m.message_stream_id == id && m.payload.len() == 71));
    assert_eq!(
        audio.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
        vec![0, 20, 40]
    );

    c.send_command(
        ObjectEncoding::Amf0,
        id,
        &[
            "receiveAudio".into(),
            0.0.into(),
            AmfValue::Null,
            AmfValue::Boolean(false),
        ],
    )
    .unwrap();
    assert!(
        !c.server.send_audio(id, 60, AudioCodec::Speex, &[1]),
        "muted by receiveAudio(false)"
    );
}
