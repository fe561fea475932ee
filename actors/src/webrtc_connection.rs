//! `WebRtcConnection`: one browser's WebRTC transport for its
//! [`ClientSession`]. The browser's SDP offer (WHIP-like, RFC 9725's shape,
//! over REST) is answered by str0m, the sans-I/O WebRTC stack: ICE-lite
//! (RFC 8445 §2.5) with one host candidate on a UDP port of the session's
//! own, DTLS-SRTP (RFC 5763, RFC 5764), RTCP, and one audio codec: Opus
//! (RFC 7587), or G.722, PCMU or PCMA when the page prefers them. This actor does
//! str0m's I/O and time: datagrams in, datagrams out, a timer at the
//! deadline str0m asks for.
//!
//! Audio goes straight between this actor and the call's media bridge, as
//! RTP payloads: up as [`ClientAudio`], down as [`MediaNotice::AudioDown`].
//! The phone (calls, registration, events) is the session's; events reach
//! the page over the REST API's live stream.
//!
//! A peer connection lasts a call, as a softphone's does (sono.js closes
//! the page's when its last call ends, and offers a new one for the next,
//! with the session's token). One that the page closes, or that goes quiet
//! for `webrtc.media_timeout` (a tab closed, a network gone), or whose ICE
//! or DTLS fails, ends the session's calls; the session itself, its
//! registration and its events stay for the page's next offer, while the
//! page follows its events (see [`ClientSession`]). The actor stays the
//! session's transport in between, with its UDP port.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::DashMap;
use sono_media::codec::ClientCodec;
use sono_media::dtmf::DtmfReceiver;
use sono_media::g711::Law;
use sono_media::opus::OPUS_CLOCK;
use sono_rtmp::PhoneEvent;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_util::codec::BytesCodec;
use tokio_util::udp::UdpFramed;
use tracing::{debug, info, warn};

use crate::client_session::{
    AttachMedia, ClientSession, DetachMedia, FromClient, SessionIdentity, ToClient,
};
use crate::control::ClientTransport;
use crate::directory::ConnectionId;
use crate::media_bridge::{ClientAudio, ClientMedia, MediaBridge, MediaNotice, SendDtmf};
use crate::metrics::Metrics;
use crate::webrtc_offer::answer_offer;
pub use crate::webrtc_offer::OfferRefused;
use crate::Shared;

/// What the answered offer gives the browser.
pub struct Answered {
    pub id: ConnectionId,
    pub token: String,
    pub sdp: String,
    pub session: Addr<ClientSession>,
}

/// WebRTC sessions by client address, for `webrtc.max_sessions` and
/// `webrtc.max_sessions_per_address`.
#[derive(Default)]
pub struct WebRtcSessions {
    per_address: DashMap<IpAddr, usize>,
    /// Each session's own WebRTC transport, which takes the page's next
    /// peer connection.
    own: DashMap<ConnectionId, Addr<WebRtcConnection>>,
}

impl WebRtcSessions {
    fn take(&self, shared: &Shared, ip: IpAddr) -> Result<(), OfferRefused> {
        let w = &shared.settings.webrtc;
        let active = &shared.metrics.webrtc_sessions_active;
        if active.fetch_add(1, Ordering::AcqRel) as usize >= w.max_sessions {
            active.fetch_sub(1, Ordering::AcqRel);
            return Err(OfferRefused::TooMany("webrtc.max_sessions"));
        }
        let mut count = self.per_address.entry(ip).or_insert(0);
        if *count >= w.max_sessions_per_address {
            drop(count);
            active.fetch_sub(1, Ordering::AcqRel);
            return Err(OfferRefused::TooManyFromAddress);
        }
        *count += 1;
        Ok(())
    }

