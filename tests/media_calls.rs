//! Two-way audio through the real `sono` binary, measured. The test client
//! publishes a spoken sentence as Speex wideband (as Flash does) and records
//! what sono plays to it; baresip answers, plays its own sentence and
//! records what it hears. Each direction gets a PESQ score against its
//! source, and the same codec chain applied offline by ffmpeg to the same
//! file gets one too: the gateway may cost at most 0.1 MOS.

use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::ObjectEncoding;
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::rtp_peer;
use sono_testkit::{Baresip, FlashClient, FlvAudioTag, Reply, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 30000\nrtp_port_max = 30999\n";

/// How much worse than the offline chain the gateway may sound.
const MAX_COST: f64 = 0.1;

const CLIENT_SAYS: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.";
const PEER_SAYS: &str =
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// One codec path: what baresip offers, its rate, the PESQ mode, and the
/// ffmpeg arguments of the SIP codec for the offline chain.
struct CodecPath {
    baresip_codec: &'static str,
    mode: &'static str,
    sip_codec: &'static [&'static str],
    container: &'static str,
    /// `None`: the client speaks Speex wideband, as Flash does by default.
    /// `Some(rate)`: it publishes what ffmpeg's Nellymoser encoder made at
    /// that rate, and asks for Nellymoser back.
    nellymoser: Option<u32>,
    /// The client tunnels through RTMPT instead of connecting over TCP.
    rtmpt: bool,
}

/// The client codec's offline round trip (ffmpeg both ways), to `rate`.
fn client_round_trip(
    nellymoser: Option<u32>,
    input: &std::path::Path,
    rate: u32,
    out: &std::path::Path,
) {
    match nellymoser {
        None => audio::speex_round_trip(input, rate, out),
        Some(r) => audio::round_trip(
            input,
            &["-ar", &r.to_string(), "-c:a", "nellymoser"],
            "flv",
            rate,
            out,
        ),
    }
}

fn rate(mode: &str) -> u32 {
    if mode == "nb" {
        8000
    } else {
        16_000
    }
}

/// What the client heard, decoded by ffmpeg.
fn client_heard(
    c: &FlashClient,
    play_stream: u32,
    dir: &AudioDir,
    mode: &str,
) -> std::path::PathBuf {
    audio::heard_by_client(c, play_stream, dir, rate(mode))
}

