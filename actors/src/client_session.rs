//! `ClientSession`: one client's phone, whatever carries it. Registration
//! (implicit and at registrars), the calls (its lines, in [`calls`]), the
//! events and the phone rules (the dial plan, `sip.max_calls`, `sip.lines`)
//! live here; the
//! transports (`RtmpConnection` for RTMP, RTMPS, RTMPT and stream-key tools;
//! the WebRTC endpoint) only move bytes and media and hand the client's phone
//! requests in. The REST API, the SIP side and shutdown talk to the session.
//!
//! Audio does not pass through the session: the call's media bridge sends
//! audio down straight to the transport's [`MediaNotice`] recipient, and the
//! transport sends the client's audio straight to the bridge the session told
//! it about ([`ToClient::Media`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sono_media::codec::ClientCodec;
use sono_rtmp::phone::{code, CallId};
use sono_rtmp::{AmfValue, PhoneEvent, PhoneRequest, RegisterRequest};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use sono_sip::message::Received;
use sono_sip::registration::{RegistrationConfig, RegistrationEvent};
use sono_sip::transmit::Transport;

use crate::control::{
    ClientTransport, ConnectionState, Control, GetState, PhoneFailure, PhoneOutcome,
    RegistrationState, Responder,
};
use crate::directory::ConnectionId;
use crate::lines::Lines;
use crate::media_bridge::{ClientMedia, MediaBridge, MediaNotice, SwitchClient};
use crate::metrics::Metrics;
use crate::registration::{Registration, RegistrationNotice, Unregister};
use crate::Shared;

/// How long a client waits for its call to end before hearing goodbye when
/// sono shuts down.
const SHUTDOWN_CALL_WAIT: Duration = Duration::from_secs(1);

/// A new INVITE for this session's user (routed by `SipTransport`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingInvite {
    pub message: Received,
    pub source: SocketAddr,
    pub transport: Transport,
}

/// Asks a session to end its call, say goodbye and close (sono is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The node is draining: a session without calls says goodbye at once (its
/// client reconnects to another node); one with calls refuses new ones and
/// says goodbye when the last ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// A WebRTC transport carries this session's audio from now on (`POST
/// /api/v1/webrtc` with the session's token); its client's RTMP transport
/// keeps the control and the events.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AttachMedia {
    pub transport: Recipient<ToClient>,
    pub media: ClientMedia,
}

/// `DELETE /api/v1/webrtc/{id}`: a WebRTC session closes (its call ends);
/// another connection loses only the WebRTC media attached to it. False if
/// the session has neither.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct EndWebRtc;

/// A live-event stream of this session opened (`true`) or closed: how a
/// WebRTC session between peer connections knows its page is still there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EventStream {
    pub open: bool,
}

/// The attached media transport is gone: audio goes back to the session's own.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachMedia;

/// What the session asks of its transport.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToClient {
    /// The answer to the client's phone request `txn` (`_result` or `_error`).
    Answer(f64, PhoneOutcome),
    /// An event for the client (`onStatus` on RTMP), about call `call`.
    Event {
        event: PhoneEvent,
        call: Option<CallId>,
    },
    /// The answered call's media bridge, where the client's audio goes;
    /// `None` once the call ended.
    Media(Option<Addr<MediaBridge>>),
    /// Another client wants this one's call audio too (an RTMP tool that
    /// plays the stream key its twin publishes under).
    Listen {
        listener: Recipient<RelayedAudio>,
        stream_id: u32,
    },
    /// Close the client's transport; the reason goes to the log.
    Close { reason: String, is_error: bool },
}

/// Call audio relayed from the session whose stream key another client plays.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayedAudio {
    pub stream_id: u32,
    pub timestamp: u32,
    pub codec: sono_rtmp::AudioCodec,
    pub data: Vec<u8>,
}

