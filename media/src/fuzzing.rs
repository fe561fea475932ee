//! Drivers shared by the media fuzz targets and the corpus tests, so a crash
//! the fuzzer finds becomes a seed the test suite replays. Each checks a
//! property beyond "does not panic".

use std::time::{Duration, Instant};

use crate::codec::{ClientCodec, SipCodec};
use crate::downlink::{Downlink, DownlinkConfig};
use crate::rtcp;
use crate::rtp::RtpPacket;
use crate::rtp_sender::RtpSender;
use crate::speex::{frames_in_packet, SpeexWbDecoder, SPEEX_WB_FRAME};
use crate::uplink::{Uplink, UplinkConfig};

/// Any datagram on an RTCP port. A compound that parses and reports on us
/// survives our own writer.
pub fn rtcp(data: &[u8]) {
    if let Ok(report) = rtcp::parse(data, 0x0102_0304) {
        if let Some(block) = report.about_us {
            let mut out = Vec::new();
            rtcp::write_report(7, None, Some(block), "fuzz", &mut out);
            let again = rtcp::parse(&out, 0x0102_0304).expect("our own report parses");
            assert_eq!(again.about_us, Some(block));
        }
    }
}

/// Any bytes as a Speex packet: counting frames never panics nor claims
/// more than a packet may hold, and libspeex's decoding through our wrapper
/// gives whole frames only. (On garbage the two may disagree on the count:
/// libspeex decodes what our counter refuses, which the fuzzer showed.)
pub fn speex(data: &[u8]) {
    if let Some(n) = frames_in_packet(data) {
        assert!(n <= 16);
    }
    let mut decoder = SpeexWbDecoder::new();
    let mut out = Vec::new();
    let decoded = decoder.decode(data, &mut out);
    assert_eq!(out.len(), decoded * SPEEX_WB_FRAME);
}

/// The SIP codec and payload type a fuzz input's first byte picks.
fn sip_codec(selector: u8) -> (SipCodec, u8) {
    match selector % 5 {
        0 => (SipCodec::Pcmu, 0),
        1 => (SipCodec::Pcma, 8),
        2 => (SipCodec::G722, 9),
        3 => (SipCodec::SpeexWb, 97),
        _ => (SipCodec::Opus, 111),
    }
}

/// Any bytes as Nellymoser blocks: the decoder gives 256 samples per whole
/// block and nothing for a partial one; and any bytes as 16-bit samples
/// through the encoder give one 64-byte block per 256 samples, which our
/// decoder reads back.
pub fn nellymoser(data: &[u8]) {
    use crate::nellymoser::{NellymoserDecoder, NellymoserEncoder, BLOCK_BYTES, BLOCK_SAMPLES};
    let mut out = Vec::new();
    let blocks = NellymoserDecoder::new().decode(data, &mut out);
    assert_eq!(blocks, data.len() / BLOCK_BYTES);
    assert_eq!(out.len(), blocks * BLOCK_SAMPLES);
    let pcm: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut coded = Vec::new();
    let written = NellymoserEncoder::new().encode(&pcm, &mut coded);
    assert_eq!(written, pcm.len() / BLOCK_SAMPLES);
    assert_eq!(coded.len(), written * BLOCK_BYTES);
    let mut back = Vec::new();
    assert_eq!(NellymoserDecoder::new().decode(&coded, &mut back), written);
}

/// Splits fuzz input into (delay in ms, bytes) records: one byte of delay,
/// one of length, then the bytes.
fn records(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&delay, tail) = rest.split_first()?;
        let (&len, tail) = tail.split_first()?;
        let len = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        Some((u64::from(delay), chunk))
    })
}

/// A fuzzed datagram as RTP: itself if it parses, else the packet `around`
/// builds with it as the payload (written into `built`), so non-RTP bytes
/// still reach the payload decoders.
fn datagram<'a>(
    bytes: &'a [u8],
    built: &'a mut Vec<u8>,
    around: impl FnOnce(&'a [u8]) -> RtpPacket<'a>,
) -> Option<RtpPacket<'a>> {
    if let Ok(p) = RtpPacket::parse(bytes) {
        return Some(p);
    }
    around(bytes).write(built);
    RtpPacket::parse(built).ok()
}

