//! `RtmpConnection`: one client's TCP byte stream, its sans-I/O RTMP session and
//! its Flash phone state. Turns phone API calls into actions and answers, and
//! closes the connection, with the reason logged, on any protocol violation,
//! limit or timeout, without touching any other connection.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::BytesMut;
use sono_rtmp::chunk::ChunkLimits;
use sono_rtmp::phone::code;
use sono_rtmp::tunnel::{PollInterval, TunnelSequence};
use sono_rtmp::{
    AmfValue, AudioCodec, PhoneEvent, PhoneRequest, RegisterRequest, ServerSession, SessionConfig,
    SessionEvent,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_util::codec::{BytesCodec, FramedRead};
use tracing::{debug, info, warn};

use sono_sip::dial_plan::Verdict;

use crate::call::{inbound_config, outbound_config, AnswerIncoming, Call, CallNotice, Hangup};
use crate::client_writer::{ClientWriter, WriterDone};
use crate::control::{
    CallDirection, CallState, ClientTransport, ConnectionState, Control, GetState, PhoneFailure,
    PhoneOutcome, RegistrationState, Responder,
};
use crate::directory::ConnectionId;
use crate::media_bridge::{ClientAudio, MediaBridge, MediaNotice, SendDtmf};
use crate::metrics::{CallPhase, Metrics};
use crate::registration::{Registration, RegistrationNotice, Unregister};
use crate::rtp_ports::RtpPorts;
use crate::sip_transport::answer_stateless;
use crate::tunnel::{TunnelExchange, TunnelRefusal, TunnelReply};
use crate::Shared;
use sono_media::codec::ClientCodec;
use sono_sip::message::Received;
use sono_sip::registration::{RegistrationConfig, RegistrationEvent};
use sono_sip::transmit::Transport;

/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(500);
/// How long a connection waits for its call to end before saying goodbye
/// when sono shuts down.
const SHUTDOWN_CALL_WAIT: Duration = Duration::from_secs(1);
/// How long a closing connection may take to flush before it is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// Unsent bytes beyond which a client is closed: it does not read.
const WRITE_HIGH_WATER: usize = 1 << 20;
/// Unsent bytes beyond which audio down is dropped instead of queued: over
/// TCP about a second of Speex (the kernel's send buffer, `rtmp.send_buffer`,
/// holds more); an RTMPT client fetches only when it polls, so more.
const AUDIO_BACKLOG: usize = 4 * 1024;
const AUDIO_BACKLOG_TUNNEL: usize = 16 * 1024;

/// A new INVITE for this connection's user (routed by `SipTransport`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingInvite {
    pub message: Received,
    pub source: SocketAddr,
    pub transport: Transport,
}

/// Asks a connection to say goodbye and close (sono is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Where the connection's bytes for the client go.
enum Output {
    /// A TCP or TLS stream.
    Stream(ClientWriter),
    /// An RTMPT session: bytes wait for the client's next poll.
    Tunnel(TunnelState),
}

struct TunnelState {
    id: String,
    pending: Vec<u8>,
    sequence: TunnelSequence,
    interval: PollInterval,
    last_poll: Instant,
}

/// A call as the connection tracks it for the REST API.
struct CallTrack {
    direction: CallDirection,
    remote_uri: String,
    status: Option<u8>,
    started: Instant,
}

pub struct RtmpConnection {
    id: ConnectionId,
    peer: SocketAddr,
    transport: ClientTransport,
    /// The capability token that controls this connection over REST.
    token: String,
    shared: Arc<Shared>,
    session: ServerSession,
    output: Output,
    opened: Instant,
    last_input: Instant,
    last_ping: Instant,
    /// Audio down not sent because the client was not reading.
    audio_down_dropped: u64,
    /// When the oldest call audio in the session's output left the jitter
    /// buffer (the writer measures its latency once it is written).
    audio_taken: Option<Instant>,
    /// Since when the client has left audio down unread.
    stalled_since: Option<Instant>,
    /// sono is shutting down: the call is being hung up, the goodbye follows.
    shutting_down: bool,
    app: Option<String>,
    /// The implicit user and its URI, once `register` attributed them.
    implicit: Option<(String, String)>,
    audio_messages: u64,
    closing: bool,
    /// The call in progress, if any, and the `dial` it still has to answer.
    call: Option<Addr<Call>>,
    call_track: Option<CallTrack>,
    /// The SIP Call-ID of an inbound call (its INVITE's retransmissions
    /// come here until the call's actor owns the Call-ID).
    inbound_call_id: Option<String>,
    pending_dial: Option<Responder>,
    /// The binding at a registrar, and the `register` it still has to answer.
    registration: Option<Addr<Registration>>,
    registration_state: Option<RegistrationState>,
    pending_register: Option<Responder>,
    /// The answered call's media bridge.
    media: Option<Addr<MediaBridge>>,
    /// The stream the client plays (audio down goes there).
    play_stream: Option<u32>,
    /// The key an RTMP tool publishes under; it is also a token for this connection.
    stream_key: Option<String>,
    /// Other connections playing this one's stream key: audio down goes to them too.
    listeners: Vec<(Addr<RtmpConnection>, u32)>,
    /// RTMP timestamps of audio down restart at 0 on each call; this keeps
    /// them rising on the stream.
    audio_down_offset: u32,
    last_audio_down: u32,
}

