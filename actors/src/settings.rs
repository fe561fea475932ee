//! Every setting of sono, with its default. `config/sono.toml` documents each key;
//! the binary layers that file and `SONO_…` environment variables over these
//! defaults (config crate) and hands the result to the actors.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A setting that must never be shown: a password or a key. Its `Debug`,
/// `Display` and serialised form (what `sono check-config` prints) say only
/// whether it is set; the value is read with [`Secret::expose`], where it
/// is used.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub const REDACTED: &'static str = "(set, not shown)";

    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            ""
        } else {
            Self::REDACTED
        })
    }
}

/// Empty stays empty (the embedded defaults are layered through this);
/// anything else is written redacted.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub rtmp: RtmpSettings,
    pub http: HttpSettings,
    pub rtmpt: RtmptSettings,
    pub rtmps: RtmpsSettings,
    pub sip: SipSettings,
    pub media: MediaSettings,
    pub webrtc: WebRtcSettings,
    pub video: VideoSettings,
    pub limits: LimitsSettings,
    pub shutdown: ShutdownSettings,
    pub cluster: ClusterSettings,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter: `info`, `sono_actors=debug,info`, …
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpSettings {
    pub listen: SocketAddr,
    /// Applications (`rtmp://host/APP`) clients may connect to; empty allows any.
    pub apps: Vec<String>,
    pub max_connections: usize,
    /// Largest RTMP message a client may send, in bytes.
    pub max_message_size: u32,
    /// Largest chunk size a client may announce.
    pub max_chunk_size: u32,
    /// Most chunk streams one client may use at once.
    pub max_chunk_streams: usize,
    /// Most NetStreams one connection may create.
    pub max_streams: usize,
    /// Chunk size sono writes with.
    pub chunk_size: u32,
    pub window_ack_size: u32,
    /// A client must finish the handshake within this time.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long after the handshake is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How often sono pings a client; its answers keep an idle client alive.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// The kernel's send buffer for each client's TCP socket, in bytes (0:
    /// the system's default, which grows to megabytes: seconds of audio
    /// delay before a slow reader is noticed).
    pub send_buffer: usize,
    /// The client API of each application (its first path segment):
    /// `sono`, `mod_rtmp` or `siprtmp`; any other application speaks sono's.
    pub app_apis: std::collections::BTreeMap<String, String>,
    /// mod_rtmp `login` accounts: `user@domain` and its password.
    pub accounts: std::collections::BTreeMap<String, Secret>,
}

impl RtmpSettings {
    /// The client API of application `app` (`sip/alice@host` is `sip`'s).
    pub fn api_of(&self, app: &str) -> sono_rtmp::api::ClientApi {
        let first = app.split('/').next().unwrap_or(app);
        self.app_apis
            .get(first)
            .and_then(|name| sono_rtmp::api::ClientApi::parse(name))
            .unwrap_or_default()
    }
}

impl Default for RtmpSettings {
    fn default() -> Self {
        RtmpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 1935)),
            apps: Vec::new(),
            max_connections: 10_000,
            max_message_size: 1 << 20,
            max_chunk_size: 1 << 20,
            max_chunk_streams: 64,
            max_streams: 8,
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            send_buffer: 65536,
            app_apis: Default::default(),
            accounts: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// The admin key: `Authorization: Bearer KEY` controls every connection
    /// and lists them. Empty turns the admin API off; connection tokens still work.
    pub admin_key: Secret,
    /// Most live-event streams (SSE) open at once, over all clients.
    pub max_event_streams: usize,
    /// How long a live-event stream may stay silent before a keep-alive comment.
    #[serde(with = "humantime_serde")]
    pub event_keepalive: Duration,
    /// Origins allowed to call the REST API from a browser (CORS); `*` allows
    /// any, empty allows only pages sono serves itself.
    pub cors_origins: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_key: Secret::default(),
            max_event_streams: 1000,
            event_keepalive: Duration::from_secs(15),
            cors_origins: Vec::new(),
        }
    }
}

