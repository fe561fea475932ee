//! Video calls against real peers: H.264 passed through between RTMP and
//! RTP (RFC 6184), both ways, checked frame by frame. ffmpeg publishes a
//! camera and microphone over RTMP and an ffmpeg RTP receiver, started
//! from the SDP sono offered, decodes what a SIPp-scripted phone was sent;
//! an ffmpeg RTP sender calls a test client through a SIPp-scripted call
//! and what the client received decodes; with 2 % loss on the way in the
//! client still gets only decodable pictures and sono asks for keyframes.
//! Every decoded frame's MD5 is compared with the source's: passthrough is
//! bit-exact, so each must be the source's frame, in order.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::audio::AudioDir;
use sono_testkit::video::{self, Clip, RtpRelay};
use sono_testkit::{http, require_tool, send_signal, wait_or_kill, wait_with_output_or_kill};
use sono_testkit::{write_flv_video, FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 40000\nrtp_port_max = 40999\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// An even loopback UDP port whose odd neighbour was free too (RTP and
/// RTCP for a receiver that binds both).
fn free_rtp_pair() -> u16 {
    for _ in 0..100 {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = rtp.local_addr().map(|a| a.port()).unwrap_or(1);
        if port.is_multiple_of(2) && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free even/odd UDP port pair on loopback");
}

/// A SIPp video phone answering one call: PCMU to `audio_port`, H.264 to
/// `video_port` (`tests/sipp/uas_video.xml`).
fn video_phone(audio_port: &str, video_port: u16) -> Sipp {
    Sipp::uas(
        &scenario("uas_video"),
        1,
        Duration::from_secs(60),
        &[
            "-key",
            "rtp_port",
            audio_port,
            "-key",
            "video_port",
            &video_port.to_string(),
        ],
    )
}

/// Polls `done` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// The token's connection, once ffmpeg's publishing made it.
fn connection_of(sono: &Sono, key: &str) -> u64 {
    let mut id = None;
    let found = wait_until(WAIT, || {
        let who = http::get(sono.http, "/api/v1/token", key).ok();
        id = who
            .filter(|w| w.status == 200)
            .and_then(|w| w.json()["connection_id"].as_u64());
        id.is_some()
    });
    assert!(found, "ffmpeg never published\n{}", sono.log());
    id.unwrap_or_default()
}

/// The m=video section of an SDP body, as an SDP of its own for an RTP
/// receiver on `port` (what sono offered, pointed at the receiver).
fn receiver_sdp(offer: &str, port: u16) -> String {
    let body = offer.split("\r\n\r\n").nth(1).unwrap_or(offer);
    let mut section: Vec<String> = body
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("m=video"))
        .take_while(|l| !l.is_empty())
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.starts_with("m="))
        .map(|(_, l)| l.to_owned())
        .collect();
    assert!(!section.is_empty(), "sono's offer has no video: {offer}");
    let m: Vec<&str> = section[0].split(' ').collect();
    section[0] = format!("m=video {port} {} {}", m[2], m[3..].join(" "));
    format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=sono video\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{}\r\n",
        section.join("\r\n")
    )
}

/// How the test client reaches sono.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Rtmp,
    Rtmpt,
    /// RTMP with an 8 KiB receive window that stops reading for 4 s once
    /// video flows.
    StallingRtmp,
}

/// A client registered with its implicit URI; the client and its SIP user.
fn registered_client(sono: &Sono, transport: Transport) -> (FlashClient, String) {
    let mut c = match transport {
        Transport::Rtmpt => {
            FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf3).unwrap()
        }
        Transport::Rtmp => FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap(),
        Transport::StallingRtmp => {
            FlashClient::connect_with_receive_buffer(sono.rtmp, "phone", ObjectEncoding::Amf3, 8192)
                .unwrap()
        }
    };
    let user = c.register_implicit().unwrap();
    assert!(user.starts_with("sono-"), "register answered {user:?}");
    (c, user)
}

fn ffmpeg(args: &[&str]) -> Child {
    require_tool("ffmpeg", "ffmpeg");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ffmpeg")
}