/// What a transport tells its session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum FromClient {
    /// The client is connected (RTMP `connect` accepted) to `app`.
    Connected { app: String },
    /// A phone request; its answer comes back as [`ToClient::Answer`].
    Phone { txn: f64, request: PhoneRequest },
    /// The client publishes under a stream key (or no longer does).
    StreamKey(bool),
    /// An event the transport saw (DTMF from the call's media).
    Event(PhoneEvent),
    /// Another client asks for this one's call audio.
    Listen {
        listener: Recipient<RelayedAudio>,
        stream_id: u32,
        /// The codec it asked for, if any.
        codec: Option<ClientCodec>,
    },
    /// The client publishes audio in this codec (sent when it changes):
    /// its calls offer the codec's SIP twin first, to pass it through.
    Publishes(sono_media::codec::ClientCodec),
    /// The client publishes H.264 video; its AVC sequence header once it
    /// has sent one (profile and parameter sets for the SDP).
    PublishesVideo(Option<sono_media::h264::flv_video::AvcConfig>),
    /// A WebRTC page's peer connection is gone (closed after its call, or
    /// the tab with it): the calls it carried end; the session waits for
    /// the page's next one while the page follows its events.
    MediaLost { reason: String },
    /// A WebRTC page's new peer connection carries audio in this codec.
    MediaCodec(sono_media::codec::ClientCodec),
    /// The transport is closing: no new requests or calls.
    Closing,
    /// The transport is gone: end the call, remove the bindings, stop.
    Gone,
}

/// Who the session is and what carries it.
pub struct SessionIdentity {
    pub id: ConnectionId,
    pub token: String,
    pub peer: SocketAddr,
    pub transport: ClientTransport,
    /// What the transport carries audio in (what audio down is encoded as).
    pub client_codec: sono_media::codec::ClientCodec,
}

mod calls;
mod three_way;
mod transfers;

pub struct ClientSession {
    id: ConnectionId,
    peer: SocketAddr,
    transport: ClientTransport,
    /// The capability token that controls this session over REST.
    token: String,
    shared: Arc<Shared>,
    to_client: Recipient<ToClient>,
    /// Where the call's media bridge sends audio down (the transport), and
    /// in what codec.
    media_out: ClientMedia,
    /// A WebRTC transport attached for the audio (the session's own
    /// transport keeps control), and the media route it replaced.
    attached: Option<(Recipient<ToClient>, ClientMedia)>,
    opened: Instant,
    connected: bool,
    app: Option<String>,
    has_stream_key: bool,
    closing: bool,
    /// sono is shutting down: the call is being hung up, the goodbye follows.
    shutting_down: bool,
    /// The node is draining: no new calls; goodbye when the last one ends.
    draining: bool,
    /// The implicit user and its URI, once `register` attributed them.
    implicit: Option<(String, String)>,
    /// The client's calls.
    lines: Lines,
    /// The binding at a registrar, and the `register` it still has to answer.
    registration: Option<Addr<Registration>>,
    registration_state: Option<RegistrationState>,
    pending_register: Option<Responder>,
    /// What the client last published (RTMP), if anything.
    publishes: Option<sono_media::codec::ClientCodec>,
    /// The client publishes H.264 (RTMP), with its sequence header if sent.
    publishes_video: Option<Option<sono_media::h264::flv_video::AvcConfig>>,
    /// The last `dial` asked for video (`{video: true}`).
    video_asked: bool,
    /// A WebRTC session whose page's peer connection is gone.
    media_lost: bool,
    /// Live-event streams open on this session.
    event_streams: usize,
}

impl ClientSession {
    /// Starts the session on the current arbiter, beside its transport.
    pub fn start(
        who: SessionIdentity,
        shared: Arc<Shared>,
        to_client: Recipient<ToClient>,
        media_out: Recipient<MediaNotice>,
    ) -> Addr<ClientSession> {
        let media_out = ClientMedia {
            out: media_out,
            codec: who.client_codec,
            passthrough_only: false,
        };
        ClientSession::create(|ctx| {
            // At once, not when the actor first runs: the client may use its
            // token as soon as the transport hands it over.
            shared
                .directory
                .add_connection(who.id, ctx.address(), who.token.clone());
            ClientSession::new(who, shared, to_client, media_out)
        })
    }

