//! A browser's SDP offer and sono's answer (JSEP, RFC 8829; the exchange
//! has RFC 9725's shape), sans-I/O: the offer's text in, a configured
//! str0m `Rtc` and the answer's text out, or why not. sono answers as an
//! ICE-lite agent (RFC 8445 §2.5) with one host candidate, DTLS-SRTP, Opus
//! (RFC 7587), G.722, PCMU and PCMA (RFC 3551) and telephone-event
//! (RFC 4733). The browser's first audio codec among those is the
//! session's (the offerer's preference, RFC 3264 §6.1): Opus for a
//! browser's own offer, G.722 or G.711 for a page that prefers it
//! (`setCodecPreferences`) to reach a G.722 phone or a G.711 trunk
//! untouched. An offer with none of them is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sono_media::codec::ClientCodec;
use sono_media::g711::Law;
use str0m::change::SdpOffer;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Rtc, RtcConfig};

/// Why an offer was not answered.
#[derive(Debug, thiserror::Error)]
pub enum OfferRefused {
    #[error("WebRTC is off (webrtc.enabled)")]
    Disabled,
    #[error("the offer is not SDP sono can read: {0}")]
    BadOffer(String),
    #[error("the offer has no audio that sono can receive and send (Opus, G722, PCMU or PCMA)")]
    NoAudio,
    #[error("too many WebRTC sessions ({0})")]
    TooMany(&'static str),
    #[error("this address holds webrtc.max_sessions_per_address sessions already")]
    TooManyFromAddress,
    #[error("the connection arbiters did not start the session")]
    NotStarted,
    #[error("the connection already has WebRTC media, or is closing")]
    AlreadyAttached,
    #[error("no UDP port is free for WebRTC: {0}")]
    NoPort(std::io::Error),
}

/// Answers `offer` with one host candidate at `candidate`; a browser that
/// sends no audio for `media_timeout` is reported paused.
pub fn answer_offer(
    offer: &str,
    candidate: SocketAddr,
    media_timeout: Duration,
    now: Instant,
) -> Result<(Rtc, String, ClientCodec), OfferRefused> {
    let sdp_offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| OfferRefused::BadOffer(without_addresses(&e.to_string())))?;
    // The browser's first codec sono speaks is the only one answered (str0m
    // would answer in its own order).
    let (codec, _) = first_codec(offer).ok_or(OfferRefused::NoAudio)?;
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(codec == ClientCodec::Opus, false)
        .enable_pcmu(codec == ClientCodec::G711(Law::Mu), false)
        .enable_pcma(codec == ClientCodec::G711(Law::A), false)
        .enable_g722(codec == ClientCodec::G722, false)
        .set_pause_threshold(media_timeout);
    // RFC 4733 from the page's RTCDTMFSender, at the rates browsers offer
    // it (Opus's clock, and the classic 8 kHz).
    for (pt, clock) in [
        (126, Frequency::FORTY_EIGHT_KHZ),
        (101, Frequency::EIGHT_KHZ),
    ] {
        config.codec_config().add_config(
            Pt::new_with_value(pt),
            None,
            Codec::Tele,
            clock,
            None,
            FormatParams::default(),
        );
    }
    let mut rtc = config.build(now);
    let host = Candidate::host(candidate, "udp")
        .map_err(|e| OfferRefused::BadOffer(format!("a host candidate: {e}")))?;
    rtc.add_local_candidate(host);
    let answer = rtc
        .sdp_api()
        .accept_offer(sdp_offer)
        .map_err(|e| OfferRefused::BadOffer(without_addresses(&e.to_string())))?;
    let sdp = answer.to_sdp_string();
    match first_codec(&sdp) {
        Some((answered, true)) if answered == codec => Ok((rtc, sdp, codec)),
        _ => Err(OfferRefused::NoAudio),
    }
}

