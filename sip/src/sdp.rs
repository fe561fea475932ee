//! SDP (RFC 8866, formerly RFC 4566) as SIP phones use it, and the offer/answer
//! model (RFC 3264) for one audio stream: our offer, our answer to an offer, and
//! what an answer to our offer settles. Codecs: PCMU, PCMA, G.722, Speex 16 kHz,
//! and telephone-event (RFC 4733) for DTMF.
//!
//! Parsing keeps what offer/answer needs and skips unknown lines, as RFC 8866 §5
//! allows; it bounds what a peer can make us hold ([`MAX_LINES`], [`MAX_MEDIA`]).

use crate::sdes::{CryptoAttribute, CryptoSuite, KEY_AND_SALT};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// Most lines one SDP body may have.
pub const MAX_LINES: usize = 512;
/// Most m= sections one SDP body may have.
pub const MAX_MEDIA: usize = 16;
/// Most formats one m= line may list.
const MAX_FORMATS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("SDP has more than {0} lines or media sections")]
    TooLarge(usize),
    #[error("SDP has no {0}")]
    Missing(&'static str),
    #[error("no audio codec in common")]
    NoCommonCodec,
    /// SRTP is required (`sip.srtp = "required"`) and the other side's SDP
    /// brought no key we can use; or it asks for SRTP and ours is off.
    #[error("SRTP: {0}")]
    Srtp(String),
}