    fn new(
        who: SessionIdentity,
        shared: Arc<Shared>,
        to_client: Recipient<ToClient>,
        media_out: ClientMedia,
    ) -> ClientSession {
        ClientSession {
            id: who.id,
            peer: who.peer,
            transport: who.transport,
            token: who.token,
            shared,
            to_client,
            media_out,
            attached: None,
            opened: Instant::now(),
            connected: false,
            app: None,
            has_stream_key: false,
            closing: false,
            shutting_down: false,
            draining: false,
            implicit: None,
            lines: Lines::new(),
            registration: None,
            registration_state: None,
            pending_register: None,
            publishes: None,
            publishes_video: None,
            video_asked: false,
            media_lost: false,
            event_streams: 0,
        }
    }

    /// A WebRTC session with neither a peer connection nor an event stream
    /// has lost its page, unless it comes back (an `EventSource`
    /// reconnecting, the next offer) within `webrtc.connect_timeout`.
    fn watch_for_the_page(&mut self, ctx: &mut Context<Self>) {
        let gone = |s: &ClientSession| s.media_lost && s.event_streams == 0 && s.attached.is_none();
        if self.closing || !gone(self) {
            return;
        }
        let grace = self.shared.settings.webrtc.connect_timeout;
        ctx.run_later(grace, move |session, _| {
            if !session.closing && gone(session) {
                session.to_client.do_send(ToClient::Close {
                    reason: format!(
                        "the page is gone: no peer connection nor event stream for {} s (webrtc.connect_timeout)",
                        grace.as_secs()
                    ),
                    is_error: false,
                });
            }
        });
    }

    /// The transport that carries the audio: an attached one, or the own.
    fn media_transport(&self) -> &Recipient<ToClient> {
        self.attached.as_ref().map_or(&self.to_client, |(t, _)| t)
    }

    /// Sends an event to the client and to the live-event subscribers.
    fn emit(&mut self, event: PhoneEvent) {
        self.shared.events.publish(self.id, event.info());
        self.to_client
            .do_send(ToClient::Event { event, call: None });
    }