    fn release(&self, shared: &Shared, ip: IpAddr) {
        shared
            .metrics
            .webrtc_sessions_active
            .fetch_sub(1, Ordering::AcqRel);
        self.per_address.remove_if_mut(&ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

pub struct WebRtcConnection {
    id: ConnectionId,
    peer: IpAddr,
    shared: Arc<Shared>,
    rtc: Rtc,
    socket: Option<Arc<UdpSocket>>,
    local: SocketAddr,
    /// The host candidate answers carry (`webrtc.advertise`, the port).
    announced: SocketAddr,
    /// The page's peer connection is gone; a new offer brings the next.
    idle: bool,
    /// Counts the page's peer connections, so a timer of one that has gone
    /// does not judge the next.
    generation: u32,
    phone: Option<Addr<ClientSession>>,
    media: Option<Addr<MediaBridge>>,
    /// The session's codec (the browser's first of Opus, G.722, PCMU, PCMA).
    codec: ClientCodec,
    /// The audio m-line, and the payload type audio goes down with.
    audio: Option<(Mid, Pt)>,
    /// DTMF the page sends (RFC 4733), one digit per event.
    dtmf: DtmfReceiver,
    timer: Option<(Instant, SpawnHandle)>,
    opened: Instant,
    connected: bool,
    closing: bool,
    /// The media of another connection's session (attached with its
    /// token), not a session of its own.
    attached: bool,
    packets_up: u64,
    packets_down: u64,
    garbage: u64,
}

impl WebRtcConnection {
    /// Answers a browser's SDP offer from `peer` and starts its session on
    /// one of the connection arbiters; with `attach_to` (a connection's id,
    /// token and session), the WebRTC media carries that connection's audio
    /// instead, and no new session starts.
    pub async fn answer(
        shared: &Arc<Shared>,
        offer: &str,
        peer: SocketAddr,
        attach_to: Option<(ConnectionId, String, Addr<ClientSession>)>,
    ) -> Result<Answered, OfferRefused> {
        let w = &shared.settings.webrtc;
        if !w.enabled {
            return Err(OfferRefused::Disabled);
        }
        // A WebRTC session's own token: the page's next peer connection.
        if let Some((id, token, session)) = &attach_to {
            let own = shared.webrtc.own.get(id).map(|t| t.clone());
            if let Some(transport) = own {
                let sdp = transport
                    .send(Renew {
                        offer: offer.to_owned(),
                    })
                    .await
                    .map_err(|_| OfferRefused::NotStarted)??;
                info!(conn = id, %peer, "WebRTC session: the page's next peer connection answered");
                return Ok(Answered {
                    id: *id,
                    token: token.clone(),
                    sdp,
                    session: session.clone(),
                });
            }
        }
        let advertised = w
            .advertised()
            .map_err(|e| OfferRefused::BadOffer(format!("sono's settings: {e}")))?;
        shared.webrtc.take(shared, peer.ip())?;
        let started = bind_in_range(w.address, w.port_min, w.port_max)
            .map_err(OfferRefused::NoPort)
            .and_then(|socket| {
                let local = socket.local_addr().map_err(OfferRefused::NoPort)?;
                let announced = SocketAddr::new(advertised, local.port());
                let (rtc, sdp, codec) =
                    answer_offer(offer, announced, w.media_timeout, Instant::now())?;
                Ok((socket, local, rtc, sdp, codec))
            });
        let (socket, local, rtc, sdp, codec) = match started {
            Ok(s) => s,
            Err(e) => {
                shared.webrtc.release(shared, peer.ip());
                return Err(e);
            }
        };
        let (id, token) = match &attach_to {
            Some((id, token, _)) => (*id, token.clone()),
            None => (
                shared.directory.next_connection_id(),
                crate::cluster::new_secret(&shared.settings.cluster.node_id),
            ),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let session_token = token.clone();
        let shared2 = shared.clone();
        let arbiter = shared.next_arbiter();
        let attaching = attach_to.is_some();
        let attached = attach_to.map(|(_, _, session)| session);
        let transport = WebRtcConnection::start_in_arbiter(&arbiter, move |ctx| {
            let announced = SocketAddr::new(advertised, local.port());
            let mut connection = WebRtcConnection::new(
                id,
                peer.ip(),
                shared2.clone(),
                rtc,
                (local, announced),
                codec,
            );
            let phone = match attached {
                Some(session) => {
                    connection.attached = true;
                    session
                }
                None => {
                    shared2.webrtc.own.insert(id, ctx.address());
                    ClientSession::start(
                        SessionIdentity {
                            id,
                            token: session_token,
                            peer,
                            transport: ClientTransport::Webrtc,
                            client_codec: codec,
                        },
                        shared2,
                        ctx.address().recipient(),
                        ctx.address().recipient(),
                    )
                }
            };
            let _ = tx.send(phone.clone());
            connection.phone = Some(phone);
            match UdpSocket::from_std(socket) {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    ctx.add_stream(UdpFramed::new(socket.clone(), BytesCodec::new()));
                    connection.socket = Some(socket);
                }
                Err(e) => warn!(conn = id, error = %e, "WebRTC socket unusable"),
            }
            connection
        });
        let session = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(OfferRefused::NotStarted)?;
        if attaching {
            let attach = session.send(AttachMedia {
                transport: transport.clone().recipient(),
                media: ClientMedia {
                    out: transport.clone().recipient(),
                    codec,
                    passthrough_only: false,
                },
            });
            if !matches!(attach.await, Ok(true)) {
                transport.do_send(ToClient::Close {
                    reason: "the connection already has WebRTC media, or is closing".into(),
                    is_error: false,
                });
                return Err(OfferRefused::AlreadyAttached);
            }
        }
        Metrics::add(&shared.metrics.webrtc_sessions_started, 1);
        info!(conn = id, %peer, %local, "WebRTC session answered");
        Ok(Answered {
            id,
            token,
            sdp,
            session,
        })
    }

    fn new(
        id: ConnectionId,
        peer: IpAddr,
        shared: Arc<Shared>,
        rtc: Rtc,
        (local, announced): (SocketAddr, SocketAddr),
        codec: ClientCodec,
    ) -> WebRtcConnection {
        WebRtcConnection {
            codec,
            id,
            peer,
            shared,
            rtc,
            socket: None,
            local,
            announced,
            idle: false,
            generation: 0,
            phone: None,
            media: None,
            audio: None,
            dtmf: DtmfReceiver::default(),
            timer: None,
            opened: Instant::now(),
            connected: false,
            closing: false,
            attached: false,
            packets_up: 0,
            packets_down: 0,
            garbage: 0,
        }
    }

    fn tell_phone(&self, msg: FromClient) {
        if let Some(phone) = &self.phone {
            phone.do_send(msg);
        }
    }

    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, is_error: bool) {
        if self.closing {
            return;
        }
        self.closing = true;
        if is_error {
            warn!(conn = self.id, peer = %self.peer, %reason, "closing WebRTC session");
        } else {
            info!(conn = self.id, peer = %self.peer, %reason, "closing WebRTC session");
        }
        if !self.attached {
            self.tell_phone(FromClient::Closing);
        }
        self.rtc.disconnect();
        self.drive(ctx);
        ctx.stop();
    }

    /// The page's peer connection is gone (`reason`). Attached media ends
    /// with it; a session's own transport waits for the page's next one,
    /// and the session ends the calls this one carried.
    fn lose_peer_connection(&mut self, ctx: &mut Context<Self>, reason: &str) {
        if self.attached {
            self.close(ctx, reason, false);
            return;
        }
        if self.idle || self.closing {
            return;
        }
        self.idle = true;
        self.connected = false;
        self.audio = None;
        info!(conn = self.id, peer = %self.peer, %reason, packets_up = self.packets_up,
              packets_down = self.packets_down, "the page's peer connection is gone");
        self.rtc.disconnect();
        self.drive(ctx);
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        self.tell_phone(FromClient::MediaLost {
            reason: reason.to_owned(),
        });
    }

    /// Waits `webrtc.connect_timeout` for this peer connection's ICE and
    /// DTLS.
    fn watch_connect(&mut self, ctx: &mut Context<Self>) {
        let timeout = self.shared.settings.webrtc.connect_timeout;
        let generation = self.generation;
        ctx.run_later(timeout, move |conn, ctx| {
            if conn.generation == generation && !conn.connected && !conn.idle {
                let reason = format!(
                    "ICE and DTLS not up within {} s (webrtc.connect_timeout)",
                    timeout.as_secs()
                );
                if conn.generation == 0 {
                    // The session's first: there is no page to wait for.
                    conn.close(ctx, &reason, true);
                } else {
                    conn.lose_peer_connection(ctx, &reason);
                }
            }
        });
    }

    /// Runs str0m until it waits for input or time: sends what it has to
    /// send, handles its events, sets the timer for its next deadline.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        // Bounded: str0m yields a timeout once it has nothing more to do.
        for _ in 0..10_000 {
            let output = match self.rtc.poll_output() {
                Ok(output) => output,
                Err(e) => {
                    let reason = format!("WebRTC failed: {e}");
                    warn!(conn = self.id, peer = %self.peer, %reason, "WebRTC error");
                    self.lose_peer_connection(ctx, &reason);
                    return;
                }
            };
            match output {
                Output::Transmit(t) => {
                    if let Some(socket) = &self.socket {
                        // UDP: a full send buffer drops, as the network would.
                        let _ = socket.try_send_to(&t.contents, t.destination);
                    }
                }
                Output::Event(event) => self.event(ctx, event),
                Output::Timeout(at) => {
                    if self.idle || self.closing {
                        return;
                    }
                    if !self.rtc.is_alive() {
                        let reason = "the browser closed its peer connection (DTLS close)";
                        self.lose_peer_connection(ctx, reason);
                        return;
                    }
                    self.set_timer(ctx, at);
                    return;
                }
            }
        }
    }

    fn set_timer(&mut self, ctx: &mut Context<Self>, at: Instant) {
        if let Some((when, handle)) = self.timer.take() {
            if when == at {
                self.timer = Some((when, handle));
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |conn, ctx| {
            conn.timer = None;
            if conn
                .rtc
                .handle_input(Input::Timeout(Instant::now()))
                .is_ok()
            {
                conn.drive(ctx);
            }
        });
        self.timer = Some((at, handle));
    }

    fn event(&mut self, ctx: &mut Context<Self>, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                info!(conn = self.id, peer = %self.peer, after_ms = self.opened.elapsed().as_millis() as u64,
                      "WebRTC connected (ICE and DTLS up)");
                if !self.attached {
                    self.tell_phone(FromClient::Connected {
                        app: "webrtc".into(),
                    });
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.lose_peer_connection(ctx, "ICE disconnected: the browser is gone");
            }
            Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                let wanted = str0m_codec(self.codec);
                let pt = self.rtc.writer(added.mid).and_then(|w| {
                    w.payload_params()
                        .find(|p| p.spec().codec == wanted)
                        .map(|p| p.pt())
                });
                debug!(conn = self.id, mid = %added.mid, ?pt, "browser audio added");
                if let Some(pt) = pt {
                    self.audio = Some((added.mid, pt));
                }
            }
            Event::MediaData(data) => {
                self.packets_up += 1;
                // Chromium sends a few payload-less packets (padding, for
                // its bandwidth probing): nothing to decode.
                if data.data.is_empty() {
                    return;
                }
                if data.params.spec().codec == Codec::Tele {
                    let digit = self
                        .dtmf
                        .packet(data.time.numer() as u32, false, &data.data);
                    if let (Some(digit), Some(media)) = (digit, &self.media) {
                        debug!(conn = self.id, %digit, "DTMF from the page (RFC 4733)");
                        media.do_send(SendDtmf(digit.to_string()));
                    }
                    return;
                }
                let codec = match data.params.spec().codec {
                    Codec::Opus => ClientCodec::Opus,
                    Codec::PCMU => ClientCodec::G711(Law::Mu),
                    Codec::PCMA => ClientCodec::G711(Law::A),
                    Codec::G722 => ClientCodec::G722,
                    _ => return,
                };
                if let Some(media) = &self.media {
                    let ms = data.time.rebase(Frequency::MILLIS).numer() as u32;
                    media.do_send(ClientAudio {
                        codec,
                        timestamp: ms,
                        data: bytes::Bytes::copy_from_slice(&data.data),
                        received: Instant::now(),
                    });
                }
            }
            Event::StreamPaused(paused) if paused.paused && self.connected => {
                let reason = format!(
                    "the browser sent no audio for {} ms (webrtc.media_timeout): it is gone",
                    self.shared.settings.webrtc.media_timeout.as_millis()
                );
                self.lose_peer_connection(ctx, &reason);
            }
            _ => {}
        }
    }
}