/// A peer sending anything at any time to a call's RTP port, for each SIP
/// codec and client codec (Speex and Opus both having a passthrough path):
/// the downlink never panics and
/// never gives the client more than one frame a tick (plus the few late
/// frames passthrough may catch up with).
pub fn downlink(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let (codec, pt) = sip_codec(selector);
    let mut down = Downlink::new(DownlinkConfig {
        codec,
        payload_type: pt,
        telephone_event: Some(101),
        ptime_ms: 20,
        jitter_min: Duration::from_millis(20),
        jitter_max: Duration::from_millis(200),
        speex_quality: 4,
        speex_complexity: 1,
        // Half the inputs also go through the silence gate.
        silence_dbov: (selector & 0x40 != 0).then_some(-60.0),
    });
    // Half go down to a browser (Opus; passed through from an Opus peer).
    if selector & 0x80 != 0 {
        down.set_client_codec(ClientCodec::Opus);
    }
    let mut now = Instant::now();
    let mut ticks = 0u64;
    let mut frames = 0u64;
    for (delay, bytes) in records(data) {
        now += Duration::from_millis(delay);
        let mut built = Vec::new();
        let Some(packet) = datagram(bytes, &mut built, |payload| {
            let seq = u16::from(bytes.first().copied().unwrap_or(0));
            let kind = if bytes.len() % 5 == 0 { 101 } else { pt };
            RtpPacket {
                marker: false,
                payload_type: kind,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 1,
                csrc_count: 0,
                payload,
            }
        }) else {
            continue;
        };
        let _ = down.rtp(now, &packet);
        let mut out = Vec::new();
        down.tick(now, &mut out);
        ticks += 1;
        frames += out.len() as u64;
        assert!(frames <= ticks + 3, "{frames} frames in {ticks} ticks");
    }
    let _ = down.receive_stats().report();
}

/// A client publishing anything: the uplink never panics, and whatever it
/// sends is RTP of the negotiated payload type or telephone-event.
pub fn uplink(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let (codec, pt) = sip_codec(selector);
    let mut up = Uplink::new(
        UplinkConfig {
            codec,
            payload_type: pt,
            telephone_event: Some(101),
            ptime_ms: 20,
            speex_quality: 4,
            speex_complexity: 1,
            dtmf_duration_ms: 60,
            dtmf_pause_ms: 20,
        },
        RtpSender::new(1, 2, 3),
    );
    let mut clock = 0u32;
    let mut out = Vec::new();
    for (delay, bytes) in records(data) {
        clock = clock.wrapping_add(u32::from(delay as u8) * 4);
        if delay == 0xFF {
            let _ = up.send_dtmf(&String::from_utf8_lossy(bytes));
        } else {
            // The delay also picks what the client publishes: Flash's
            // Speex, Opus or G.722 from a browser, or any of the RTMP
            // tools' codecs.
            let codec = match delay % 8 {
                0 => ClientCodec::SpeexWb,
                1 => ClientCodec::Opus,
                2 if delay & 32 != 0 => ClientCodec::G722,
                2 => ClientCodec::G711(crate::g711::Law::Mu),
                3 => ClientCodec::Aac,
                4 => ClientCodec::Mp3,
                5 => ClientCodec::Adpcm {
                    rate: 22_050,
                    stereo: delay & 8 != 0,
                },
                6 => ClientCodec::Pcm {
                    rate: 44_100,
                    stereo: delay & 8 != 0,
                    sixteen_bit: delay & 16 != 0,
                },
                _ => ClientCodec::Nellymoser { rate: 8_000 },
            };
            let _ = up.client_audio(codec, clock, bytes, &mut out);
        }
        up.tick(&mut out);
        for datagram in out.drain(..) {
            let p = RtpPacket::parse(&datagram).expect("we send RTP");
            assert!(p.payload_type == pt || p.payload_type == 101);
        }
    }
}