impl RtmpConnection {
    /// Starts the actor for an accepted TCP or TLS stream, on the current arbiter.
    pub fn start<S>(
        stream: S,
        peer: SocketAddr,
        transport: ClientTransport,
        shared: Arc<Shared>,
    ) -> Addr<RtmpConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        RtmpConnection::create(move |ctx| {
            ctx.add_stream(FramedRead::with_capacity(
                read,
                BytesCodec::new(),
                16 * 1024,
            ));
            let writer = ClientWriter::spawn(write, ctx.address().recipient(), shared.clone());
            RtmpConnection::new(peer, transport, shared, Output::Stream(writer))
        })
    }

    /// Starts the actor for an RTMPT session on `arbiter`; the HTTP side feeds
    /// it with [`TunnelExchange`]s.
    pub fn start_tunnel(
        arbiter: &actix::dev::ArbiterHandle,
        session_id: String,
        peer: SocketAddr,
        shared: Arc<Shared>,
    ) -> Addr<RtmpConnection> {
        RtmpConnection::start_in_arbiter(arbiter, move |_| {
            let tunnel = TunnelState {
                id: session_id,
                pending: Vec::new(),
                sequence: TunnelSequence::default(),
                interval: PollInterval::default(),
                last_poll: Instant::now(),
            };
            RtmpConnection::new(peer, ClientTransport::Rtmpt, shared, Output::Tunnel(tunnel))
        })
    }

    fn new(
        peer: SocketAddr,
        transport: ClientTransport,
        shared: Arc<Shared>,
        output: Output,
    ) -> RtmpConnection {
        let id = shared.directory.next_connection_id();
        let r = &shared.settings.rtmp;
        let config = SessionConfig {
            chunk_limits: ChunkLimits {
                max_chunk_size: r.max_chunk_size,
                max_message_size: r.max_message_size,
                max_chunk_streams: r.max_chunk_streams,
            },
            amf_limits: Default::default(),
            chunk_size: r.chunk_size,
            window_ack_size: r.window_ack_size,
            max_streams: r.max_streams,
        };
        let now = Instant::now();
        RtmpConnection {
            id,
            peer,
            transport,
            token: crate::directory::new_secret(),
            session: ServerSession::new(config),
            output,
            opened: now,
            last_input: now,
            last_ping: now,
            app: None,
            implicit: None,
            audio_messages: 0,
            closing: false,
            call: None,
            call_track: None,
            inbound_call_id: None,
            pending_dial: None,
            registration: None,
            registration_state: None,
            pending_register: None,
            media: None,
            play_stream: None,
            stream_key: None,
            listeners: Vec::new(),
            audio_down_dropped: 0,
            audio_taken: None,
            stalled_since: None,
            shutting_down: false,
            audio_down_offset: 0,
            last_audio_down: 0,
            shared,
        }
    }

    fn flush(&mut self) {
        if !self.session.has_output() {
            return;
        }
        let bytes = self.session.take_output();
        let audio_taken = self.audio_taken.take();
        match &mut self.output {
            Output::Stream(writer) => writer.write(bytes, audio_taken),
            Output::Tunnel(t) => t.pending.extend_from_slice(&bytes),
        }
    }

    /// Whether audio down should be dropped rather than queued: the client
    /// is not reading what it was sent.
    fn audio_backlogged(&self) -> bool {
        let backlog = match &self.output {
            Output::Stream(_) => AUDIO_BACKLOG,
            Output::Tunnel(_) => AUDIO_BACKLOG_TUNNEL,
        };
        self.unsent() > backlog
    }

    /// Bytes for the client it has not taken yet.
    fn unsent(&self) -> usize {
        match &self.output {
            Output::Stream(w) => w.unsent(),
            Output::Tunnel(t) => t.pending.len(),
        }
    }

    /// Sends one audio message down, unless the client is not reading;
    /// false if it was dropped.
    fn send_audio_down(&mut self, stream: u32, at: u32, codec: AudioCodec, data: &[u8]) -> bool {
        if self.audio_backlogged() {
            self.audio_down_dropped += 1;
            Metrics::add(&self.shared.metrics.audio_down_dropped, 1);
            return false;
        }
        self.session.send_audio(stream, at, codec, data);
        true
    }

    /// Sends an event to the Flash client and to the live-event subscribers.
    fn emit(&mut self, event: &PhoneEvent) {
        if self.session.is_connected() {
            self.session.send_event(event);
        }
        self.shared.events.publish(self.id, event.info());
    }

    /// Answers a phone request, on RTMP or to the REST caller.
    fn respond(&mut self, responder: Responder, outcome: PhoneOutcome) {
        match (responder, outcome) {
            (Responder::Amf(txn), Ok(value)) => self.session.answer_result(txn, value),
            (Responder::Amf(txn), Err(f)) => self.session.answer_error_with(
                txn,
                f.code,
                &f.description,
                f.sip_code,
                f.reason.as_deref(),
            ),
            (Responder::Rest(tx), outcome) => {
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

    /// Flushes what is queued, then closes; the reason goes to the log.
    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, is_error: bool) {
        if self.closing {
            return;
        }
        self.closing = true;
        if is_error {
            Metrics::add(&self.shared.metrics.rtmp_connections_closed_on_error, 1);
            warn!(conn = self.id, peer = %self.peer, %reason, "closing RTMP connection");
        } else {
            info!(conn = self.id, peer = %self.peer, %reason, "closing RTMP connection");
        }
        self.flush();
        // A tunnel client gets until the next polls to fetch the last bytes.
        if let Output::Stream(writer) = &mut self.output {
            writer.close();
        }
        ctx.run_later(CLOSE_FLUSH, |_, ctx| ctx.stop());
    }

    /// Bytes from the client, from its stream or its tunnel.
    fn input(&mut self, ctx: &mut Context<Self>, data: &[u8]) {
        self.last_input = Instant::now();
        let before = self.session.bytes_received();
        let result = self.session.handle_input(data);
        let received = self.session.bytes_received() - before;
        Metrics::add(&self.shared.metrics.rtmp_bytes_received, received);
        self.handle_events(ctx);
        match result {
            Ok(()) => self.flush(),
            Err(e) => self.close(ctx, &e.to_string(), true),
        }
        if self.session.is_closed() && !self.closing {
            self.close(ctx, "session closed", false);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let r = &self.shared.settings.rtmp;
        let now = Instant::now();
        if let Output::Tunnel(t) = &self.output {
            let timeout = self.shared.settings.rtmpt.session_timeout;
            if now.duration_since(t.last_poll) > timeout {
                // Nobody is left to read what we would flush.
                self.closing = true;
                info!(conn = self.id, peer = %self.peer, "RTMPT session expired: the client stopped polling");
                ctx.stop();
                return;
            }
            if t.pending.len() > WRITE_HIGH_WATER {
                self.close(ctx, "the RTMPT client does not poll for its data", true);
                return;
            }
        }
        // A client that reads nothing: its audio down is being dropped; it is
        // closed once that has lasted rtmp.idle_timeout, or its backlog is huge.
        if self.audio_backlogged() {
            let since = *self.stalled_since.get_or_insert(now);
            let unsent = self.unsent();
            if now.duration_since(since) > r.idle_timeout || unsent > WRITE_HIGH_WATER {
                let reason = format!(
                    "the client has read nothing for {} s ({} KiB waiting, {} audio messages down dropped)",
                    now.duration_since(since).as_secs(),
                    unsent / 1024,
                    self.audio_down_dropped
                );
                self.close(ctx, &reason, true);
                return;
            }
        } else {
            self.stalled_since = None;
        }
        if !self.session.handshake_done() {
            if now.duration_since(self.opened) > r.handshake_timeout {
                self.close(ctx, "handshake not finished in time", true);
            }
            return;
        }
        if now.duration_since(self.last_input) > r.idle_timeout {
            self.close(ctx, "idle timeout: the client sent nothing", true);
            return;
        }
        if self.session.is_connected() && now.duration_since(self.last_ping) >= r.ping_interval {
            self.last_ping = now;
            let t = now.duration_since(self.opened).as_millis() as u32;
            self.session.send_ping(t);
            self.flush();
        }
    }

    fn handle_events(&mut self, ctx: &mut Context<Self>) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::ConnectRequested(req) => {
                    let apps = &self.shared.settings.rtmp.apps;
                    if !apps.is_empty() && !apps.iter().any(|a| a == &req.app) {
                        self.session.reject_connect("unknown application");
                        self.close(
                            ctx,
                            &format!("connect to unknown application {:?}", req.app),
                            true,
                        );
                        return;
                    }
                    info!(conn = self.id, peer = %self.peer, transport = ?self.transport, app = %req.app,
                          flash_ver = req.flash_ver.as_deref().unwrap_or(""),
                          encoding = ?req.object_encoding, "RTMP client connected");
                    self.app = Some(req.app.clone());
                    let extra = vec![
                        ("connection_id".to_owned(), AmfValue::Number(self.id as f64)),
                        ("token".to_owned(), AmfValue::from(self.token.as_str())),
                    ];
                    if let Err(e) = self.session.accept_connect(extra) {
                        self.close(ctx, &e.to_string(), true);
                        return;
                    }
                }
                SessionEvent::Phone {
                    transaction_id,
                    request,
                } => self.handle_phone(ctx, transaction_id, request),
                SessionEvent::Publishing { stream_id, name } => {
                    debug!(conn = self.id, stream_id, %name, "client publishes");
                    if is_stream_key(&name) && self.stream_key.as_deref() != Some(name.as_str()) {
                        if !self.shared.directory.claim_stream_key(&name, self.id) {
                            self.close(ctx, "the stream key is in use by another connection", true);
                            return;
                        }
                        if let Some(old) = self.stream_key.replace(name) {
                            self.shared.directory.release_stream_key(&old, self.id);
                        }
                        info!(conn = self.id, "publishing under a stream key: REST may control this connection with it");
                    }
                }
                SessionEvent::Playing { stream_id, name } => {
                    debug!(conn = self.id, stream_id, %name, "client plays");
                    let holder = is_stream_key(&name)
                        .then(|| self.shared.directory.stream_key(&name))
                        .flatten()
                        .filter(|holder| *holder != self.id)
                        .and_then(|holder| self.shared.directory.connection(holder));
                    match holder {
                        // Another connection's call audio, e.g. ffmpeg playing
                        // what its publishing twin's call sends down.
                        Some(publisher) => {
                            info!(conn = self.id, "plays the call audio of the connection publishing under this stream key");
                            publisher.do_send(AddListener {
                                listener: ctx.address(),
                                stream_id,
                            })
                        }
                        None => self.play_stream = Some(stream_id),
                    }
                }
                SessionEvent::StreamClosed { stream_id } => {
                    debug!(conn = self.id, stream_id, "client closed a stream");
                    if self.play_stream == Some(stream_id) {
                        self.play_stream = None;
                    }
                }
                SessionEvent::Audio { tag, timestamp, .. } => {
                    self.audio_messages += 1;
                    self.shared.metrics.audio_message(tag.codec);
                    let codec = match tag.codec {
                        AudioCodec::Speex => Some(ClientCodec::SpeexWb),
                        AudioCodec::Nellymoser { rate } => Some(ClientCodec::Nellymoser { rate }),
                        AudioCodec::Other { .. } => None,
                    };
                    if let (Some(media), Some(codec)) = (&self.media, codec) {
                        media.do_send(ClientAudio {
                            codec,
                            timestamp,
                            data: tag.data,
                            received: Instant::now(),
                        });
                    }
                }
            }
        }
    }

    fn handle_phone(&mut self, ctx: &mut Context<Self>, txn: f64, request: PhoneRequest) {
        self.phone_request(ctx, Responder::Amf(txn), request);
    }

    /// A phone request from Flash or REST; the answer goes to `txn`.
    fn phone_request(&mut self, ctx: &mut Context<Self>, txn: Responder, request: PhoneRequest) {
        debug!(conn = self.id, ?request, "phone request");
        match request {
            PhoneRequest::Dial { uri } => self.dial(ctx, txn, &uri),
            PhoneRequest::Hangup => match &self.call {
                Some(call) => {
                    call.do_send(Hangup { client_gone: false });
                    self.respond(txn, Ok(AmfValue::Null));
                }
                None => self.fail(txn, code::CALL_NO_CALL, "there is no call to hang up"),
            },
            PhoneRequest::Accept => self.answer_incoming(ctx, txn, None),
            PhoneRequest::Reject { code } => self.answer_incoming(ctx, txn, Some(code)),
            PhoneRequest::SendDtmf { digits } => self.send_dtmf(ctx, txn, digits),
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

    /// `accept` (no code) or `reject(code)` for the ringing inbound call.
    fn answer_incoming(&mut self, ctx: &mut Context<Self>, txn: Responder, reject: Option<u16>) {
        let Some(call) = self.call.clone().filter(|_| self.inbound_call_id.is_some()) else {
            self.fail(txn, code::CALL_NO_CALL, "there is no incoming call");
            return;
        };
        ctx.spawn(call.send(AnswerIncoming { reject }).into_actor(self).map(
            move |result, conn, _| {
                match result {
                    Ok(true) => conn.respond(txn, Ok(AmfValue::Null)),
                    _ => conn.fail(txn, code::CALL_NO_CALL, "there is no incoming call ringing"),
                }
                conn.flush();
            },
        ));
    }

    fn send_dtmf(&mut self, ctx: &mut Context<Self>, txn: Responder, digits: String) {
        let Some(media) = &self.media else {
            let why = if self.call.is_some() {
                "the call is not answered yet"
            } else {
                "there is no call to send DTMF to"
            };
            self.fail(txn, code::CALL_NO_CALL, why);
            return;
        };
        let sent = media.send(SendDtmf(digits));
        ctx.spawn(sent.into_actor(self).map(move |result, conn, _| {
            match result {
                Ok(Ok(())) => conn.respond(txn, Ok(AmfValue::Null)),
                Ok(Err(why)) => conn.fail(txn, code::DTMF_INVALID, &why),
                Err(_) => conn.fail(txn, code::CALL_NO_CALL, "the call has ended"),
            }
            conn.flush();
        }));
    }

    fn dial(&mut self, ctx: &mut Context<Self>, txn: Responder, uri: &str) {
        match self.shared.dial_plan.check(uri) {
            Verdict::Invalid(e) => self.fail(
                txn,
                code::CALL_FAILED,
                &format!("{uri:?} cannot be called: {e}"),
            ),
            Verdict::Forbidden(reason) => {
                warn!(conn = self.id, %reason, "dial refused by the dial plan");
                self.fail(txn, code::CALL_FORBIDDEN, &reason);
            }
            Verdict::Allowed(target) => self.place_call(ctx, txn, &target),
        }
    }

    fn place_call(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        target: &sono_sip::uri::SipUri,
    ) {
        if self.call.is_some() {
            self.fail(
                txn,
                code::CALL_EXISTING,
                "this connection already has a call; hang up first",
            );
            return;
        }
        let shared = &self.shared;
        let active = shared.metrics.sip_calls_active.load(Ordering::Acquire);
        if active >= shared.settings.sip.max_calls as u64 {
            warn!(
                conn = self.id,
                active, "dial refused: sip.max_calls reached"
            );
            self.fail(
                txn,
                code::CALL_FAILED,
                "too many calls in progress (sip.max_calls)",
            );
            return;
        }
        let m = &shared.settings.media;
        let rtp = match RtpPorts::allocate(m.address, m.rtp_port_min, m.rtp_port_max) {
            Ok(rtp) => rtp,
            Err(e) => {
                warn!(conn = self.id, error = %e, "dial refused: no RTP port");
                self.fail(txn, code::CALL_FAILED, &format!("no RTP port: {e}"));
                return;
            }
        };
        let user = self.implicit.as_ref().map(|(u, _)| u.as_str());
        let (config, resolve) = outbound_config(shared, target, user, rtp.port());
        if config.transport.is_reliable() && !shared.sip.tcp_enabled() {
            self.fail(
                txn,
                code::CALL_FAILED,
                "the target asks for TCP and SIP over TCP is off (sip.tcp)",
            );
            return;
        }
        let call = Call::start(
            self.id,
            ctx.address().recipient(),
            ctx.address().recipient(),
            shared.clone(),
            config,
            resolve,
            rtp,
        );
        self.call = Some(call);
        self.set_call_track(|track| {
            *track = Some(CallTrack {
                direction: CallDirection::Outbound,
                remote_uri: target.to_string(),
                status: None,
                started: Instant::now(),
            })
        });
        match txn {
            // REST does not hold a request open while the phone rings: it is
            // told the call started, and follows it with events.
            Responder::Rest(_) => self.respond(
                txn,
                Ok(AmfValue::object([("status", AmfValue::from("trying"))])),
            ),
            Responder::Amf(_) => self.pending_dial = Some(txn),
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
        self.emit(&PhoneEvent::RegistrationStatus {
            registered: true,
            uri,
            // An implicit URI lives as long as the connection.
            expires: 0,
            sip_code: None,
            reason: Some("implicit registration".into()),
        });
    }

    /// The connection's own user at sono (allocated once), and its URI.
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
    /// Calls relayed to the binding's Contact reach this connection.
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
        let (host, port) = match domain.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
                h.trim_matches(|c| c == '[' || c == ']').to_owned(),
                p.parse::<u16>().ok(),
            ),
            _ => (
                domain.trim_matches(|c| c == '[' || c == ']').to_owned(),
                Some(5060),
            ),
        };
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
        let config = RegistrationConfig {
            registrar_uri: format!("sip:{domain}"),
            next_hop: SocketAddr::new(ip, port),
            aor: format!("sip:{user}@{domain}"),
            display_name,
            contact: format!("sip:{contact_user}@{}", self.shared.sip.advertised()),
            via_sent_by: self.shared.sip.advertised().to_owned(),
            user_agent: sip.user_agent.clone(),
            credentials,
            expires: sip.register_expires,
            timers: sip.timers(),
            transport: Transport::Udp,
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
}

impl Handler<RegistrationNotice> for RtmpConnection {
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
                self.emit(&PhoneEvent::RegistrationStatus {
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
                self.emit(&PhoneEvent::RegistrationStatus {
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
                self.emit(&PhoneEvent::RegistrationStatus {
                    registered: false,
                    uri: aor,
                    expires: 0,
                    sip_code: code,
                    reason: Some(reason),
                });
            }
            RegistrationEvent::Unregistered => {
                self.set_registered(&aor, false);
                self.emit(&PhoneEvent::RegistrationStatus {
                    registered: false,
                    uri: aor,
                    expires: 0,
                    sip_code: None,
                    reason: Some("unregistered".into()),
                });
            }
        }
        self.flush();
    }
}

impl Actor for RtmpConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The listener already counted this connection as active.
        self.shared
            .directory
            .add_connection(self.id, ctx.address(), self.token.clone());
        debug!(conn = self.id, peer = %self.peer, "RTMP connection accepted");
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.set_call_track(|track| *track = None);
        // The SIP side of a call ends with its client (CANCEL or BYE at once).
        if let Some(call) = self.call.take() {
            call.do_send(Hangup { client_gone: true });
        }
        // The binding goes with its client (Expires: 0).
        if let Some(registration) = self.registration.take() {
            registration.do_send(Unregister);
        }
        self.shared.directory.remove_connection(self.id);
        if let Some((user, _)) = &self.implicit {
            self.shared.directory.release_user(user, self.id);
        }
        if let Some(key) = &self.stream_key {
            self.shared.directory.release_stream_key(key, self.id);
        }
        if let Output::Tunnel(t) = &self.output {
            self.shared.tunnels.remove(&t.id);
        }
        self.shared.events.publish(
            self.id,
            AmfValue::object([
                ("level", AmfValue::from("status")),
                ("code", AmfValue::from(code::CONNECTION_CLOSED)),
            ]),
        );
        self.shared
            .metrics
            .rtmp_connections_active
            .fetch_sub(1, Ordering::AcqRel);
        info!(conn = self.id, peer = %self.peer, transport = ?self.transport, audio_messages = self.audio_messages,
              audio_down_dropped = self.audio_down_dropped, bytes_received = self.session.bytes_received(), "RTMP connection closed");
    }
}