/// Media direction attributes (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Direction> {
        Some(match attr {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to an offer in this direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// What both allow: an answer never sends or receives where our own
    /// wish (on hold: sendonly) does not.
    pub fn within(self, wish: Direction) -> Direction {
        match (
            self.sends() && wish.sends(),
            self.receives() && wish.receives(),
        ) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether SDP in this direction from the peer puts us on hold (RFC
    /// 3264 §8.4: sendonly, or inactive when it was already sendonly).
    fn holds(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// One m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub protocol: String,
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<(u8, String)>,
    pub ptime: Option<u32>,
    pub direction: Option<Direction>,
    /// `a=crypto` values (RFC 4568), unparsed: each is judged when an
    /// offer or answer is made of them.
    pub crypto: Vec<String>,
    /// `a=rtcp-fb` values (RFC 4585 §4.2): the payload type (or `*`) and
    /// the feedback, e.g. `("96", "nack pli")`.
    pub rtcp_fb: Vec<(String, String)>,
}

/// Most `a=crypto` lines one m= section may carry.
const MAX_CRYPTO: usize = 16;
/// Most `a=rtcp-fb` lines one m= section may carry.
const MAX_RTCP_FB: usize = 32;

impl Media {
    /// Payload types of the formats, for RTP media.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    pub(crate) fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_user: String,
    pub session_id: u64,
    pub session_version: u64,
    pub origin_address: IpAddr,
    pub session_name: String,
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
}

impl SessionDescription {
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        let mut sd = SessionDescription {
            origin_user: "-".into(),
            session_id: 0,
            session_version: 0,
            origin_address: IpAddr::from([0, 0, 0, 0]),
            session_name: String::new(),
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut seen_version = false;
        let mut seen_origin = false;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            if n > MAX_LINES {
                return Err(SdpError::TooLarge(MAX_LINES));
            }
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = |reason| SdpError::Malformed { line: n, reason };
            // A stray CR or other control character inside a line would be
            // echoed into our answer (refused streams keep their formats)
            // and break it there (found by the sip_sdp fuzz target).
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad("a control character inside the line"));
            }
            let (kind, value) = line.split_once('=').ok_or(bad("not of the form x=value"))?;
            if kind.len() != 1 {
                return Err(bad("the type is not one letter"));
            }
            match kind {
                "v" => {
                    if value != "0" {
                        return Err(bad("version is not 0"));
                    }
                    seen_version = true;
                }
                "o" => {
                    let f: Vec<&str> = value.split(' ').collect();
                    if f.len() != 6 {
                        return Err(bad("o= needs six fields"));
                    }
                    sd.origin_user = f[0].to_owned();
                    sd.session_id = f[1]
                        .parse()
                        .map_err(|_| bad("session id is not a number"))?;
                    sd.session_version = f[2]
                        .parse()
                        .map_err(|_| bad("session version is not a number"))?;
                    // Peers put host names here too; only the c= address matters for media.
                    sd.origin_address = f[5].parse().unwrap_or(sd.origin_address);
                    seen_origin = true;
                }
                "s" => sd.session_name = value.to_owned(),
                "c" => {
                    let addr =
                        parse_connection(value).ok_or(bad("c= is not IN IP4/IP6 <address>"))?;
                    match sd.media.last_mut() {
                        Some(m) => m.connection = Some(addr),
                        None => sd.connection = Some(addr),
                    }
                }
                "m" => {
                    if sd.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooLarge(MAX_MEDIA));
                    }
                    let f: Vec<&str> = value.split(' ').filter(|s| !s.is_empty()).collect();
                    if f.len() < 4 {
                        return Err(bad("m= needs media, port, protocol and formats"));
                    }
                    // "port/count" is allowed; we use the first port.
                    let port = f[1]
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| bad("bad port"))?;
                    if f.len() - 3 > MAX_FORMATS {
                        return Err(bad("too many formats"));
                    }
                    sd.media.push(Media {
                        kind: f[0].to_owned(),
                        port,
                        protocol: f[2].to_owned(),
                        formats: f[3..].iter().map(|s| (*s).to_owned()).collect(),
                        connection: None,
                        rtpmaps: Vec::new(),
                        fmtps: Vec::new(),
                        ptime: None,
                        direction: None,
                        crypto: Vec::new(),
                        rtcp_fb: Vec::new(),
                    });
                }
                "a" => {
                    let (name, arg) = value
                        .split_once(':')
                        .map_or((value, None), |(a, b)| (a, Some(b)));
                    let direction = Direction::parse(name);
                    match sd.media.last_mut() {
                        None => {
                            if direction.is_some() {
                                sd.direction = direction;
                            }
                        }
                        Some(m) => match (name, arg) {
                            ("rtpmap", Some(arg)) => m
                                .rtpmaps
                                .push(parse_rtpmap(arg).ok_or(bad("a=rtpmap is malformed"))?),
                            ("fmtp", Some(arg)) => {
                                let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                                let pt = pt.parse().map_err(|_| bad("a=fmtp payload type"))?;
                                m.fmtps.push((pt, params.trim().to_owned()));
                            }
                            ("ptime", Some(arg)) => m.ptime = arg.trim().parse().ok(),
                            ("crypto", Some(arg)) => {
                                if m.crypto.len() >= MAX_CRYPTO {
                                    return Err(bad("too many a=crypto lines"));
                                }
                                m.crypto.push(arg.trim().to_owned());
                            }
                            ("rtcp-fb", Some(arg)) => {
                                if m.rtcp_fb.len() >= MAX_RTCP_FB {
                                    return Err(bad("too many a=rtcp-fb lines"));
                                }
                                let (pt, fb) = arg.trim().split_once(' ').unwrap_or((arg, ""));
                                m.rtcp_fb.push((pt.to_owned(), fb.trim().to_owned()));
                            }
                            _ if direction.is_some() => m.direction = direction,
                            _ => {}
                        },
                    }
                }
                // t=, b=, k=, i=, u=, e=, p=, z=, r= carry nothing offer/answer needs here.
                _ => {}
            }
        }
        if !seen_version {
            return Err(SdpError::Missing("v= line"));
        }
        if !seen_origin {
            return Err(SdpError::Missing("o= line"));
        }
        Ok(sd)
    }

    /// The first audio section, if any.
    pub fn audio(&self) -> Option<&Media> {
        self.media.iter().find(|m| m.kind == "audio")
    }

    /// Writes the description with CRLF line ends.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(512);
        let ip = |a: &IpAddr| match a {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        let _ = write!(
            s,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            self.origin_user,
            self.session_id,
            self.session_version,
            ip(&self.origin_address),
            self.origin_address,
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            }
        );
        if let Some(c) = &self.connection {
            let _ = write!(s, "c=IN {} {}\r\n", ip(c), c);
        }
        s.push_str("t=0 0\r\n");
        if let Some(d) = self.direction {
            let _ = write!(s, "a={}\r\n", d.name());
        }
        for m in &self.media {
            let _ = write!(
                s,
                "m={} {} {} {}\r\n",
                m.kind,
                m.port,
                m.protocol,
                m.formats.join(" ")
            );
            if let Some(c) = &m.connection {
                let _ = write!(s, "c=IN {} {}\r\n", ip(c), c);
            }
            for r in &m.rtpmaps {
                let _ = write!(
                    s,
                    "a=rtpmap:{} {}/{}",
                    r.payload_type, r.encoding, r.clock_rate
                );
                if let Some(ch) = r.channels {
                    let _ = write!(s, "/{ch}");
                }
                s.push_str("\r\n");
            }
            for (pt, params) in &m.fmtps {
                let _ = write!(s, "a=fmtp:{pt} {params}\r\n");
            }
            for c in &m.crypto {
                let _ = write!(s, "a=crypto:{c}\r\n");
            }
            for (pt, fb) in &m.rtcp_fb {
                let _ = write!(s, "a=rtcp-fb:{pt} {fb}\r\n");
            }
            if let Some(p) = m.ptime {
                let _ = write!(s, "a=ptime:{p}\r\n");
            }
            if let Some(d) = m.direction {
                let _ = write!(s, "a={}\r\n", d.name());
            }
        }
        s
    }
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut f = value.split(' ');
    if f.next()? != "IN" {
        return None;
    }
    let kind = f.next()?;
    // Multicast addresses carry "/ttl": the address is what comes before.
    let addr: IpAddr = f.next()?.split('/').next()?.parse().ok()?;
    match (kind, addr) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(addr),
        _ => None,
    }
}

fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(' ')?;
    let mut parts = rest.trim().split('/');
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding: parts.next()?.to_owned(),
        clock_rate: parts.next()?.parse().ok()?,
        channels: match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        },
    })
}

/// The audio codecs sono can put on the SIP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    /// Speex wideband, the Flash client's own codec: passthrough is possible.
    Speex16k,
    /// Opus (RFC 7587: always `opus/48000/2` in rtpmap, whatever is sent),
    /// a browser's own codec: passthrough is possible.
    Opus,
}

impl Codec {
    /// Name and clock rate as rtpmap writes them (G.722's is 8000 by RFC 3551's mistake).
    pub fn rtpmap(self) -> (&'static str, u32) {
        match self {
            Codec::Pcmu => ("PCMU", 8000),
            Codec::Pcma => ("PCMA", 8000),
            Codec::G722 => ("G722", 8000),
            Codec::Speex16k => ("speex", 16000),
            Codec::Opus => ("opus", 48000),
        }
    }