impl Actor for WebRtcConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.watch_connect(ctx);
        self.drive(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.attached {
            self.shared.webrtc.own.remove(&self.id);
        }
        match (&self.phone, self.attached) {
            // The connection goes on with its own audio.
            (Some(phone), true) => phone.do_send(DetachMedia),
            _ => self.tell_phone(FromClient::Gone),
        }
        self.shared.webrtc.release(&self.shared, self.peer);
        info!(conn = self.id, peer = %self.peer, local = %self.local, packets_up = self.packets_up,
              packets_down = self.packets_down, garbage = self.garbage, "WebRTC session closed");
    }
}

impl StreamHandler<Result<(bytes::BytesMut, SocketAddr), std::io::Error>> for WebRtcConnection {
    fn handle(
        &mut self,
        item: Result<(bytes::BytesMut, SocketAddr), std::io::Error>,
        ctx: &mut Self::Context,
    ) {
        if self.closing || self.idle {
            // Between peer connections nothing here is the page's.
            return;
        }
        let Ok((data, source)) = item else {
            // ICMP errors surface as read errors on a UDP socket; not fatal.
            return;
        };
        let now = Instant::now();
        let Ok(contents) = data.as_ref().try_into() else {
            // Neither STUN, DTLS, RTP nor RTCP (RFC 7983's demultiplexing).
            self.garbage += 1;
            Metrics::add(&self.shared.metrics.webrtc_datagrams_dropped, 1);
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if !self.rtc.accepts(&input) {
            self.garbage += 1;
            Metrics::add(&self.shared.metrics.webrtc_datagrams_dropped, 1);
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            // A datagram str0m could not use (bad STUN integrity, DTLS
            // garbage, SRTP that does not authenticate): dropped.
            debug!(conn = self.id, error = %e, "WebRTC datagram dropped");
            self.garbage += 1;
            Metrics::add(&self.shared.metrics.webrtc_datagrams_dropped, 1);
        }
        self.drive(ctx);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.close(ctx, "the WebRTC socket closed", true);
    }
}

/// str0m's name for a session codec.
fn str0m_codec(codec: ClientCodec) -> Codec {
    match codec {
        ClientCodec::G711(Law::Mu) => Codec::PCMU,
        ClientCodec::G711(Law::A) => Codec::PCMA,
        ClientCodec::G722 => Codec::G722,
        _ => Codec::Opus,
    }
}

impl Handler<MediaNotice> for WebRtcConnection {
    type Result = ();