impl StreamHandler<Result<BytesMut, io::Error>> for RtmpConnection {
    fn handle(&mut self, item: Result<BytesMut, io::Error>, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        let data = match item {
            Ok(data) => data,
            Err(e) => {
                self.close(ctx, &format!("read error: {e}"), true);
                return;
            }
        };
        self.input(ctx, &data);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.closing {
            debug!(conn = self.id, "client closed the connection");
            self.closing = true;
            ctx.stop();
        }
    }
}

impl Handler<WriterDone> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, WriterDone(error): WriterDone, ctx: &mut Self::Context) {
        if let Some(e) = error {
            if !self.closing {
                self.closing = true;
                info!(conn = self.id, peer = %self.peer, error = %e, "the client is gone (write failed)");
            }
        }
        ctx.stop();
    }
}

impl Handler<Shutdown> for RtmpConnection {
    type Result = ();

    /// A client in a call hears it end (status 0) before the shutdown
    /// notice: its call is hung up first, and the goodbye follows the
    /// call's end, or `SHUTDOWN_CALL_WAIT` at most.
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        if self.closing || self.shutting_down {
            return;
        }
        self.shutting_down = true;
        match &self.call {
            Some(call) => {
                call.do_send(Hangup { client_gone: false });
                ctx.run_later(SHUTDOWN_CALL_WAIT, |conn, ctx| conn.say_goodbye(ctx));
            }
            None => self.say_goodbye(ctx),
        }
    }
}