/// WebRTC clients (browsers): signalled over REST on `http.listen`, their
/// media (ICE-lite, DTLS-SRTP, Opus) on a UDP port of their own each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcSettings {
    pub enabled: bool,
    /// The address each session's UDP socket binds to.
    pub address: std::net::IpAddr,
    /// The address the ICE candidate announces, when browsers reach sono
    /// through NAT; empty announces `address`.
    pub advertise: String,
    /// Each session takes one UDP port from this range (min = max: one port,
    /// one session at a time).
    pub port_min: u16,
    pub port_max: u16,
    /// Most WebRTC sessions at once, and per client address.
    pub max_sessions: usize,
    pub max_sessions_per_address: usize,
    /// Largest SDP offer accepted, in bytes.
    pub max_offer_size: usize,
    /// A session whose ICE and DTLS are not up within this is closed.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// A browser that sends no audio for this long is gone (tab closed,
    /// network lost): its session closes and its call ends.
    #[serde(with = "humantime_serde")]
    pub media_timeout: Duration,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        WebRtcSettings {
            enabled: true,
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            advertise: String::new(),
            port_min: 30_000,
            port_max: 30_999,
            max_sessions: 1000,
            max_sessions_per_address: 10,
            max_offer_size: 16 * 1024,
            connect_timeout: Duration::from_secs(15),
            media_timeout: Duration::from_secs(1),
        }
    }
}

impl WebRtcSettings {
    /// The address browsers are told to send to.
    pub fn advertised(&self) -> Result<std::net::IpAddr, String> {
        if self.advertise.trim().is_empty() {
            return Ok(self.address);
        }
        self.advertise
            .trim()
            .parse()
            .map_err(|e| format!("webrtc.advertise {:?}: {e}", self.advertise))
    }
}

/// RTMPT: RTMP tunnelled through HTTP, served on `http.listen`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtmptSettings {
    pub enabled: bool,
    /// A tunnel session that polls no more for this long is closed.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Largest body of one `/send` request, in bytes; a larger one gets 413.
    pub max_body: usize,
    /// Most tunnel sessions one client address may hold at once.
    pub max_sessions_per_address: usize,
}

impl Default for RtmptSettings {
    fn default() -> Self {
        RtmptSettings {
            enabled: true,
            session_timeout: Duration::from_secs(30),
            max_body: 256 * 1024,
            max_sessions_per_address: 100,
        }
    }
}

/// RTMPS: RTMP inside TLS (rustls) on a port of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpsSettings {
    /// Where RTMPS clients connect; empty turns RTMPS off.
    pub listen: String,
    /// The certificate chain, PEM, leaf first.
    pub certificate: String,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: String,
}