    /// The channel count rtpmap writes (RFC 7587 §7: Opus says 2, even for
    /// mono); `None` for one.
    fn channels(self) -> Option<u8> {
        (self == Codec::Opus).then_some(2)
    }

    /// The payload type sono offers it with.
    fn offer_payload_type(self) -> u8 {
        match self {
            Codec::Opus => OPUS_PT,
            c => c.static_payload_type().unwrap_or(SPEEX_PT),
        }
    }

    /// The static payload type (RFC 3551 table 4), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Speex16k | Codec::Opus => None,
        }
    }

    /// Parses a settings name: PCMU, PCMA, G722, speex, opus.
    pub fn from_name(name: &str) -> Option<Codec> {
        Some(match name.to_ascii_lowercase().as_str() {
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            "g722" => Codec::G722,
            "speex" | "speex/16000" => Codec::Speex16k,
            "opus" | "opus/48000/2" => Codec::Opus,
            _ => return None,
        })
    }

    /// Whether payload type `pt` of `media` is this codec.
    fn matches(self, media: &Media, pt: u8) -> bool {
        match media.rtpmap(pt) {
            Some(map) => {
                let (name, rate) = self.rtpmap();
                map.encoding.eq_ignore_ascii_case(name)
                    && map.clock_rate == rate
                    && map.channels.unwrap_or(1) == self.channels().unwrap_or(1)
            }
            // Without an rtpmap only static payload types mean anything.
            None => self.static_payload_type() == Some(pt),
        }
    }
}

/// A payload type's encoding as rtpmap names it: name, clock rate, channels.
type Encoding = (String, u32, Option<u8>);

/// Payload types sono offers for Speex, Opus and telephone-event.
const SPEEX_PT: u8 = 97;
const OPUS_PT: u8 = 111;
const TELEPHONE_EVENT_PT: u8 = 101;

/// What we can do, for building offers and answers.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    /// In order of preference.
    pub codecs: Vec<Codec>,
    pub telephone_event: bool,
    pub ptime: u32,
    pub session_id: u64,
    pub session_version: u64,
    /// SRTP with SDES keys for this call, or plain RTP only.
    pub srtp: Option<LocalSrtp>,
    /// H.264 video offered and accepted, or audio only.
    pub video: Option<LocalVideo>,
}

/// SRTP with SDES keys (RFC 4568) on our side of a call.
#[derive(Clone)]
pub struct LocalSrtp {
    /// Our master key and salt, for what we send; offered in both suites.
    pub key: [u8; KEY_AND_SALT],
    /// Plain RTP is refused: offers say RTP/SAVP, and an offer or answer
    /// without a usable key fails with [`SdpError::Srtp`]. Otherwise offers
    /// say RTP/AVP with keys (best-effort SRTP, RFC 8643) and a peer that
    /// ignores them gets plain RTP.
    pub required: bool,
}

/// The key never reaches a log through `Debug`.
impl std::fmt::Debug for LocalSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSrtp")
            .field("key", &"<hidden>")
            .field("required", &self.required)
            .finish()
    }
}

/// The SRTP keys an offer and answer settled (RFC 4568 §6.1): one suite,
/// our key for what we send, the peer's for what we receive.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: CryptoSuite,
    /// The offer's tag for the line chosen.
    pub tag: u32,
    pub local: [u8; KEY_AND_SALT],
    pub remote: [u8; KEY_AND_SALT],
    /// The m= line's profile: RTP/SAVP, or RTP/AVP for best-effort SRTP.
    pub profile: String,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .field("tag", &self.tag)
            .field("keys", &"<hidden>")
            .field("profile", &self.profile)
            .finish()
    }
}

impl SrtpKeys {
    /// Our `a=crypto` value for these keys.
    fn our_line(&self) -> String {
        CryptoAttribute {
            tag: self.tag,
            suite: self.suite,
            key: self.local,
            lifetime: None,
            mki: None,
        }
        .to_value()
    }
}

/// The first `a=crypto` line of `m` sono can use (a suite it speaks, one
/// inline key, no MKI), or why there is none.
fn usable_crypto(m: &Media) -> Result<CryptoAttribute, String> {
    let mut why = Vec::new();
    for line in &m.crypto {
        match CryptoAttribute::parse(line) {
            Ok(c) if c.mki.is_some() => why.push("MKI is not supported".to_owned()),
            Ok(c) => return Ok(c),
            Err(e) => why.push(e.to_string()),
        }
    }
    if why.is_empty() {
        Err("no a=crypto line".into())
    } else {
        Err(why.join("; "))
    }
}

use crate::video_sdp::H264_PT;
pub use crate::video_sdp::{LocalVideo, NegotiatedVideo};

const SAVP: &str = "RTP/SAVP";
const AVP: &str = "RTP/AVP";

/// What offer and answer settled for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    pub payload_type: u8,
    /// RFC 4733 payload type, if both sides do it.
    pub telephone_event: Option<u8>,
    /// Where to send RTP; `None` when the peer holds (address 0.0.0.0 or port 0).
    pub remote: Option<SocketAddr>,
    /// Our direction.
    pub direction: Direction,
    pub ptime: u32,
    /// The peer holds the call: its SDP is sendonly or inactive, or names
    /// 0.0.0.0 as RFC 2543 had it (RFC 3264 §8.4).
    pub peer_holds: bool,
    /// SRTP keys, when the media is SRTP.
    pub srtp: Option<SrtpKeys>,
    /// The video stream, if both sides want one (boxed: audio-only calls
    /// are the common case and carry this around).
    pub video: Option<Box<NegotiatedVideo>>,
}

