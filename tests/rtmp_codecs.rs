//! What RTMP tools and newer Flash publish, heard by a real SIP peer.
//!
//! ffmpeg publishes under a stream key as OBS does (H.264 and AAC) and with
//! its other FLV audio encoders (MP3, Flash ADPCM, linear PCM); a page
//! places the call over REST to baresip, which records what it hears. PESQ
//! of that recording against the spoken source is compared with the same
//! codec chain run offline by ffmpeg (client codec, then the SIP codec): the
//! gateway may cost at most 0.3 MOS. A G.711 client (the test client
//! publishing FLV formats 8 and 7, as Flash Player 11 does) reaches a PCMU
//! and a PCMA peer byte for byte both ways.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{http, Baresip, FlashClient, FlvAudioTag, Sono};
use sono_testkit::{require_tool, wait_with_output_or_kill};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 35000\nrtp_port_max = 35999\n";

/// How much worse than the offline chain the gateway may sound.
const MAX_COST: f64 = 0.3;

const CALLER_SAYS: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.";
const PEER_SAYS: &str =
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// Silence before the caller speaks: the call is placed and answered meanwhile.
const LEAD_SECONDS: u32 = 4;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The SIP side of a test: baresip's codec, its PESQ mode and the ffmpeg
/// arguments of that codec for the offline chain.
struct SipSide {
    baresip_codec: &'static str,
    mode: &'static str,
    rate: u32,
    codec_args: &'static [&'static str],
    container: &'static str,
}

const PCMU: SipSide = SipSide {
    baresip_codec: "PCMU/8000/1",
    mode: "nb",
    rate: 8000,
    codec_args: &["-ar", "8000", "-c:a", "pcm_mulaw"],
    container: "au",
};

const G722: SipSide = SipSide {
    baresip_codec: "G722/16000/1",
    mode: "wb",
    rate: 16_000,
    codec_args: &["-ar", "16000", "-c:a", "g722"],
    container: "g722",
};

/// A publisher: ffmpeg's audio encoder arguments (and whether it sends
/// video as OBS does).
struct Publisher {
    name: &'static str,
    audio_args: &'static [&'static str],
    video: bool,
    /// The `codec` label sono counts its messages under.
    label: &'static str,
}

const OBS: Publisher = Publisher {
    name: "obs-aac",
    audio_args: &["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"],
    video: true,
    label: "aac",
};

/// The speech the caller publishes: silence, the sentence, silence.
fn caller_source(dir: &AudioDir) -> (PathBuf, PathBuf) {
    let speech = dir.file("caller-speech.wav");
    audio::speech_wav(CALLER_SAYS, 16_000, &speech);
    let padded = dir.file("caller-padded.wav");
    audio::ffmpeg(&[
        "-i",
        &s(&speech),
        "-af",
        &format!("adelay={},apad=pad_dur=3", LEAD_SECONDS * 1000),
        &s(&padded),
    ]);
    (speech, padded)
}