    /// Answers a phone request, to the client or to the REST caller.
    fn respond(&mut self, responder: Responder, outcome: PhoneOutcome) {
        match responder {
            Responder::Amf(txn) => self.to_client.do_send(ToClient::Answer(txn, outcome)),
            Responder::Rest(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }

    fn fail(&mut self, responder: Responder, code: &'static str, description: &str) {
        self.respond(
            responder,
            Err(PhoneFailure {
                code,
                description: description.to_owned(),
                sip_code: None,
                reason: None,
            }),
        );
    }

    /// A phone request from the client or REST; the answer goes to `txn`.
    fn phone_request(&mut self, ctx: &mut Context<Self>, txn: Responder, request: PhoneRequest) {
        debug!(conn = self.id, ?request, "phone request");
        match request {
            PhoneRequest::Dial { uri, codec, video } => self.dial(ctx, txn, &uri, codec, video),
            PhoneRequest::Hangup { call } => self.hangup(txn, call),
            PhoneRequest::Accept { call } => self.answer_incoming(ctx, txn, call, None),
            PhoneRequest::Reject { code, call } => self.answer_incoming(ctx, txn, call, Some(code)),
            PhoneRequest::SendDtmf { digits, call } => self.send_dtmf(ctx, txn, call, digits),
            PhoneRequest::Hold { held, call } => self.hold(ctx, txn, call, held),
            PhoneRequest::Transfer { uri, call } => self.transfer(ctx, txn, call, &uri),
            PhoneRequest::Join { a, b } => self.join(ctx, txn, a, b),
            PhoneRequest::ThreeWay { a, b } => self.three_way(txn, a, b),
            PhoneRequest::Register(r) => self.register(ctx, txn, r),
            PhoneRequest::Unregister => match self.registration.take() {
                Some(registration) => {
                    // Its `Unregistered` notice follows once the registrar agreed.
                    registration.do_send(Unregister);
                    self.respond(txn, Ok(AmfValue::Null));
                }
                None => self.fail(
                    txn,
                    code::REGISTRATION_NONE,
                    "there is no registration at a registrar to remove",
                ),
            },
        }
    }

    fn register(&mut self, ctx: &mut Context<Self>, txn: Responder, request: RegisterRequest) {
        if !request.is_implicit() {
            self.register_at_registrar(ctx, txn, request);
            return;
        }
        let uri = self.implicit_uri();
        // SEMS' implicit registrar: the implicit user is registered there too.
        let registrar = self.shared.settings.sip.implicit_registrar.clone();
        if !registrar.is_empty() && self.registration.is_none() {
            let user = self
                .implicit
                .as_ref()
                .map_or("sono", |(u, _)| u.as_str())
                .to_owned();
            if let Err(why) = self.start_registration(ctx, &user, &registrar, None, None, false) {
                warn!(conn = self.id, %registrar, %why, "implicit registrar unusable");
            }
        }
        let token = self.token.clone();
        self.respond(
            txn,
            Ok(AmfValue::object([
                ("level", AmfValue::from("status")),
                ("uri", uri.as_str().into()),
                ("token", token.as_str().into()),
            ])),
        );
        self.emit(PhoneEvent::RegistrationStatus {
            registered: true,
            uri,
            // An implicit URI lives as long as the connection.
            expires: 0,
            sip_code: None,
            reason: Some("implicit registration".into()),
        });
    }

    /// The session's own user at sono (allocated once), and its URI.
    fn implicit_uri(&mut self) -> String {
        match &self.implicit {
            Some((_, uri)) => uri.clone(),
            None => {
                let user = self.shared.directory.allocate_implicit_user(self.id);
                let uri = format!("sip:{user}@{}", self.shared.settings.sip.domain);
                Metrics::add(&self.shared.metrics.registrations_implicit, 1);
                info!(conn = self.id, %uri, "implicit URI attributed");
                self.implicit = Some((user, uri.clone()));
                uri
            }
        }
    }

    /// `register(user, domain, auth_user, password, display_name)`: a binding
    /// at the registrar `domain` (host[:port]), allowed by `sip.registrars`.
    /// Calls relayed to the binding's Contact reach this session.
    fn register_at_registrar(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        r: RegisterRequest,
    ) {
        let (Some(user), Some(domain)) = (r.user.clone(), r.domain.clone()) else {
            self.fail(
                txn,
                code::REGISTRATION_FAILED,
                "register needs a user and a domain (or no arguments)",
            );
            return;
        };
        let credentials = r
            .password
            .clone()
            .map(|password| sono_sip::digest::Credentials {
                username: r.auth_user.clone().unwrap_or_else(|| user.clone()),
                password,
            });
        match self.start_registration(ctx, &user, &domain, credentials, r.display_name, true) {
            Ok(()) => self.pending_register = Some(txn),
            Err(why) => self.fail(txn, code::REGISTRATION_FAILED, &why),
        }
    }

    /// Starts a `Registration` for `sip:user@domain` (replacing any other);
    /// `check` applies `sip.registrars` (the operator's own
    /// `sip.implicit_registrar` needs none).
    fn start_registration(
        &mut self,
        ctx: &mut Context<Self>,
        user: &str,
        domain: &str,
        credentials: Option<sono_sip::digest::Credentials>,
        display_name: Option<String>,
        check: bool,
    ) -> Result<(), String> {
        let shared = self.shared.clone();
        let sip = &shared.settings.sip;
        // `host[:port]`, with `sip:`/`sips:` before and `;transport=…`
        // after allowed: `sips:` or `transport=tls` registers over TLS.
        let secure = domain
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        let transport = if secure {
            Transport::Tls
        } else {
            Transport::of_uri(&format!("sip:{domain}"))
        };
        let domain = domain
            .split_once(':')
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
            })
            .map_or(domain, |(_, rest)| rest);
        let domain = domain.split(';').next().unwrap_or(domain).trim();
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let (host, port) = match domain.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
                h.trim_matches(|c| c == '[' || c == ']').to_owned(),
                p.parse::<u16>().ok(),
            ),
            _ => (
                domain.trim_matches(|c| c == '[' || c == ']').to_owned(),
                Some(default_port),
            ),
        };
        if !self.shared.sip.supports(transport) {
            return Err(format!(
                "registering over {transport} needs SIP over {transport} (sip.tls_listen or sip.tcp)"
            ));
        }
        let port = port.ok_or_else(|| format!("{domain:?} is not host[:port]"))?;
        if check
            && !sip
                .registrars
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(&host))
        {
            warn!(conn = self.id, %domain, "register refused: not in sip.registrars");
            return Err(format!(
                "registering at {domain} is not allowed (sip.registrars)"
            ));
        }
        // A name is resolved by the registration before its first REGISTER.
        let ip: Option<std::net::IpAddr> = if host.eq_ignore_ascii_case("localhost") {
            Some(std::net::IpAddr::from([127, 0, 0, 1]))
        } else {
            host.parse().ok()
        };
        let resolve = ip.is_none().then(|| (host.clone(), port));
        let ip = ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        if let Some(old) = self.registration.take() {
            old.do_send(Unregister);
        }
        self.implicit_uri();
        let contact_user = self.implicit.as_ref().map_or("sono", |(u, _)| u.as_str());
        let scheme = if secure { "sips" } else { "sip" };
        let config = RegistrationConfig {
            registrar_uri: format!("{scheme}:{domain}"),
            next_hop: SocketAddr::new(ip, port),
            aor: format!("{scheme}:{user}@{domain}"),
            display_name,
            contact: crate::call::our_contact(&self.shared, contact_user, transport, secure),
            via_sent_by: self.shared.sip.advertised_for(transport).to_owned(),
            user_agent: sip.user_agent.clone(),
            credentials,
            expires: sip.register_expires,
            timers: sip.timers(),
            transport,
            retry_min: sip.register_retry_min,
            retry_max: sip.register_retry_max,
        };
        info!(conn = self.id, aor = %config.aor, registrar = %config.next_hop, "registering");
        self.registration_state = Some(RegistrationState {
            uri: config.aor.clone(),
            registered: false,
        });
        self.registration = Some(Registration::start(
            self.id,
            self.shared.clone(),
            ctx.address().recipient(),
            config,
            resolve,
        ));
        Ok(())
    }

    fn say_goodbye(&mut self) {
        if self.closing {
            return;
        }
        self.end_lines_for_shutdown();
        self.emit(PhoneEvent::ServerShutdown);
        self.closing = true;
        self.to_client.do_send(ToClient::Close {
            reason: "sono is shutting down".into(),
            is_error: false,
        });
    }

    fn set_registered(&mut self, aor: &str, registered: bool) {
        self.registration_state = Some(RegistrationState {
            uri: aor.to_owned(),
            registered,
        });
    }
}