#[test]
fn ffmpeg_publishes_h264_and_speex_and_an_rtp_receiver_decodes_every_frame_sono_sent() {
    let dir = AudioDir::new("video-up");
    let clip = Clip::phone(10, (640, 360), 800);
    let src = dir.file("camera.flv");
    clip.flv_with_speex(&src);
    let source = video::decode(&src, &[]);
    assert_eq!(source.frames.len(), 300, "{}", source.errors);

    let audio_sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let audio_port = audio_sink.local_addr().unwrap().port().to_string();
    let recv_port = free_rtp_pair();
    let mut sipp = video_phone(&audio_port, recv_port);
    let sono = Sono::start(SONO, MEDIA);
    let key = "video-up-0123456789abcdefXYZ";
    let publisher = ffmpeg(&[
        "-re",
        "-i",
        &s(&src),
        "-c",
        "copy",
        "-f",
        "flv",
        &format!("rtmp://{}/phone/{key}", sono.rtmp),
    ]);
    let id = connection_of(&sono, key);
    // The sequence header is in before the dial: the offer carries it.
    assert!(
        wait_until(WAIT, || sono
            .metric("sono_rtmp_video_messages_received_total")
            > 0.0),
        "{}",
        sono.log()
    );
    let dial = http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/dial"),
        key,
        &json!({"uri": sipp.uri("bob")}),
    )
    .unwrap();
    assert_eq!(dial.status, 202, "{}", String::from_utf8_lossy(&dial.body));

    // The receiver starts from sono's offer while the phone rings.
    let mut invite = String::new();
    assert!(
        wait_until(WAIT, || {
            invite = sipp
                .received()
                .into_iter()
                .find(|m| m.starts_with("INVITE"))
                .unwrap_or_default();
            !invite.is_empty()
        }),
        "SIPp got no INVITE\n{}",
        sono.log()
    );
    assert!(invite.contains("sprop-parameter-sets="), "{invite}");
    assert!(invite.contains("profile-level-id=42c0"), "{invite}");
    let sdp = dir.file("receiver.sdp");
    std::fs::write(&sdp, receiver_sdp(&invite, recv_port)).unwrap();
    let received = dir.file("received.h264");
    let receiver = ffmpeg(&[
        "-protocol_whitelist",
        "file,udp,rtp",
        "-i",
        &s(&sdp),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        "h264",
        "-y",
        &s(&received),
    ]);

    let published = wait_with_output_or_kill(publisher, Duration::from_secs(40));
    assert!(
        published.success(),
        "ffmpeg publishing: {}",
        published.stderr
    );
    // Its leaving ends the connection, and the call with a BYE.
    sipp.assert_success(WAIT);
    std::thread::sleep(Duration::from_millis(500));
    send_signal(&receiver, "-INT");
    let receiver_done = wait_or_kill(receiver, Duration::from_secs(5));
    assert!(receiver_done.is_some(), "the RTP receiver did not stop");

    let got = video::decode(&received, &[]);
    let sent = sono.metric("sono_video_frames_total{direction=\"up\",outcome=\"sent\"}");
    assert!(
        got.errors.is_empty(),
        "decoding what arrived: {}",
        got.errors
    );
    let n = got.frames.len() as f64;
    assert!(
        sent >= 150.0 && n >= 0.98 * sent && n <= sent,
        "{n} frames decoded of {sent} sono sent\n{}",
        sono.log()
    );
    let at = video::contiguous_in(&got.frames, &source.frames).unwrap_or_else(|| {
        panic!(
            "the {} frames received are not the source's, in order\n{}",
            got.frames.len(),
            sono.log()
        )
    });
    eprintln!(
        "video up: {sent} frames sent, {n} decoded by ffmpeg's RTP receiver, identical (MD5) to source frames {at}..{}",
        at + got.frames.len()
    );
    let speex = sono.metric("sono_rtmp_audio_messages_received_total{codec=\"speex\"}");
    assert!(speex > 200.0, "{speex} Speex messages");
    assert!(sono.log().contains("video started"), "{}", sono.log());
}