/// ffmpeg publishing `input` in real time under `key` with `publisher`'s codecs.
fn ffmpeg_publishes(sono: &Sono, publisher: &Publisher, input: &Path, key: &str) -> Child {
    require_tool("ffmpeg", "ffmpeg");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(input);
    if publisher.video {
        cmd.args(["-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
            .args(["-map", "0:a", "-map", "1:v", "-shortest"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
            ]);
    }
    cmd.args(publisher.audio_args)
        .args(["-f", "flv"])
        .arg(format!("rtmp://{}/phone/{key}", sono.rtmp))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ffmpeg")
}

/// The connection id behind `key`, once ffmpeg publishes under it.
fn connection_of(sono: &Sono, key: &str) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let who = http::get(sono.http, "/api/v1/token", key).unwrap();
        if who.status == 200 {
            return who.json()["connection_id"].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "ffmpeg never published\n{}",
            sono.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rest(sono: &Sono, id: u64, key: &str, action: &str, body: serde_json::Value) -> u16 {
    http::post_json(
        sono.http,
        &format!("/api/v1/connections/{id}/{action}"),
        key,
        &body,
    )
    .unwrap()
    .status
}

/// baresip answering with `sip`'s codec, playing the peer's sentence.
fn peer(dir: &AudioDir, sip: &SipSide, ports: (u16, u16)) -> Baresip {
    let src = dir.file("peer-src.wav");
    audio::speech_wav(PEER_SAYS, 16_000, &src);
    let play = dir.file("peer-play.wav");
    audio::ffmpeg(&[
        "-i",
        &s(&src),
        "-af",
        "adelay=1000,apad=pad_dur=25",
        "-ar",
        &sip.rate.to_string(),
        &s(&play),
    ]);
    Baresip::start_with(
        &play,
        ports,
        Duration::from_secs(60),
        sip.baresip_codec,
        sip.rate,
    )
}

/// PESQ of what baresip heard, and of the offline chain (the publisher's
/// codec, then the SIP codec), both against the caller's sentence.
fn score_up(
    dir: &AudioDir,
    publisher: &Publisher,
    sip: &SipSide,
    heard: &Path,
    speech: &Path,
) -> (f64, f64) {
    let reference = dir.file("caller-ref.wav");
    audio::convert(speech, sip.rate, &reference);
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(heard, sip.rate, &peer_heard);
    let gateway = audio::pesq(sip.mode, &reference, &peer_heard);
    let client_leg = dir.file("offline-client.wav");
    let mut args: Vec<&str> = publisher.audio_args.to_vec();
    // The offline chain decodes to mono as sono does.
    if let Some(i) = args.iter().position(|a| *a == "-ac") {
        args.drain(i..i + 2);
    }
    audio::round_trip(speech, &args, "flv", 16_000, &client_leg);
    let offline_wav = dir.file("offline.wav");
    audio::round_trip(
        &client_leg,
        sip.codec_args,
        sip.container,
        sip.rate,
        &offline_wav,
    );
    let offline = audio::pesq(sip.mode, &reference, &offline_wav);
    (gateway, offline)
}

/// A tool publishes `publisher`'s codec under a stream key; a page dials
/// baresip (`sip`) for it over REST: the PESQ of what baresip heard, and
/// the offline chain's.
fn tool_call(publisher: &Publisher, sip: &SipSide, ports: (u16, u16)) -> (Sono, f64, f64) {
    let dir = AudioDir::new(&format!("{}-{}", publisher.name, sip.mode));
    let (speech, padded) = caller_source(&dir);
    let peer = peer(&dir, sip, ports);
    let sono = Sono::start(SONO, MEDIA);
    let key = format!("{}-0123456789abcdefXYZ", publisher.name);
    let up = ffmpeg_publishes(&sono, publisher, &padded, &key);
    let id = connection_of(&sono, &key);
    assert_eq!(
        rest(&sono, id, &key, "dial", json!({"uri": peer.uri()})),
        202
    );
    let done = wait_with_output_or_kill(up, Duration::from_secs(40));
    assert!(
        done.success(),
        "ffmpeg publishing failed: {}\n{}",
        done.stderr,
        sono.log()
    );
    // The tool leaving ends its connection, and the call with it.
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let m = sono.metrics();
    let messages = m
        .get(&format!(
            "sono_rtmp_audio_messages_received_total{{codec=\"{}\"}}",
            publisher.label
        ))
        .copied()
        .unwrap_or(0.0);
    assert!(
        messages >= 30.0,
        "{messages} {} messages\n{}",
        publisher.label,
        sono.log()
    );
    let undecodable = m
        .get(&format!(
            "sono_audio_undecodable_total{{codec=\"{}\"}}",
            publisher.label
        ))
        .copied()
        .unwrap_or(0.0);
    assert_eq!(undecodable, 0.0, "{}", sono.log());
    let heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let (gateway, offline) = score_up(&dir, publisher, sip, &heard, &speech);
    eprintln!(
        "{} → {}: PESQ-{} {gateway:.2} (offline chain {offline:.2})",
        publisher.name, sip.baresip_codec, sip.mode
    );
    assert!(
        gateway >= offline - MAX_COST,
        "{} to {}: {gateway:.2} through sono, {offline:.2} offline\n{}",
        publisher.name,
        sip.baresip_codec,
        sono.log()
    );
    (sono, gateway, offline)
}

#[test]
fn obs_style_aac_with_h264_reaches_a_pcmu_peer_and_video_is_dropped() {
    let (sono, _, _) = tool_call(&OBS, &PCMU, (35000, 35099));
    // The video came along, was counted and dropped, and left the audio be.
    let video = sono.metric("sono_rtmp_video_messages_received_total");
    assert!(
        video > 200.0,
        "{video} video messages counted\n{}",
        sono.log()
    );
    assert!(sono.metric("sono_rtmp_video_bytes_received_total") > 100_000.0);
}

#[test]
fn obs_style_aac_reaches_a_g722_peer_and_the_caller_comes_back_to_an_ffmpeg_reader() {
    let dir = AudioDir::new("obs-reader");
    let sono = Sono::start(SONO, MEDIA);
    let peer = peer(&dir, &G722, (35100, 35199));
    let (_, padded) = caller_source(&dir);
    let key = "obs-reader-0123456789abcdefXYZ";
    let up = ffmpeg_publishes(&sono, &OBS, &padded, key);
    let id = connection_of(&sono, key);
    // The show plays the caller back from the same key, asking for G.711
    // (its player has no Speex decoder).
    let heard = dir.file("reader-heard.wav");
    let reader = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "info",
            "-y",
            "-rw_timeout",
            "20000000",
        ])
        .args(["-rtmp_live", "live", "-i"])
        .arg(format!("rtmp://{}/phone/{key}?codec=pcmu", sono.rtmp))
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
    assert_eq!(
        rest(&sono, id, key, "dial", json!({"uri": peer.uri()})),
        202
    );
    let read = wait_with_output_or_kill(reader, Duration::from_secs(40));
    assert!(
        read.success(),
        "the reader failed: {}\n{}",
        read.stderr,
        sono.log()
    );
    assert!(
        read.stderr.contains("pcm_mulaw"),
        "the reader did not get G.711: {}",
        read.stderr
    );
    let _ = wait_with_output_or_kill(up, Duration::from_secs(40));
    // The reader decoded speech, not silence: the peer's sentence.
    let bytes = std::fs::read(&heard).unwrap();
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(samples.len() > 16_000 * 5, "{} samples", samples.len());
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 1000).count();
    assert!(
        loud > 8_000,
        "only {loud} loud samples in what the reader decoded"
    );
    let peer_heard = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let speech = dir.file("caller-speech.wav");
    let (gateway, offline) = score_up(&dir, &OBS, &G722, &peer_heard, &speech);
    eprintln!("obs-aac → G.722: PESQ-wb {gateway:.2} (offline chain {offline:.2})");
    assert!(
        gateway >= offline - MAX_COST,
        "{gateway:.2} against {offline:.2}\n{}",
        sono.log()
    );
}

