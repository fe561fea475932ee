//! sono's HTTP side against real clients: ffmpeg publishing over `rtmpt://`
//! and `rtmps://`, the RTMPT endpoints under bad input, the REST API's
//! authorisation, a call placed and followed over REST, and an ffmpeg
//! publisher (which cannot call methods) taking a call placed over REST.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sono_rtmp::ObjectEncoding;
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::http::{self, EventStream};
use sono_testkit::rtmpt::TunnelClient;
use sono_testkit::{free_port, require_tool, wait_with_output_or_kill, Baresip, FlashClient, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const ADMIN: &str = "admin-key-for-the-tests-0123456789";
const WAIT: Duration = Duration::from_secs(10);

fn start(extra: &str) -> Sono {
    Sono::start(
        SONO,
        &format!("[http]\nadmin_key = \"{ADMIN}\"\n[media]\nrtp_port_min = 32000\nrtp_port_max = 32999\n{extra}"),
    )
}

/// ffmpeg publishing a chord (440 and 660 Hz) as Speex wideband to `url`, in
/// real time, for `seconds`. A chord, not one sine: a call joins the stream
/// mid-way, and libspeex's decoder joining a lone pure sine mid-stream can
/// diverge (docs/media.md, "Known limits"); speech and chords do not.
fn ffmpeg_publish(url: &str, seconds: u32) -> Child {
    require_tool("ffmpeg", "ffmpeg");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=16000:duration={seconds}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=660:sample_rate=16000:duration={seconds}"
        ))
        .args(["-filter_complex", "amix=inputs=2"])
        .args([
            "-ar", "16000", "-ac", "1", "-c:a", "libspeex", "-f", "flv", url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ffmpeg")
}

/// Waits for a child to exit by itself, or kills it by PID after `timeout`.
fn finish(child: Child, timeout: Duration) -> (bool, String) {
    let done = wait_with_output_or_kill(child, timeout);
    match done.status {
        Some(_) => (done.success(), done.stderr),
        None => (false, "ffmpeg did not finish in time".into()),
    }
}

fn speex_messages(sono: &Sono) -> f64 {
    sono.metric("sono_rtmp_audio_messages_received_total{codec=\"speex\"}")
}

#[test]
fn ffmpeg_publishes_speex_over_rtmpt() {
    let sono = start("");
    let url = format!("rtmpt://{}/phone/tunnelled", sono.http);
    let (ok, err) = finish(ffmpeg_publish(&url, 3), Duration::from_secs(30));
    assert!(ok, "ffmpeg over RTMPT failed: {err}\n{}", sono.log());
    // 3 s at 20 ms per packet.
    let n = speex_messages(&sono);
    assert!(
        n >= 140.0,
        "only {n} Speex messages arrived\n{}",
        sono.log()
    );
    assert!(sono.log().contains("transport=Rtmpt"), "{}", sono.log());
    assert!(
        sono.wait_log("RTMP connection closed", WAIT),
        "{}",
        sono.log()
    );
    // The session is gone with the connection.
    let deadline = Instant::now() + WAIT;
    while sono.metric("sono_rtmpt_sessions") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sono.metric("sono_rtmpt_sessions"), 0.0);
}

