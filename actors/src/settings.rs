//! Every setting of sono, with its default. `config/sono.toml` documents each key;
//! the binary layers that file and `SONO_…` environment variables over these
//! defaults (config crate) and hands the result to the actors.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub rtmp: RtmpSettings,
    pub http: HttpSettings,
    pub sip: SipSettings,
    pub shutdown: ShutdownSettings,
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
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipSettings {
    pub listen: SocketAddr,
    /// sono's own SIP domain: implicit URIs are `sip:USER@DOMAIN`.
    pub domain: String,
    pub dial_plan: DialPlanSettings,
}

impl Default for SipSettings {
    fn default() -> Self {
        SipSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            domain: "127.0.0.1".into(),
            dial_plan: DialPlanSettings::default(),
        }
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long connections get to close on SIGINT/SIGTERM before sono exits anyway.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            grace: Duration::from_secs(5),
        }
    }
}

impl Settings {
    /// Checks what serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> Result<(), String> {
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
        if self.sip.domain.trim().is_empty() {
            return Err("sip.domain must not be empty".into());
        }
        self.sip
            .dial_plan
            .compile()
            .map(drop)
            .map_err(|e| format!("sip.dial_plan: {e}"))?;
        Ok(())
    }
}
