//! Bad input on the WebRTC path: offers that are not SDP, too big, without
//! audio or without Opus, the wrong content type; garbage at a session's
//! UDP port (STUN, DTLS and RTP lookalikes, random bytes); another
//! session's token; too many sessions from one address. Each gets a clear
//! HTTP error or is dropped and counted; nothing panics, and other sessions
//! and connections carry on.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sono_rtmp::ObjectEncoding;
use sono_testkit::http::{self, Response};
use sono_testkit::{FlashClient, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

/// An offer as a browser makes it: BUNDLE, ICE credentials, a DTLS
/// fingerprint, and one m-line with its own attributes (`media`: the m=
/// line; `attributes`: its a= lines).
fn browser_offer(media: &str, attributes: &str) -> String {
    let fingerprint = (0..32)
        .map(|i| format!("{:02X}", i * 7 % 256))
        .collect::<Vec<_>>()
        .join(":");
    format!(
        "v=0\r\n\
         o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
         s=-\r\n\
         t=0 0\r\n\
         a=group:BUNDLE 0\r\n\
         a=msid-semantic: WMS\r\n\
         {media}\
         c=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:Abcd\r\n\
         a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\n\
         a=setup:actpass\r\n\
         a=mid:0\r\n\
         a=sendrecv\r\n\
         a=rtcp-mux\r\n\
         {attributes}"
    )
}

fn audio_offer() -> String {
    browser_offer(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\n",
        "a=rtpmap:111 opus/48000/2\r\n\
         a=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:126 telephone-event/48000\r\n\
         a=ssrc:1111 cname:page\r\n",
    )
}

fn post_offer(sono: &Sono, content_type: &str, body: &[u8]) -> Response {
    http::request(
        sono.http,
        "POST",
        "/api/v1/webrtc",
        &[("Content-Type", content_type)],
        body,
    )
    .expect("the HTTP side answers")
}

fn start() -> Sono {
    Sono::start(
        SONO,
        "[webrtc]\nport_min = 38000\nport_max = 38999\nmax_sessions_per_address = 3\n",
    )
}

/// The UDP address the answer's host candidate names.
fn candidate(answer: &str) -> SocketAddr {
    let line = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .unwrap_or_else(|| panic!("no candidate in {answer}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    format!("{}:{}", f[4], f[5]).parse().expect("an address")
}

#[test]
fn offers_that_cannot_be_answered_get_clear_errors() {
    let sono = start();
    let good = post_offer(&sono, "application/sdp", audio_offer().as_bytes());
    assert_eq!(good.status, 201, "{}", good.text());
    assert!(good.text().contains("opus/48000"), "{}", good.text());
    assert!(good
        .header("location")
        .is_some_and(|l| l.starts_with("/api/v1/webrtc/")));
    assert!(good.header("sono-token").is_some_and(|t| t.len() == 32));

    for (name, content_type, body, status, code) in [
        (
            "not SDP",
            "application/sdp",
            b"hello there".to_vec(),
            400,
            "invalid_offer",
        ),
        (
            "binary",
            "application/sdp",
            vec![0xff, 0xfe, 0x00, 0x01],
            400,
            "invalid_offer",
        ),
        (
            "JSON instead of SDP",
            "application/json",
            br#"{"sdp":"v=0"}"#.to_vec(),
            415,
            "invalid_request",
        ),
        (
            "no audio, a data channel only",
            "application/sdp",
            browser_offer(
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
                "a=sctp-port:5000\r\n",
            )
            .into_bytes(),
            400,
            "invalid_offer",
        ),
        (
            "audio in a codec sono does not speak (G.729)",
            "application/sdp",
            browser_offer(
                "m=audio 9 UDP/TLS/RTP/SAVPF 18\r\n",
                "a=rtpmap:18 G729/8000\r\n",
            )
            .into_bytes(),
            400,
            "invalid_offer",
        ),
        (
            "huge",
            "application/sdp",
            format!("{}{}", audio_offer(), "a=x-padding:yyyy\r\n".repeat(2000)).into_bytes(),
            413,
            "invalid_offer",
        ),
    ] {
        let r = post_offer(&sono, content_type, &body);
        assert_eq!(r.status, status, "{name}: {}", r.text());
        assert_eq!(
            r.error_code().as_deref(),
            Some(code),
            "{name}: {}",
            r.text()
        );
    }
    // GET is not how an offer is made.
    let r = http::get(sono.http, "/api/v1/webrtc", "").unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // Still serving, and the good session is still there.
    assert_eq!(http::get(sono.http, "/healthz", "").unwrap().status, 200);
    assert!(sono.metric("sono_webrtc_sessions") >= 1.0);
}

#[test]
fn a_session_is_ended_only_with_its_own_token() {
    let sono = start();
    let a = post_offer(&sono, "application/sdp", audio_offer().as_bytes());
    let b = post_offer(&sono, "application/sdp", audio_offer().as_bytes());
    assert_eq!((a.status, b.status), (201, 201));
    let a_location = a.header("location").unwrap().to_owned();
    let b_token = b.header("sono-token").unwrap().to_owned();
    let a_token = a.header("sono-token").unwrap().to_owned();
    let delete = |location: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http::request(sono.http, "DELETE", location, &headers, b"").unwrap()
    };
    // A second offer with the session's own token while its peer
    // connection is there: the next comes only once this one has gone.
    let again = http::request(
        sono.http,
        "POST",
        "/api/v1/webrtc",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &format!("Bearer {a_token}")),
        ],
        audio_offer().as_bytes(),
    )
    .unwrap();
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.error_code().as_deref(), Some("media_attached"));
    let r = delete(&a_location, None);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = delete(&a_location, Some(&b_token));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("invalid_token"));
    // Its own token ends it; the token then says "closed".
    let r = delete(&a_location, Some(&a_token));
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(sono.wait_log(
        "the page ended the session (DELETE)",
        Duration::from_secs(5)
    ));
    let id = a_location.rsplit('/').next().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = http::get(sono.http, &format!("/api/v1/connections/{id}"), &a_token).unwrap();
        if r.status == 410 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The other session is untouched.
    let b_id = b.header("sono-connection-id").unwrap();
    let r = http::get(sono.http, &format!("/api/v1/connections/{b_id}"), &b_token).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["transport"], "webrtc");
}