#[test]
fn ffmpeg_mp3_adpcm_and_linear_pcm_each_reach_a_pcmu_peer() {
    let publishers = [
        Publisher {
            name: "mp3",
            audio_args: &["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "22050"],
            video: false,
            label: "mp3",
        },
        Publisher {
            name: "adpcm",
            audio_args: &["-c:a", "adpcm_swf", "-ar", "22050"],
            video: false,
            label: "adpcm",
        },
        Publisher {
            name: "pcm",
            audio_args: &["-c:a", "pcm_s16le", "-ar", "11025"],
            video: false,
            label: "pcm",
        },
        // ffmpeg's own choice for flv when none is given: MP3 where it is
        // built with lame (Debian's is), ADPCM otherwise; `ffmpeg -h
        // muxer=flv` says which.
        Publisher {
            name: "ffmpeg-default",
            audio_args: &["-ar", "44100"],
            video: false,
            label: "mp3",
        },
    ];
    for (i, publisher) in publishers.iter().enumerate() {
        let base = 35200 + 100 * i as u16;
        tool_call(publisher, &PCMU, (base, base + 99));
    }
}

/// G.711 frames of `text` as Flash Player 11 publishes them (FLV format 8
/// or 7), 40 ms a message, and their bytes.
fn g711_tags(dir: &AudioDir, text: &str, name: &str, alaw: bool) -> Vec<FlvAudioTag> {
    let wav = dir.file(&format!("{name}.wav"));
    audio::speech_wav(text, 8000, &wav);
    let raw = dir.file(&format!("{name}.raw"));
    let codec = if alaw { "pcm_alaw" } else { "pcm_mulaw" };
    audio::ffmpeg(&[
        "-i",
        &s(&wav),
        "-ar",
        "8000",
        "-c:a",
        codec,
        "-f",
        if alaw { "alaw" } else { "mulaw" },
        &s(&raw),
    ]);
    let bytes = std::fs::read(&raw).unwrap();
    let header = if alaw { 0x72 } else { 0x82 };
    bytes
        .chunks_exact(320)
        .enumerate()
        .map(|(i, chunk)| {
            let mut data = vec![header];
            data.extend_from_slice(chunk);
            FlvAudioTag {
                timestamp: 40 * i as u32,
                data,
            }
        })
        .collect()
}

/// SIPp answering with one G.711 law (`pt`, `law`), its media the test's
/// own RTP peer at `rtp_port`.
fn g711_uas(rtp_port: &str, pt: u8, law: &str) -> sono_testkit::Sipp {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_g711.xml");
    sono_testkit::Sipp::uas(
        &scenario,
        1,
        Duration::from_secs(30),
        &[
            "-key",
            "rtp_port",
            rtp_port,
            "-key",
            "pt",
            &pt.to_string(),
            "-key",
            "law",
            law,
        ],
    )
}

/// A G.711 client calls a peer of the same law.
fn g711_passes_through(alaw: bool) {
    let (pt, law) = if alaw { (8u8, "PCMA") } else { (0u8, "PCMU") };
    let dir = AudioDir::new(&format!("g711-{law}"));
    let client_tags = g711_tags(&dir, CALLER_SAYS, "client", alaw);
    let peer_tags = g711_tags(&dir, PEER_SAYS, "peer", alaw);
    let peer_frames: Vec<Vec<u8>> = peer_tags
        .iter()
        .flat_map(|t| {
            t.data[1..]
                .chunks(160)
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let all_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rtp = sono_testkit::rtp_peer::spawn(
        socket,
        sono_testkit::rtp_peer::stream(&peer_frames, pt, 160),
        Duration::from_secs(25),
        all_sent.clone(),
    );
    // G.722 first, as most sites configure it: the client's law must win.
    let sono = Sono::start(
        SONO,
        &format!("{MEDIA}codecs = [\"g722\", \"pcmu\", \"pcma\"]\n"),
    );
    let mut sipp = g711_uas(&rtp_port, pt, law);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    if alaw {
        // Flash Player 11 says which law it will publish.
        let options = AmfValue::Object(vec![("codec".into(), "PCMA".into())]);
        c.send_call("dial", vec![sipp.uri("bob").into(), options])
            .unwrap();
    } else {
        // This one publishes before it dials: sono knows the law from its audio.
        for tag in &client_tags[..3] {
            c.send_audio(mic, tag.timestamp, &tag.data).unwrap();
        }
        c.pump(Duration::from_millis(200)).unwrap();
        c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    }
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    let flv = dir.file("client.flv");
    audio::write_flv_audio(&flv, &client_tags);
    c.publish_flv(mic, &flv, true).unwrap();
    assert!(c.wait_for(Duration::from_secs(15), |_| all_sent
        .load(std::sync::atomic::Ordering::Acquire)));
    c.pump(Duration::from_millis(500)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    let received = rtp.join().unwrap();

    // The offer put the client's law first.
    let invite = sipp
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE"))
        .unwrap();
    assert!(
        invite.contains(&format!("RTP/AVP {pt} ")),
        "the offer does not start with {law}:\n{invite}"
    );
    // Up: the client's bytes, all of them, unchanged and in order.
    let up: Vec<u8> = received
        .iter()
        .filter(|(p, _)| *p == pt)
        .flat_map(|(_, payload)| payload.clone())
        .collect();
    let published: Vec<u8> = client_tags
        .iter()
        .flat_map(|t| t.data[1..].to_vec())
        .collect();
    let start = up
        .windows(320)
        .position(|w| w == &published[..320])
        .unwrap_or_else(|| panic!("the client's first message never reached the peer unchanged"));
    assert_eq!(
        &up[start..],
        &published[..up.len() - start],
        "bytes changed on their way up"
    );
    assert!(
        up.len() - start >= published.len() - 160,
        "{} of {} bytes up",
        up.len() - start,
        published.len()
    );
    // Down: the peer's packets, each unchanged, in order, in the client's law.
    let header = if alaw { 0x72 } else { 0x82 };
    let down: Vec<&[u8]> = c
        .audio
        .iter()
        .filter(|(stream, _, d)| *stream == play && d[0] == header)
        .map(|(_, _, d)| &d[1..])
        .collect();
    let mut at = 0;
    for (i, frame) in down.iter().enumerate() {
        let found = peer_frames[at..]
            .iter()
            .position(|f| f.as_slice() == *frame)
            .unwrap_or_else(|| {
                panic!("message {i} down is not a packet the peer sent: it changed")
            });
        at += found + 1;
    }
    assert!(
        down.len() >= peer_frames.len() * 95 / 100,
        "{} of {} packets down",
        down.len(),
        peer_frames.len()
    );
    // No codec ran, either way.
    let transcoded_up =
        sono.metric("sono_audio_frames_total{direction=\"up\",path=\"transcoded\"}");
    let transcoded_down =
        sono.metric("sono_audio_frames_total{direction=\"down\",path=\"transcoded\"}");
    assert_eq!(
        (transcoded_up, transcoded_down),
        (0.0, 0.0),
        "{}",
        sono.log()
    );
    assert!(sono.metric("sono_audio_frames_total{direction=\"up\",path=\"passthrough\"}") > 100.0);
}

#[test]
fn a_pcmu_client_reaches_a_pcmu_peer_byte_for_byte_both_ways() {
    g711_passes_through(false);
}

#[test]
fn a_pcma_client_reaches_a_pcma_peer_byte_for_byte_both_ways() {
    g711_passes_through(true);
}

/// The `onStatus` errors about undecodable audio the client got, by the
/// codec their description names first.
fn undecodable_notices(c: &FlashClient, stream: u32) -> Vec<String> {
    c.stream_events
        .iter()
        .filter(|(s, e)| {
            *s == stream
                && e.get("code").and_then(AmfValue::as_str) == Some("NetStream.Audio.Undecodable")
        })
        .map(|(_, e)| {
            assert_eq!(e.get("level").and_then(AmfValue::as_str), Some("error"));
            e.get("description")
                .and_then(AmfValue::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn undecodable_audio_is_refused_once_per_codec_and_a_video_flood_leaves_the_audio_pace_alone() {
    // The peer sends silence for the length of the test, and records when
    // each of sono's packets arrives.
    let silence: Vec<Vec<u8>> = (0..700).map(|_| vec![0xFF; 160]).collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let all_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rtp = sono_testkit::rtp_peer::spawn_timed(
        socket,
        sono_testkit::rtp_peer::stream(&silence, 0, 160),
        Duration::from_secs(20),
        all_sent,
    );
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = g711_uas(&rtp_port, 0, "PCMU");
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();

    // Each bad kind five times: AAC frames before any sequence header, a
    // sound format no one defined, an MP3 frame cut short.
    let mut t = 0;
    for _ in 0..5 {
        for bad in [
            &[0xAF, 0x01, 0x21, 0x10, 0x04, 0x60][..],
            &[0x92, 1, 2, 3, 4],
            &[0x2F, 0xFF, 0xFB, 0x90, 0x44, 0, 0, 0, 0],
        ] {
            c.send_audio(mic, t, bad).unwrap();
            t += 20;
        }
    }
    c.pump(Duration::from_millis(500)).unwrap();
    let notices = undecodable_notices(&c, mic);
    for codec in ["aac:", "other:", "mp3:"] {
        let n = notices.iter().filter(|d| d.starts_with(codec)).count();
        assert_eq!(n, 1, "{codec} told {n} times: {notices:?}\n{}", sono.log());
    }
    assert!(
        notices.iter().any(|d| d.contains("sequence header")),
        "{notices:?}"
    );
    assert!(
        notices.iter().any(|d| d.contains("sound format 9")),
        "{notices:?}"
    );
    let m = sono.metrics();
    for (codec, at_least) in [("aac", 5.0), ("other", 5.0), ("mp3", 5.0)] {
        let n = m
            .get(&format!(
                "sono_audio_undecodable_total{{codec=\"{codec}\"}}"
            ))
            .copied()
            .unwrap_or(0.0);
        assert!(n >= at_least, "{n} undecodable {codec} messages counted");
    }

    // Then 3 s of linear PCM at 44.1 kHz, 20 ms a message, with 130 kB of
    // video after each (52 Mbit/s).
    c.set_chunk_size(65_536).unwrap();
    let video: Vec<u8> = std::iter::once(0x17)
        .chain((0..65_535u32).map(|i| (i * 31 % 251) as u8))
        .collect();
    let start = Instant::now();
    let mut video_bytes = 0usize;
    for i in 0..150u32 {
        let mut pcm = vec![0x3E];
        for n in 0..882u32 {
            let s = ((f64::from(i * 882 + n) * 0.06).sin() * 8000.0) as i16;
            pcm.extend_from_slice(&s.to_le_bytes());
        }
        c.send_audio(mic, 1000 + 20 * i, &pcm).unwrap();
        for _ in 0..2 {
            c.send_message(6, 1000 + 20 * i, 9, mic, &video).unwrap();
            video_bytes += video.len();
        }
        let due = start + Duration::from_millis(20 * u64::from(i + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let sent_for = start.elapsed();
    let mbits = video_bytes as f64 * 8.0 / sent_for.as_secs_f64() / 1e6;
    c.pump(Duration::from_millis(800)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    sipp.assert_success(WAIT);
    let received = rtp.join().unwrap();
    let (arrivals, longest) = sono_testkit::rtp_peer::arrival_pace(&received, 0, start);
    eprintln!(
        "video at {mbits:.0} Mbit/s for {sent_for:?}: {arrivals} RTP packets up, longest gap {longest:?}"
    );
    assert!(mbits >= 40.0, "the flood was only {mbits:.0} Mbit/s");
    assert!(
        (140..=152).contains(&arrivals),
        "{arrivals} packets up for 3 s of audio\n{}",
        sono.log()
    );
    assert!(
        longest < Duration::from_millis(120),
        "a gap of {longest:?} in the audio up"
    );
    assert!(sono.metric("sono_rtmp_video_messages_received_total") >= 300.0);
    assert_eq!(
        sono.metric("sono_audio_undecodable_total{codec=\"pcm\"}"),
        0.0
    );
    // One notice per codec still, and sono is serving.
    assert_eq!(undecodable_notices(&c, mic).len(), notices.len());
    assert!(sono.get("/healthz").is_some());
}