impl RtmpConnection {
    fn say_goodbye(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        if self.call.is_some() {
            // The call did not end in time (a dial not yet answered, whose
            // CANCEL must wait for a provisional): the client hears it here.
            self.emit(&PhoneEvent::CallStatus {
                status: sono_rtmp::phone::CallStatus::NotConnected,
                sip_code: None,
                reason: Some("sono is shutting down".into()),
            });
        }
        self.emit(&PhoneEvent::ServerShutdown);
        self.close(ctx, "sono is shutting down", false);
    }
}

impl Handler<CallNotice> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, notice: CallNotice, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        match notice {
            CallNotice::Status(event) => {
                self.set_call_track(|track| match (&event, track.as_mut()) {
                    (PhoneEvent::CallStatus { status, .. }, Some(track)) => {
                        track.status = Some(*status as u8)
                    }
                    (PhoneEvent::CallIncoming { uri, .. }, Some(track)) => {
                        track.remote_uri.clone_from(uri)
                    }
                    _ => {}
                });
                self.emit(&event);
            }
            CallNotice::DialAnswer(answer) => {
                let Some(txn) = self.pending_dial.take() else {
                    return;
                };
                match answer {
                    Ok(()) => self.respond(
                        txn,
                        Ok(AmfValue::object([("level", AmfValue::from("status"))])),
                    ),
                    Err((sip_code, reason)) => {
                        let description = match sip_code {
                            Some(c) => format!("the call failed: {c} {reason}"),
                            None => format!("the call failed: {reason}"),
                        };
                        self.respond(
                            txn,
                            Err(PhoneFailure {
                                code: code::CALL_FAILED,
                                description,
                                sip_code,
                                reason: Some(reason),
                            }),
                        );
                    }
                }
            }
            CallNotice::Media(bridge) => {
                self.media = Some(bridge);
                self.audio_down_offset = self.last_audio_down;
            }
            CallNotice::Ended => {
                self.call = None;
                self.set_call_track(|track| *track = None);
                self.inbound_call_id = None;
                self.pending_dial = None;
                self.media = None;
                if self.shutting_down {
                    self.flush();
                    self.say_goodbye(ctx);
                    return;
                }
            }
        }
        self.flush();
    }
}