    fn handle(&mut self, notice: MediaNotice, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        match notice {
            MediaNotice::AudioDown {
                timestamp,
                codec,
                data,
                ..
            } if codec == self.codec => {
                let Some((mid, pt)) = self.audio else {
                    return;
                };
                let Some(writer) = self.rtc.writer(mid) else {
                    return;
                };
                // In the codec's own clock: str0m takes G.722 at 16 kHz and
                // writes its 8 kHz RTP clock itself (RFC 3551 §4.5.2).
                let ms = u64::from(timestamp);
                let time = match codec {
                    ClientCodec::Opus => MediaTime::new(
                        ms * u64::from(OPUS_CLOCK / 1000),
                        Frequency::FORTY_EIGHT_KHZ,
                    ),
                    ClientCodec::G722 => MediaTime::new(ms * 16, Frequency::SIXTEEN_KHZ),
                    _ => MediaTime::new(ms * 8, Frequency::EIGHT_KHZ),
                };
                if writer.write(pt, Instant::now(), time, data).is_ok() {
                    self.packets_down += 1;
                }
                self.drive(ctx);
            }
            // The bridge encodes for this client in its codec only.
            MediaNotice::AudioDown { .. } => {}
            MediaNotice::Dtmf(digit) => {
                self.tell_phone(FromClient::Event(PhoneEvent::Dtmf { digit }))
            }
            // A browser sends Opus, which the bridge counts when corrupt.
            MediaNotice::Undecodable { codec, reason } => {
                debug!(conn = self.id, codec, %reason, "browser audio not decoded")
            }
            // Browser sessions are audio only: their calls offer no video.
            MediaNotice::VideoDown { .. } => {}
        }
    }
}

impl Handler<ToClient> for WebRtcConnection {
    type Result = ();