/// The client's call from a SIPp video phone whose H.264 comes from an
/// ffmpeg RTP sender through `relay`; the client accepts and plays. The
/// client, once the call ended.
fn video_call_to_a_client(
    sono: &Sono,
    relay: &RtpRelay,
    ts: &Path,
    hold_ms: u32,
    phone: &str,
    transport: Transport,
) -> FlashClient {
    let (mut c, user) = registered_client(sono, transport);
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    let mut sipp = Sipp::uac(
        &scenario(phone),
        sono.sip,
        &user,
        Duration::from_secs(60),
        &[
            "-key",
            "video_port",
            &relay.port.to_string(),
            "-d",
            &hold_ms.to_string(),
        ],
    );
    assert!(
        c.wait_for(WAIT, |c| c
            .events
            .iter()
            .any(
                |e| e.get("code").and_then(AmfValue::as_str) == Some("Sono.Call.Incoming")
            )),
        "{}",
        sono.log()
    );
    let reply = c.call("accept", vec![]).unwrap();
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    assert!(c.wait_call_status(4, WAIT), "{:?}", c.call_statuses());
    let mut vport = None;
    assert!(
        wait_until(WAIT, || {
            vport = std::fs::read_to_string(sipp.file("vport.txt"))
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok());
            vport.is_some()
        }),
        "sono's answer named no video port\n{}",
        sipp.messages()
    );
    relay.set_target(SocketAddr::from((
        [127, 0, 0, 1],
        vport.unwrap_or_default(),
    )));
    let sender = ffmpeg(&[
        "-re",
        "-i",
        &s(ts),
        "-map",
        "0:v",
        "-c:v",
        "copy",
        "-f",
        "rtp",
        "-payload_type",
        "96",
        &format!("rtp://127.0.0.1:{}", relay.input),
    ]);
    if transport == Transport::StallingRtmp {
        let _ = c.pump(Duration::from_secs(2));
        std::thread::sleep(Duration::from_secs(4));
    }
    // Read (and so collect video) until the phone hangs up.
    assert!(
        c.wait_call_status(0, Duration::from_millis(u64::from(hold_ms)) + WAIT),
        "{:?}\n{}\n--- SIPp ---\n{}",
        c.call_statuses(),
        sono.log(),
        sipp.messages()
    );
    let sent = wait_with_output_or_kill(sender, WAIT);
    assert!(sent.success(), "ffmpeg's RTP sender: {}", sent.stderr);
    sipp.assert_success(WAIT);
    c
}

/// A client's call from a SIPp video phone (`phone`) whose H.264 is
/// `clip`, sent through `relay`, and what a test reads after it.
struct PhoneCall {
    dir: AudioDir,
    sono: Sono,
    client: FlashClient,
    /// The clip's frames, as ffmpeg decodes them.
    source: video::Decoded,
}

fn phone_calls_a_client(
    name: &str,
    clip: Clip,
    relay: &RtpRelay,
    hold_ms: u32,
    phone: &str,
    transport: Transport,
) -> PhoneCall {
    let dir = AudioDir::new(name);
    let ts = dir.file("phone.ts");
    clip.ts(&ts);
    let source = video::decode(&ts, &[]);
    let sono = Sono::start(SONO, &format!("{MEDIA}[video]\noffer = \"always\"\n"));
    let client = video_call_to_a_client(&sono, relay, &ts, hold_ms, phone, transport);
    PhoneCall {
        dir,
        sono,
        client,
        source,
    }
}

/// What the client received, as an FLV file, decoded.
/// What the client recorded, when it lost pictures on the way: every one
/// decodes with no error and is one of the source's, in order.
fn only_source_pictures(
    c: &FlashClient,
    dir: &AudioDir,
    source: &video::Decoded,
) -> video::Decoded {
    let (_, got) = recorded(c, dir);
    assert!(
        got.errors.is_empty(),
        "a broken picture reached the client: {}",
        got.errors
    );
    assert!(
        video::in_order_of(&got.frames, &source.frames),
        "a received frame is not one of the source's next ones"
    );
    got
}

fn recorded(c: &FlashClient, dir: &AudioDir) -> (PathBuf, video::Decoded) {
    let tags: Vec<(u32, Vec<u8>)> = c.video.iter().map(|(_, t, d)| (*t, d.clone())).collect();
    assert!(!tags.is_empty(), "the client received no video");
    assert_eq!(
        tags[0].1.get(..2),
        Some(&[0x17u8, 0][..]),
        "a sequence header first"
    );
    assert_eq!(tags[1].1[0], 0x17, "then a keyframe");
    let flv = dir.file("received.flv");
    write_flv_video(&flv, &tags).unwrap();
    let decoded = video::decode(&flv, &[]);
    (flv, decoded)
}