impl RtmpsSettings {
    /// The listen address, if RTMPS is on.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        self.listen
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("rtmps.listen {:?}: {e}", self.listen))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipSettings {
    /// The UDP address SIP is sent from and received on.
    pub listen: SocketAddr,
    /// The address written in Via and Contact; empty means `listen` (which must
    /// then not be a wildcard address).
    pub advertise: String,
    /// sono's own SIP domain: implicit URIs are `sip:USER@DOMAIN`.
    pub domain: String,
    /// From display name of outbound calls; empty sends none.
    pub from_name: String,
    /// From user of outbound calls; empty uses the connection's implicit user, or "sono".
    pub from_user: String,
    /// From domain of outbound calls; empty uses `domain`.
    pub from_domain: String,
    /// Every outbound request goes through this proxy (a SIP URI with an IP
    /// address), with a Route header for it; empty sends straight to the target.
    pub outbound_proxy: String,
    /// Credentials answering 401/407 challenges to outbound calls, from
    /// the outbound proxy or a configured registrar only, and only for
    /// realms listed in `auth_realms`.
    pub auth_user: String,
    pub password: Secret,
    pub auth_realms: Vec<String>,
    /// The User-Agent and Server header value.
    pub user_agent: String,
    /// RFC 3261 timer bases.
    #[serde(with = "humantime_serde")]
    pub t1: Duration,
    #[serde(with = "humantime_serde")]
    pub t2: Duration,
    #[serde(with = "humantime_serde")]
    pub t4: Duration,
    /// Most calls in progress at once; more are refused with Sono.Call.Failed.
    pub max_calls: usize,
    /// Most calls one connection holds at once (its lines: one active, the
    /// others held or ringing as call waiting); 1 makes a one-call phone.
    pub lines: usize,
    /// Also listen for SIP over TCP on `listen`, and call `transport=tcp` targets.
    pub tcp: bool,
    /// A TCP connection idle this long is closed.
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    pub max_tcp_connections: usize,
    /// Listen for SIP over TLS (RFC 3261 §26.2) on this address
    /// (`host:port`, usually port 5061); empty: no SIP over TLS, and
    /// `sips:` or `;transport=tls` targets are refused.
    pub tls_listen: String,
    /// The PEM certificate chain and private key presented on TLS, to
    /// peers that connect and to those we connect to when they ask.
    pub tls_certificate: String,
    pub tls_private_key: String,
    /// PEM file of the certificates (CAs, or a peer's own self-signed one)
    /// trusted for peers we connect to over TLS; empty: the system's roots.
    /// A peer's certificate must be valid for the host its URI names.
    pub tls_ca: String,
    /// SRTP for calls' media: off, offered or required.
    pub srtp: SrtpPolicy,
    /// SDES keys travel in SDP, readable by every hop that reads the SIP:
    /// they are only sent over TLS signalling unless this allows otherwise
    /// (on UDP and TCP, calls are then plain, or refused when required).
    pub srtp_without_tls: bool,
    /// Registrars a client may register at with `register(user, domain, …)`:
    /// host names or IP addresses the domain's host must equal ("*": any).
    /// Empty: clients get implicit URIs only.
    pub registrars: Vec<String>,
    /// A registrar (`host[:port]`) where every implicit URI is registered
    /// too, without credentials (SEMS' `implicit_registrar`), so calls to
    /// `sip:sono-…@that-registrar` reach the client. Empty: none.
    pub implicit_registrar: String,
    /// The expiry asked for in REGISTER, in seconds.
    pub register_expires: u32,
    /// While a registrar fails or does not answer, attempts are repeated
    /// after this, doubling up to `register_retry_max`.
    #[serde(with = "humantime_serde")]
    pub register_retry_min: Duration,
    #[serde(with = "humantime_serde")]
    pub register_retry_max: Duration,
    /// An inbound call neither accepted nor rejected within this is
    /// answered 480 Temporarily Unavailable.
    #[serde(with = "humantime_serde")]
    pub no_answer_timeout: Duration,
    pub dial_plan: DialPlanSettings,
}

impl Default for SipSettings {
    fn default() -> Self {
        SipSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            advertise: String::new(),
            domain: "127.0.0.1".into(),
            from_name: String::new(),
            from_user: String::new(),
            from_domain: String::new(),
            outbound_proxy: String::new(),
            auth_user: String::new(),
            password: Secret::default(),
            auth_realms: Vec::new(),
            user_agent: concat!("sono/", env!("CARGO_PKG_VERSION")).into(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            max_calls: 10_000,
            lines: 4,
            tcp: true,
            tcp_idle_timeout: Duration::from_secs(300),
            no_answer_timeout: Duration::from_secs(60),
            registrars: vec!["127.0.0.1".into(), "::1".into(), "localhost".into()],
            implicit_registrar: String::new(),
            register_expires: 600,
            register_retry_min: Duration::from_secs(2),
            register_retry_max: Duration::from_secs(60),
            max_tcp_connections: 1000,
            tls_listen: String::new(),
            tls_certificate: String::new(),
            tls_private_key: String::new(),
            tls_ca: String::new(),
            srtp: SrtpPolicy::Off,
            srtp_without_tls: false,
            dial_plan: DialPlanSettings::default(),
        }
    }
}

impl SipSettings {
    /// The address for SIP over TLS, if it is on.
    pub fn tls_address(&self) -> Result<Option<SocketAddr>, String> {
        if self.tls_listen.trim().is_empty() {
            return Ok(None);
        }
        let address = self
            .tls_listen
            .trim()
            .parse()
            .map_err(|e| format!("sip.tls_listen {:?}: {e}", self.tls_listen))?;
        if self.tls_certificate.is_empty() || self.tls_private_key.is_empty() {
            return Err(
                "sip.tls_certificate and sip.tls_private_key are needed with sip.tls_listen".into(),
            );
        }
        Ok(Some(address))
    }