/// A self-signed certificate for 127.0.0.1 made by openssl.
fn test_certificate(dir: &Path) -> (String, String) {
    require_tool("openssl", "openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// ffmpeg publishes 3 s of Speex to `rtmps://ADDRESS/phone/secure`: it
/// succeeds, and sono counts the messages of an RTMPS connection.
fn ffmpeg_publishes_3_s_over_rtmps(sono: &Sono, address: &str, context: &str) {
    let url = format!("rtmps://{address}/phone/secure");
    let (ok, err) = finish(ffmpeg_publish(&url, 3), Duration::from_secs(30));
    assert!(
        ok,
        "ffmpeg over RTMPS failed: {err}\n{}\n{context}",
        sono.log()
    );
    let n = speex_messages(sono);
    assert!(
        n >= 140.0,
        "only {n} Speex messages arrived\n{}",
        sono.log()
    );
    assert!(sono.log().contains("transport=Rtmps"), "{}", sono.log());
}

#[test]
fn ffmpeg_publishes_speex_over_rtmps_with_a_test_certificate() {
    let dir = AudioDir::new("rtmps");
    let (cert, key) = test_certificate(&dir.file(""));
    let port = free_port();
    let sono = start(&format!(
        "[rtmps]\nlisten = \"127.0.0.1:{port}\"\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\n"
    ));
    ffmpeg_publishes_3_s_over_rtmps(&sono, &format!("127.0.0.1:{port}"), "");

    // Plain RTMP on the TLS port is a failed handshake, logged, and harmless.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut c, &[3; 1537]).unwrap();
    assert!(
        sono.wait_log("TLS handshake failed", WAIT),
        "{}",
        sono.log()
    );
    assert!(sono.get("/healthz").is_some());
}

/// RTMPS behind HAProxy (TCP, `send-proxy-v2`): the PROXY header comes
/// before the TLS handshake, and the session behind it is whole.
#[test]
fn ffmpeg_publishes_over_rtmps_through_haproxy_with_the_proxy_protocol() {
    let dir = AudioDir::new("rtmps-proxied");
    let (cert, key) = test_certificate(&dir.file(""));
    let port = free_port();
    let sono = start(&format!(
        "[rtmps]\nlisten = \"127.0.0.1:{port}\"\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\n\
         [cluster]\ntrusted_proxies = [\"127.0.0.1/32\"]\nproxy_protocol = true\n"
    ));
    let haproxy = sono_testkit::Haproxy::start(&format!(
        "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         frontend rtmps\n  bind 127.0.0.1:@PORT@\n  default_backend sono\n\
         backend sono\n  server s1 127.0.0.1:{port} send-proxy-v2\n"
    ));
    ffmpeg_publishes_3_s_over_rtmps(&sono, &haproxy.addr.to_string(), &haproxy.log());
    // Straight to the TLS port, without the header: dropped, and said why.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut c, &[0x16; 64]).unwrap();
    assert!(
        sono.wait_log("bad PROXY protocol header", WAIT),
        "{}",
        sono.log()
    );
}

#[test]
fn rtmpt_refuses_bad_sequence_numbers_unknown_sessions_and_oversized_bodies() {
    let sono = start("[rtmpt]\nmax_body = 4096\n");
    let mut c = FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf0).unwrap();
    let session = c.tunnel().unwrap().session.clone();
    assert_eq!(session.len(), 32, "{session}");

    // A replayed sequence number: 400, and the stream is not corrupted.
    let t = c.tunnel().unwrap();
    let replay = t.raw("idle", 1, b"\0").unwrap();
    assert_eq!(replay.status, 400, "{}", replay.text());
    assert!(replay.text().contains("sequence"), "{}", replay.text());
    let zero = t.raw("send", 0, &[0xff; 16]).unwrap();
    assert_eq!(zero.status, 400, "{}", zero.text());
    let reply = c.call("register", vec![]).unwrap();
    assert!(reply.value().is_some(), "{reply:?}");

    // Malformed paths, an unknown session, a body over rtmpt.max_body.
    for (path, status) in [
        ("/send/zz_zz/9", 400),
        // A node-prefixed id no node of this (lone) sono handed out.
        ("/send/zz-zz/9", 404),
        ("/send/abc/notanumber", 400),
        ("/open/2", 400),
        ("/idle/0123456789abcdef0123456789abcdef/99", 404),
    ] {
        let r = http::request(sono.http, "POST", path, &[], b"\0").unwrap();
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
    let big = http::request(
        sono.http,
        "POST",
        &format!("/send/{session}/1000"),
        &[],
        &vec![0u8; 5000],
    )
    .unwrap();
    assert_eq!(big.status, 413);
    // None of it touched the session.
    let reply = c.call("register", vec![]).unwrap();
    assert!(reply.value().is_some(), "{reply:?}");

    // /close ends it; the id is dead afterwards.
    c.tunnel().unwrap().close().unwrap();
    assert!(sono.wait_log("RTMP connection closed", WAIT));
    let after = http::request(
        sono.http,
        "POST",
        &format!("/idle/{session}/5000"),
        &[],
        b"\0",
    )
    .unwrap();
    assert_eq!(after.status, 404);
}

#[test]
fn rtmpt_sessions_expire_and_are_limited_per_address() {
    let sono = start("[rtmpt]\nsession_timeout = \"1s\"\nmax_sessions_per_address = 3\n");
    let open: Vec<TunnelClient> = (0..3)
        .map(|_| TunnelClient::open(sono.http).unwrap())
        .collect();
    let fourth = http::request(sono.http, "POST", "/open/1", &[], b"\0").unwrap();
    assert_eq!(fourth.status, 429, "{}", fourth.text());
    assert_eq!(sono.metric("sono_rtmpt_sessions"), 3.0);
    // Nobody polls: all expire, and their slots come back.
    assert!(sono.wait_log("RTMPT session expired", Duration::from_secs(5)));
    let deadline = Instant::now() + WAIT;
    while sono.metric("sono_rtmpt_sessions") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sono.metric("sono_rtmpt_sessions"), 0.0);
    for mut t in open {
        assert!(
            t.write_all(&[3]).is_err(),
            "an expired session still answers"
        );
    }
    assert!(TunnelClient::open(sono.http).is_ok());
}

/// Seeded random RTMPT requests (paths, verbs, sequence numbers, bodies):
/// sono never answers 5xx to them, and a live session beside them goes on.
#[test]
fn random_rtmpt_requests_never_get_a_server_error_nor_disturb_a_session() {
    let sono = start("[rtmpt]\nmax_body = 8192\n");
    let mut c = FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf0).unwrap();
    let session = c.tunnel().unwrap().session.clone();
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let verbs = ["open", "send", "idle", "close", "fcs", "opn", ""];
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        let verb = verbs[(next() % verbs.len() as u64) as usize];
        let id = match next() % 4 {
            0 => "0".repeat(32),
            1 => format!("{:x}", next()),
            2 => "%00/..".to_owned(),
            _ => "a".repeat((next() % 100) as usize),
        };
        let seq = match next() % 3 {
            0 => (next() % 10).to_string(),
            1 => "-1".to_owned(),
            _ => "99999999999999999999999".to_owned(),
        };
        let path = format!("/{verb}/{id}/{seq}");
        let body: Vec<u8> = (0..(next() % 10_000)).map(|_| next() as u8).collect();
        let r = http::request(sono.http, "POST", &path, &[], &body).unwrap();
        assert!(
            r.status < 500,
            "request {i} {path}: {} {}",
            r.status,
            r.text()
        );
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    eprintln!("RTMPT random requests by status: {statuses:?}");
    assert!(statuses.len() >= 3, "{statuses:?}");
    // Random opens made sessions; our session is still ours and works.
    assert_eq!(c.tunnel().unwrap().session, session);
    let reply = c.call("register", vec![]).unwrap();
    assert!(reply.value().is_some(), "{reply:?}");
}