fn two_way_audio(path: CodecPath) {
    let name = format!(
        "{}-{}{}",
        path.baresip_codec.split('/').next().unwrap_or("codec"),
        path.nellymoser
            .map_or("speex".to_owned(), |r| format!("nelly{r}")),
        if path.rtmpt { "-rtmpt" } else { "" }
    );
    let dir = AudioDir::new(&name);
    let client_src = dir.file("client-src.wav");
    let peer_src = dir.file("peer-src.wav");
    audio::speech_wav(CLIENT_SAYS, 16_000, &client_src);
    audio::speech_wav(PEER_SAYS, 16_000, &peer_src);
    let r = rate(path.mode);
    // baresip hangs up when its file ends: silence after the sentence keeps
    // the call up until the client hangs up. Its file source wants the
    // rate of its audio pipeline.
    let peer_play = dir.file("peer-play.wav");
    audio::ffmpeg(&[
        "-i",
        &peer_src.display().to_string(),
        // A second of silence first: the client is publishing (and a
        // Nellymoser client getting Nellymoser) before the peer talks.
        "-af",
        "adelay=1000,apad=pad_dur=20",
        "-ar",
        &r.to_string(),
        &peer_play.display().to_string(),
    ]);

    let peer = Baresip::start_with(
        &peer_play,
        (31000, 31999),
        Duration::from_secs(60),
        path.baresip_codec,
        r,
    );
    let sono = Sono::start(SONO, &format!("{MEDIA}nellymoser_to_client = true\n"));
    let mut c = if path.rtmpt {
        FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf3).unwrap()
    } else {
        FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap()
    };
    c.send_call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let publish = c.create_stream().unwrap();
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    c.publish(publish, "mic").unwrap();
    match path.nellymoser {
        None => {
            c.publish_wav_as_speex(publish, &client_src).unwrap();
        }
        Some(r) => {
            let flv = dir.file("client-nelly.flv");
            audio::ffmpeg(&[
                "-i",
                &client_src.display().to_string(),
                "-ar",
                &r.to_string(),
                "-c:a",
                "nellymoser",
                &flv.display().to_string(),
            ]);
            c.publish_flv(publish, &flv, true).unwrap();
        }
    }
    // The peer's sentence is about as long; let the rest arrive.
    c.pump(Duration::from_secs(2)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    // The media is counted, and gone with the call.
    let m = sono.metrics();
    let sent = m.get("sono_rtp_packets_sent_total").copied().unwrap_or(0.0);
    let received = m
        .get("sono_rtp_packets_received_total{outcome=\"accepted\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(
        sent > 150.0 && received > 150.0,
        "sent {sent}, received {received}"
    );
    assert!(
        c.wait_for(WAIT, |_| sono.metric("sono_media_bridges") == 0.0),
        "the media bridge outlived its call"
    );

    // Up: client → sono → baresip.
    let heard_by_peer = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard_by_peer, r, &peer_heard);
    let client_ref = dir.file("client-ref.wav");
    audio::convert(&client_src, r, &client_ref);
    let up_gateway = audio::pesq(path.mode, &client_ref, &peer_heard);
    let client_leg = dir.file("up-client.wav");
    client_round_trip(path.nellymoser, &client_src, 16_000, &client_leg);
    let up_offline_wav = dir.file("up-offline.wav");
    audio::round_trip(
        &client_leg,
        path.sip_codec,
        path.container,
        r,
        &up_offline_wav,
    );
    let up_offline = audio::pesq(path.mode, &client_ref, &up_offline_wav);

    // Down: baresip → sono → client.
    let client_heard = client_heard(&c, play, &dir, path.mode);
    let peer_ref = dir.file("peer-ref.wav");
    audio::convert(&peer_src, r, &peer_ref);
    let down_gateway = audio::pesq(path.mode, &peer_ref, &client_heard);
    let sip_leg = dir.file("down-sip.wav");
    audio::round_trip(&peer_src, path.sip_codec, path.container, 16_000, &sip_leg);
    let down_offline_wav = dir.file("down-offline.wav");
    client_round_trip(path.nellymoser, &sip_leg, r, &down_offline_wav);
    let down_offline = audio::pesq(path.mode, &peer_ref, &down_offline_wav);

    eprintln!(
        "{name} PESQ-{}: up {up_gateway:.2} (offline {up_offline:.2}), down {down_gateway:.2} (offline {down_offline:.2})",
        path.mode
    );
    assert!(
        up_gateway >= up_offline - MAX_COST,
        "audio up through sono scores {up_gateway:.2}, the offline chain {up_offline:.2}\n{}",
        sono.log()
    );
    assert!(
        down_gateway >= down_offline - MAX_COST,
        "audio down through sono scores {down_gateway:.2}, the offline chain {down_offline:.2}\n{}",
        sono.log()
    );
}

#[test]
fn speex_client_to_g722_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "G722/16000/1",
        mode: "wb",
        sip_codec: &["-ar", "16000", "-c:a", "g722"],
        container: "g722",
        nellymoser: None,
        rtmpt: false,
    });
}

/// The same call with the client tunnelling through RTMPT, as Flash does
/// behind a proxy that only passes HTTP.
#[test]
fn speex_client_over_rtmpt_to_pcmu_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMU/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_mulaw"],
        container: "au",
        nellymoser: None,
        rtmpt: true,
    });
}

#[test]
fn nellymoser_16k_client_to_g722_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "G722/16000/1",
        mode: "wb",
        sip_codec: &["-ar", "16000", "-c:a", "g722"],
        container: "g722",
        nellymoser: Some(16_000),
        rtmpt: false,
    });
}

