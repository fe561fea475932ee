//! A browser's SDP offer and sono's answer (JSEP, RFC 8829; the exchange
//! has RFC 9725's shape), sans-I/O: the offer's text in, a configured
//! str0m `Rtc` and the answer's text out, or why not. sono answers as an
//! ICE-lite agent (RFC 8445 §2.5) with one host candidate, DTLS-SRTP, Opus
//! (RFC 7587) and telephone-event (RFC 4733); an offer with no audio sono
//! can send and receive in Opus is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    #[error("the offer has no audio that sono can receive and send in Opus")]
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
) -> Result<(Rtc, String), OfferRefused> {
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| OfferRefused::BadOffer(without_addresses(&e.to_string())))?;
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
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
        .accept_offer(offer)
        .map_err(|e| OfferRefused::BadOffer(without_addresses(&e.to_string())))?;
    let sdp = answer.to_sdp_string();
    let audio = sdp
        .lines()
        .any(|l| l.starts_with("m=audio") && !l.starts_with("m=audio 0 "));
    if !audio || !sdp.to_ascii_lowercase().contains("opus/48000") {
        return Err(OfferRefused::NoAudio);
    }
    Ok((rtc, sdp))
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
    let (mut rtc, sdp) = answer_offer(offer, local, Duration::from_secs(1), now).ok()?;
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