fn get(sono: &Sono, path: &str, token: &str) -> http::Response {
    http::get(sono.http, path, token).unwrap()
}

#[test]
fn a_token_controls_its_own_connection_only() {
    let sono = start("");
    let mut a = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let mut b = FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf0).unwrap();
    let (ta, tb) = (a.token(), b.token());
    let (ia, ib) = (a.connection_id(), b.connection_id());
    assert_eq!(
        ta.len(),
        32,
        "connect's result carries a token: {:?}",
        a.connect_info
    );
    assert_ne!(ta, tb);

    // Its own connection: state and control.
    let state = get(&sono, &format!("/api/v1/connections/{ia}"), &ta);
    assert_eq!(state.status, 200, "{}", state.text());
    assert_eq!(state.json()["transport"], "rtmp");
    let state_b = get(&sono, &format!("/api/v1/connections/{ib}"), &tb);
    assert_eq!(state_b.json()["transport"], "rtmpt");
    let who = get(&sono, "/api/v1/token", &ta);
    assert_eq!(who.json(), json!({"admin": false, "connection_id": ia}));
    let reg = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{ia}/register"),
        &ta,
        &json!({}),
    )
    .unwrap();
    assert_eq!(reg.status, 200, "{}", reg.text());
    let uri = reg.json()["result"]["uri"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(uri.starts_with("sip:sono-"), "{}", reg.text());
    assert_eq!(reg.json()["result"]["token"], ta.as_str());
    // The Flash client saw the same registration event.
    a.wait_event("Sono.Registration.Status", WAIT).unwrap();

    // Another connection's token: refused, and nothing happens to it.
    for (method, path) in [
        ("GET", format!("/api/v1/connections/{ib}")),
        ("POST", format!("/api/v1/connections/{ib}/hangup")),
        ("GET", format!("/api/v1/connections/{ib}/events")),
    ] {
        let r = http::request(
            sono.http,
            method,
            &path,
            &[("Authorization", &format!("Bearer {ta}"))],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.error_code().as_deref(), Some("invalid_token"));
    }
    // No token, a wrong token, an admin-only list.
    let none = http::request(
        sono.http,
        "GET",
        &format!("/api/v1/connections/{ia}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(none.status, 401);
    assert_eq!(none.error_code().as_deref(), Some("missing_token"));
    assert!(none.header("www-authenticate").is_some());
    let wrong = get(&sono, &format!("/api/v1/connections/{ia}"), &"0".repeat(32));
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.error_code().as_deref(), Some("invalid_token"));
    let list = get(&sono, "/api/v1/connections", &ta);
    assert_eq!(list.status, 403);
    assert_eq!(list.error_code().as_deref(), Some("admin_only"));

    // The admin key sees and controls everything.
    let all = get(&sono, "/api/v1/connections", ADMIN);
    assert_eq!(all.status, 200, "{}", all.text());
    let ids: Vec<u64> = all.json()["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![ia, ib]);
    let hang = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{ib}/hangup"),
        ADMIN,
        &json!({}),
    )
    .unwrap();
    assert_eq!(hang.status, 409, "{}", hang.text());
    assert_eq!(hang.error_code().as_deref(), Some("Sono.Call.NoCall"));

    // A closed connection: its token says so; the admin gets not found.
    drop(a);
    let deadline = Instant::now() + WAIT;
    let mut gone = get(&sono, &format!("/api/v1/connections/{ia}"), &ta);
    while gone.status == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        gone = get(&sono, &format!("/api/v1/connections/{ia}"), &ta);
    }
    assert_eq!(gone.status, 410, "{}", gone.text());
    assert_eq!(gone.error_code().as_deref(), Some("connection_closed"));
    let admin_gone = get(&sono, &format!("/api/v1/connections/{ia}"), ADMIN);
    assert_eq!(admin_gone.status, 404);
    assert_eq!(
        admin_gone.error_code().as_deref(),
        Some("connection_not_found")
    );
    // Bad bodies get JSON errors, not 5xx.
    let bad = http::request(
        sono.http,
        "POST",
        &format!("/api/v1/connections/{ib}/dial"),
        &[
            ("Authorization", &format!("Bearer {tb}")),
            ("Content-Type", "application/json"),
        ],
        b"{\"uri\": 5",
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.error_code().as_deref(), Some("invalid_request"));
    // API bodies are small: over 16 KiB is refused before any parsing.
    let huge = format!("{{\"uri\": \"sip:{}@127.0.0.1\"}}", "1".repeat(20_000));
    let over = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{ib}/dial"),
        &tb,
        &serde_json::from_str(&huge).unwrap(),
    )
    .unwrap();
    assert_eq!(over.status, 413, "{}", over.text());
    b.pump(Duration::from_millis(100)).unwrap();
}