#[test]
fn one_address_may_open_only_so_many_sessions() {
    let sono = start();
    let statuses: Vec<u16> = (0..4)
        .map(|_| post_offer(&sono, "application/sdp", audio_offer().as_bytes()).status)
        .collect();
    assert_eq!(statuses, vec![201, 201, 201, 429]);
    let r = post_offer(&sono, "application/sdp", audio_offer().as_bytes());
    assert_eq!(r.error_code().as_deref(), Some("too_many_sessions"));
    assert!(
        r.text().contains("webrtc.max_sessions_per_address"),
        "{}",
        r.text()
    );
}

#[test]
fn garbage_at_the_media_port_is_dropped_and_counted() {
    let sono = start();
    let answered = post_offer(&sono, "application/sdp", audio_offer().as_bytes());
    assert_eq!(answered.status, 201, "{}", answered.text());
    let target = candidate(&answered.text());
    // A Flash client's connection alongside, which must not notice.
    let mut flash = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x1234_5678_u32;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut sent = 0;
    for i in 0..600 {
        let len = 1 + random() as usize % 1200;
        let mut datagram: Vec<u8> = (0..len).map(|_| random() as u8).collect();
        match i % 4 {
            // STUN binding request with a bad MESSAGE-INTEGRITY (RFC 5389 §6).
            0 => {
                datagram.resize(len.max(20), 0);
                datagram[0..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x00]);
                datagram[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            // A DTLS 1.2 handshake record header (RFC 6347 §4.1).
            1 => datagram
                .splice(0..0, [0x16, 0xfe, 0xfd, 0, 0])
                .for_each(drop),
            // An RTP-looking packet (RFC 7983: first byte 128-191).
            2 => datagram[0] = 0x80,
            _ => {}
        }
        socket.send_to(&datagram, target).unwrap();
        sent += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http::get(sono.http, "/healthz", "").unwrap().status, 200);
    let dropped = sono.metric("sono_webrtc_datagrams_dropped_total");
    assert!(dropped > 0.0, "nothing counted of {sent} datagrams");
    // The session and the Flash client are both still there.
    let id = answered.header("sono-connection-id").unwrap();
    let token = answered.header("sono-token").unwrap();
    let r = http::get(sono.http, &format!("/api/v1/connections/{id}"), token).unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), sono.log());
    let result = flash.call("register", vec![]).unwrap();
    assert!(
        matches!(result, sono_testkit::Reply::Result(_)),
        "{result:?}"
    );
    assert!(!sono.log().contains("panicked"), "{}", sono.log());
}
