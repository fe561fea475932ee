//! `ClientSession`: one client's phone, whatever carries it. Registration
//! (implicit and at registrars), the call, the events and the phone rules
//! (the dial plan, `sip.max_calls`, one call at a time) live here; the
//! transports (`RtmpConnection` for RTMP, RTMPS, RTMPT and stream-key tools;
//! the WebRTC endpoint) only move bytes and media and hand the client's phone
//! requests in. The REST API, the SIP side and shutdown talk to the session.
//!
//! Audio does not pass through the session: the call's media bridge sends
//! audio down straight to the transport's [`MediaNotice`] recipient, and the
//! transport sends the client's audio straight to the bridge the session told
//! it about ([`ToClient::Media`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sono_media::codec::ClientCodec;
use sono_media::g711::Law;
use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, PhoneEvent, PhoneRequest, RegisterRequest};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use sono_sip::dial_plan::Verdict;
use sono_sip::message::Received;
use sono_sip::registration::{RegistrationConfig, RegistrationEvent};
use sono_sip::transmit::Transport;

use crate::call::{
    inbound_config, outbound_config, prefer_client_codec, AnswerIncoming, Call, CallNotice, Hangup,
    HoldCall,
};
use crate::control::{
    CallDirection, CallState, ClientTransport, ConnectionState, Control, GetState, PhoneFailure,
    PhoneOutcome, RegistrationState, Responder,
};
use crate::directory::ConnectionId;
use crate::media_bridge::{ClientMedia, MediaBridge, MediaNotice, SendDtmf, SwitchClient};
use crate::metrics::{CallPhase, Metrics};
use crate::registration::{Registration, RegistrationNotice, Unregister};
use crate::rtp_ports::RtpPorts;
use crate::sip_transport::answer_stateless;
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
    /// An event for the client (`onStatus` on RTMP).
    Event(PhoneEvent),
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
    /// The transport is closing: no new requests or calls.
    Closing,
    /// The transport is gone: end the call, remove the bindings, stop.
    Gone,
}