#[test]
fn a_call_placed_and_ended_over_rest_is_followed_by_its_events() {
    let dir = AudioDir::new("rest-call");
    let tone = dir.file("peer.wav");
    audio::tone_wav(&tone, 16_000, 30, 600);
    let peer = Baresip::start(&tone, (33000, 33999), Duration::from_secs(60));
    let sono = start("");
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let (id, token) = (c.connection_id(), c.token());
    let mut events = EventStream::open(
        sono.http,
        &format!("/api/v1/connections/{id}/events"),
        &token,
    )
    .unwrap();
    assert_eq!(events.status, 200);
    let first = events
        .wait_for("Sono.Connection.State", WAIT)
        .expect("the stream opens with the state");
    assert_eq!(first.data["id"], id);

    // Forbidden by the dial plan: a clear error at once, nothing sent.
    let forbidden = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/dial"),
        &token,
        &json!({"uri": "sip:1000@198.51.100.7"}),
    )
    .unwrap();
    assert_eq!(forbidden.status, 403, "{}", forbidden.text());
    assert_eq!(
        forbidden.error_code().as_deref(),
        Some("Sono.Call.Forbidden")
    );

    let dial = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/dial"),
        &token,
        &json!({"uri": peer.uri()}),
    )
    .unwrap();
    assert_eq!(dial.status, 202, "{}", dial.text());
    let media = events.wait_call_status(4, WAIT);
    assert!(media.is_some(), "{:?}\n{}", events.events, sono.log());
    assert!(
        events.wait_call_status(1, WAIT).is_some(),
        "{:?}",
        events.events
    );
    // The Flash client got the same events, and the state shows the call.
    assert!(c.wait_call_status(4, WAIT));
    let state = get(&sono, &format!("/api/v1/connections/{id}"), &token).json();
    assert_eq!(state["call"]["direction"], "outbound");
    assert_eq!(state["call"]["status"], 4);
    let calls = get(&sono, "/api/v1/calls", ADMIN).json();
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(1), "{calls}");
    assert_eq!(sono.metric("sono_calls{state=\"media\"}"), 1.0);
    assert_eq!(sono.metric("sono_calls{state=\"in_progress\"}"), 0.0);
    // Each 20 ms frame down is timed: a second of call adds about 50.
    let timed = || sono.metric("sono_transcode_seconds_count{direction=\"down\"}");
    let before = timed();
    std::thread::sleep(Duration::from_secs(1));
    let frames = timed() - before;
    assert!(
        (40.0..=60.0).contains(&frames),
        "{frames} frames timed down in 1 s"
    );

    let dtmf = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/dtmf"),
        &token,
        &json!({"digits": "42"}),
    )
    .unwrap();
    assert_eq!(dtmf.status, 200, "{}", dtmf.text());
    assert!(peer.wait_log("received event: '4'", WAIT), "{}", peer.log());

    let hangup = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/hangup"),
        &token,
        &json!({}),
    )
    .unwrap();
    assert_eq!(hangup.status, 200, "{}", hangup.text());
    assert!(
        events.wait_call_status(0, WAIT).is_some(),
        "{:?}",
        events.events
    );
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    assert_eq!(sono.metric("sono_calls{state=\"media\"}"), 0.0);
    // The stream ends with the connection.
    drop(c);
    assert!(
        events.wait_for("Sono.Connection.Closed", WAIT).is_some(),
        "{:?}",
        events.events
    );
}