impl Handler<IncomingInvite> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, msg: IncomingInvite, ctx: &mut Self::Context) {
        let IncomingInvite {
            message,
            source,
            transport,
        } = msg;
        let shared = self.shared.clone();
        let refuse = |code: u16, reason: &str| {
            answer_stateless(&shared, &message, source, transport, code, reason, &[]);
        };
        if self.inbound_call_id.as_deref() == Some(message.call_id.as_str()) {
            return; // a retransmission, before the call's actor took over
        }
        if self.closing || !self.session.is_connected() {
            refuse(480, "Temporarily Unavailable");
            return;
        }
        if self.call.is_some() {
            info!(conn = self.id, call_id = %message.call_id, "incoming call refused: busy");
            refuse(486, "Busy Here");
            return;
        }
        let active = shared.metrics.sip_calls_active.load(Ordering::Acquire);
        if active >= shared.settings.sip.max_calls as u64 {
            warn!(
                conn = self.id,
                active, "incoming call refused: sip.max_calls reached"
            );
            refuse(503, "Service Unavailable");
            return;
        }
        let m = &shared.settings.media;
        let rtp = match RtpPorts::allocate(m.address, m.rtp_port_min, m.rtp_port_max) {
            Ok(rtp) => rtp,
            Err(e) => {
                warn!(conn = self.id, error = %e, "incoming call refused: no RTP port");
                refuse(503, "Service Unavailable");
                return;
            }
        };
        let user = self.implicit.as_ref().map_or("sono", |(u, _)| u.as_str());
        let config = inbound_config(&shared, user, rtp.port(), transport);
        self.inbound_call_id = Some(message.call_id.clone());
        self.set_call_track(|track| {
            *track = Some(CallTrack {
                direction: CallDirection::Inbound,
                // Filled from the call's `Sono.Call.Incoming`, which names the caller.
                remote_uri: String::new(),
                status: None,
                started: Instant::now(),
            })
        });
        self.call = Some(Call::start_inbound(
            self.id,
            ctx.address().recipient(),
            ctx.address().recipient(),
            shared.clone(),
            message,
            source,
            config,
            rtp,
        ));
    }
}

