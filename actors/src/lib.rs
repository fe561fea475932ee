//! sono's actors: each RTMP connection, SIP dialog, registration and media
//! bridge is an actix actor that owns its state and I/O and talks to others only
//! through typed messages. The sans-I/O crates (`sono-rtmp`, `sono-sip`,
//! `sono-media`) do the protocol work inside them.
//!
//! [`Gateway`] starts everything for the binary and shuts it down gracefully.

pub mod call;
pub mod call_leg;
pub mod client_session;
pub mod client_writer;
pub mod cluster;
pub mod control;
pub mod directory;
pub mod drain;
pub mod lines;
pub mod media_bridge;
pub mod metrics;
pub mod rate_limit;
pub mod registration;
pub mod rtmp_connection;
pub mod rtmp_listener;
pub mod rtp_ports;
pub mod settings;
pub mod sip_stream;
pub mod sip_transport;
pub mod tls;
pub mod tunnel;
pub mod video_bridge;
pub mod webrtc_connection;
pub mod webrtc_offer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Arbiter;
use tokio::net::TcpListener;
use tracing::info;

pub use client_session::{ClientSession, Drain, Shutdown};
pub use directory::{ConnectionId, Directory};
pub use metrics::Metrics;
pub use rtmp_connection::RtmpConnection;
pub use settings::Settings;

/// What every actor may read: settings, the directory, the counters.
pub struct Shared {
    pub settings: Settings,
    pub directory: Directory,
    pub metrics: Metrics,
    pub dial_plan: sono_sip::dial_plan::DialPlan,
    /// The SIP socket every call sends from.
    pub sip: sip_transport::SipSocket,
    /// Codecs from `media.codecs`, checked at start.
    pub codecs: Vec<sono_sip::sdp::Codec>,
    /// Every connection's events, for the REST API's live streams.
    pub events: control::EventBus,
    /// RTMPT sessions by id.
    pub tunnels: tunnel::TunnelSessions,
    /// WebRTC sessions by client address.
    pub webrtc: webrtc_connection::WebRtcSessions,
    /// Per-source rate limits (`[limits]`).
    pub limits: rate_limit::Limits,
    /// Whether the node is leaving service (SIGTERM, `POST /api/v1/drain`).
    pub drain: drain::DrainState,
    /// The arbiters connections run on, one per core.
    arbiters: Vec<actix::dev::ArbiterHandle>,
    next_arbiter: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// Takes one of the `rtmp.max_connections` slots (RTMP, RTMPS and RTMPT
    /// together) for a client at `peer`; false, counted and logged, when none
    /// is left. The connection's actor gives the slot back when it stops.
    pub fn take_connection_slot(&self, peer: std::net::SocketAddr) -> bool {
        if !self
            .limits
            .allow(rate_limit::Limit::Rtmp, peer.ip(), None, &self.metrics)
        {
            return false;
        }
        use std::sync::atomic::Ordering;
        let m = &self.metrics;
        let limit = self.settings.rtmp.max_connections;
        let active = m.rtmp_connections_active.fetch_add(1, Ordering::AcqRel);
        if active as usize >= limit {
            m.rtmp_connections_active.fetch_sub(1, Ordering::AcqRel);
            Metrics::add(&m.rtmp_connections_refused, 1);
            tracing::warn!(%peer, limit, "refusing a connection: rtmp.max_connections reached");
            return false;
        }
        Metrics::add(&m.rtmp_connections_accepted, 1);
        true
    }

    /// The arbiter for the next connection (round robin).
    pub fn next_arbiter(&self) -> actix::dev::ArbiterHandle {
        let n = self
            .next_arbiter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.arbiters[n % self.arbiters.len()].clone()
    }
}