impl LocalMedia {
    fn description(&self, media: Vec<Media>) -> SessionDescription {
        SessionDescription {
            origin_user: "sono".into(),
            session_id: self.session_id,
            session_version: self.session_version,
            origin_address: self.address,
            session_name: "sono".into(),
            connection: Some(self.address),
            direction: None,
            media,
        }
    }

    fn audio_media(
        &self,
        port: u16,
        formats: Vec<(u8, Option<Encoding>)>,
        fmtps: Vec<(u8, String)>,
        direction: Direction,
    ) -> Media {
        Media {
            kind: "audio".into(),
            port,
            protocol: "RTP/AVP".into(),
            formats: formats.iter().map(|(pt, _)| pt.to_string()).collect(),
            connection: None,
            rtpmaps: formats
                .into_iter()
                .filter_map(|(pt, map)| {
                    map.map(|(encoding, clock_rate, channels)| RtpMap {
                        payload_type: pt,
                        encoding,
                        clock_rate,
                        channels,
                    })
                })
                .collect(),
            fmtps,
            ptime: Some(self.ptime),
            direction: Some(direction),
            crypto: Vec::new(),
            rtcp_fb: Vec::new(),
        }
    }

    /// The crypto lines and profile of our offer: both suites under our
    /// key, RTP/SAVP when SRTP is required, else RTP/AVP (RFC 8643).
    fn offer_srtp(&self, media: &mut Media) {
        let Some(srtp) = &self.srtp else {
            return;
        };
        if srtp.required {
            media.protocol = SAVP.into();
        }
        for (tag, suite) in [
            (1, CryptoSuite::AesCm128HmacSha1_80),
            (2, CryptoSuite::AesCm128HmacSha1_32),
        ] {
            media.crypto.push(
                CryptoAttribute {
                    tag,
                    suite,
                    key: srtp.key,
                    lifetime: None,
                    mki: None,
                }
                .to_value(),
            );
        }
    }

    /// The keys an offered stream settles for our answer (`what` is
    /// "offer"), or a stream of the answer to our offer ("answer"): its
    /// first line we can use, or plain RTP when neither side insists, or
    /// why not.
    fn srtp_keys(&self, m: &Media, what: &str) -> Result<Option<SrtpKeys>, SdpError> {
        let savp = m.protocol == SAVP;
        let Some(local) = &self.srtp else {
            return if savp {
                Err(SdpError::Srtp(format!(
                    "the {what} asks for SRTP (RTP/SAVP) and it is off here (sip.srtp, or no TLS)"
                )))
            } else {
                Ok(None)
            };
        };
        match usable_crypto(m) {
            Ok(c) => Ok(Some(SrtpKeys {
                suite: c.suite,
                tag: c.tag,
                local: local.key,
                remote: c.key,
                profile: m.protocol.clone(),
            })),
            Err(why) if savp || local.required => Err(SdpError::Srtp(format!(
                "SRTP is required and the {what} carries no usable key: {why}"
            ))),
            Err(_) => Ok(None),
        }
    }

    /// Our offer: every configured codec in order, then telephone-event.
    pub fn offer(&self) -> SessionDescription {
        self.offer_in(Direction::SendRecv)
    }

    /// Our offer in `direction` (sendonly to hold, RFC 3264 §8.4).
    pub fn offer_in(&self, direction: Direction) -> SessionDescription {
        let mut formats = Vec::new();
        let mut fmtps = Vec::new();
        for c in &self.codecs {
            let (name, rate) = c.rtpmap();
            let pt = c.offer_payload_type();
            formats.push((pt, Some((name.to_owned(), rate, c.channels()))));
            if *c == Codec::Opus {
                // Mono speech (RFC 7587 §6.1); FEC both ways.
                fmtps.push((pt, "useinbandfec=1;stereo=0;sprop-stereo=0".to_owned()));
            }
        }
        if self.telephone_event {
            formats.push((
                TELEPHONE_EVENT_PT,
                Some(("telephone-event".to_owned(), 8000, None)),
            ));
            fmtps.push((TELEPHONE_EVENT_PT, "0-16".to_owned()));
        }
        let mut media = self.audio_media(self.port, formats, fmtps, direction);
        self.offer_srtp(&mut media);
        let mut lines = vec![media];
        if let Some(v) = &self.video {
            lines.push(v.line(H264_PT, direction));
        }
        self.description(lines)
    }

    /// A new offer inside a running session (RFC 3264 §8.3.2): the codec
    /// and payload types in use only (the bridge keeps its codec for the
    /// call's life), in `direction`.
    pub fn reoffer(&self, current: &Negotiated, direction: Direction) -> SessionDescription {
        let (name, rate) = current.codec.rtpmap();
        let pt = current.payload_type;
        let mut formats = vec![(pt, Some((name.to_owned(), rate, current.codec.channels())))];
        let mut fmtps = Vec::new();
        if current.codec == Codec::Opus {
            fmtps.push((pt, "useinbandfec=1;stereo=0;sprop-stereo=0".to_owned()));
        }
        if let Some(te) = current.telephone_event {
            formats.push((te, Some(("telephone-event".to_owned(), 8000, None))));
            fmtps.push((te, "0-16".to_owned()));
        }
        let mut media = self.audio_media(self.port, formats, fmtps, direction);
        // The keys in force stay (no rekeying on hold or resume).
        if let Some(keys) = &current.srtp {
            media.protocol = keys.profile.clone();
            media.crypto.push(keys.our_line());
        }
        let mut lines = vec![media];
        // A new offer keeps every m= line (RFC 3264 §8): a refused video
        // stream stays refused.
        if let Some(v) = &self.video {
            lines.push(match &current.video {
                Some(nv) => v.line(nv.payload_type, direction),
                None => Media {
                    port: 0,
                    ..v.line(H264_PT, direction)
                },
            });
        }
        self.description(lines)
    }