/// The first codec sono speaks among the payload types of the first live
/// audio section of `sdp`, in their order (the offerer's preference), and
/// whether it is the section's very first payload type.
fn first_codec(sdp: &str) -> Option<(ClientCodec, bool)> {
    let mut lines = sdp
        .lines()
        .skip_while(|l| !l.starts_with("m=audio") || l.starts_with("m=audio 0 "));
    let m_line = lines.next()?;
    let attributes: Vec<&str> = lines.take_while(|l| !l.starts_with("m=")).collect();
    m_line
        .split_whitespace()
        .skip(3)
        .enumerate()
        .find_map(|(i, pt)| {
            let rtpmap = format!("a=rtpmap:{pt} ");
            let name = attributes
                .iter()
                .find_map(|l| l.strip_prefix(rtpmap.as_str()))?
                .to_ascii_lowercase();
            let codec = if name.starts_with("opus/48000") {
                ClientCodec::Opus
            } else if name.starts_with("pcmu/8000") {
                ClientCodec::G711(Law::Mu)
            } else if name.starts_with("pcma/8000") {
                ClientCodec::G711(Law::A)
            } else if name.starts_with("g722/8000") {
                ClientCodec::G722
            } else {
                return None;
            };
            Some((codec, i == 0))
        })
}

/// str0m's parse errors name where in memory the parser stopped; that is
/// of no use to the page, and a process's addresses are not its business.
fn without_addresses(error: &str) -> String {
    error
        .lines()
        .filter(|l| !l.contains("PointerOffset"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The fuzz target's driver (`fuzz/fuzz_targets/webrtc_offer.rs`) and the
/// seed corpus test: up to the first 0xFF byte an offer, then datagrams
/// (a length byte each) for the answered session, as if from the browser.
/// Nothing may panic.
pub fn fuzz_offer(data: &[u8]) -> Option<String> {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let offer = std::str::from_utf8(&data[..split]).ok()?;
    let now = Instant::now();
    let local = SocketAddr::from(([127, 0, 0, 1], 30_000));
    let (mut rtc, sdp, _) = answer_offer(offer, local, Duration::from_secs(1), now).ok()?;
    let mut rest = data.get(split + 1..).unwrap_or(&[]);
    let source = SocketAddr::from(([127, 0, 0, 1], 40_000));
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let Ok(contents) = datagram.try_into() else {
            continue;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            },
        );
        if rtc.accepts(&input) {
            let _ = rtc.handle_input(input);
        }
        while let Ok(output) = rtc.poll_output() {
            if matches!(output, str0m::Output::Timeout(_)) {
                break;
            }
        }
    }
    Some(sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(m_line: &str, rtpmaps: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             {m_line}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             a=fingerprint:sha-256 00:07:0E:15:1C:23:2A:31:38:3F:46:4D:54:5B:62:69:70:77:7E:85:8C:93:9A:A1:A8:AF:B6:BD:C4:CB:D2:D9\r\n\
             a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n{rtpmaps}"
        )
    }

    fn answer(m_line: &str, rtpmaps: &str) -> Result<ClientCodec, OfferRefused> {
        let local = SocketAddr::from(([127, 0, 0, 1], 30_000));
        answer_offer(
            &offer(m_line, rtpmaps),
            local,
            Duration::from_secs(1),
            Instant::now(),
        )
        .map(|(_, _, codec)| codec)
    }

    #[test]
    fn the_browsers_first_codec_we_speak_is_the_sessions() {
        let all = "a=rtpmap:111 opus/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
        assert_eq!(
            answer("m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8", all).unwrap(),
            ClientCodec::Opus
        );
        assert_eq!(
            answer("m=audio 9 UDP/TLS/RTP/SAVPF 0 111 9 8", all).unwrap(),
            ClientCodec::G711(Law::Mu)
        );
        assert_eq!(
            answer("m=audio 9 UDP/TLS/RTP/SAVPF 9 8 0 111", all).unwrap(),
            ClientCodec::G722
        );
        // G.729 is not one of ours: the next one is taken.
        assert_eq!(
            answer(
                "m=audio 9 UDP/TLS/RTP/SAVPF 18 8 0 111",
                &format!("a=rtpmap:18 G729/8000\r\n{all}")
            )
            .unwrap(),
            ClientCodec::G711(Law::A)
        );
        assert!(matches!(
            answer(
                "m=audio 9 UDP/TLS/RTP/SAVPF 18",
                "a=rtpmap:18 G729/8000\r\n"
            ),
            Err(OfferRefused::NoAudio)
        ));
    }
}