    fn handle(&mut self, msg: ToClient, ctx: &mut Self::Context) {
        match msg {
            ToClient::Media(bridge) => self.media = bridge,
            ToClient::Close { reason, is_error } => self.close(ctx, &reason, is_error),
            // Answers and events reach a browser over REST and its live
            // event stream; other clients do not listen to a browser.
            ToClient::Answer(..) | ToClient::Event { .. } | ToClient::Listen { .. } => {}
        }
    }
}

/// The page's next peer connection: its offer in, the answer out. Only
/// once the last one is gone.
#[derive(Message)]
#[rtype(result = "Result<String, OfferRefused>")]
struct Renew {
    offer: String,
}

impl Handler<Renew> for WebRtcConnection {
    type Result = Result<String, OfferRefused>;

    fn handle(&mut self, msg: Renew, ctx: &mut Self::Context) -> Self::Result {
        if self.closing || !self.idle {
            return Err(OfferRefused::AlreadyAttached);
        }
        let w = &self.shared.settings.webrtc;
        let (rtc, sdp, codec) =
            answer_offer(&msg.offer, self.announced, w.media_timeout, Instant::now())?;
        self.rtc = rtc;
        self.idle = false;
        self.connected = false;
        self.opened = Instant::now();
        self.generation += 1;
        self.dtmf = DtmfReceiver::default();
        if codec != self.codec {
            self.codec = codec;
            self.tell_phone(FromClient::MediaCodec(codec));
        }
        self.watch_connect(ctx);
        self.drive(ctx);
        Ok(sdp)
    }
}

/// A UDP socket on a free port of `min..=max`, tried from a random start.
fn bind_in_range(address: IpAddr, min: u16, max: u16) -> std::io::Result<std::net::UdpSocket> {
    let span = u32::from(max.saturating_sub(min)) + 1;
    let start = rand::random::<u32>() % span;
    for i in 0..span {
        let port = min + ((start + i) % span) as u16;
        if let Ok(socket) = std::net::UdpSocket::bind(SocketAddr::new(address, port)) {
            socket.set_nonblocking(true)?;
            return Ok(socket);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free UDP port in {min}-{max} (webrtc.port_min/max)"),
    ))
}
