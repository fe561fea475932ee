//! Malformed and hostile input against the real binary: each case closes its own
//! connection with the reason logged, never panics, and a client connected
//! throughout keeps working. One case is legal but beyond rml_rtmp: chunks of
//! two messages interleaved must be reassembled, not refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sono_rtmp::amf::{amf0, AmfValue};
use sono_rtmp::message::{command_payload, type_id};
use sono_rtmp::phone::code;
use sono_rtmp::ObjectEncoding;
use sono_testkit::{FlashClient, Reply, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

const SETTINGS: &str =
    "[rtmp]\nmax_message_size = 4096\nmax_chunk_size = 4096\nhandshake_timeout = \"1s\"\n";

fn connected(sono: &Sono) -> FlashClient {
    FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf0).expect("connect")
}

/// Reads until the server closes the socket (true) or `timeout` passes (false).
fn closes(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// The client is closed, the reason is in the log, and the bystander still works.
fn assert_closed(sono: &Sono, victim: &mut FlashClient, reason: &str, bystander: &mut FlashClient) {
    assert!(
        victim.wait_closed(Duration::from_secs(3)),
        "not closed: {reason}"
    );
    assert!(
        sono.wait_log(reason, Duration::from_secs(2)),
        "the log does not give the reason {reason:?}:\n{}",
        sono.log()
    );
    let reply = bystander
        .call("register", vec![])
        .expect("the bystander is still served");
    assert!(reply.value().is_some(), "bystander got {reply:?}");
}

#[test]
fn malformed_input_closes_only_the_offending_connection() {
    let sono = Sono::start(SONO, SETTINGS);
    let mut bystander = connected(&sono);

    // Handshake: a version byte other than 3 (RTMPE's 6, say).
    let mut raw = TcpStream::connect(sono.rtmp).unwrap();
    raw.write_all(&[6u8; 1537]).unwrap();
    assert!(
        closes(&mut raw, Duration::from_secs(3)),
        "a bad handshake was not closed"
    );
    assert!(
        sono.wait_log("handshake failed", Duration::from_secs(2)),
        "{}",
        sono.log()
    );

    // A handshake started and never finished.
    let mut stalled = TcpStream::connect(sono.rtmp).unwrap();
    stalled.write_all(&[3u8; 100]).unwrap();
    assert!(
        closes(&mut stalled, Duration::from_secs(4)),
        "a stalled handshake was not closed"
    );
    assert!(sono.wait_log("handshake not finished in time", Duration::from_secs(1)));

    // A chunk size over the limit, and the zero chunk size.
    for size in [0x7FFF_FFFFu32, 4097, 0] {
        let mut c = connected(&sono);
        c.send_message(2, 0, type_id::SET_CHUNK_SIZE, 0, &size.to_be_bytes())
            .unwrap();
        assert_closed(
            &sono,
            &mut c,
            &format!("chunk size {size} is outside"),
            &mut bystander,
        );
    }

    // A message over rtmp.max_message_size.
    let mut c = connected(&sono);
    c.send_raw(&[0x03, 0, 0, 0, 0, 0x13, 0x88, 20, 0, 0, 0, 0])
        .unwrap();
    assert_closed(
        &sono,
        &mut c,
        "message of 5000 bytes is over the limit of 4096",
        &mut bystander,
    );

    // Unknown message types.
    for t in [7u8, 21, 99] {
        let mut c = connected(&sono);
        c.send_message(3, 0, t, 0, &[1, 2, 3]).unwrap();
        assert_closed(
            &sono,
            &mut c,
            &format!("unknown message type {t}"),
            &mut bystander,
        );
    }

    // A compressed header on a chunk stream that never had a full one.
    let mut c = connected(&sono);
    c.send_raw(&[0xC9, 1, 2, 3]).unwrap();
    assert_closed(
        &sono,
        &mut c,
        "chunk stream 9 sent a compressed header",
        &mut bystander,
    );

    // Truncated AMF: a string that claims 16 bytes and has 1.
    let mut c = connected(&sono);
    c.send_message(3, 0, type_id::COMMAND_AMF0, 0, &[0x02, 0x00, 0x10, b'a'])
        .unwrap();
    assert_closed(
        &sono,
        &mut c,
        "AMF data ends in the middle of a value",
        &mut bystander,
    );

    // Nonsensical AMF: a reserved marker; an AMF3 command with a bad format byte;
    // a command that is not a name and a transaction id; invalid UTF-8.
    let mut c = connected(&sono);
    c.send_message(3, 0, type_id::COMMAND_AMF0, 0, &[0x04])
        .unwrap();
    assert_closed(
        &sono,
        &mut c,
        "unknown AMF0 type marker 0x04",
        &mut bystander,
    );
    let mut c = connected(&sono);
    c.send_message(3, 0, type_id::COMMAND_AMF3, 0, &[0x07, 0x05])
        .unwrap();
    assert_closed(&sono, &mut c, "format byte 0x07", &mut bystander);
    let mut c = connected(&sono);
    let p = command_payload(
        ObjectEncoding::Amf0,
        &[AmfValue::Number(5.0), "dial".into()],
    );
    c.send_message(3, 0, type_id::COMMAND_AMF0, 0, &p).unwrap();
    assert_closed(
        &sono,
        &mut c,
        "command without a name and a transaction id",
        &mut bystander,
    );
    let mut c = connected(&sono);
    c.send_message(
        3,
        0,
        type_id::COMMAND_AMF0,
        0,
        &[0x02, 0x00, 0x02, 0xC3, 0x28],
    )
    .unwrap();
    assert_closed(&sono, &mut c, "not valid UTF-8", &mut bystander);

    // A phone command before connect.
    let mut c = FlashClient::handshake(sono.rtmp).unwrap();
    let p = command_payload(
        ObjectEncoding::Amf0,
        &["dial".into(), 2.0.into(), AmfValue::Null],
    );
    c.send_message(3, 0, type_id::COMMAND_AMF0, 0, &p).unwrap();
    assert_closed(&sono, &mut c, "\"dial\" before connect", &mut bystander);

    // Publishing on a stream that was never created.
    let mut c = connected(&sono);
    c.send_command(7, "publish", 0.0, vec!["mic".into()])
        .unwrap();
    assert_closed(
        &sono,
        &mut c,
        "publish on stream 7, which was never created",
        &mut bystander,
    );

    assert!(
        !sono.log().contains("panicked"),
        "sono panicked:\n{}",
        sono.log()
    );
    let closed = sono.metric("sono_rtmp_connections_closed_on_error_total");
    assert!(
        closed >= 17.0,
        "only {closed} connections counted as closed on error"
    );
}

#[test]
fn interleaved_chunks_of_two_messages_are_reassembled() {
    let sono = Sono::start(SONO, SETTINGS);
    let mut c = connected(&sono);
    let pad = AmfValue::from("p".repeat(200));
    let mut a = Vec::new();
    amf0::encode_all(
        &[
            "createStream".into(),
            10.0.into(),
            AmfValue::Null,
            pad.clone(),
        ],
        &mut a,
    );
    let mut b = Vec::new();
    amf0::encode_all(
        &["dial".into(), 11.0.into(), AmfValue::Null, "".into(), pad],
        &mut b,
    );
    let header = |csid: u8, len: usize| {
        let l = (len as u32).to_be_bytes();
        vec![
            csid,
            0,
            0,
            0,
            l[1],
            l[2],
            l[3],
            type_id::COMMAND_AMF0,
            0,
            0,
            0,
            0,
        ]
    };
    // Chunk size 128: first chunk of A (csid 5), first of B (csid 6), then the rests.
    let mut wire = header(5, a.len());
    wire.extend_from_slice(&a[..128]);
    wire.extend(header(6, b.len()));
    wire.extend_from_slice(&b[..128]);
    for (csid, msg) in [(5u8, &a), (6u8, &b)] {
        for chunk in msg[128..].chunks(128) {
            wire.push(0xC0 | csid);
            wire.extend_from_slice(chunk);
        }
    }
    c.send_raw(&wire).unwrap();
    let ra = c.wait_reply(10.0).unwrap();
    assert!(
        matches!(ra, Reply::Result(_)),
        "createStream answered {ra:?}"
    );
    let rb = c.wait_reply(11.0).unwrap();
    assert_eq!(rb.error_code(), Some(code::CALL_NO_URI));
    // Abort (§5.4.2) of a half-sent message, then the connection goes on.
    let mut half = header(7, b.len());
    half.extend_from_slice(&b[..128]);
    c.send_raw(&half).unwrap();
    c.send_message(2, 0, type_id::ABORT, 0, &7u32.to_be_bytes())
        .unwrap();
    assert!(c.call("register", vec![]).unwrap().value().is_some());
}