/// The running gateway: listeners and the arbiters that hold connections.
pub struct Gateway {
    shared: Arc<Shared>,
    arbiters: Arc<Vec<Arbiter>>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Binds the listeners and starts accepting. Must run inside an actix System.
    pub async fn start(settings: Settings) -> std::io::Result<Gateway> {
        let dial_plan = settings
            .sip
            .dial_plan
            .compile()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let codecs = settings
            .media
            .codec_list()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let s = &settings.sip;
        let tcp = s
            .tcp
            .then(|| sip_stream::StreamConnections::tcp(s.max_tcp_connections, s.tcp_idle_timeout));
        let mut sip = sip_transport::SipSocket::bind(s.listen, &s.advertise, tcp.clone())
            .await
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen for SIP on {}: {e}", s.listen),
                )
            })?;
        let tcp_listener = match &tcp {
            Some(_) => Some(TcpListener::bind(sip.local_addr()?).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen for SIP over TCP on {}: {e}", s.listen),
                )
            })?),
            None => None,
        };
        let tls = match s
            .tls_address()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
        {
            Some(address) => {
                let ca = (!s.tls_ca.is_empty()).then(|| std::path::Path::new(&s.tls_ca));
                let config = tls::sip(
                    std::path::Path::new(&s.tls_certificate),
                    std::path::Path::new(&s.tls_private_key),
                    ca,
                )
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let listener = TcpListener::bind(address).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot listen for SIP over TLS on {address}: {e}"),
                    )
                })?;
                let connections = sip_stream::StreamConnections::tls(
                    config,
                    s.max_tcp_connections,
                    s.tcp_idle_timeout,
                );
                sip = sip.with_tls(connections.clone(), &s.advertise, listener.local_addr()?);
                info!(address = %listener.local_addr()?, advertised = sip.advertised_for(sono_sip::transmit::Transport::Tls), "SIP over TLS listening");
                Some((connections, listener))
            }
            None => None,
        };
        info!(address = %sip.local_addr()?, advertised = sip.advertised(), tcp = s.tcp, "SIP listening");
        let listener = TcpListener::bind(settings.rtmp.listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for RTMP on {}: {e}", settings.rtmp.listen),
            )
        })?;
        info!(address = %listener.local_addr()?, "RTMP listening");
        let rtmps = match settings
            .rtmps
            .address()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
        {
            Some(address) => {
                let acceptor = tls::acceptor(
                    std::path::Path::new(&settings.rtmps.certificate),
                    std::path::Path::new(&settings.rtmps.private_key),
                )
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let listener = TcpListener::bind(address).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot listen for RTMPS on {address}: {e}"),
                    )
                })?;
                info!(address = %listener.local_addr()?, "RTMPS listening");
                Some((listener, acceptor))
            }
            None => None,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arbiters: Arc<Vec<Arbiter>> = Arc::new((0..cores).map(|_| Arbiter::new()).collect());
        let limits = rate_limit::Limits::new(&settings.limits);
        let shared = Arc::new(Shared {
            settings,
            directory: Directory::default(),
            metrics: Metrics::default(),
            dial_plan,
            sip,
            codecs,
            events: control::EventBus::default(),
            tunnels: tunnel::TunnelSessions::default(),
            webrtc: webrtc_connection::WebRtcSessions::default(),
            limits,
            drain: drain::DrainState::default(),
            arbiters: arbiters.iter().map(Arbiter::handle).collect(),
            next_arbiter: Default::default(),
        });
        let transport = sip_transport::SipTransport::start(shared.clone());
        if let (Some(tcp), Some(listener)) = (tcp, tcp_listener) {
            tcp.set_inbound(transport.clone().recipient());
            actix_rt::spawn(tcp.accept_loop(listener));
        }
        if let Some((tls, listener)) = tls {
            tls.set_inbound(transport.recipient());
            actix_rt::spawn(tls.accept_loop(listener));
        }
        let mut accept_tasks = vec![actix_rt::spawn(rtmp_listener::accept_loop(
            listener,
            shared.clone(),
            arbiters.clone(),
            None,
        ))];
        if let Some((listener, acceptor)) = rtmps {
            accept_tasks.push(actix_rt::spawn(rtmp_listener::accept_loop(
                listener,
                shared.clone(),
                arbiters.clone(),
                Some(acceptor),
            )));
        }
        Ok(Gateway {
            shared,
            arbiters,
            accept_tasks,
        })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Leaves service (docs/cluster.md): stops accepting, tells idle clients
    /// to go and refuses anything new, lets calls in progress go on for up to
    /// `grace` (SIGTERM and the admin drain: `shutdown.grace`; SIGINT: none),
    /// then ends what is left and gives BYEs, CANCELs and unregistrations
    /// `shutdown.close_timeout` to be answered.
    pub async fn shutdown(self, grace: Duration) {
        self.shared.drain.begin();
        for task in &self.accept_tasks {
            task.abort();
        }
        let connections = self.shared.directory.connections();
        let m = &self.shared.metrics;
        let load =
            |gauge: &std::sync::atomic::AtomicU64| gauge.load(std::sync::atomic::Ordering::Acquire);
        info!(
            connections = connections.len(),
            calls = load(&m.sip_calls_active),
            grace = ?grace,
            "draining: taking nothing new; calls in progress may finish"
        );
        for (_, addr) in connections {
            addr.do_send(Drain);
        }
        let busy = || {
            load(&m.sip_calls_active) + load(&m.sip_calls_unsettled) + load(&m.registrations_active)
                > 0
        };
        let settled = || self.shared.directory.connection_count() == 0 && !busy();
        let deadline = Instant::now() + grace;
        while !settled() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !settled() {
            let connections = self.shared.directory.connections();
            info!(
                connections = connections.len(),
                calls = load(&m.sip_calls_active),
                "ending the calls and connections that are left"
            );
            // Calls get their BYE or CANCEL answered, and registrations
            // their bindings removed, within the close timeout.
            for (_, addr) in connections {
                addr.do_send(Shutdown);
            }
            let deadline = Instant::now() + self.shared.settings.shutdown.close_timeout;
            while !settled() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let left = self.shared.directory.connection_count();
        let calls = load(&m.sip_calls_active) + load(&m.sip_calls_unsettled);
        let registrations = load(&m.registrations_active);
        if left + calls as usize + registrations as usize > 0 {
            info!(
                connections = left,
                calls_unanswered = calls,
                registrations = registrations,
                "close timeout over: giving up on what is left"
            );
        } else {
            info!("every call and registration ended and answered");
        }
        for arbiter in self.arbiters.iter() {
            arbiter.stop();
        }
    }
}