/// A call as the session tracks it for the REST API.
struct CallTrack {
    direction: CallDirection,
    remote_uri: String,
    status: Option<u8>,
    started: Instant,
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
    /// The implicit user and its URI, once `register` attributed them.
    implicit: Option<(String, String)>,
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
    /// What the client last published (RTMP), if anything.
    publishes: Option<sono_media::codec::ClientCodec>,
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
            implicit: None,
            call: None,
            call_track: None,
            inbound_call_id: None,
            pending_dial: None,
            registration: None,
            registration_state: None,
            pending_register: None,
            media: None,
            publishes: None,
        }
    }

    /// The transport that carries the audio: an attached one, or the own.
    fn media_transport(&self) -> &Recipient<ToClient> {
        self.attached.as_ref().map_or(&self.to_client, |(t, _)| t)
    }

    /// Sends an event to the client and to the live-event subscribers.
    fn emit(&mut self, event: PhoneEvent) {
        self.shared.events.publish(self.id, event.info());
        self.to_client.do_send(ToClient::Event(event));
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
            PhoneRequest::Dial { uri, codec } => {
                // The law a Flash Player 11 client says it will publish.
                match codec {
                    Some(sono_rtmp::AudioCodec::Pcmu) => {
                        self.publishes = Some(ClientCodec::G711(Law::Mu))
                    }
                    Some(sono_rtmp::AudioCodec::Pcma) => {
                        self.publishes = Some(ClientCodec::G711(Law::A))
                    }
                    _ => {}
                }
                self.dial(ctx, txn, &uri)
            }
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
            PhoneRequest::Hold { held } => self.hold(ctx, txn, held),
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
            move |result, session, _| match result {
                Ok(true) => session.respond(txn, Ok(AmfValue::Null)),
                _ => session.fail(txn, code::CALL_NO_CALL, "there is no incoming call ringing"),
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
        ctx.spawn(
            sent.into_actor(self)
                .map(move |result, session, _| match result {
                    Ok(Ok(())) => session.respond(txn, Ok(AmfValue::Null)),
                    Ok(Err(why)) => session.fail(txn, code::DTMF_INVALID, &why),
                    Err(_) => session.fail(txn, code::CALL_NO_CALL, "the call has ended"),
                }),
        );
    }

    /// `hold()` / `unhold()`: answered once the re-INVITE is on its way;
    /// `Sono.Call.Held` (or `HoldFailed`) follows with the peer's answer.
    fn hold(&mut self, ctx: &mut Context<Self>, txn: Responder, held: bool) {
        let Some(call) = &self.call else {
            self.fail(txn, code::CALL_NO_CALL, "there is no call to hold");
            return;
        };
        ctx.spawn(
            call.send(HoldCall(held)).into_actor(self).map(
                move |result, session, _| match result {
                    Ok(Ok(())) => session.respond(txn, Ok(AmfValue::Null)),
                    Ok(Err(why)) => session.fail(txn, code::CALL_HOLD_FAILED, why),
                    Err(_) => session.fail(txn, code::CALL_NO_CALL, "the call has ended"),
                },
            ),
        );
    }

    /// The client codec a new call should pass through if it can: a
    /// browser's attached for the audio, else what the client publishes
    /// (or said it will), else its transport's.
    fn preferred_codec(&self) -> ClientCodec {
        match (&self.attached, self.publishes) {
            (None, Some(codec)) => codec,
            _ => self.media_out.codec,
        }
    }

    /// Where a new call's audio down goes, and in what codec: a G.711
    /// client gets its law back when the peer speaks it (the bridge
    /// decides, once the codec is negotiated).
    fn call_media(&self) -> ClientMedia {
        match (&self.attached, self.publishes) {
            (None, Some(codec @ ClientCodec::G711(_)))
                if self.media_out.codec == ClientCodec::SpeexWb =>
            {
                ClientMedia {
                    out: self.media_out.out.clone(),
                    codec,
                    passthrough_only: true,
                }
            }
            _ => self.media_out.clone(),
        }
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
        let (mut config, resolve) = outbound_config(shared, target, user, rtp.port());
        prefer_client_codec(&mut config.media, self.preferred_codec());
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
            self.call_media(),
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

    fn say_goodbye(&mut self) {
        if self.closing {
            return;
        }
        if self.call.is_some() {
            // The call did not end in time (a dial not yet answered, whose
            // CANCEL must wait for a provisional): the client hears it here.
            self.emit(PhoneEvent::CallStatus {
                status: sono_rtmp::phone::CallStatus::NotConnected,
                sip_code: None,
                reason: Some("sono is shutting down".into()),
            });
        }
        self.emit(PhoneEvent::ServerShutdown);
        self.closing = true;
        self.to_client.do_send(ToClient::Close {
            reason: "sono is shutting down".into(),
            is_error: false,
        });
    }

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

impl Actor for ClientSession {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        self.set_call_track(|track| *track = None);
        // The SIP side of a call ends with its client (CANCEL or BYE at once).
        if let Some(call) = self.call.take() {
            call.do_send(Hangup { client_gone: true });
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
                        if let Some(bridge) = &self.media {
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
        if let Some(bridge) = &self.media {
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
        if let Some(bridge) = &self.media {
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
        match &self.call {
            Some(call) => {
                call.do_send(Hangup { client_gone: false });
                ctx.run_later(SHUTDOWN_CALL_WAIT, |session, _| session.say_goodbye());
            }
            None => self.say_goodbye(),
        }
    }
}

impl Handler<CallNotice> for ClientSession {
    type Result = ();

    fn handle(&mut self, notice: CallNotice, _: &mut Self::Context) {
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
                self.emit(event);
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
                self.media = Some(bridge.clone());
                self.media_transport()
                    .do_send(ToClient::Media(Some(bridge)));
            }
            CallNotice::Ended => {
                self.call = None;
                self.set_call_track(|track| *track = None);
                self.inbound_call_id = None;
                self.pending_dial = None;
                if self.media.take().is_some() {
                    self.media_transport().do_send(ToClient::Media(None));
                }
                if self.shutting_down {
                    self.say_goodbye();
                }
            }
        }
    }
}

impl Handler<IncomingInvite> for ClientSession {
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
        if self.closing || !self.connected {
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
        let mut config = inbound_config(&shared, user, rtp.port(), transport);
        prefer_client_codec(&mut config.media, self.preferred_codec());
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
            self.call_media(),
            shared.clone(),
            message,
            source,
            config,
            rtp,
        ));
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
            call: self.call_track.as_ref().map(|c| CallState {
                direction: c.direction,
                remote_uri: c.remote_uri.clone(),
                status: c.status,
                age_seconds: c.started.elapsed().as_secs(),
            }),
            stream_key: self.has_stream_key.then(|| "(set)".to_owned()),
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