impl Handler<MediaNotice> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, notice: MediaNotice, _: &mut Self::Context) {
        if self.closing {
            return;
        }
        match notice {
            MediaNotice::AudioDown {
                timestamp,
                codec,
                data,
                taken,
            } => {
                let at = self.audio_down_offset.wrapping_add(timestamp);
                self.last_audio_down = at.wrapping_add(20);
                let codec = match codec {
                    ClientCodec::SpeexWb => AudioCodec::Speex,
                    ClientCodec::Nellymoser { rate } => AudioCodec::Nellymoser { rate },
                };
                if !self.listeners.is_empty() {
                    self.listeners.retain(|(l, _)| l.connected());
                    for (listener, stream) in &self.listeners {
                        listener.do_send(RelayedAudio {
                            stream_id: *stream,
                            timestamp: at,
                            codec,
                            data: data.clone(),
                        });
                    }
                }
                if let Some(stream) = self.play_stream {
                    if self.send_audio_down(stream, at, codec, &data) {
                        self.audio_taken.get_or_insert(taken);
                    }
                }
            }
            MediaNotice::Dtmf(digit) => self.emit(&PhoneEvent::Dtmf { digit }),
        }
        self.flush();
    }
}

/// A connection playing this one's stream key wants its call's audio.
#[derive(Message)]
#[rtype(result = "()")]
struct AddListener {
    listener: Addr<RtmpConnection>,
    stream_id: u32,
}