/// The tones' share of one window, in dB: each tone's sine and cosine are
/// projected out in turn (a 100 ms window holds whole periods of each, so the
/// projections are orthogonal) and what is left is the noise.
fn tones_snr_db(window: &[i16], tones: &[f64]) -> f64 {
    let mut rest: Vec<f64> = window.iter().map(|&x| f64::from(x)).collect();
    let total: f64 = rest.iter().map(|x| x * x).sum();
    let n = rest.len() as f64;
    for &hz in tones {
        let w = 2.0 * std::f64::consts::PI * hz / 16_000.0;
        let (mut a, mut b) = (0.0, 0.0);
        for (i, x) in rest.iter().enumerate() {
            a += x * (w * i as f64).sin();
            b += x * (w * i as f64).cos();
        }
        let (a, b) = (2.0 * a / n, 2.0 * b / n);
        for (i, x) in rest.iter_mut().enumerate() {
            *x -= a * (w * i as f64).sin() + b * (w * i as f64).cos();
        }
    }
    let noise: f64 = rest.iter().map(|x| x * x).sum();
    10.0 * ((total - noise).max(1e-9) / noise.max(1e-9)).log10()
}

/// The median SNR of the tones over the 100 ms windows (at 16 kHz) that carry
/// sound, and how many seconds carry it. Windows, not one fit over the whole
/// file: a jitter buffer's catch-up shifts the tones' phase between them.
fn tone_windows(samples: &[i16], tones: &[f64]) -> (f64, f64) {
    let mut snrs: Vec<f64> = samples
        .chunks_exact(1600)
        .filter(|w| w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 1600.0 > 1.0e4)
        .map(|w| tones_snr_db(w, tones))
        .collect();
    if snrs.is_empty() {
        return (f64::NEG_INFINITY, 0.0);
    }
    snrs.sort_by(f64::total_cmp);
    (snrs[snrs.len() / 2], snrs.len() as f64 * 0.1)
}