    /// Whether SDES keys may go in SDP sent on `transport`.
    pub fn srtp_keys_allowed(&self, transport: sono_sip::transmit::Transport) -> bool {
        self.srtp != SrtpPolicy::Off
            && (transport == sono_sip::transmit::Transport::Tls || self.srtp_without_tls)
    }

    /// Why a call on `transport` cannot be made when SRTP is required but
    /// its keys may not travel there.
    pub fn srtp_refusal(&self, transport: sono_sip::transmit::Transport) -> Option<String> {
        (self.srtp == SrtpPolicy::Required && !self.srtp_keys_allowed(transport)).then(|| {
            format!(
                "SRTP is required (sip.srtp) and its keys travel only over TLS signalling, not {transport} (use a sips: or ;transport=tls target, or sip.srtp_without_tls)"
            )
        })
    }

    pub fn timers(&self) -> sono_sip::transaction::Timers {
        sono_sip::transaction::Timers {
            t1: self.t1,
            t2: self.t2,
            t4: self.t4,
        }
    }
}

/// RTP and codecs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// The address RTP sockets bind to and SDP announces.
    pub address: std::net::IpAddr,
    /// RTP ports are taken from this range (even ports; RTCP uses the next one).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Codecs offered and accepted, in order of preference: speex (speex/16000),
    /// opus (opus/48000/2), g722, pcmu, pcma. Calls of WebRTC clients put
    /// opus first whatever the list says.
    pub codecs: Vec<String>,
    /// Offer and accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// Packet duration announced in SDP, in milliseconds.
    pub ptime: u32,
    /// Speex wideband encoder quality (0–10; 8 is 27.8 kbit/s) and
    /// complexity (1–10), for audio sono encodes as Speex.
    pub speex_quality: u8,
    pub speex_complexity: u8,
    /// Bounds of the adaptive jitter buffer's delay.
    #[serde(with = "humantime_serde")]
    pub jitter_min: Duration,
    #[serde(with = "humantime_serde")]
    pub jitter_max: Duration,
    /// A call whose peer sends no RTP for this long is ended (0s: never).
    #[serde(with = "humantime_serde")]
    pub rtp_timeout: Duration,
    /// How often RTCP reports go out.
    #[serde(with = "humantime_serde")]
    pub rtcp_interval: Duration,
    /// How long each digit of `sendDTMF` sounds, and the pause after it.
    #[serde(with = "humantime_serde")]
    pub dtmf_duration: Duration,
    #[serde(with = "humantime_serde")]
    pub dtmf_pause: Duration,
    /// Audio down to a client that publishes Nellymoser is Nellymoser at its
    /// rate, not Speex wideband (Flash plays either).
    pub nellymoser_to_client: bool,
    /// While the SIP side is silent (frames quieter than `silence_dbov`,
    /// after 100 ms of them), audio down is a ready-made silent frame
    /// instead of the encoder's work. Off encodes every frame.
    pub skip_silence: bool,
    /// The level (RMS, dBov) below which a frame down counts as silent.
    pub silence_dbov: f64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 20_000,
            rtp_port_max: 29_999,
            codecs: vec!["speex".into(), "g722".into(), "pcmu".into(), "pcma".into()],
            telephone_event: true,
            ptime: 20,
            speex_quality: 8,
            speex_complexity: 2,
            jitter_min: Duration::from_millis(20),
            jitter_max: Duration::from_millis(300),
            rtp_timeout: Duration::from_secs(30),
            rtcp_interval: Duration::from_secs(5),
            dtmf_duration: Duration::from_millis(100),
            dtmf_pause: Duration::from_millis(60),
            nellymoser_to_client: false,
            skip_silence: true,
            silence_dbov: -60.0,
        }
    }
}

impl MediaSettings {
    /// The configured codecs, in order; an error names an unknown one.
    pub fn codec_list(&self) -> Result<Vec<sono_sip::sdp::Codec>, String> {
        self.codecs
            .iter()
            .map(|name| {
                sono_sip::sdp::Codec::from_name(name).ok_or_else(|| {
                    format!("unknown codec {name:?} (known: speex, opus, g722, pcmu, pcma)")
                })
            })
            .collect()
    }
}