/// Any bytes as a run of FLV AAC messages (two bytes of length, big
/// endian, before each): the AudioSpecificConfig parser and the decoder never panic, a
/// config is only taken when it parses, and each frame decodes to at most
/// one 1024-sample frame of mono.
pub fn aac(data: &[u8]) {
    use crate::aac::{AacDecoder, AacOutput, AudioSpecificConfig};
    let _ = AudioSpecificConfig::parse(data);
    let mut decoder = AacDecoder::new();
    let mut out = Vec::new();
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (message, tail) = tail.split_at(len);
        rest = tail;
        let before = out.len();
        match decoder.decode(message, &mut out) {
            Ok(AacOutput::Configured(c)) => {
                assert_eq!(Some(c), decoder.config());
                assert_eq!(out.len(), before);
            }
            Ok(AacOutput::Audio { rate }) => {
                assert!((7_350..=96_000).contains(&rate));
                assert!(out.len() - before <= 1024, "{}", out.len() - before);
            }
            Err(_) => {}
        }
    }
}

/// Any bytes as an FLV MP3 message, twice (the second time the decoder
/// has the first's state): frames are found or refused, never read past
/// the message, and each decodes to at most one frame's samples (1152).
pub fn mp3(data: &[u8]) {
    use crate::mp3::{FrameHeader, Mp3Decoder};
    if let Ok(h) = FrameHeader::parse(data) {
        assert!(h.length >= 24 && h.length <= 2_881, "{h:?}");
    }
    let mut decoder = Mp3Decoder::new();
    let mut out = Vec::new();
    for message in [data, data] {
        let before = out.len();
        let frames = message.len() / 24 + 1;
        if let Ok(rate) = decoder.decode(message, &mut out) {
            // (An empty message decodes nothing, at no rate yet.)
            assert!(out.len() == before || (8_000..=48_000).contains(&rate));
        }
        assert!(out.len() - before <= frames * 1152);
    }
}

/// Any bytes as Flash ADPCM, mono and stereo: never more samples than the
/// bits allow (2-bit codes, plus one initial sample a packet).
pub fn adpcm(data: &[u8]) {
    for stereo in [false, true] {
        let mut out = Vec::new();
        match crate::adpcm::decode(data, stereo, &mut out) {
            Ok(n) => {
                assert_eq!(n, out.len());
                assert!(n <= data.len() * 8 / 2 + 1);
            }
            Err(_) => assert!(out.is_empty()),
        }
    }
}

/// Any bytes as linear PCM in each layout: whole sample frames decode to
/// exactly one mono sample each, anything else is refused whole.
pub fn pcm(data: &[u8]) {
    for (stereo, sixteen_bit) in [(false, false), (false, true), (true, false), (true, true)] {
        let width = (usize::from(stereo) + 1) * (usize::from(sixteen_bit) + 1);
        let mut out = Vec::new();
        match crate::pcm::decode(data, stereo, sixteen_bit, &mut out) {
            Ok(n) => assert_eq!((n, out.len()), (data.len() / width, data.len() / width)),
            Err(_) => {
                assert!(!data.len().is_multiple_of(width));
                assert!(out.is_empty());
            }
        }
    }
}

/// For the `aac` and `mp3` fuzz targets' start: symphonia's decoders panic
/// on some malformed frames, and sono contains those panics
/// ([`crate::symphonia_pcm::guarded`]: the frame is lost, the decoder
/// replaced, the call goes on). This lets a panic raised inside
/// symphonia's source unwind to that guard, and hands every other panic
/// (in our framing, our parsers, the drivers' checks) to the hook in place,
/// libFuzzer's, which aborts.
pub fn let_symphonia_panics_reach_the_guard() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .location()
            .is_some_and(|l| l.file().contains("/symphonia-"))
        {
            return;
        }
        abort(info);
    }));
}