    /// Our answer to an offer (RFC 3264 §6): the first of our codecs the offer
    /// has, with the offerer's payload type; every other stream refused (port 0).
    pub fn answer(
        &self,
        offer: &SessionDescription,
    ) -> Result<(SessionDescription, Negotiated), SdpError> {
        self.answer_within(offer, Direction::SendRecv)
    }

    /// Our answer while we wish `wish` (sendonly while we hold the call):
    /// the offer's direction answered, never beyond our wish.
    pub fn answer_within(
        &self,
        offer: &SessionDescription,
        wish: Direction,
    ) -> Result<(SessionDescription, Negotiated), SdpError> {
        let mut chosen = None;
        let mut video = None;
        let mut srtp_refusal = None;
        let mut media = Vec::with_capacity(offer.media.len());
        for m in &offer.media {
            if m.kind == "video" && video.is_none() {
                if let Some((line, settled)) =
                    self.video.as_ref().and_then(|v| v.answer(offer, m, wish))
                {
                    media.push(line);
                    video = Some(settled);
                    continue;
                }
            }
            let usable = chosen.is_none()
                && m.kind == "audio"
                && m.port != 0
                && (m.protocol == AVP || m.protocol == SAVP);
            let srtp = match usable.then(|| self.srtp_keys(m, "offer")) {
                Some(Err(e)) => {
                    srtp_refusal = Some(e);
                    None
                }
                Some(Ok(keys)) => Some(keys),
                None => None,
            };
            let pick = srtp
                .is_some()
                .then(|| {
                    self.codecs.iter().find_map(|c| {
                        m.payload_types()
                            .find(|pt| c.matches(m, *pt))
                            .map(|pt| (*c, pt))
                    })
                })
                .flatten();
            let Some(((codec, pt), srtp)) = pick.zip(srtp) else {
                // Refused streams keep their formats, with port 0 (§6).
                media.push(Media {
                    port: 0,
                    connection: None,
                    rtpmaps: Vec::new(),
                    fmtps: Vec::new(),
                    ptime: None,
                    direction: None,
                    crypto: Vec::new(),
                    rtcp_fb: Vec::new(),
                    ..m.clone()
                });
                continue;
            };
            let te = self
                .telephone_event
                .then(|| m.payload_types().find(|pt| is_telephone_event(m, *pt)))
                .flatten();
            let (name, rate) = codec.rtpmap();
            let mut formats = vec![(pt, Some((name.to_owned(), rate, codec.channels())))];
            let mut fmtps: Vec<(u8, String)> =
                m.fmtps.iter().filter(|(p, _)| *p == pt).cloned().collect();
            if let Some(te) = te {
                formats.push((te, Some(("telephone-event".to_owned(), 8000, None))));
                fmtps.push((te, "0-16".to_owned()));
            }
            let offered = m
                .direction
                .or(offer.direction)
                .unwrap_or(Direction::SendRecv);
            let direction = offered.answer().within(wish);
            let mut answer = self.audio_media(self.port, formats, fmtps, direction);
            answer.protocol = m.protocol.clone();
            if let Some(keys) = &srtp {
                answer.crypto.push(keys.our_line());
            }
            media.push(answer);
            let remote = remote_address(offer, m);
            chosen = Some(Negotiated {
                codec,
                payload_type: pt,
                telephone_event: te,
                remote,
                direction,
                ptime: m.ptime.unwrap_or(self.ptime),
                peer_holds: offered.holds() || remote.is_none(),
                srtp,
                video: None,
            });
        }
        let negotiated = match chosen {
            Some(n) => Negotiated {
                video: video.map(Box::new),
                ..n
            },
            None => return Err(srtp_refusal.unwrap_or(SdpError::NoCommonCodec)),
        };
        Ok((self.description(media), negotiated))
    }

    /// What an answer to our offer settles: its first codec that we offered.
    pub fn settle(&self, answer: &SessionDescription) -> Result<Negotiated, SdpError> {
        self.settle_offered(answer, Direction::SendRecv)
    }