impl Handler<AddListener> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, msg: AddListener, _: &mut Self::Context) {
        debug!(
            conn = self.id,
            "another connection plays this one's stream key"
        );
        // A client that plays again replaces its earlier stream.
        self.listeners
            .retain(|(l, _)| *l != msg.listener && l.connected());
        self.listeners.push((msg.listener, msg.stream_id));
    }
}

/// Call audio from the connection whose stream key this one plays.
#[derive(Message)]
#[rtype(result = "()")]
struct RelayedAudio {
    stream_id: u32,
    timestamp: u32,
    codec: AudioCodec,
    data: Vec<u8>,
}

impl Handler<RelayedAudio> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, msg: RelayedAudio, _: &mut Self::Context) {
        if self.closing {
            return;
        }
        let _ = self.send_audio_down(msg.stream_id, msg.timestamp, msg.codec, &msg.data);
        self.flush();
    }
}

impl Handler<TunnelExchange> for RtmpConnection {
    type Result = Result<TunnelReply, TunnelRefusal>;

    fn handle(&mut self, msg: TunnelExchange, ctx: &mut Self::Context) -> Self::Result {
        let Output::Tunnel(t) = &mut self.output else {
            return Err(TunnelRefusal::Closed);
        };
        t.sequence
            .accept(msg.seq)
            .map_err(TunnelRefusal::Sequence)?;
        t.last_poll = Instant::now();
        let sent = !msg.data.is_empty();
        if sent && !self.closing {
            self.input(ctx, &msg.data);
        }
        if msg.close && !self.closing {
            debug!(conn = self.id, "the RTMPT client closed its session");
            self.closing = true;
            ctx.stop();
        }
        let Output::Tunnel(t) = &mut self.output else {
            return Err(TunnelRefusal::Closed);
        };
        let data = std::mem::take(&mut t.pending);
        if data.is_empty() && self.closing && !msg.close {
            return Err(TunnelRefusal::Closed);
        }
        let interval = t.interval.next(sent || !data.is_empty());
        Ok(TunnelReply { interval, data })
    }
}

