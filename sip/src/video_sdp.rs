//! The video stream of an offer or answer: H.264 over RTP (RFC 6184 §8)
//! with packetization-mode 1, which is what sono's packetizer makes
//! (single NAL units, STAP-A, FU-A), and the keyframe feedback of RFC 4585
//! §4.2 (`nack pli`) and RFC 5104 §7.1 (`ccm fir`).
//!
//! Video is passed through untouched, so the only codec is H.264 and a
//! peer that offers only VP8 or H.263 gets its video line refused (port
//! 0, RFC 3264 §6) while audio goes on.

use std::net::SocketAddr;

use crate::sdp::{Direction, Media, RtpMap, SessionDescription};

/// Our payload type for H.264 in offers.
pub const H264_PT: u8 = 96;

/// Constrained Baseline, level 3.1 (RFC 6184 §8.1, `42e01f`): what every
/// H.264 phone decodes and Flash Player 11's camera default.
pub const CONSTRAINED_BASELINE_31: &str = "42e01f";

/// What we can do for video in this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVideo {
    pub port: u16,
    /// `profile-level-id` to announce: the client's (from its sequence
    /// header) or Constrained Baseline 3.1.
    pub profile_level_id: String,
    /// `sprop-parameter-sets`, when the client's are known.
    pub sprop_parameter_sets: Option<String>,
}

/// What offer and answer settled for video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVideo {
    pub payload_type: u8,
    /// Where to send RTP; `None` on hold.
    pub remote: Option<SocketAddr>,
    /// Our direction.
    pub direction: Direction,
    /// The peer takes RTCP PLI (`nack pli`) and FIR (`ccm fir`).
    pub pli: bool,
    pub fir: bool,
    /// The peer's `sprop-parameter-sets`, if it announced them.
    pub sprop_parameter_sets: Option<String>,
}

/// The `a=fmtp` parameter `name` of a parameter list.
fn fmtp_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// Whether payload type `pt` of `m` is H.264 in packetization-mode 1.
fn is_h264_mode_1(m: &Media, pt: u8) -> bool {
    let h264 = m
        .rtpmap(pt)
        .is_some_and(|r| r.encoding.eq_ignore_ascii_case("H264") && r.clock_rate == 90_000);
    let mode = m
        .fmtps
        .iter()
        .find(|(p, _)| *p == pt)
        .and_then(|(_, params)| fmtp_param(params, "packetization-mode"));
    h264 && mode == Some("1")
}

fn feedback(m: &Media, pt: u8, what: &str) -> bool {
    let pt = pt.to_string();
    m.rtcp_fb
        .iter()
        .any(|(p, fb)| (p == "*" || *p == pt) && fb.eq_ignore_ascii_case(what))
}

impl LocalVideo {
    /// Our video line offering H.264 at `pt` (96 in a first offer) in
    /// `direction`.
    pub fn line(&self, pt: u8, direction: Direction) -> Media {
        let mut params = format!(
            "packetization-mode=1;profile-level-id={}",
            self.profile_level_id
        );
        if let Some(sprop) = &self.sprop_parameter_sets {
            params.push_str(";sprop-parameter-sets=");
            params.push_str(sprop);
        }
        Media {
            kind: "video".into(),
            port: self.port,
            protocol: "RTP/AVP".into(),
            formats: vec![pt.to_string()],
            connection: None,
            rtpmaps: vec![RtpMap {
                payload_type: pt,
                encoding: "H264".into(),
                clock_rate: 90_000,
                channels: None,
            }],
            fmtps: vec![(pt, params)],
            ptime: None,
            direction: Some(direction),
            crypto: Vec::new(),
            rtcp_fb: vec![
                (pt.to_string(), "nack pli".into()),
                (pt.to_string(), "ccm fir".into()),
            ],
        }
    }

    /// Our answer to an offered video line, and what it settles; `None`
    /// if it has no H.264 we can carry (the caller refuses it).
    pub fn answer(
        &self,
        offer: &SessionDescription,
        m: &Media,
        wish: Direction,
    ) -> Option<(Media, NegotiatedVideo)> {
        if m.port == 0 || m.protocol != "RTP/AVP" {
            return None;
        }
        let pt = m.payload_types().find(|pt| is_h264_mode_1(m, *pt))?;
        let offered = m
            .direction
            .or(offer.direction)
            .unwrap_or(Direction::SendRecv);
        let direction = offered.answer().within(wish);
        let mut line = self.line(pt, direction);
        // Feedback we answer is what both sides do.
        let (pli, fir) = (feedback(m, pt, "nack pli"), feedback(m, pt, "ccm fir"));
        line.rtcp_fb
            .retain(|(_, fb)| (fb == "nack pli" && pli) || (fb == "ccm fir" && fir));
        Some((line, settled(offer, m, pt, direction)))
    }

    /// What an answer's video line settles for our offer in `offered`.
    pub fn settle(
        &self,
        answer: &SessionDescription,
        offered: Direction,
    ) -> Option<NegotiatedVideo> {
        let m = answer
            .media
            .iter()
            .find(|m| m.kind == "video" && m.port != 0)?;
        let pt = m.payload_types().find(|pt| is_h264_mode_1(m, *pt))?;
        let theirs = m
            .direction
            .or(answer.direction)
            .unwrap_or(Direction::SendRecv);
        Some(settled(answer, m, pt, theirs.answer().within(offered)))
    }
}

fn settled(sd: &SessionDescription, m: &Media, pt: u8, direction: Direction) -> NegotiatedVideo {
    let ip = m.connection.or(sd.connection);
    let remote = ip
        .filter(|ip| !ip.is_unspecified() && m.port != 0)
        .map(|ip| SocketAddr::new(ip, m.port));
    NegotiatedVideo {
        payload_type: pt,
        remote,
        direction,
        pli: feedback(m, pt, "nack pli"),
        fir: feedback(m, pt, "ccm fir"),
        sprop_parameter_sets: m
            .fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .and_then(|(_, params)| fmtp_param(params, "sprop-parameter-sets"))
            .map(str::to_owned),
    }
}