    /// What an answer to our offer in `offered` settles. An answer that
    /// receives nothing from us is the peer's hold only if we offered to
    /// receive: to our sendonly it must answer recvonly or inactive (§8.4).
    pub fn settle_offered(
        &self,
        answer: &SessionDescription,
        offered: Direction,
    ) -> Result<Negotiated, SdpError> {
        let m = answer
            .media
            .iter()
            .find(|m| m.kind == "audio" && m.port != 0)
            .ok_or(SdpError::NoCommonCodec)?;
        let (codec, pt) = m
            .payload_types()
            .find_map(|pt| {
                self.codecs
                    .iter()
                    .find(|c| c.matches(m, pt))
                    .map(|c| (*c, pt))
            })
            .ok_or(SdpError::NoCommonCodec)?;
        let srtp = self.srtp_keys(m, "answer")?;
        let te = self
            .telephone_event
            .then(|| m.payload_types().find(|pt| is_telephone_event(m, *pt)))
            .flatten();
        let theirs = m
            .direction
            .or(answer.direction)
            .unwrap_or(Direction::SendRecv);
        let remote = remote_address(answer, m);
        Ok(Negotiated {
            codec,
            payload_type: pt,
            telephone_event: te,
            remote,
            direction: theirs.answer().within(offered),
            ptime: m.ptime.unwrap_or(self.ptime),
            peer_holds: offered.receives() && (theirs.holds() || remote.is_none()),
            srtp,
            video: self
                .video
                .as_ref()
                .and_then(|v| v.settle(answer, offered))
                .map(Box::new),
        })
    }
}

fn is_telephone_event(m: &Media, pt: u8) -> bool {
    m.rtpmap(pt)
        .is_some_and(|r| r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000)
}