impl Handler<Control> for RtmpConnection {
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
            self.flush();
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

impl Handler<GetState> for RtmpConnection {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        MessageResult(ConnectionState {
            id: self.id,
            transport: self.transport,
            peer: self.peer.to_string(),
            connected: self.session.is_connected(),
            app: self.app.clone(),
            implicit_uri: self.implicit.as_ref().map(|(_, uri)| uri.clone()),
            registration: self.registration_state.clone(),
            call: self.call_track.as_ref().map(|c| CallState {
                direction: c.direction,
                remote_uri: c.remote_uri.clone(),
                status: c.status,
                age_seconds: c.started.elapsed().as_secs(),
            }),
            stream_key: self.stream_key.is_some().then(|| "(set)".to_owned()),
            age_seconds: self.opened.elapsed().as_secs(),
        })
    }
}

impl CallTrack {
    /// The phase `sono_calls{state}` counts this call in (`None`: ended).
    fn phase(&self) -> Option<CallPhase> {
        match (self.status, self.direction) {
            (None, CallDirection::Inbound) => Some(CallPhase::Ringing),
            (None, CallDirection::Outbound) | (Some(1), _) => Some(CallPhase::InProgress),
            (Some(2), _) => Some(CallPhase::Connected),
            (Some(3), _) => Some(CallPhase::Disconnecting),
            (Some(4), _) => Some(CallPhase::Media),
            _ => None,
        }
    }
}

impl RtmpConnection {
    /// Changes the tracked call, keeping `sono_calls{state}` in step.
    fn set_call_track(&mut self, change: impl FnOnce(&mut Option<CallTrack>)) {
        let before = self.call_track.as_ref().and_then(CallTrack::phase);
        change(&mut self.call_track);
        let after = self.call_track.as_ref().and_then(CallTrack::phase);
        self.shared.metrics.call_phase(before, after);
    }

    fn set_registered(&mut self, aor: &str, registered: bool) {
        self.registration_state = Some(RegistrationState {
            uri: aor.to_owned(),
            registered,
        });
    }
}

/// A publish or play name an RTMP tool uses as its stream key: long and
/// random enough to be a capability (the page that made it controls the
/// connection with it).
pub fn is_stream_key(name: &str) -> bool {
    (MIN_STREAM_KEY_LEN..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Shortest stream key: 22 characters of base64url carry 128 bits.
pub const MIN_STREAM_KEY_LEN: usize = 22;