/// Which URIs clients may dial; nothing else is ever called (no open relay).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DialPlanSettings {
    /// Allow targets whose host is a loopback address or `localhost`.
    pub allow_loopback: bool,
    /// Regular expressions over the whole normalised URI that allow a target.
    pub allow: Vec<String>,
    /// Regular expressions that forbid a target, even one allowed above.
    pub deny: Vec<String>,
}

impl Default for DialPlanSettings {
    fn default() -> Self {
        DialPlanSettings {
            allow_loopback: true,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl DialPlanSettings {
    /// The compiled plan; an error names a bad pattern.
    pub fn compile(&self) -> Result<sono_sip::dial_plan::DialPlan, String> {
        sono_sip::dial_plan::DialPlan::new(self.allow_loopback, &self.allow, &self.deny)
    }
}

/// SRTP with SDES keys on the SIP side (RFC 3711, RFC 4568).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP; an offer that insists on SRTP (RTP/SAVP) gets 488.
    #[default]
    Off,
    /// Keys offered (RTP/AVP with a=crypto, RFC 8643) and accepted; a peer
    /// that ignores them gets plain RTP.
    Offered,
    /// SRTP or no call: offers are RTP/SAVP, a plain offer gets 488 and a
    /// plain answer ends the dial with 488 and the reason.
    Required,
}

/// What a SIP request over its limit gets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OverLimit {
    /// 503 Service Unavailable with Retry-After (HTTP: 429).
    Reject,
    /// Nothing at all (a scanner learns nothing; HTTP still gets 429).
    Drop,
}

/// Per-source rate limits: token buckets, `…_per_second` a second and
/// `…_burst` at once; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// SIP requests no dialog owns (INVITE, REGISTER, OPTIONS…), per source address.
    pub sip_requests_per_second: u32,
    pub sip_burst: u32,
    /// RTMP, RTMPS and RTMPT connects, per client address.
    pub rtmp_connects_per_second: u32,
    pub rtmp_burst: u32,
    /// REST calls, per token (or per address without one).
    pub rest_calls_per_second: u32,
    pub rest_burst: u32,
    pub over_limit: OverLimit,
    /// Loopback sources (local tools and monitors) are not limited.
    pub exempt_loopback: bool,
    /// Networks never limited: the SIP proxy in front of a cluster (every
    /// inbound call comes from it), monitors.
    pub exempt: Vec<ipnet::IpNet>,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            sip_requests_per_second: 50,
            sip_burst: 100,
            rtmp_connects_per_second: 20,
            rtmp_burst: 40,
            rest_calls_per_second: 50,
            rest_burst: 100,
            over_limit: OverLimit::Reject,
            exempt_loopback: true,
            exempt: Vec::new(),
        }
    }
}

/// When a call offers H.264 video (docs/media.md, "Video").
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VideoOffer {
    /// When the client publishes H.264, or dials with `{video: true}`.
    Publishing,
    /// On every call of an RTMP client.
    Always,
    /// Never: calls are audio only and video offers are refused.
    Never,
}

/// H.264 passed through between RTMP and RTP (RFC 6184).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VideoSettings {
    pub offer: VideoOffer,
    /// Per call and direction, in bits a second (one second's burst):
    /// beyond it access units are dropped until the next keyframe. 0: none.
    pub max_bitrate: u64,
    /// Unsent bytes to a client beyond which video down is dropped (until
    /// the next keyframe) so audio keeps its pace.
    pub client_backlog: usize,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings {
            offer: VideoOffer::Publishing,
            max_bitrate: 4_000_000,
            client_backlog: 256 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Draining (SIGTERM or `POST /api/v1/drain`): how long calls in progress
    /// may go on before sono ends them. SIGINT does not wait.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// Once calls are ended: how long their BYEs and CANCELs, and the
    /// unregistrations, get to be answered before sono exits anyway.
    #[serde(with = "humantime_serde")]
    pub close_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            grace: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// One node among several behind Kamailio and HAProxy (docs/cluster.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's name: the prefix of its connection tokens and RTMPT
    /// session ids (`n1-…`), which the proxy routes on. Empty: a lone node.
    pub node_id: String,
    /// Every node's name → where clients reach it (for the 421 answer to a
    /// request that came to the wrong node).
    pub nodes: std::collections::BTreeMap<String, String>,
    /// Proxies believed about a client's address: the PROXY protocol header
    /// on the RTMP and RTMPS listeners, `X-Forwarded-For` on HTTP.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The RTMP and RTMPS listeners expect a PROXY protocol v2 header (HAProxy
    /// `send-proxy-v2`) from a trusted proxy before anything else.
    pub proxy_protocol: bool,
}