/// Frames ffprobe counts in `flv`.
fn ffprobe_frames(flv: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(flv)
        .output()
        .expect("running ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn an_rtp_h264_sender_calls_a_client_whose_recording_decodes_frame_for_frame() {
    let relay = RtpRelay::start(0, Duration::from_secs(60));
    let PhoneCall {
        dir,
        sono,
        source,
        client: c,
    } = phone_calls_a_client(
        "video-down",
        Clip::phone(6, (640, 360), 800),
        &relay,
        9000,
        "uac_video",
        Transport::Rtmp,
    );
    let (flv, got) = recorded(&c, &dir);
    assert!(
        got.errors.is_empty(),
        "decoding the client's recording: {}",
        got.errors
    );
    assert_eq!(ffprobe_frames(&flv), got.frames.len());
    let at = video::contiguous_in(&got.frames, &source.frames)
        .unwrap_or_else(|| panic!("the client's frames are not the source's, in order"));
    let n = got.frames.len();
    assert!(
        n as f64 >= 0.98 * 180.0,
        "{n} of 180 frames\n{}",
        sono.log()
    );
    eprintln!(
        "video down: {n} of 180 frames reached the client, identical (MD5) to source frames {at}..{}",
        at + n
    );
    // The timestamps follow the RTP clock: 30 frames a second.
    let span = c.video.last().map(|v| v.1).unwrap_or(0) - c.video[1].1;
    assert!(
        (5_800..=6_100).contains(&(span + 33)),
        "{span} ms for {n} frames"
    );
}

#[test]
fn video_reaches_an_rtmpt_client_frame_for_frame() {
    let relay = RtpRelay::start(0, Duration::from_secs(60));
    let PhoneCall {
        dir,
        source,
        client: c,
        ..
    } = phone_calls_a_client(
        "video-rtmpt",
        Clip::phone(3, (320, 240), 400),
        &relay,
        5000,
        "uac_video",
        Transport::Rtmpt,
    );
    let (_, got) = recorded(&c, &dir);
    assert!(got.errors.is_empty(), "{}", got.errors);
    let at = video::contiguous_in(&got.frames, &source.frames)
        .unwrap_or_else(|| panic!("the RTMPT client's frames are not the source's, in order"));
    assert!(got.frames.len() >= 88, "{} of 90 frames", got.frames.len());
    eprintln!(
        "video down over RTMPT: {} of 90 frames, source frames {at}..",
        got.frames.len()
    );
}

#[test]
fn a_client_that_stops_reading_loses_video_to_the_next_keyframe_only() {
    let relay = RtpRelay::start(0, Duration::from_secs(60));
    let PhoneCall {
        dir,
        sono,
        source,
        client: c,
    } = phone_calls_a_client(
        "video-stall",
        Clip::phone(8, (1280, 720), 3000),
        &relay,
        10_000,
        "uac_video",
        Transport::StallingRtmp,
    );
    let backlogged = sono.metric("sono_video_down_backlogged_total");
    assert!(
        backlogged > 0.0,
        "no video was held back from the stalled client\n{}",
        sono.log()
    );
    let got = only_source_pictures(&c, &dir, &source);
    let n = got.frames.len();
    assert!(
        n < source.frames.len() && n >= 90,
        "{n} of {} frames",
        source.frames.len()
    );
    let requests = relay
        .keyframe_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(requests > 0, "no keyframe asked for after the drop");
    // The connection was never closed: the call ended by the phone's BYE.
    assert!(c.call_statuses().iter().any(|(s, _, _)| *s == 4));
    eprintln!(
        "a client stalled 4 s: {backlogged} pictures held back, {n} of {} decodable frames received, {requests} PLIs",
        source.frames.len()
    );
}

#[test]
fn two_percent_loss_on_the_way_in_leaves_only_decodable_pictures_and_asks_for_keyframes() {
    let relay = RtpRelay::start(2, Duration::from_secs(60));
    let PhoneCall {
        dir,
        sono,
        source,
        client: c,
    } = phone_calls_a_client(
        "video-loss",
        Clip::phone(10, (640, 360), 600),
        &relay,
        12_000,
        "uac_video",
        Transport::Rtmp,
    );
    let dropped = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let forwarded = relay.forwarded.load(std::sync::atomic::Ordering::Relaxed);
    let requests = relay
        .keyframe_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > 0, "the relay dropped nothing");
    let got = only_source_pictures(&c, &dir, &source);
    assert!(got.frames.len() >= 30, "{} frames", got.frames.len());
    assert!(requests > 0, "no PLI reached the sender\n{}", sono.log());
    let counted = sono.metric("sono_video_keyframe_requests_total{direction=\"sent\"}");
    assert!(
        counted >= requests as f64,
        "{counted} counted, {requests} seen"
    );
    eprintln!(
        "2 % loss: {dropped} of {} packets dropped; {} of {} frames reached the client, all decodable; {requests} PLIs reached the sender",
        dropped + forwarded,
        got.frames.len(),
        source.frames.len()
    );
}

