//! Two-way audio through the real `sono` binary, measured. The test client
//! publishes a spoken sentence as Speex wideband (as Flash does) and records
//! what sono plays to it; baresip answers, plays its own sentence and
//! records what it hears. Each direction gets a PESQ score against its
//! source, and the same codec chain applied offline by ffmpeg to the same
//! file gets one too: the gateway may cost at most 0.3 MOS.

use std::time::Duration;

use sono_rtmp::ObjectEncoding;
use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{Baresip, FlashClient, FlvAudioTag, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 30000\nrtp_port_max = 30999\n";

/// How much worse than the offline chain the gateway may sound.
const MAX_COST: f64 = 0.3;

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
}

fn rate(mode: &str) -> u32 {
    if mode == "nb" {
        8000
    } else {
        16_000
    }
}

/// What the client heard, decoded by ffmpeg from the Speex it received.
fn client_heard(
    c: &FlashClient,
    play_stream: u32,
    dir: &AudioDir,
    mode: &str,
) -> std::path::PathBuf {
    let tags: Vec<FlvAudioTag> = c
        .audio
        .iter()
        .filter(|(stream, _, _)| *stream == play_stream)
        .map(|(_, timestamp, data)| FlvAudioTag {
            timestamp: *timestamp,
            data: data.clone(),
        })
        .collect();
    assert!(
        tags.len() > 100,
        "the client got only {} audio messages",
        tags.len()
    );
    assert!(
        tags.iter().all(|t| t.data[0] == 0xB2),
        "audio down is Speex 16 kHz (0xB2)"
    );
    let flv = dir.file("client-heard.flv");
    audio::write_flv_audio(&flv, &tags);
    let wav = dir.file("client-heard.wav");
    audio::convert(&flv, rate(mode), &wav);
    wav
}

fn two_way_audio(path: CodecPath) {
    let dir = AudioDir::new(path.baresip_codec.split('/').next().unwrap_or("codec"));
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
        "-af",
        "apad=pad_dur=20",
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
    let sono = Sono::start(SONO, MEDIA);
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![peer.uri().into()]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| c.call_statuses().iter().any(|(s, _, _)| *s == 4)),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let publish = c.create_stream().unwrap();
    let play = c.create_stream().unwrap();
    c.play(play, "remote").unwrap();
    c.publish(publish, "mic").unwrap();
    c.publish_wav_as_speex(publish, &client_src).unwrap();
    // The peer's sentence is about as long; let the rest arrive.
    c.pump(Duration::from_secs(2)).unwrap();
    c.call("hangup", vec![]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| c.call_statuses().iter().any(|(s, _, _)| *s == 0)),
        "{:?}",
        c.call_statuses()
    );
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());

    // Up: client → sono → baresip.
    let heard_by_peer = peer
        .heard()
        .unwrap_or_else(|| panic!("no recording\n{}", peer.log()));
    let peer_heard = dir.file("peer-heard.wav");
    audio::convert(&heard_by_peer, r, &peer_heard);
    let client_ref = dir.file("client-ref.wav");
    audio::convert(&client_src, r, &client_ref);
    let up_gateway = audio::pesq(path.mode, &client_ref, &peer_heard);
    let speex = dir.file("up-speex.wav");
    audio::speex_round_trip(&client_src, 16_000, &speex);
    let up_offline_wav = dir.file("up-offline.wav");
    audio::round_trip(&speex, path.sip_codec, path.container, r, &up_offline_wav);
    let up_offline = audio::pesq(path.mode, &client_ref, &up_offline_wav);

    // Down: baresip → sono → client.
    let client_heard = client_heard(&c, play, &dir, path.mode);
    let peer_ref = dir.file("peer-ref.wav");
    audio::convert(&peer_src, r, &peer_ref);
    let down_gateway = audio::pesq(path.mode, &peer_ref, &client_heard);
    let sip_leg = dir.file("down-sip.wav");
    audio::round_trip(&peer_src, path.sip_codec, path.container, 16_000, &sip_leg);
    let down_offline_wav = dir.file("down-offline.wav");
    audio::speex_round_trip(&sip_leg, r, &down_offline_wav);
    let down_offline = audio::pesq(path.mode, &peer_ref, &down_offline_wav);

    eprintln!(
        "{} PESQ-{}: up {up_gateway:.2} (offline {up_offline:.2}), down {down_gateway:.2} (offline {down_offline:.2})",
        path.baresip_codec, path.mode
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
fn speex_client_to_g722_peer_and_back_costs_at_most_0_3_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "G722/16000/1",
        mode: "wb",
        sip_codec: &["-ar", "16000", "-c:a", "g722"],
        container: "g722",
    });
}

#[test]
fn speex_client_to_pcmu_peer_and_back_costs_at_most_0_3_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMU/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_mulaw"],
        container: "au",
    });
}

#[test]
fn speex_client_to_pcma_peer_and_back_costs_at_most_0_3_mos() {
    two_way_audio(CodecPath {
        baresip_codec: "PCMA/8000/1",
        mode: "nb",
        sip_codec: &["-ar", "8000", "-c:a", "pcm_alaw"],
        container: "au",
    });
}