#[test]
fn an_ffmpeg_publisher_takes_a_call_placed_over_rest() {
    let dir = AudioDir::new("ffmpeg-show");
    let tone = dir.file("peer.wav");
    // baresip's file source wants its pipeline's rate.
    audio::tone_wav(&tone, 8000, 30, 600);
    // PCMU: baresip's G.722 decoder diverges on a steady tone from ours
    // (speech is fine); see docs/media.md, "Known limits".
    let peer = Baresip::start_with(
        &tone,
        (34000, 34999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
    );
    let sono = start("");
    // The page makes a key, the show's ffmpeg publishes under it, and plays
    // it back on a second connection to hear the caller.
    let key = "show-caller-0123456789abcdefXYZ";
    let up = ffmpeg_publish(&format!("rtmp://{}/phone/{key}", sono.rtmp), 25);
    let deadline = Instant::now() + WAIT;
    let mut who = get(&sono, "/api/v1/token", key);
    while who.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        who = get(&sono, "/api/v1/token", key);
    }
    assert_eq!(who.status, 200, "{}\n{}", who.text(), sono.log());
    let id = who.json()["connection_id"].as_u64().unwrap();
    let state = get(&sono, &format!("/api/v1/connections/{id}"), key).json();
    assert_eq!(state["stream_key"], "(set)", "{state}");
    let heard = dir.file("ffmpeg-heard.wav");
    let down = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-rw_timeout",
            "20000000",
        ])
        .args(["-rtmp_live", "live", "-i"])
        .arg(format!("rtmp://{}/phone/{key}", sono.rtmp))
        .args(["-t", "8", "-ar", "16000", "-ac", "1"])
        .arg(&heard)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ffmpeg");
    assert!(
        sono.wait_log("plays the call audio", WAIT),
        "{}",
        sono.log()
    );

    let dial = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/dial"),
        key,
        &json!({"uri": peer.uri()}),
    )
    .unwrap();
    assert_eq!(dial.status, 202, "{}", dial.text());
    let (ok, err) = finish(down, Duration::from_secs(40));
    assert!(ok, "ffmpeg playing the call failed: {err}\n{}", sono.log());
    http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/hangup"),
        key,
        &json!({}),
    )
    .unwrap();
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let _ = finish(up, Duration::from_secs(1));
    // Every message up and every frame down was timed.
    for direction in ["up", "down"] {
        let n = sono.metric(&format!(
            "sono_transcode_seconds_count{{direction=\"{direction}\"}}"
        ));
        assert!(n > 300.0, "{n} frames timed {direction}");
    }

    // The caller's tone reached the show, and the show's tone the caller.
    let show_heard = audio::samples(&heard, 16_000);
    assert!(
        show_heard.len() > 16_000 * 3,
        "{} samples",
        show_heard.len()
    );
    let (snr_down, tone_down) = tone_windows(&show_heard, &[600.0]);
    let peer_heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let kept = dir.file("caller-heard.wav");
    std::fs::copy(&peer_heard, &kept).expect("keeping the caller's recording");
    let caller_heard = audio::samples(&kept, 16_000);
    let (snr_up, tone_up) = tone_windows(&caller_heard, &[440.0, 660.0]);
    eprintln!(
        "ffmpeg show: tone SNR down {snr_down:.1} dB over {tone_down:.1} s, up {snr_up:.1} dB over {tone_up:.1} s"
    );
    assert!(
        tone_down > 3.0 && tone_up > 3.0,
        "too little audio: {tone_down:.1} s down, {tone_up:.1} s up"
    );
    assert!(
        snr_down > 10.0,
        "the show heard {snr_down:.1} dB of the caller's tone"
    );
    let rtp: Vec<_> = sono
        .metrics()
        .into_iter()
        .filter(|(k, _)| k.contains("rtp") || k.contains("audio"))
        .collect();
    assert!(
        snr_up > 10.0,
        "the caller heard {snr_up:.1} dB of the show's chord; {rtp:?}\n{}",
        sono.log()
    );
}