#[test]
fn a_phone_without_rtcp_feedback_is_asked_for_a_keyframe_with_sip_info() {
    let relay = RtpRelay::start_skipping(0, 12, Duration::from_secs(60));
    let PhoneCall { dir, client: c, .. } = phone_calls_a_client(
        "video-info",
        Clip::phone(3, (320, 240), 300),
        &relay,
        5000,
        "uac_video_info",
        Transport::Rtmp,
    );
    let requests = relay
        .keyframe_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        requests, 0,
        "RTCP feedback sent to a phone that never offered it"
    );
    let (_, got) = recorded(&c, &dir);
    assert!(got.errors.is_empty(), "{}", got.errors);
    assert!(got.frames.len() >= 30, "{} frames", got.frames.len());
}

/// The `onStatus` events of stream `stream` with `code`: their descriptions.
fn stream_notices(c: &FlashClient, stream: u32, code: &str) -> Vec<String> {
    c.stream_events
        .iter()
        .filter(|(s, e)| *s == stream && e.get("code").and_then(AmfValue::as_str) == Some(code))
        .map(|(_, e)| {
            e.get("description")
                .and_then(AmfValue::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// An RTP packet of H.264 payload type 96.
fn rtp(sequence: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(&(u32::from(sequence) * 3000).to_be_bytes());
    p.extend_from_slice(&0x5EED_u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn bad_video_both_ways_and_a_52_mbit_burst_are_dropped_and_counted_while_audio_keeps_its_pace() {
    // The phone's audio end records when each packet up arrives; its video
    // end counts what sono sends and is where bad RTP comes from.
    let silence: Vec<Vec<u8>> = (0..200).map(|_| vec![0xFF; 160]).collect();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    let audio_port = audio.local_addr().unwrap().port().to_string();
    let all_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let audio_peer = sono_testkit::rtp_peer::spawn_timed(
        audio,
        sono_testkit::rtp_peer::stream(&silence, 0, 160),
        Duration::from_secs(20),
        all_sent,
    );
    let video_end = UdpSocket::bind("127.0.0.1:0").unwrap();
    let video_port = video_end.local_addr().unwrap().port();
    let bad_sender = video_end.try_clone().unwrap();
    let sink_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = sink_stop.clone();
    let video_sink = std::thread::spawn(move || {
        let _ = video_end.set_read_timeout(Some(Duration::from_millis(20)));
        let end = Instant::now() + Duration::from_secs(30);
        let (mut bytes, mut buf) = (0usize, vec![0u8; 65_536]);
        while Instant::now() < end && !stop.load(std::sync::atomic::Ordering::Acquire) {
            if let Ok(n) = video_end.recv(&mut buf) {
                bytes += n;
            }
        }
        bytes
    });
    let mut sipp = video_phone(&audio_port, video_port);
    let sono = Sono::start(SONO, MEDIA);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    // Sorenson H.263 (Flash before 11): refused once, clearly.
    for t in [0, 40] {
        c.send_video(mic, t, &[0x22, 0, 0, 0x84, 0x12]).unwrap();
    }
    c.pump(Duration::from_millis(300)).unwrap();
    let sorenson = stream_notices(&c, mic, "NetStream.Video.Unsupported");
    assert_eq!(sorenson.len(), 1, "{sorenson:?}");
    assert!(sorenson[0].contains("Sorenson H.263"), "{sorenson:?}");
    // `dial(uri, {video: true})` offers video though no H.264 came yet
    // (SIPp checks the offer).
    c.send_call(
        "dial",
        vec![
            sipp.uri("bob").into(),
            AmfValue::object([("video", AmfValue::Boolean(true))]),
        ],
    )
    .unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let invite = sipp
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE"))
        .unwrap_or_default();
    let sono_video: u16 = invite
        .split("m=video ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=video in {invite}"));

    // Up: a truncated sequence header, NAL units past their message, then
    // a valid sequence header and 3 s of 130 kB keyframes every 20 ms
    // (52 Mbit/s) beside linear PCM.
    c.send_video(mic, 0, &[0x17, 0, 0, 0, 0, 1, 0x42]).unwrap();
    let header = [
        0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1F, 1, 0, 2,
        0x68, 0xCE,
    ];
    c.send_video(mic, 0, &header).unwrap();
    c.send_video(mic, 0, &[0x17, 1, 0, 0, 0, 0, 0, 0, 50, 0x65, 1, 2])
        .unwrap();
    let mut keyframe = vec![0x17, 1, 0, 0, 0];
    keyframe.extend_from_slice(&(130_000u32 - 9).to_be_bytes());
    keyframe.push(0x65);
    keyframe.extend((0..130_000 - 10).map(|i: u32| (i * 31 % 251) as u8));
    // Down: broken H.264 RTP from the phone's video port.
    for (i, bad) in [
        &[0x7C, 0x05, 1, 2, 3][..], // FU-A without its start
        &[0x78, 0, 200, 0x65, 1],   // STAP-A whose size overruns it
        &[0x79, 1, 2],              // STAP-B: not mode 1
        &[],                        // empty payload
    ]
    .iter()
    .enumerate()
    {
        bad_sender
            .send_to(&rtp(i as u16 * 2, bad), ("127.0.0.1", sono_video))
            .unwrap();
    }
    c.set_chunk_size(65_536).unwrap();
    let start = Instant::now();
    for i in 0..150u32 {
        let mut pcm = vec![0x3E];
        for n in 0..882u32 {
            let s = ((f64::from(i * 882 + n) * 0.06).sin() * 8000.0) as i16;
            pcm.extend_from_slice(&s.to_le_bytes());
        }
        c.send_audio(mic, 1000 + 20 * i, &pcm).unwrap();
        c.send_video(mic, 1000 + 20 * i, &keyframe).unwrap();
        let due = start + Duration::from_millis(20 * u64::from(i + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let sent_for = start.elapsed();
    let mbits = (keyframe.len() * 150) as f64 * 8.0 / sent_for.as_secs_f64() / 1e6;
    c.pump(Duration::from_millis(800)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    sipp.assert_success(WAIT);

    let received = audio_peer.join().unwrap();
    let (arrivals, longest) = sono_testkit::rtp_peer::arrival_pace(&received, 0, start);
    sink_stop.store(true, std::sync::atomic::Ordering::Release);
    let video_bytes = video_sink.join().unwrap();
    let m = sono.metrics();
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    let (sent, dropped) = (
        get("sono_video_frames_total{direction=\"up\",outcome=\"sent\"}"),
        get("sono_video_frames_total{direction=\"up\",outcome=\"dropped\"}"),
    );
    eprintln!(
        "a {mbits:.0} Mbit/s video burst for {sent_for:?}: {sent} pictures sent, {dropped} dropped, {:.1} Mbit/s reached the phone; {} audio packets up, longest gap {longest:?}",
        video_bytes as f64 * 8.0 / sent_for.as_secs_f64() / 1e6,
        arrivals
    );
    assert!(mbits >= 40.0, "the burst was only {mbits:.0} Mbit/s");
    assert!(
        (140..=152).contains(&arrivals),
        "{arrivals} packets up for 3 s of audio\n{}",
        sono.log()
    );
    assert!(
        longest < Duration::from_millis(120),
        "a gap of {longest:?} in the audio up"
    );
    // The cap (video.max_bitrate, 4 Mbit/s with a one-second burst) held.
    assert!(
        sent >= 1.0 && dropped >= 100.0,
        "{sent} sent, {dropped} dropped"
    );
    assert!(
        (video_bytes as f64) < (4e6 * (sent_for.as_secs_f64() + 1.5)) / 8.0,
        "{video_bytes} bytes of video reached the phone"
    );
    assert!(
        get("sono_video_malformed_total{source=\"client\"}") >= 2.0,
        "{}",
        sono.log()
    );
    assert!(
        get("sono_video_malformed_total{source=\"rtp\"}") >= 3.0,
        "{}",
        sono.log()
    );
    // Nothing broke: sono still serves.
    assert_eq!(http::get(sono.http, "/healthz", "").unwrap().status, 200);
}