/// Where the peer wants RTP; `None` on hold (RFC 3264 §8.4's 0.0.0.0) or port 0.
fn remote_address(sd: &SessionDescription, m: &Media) -> Option<SocketAddr> {
    let ip = m.connection.or(sd.connection)?;
    (m.port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, m.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(codecs: &[Codec]) -> LocalMedia {
        LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            port: 30000,
            codecs: codecs.to_vec(),
            telephone_event: true,
            ptime: 20,
            session_id: 42,
            session_version: 1,
            srtp: None,
            video: None,
        }
    }

    fn with_video(mut l: LocalMedia) -> LocalMedia {
        l.video = Some(LocalVideo {
            port: 30002,
            profile_level_id: "42e01f".into(),
            sprop_parameter_sets: Some("Z0LAH9oB,aM4P".into()),
        });
        l
    }

    /// A video offer as a desk phone writes it: VP8 first, then H.264 in
    /// both packetization modes.
    const VIDEO_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20078 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 20080 RTP/AVP 100 98 99\r\na=rtpmap:100 VP8/90000\r\na=rtpmap:98 H264/90000\r\na=fmtp:98 profile-level-id=42e01f\r\na=rtpmap:99 H264/90000\r\na=fmtp:99 profile-level-id=42e01f;packetization-mode=1\r\na=rtcp-fb:* nack pli\r\na=sendrecv\r\n";

    #[test]
    fn video_is_offered_as_h264_mode_1_and_answered_only_in_it() {
        let offer = with_video(local(&[Codec::Pcmu])).offer().to_text();
        assert!(offer.contains("m=video 30002 RTP/AVP 96\r\n"), "{offer}");
        assert!(offer.contains("a=rtpmap:96 H264/90000\r\n"), "{offer}");
        assert!(
            offer.contains("a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LAH9oB,aM4P\r\n"),
            "{offer}"
        );
        assert!(
            offer.contains("a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"),
            "{offer}"
        );
        // Their mode-1 H.264 is chosen; VP8 and mode 0 are not.
        let theirs = SessionDescription::parse(VIDEO_OFFER).unwrap();
        let (answer, n) = with_video(local(&[Codec::Pcmu])).answer(&theirs).unwrap();
        let v = n.video.expect("video settled");
        assert_eq!(v.payload_type, 99);
        assert_eq!(v.remote, Some("127.0.0.1:20080".parse().unwrap()));
        assert!(v.pli && !v.fir);
        let text = answer.to_text();
        assert!(text.contains("m=video 30002 RTP/AVP 99\r\n"), "{text}");
        assert!(text.contains("a=rtcp-fb:99 nack pli\r\n"), "{text}");
        assert!(!text.contains("ccm fir"), "{text}");
        // The answer settles the same video from our side of an offer.
        let back = SessionDescription::parse(&text).unwrap();
        let settled = with_video(local(&[Codec::Pcmu])).settle(&back).unwrap();
        assert_eq!(settled.video.map(|v| v.payload_type), Some(99));
        // An audio-only client refuses the video line and keeps audio.
        let (answer, n) = local(&[Codec::Pcmu]).answer(&theirs).unwrap();
        assert!(n.video.is_none());
        assert!(answer.to_text().contains("m=video 0 RTP/AVP 100 98 99\r\n"));
        // H.264 in mode 0 only: refused as well.
        let mode0 = VIDEO_OFFER.replace("packetization-mode=1", "packetization-mode=0");
        let (_, n) = with_video(local(&[Codec::Pcmu]))
            .answer(&SessionDescription::parse(&mode0).unwrap())
            .unwrap();
        assert!(n.video.is_none());
    }

    #[test]
    fn a_reoffer_keeps_the_video_line() {
        let ours = with_video(local(&[Codec::Pcmu]));
        let theirs = SessionDescription::parse(VIDEO_OFFER).unwrap();
        let (_, n) = ours.answer(&theirs).unwrap();
        let hold = ours.reoffer(&n, Direction::SendOnly).to_text();
        assert!(hold.contains("m=video 30002 RTP/AVP 99\r\n"), "{hold}");
        let mut refused = n.clone();
        refused.video = None;
        let hold = ours.reoffer(&refused, Direction::SendOnly).to_text();
        assert!(hold.contains("m=video 0 RTP/AVP 96\r\n"), "{hold}");
    }

    /// An offer as baresip writes it.
    const BARESIP_OFFER: &str = "v=0\r\no=- 1183449587 2426367375 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20078 RTP/AVP 0 8 9 101\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=ssrc:12 cname:x\r\na=rtcp-rsize\r\n";

    #[test]
    fn parses_a_real_offer() {
        let sd = SessionDescription::parse(BARESIP_OFFER).unwrap();
        let a = sd.audio().unwrap();
        assert_eq!(a.port, 20078);
        assert_eq!(a.payload_types().collect::<Vec<_>>(), vec![0, 8, 9, 101]);
        assert_eq!(a.direction, Some(Direction::SendRecv));
        assert_eq!(a.fmtps, vec![(101, "0-15".into())]);
        assert_eq!(sd.connection, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn opus_is_offered_as_rfc_7587_says_and_answered_with_the_offerers_payload_type() {
        let offer = local(&[Codec::Opus, Codec::Pcmu]).offer().to_text();
        assert!(
            offer.contains("m=audio 30000 RTP/AVP 111 0 101\r\n"),
            "{offer}"
        );
        assert!(offer.contains("a=rtpmap:111 opus/48000/2\r\n"), "{offer}");
        assert!(
            offer.contains("a=fmtp:111 useinbandfec=1;stereo=0;sprop-stereo=0\r\n"),
            "{offer}"
        );
        // baresip's offer with its opus module: Opus at 96.
        let theirs = BARESIP_OFFER
            .replace("RTP/AVP 0 8 9 101", "RTP/AVP 96 0 101")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:0 PCMU/8000");
        let offer = SessionDescription::parse(&theirs).unwrap();
        let (answer, n) = local(&[Codec::Opus, Codec::Pcmu]).answer(&offer).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Opus, 96));
        assert!(
            answer.to_text().contains("a=rtpmap:96 opus/48000/2"),
            "{}",
            answer.to_text()
        );
        // Opus with one channel in rtpmap is not RFC 7587's Opus.
        let odd = theirs.replace("opus/48000/2", "opus/48000");
        let (_, n) = local(&[Codec::Opus, Codec::Pcmu])
            .answer(&SessionDescription::parse(&odd).unwrap())
            .unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
    }

    #[test]
    fn answers_by_our_preference_with_the_offerers_payload_types() {
        let offer = SessionDescription::parse(BARESIP_OFFER).unwrap();
        let (answer, n) = local(&[Codec::G722, Codec::Pcmu]).answer(&offer).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.telephone_event),
            (Codec::G722, 9, Some(101))
        );
        assert_eq!(n.remote, Some("127.0.0.1:20078".parse().unwrap()));
        let text = answer.to_text();
        assert!(text.contains("m=audio 30000 RTP/AVP 9 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:9 G722/8000\r\n"));
        // The answer parses back and settles the same thing from the other side.
        let back = SessionDescription::parse(&text).unwrap();
        let settled = local(&[Codec::Pcmu, Codec::G722]).settle(&back).unwrap();
        assert_eq!((settled.codec, settled.payload_type), (Codec::G722, 9));
    }

    #[test]
    fn dynamic_payload_types_match_by_name_and_rate() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 98 99\r\nc=IN IP4 127.0.0.2\r\na=rtpmap:98 speex/8000\r\na=rtpmap:99 SPEEX/16000\r\na=sendonly\r\n";
        let offer = SessionDescription::parse(offer).unwrap();
        let (_, n) = local(&[Codec::Speex16k, Codec::Pcmu])
            .answer(&offer)
            .unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Speex16k, 99));
        assert_eq!(n.direction, Direction::RecvOnly);
        assert_eq!(n.telephone_event, None);
        assert_eq!(n.remote, Some("127.0.0.2:4000".parse().unwrap()));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let video_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 5002 RTP/AVP 18\r\n";
        let offer = SessionDescription::parse(video_only).unwrap();
        assert_eq!(
            local(&[Codec::Pcmu]).answer(&offer).unwrap_err(),
            SdpError::NoCommonCodec
        );

        let mixed = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 5002 RTP/AVP 0\r\n";
        let (answer, n) = local(&[Codec::Pcmu])
            .answer(&SessionDescription::parse(mixed).unwrap())
            .unwrap();
        assert_eq!(
            answer.media[0].port, 0,
            "the video stream is refused with port 0"
        );
        assert_eq!(answer.media.len(), 2);
        assert_eq!(n.remote, None, "0.0.0.0 means hold");
    }

    #[test]
    fn our_offer_lists_every_codec_in_order() {
        let text = local(&[Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Speex16k])
            .offer()
            .to_text();
        assert!(
            text.contains("m=audio 30000 RTP/AVP 0 8 9 97 101\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:97 speex/16000\r\n"));
        assert!(text.contains("a=fmtp:101 0-16\r\n"));
        assert!(text.contains("a=ptime:20\r\n"));
        assert!(SessionDescription::parse(&text).is_ok());
    }

    #[test]
    fn malformed_descriptions_are_refused() {
        for (text, why) in [
            ("o=- 1 1 IN IP4 127.0.0.1\r\n", "no v="),
            ("v=1\r\n", "version"),
            ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n", "session id"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n", "short m="),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
                "port",
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 nowhere\r\n",
                "c=",
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
                "rtpmap",
            ),
            ("v=0\r\nnonsense\r\n", "no ="),
        ] {
            assert!(SessionDescription::parse(text).is_err(), "{why}: {text:?}");
        }
        let many =
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n".to_owned() + &"m=audio 1 RTP/AVP 0\r\n".repeat(17);
        assert_eq!(
            SessionDescription::parse(&many),
            Err(SdpError::TooLarge(MAX_MEDIA))
        );
    }

    fn with_srtp(required: bool) -> LocalMedia {
        LocalMedia {
            srtp: Some(LocalSrtp {
                key: [0x11; KEY_AND_SALT],
                required,
            }),
            ..local(&[Codec::Pcmu])
        }
    }

    /// A peer's offer with SDES keys, as baresip's `srtp-mand` sends it.
    fn savp_offer(protocol: &str, crypto: &[&str]) -> SessionDescription {
        let mut text = format!(
            "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 {protocol} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        );
        for c in crypto {
            text.push_str(&format!("a=crypto:{c}\r\n"));
        }
        SessionDescription::parse(&text).unwrap()
    }

    const THEIR_KEY_32: &str =
        "AES_CM_128_HMAC_SHA1_32 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";

    #[test]
    fn srtp_offers_carry_both_suites_as_savp_when_required_and_avp_when_best_effort() {
        let required = with_srtp(true).offer();
        let m = required.audio().unwrap();
        assert_eq!(m.protocol, "RTP/SAVP");
        assert_eq!(m.crypto.len(), 2);
        assert!(m.crypto[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(m.crypto[1].starts_with("2 AES_CM_128_HMAC_SHA1_32 inline:"));
        // What we write parses back with the same lines.
        let back = SessionDescription::parse(&required.to_text()).unwrap();
        assert_eq!(back.audio().unwrap().crypto, m.crypto);
        let best_effort = with_srtp(false).offer();
        assert_eq!(best_effort.audio().unwrap().protocol, "RTP/AVP");
        assert_eq!(best_effort.audio().unwrap().crypto.len(), 2);
        assert!(local(&[Codec::Pcmu])
            .offer()
            .audio()
            .unwrap()
            .crypto
            .is_empty());
    }

    #[test]
    fn a_savp_offer_is_answered_with_its_tag_and_suite_under_our_key() {
        // The first line has an MKI (unsupported): the second is taken.
        let offer = savp_offer(
            "RTP/SAVP",
            &[
                "1 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw|2^20|1:4",
                &format!("2 {THEIR_KEY_32}"),
            ],
        );
        let (answer, negotiated) = with_srtp(false).answer(&offer).unwrap();
        let m = answer.audio().unwrap();
        assert_eq!(m.protocol, "RTP/SAVP");
        assert_eq!(m.crypto.len(), 1);
        let ours = CryptoAttribute::parse(&m.crypto[0]).unwrap();
        assert_eq!(
            (ours.tag, ours.suite),
            (2, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(ours.key, [0x11; KEY_AND_SALT]);
        let keys = negotiated.srtp.expect("SRTP settled");
        assert_eq!(&keys.remote, b"123456789012345678901234567890");
        assert_eq!(keys.local, [0x11; KEY_AND_SALT]);
        // The keys stay out of Debug output.
        assert!(!format!("{keys:?}").contains("49, 50"));
    }

    #[test]
    fn srtp_policy_refusals_name_the_reason() {
        // SRTP off here, the offer insists: refused (the caller answers 488).
        let offer = savp_offer("RTP/SAVP", &[&format!("1 {THEIR_KEY_32}")]);
        let err = local(&[Codec::Pcmu]).answer(&offer).unwrap_err();
        assert!(
            matches!(err, SdpError::Srtp(ref why) if why.contains("RTP/SAVP")),
            "{err}"
        );
        // Required here, the offer is plain.
        let plain = savp_offer("RTP/AVP", &[]);
        let err = with_srtp(true).answer(&plain).unwrap_err();
        assert!(matches!(err, SdpError::Srtp(_)), "{err}");
        // Best effort here, the offer is plain: plain RTP.
        let (_, n) = with_srtp(false).answer(&plain).unwrap();
        assert!(n.srtp.is_none());
        // A best-effort offer with keys: answered with keys, as RTP/AVP.
        let osrtp = savp_offer("RTP/AVP", &[&format!("7 {THEIR_KEY_32}")]);
        let (a, n) = with_srtp(false).answer(&osrtp).unwrap();
        assert_eq!(a.audio().unwrap().protocol, "RTP/AVP");
        assert_eq!(n.srtp.unwrap().tag, 7);
        // Our required offer answered with plain RTP: unusable.
        let err = with_srtp(true).settle(&plain).unwrap_err();
        assert!(
            matches!(err, SdpError::Srtp(ref why) if why.contains("required")),
            "{err}"
        );
        // Our best-effort offer answered with plain RTP: plain RTP.
        assert!(with_srtp(false).settle(&plain).unwrap().srtp.is_none());
    }

    #[test]
    fn a_reoffer_keeps_the_keys_in_force() {
        let offer = savp_offer("RTP/SAVP", &[&format!("3 {THEIR_KEY_32}")]);
        let me = with_srtp(false);
        let (_, n) = me.answer(&offer).unwrap();
        let hold = me.reoffer(&n, Direction::SendOnly);
        let m = hold.audio().unwrap();
        assert_eq!(m.protocol, "RTP/SAVP");
        assert_eq!(m.crypto.len(), 1);
        let line = CryptoAttribute::parse(&m.crypto[0]).unwrap();
        assert_eq!((line.tag, line.key), (3, [0x11; KEY_AND_SALT]));
    }
}