/// A client publishing any video messages (records of a delay and one
/// message) into a video call: the uplink never panics, and whatever it
/// sends is RTP of the call's payload type, no payload over the MTU, the
/// marker on the last packet of each access unit only, and the NAL units
/// of each access unit rebuilt by our own depacketizer.
pub fn flv_avc(data: &[u8]) {
    use crate::h264::depacketizer::Depacketizer;
    use crate::h264::packetizer::DEFAULT_MTU;
    use crate::h264::video_uplink::{VideoUp, VideoUplink};
    let Some((&cap, data)) = data.split_first() else {
        return;
    };
    // Half the inputs meet a tight bitrate cap.
    let cap = if cap & 1 == 0 { 0 } else { 64_000 };
    let mut up = VideoUplink::new(96, (1, 2, 3), cap);
    let mut now = Instant::now();
    for (delay, message) in records(data) {
        now += Duration::from_millis(delay);
        let mut packets = Vec::new();
        let outcome = up.push(message, (delay as u32).wrapping_mul(33), now, &mut packets);
        if let Ok(VideoUp::Sent(n)) = outcome {
            assert_eq!(n, packets.len());
        } else {
            assert!(packets.is_empty(), "{outcome:?} sent packets");
        }
        let mut depacketizer = Depacketizer::new();
        let mut nalus = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let rtp = RtpPacket::parse(p).expect("our RTP parses");
            assert_eq!(rtp.payload_type, 96);
            assert!(rtp.payload.len() <= DEFAULT_MTU);
            assert_eq!(rtp.marker, i + 1 == packets.len());
            depacketizer
                .push(rtp.payload, &mut nalus)
                .expect("our payloads depacketize");
        }
    }
}

/// A peer sending any datagrams (records of a delay and one datagram; one
/// that is not RTP becomes the payload of an H.264 packet) to a video
/// call's port: the downlink never panics, and every message it gives the
/// client is an FLV AVC message that reads back, access units only after
/// a sequence header, a keyframe's holding an IDR picture.
pub fn rtp_h264(data: &[u8]) {
    use crate::h264::flv_video::{self, VideoMessage};
    use crate::h264::video_downlink::{VideoDown, VideoDownlink};
    use crate::h264::{has_idr, nal_type, nal_unit_type};
    let mut down = VideoDownlink::new(None, 0);
    let mut config = None;
    let mut now = Instant::now();
    let mut sequence = 0u16;
    let check = |event: VideoDown, config: &mut Option<flv_video::AvcConfig>| {
        let VideoDown::Message { data, keyframe, .. } = event else {
            return;
        };
        match flv_video::parse(&data, config.as_ref()).expect("our FLV message reads back") {
            VideoMessage::Config(c) => *config = Some(c),
            VideoMessage::AccessUnit {
                keyframe: k, nalus, ..
            } => {
                assert_eq!(k, keyframe);
                assert_eq!(keyframe, has_idr(&nalus));
                assert!(nalus
                    .iter()
                    .all(|n| !matches!(nal_unit_type(n), nal_type::SPS | nal_type::PPS)));
            }
            other => panic!("the downlink made {other:?}"),
        }
    };
    for (delay, bytes) in records(data) {
        now += Duration::from_millis(delay);
        let mut built = Vec::new();
        let Some(packet) = datagram(bytes, &mut built, |payload| {
            sequence = sequence.wrapping_add((delay % 3) as u16);
            RtpPacket {
                marker: delay & 0x80 != 0,
                payload_type: 96,
                sequence,
                timestamp: u32::from(sequence / 4) * 3000,
                ssrc: 1,
                csrc_count: 0,
                payload,
            }
        }) else {
            continue;
        };
        down.push(&packet, now);
        while let Some(event) = down.poll(now) {
            check(event, &mut config);
        }
    }
    let later = now + Duration::from_secs(1);
    while let Some(event) = down.poll(later) {
        check(event, &mut config);
    }
}