#[test]
fn nellymoser_8k_client_to_pcmu_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMU/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_mulaw"],
        container: "au",
        nellymoser: Some(8000),
        rtmpt: false,
    });
}

#[test]
fn speex_client_to_pcmu_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMU/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_mulaw"],
        container: "au",
        nellymoser: None,
        rtmpt: false,
    });
}

#[test]
fn speex_client_to_pcma_peer_and_back_costs_at_most_0_1_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMA/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_alaw"],
        container: "au",
        nellymoser: None,
        rtmpt: false,
    });
}

#[test]
fn dtmf_from_the_client_reaches_baresip_as_rfc_4733_events() {
    let dir = AudioDir::new("dtmf-out");
    let silence = dir.file("silence.wav");
    audio::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=8000:cl=mono",
        "-t",
        "20",
        &silence.display().to_string(),
    ]);
    let peer = Baresip::start_with(
        &silence,
        (31000, 31999),
        Duration::from_secs(60),
        "PCMU/8000/1",
        8000,
    );
    let sono = Sono::start(SONO, MEDIA);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let reply = c.call("sendDTMF", vec!["19#".into()]).unwrap();
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    // As a Flash client does, keep publishing the microphone meanwhile:
    // baresip plays events out through its jitter buffer, which only the
    // packets after them push out.
    let tone = dir.file("tone.wav");
    audio::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=16000",
        "-t",
        "2",
        &tone.display().to_string(),
    ]);
    let mic = c.create_stream().unwrap();
    c.publish(mic, "mic").unwrap();
    c.publish_wav_as_speex(mic, &tone).unwrap();
    // baresip logs each telephone event's start and end, once per digit.
    for digit in ['1', '9', '#'] {
        let end = format!("received event: '{digit}' (end=1)");
        assert!(peer.wait_log(&end, WAIT), "{end:?} missing\n{}", peer.log());
    }
    let log = peer.log();
    assert_eq!(
        log.matches("received event: '1' (end=0)").count(),
        1,
        "{log}"
    );
    let bad = c.call("sendDTMF", vec!["12x".into()]).unwrap();
    assert_eq!(bad.error_code(), Some(code::DTMF_INVALID), "{bad:?}");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    let none = c.call("sendDTMF", vec!["1".into()]).unwrap();
    assert_eq!(none.error_code(), Some(code::CALL_NO_CALL), "{none:?}");
}

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// The DTMF digits the client was told of, in order.
fn digits_seen(c: &FlashClient) -> String {
    c.events
        .iter()
        .filter(|e| e.get("code").and_then(sono_rtmp::AmfValue::as_str) == Some(code::CALL_DTMF))
        .filter_map(|e| {
            e.get("digit")
                .and_then(sono_rtmp::AmfValue::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn dtmf_played_by_sipp_reaches_the_client_once_per_digit() {
    assert!(
        std::path::Path::new("/usr/share/sip-tester/dtmf_2833_1.pcap").is_file(),
        "SIPp's DTMF recordings are missing: install the Debian package sip-tester"
    );
    let sono = Sono::start(SONO, MEDIA);
    let mut sipp = sono_testkit::Sipp::uas(&scenario("uas_dtmf"), 1, WAIT, &[]);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    assert!(
        c.wait_for(WAIT, |c| digits_seen(c).len() >= 3),
        "digits seen: {:?}\n{}",
        digits_seen(&c),
        sono.log()
    );
    c.pump(Duration::from_millis(500)).unwrap();
    assert_eq!(digits_seen(&c), "15#");
    c.call("hangup", vec![]).unwrap();
    sipp.assert_success(WAIT);
}

/// A bad network between the peer and sono: each packet is lost with
/// probability `loss`, or delayed by up to `jitter` (uniformly), which also
/// reorders packets; seeded, so every run is the same network.
fn impair(
    schedule: &[(Duration, Vec<u8>)],
    loss: f64,
    jitter: Duration,
    seed: u64,
) -> Vec<(Duration, Vec<u8>)> {
    let mut state = seed;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out: Vec<(Duration, Vec<u8>)> = schedule
        .iter()
        .filter_map(|(at, d)| {
            let lost = random() < loss;
            let delay = jitter.mul_f64(random());
            (!lost).then(|| (*at + delay, d.clone()))
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    out
}

/// A call from the test client, through sono, to SIPp answering with
/// `scenario_name` whose media is the test's own RTP peer sending
/// `schedule`: returned once answered, the client playing and publishing.
struct CallToRtpPeer {
    sono: Sono,
    sipp: sono_testkit::Sipp,
    client: FlashClient,
    play: u32,
    mic: u32,
    peer: std::thread::JoinHandle<Vec<(u8, Vec<u8>)>>,
    all_sent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn call_to_rtp_peer(
    scenario_name: &str,
    config: &str,
    schedule: Vec<(Duration, Vec<u8>)>,
) -> CallToRtpPeer {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = socket.local_addr().unwrap().port().to_string();
    let all_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peer = rtp_peer::spawn(socket, schedule, Duration::from_secs(20), all_sent.clone());
    let sono = Sono::start(SONO, config);
    let sipp = sono_testkit::Sipp::uas(
        &scenario(scenario_name),
        1,
        Duration::from_secs(30),
        &["-key", "rtp_port", &rtp_port],
    );
    let mut client = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    client
        .send_call("dial", vec![sipp.uri("bob").into()])
        .unwrap();
    assert!(
        client.wait_call_status(4, WAIT),
        "{:?}\n{}",
        client.call_statuses(),
        sono.log()
    );
    let play = client.create_stream().unwrap();
    client.play(play, "remote").unwrap();
    let mic = client.create_stream().unwrap();
    client.publish(mic, "mic").unwrap();
    CallToRtpPeer {
        sono,
        sipp,
        client,
        play,
        mic,
        peer,
        all_sent,
    }
}

/// Speex frames ffmpeg made of a sentence, as FLV tags (header byte first).
fn speex_tags(dir: &AudioDir, text: &str, name: &str) -> (std::path::PathBuf, Vec<FlvAudioTag>) {
    let wav = dir.file(&format!("{name}.wav"));
    audio::speech_wav(text, 16_000, &wav);
    let flv = dir.file(&format!("{name}.flv"));
    audio::ffmpeg(&[
        "-i",
        &wav.display().to_string(),
        "-c:a",
        "libspeex",
        "-ar",
        "16000",
        "-frames_per_packet",
        "1",
        &flv.display().to_string(),
    ]);
    let tags = sono_testkit::read_flv_audio(&flv).unwrap();
    (flv, tags)
}

#[test]
fn speex_passes_through_byte_for_byte_both_ways() {
    let dir = AudioDir::new("passthrough");
    let (client_flv, client_tags) = speex_tags(&dir, CLIENT_SAYS, "client");
    let (_, peer_tags) = speex_tags(&dir, PEER_SAYS, "peer");
    let peer_frames: Vec<Vec<u8>> = peer_tags.iter().map(|t| t.data[1..].to_vec()).collect();

    let CallToRtpPeer {
        sono,
        mut sipp,
        client: mut c,
        play,
        mic,
        peer,
        all_sent,
    } = call_to_rtp_peer(
        "uas_speex",
        &format!("{MEDIA}codecs = [\"speex\", \"pcmu\"]\n"),
        rtp_peer::stream(&peer_frames, 97, 320),
    );
    assert!(sono.wait_log("passthrough=true", WAIT), "{}", sono.log());
    // ffmpeg's tags (0xB6 header: Speex with ffmpeg's rate bits) at real-time pace.
    let sent = c.publish_flv(mic, &client_flv, true).unwrap();
    assert_eq!(sent, client_tags.len());
    // The peer paces itself from its own clock; wait until it has sent
    // everything, and for the jitter buffer to play it out.
    assert!(c.wait_for(WAIT, |_| all_sent
        .load(std::sync::atomic::Ordering::Acquire)));
    c.pump(Duration::from_millis(500)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    let received = peer.join().unwrap();

    // Up: every frame the client published reached the peer unchanged.
    let up: Vec<&[u8]> = received
        .iter()
        .filter(|(pt, _)| *pt == 97)
        .map(|(_, p)| p.as_slice())
        .collect();
    let published: Vec<&[u8]> = client_tags.iter().map(|t| &t.data[1..]).collect();
    assert_eq!(up.len(), published.len(), "frames up");
    assert!(up == published, "a frame changed on its way up");

    // Down: what the client got is the peer's frames, unchanged, in order.
    let down: Vec<&[u8]> = c
        .audio
        .iter()
        .filter(|(stream, _, _)| *stream == play)
        .map(|(_, _, d)| {
            assert_eq!(d[0], 0xB2);
            &d[1..]
        })
        .collect();
    // Each frame is one the peer sent, unchanged and in order. The jitter
    // buffer may drop a frame (at most one a second, and it logs it) to
    // bring its delay down after a scheduling stall, so a frame may be
    // missing, but none may differ.
    let mut at = 0;
    for (i, frame) in down.iter().enumerate() {
        let Some(found) = peer_frames[at..]
            .iter()
            .position(|f| f.as_slice() == *frame)
        else {
            panic!("frame {i} down is not one the peer sent after its frame {at}: it changed");
        };
        at += found + 1;
    }
    let log = sono.log();
    let stopped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("media stopped"))
        .collect();
    assert!(
        down.len() >= peer_frames.len() * 95 / 100,
        "only {} of {} frames came down\n{stopped:?}",
        down.len(),
        peer_frames.len()
    );
}

#[test]
fn a_peer_that_sends_no_rtp_is_hung_up_after_the_timeout_with_a_reason() {
    let sono = Sono::start(SONO, &format!("{MEDIA}rtp_timeout = \"2s\"\n"));
    let mut sipp = sono_testkit::Sipp::uas(&scenario("uas_200"), 1, Duration::from_secs(15), &[]);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let answered = std::time::Instant::now();
    assert!(c.wait_call_status(0, WAIT), "{:?}", c.call_statuses());
    let after = answered.elapsed();
    assert!(
        after >= Duration::from_millis(1800) && after < Duration::from_secs(4),
        "{after:?}"
    );
    let statuses = c.call_statuses();
    let (status, _, reason) = &statuses[statuses.len() - 1];
    assert_eq!(*status, 0);
    assert_eq!(
        reason.as_deref(),
        Some("no RTP from the peer for 2 s"),
        "{statuses:?}"
    );
    // SIPp's scenario needs our BYE to pass.
    sipp.assert_success(WAIT);
}

/// The client's downlink from a PCMU peer whose packets go through
/// `network`; returns PESQ-NB of what the client heard, the call's
/// statuses, and sono's media summary.
fn pcmu_downlink_pesq(
    dir: &AudioDir,
    name: &str,
    network: impl Fn(&[(Duration, Vec<u8>)]) -> Vec<(Duration, Vec<u8>)>,
) -> (f64, Vec<(u8, Option<u16>)>, String) {
    let source = dir.file("peer-src.wav");
    if !source.exists() {
        audio::speech_wav(PEER_SAYS, 8000, &source);
    }
    let ulaw = dir.file("peer.ul");
    audio::ffmpeg(&[
        "-i",
        &source.display().to_string(),
        "-c:a",
        "pcm_mulaw",
        "-f",
        "mulaw",
        &ulaw.display().to_string(),
    ]);
    let payloads: Vec<Vec<u8>> = std::fs::read(&ulaw)
        .unwrap()
        .chunks(160)
        .map(<[u8]>::to_vec)
        .collect();
    let schedule = network(&rtp_peer::stream(&payloads, 0, 160));
    // These runs compare timing-sensitive figures between runs: one at a
    // time, so two of them do not load the machine for each other.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());

    let CallToRtpPeer {
        sono,
        mut sipp,
        client: mut c,
        play,
        mic,
        peer,
        all_sent,
    } = call_to_rtp_peer("uas_pcmu_at", MEDIA, schedule);
    // A little of the client's voice lets the peer learn sono's address;
    // the peer's sentence then plays while the client keeps talking.
    let tone = dir.file("mic.wav");
    audio::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=200:sample_rate=16000",
        "-t",
        "6",
        &tone.display().to_string(),
    ]);
    c.publish_wav_as_speex(mic, &tone).unwrap();
    assert!(c.wait_for(WAIT, |_| all_sent
        .load(std::sync::atomic::Ordering::Acquire)));
    c.pump(Duration::from_millis(800)).unwrap();
    let statuses = c.call_status_codes();
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    peer.join().unwrap();
    let heard = client_heard(&c, play, dir, "nb");
    let kept = dir.file(&format!("{name}-heard.wav"));
    std::fs::rename(&heard, &kept).unwrap();
    let log = sono.log();
    let summary = log
        .lines()
        .filter(|l| l.contains("media stopped"))
        .collect::<Vec<_>>()
        .join("\n");
    (audio::pesq("nb", &source, &kept), statuses, summary)
}

#[test]
fn five_percent_loss_and_40_ms_jitter_cost_at_most_half_a_mos_and_the_call_survives() {
    let dir = AudioDir::new("impaired");
    // Clean and impaired calls alternate, three of each, and the medians
    // are compared: where a late packet meets the 20 ms playout clock
    // depends on this shared machine's scheduling (the other media tests
    // run beside this one), and one unlucky underrun moves a call's PESQ
    // by 0.2 on its own, clean or impaired (seen: clean 2.80 to 3.13 in
    // quiet runs, impaired 2.74 typically, 2.51 once in seven).
    let (mut cleans, mut runs) = (Vec::new(), Vec::new());
    let mut clean_summary = String::new();
    for run in 0..3 {
        let (clean, _, summary) = pcmu_downlink_pesq(&dir, &format!("clean{run}"), |s| s.to_vec());
        cleans.push(clean);
        clean_summary = summary;
        let (score, statuses, summary) = pcmu_downlink_pesq(&dir, &format!("impaired{run}"), |s| {
            impair(s, 0.05, Duration::from_millis(40), 0x5EED_1234)
        });
        // The call was up the whole time: answered, never ended before our hangup.
        assert_eq!(statuses.last().map(|s| s.0), Some(4), "{statuses:?}");
        assert!(summary.contains("lost="), "{summary}");
        runs.push((score, summary));
    }
    cleans.sort_by(f64::total_cmp);
    let clean = cleans[1];
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let scores: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.0)).collect();
    let (impaired, summary) = runs.swap_remove(1);
    eprintln!(
        "PCMU downlink PESQ-NB: clean {clean:.2} (median of {cleans:?}), 5 % loss + 40 ms jitter {impaired:.2} (median of {scores:?})\nclean: {clean_summary}\nimpaired: {summary}"
    );
    assert!(
        impaired >= clean - 0.5,
        "impaired {impaired:.2} vs clean {clean:.2}\n{summary}"
    );
}

/// A spoofer on the latched address (here: the peer's own socket, the
/// strongest case) sends a well-formed stream of its own, another SSRC with
/// loud noise in sequence, two packets for each of the peer's. RFC 3550
/// A.1's validation keeps it out before the statistics and the jitter
/// buffer: the call sounds as it does clean, nothing is lost or concealed
/// because of it, and every spoofed packet is counted.
#[test]
fn a_spoofed_ssrc_on_the_latched_address_does_not_disturb_the_call() {
    let dir = AudioDir::new("spoofed");
    let spoofed_count = std::cell::Cell::new(0usize);
    // Clean and spoofed calls alternate, three of each, and the medians are
    // compared: on this shared machine (the other media tests run beside
    // this one) a single call now and then gets one more underrun, which
    // moves its score by 0.1 whatever the spoofer does.
    let (mut cleans, mut spoofeds) = (Vec::new(), Vec::new());
    let (mut clean_levels, mut spoofed_levels) = (Vec::new(), Vec::new());
    let (mut clean_summary, mut summary, mut statuses) = (String::new(), String::new(), Vec::new());
    for round in 0..3 {
        let (clean, _, clean_log) =
            pcmu_downlink_pesq(&dir, &format!("clean-{round}"), |s| s.to_vec());
        let (spoofed, spoofed_statuses, spoofed_log) =
            pcmu_downlink_pesq(&dir, &format!("spoofed-{round}"), |s| {
                let noise = vec![0u8; 160];
                let mut out = Vec::new();
                for (i, (at, d)) in s.iter().enumerate() {
                    out.push((*at, d.clone()));
                    for k in 0..2u16 {
                        let mut p = Vec::new();
                        sono_media::rtp::RtpPacket {
                            marker: false,
                            payload_type: 0,
                            sequence: 40_000u16.wrapping_add(i as u16 * 2 + k),
                            timestamp: 7_000_000 + 80 * (i as u32 * 2 + u32::from(k)),
                            ssrc: 0xBAD_5EED,
                            csrc_count: 0,
                            payload: &noise,
                        }
                        .write(&mut p);
                        out.push((*at + Duration::from_millis(5 + 7 * u64::from(k)), p));
                    }
                }
                out.sort_by_key(|(at, _)| *at);
                spoofed_count.set(s.len() * 2);
                out
            });
        cleans.push(clean);
        spoofeds.push(spoofed);
        let level = |run: &str| {
            audio::rms_dbfs(&audio::samples(
                &dir.file(&format!("{run}-{round}-heard.wav")),
                8000,
            ))
        };
        clean_levels.push(level("clean"));
        spoofed_levels.push(level("spoofed"));
        clean_summary = clean_log;
        summary = spoofed_log;
        statuses = spoofed_statuses;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (clean, spoofed) = (median(&mut cleans), median(&mut spoofeds));
    let (clean_level, spoofed_level) = (median(&mut clean_levels), median(&mut spoofed_levels));

    let field = |summary: &str, name: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    eprintln!(
        "PCMU downlink PESQ-NB: clean {clean:.2} (median of {cleans:.2?}), with a spoofer {spoofed:.2} (median of {spoofeds:.2?})\nlevel: clean {clean_level:.1} dBFS, spoofed {spoofed_level:.1} dBFS\nclean: {clean_summary}\nspoofed: {summary}"
    );
    assert_eq!(statuses.last().map(|s| s.0), Some(4), "{statuses:?}");
    // The spoofer's payload is full-scale (mu-law 0x00): any of it let
    // through raises the level by many dB, which no scheduling hiccup does.
    assert!(
        (spoofed_level - clean_level).abs() <= 1.5,
        "level: spoofed {spoofed_level:.1} dBFS vs clean {clean_level:.1} dBFS\n{summary}"
    );
    // PESQ moves with where an underrun falls (on a slow CI machine the
    // medians of clean and spoofed runs differed by 0.27 with the same
    // counters); the spoofer mixed in would cost well over a whole point.
    assert!(
        spoofed >= clean - 0.4,
        "spoofed {spoofed:.2} vs clean {clean:.2}\n{summary}"
    );
    // Every spoofed packet that arrived while the call was up was dropped
    // as another source (the first few may come before the call is).
    let other = field(&summary, "other_ssrc");
    assert!(
        other as usize >= spoofed_count.get() * 9 / 10,
        "{other} of {} dropped\n{summary}",
        spoofed_count.get()
    );
    assert_eq!(field(&summary, "ssrc_switches"), 0, "{summary}");
    assert!(
        field(&summary, "lost") <= field(&clean_summary, "lost") + 2,
        "{summary}\n{clean_summary}"
    );
    assert!(
        field(&summary, "concealed") <= field(&clean_summary, "concealed") + 5,
        "{summary}\n{clean_summary}"
    );
    assert!(
        field(&summary, "jitter_target_ms") <= field(&clean_summary, "jitter_target_ms") + 20,
        "{summary}\n{clean_summary}"
    );
}