impl ClusterSettings {
    /// Node names: letters, digits and `_`, at most 32 (no `-`: it ends
    /// the prefix).
    pub fn is_node_id(s: &str) -> bool {
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    /// Whether `ip` is one of `trusted_proxies`.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

impl Settings {
    fn validate_cluster(&self) -> Result<(), String> {
        let c = &self.cluster;
        if !c.node_id.is_empty() && !ClusterSettings::is_node_id(&c.node_id) {
            return Err(format!(
                "cluster.node_id {:?}: letters, digits and _ only, at most 32",
                c.node_id
            ));
        }
        if let Some(bad) = c.nodes.keys().find(|n| !ClusterSettings::is_node_id(n)) {
            return Err(format!(
                "cluster.nodes: {bad:?} is not a node name (letters, digits and _, at most 32)"
            ));
        }
        if c.proxy_protocol && c.trusted_proxies.is_empty() {
            return Err(
                "cluster.proxy_protocol needs cluster.trusted_proxies: whose headers to believe"
                    .into(),
            );
        }
        if self.shutdown.close_timeout.is_zero() {
            return Err("shutdown.close_timeout must be longer than zero".into());
        }
        Ok(())
    }

    /// Checks what serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_cluster()?;
        let r = &self.rtmp;
        if r.max_connections == 0 {
            return Err("rtmp.max_connections must be at least 1".into());
        }
        if r.max_message_size < 128 {
            return Err("rtmp.max_message_size must be at least 128".into());
        }
        if r.max_chunk_size < 128 {
            return Err("rtmp.max_chunk_size must be at least 128".into());
        }
        if !(128..=65_536).contains(&r.chunk_size) {
            return Err("rtmp.chunk_size must be between 128 and 65536".into());
        }
        if r.max_chunk_streams == 0 || r.max_streams == 0 {
            return Err("rtmp.max_chunk_streams and rtmp.max_streams must be at least 1".into());
        }
        for (name, d) in [
            ("rtmp.handshake_timeout", r.handshake_timeout),
            ("rtmp.idle_timeout", r.idle_timeout),
            ("rtmp.ping_interval", r.ping_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be longer than zero"));
            }
        }
        if r.ping_interval >= r.idle_timeout {
            return Err("rtmp.ping_interval must be shorter than rtmp.idle_timeout".into());
        }
        for (app, api) in &r.app_apis {
            if sono_rtmp::api::ClientApi::parse(api).is_none() {
                return Err(format!(
                    "rtmp.app_apis.{app} = {api:?}: the API is \"sono\", \"mod_rtmp\" or \"siprtmp\""
                ));
            }
        }
        if self.rtmps.address()?.is_some()
            && (self.rtmps.certificate.is_empty() || self.rtmps.private_key.is_empty())
        {
            return Err(
                "rtmps.certificate and rtmps.private_key are needed with rtmps.listen".into(),
            );
        }
        let t = &self.rtmpt;
        if t.session_timeout < Duration::from_secs(1)
            || t.max_body < 1536
            || t.max_sessions_per_address == 0
        {
            return Err("rtmpt.session_timeout must be at least 1s, rtmpt.max_body at least 1536 (a handshake) and rtmpt.max_sessions_per_address at least 1".into());
        }
        let h = &self.http;
        if h.max_event_streams == 0 || h.event_keepalive.is_zero() {
            return Err(
                "http.max_event_streams and http.event_keepalive must be above zero".into(),
            );
        }
        if !h.admin_key.is_empty() && h.admin_key.len() < 16 {
            return Err(
                "http.admin_key must be at least 16 characters (or empty: no admin API)".into(),
            );
        }
        if !self.sip.auth_user.is_empty() && self.sip.auth_realms.is_empty() {
            return Err("sip.auth_user is set but sip.auth_realms is empty: list the realms (as the outbound proxy or registrar names them in its challenges) these credentials may answer".into());
        }
        if self.sip.domain.trim().is_empty() {
            return Err("sip.domain must not be empty".into());
        }
        let sip = &self.sip;
        if sip.advertise.is_empty() && sip.listen.ip().is_unspecified() {
            return Err("sip.advertise must be set when sip.listen is a wildcard address".into());
        }
        if !sip.outbound_proxy.is_empty() {
            let proxy = sono_sip::uri::SipUri::parse(&sip.outbound_proxy)
                .map_err(|e| format!("sip.outbound_proxy: {e}"))?;
            if proxy.ip().is_none() {
                return Err("sip.outbound_proxy must name an IP address".into());
            }
        }
        if sip.t1.is_zero() || sip.t2 < sip.t1 || sip.t4.is_zero() {
            return Err(
                "sip.t1 and sip.t4 must be longer than zero and sip.t2 at least sip.t1".into(),
            );
        }
        if sip.max_calls == 0 || sip.max_tcp_connections == 0 || sip.lines == 0 {
            return Err(
                "sip.max_calls, sip.lines and sip.max_tcp_connections must be at least 1".into(),
            );
        }
        if sip.register_expires < 10
            || sip.register_retry_min.is_zero()
            || sip.register_retry_max < sip.register_retry_min
        {
            return Err("sip.register_expires must be at least 10 and sip.register_retry_max at least sip.register_retry_min (> 0)".into());
        }
        if sip.no_answer_timeout.is_zero() {
            return Err("sip.no_answer_timeout must be longer than zero".into());
        }
        sip.tls_address()?;
        if sip.tcp_idle_timeout.is_zero() {
            return Err("sip.tcp_idle_timeout must be longer than zero".into());
        }
        let m = &self.media;
        if m.rtp_port_min < 1024 || m.rtp_port_max < m.rtp_port_min.saturating_add(1) {
            return Err(
                "media.rtp_port_min must be at least 1024 and below media.rtp_port_max".into(),
            );
        }
        if m.codecs.is_empty() {
            return Err("media.codecs must name at least one codec".into());
        }
        m.codec_list()?;
        if !(10..=120).contains(&m.ptime) {
            return Err("media.ptime must be between 10 and 120".into());
        }
        if m.speex_quality > 10 || !(1..=10).contains(&m.speex_complexity) {
            return Err("media.speex_quality must be 0-10 and media.speex_complexity 1-10".into());
        }
        if !(-96.0..=-20.0).contains(&m.silence_dbov) {
            return Err(
                "media.silence_dbov must be between -96 and -20 (dBov; speech is around -26)"
                    .into(),
            );
        }
        if m.jitter_min > m.jitter_max || m.jitter_max > Duration::from_secs(2) {
            return Err("media.jitter_min must not exceed media.jitter_max, nor that 2s".into());
        }
        if m.rtcp_interval < Duration::from_secs(1) {
            return Err("media.rtcp_interval must be at least 1s".into());
        }
        if m.dtmf_duration < Duration::from_millis(40) || m.dtmf_duration > Duration::from_secs(5) {
            return Err("media.dtmf_duration must be between 40ms and 5s".into());
        }
        let w = &self.webrtc;
        if w.port_min < 1024 || w.port_max < w.port_min {
            return Err(
                "webrtc.port_min must be at least 1024 and not above webrtc.port_max".into(),
            );
        }
        if w.max_sessions == 0 || w.max_sessions_per_address == 0 || w.max_offer_size < 256 {
            return Err("webrtc.max_sessions and webrtc.max_sessions_per_address must be at least 1, webrtc.max_offer_size at least 256".into());
        }
        if w.connect_timeout.is_zero() || w.media_timeout < Duration::from_millis(200) {
            return Err(
                "webrtc.connect_timeout must be above zero and webrtc.media_timeout at least 200ms"
                    .into(),
            );
        }
        if w.advertised()?.is_unspecified() {
            return Err(
                "webrtc.advertise must be set when webrtc.address is a wildcard address".into(),
            );
        }
        self.sip
            .dial_plan
            .compile()
            .map(drop)
            .map_err(|e| format!("sip.dial_plan: {e}"))?;
        Ok(())
    }
}