impl Actor for ClientSession {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        // The SIP side of the calls ends with their client (CANCEL or BYE at once).
        self.hang_up_all(true);
        for line in self.lines.drain() {
            self.shared.metrics.call_phase(line.phase(), None);
        }
        if let Some((transport, _)) = self.attached.take() {
            transport.do_send(ToClient::Close {
                reason: "the connection it carried audio for closed".into(),
                is_error: false,
            });
        }
        // The binding goes with its client (Expires: 0).
        if let Some(registration) = self.registration.take() {
            registration.do_send(Unregister);
        }
        self.shared.directory.remove_connection(self.id);
        if let Some((user, _)) = &self.implicit {
            self.shared.directory.release_user(user, self.id);
        }
        self.shared.events.publish(
            self.id,
            AmfValue::object([
                ("level", AmfValue::from("status")),
                ("code", AmfValue::from(code::CONNECTION_CLOSED)),
            ]),
        );
    }
}

impl Handler<FromClient> for ClientSession {
    type Result = ();

    fn handle(&mut self, msg: FromClient, ctx: &mut Self::Context) {
        match msg {
            FromClient::Connected { app } => {
                self.connected = true;
                self.app = Some(app);
                self.media_lost = false;
            }
            FromClient::Phone { txn, request } => {
                if self.closing {
                    return;
                }
                self.phone_request(ctx, Responder::Amf(txn), request)
            }
            FromClient::StreamKey(set) => self.has_stream_key = set,
            FromClient::Event(event) => {
                if !self.closing {
                    self.emit(event)
                }
            }
            FromClient::Listen {
                listener,
                stream_id,
                codec,
            } => {
                // A player that asked for a codec (`KEY?codec=pcmu`) gets
                // the call's audio in it, from this call on.
                if let (Some(codec), None) = (codec, &self.attached) {
                    if codec != self.media_out.codec {
                        info!(
                            conn = self.id,
                            codec = codec.name(),
                            "audio down in the codec a player asked for"
                        );
                        self.media_out.codec = codec;
                        if let Some(bridge) = &self.active_media() {
                            bridge.do_send(SwitchClient(self.media_out.clone()));
                        }
                    }
                }
                self.to_client.do_send(ToClient::Listen {
                    listener,
                    stream_id,
                })
            }
            FromClient::Publishes(codec) => self.publishes = Some(codec),
            FromClient::PublishesVideo(config) => self.publishes_video = Some(config),
            FromClient::MediaLost { reason } => {
                self.media_lost = true;
                if !self.lines.is_empty() {
                    info!(conn = self.id, %reason, "the page's peer connection is gone: its calls end");
                    self.hang_up_all(false);
                }
                self.watch_for_the_page(ctx);
            }
            FromClient::MediaCodec(codec) => {
                info!(
                    conn = self.id,
                    codec = codec.name(),
                    "the page's audio is in a new codec"
                );
                self.media_out.codec = codec;
                if let (Some(bridge), None) = (self.active_media(), &self.attached) {
                    bridge.do_send(SwitchClient(self.media_out.clone()));
                }
            }
            FromClient::Closing => self.closing = true,
            FromClient::Gone => {
                self.closing = true;
                ctx.stop();
            }
        }
    }
}

