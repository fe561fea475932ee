//! Clients in a call that stop reading their socket but keep talking (a
//! hung Flash Player, a phone on a dead Wi-Fi uplink). sono must keep
//! reading them, so their audio up still reaches the SIP peer and their
//! calls stay up; drop (and count) the audio down they do not take instead
//! of stopping; and when it finally closes them, say the true cause.
//! SIPp answers and echoes the RTP it gets (`-rtp_echo`), so audio flows
//! down all the time.

use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{read_flv_audio, FlashClient, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const CLIENTS: usize = 4;
/// How long the clients talk without reading.
const STALL: Duration = Duration::from_secs(16);

#[test]
fn clients_that_stop_reading_keep_their_audio_up_and_are_closed_for_the_right_reason() {
    let dir = AudioDir::new("slow-readers");
    let tone = dir.file("tone.wav");
    audio::tone_wav(&tone, 16_000, 2, 440);
    let flv = dir.file("tone.flv");
    audio::ffmpeg(&[
        "-i",
        &tone.display().to_string(),
        "-c:a",
        "libspeex",
        "-frames_per_packet",
        "1",
        "-ar",
        "16000",
        "-f",
        "flv",
        &flv.display().to_string(),
    ]);
    let tags = read_flv_audio(&flv).unwrap();
    assert!(tags.len() > 50);

    let sono = Sono::start(
        SONO,
        "[rtmp]\nsend_buffer = 4096\nidle_timeout = \"8s\"\nping_interval = \"2s\"\n\
[media]\nrtp_port_min = 34600\nrtp_port_max = 34799\n",
    );
    let sipp = Sipp::uas(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_200.xml"),
        CLIENTS as u32,
        Duration::from_secs(60),
        &["-rtp_echo"],
    );
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = FlashClient::connect_with_receive_buffer(
            sono.rtmp,
            "phone",
            ObjectEncoding::Amf3,
            4096,
        )
        .unwrap();
        c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
        assert!(
            c.wait_call_status(4, WAIT),
            "{:?}\n{}",
            c.call_statuses(),
            sono.log()
        );
        let play = c.create_stream().unwrap();
        c.play(play, "remote").unwrap();
        let mic = c.create_stream().unwrap();
        c.publish(mic, "mic").unwrap();
        clients.push((c, mic));
    }
    let talkers: Vec<_> = clients
        .into_iter()
        .map(|(mut c, mic)| {
            let tags = tags.clone();
            std::thread::spawn(move || {
                // Sends until sono closes it (an error) or the time is up.
                let _ = c.publish_without_reading(mic, &tags, STALL);
                c
            })
        })
        .collect();

    // While they read nothing, their audio still goes up to the peer…
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let up_before = sono.metric("sono_rtp_packets_sent_total");
    std::thread::sleep(Duration::from_secs(3));
    let up_after = sono.metric("sono_rtp_packets_sent_total");
    let media_calls = sono.metric("sono_calls{state=\"media\"}");
    let dropped = sono.metric("sono_audio_down_dropped_total");
    assert!(
        up_after - up_before >= (CLIENTS * 3 * 50) as f64 * 0.8,
        "audio up stalled: {up_before} then {up_after} RTP packets sent\n{}",
        sono.log()
    );
    eprintln!(
        "{CLIENTS} stalled clients: {} RTP packets up in 3 s, {media_calls} calls with media, {dropped} audio messages down dropped",
        up_after - up_before
    );
    // …their calls stay up, and the audio down they leave unread is dropped.
    assert_eq!(media_calls, CLIENTS as f64, "{}", sono.log());
    assert!(dropped > 0.0, "no audio down dropped\n{}", sono.log());

    // Finally closed, for what really happened.
    let closed = "the client has read nothing for";
    assert!(
        sono.wait_log(closed, STALL.saturating_sub(started.elapsed()) + WAIT),
        "{}",
        sono.log()
    );
    for t in talkers {
        let _ = t.join();
    }
    let log = sono.log();
    assert_eq!(log.matches(closed).count(), CLIENTS, "{log}");
    for wrong in ["the client sent nothing", "no RTP from the peer"] {
        assert!(!log.contains(wrong), "{wrong:?} logged:\n{log}");
    }
    let dropped = sono.metric("sono_audio_down_dropped_total");
    assert!(
        dropped >= (CLIENTS * 100) as f64,
        "{dropped} audio messages down dropped"
    );
}