/// HEAD answers what GET answers, without the body; another method gets 405
/// with `Allow`, not 404; a token in the URL (`?access_token=`) counts only
/// on the event streams, where EventSource leaves no other way — on any
/// other endpoint it is refused, since URLs end up in access logs. curl, a
/// third-party client, agrees on HEAD.
#[test]
fn head_and_other_methods_and_tokens_in_urls() {
    let sono = start("");
    for path in ["/", "/sono.js", "/healthz", "/metrics", "/sono.d.ts"] {
        let get = http::request(sono.http, "GET", path, &[], b"").unwrap();
        let head = http::request(sono.http, "HEAD", path, &[], b"").unwrap();
        assert_eq!((get.status, head.status), (200, 200), "{path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert!(head.body.is_empty(), "{path}");
        for method in ["PUT", "DELETE", "POST"] {
            let r = http::request(sono.http, method, path, &[], b"x").unwrap();
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
    let r = http::request(sono.http, "GET", "/open/1", &[], b"").unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    require_tool("curl", "curl");
    let url = format!("http://{}/sono.js", sono.http);
    let out = Command::new("curl")
        .args(["-sS", "-I", "--max-time", "5", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length:"),
        "{text}"
    );

    // A connection's token in the URL: refused by the API, taken by its events.
    let c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let (id, token) = (c.connection_id(), c.token());
    for path in [
        format!("/api/v1/connections/{id}?access_token={token}"),
        format!("/api/v1/connections?access_token={ADMIN}"),
        format!("/api/v1/calls?access_token={ADMIN}"),
    ] {
        let r = http::request(sono.http, "GET", &path, &[], b"").unwrap();
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert!(
            r.text().contains("only by the event streams"),
            "{}",
            r.text()
        );
    }
    let r = http::request(
        sono.http,
        "POST",
        &format!("/api/v1/connections/{id}/hangup?access_token={token}"),
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let mut events = EventStream::open(
        sono.http,
        &format!("/api/v1/connections/{id}/events?access_token={token}"),
        "",
    )
    .unwrap();
    assert_eq!(events.status, 200);
    assert!(events.wait_for("Sono.Connection.State", WAIT).is_some());
    drop(events);
    let r = get(&sono, &format!("/api/v1/connections/{id}"), &token);
    assert_eq!(r.status, 200, "the header still works: {}", r.text());
}