impl Handler<AttachMedia> for ClientSession {
    type Result = bool;

    fn handle(&mut self, msg: AttachMedia, _: &mut Self::Context) -> bool {
        if self.closing || self.attached.is_some() {
            return false;
        }
        info!(
            conn = self.id,
            "WebRTC media attached: the call's audio goes to the browser"
        );
        let own = std::mem::replace(&mut self.media_out, msg.media.clone());
        if let Some(bridge) = &self.active_media() {
            // A call in progress: its audio moves now.
            self.to_client.do_send(ToClient::Media(None));
            bridge.do_send(SwitchClient(msg.media));
            msg.transport.do_send(ToClient::Media(Some(bridge.clone())));
        }
        self.attached = Some((msg.transport, own));
        true
    }
}

impl Handler<EndWebRtc> for ClientSession {
    type Result = bool;

    fn handle(&mut self, _: EndWebRtc, _: &mut Self::Context) -> bool {
        let (transport, reason) = if self.transport == ClientTransport::Webrtc {
            (&self.to_client, "the page ended the session (DELETE)")
        } else if let Some((attached, _)) = &self.attached {
            // Its `DetachMedia` follows once it has closed.
            (attached, "the page ended the WebRTC media (DELETE)")
        } else {
            return false;
        };
        transport.do_send(ToClient::Close {
            reason: reason.into(),
            is_error: false,
        });
        true
    }
}

impl Handler<EventStream> for ClientSession {
    type Result = ();

    fn handle(&mut self, msg: EventStream, ctx: &mut Self::Context) {
        if msg.open {
            self.event_streams += 1;
        } else {
            self.event_streams = self.event_streams.saturating_sub(1);
            self.watch_for_the_page(ctx);
        }
    }
}

impl Handler<DetachMedia> for ClientSession {
    type Result = ();

    fn handle(&mut self, _: DetachMedia, _: &mut Self::Context) {
        let Some((_, own)) = self.attached.take() else {
            return;
        };
        info!(
            conn = self.id,
            "WebRTC media detached: the audio is the connection's own again"
        );
        self.media_out = own.clone();
        if let Some(bridge) = &self.active_media() {
            bridge.do_send(SwitchClient(own));
            self.to_client
                .do_send(ToClient::Media(Some(bridge.clone())));
        }
    }
}

impl Handler<RegistrationNotice> for ClientSession {
    type Result = ();

    fn handle(&mut self, notice: RegistrationNotice, _: &mut Self::Context) {
        if self.closing {
            return;
        }
        let aor = notice.aor;
        match notice.event {
            RegistrationEvent::Registered {
                expires,
                code,
                reason,
            } => {
                if let Some(txn) = self.pending_register.take() {
                    let token = self.token.clone();
                    self.respond(
                        txn,
                        Ok(AmfValue::object([
                            ("level", AmfValue::from("status")),
                            ("uri", aor.as_str().into()),
                            ("expires", AmfValue::Number(f64::from(expires))),
                            ("token", token.as_str().into()),
                        ])),
                    );
                }
                self.set_registered(&aor, true);
                self.emit(PhoneEvent::RegistrationStatus {
                    registered: true,
                    uri: aor,
                    expires,
                    sip_code: Some(code),
                    reason: Some(reason),
                });
            }
            RegistrationEvent::Refused { code, reason } => {
                if let Some(txn) = self.pending_register.take() {
                    self.respond(
                        txn,
                        Err(PhoneFailure {
                            code: code::REGISTRATION_FAILED,
                            description: format!("the registrar refused: {reason}"),
                            sip_code: Some(code),
                            reason: Some(reason.clone()),
                        }),
                    );
                }
                self.registration = None;
                self.set_registered(&aor, false);
                self.emit(PhoneEvent::RegistrationStatus {
                    registered: false,
                    uri: aor,
                    expires: 0,
                    sip_code: Some(code),
                    reason: Some(reason),
                });
            }
            RegistrationEvent::Retrying {
                code,
                reason,
                retry_in,
            } => {
                let reason = format!("{reason}; retrying in {} s", retry_in.as_secs().max(1));
                if let Some(txn) = self.pending_register.take() {
                    self.respond(
                        txn,
                        Err(PhoneFailure {
                            code: code::REGISTRATION_FAILED,
                            description: reason.clone(),
                            sip_code: code,
                            reason: Some(reason.clone()),
                        }),
                    );
                }
                self.set_registered(&aor, false);
                self.emit(PhoneEvent::RegistrationStatus {
                    registered: false,
                    uri: aor,
                    expires: 0,
                    sip_code: code,
                    reason: Some(reason),
                });
            }
            RegistrationEvent::Unregistered => {
                self.set_registered(&aor, false);
                self.emit(PhoneEvent::RegistrationStatus {
                    registered: false,
                    uri: aor,
                    expires: 0,
                    sip_code: None,
                    reason: Some("unregistered".into()),
                });
            }
        }
    }
}

impl Handler<Drain> for ClientSession {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Self::Context) {
        if self.closing || self.shutting_down {
            return;
        }
        self.draining = true;
        if self.lines.is_empty() {
            self.say_goodbye();
        }
    }
}

impl Handler<Shutdown> for ClientSession {
    type Result = ();

    /// A client in a call hears it end (status 0) before the shutdown
    /// notice: its call is hung up first, and the goodbye follows the
    /// call's end, or `SHUTDOWN_CALL_WAIT` at most.
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        if self.closing || self.shutting_down {
            return;
        }
        self.shutting_down = true;
        if self.lines.is_empty() {
            self.say_goodbye();
        } else {
            self.hang_up_all(false);
            ctx.run_later(SHUTDOWN_CALL_WAIT, |session, _| session.say_goodbye());
        }
    }
}

impl Handler<Control> for ClientSession {
    type Result = ResponseFuture<PhoneOutcome>;

    fn handle(&mut self, Control(request): Control, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.closing {
            self.fail(
                Responder::Rest(tx),
                code::CONNECTION_CLOSED,
                "the connection is closing",
            );
        } else {
            self.phone_request(ctx, Responder::Rest(tx), request);
        }
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(PhoneFailure {
                    code: code::CONNECTION_CLOSED,
                    description: "the connection closed before answering".into(),
                    sip_code: None,
                    reason: None,
                })
            })
        })
    }
}

impl Handler<GetState> for ClientSession {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        MessageResult(ConnectionState {
            id: self.id,
            transport: self.transport,
            peer: self.peer.to_string(),
            connected: self.connected,
            app: self.app.clone(),
            implicit_uri: self.implicit.as_ref().map(|(_, uri)| uri.clone()),
            registration: self.registration_state.clone(),
            call: self
                .lines
                .active()
                .or_else(|| self.lines.iter().last())
                .map(|l| l.state(self.lines.active_id() == Some(l.id))),
            calls: self
                .lines
                .iter()
                .map(|l| l.state(self.lines.active_id() == Some(l.id)))
                .collect(),
            stream_key: self.has_stream_key.then(|| "(set)".to_owned()),
            age_seconds: self.opened.elapsed().as_secs(),
        })
    }
}
