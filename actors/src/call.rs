//! `Call`: one outbound SIP call leg of an RTMP client, on the client's
//! arbiter. It owns the sans-I/O [`OutboundCall`] core, feeds it the messages
//! the `SipTransport` routes here and its deadlines, writes what it produces
//! to the SIP socket, and turns its events into the Flash API's
//! `Sono.Call.Status` events and the dial's answer for the `RtmpConnection`.
//!
//! The dial is answered `_result` once the call has started (a provisional
//! other than 100, or the answer) and `_error` `Sono.Call.Failed` with the
//! SIP code and reason if it ends before that.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use sono_rtmp::phone::{CallId, CallStatus, PhoneEvent};
use sono_sip::inbound_call::{InboundCall, InboundCallConfig};
use sono_sip::message::Received;
use sono_sip::outbound_call::{Auth, CallEvent, OutboundCall, OutboundCallConfig};
use sono_sip::reoffer::ReofferOutcome;
use sono_sip::transfer::{DialogId, TransferEvent};
use sono_sip::transmit::Transport;
use tracing::{debug, info, warn};

use crate::call_leg::CallLeg;
use crate::directory::ConnectionId;
use crate::media_bridge::{
    ClientMedia, HoldMedia, MediaBridge, MediaChanged, MediaTimeout, StopMedia,
};
use crate::metrics::Metrics;
use crate::rtp_ports::RtpPorts;
use crate::sip_stream::Sender;
use crate::sip_transport::{SipInbound, SipUnreachable};
use crate::Shared;

/// What a call tells its connection.
#[derive(Debug)]
pub enum CallNotice {
    Status(PhoneEvent),
    /// The answer to the pending `dial`: `Ok` once the call started, else the
    /// SIP code and reason that ended it.
    DialAnswer(Result<(), (Option<u16>, String)>),
    /// The answered call's media: client audio and DTMF go there.
    Media(Addr<MediaBridge>),
    /// The peer asks that we call `target` instead (its REFER got 202; the
    /// dial plan allows the target): the session places that call and
    /// reports it back with [`NotifyTransfer`].
    Referred {
        target: String,
        replaces: Option<String>,
        referred_by: Option<String>,
    },
    /// The call is over; the connection may dial again.
    Ended,
}

/// A [`CallNotice`] from the call with this id (its line) in the client session.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct LineNotice {
    pub line: CallId,
    pub notice: CallNotice,
}

/// The client hung up, or went away (`client_gone`: no more notices).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Hangup {
    pub client_gone: bool,
}

pub struct Call {
    conn: ConnectionId,
    /// Its id among the client's calls.
    line: CallId,
    connection: Recipient<LineNotice>,
    /// Where the media bridge sends audio down and DTMF.
    media_out: ClientMedia,
    media: Option<Addr<MediaBridge>>,
    /// Why the media ended the call, reported instead of the core's reason.
    media_end_reason: Option<String>,
    shared: Arc<Shared>,
    core: Option<CallLeg>,
    /// Until the next hop is resolved.
    config: Option<OutboundCallConfig>,
    /// A host name to resolve before the INVITE can go.
    resolve: Option<(String, u16)>,
    /// Reserved for the media bridge; released as soon as the call ends, while
    /// the actor may linger for its transactions' last timers.
    rtp: Option<RtpPorts>,
    timer: Option<SpawnHandle>,
    client_gone: bool,
    dial_answered: bool,
    hangup_requested: bool,
    ended_notified: bool,
    /// Counted in `sip_calls_unsettled`: over for the client, but a BYE or
    /// CANCEL of ours still awaits its answer.
    unsettled: bool,
    started: Instant,
    /// An inbound call's INVITE, until the actor starts its core.
    incoming: Option<(Received, SocketAddr, InboundCallConfig)>,
    /// An inbound call not yet accepted nor rejected.
    ringing: bool,
    no_answer: Option<SpawnHandle>,
    /// The client holds the call (its re-INVITE was accepted).
    held: bool,
    /// What the client last asked for.
    wants_held: bool,
    /// The peer holds the call (its last SDP said so).
    peer_holds: bool,
    /// The first hop's host as the URI names it (the outbound proxy's, else
    /// the target's) and its address once known: a TLS connection there
    /// needs a certificate for that name (RFC 5922 §7); one to any other
    /// address (a peer's Contact) for that address.
    peer_name: Option<(String, Option<SocketAddr>)>,
}

impl Call {
    /// Starts the call on the current arbiter. `resolve` names a host whose
    /// address becomes the next hop (port included) before the INVITE is sent.
    pub fn start(
        (conn, line): (ConnectionId, CallId),
        connection: Recipient<LineNotice>,
        media_out: ClientMedia,
        shared: Arc<Shared>,
        config: OutboundCallConfig,
        resolve: Option<(String, u16)>,
        rtp: RtpPorts,
    ) -> Addr<Call> {
        let proxy = config.outbound_proxy.as_deref().unwrap_or(&config.target);
        let peer_name = sono_sip::uri::SipUri::parse(proxy)
            .ok()
            .map(|u| (u.destination().unwrap_or(u).host, None));
        Call {
            config: Some(config),
            resolve,
            peer_name,
            ..Call::idle((conn, line), connection, media_out, shared, rtp)
        }
        .start()
    }

    /// Starts an inbound call for a client on the current arbiter: the
    /// core answers 100 at once, rings (180) and the client hears
    /// `Sono.Call.Incoming`; `accept`, `reject`, the caller's CANCEL or
    /// `sip.no_answer_timeout` (480) decide.
    #[allow(clippy::too_many_arguments)]
    pub fn start_inbound(
        (conn, line): (ConnectionId, CallId),
        connection: Recipient<LineNotice>,
        media_out: ClientMedia,
        shared: Arc<Shared>,
        invite: Received,
        source: SocketAddr,
        config: InboundCallConfig,
        rtp: RtpPorts,
    ) -> Addr<Call> {
        Call {
            // Nobody dialled: there is no dial to answer.
            dial_answered: true,
            incoming: Some((invite, source, config)),
            ..Call::idle((conn, line), connection, media_out, shared, rtp)
        }
        .start()
    }

    /// A call leg not yet started: what both kinds begin with.
    fn idle(
        (conn, line): (ConnectionId, CallId),
        connection: Recipient<LineNotice>,
        media_out: ClientMedia,
        shared: Arc<Shared>,
        rtp: RtpPorts,
    ) -> Call {
        Call {
            conn,
            line,
            connection,
            media_out,
            media: None,
            media_end_reason: None,
            shared,
            core: None,
            config: None,
            resolve: None,
            rtp: Some(rtp),
            timer: None,
            client_gone: false,
            dial_answered: false,
            hangup_requested: false,
            ended_notified: false,
            unsettled: false,
            started: Instant::now(),
            incoming: None,
            ringing: false,
            no_answer: None,
            held: false,
            wants_held: false,
            peer_holds: false,
            peer_name: None,
        }
    }

    /// Builds the inbound core from the INVITE, rings, tells the client.
    fn begin_inbound(
        &mut self,
        ctx: &mut Context<Self>,
        invite: Received,
        source: SocketAddr,
        config: InboundCallConfig,
    ) {
        let now = Instant::now();
        let mut core = InboundCall::new(invite, source, config, now);
        let call_id = core.call_id().to_owned();
        self.shared
            .directory
            .add_call(&call_id, ctx.address().recipient());
        if !core.is_ended() {
            core.ring(now);
            self.ringing = true;
            let (display_name, uri) = core.caller_parts();
            info!(conn = self.conn, %call_id, caller = %uri, "incoming call");
            self.notify(CallNotice::Status(PhoneEvent::CallIncoming {
                uri,
                display_name,
            }));
            let wait = self.shared.settings.sip.no_answer_timeout;
            self.no_answer = Some(ctx.run_later(wait, |call, ctx| {
                call.no_answer = None;
                call.decline(ctx, 480, "Temporarily Unavailable");
            }));
        }
        self.core = Some(CallLeg::Inbound(Box::new(core)));
        self.pump(ctx);
    }

    /// Ends a ringing inbound call with `code`; false if none rings.
    fn decline(&mut self, ctx: &mut Context<Self>, code: u16, reason: &str) -> bool {
        let Some(CallLeg::Inbound(core)) = &mut self.core else {
            return false;
        };
        if !self.ringing || core.is_ended() {
            return false;
        }
        self.ringing = false;
        if let Some(h) = self.no_answer.take() {
            ctx.cancel_future(h);
        }
        core.reject(code, reason, Instant::now());
        self.pump(ctx);
        true
    }

    fn notify(&self, notice: CallNotice) {
        if !self.client_gone {
            self.connection.do_send(LineNotice {
                line: self.line,
                notice,
            });
        }
    }

    fn status(&self, status: CallStatus, sip_code: Option<u16>, reason: Option<String>) {
        self.notify(CallNotice::Status(PhoneEvent::CallStatus {
            status,
            sip_code,
            reason,
        }));
    }

    /// Sends the INVITE once the next hop is known.
    fn begin(&mut self, ctx: &mut Context<Self>, next_hop: Option<SocketAddr>) {
        let Some(mut config) = self.config.take() else {
            return;
        };
        if self.hangup_requested {
            self.fail_before_start(ctx, None, "hung up before the call was placed".into());
            return;
        }
        if let Some(hop) = next_hop {
            config.next_hop = hop;
        }
        if let Some((_, address)) = &mut self.peer_name {
            *address = Some(config.next_hop);
        }
        let target = config.target.clone();
        match OutboundCall::new(config, Instant::now()) {
            Ok(core) => {
                let call_id = core.call_id().to_owned();
                self.shared
                    .directory
                    .add_call(&call_id, ctx.address().recipient());
                Metrics::add(&self.shared.metrics.sip_calls_started, 1);
                info!(conn = self.conn, %call_id, %target, rtp_port = self.rtp.as_ref().map_or(0, RtpPorts::port), "calling");
                self.core = Some(CallLeg::Outbound(Box::new(core)));
                self.status(CallStatus::InProgress, None, Some("calling".into()));
                self.pump(ctx);
            }
            Err(e) => self.fail_before_start(ctx, None, e),
        }
    }

    /// The call could not even be placed.
    fn fail_before_start(&mut self, ctx: &mut Context<Self>, code: Option<u16>, reason: String) {
        warn!(conn = self.conn, %reason, "call not placed");
        self.finish(code, reason, false);
        ctx.stop();
    }

    /// Status 0, the dial's `_error` if it is still unanswered, and the end.
    fn finish(&mut self, code: Option<u16>, reason: String, answered: bool) {
        if !answered {
            Metrics::add(&self.shared.metrics.sip_calls_failed, 1);
        }
        self.status(CallStatus::NotConnected, code, Some(reason.clone()));
        self.answer_dial(Err((code, reason)));
        self.mark_ended();
    }

    /// The pending `dial` gets its one answer.
    fn answer_dial(&mut self, answer: Result<(), (Option<u16>, String)>) {
        if !self.dial_answered {
            self.dial_answered = true;
            self.notify(CallNotice::DialAnswer(answer));
        }
    }

    /// Once per call: the connection may dial again, the gauge drops.
    fn mark_ended(&mut self) {
        if self.ended_notified {
            return;
        }
        self.ended_notified = true;
        self.rtp = None;
        if let Some(media) = self.media.take() {
            media.do_send(StopMedia);
        }
        self.notify(CallNotice::Ended);
        self.shared
            .metrics
            .sip_calls_active
            .fetch_sub(1, Ordering::AcqRel);
    }

    /// Sends what the core produced, reports its events, re-arms its timer.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(core) = &mut self.core else {
            return;
        };
        let transport = core.transport();
        while let Some(t) = core.poll_transmit() {
            let sender = Sender {
                peer_name: self
                    .peer_name
                    .as_ref()
                    .filter(|(_, at)| *at == Some(t.to))
                    .map(|(name, _)| name.clone()),
                report: Some(ctx.address().recipient()),
            };
            self.shared.sip.send_from(transport, t.to, &t.bytes, sender);
        }
        let mut events = Vec::new();
        while let Some(e) = core.poll_event() {
            events.push(e);
        }
        let finished = core.is_finished();
        let unsettled = core.is_ended() && !core.is_settled();
        let deadline = core.poll_timeout();
        let call_id = core.call_id().to_owned();
        for event in events {
            self.report(event, &call_id, ctx);
        }
        self.set_unsettled(unsettled);
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if finished {
            ctx.stop();
            return;
        }
        if let Some(at) = deadline {
            let wait = at.saturating_duration_since(Instant::now());
            self.timer = Some(ctx.run_later(wait, |call, ctx| {
                call.timer = None;
                if let Some(core) = &mut call.core {
                    core.handle_timeout(Instant::now());
                }
                call.pump(ctx);
            }));
        }
    }

    fn set_unsettled(&mut self, unsettled: bool) {
        if unsettled != self.unsettled {
            self.unsettled = unsettled;
            let gauge = &self.shared.metrics.sip_calls_unsettled;
            if unsettled {
                gauge.fetch_add(1, Ordering::AcqRel);
            } else {
                gauge.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn report(&mut self, event: CallEvent, call_id: &str, ctx: &mut Context<Self>) {
        match event {
            CallEvent::Progress { code, reason } => {
                debug!(conn = self.conn, call_id, code, %reason, "call progress");
                if code > 100 {
                    self.answer_dial(Ok(()));
                }
                self.status(CallStatus::InProgress, Some(code), Some(reason));
            }
            CallEvent::Answered {
                code,
                reason,
                media,
            } => {
                info!(conn = self.conn, call_id, code, codec = ?media.codec,
                      remote_rtp = ?media.remote, setup_ms = self.started.elapsed().as_millis() as u64,
                      "call answered");
                Metrics::add(&self.shared.metrics.sip_calls_answered, 1);
                self.answer_dial(Ok(()));
                self.status(CallStatus::Connected, Some(code), Some(reason.clone()));
                self.start_media(ctx, &media);
                // The client may publish and play from now on.
                self.status(CallStatus::ConnectStreams, Some(code), Some(reason));
            }
            CallEvent::MediaChanged(media) => {
                debug!(
                    conn = self.conn,
                    call_id,
                    ?media,
                    "media changed by re-INVITE"
                );
                self.peer_hold(media.peer_holds);
                if let Some(bridge) = &self.media {
                    bridge.do_send(MediaChanged(media));
                }
            }
            CallEvent::Reoffer(ReofferOutcome::Settled(media)) => {
                let held = !media.direction.receives();
                info!(
                    conn = self.conn,
                    call_id, held, "hold changed by our re-INVITE"
                );
                self.peer_hold(media.peer_holds);
                if let Some(bridge) = &self.media {
                    bridge.do_send(MediaChanged(media));
                }
                if held != self.held {
                    self.held = held;
                    self.notify(CallNotice::Status(PhoneEvent::Held {
                        held,
                        by_peer: false,
                    }));
                }
            }
            CallEvent::Reoffer(ReofferOutcome::Refused { code, reason }) => {
                warn!(conn = self.conn, call_id, code, %reason, "re-INVITE to hold or resume refused");
                // The bridge follows the SDP in force, which did not change.
                self.wants_held = self.held;
                if let Some(bridge) = &self.media {
                    bridge.do_send(HoldMedia(self.held));
                }
                self.notify(CallNotice::Status(PhoneEvent::HoldFailed {
                    held: !self.held,
                    sip_code: code,
                    reason,
                }));
            }
            CallEvent::Reoffer(_) => {}
            CallEvent::Transfer(TransferEvent::Progress { code, reason, done }) => {
                info!(conn = self.conn, call_id, code, %reason, done, "transfer progress");
                self.notify(CallNotice::Status(PhoneEvent::Transfer {
                    sip_code: code,
                    reason,
                    done,
                }));
            }
            CallEvent::Transfer(TransferEvent::Referred {
                target,
                replaces,
                referred_by,
            }) => {
                info!(conn = self.conn, call_id, %target, replaces = replaces.is_some(),
                      "the peer transfers the call (REFER accepted)");
                self.notify(CallNotice::Referred {
                    target,
                    replaces,
                    referred_by,
                });
            }
            CallEvent::TargetRefused { target, reason } => {
                warn!(conn = self.conn, call_id, %target, %reason,
                      "the peer's target is outside the dial plan: nothing sent there");
                Metrics::add(&self.shared.metrics.sip_targets_refused, 1);
            }
            CallEvent::ChallengeRefused(reason) => {
                warn!(conn = self.conn, call_id, %reason, "challenge not answered");
                Metrics::add(&self.shared.metrics.sip_challenges_refused, 1);
            }
            CallEvent::Ended {
                code,
                reason,
                answered,
            } => {
                let reason = self.media_end_reason.take().unwrap_or(reason);
                self.ringing = false;
                if let Some(h) = self.no_answer.take() {
                    ctx.cancel_future(h);
                }
                info!(conn = self.conn, call_id, ?code, %reason, answered, "call ended");
                self.finish(code, reason, answered);
            }
        }
    }
}

impl Call {
    /// The peer's SDP says it holds (or no longer holds) the call.
    fn peer_hold(&mut self, holds: bool) {
        if holds != self.peer_holds {
            self.peer_holds = holds;
            info!(conn = self.conn, holds, "the peer's hold changed");
            self.notify(CallNotice::Status(PhoneEvent::Held {
                held: holds,
                by_peer: true,
            }));
        }
    }
}

impl Actor for Call {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared
            .metrics
            .sip_calls_active
            .fetch_add(1, Ordering::AcqRel);
        if let Some((invite, source, config)) = self.incoming.take() {
            self.begin_inbound(ctx, invite, source, config);
            return;
        }
        match self.resolve.take() {
            None => self.begin(ctx, None),
            Some((host, port)) => {
                let lookup = async move {
                    tokio::net::lookup_host((host.as_str(), port))
                        .await
                        .map_err(|e| format!("cannot resolve {host}: {e}"))
                        .and_then(|mut addrs| {
                            addrs.next().ok_or_else(|| format!("{host} has no address"))
                        })
                };
                ctx.spawn(
                    lookup
                        .into_actor(self)
                        .map(|result, call, ctx| match result {
                            Ok(addr) => call.begin(ctx, Some(addr)),
                            Err(e) => call.fail_before_start(ctx, Some(503), e),
                        }),
                );
            }
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(core) = &self.core {
            self.shared.directory.remove_call(core.call_id());
        }
        self.set_unsettled(false);
        self.mark_ended();
    }
}

impl Handler<SipInbound> for Call {
    type Result = ();

    fn handle(&mut self, msg: SipInbound, ctx: &mut Context<Self>) {
        if let Some(core) = &mut self.core {
            core.handle_message(msg.message, msg.source, Instant::now());
        }
        self.pump(ctx);
    }
}

impl Call {
    /// The call is answered: its RTP ports go to a media bridge on this
    /// arbiter, and the connection learns where to send audio and DTMF.
    fn start_media(&mut self, ctx: &mut Context<Self>, media: &sono_sip::sdp::Negotiated) {
        let Some(ports) = self.rtp.take() else {
            return;
        };
        match MediaBridge::start(
            self.conn,
            self.shared.clone(),
            ports,
            media,
            self.media_out.clone(),
            (ctx.address().recipient(), ctx.address().recipient()),
        ) {
            Ok(bridge) => {
                self.notify(CallNotice::Media(bridge.clone()));
                self.media = Some(bridge);
            }
            Err(e) => warn!(conn = self.conn, error = %e, "the media bridge could not start"),
        }
    }
}

impl Handler<crate::video_bridge::PictureFastUpdate> for Call {
    type Result = ();

    /// The video bridge needs a keyframe from a peer that takes no RTCP
    /// feedback: SIP INFO with `picture_fast_update` (RFC 5168).
    fn handle(&mut self, _: crate::video_bridge::PictureFastUpdate, ctx: &mut Context<Self>) {
        if self.hangup_requested {
            return;
        }
        if let Some(core) = &mut self.core {
            let sent = core.picture_fast_update(Instant::now());
            debug!(conn = self.conn, sent, "SIP INFO picture_fast_update");
        }
        self.pump(ctx);
    }
}

impl Handler<MediaTimeout> for Call {
    type Result = ();

    fn handle(&mut self, msg: MediaTimeout, ctx: &mut Context<Self>) {
        if self.hangup_requested || self.core.as_ref().is_none_or(CallLeg::is_ended) {
            return;
        }
        self.hangup_requested = true;
        self.media_end_reason = Some(msg.reason.clone());
        self.status(CallStatus::Disconnecting, None, Some(msg.reason));
        if let Some(core) = &mut self.core {
            core.hangup(Instant::now());
        }
        self.pump(ctx);
    }
}

/// The client holds (`true`) or resumes the call. The outcome follows as
/// `Sono.Call.Held` or `Sono.Call.HoldFailed`; refused at once (the
/// reason) if the call is not answered, or already held or not.
#[derive(Message)]
#[rtype(result = "Result<(), &'static str>")]
pub struct HoldCall(pub bool);

impl Handler<HoldCall> for Call {
    type Result = Result<(), &'static str>;

    fn handle(&mut self, HoldCall(held): HoldCall, ctx: &mut Context<Self>) -> Self::Result {
        let not_up = "the call is not answered";
        if self.hangup_requested || self.media.is_none() {
            return Err(not_up);
        }
        if held == self.wants_held {
            return Err(if held {
                "the call is already on hold"
            } else {
                "the call is not on hold"
            });
        }
        let Some(core) = &mut self.core else {
            return Err(not_up);
        };
        if !core.hold(held, Instant::now()) {
            return Err(not_up);
        }
        self.wants_held = held;
        // The client's audio stops (or resumes) at once, not when the
        // peer agrees: a held line must not hear or be heard meanwhile.
        if let Some(bridge) = &self.media {
            bridge.do_send(HoldMedia(held));
        }
        self.pump(ctx);
        Ok(())
    }
}

/// The client transfers the call's peer to a target the dial plan
/// allowed (REFER); the progress follows as `Sono.Call.Transfer`.
/// Refused at once (the reason) if the call is not up or a transfer of
/// it is under way.
#[derive(Message)]
#[rtype(result = "Result<(), &'static str>")]
pub struct TransferCall(pub String);

impl Handler<TransferCall> for Call {
    type Result = Result<(), &'static str>;

    fn handle(
        &mut self,
        TransferCall(target): TransferCall,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        if self.hangup_requested || self.media.is_none() {
            return Err("the call is not answered");
        }
        let Some(core) = &mut self.core else {
            return Err("the call is not answered");
        };
        if !core.transfer(&target, Instant::now()) {
            return Err("a transfer of this call is already under way");
        }
        info!(conn = self.conn, call_id = core.call_id(), %target, "transferring (REFER)");
        self.pump(ctx);
        Ok(())
    }
}

/// How our call to the target of the peer's REFER goes: told to the peer
/// that asked for it (NOTIFY, RFC 3515 §2.4.4).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyTransfer {
    pub code: u16,
    pub reason: String,
}

impl Handler<NotifyTransfer> for Call {
    type Result = ();

    fn handle(&mut self, msg: NotifyTransfer, ctx: &mut Context<Self>) {
        if let Some(core) = &mut self.core {
            core.notify_transfer(msg.code, &msg.reason, Instant::now());
        }
        self.pump(ctx);
    }
}

/// The answered call's dialog, for an attended transfer naming it.
#[derive(Message)]
#[rtype(result = "Option<DialogId>")]
pub struct GetDialogId;

impl Handler<GetDialogId> for Call {
    type Result = Option<DialogId>;

    fn handle(&mut self, _: GetDialogId, _: &mut Context<Self>) -> Option<DialogId> {
        self.core
            .as_ref()
            .filter(|_| !self.hangup_requested)
            .and_then(CallLeg::dialog_id)
    }
}

/// The client's `accept` (`reject: None`) or `reject(code)`: true if a
/// ringing inbound call was answered or refused.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AnswerIncoming {
    pub reject: Option<u16>,
}

impl Handler<AnswerIncoming> for Call {
    type Result = bool;

    fn handle(&mut self, msg: AnswerIncoming, ctx: &mut Context<Self>) -> bool {
        if let Some(code) = msg.reject {
            return self.decline(ctx, code, sono_sip::response::reason_phrase(code));
        }
        let Some(CallLeg::Inbound(core)) = &mut self.core else {
            return false;
        };
        if !self.ringing || core.is_ended() {
            return false;
        }
        self.ringing = false;
        if let Some(h) = self.no_answer.take() {
            ctx.cancel_future(h);
        }
        core.accept(Instant::now());
        info!(
            conn = self.conn,
            call_id = core.call_id(),
            "incoming call accepted"
        );
        self.pump(ctx);
        true
    }
}

impl Handler<SipUnreachable> for Call {
    type Result = ();

    fn handle(&mut self, msg: SipUnreachable, ctx: &mut Context<Self>) {
        warn!(conn = self.conn, reason = %msg.reason, "SIP next hop unreachable");
        if let Some(core) = &mut self.core {
            core.transport_failed(&msg.reason);
        }
        self.pump(ctx);
    }
}

impl Handler<Hangup> for Call {
    type Result = ();

    fn handle(&mut self, msg: Hangup, ctx: &mut Context<Self>) {
        self.client_gone |= msg.client_gone;
        if self.hangup_requested {
            return;
        }
        self.hangup_requested = true;
        // Still resolving: begin() ends the call instead of placing it.
        if self.core.as_ref().is_none_or(CallLeg::is_ended) {
            return;
        }
        self.status(CallStatus::Disconnecting, None, Some("hanging up".into()));
        if let Some(core) = &mut self.core {
            core.hangup(Instant::now());
        }
        self.pump(ctx);
    }
}

/// Our Contact for `user` on `transport`: a `sips:` URI when the dialog is
/// secure (its Request-URI or target was `sips:`, RFC 5630 §3.1.2), else a
/// `sip:` URI with the transport parameter for TCP and TLS.
pub fn our_contact(shared: &Shared, user: &str, transport: Transport, secure: bool) -> String {
    let advertised = shared.sip.advertised_for(transport);
    if secure && transport == Transport::Tls {
        format!("sips:{user}@{advertised}")
    } else {
        format!("sip:{user}@{advertised}{}", transport.uri_parameter())
    }
}

/// An inbound call's configuration: our Contact for the client's user, the
/// media we answer with, the transport the INVITE came on, and whether its
/// Request-URI was `sips:`.
pub fn inbound_config(
    shared: &Shared,
    user: &str,
    rtp_port: u16,
    transport: Transport,
    secure: bool,
) -> InboundCallConfig {
    let sip = &shared.settings.sip;
    InboundCallConfig {
        contact: our_contact(shared, user, transport, secure),
        via_sent_by: shared.sip.advertised_for(transport).to_owned(),
        user_agent: sip.user_agent.clone(),
        media: local_media(shared, rtp_port, transport),
        timers: sip.timers(),
        transport,
        dial_plan: Some(shared.dial_plan.clone()),
    }
}

/// The client's own codec first: a call from or to a WebRTC client offers
/// and accepts Opus (or the G.722 or G.711 its page prefers) before the
/// configured codecs (`media.codecs`), and one from a client that
/// publishes G.711 (Flash Player 11, AIR, an RTMP tool)
/// its law, so a peer that speaks it gets the client's audio untouched,
/// with no codec work either way. Speex and Nellymoser clients keep the
/// configured order; so does G.711 when `media.codecs` leaves that law out
/// (the operator's list decides what is offered at all).
pub fn prefer_client_codec(
    media: &mut sono_sip::sdp::LocalMedia,
    client: sono_media::codec::ClientCodec,
) {
    use sono_media::codec::ClientCodec;
    use sono_media::g711::Law;
    use sono_sip::sdp::Codec;
    let first = match client {
        ClientCodec::Opus => Codec::Opus,
        ClientCodec::G711(Law::Mu) if media.codecs.contains(&Codec::Pcmu) => Codec::Pcmu,
        ClientCodec::G711(Law::A) if media.codecs.contains(&Codec::Pcma) => Codec::Pcma,
        ClientCodec::G722 if media.codecs.contains(&Codec::G722) => Codec::G722,
        _ => return,
    };
    media.codecs.retain(|c| *c != first);
    media.codecs.insert(0, first);
}

/// What we offer and answer with: the configured codecs on this port, and
/// a fresh SRTP master key when the policy and the transport allow keys.
fn local_media(shared: &Shared, rtp_port: u16, transport: Transport) -> sono_sip::sdp::LocalMedia {
    let sip = &shared.settings.sip;
    let srtp = sip
        .srtp_keys_allowed(transport)
        .then(|| sono_sip::sdp::LocalSrtp {
            key: rand::random(),
            required: sip.srtp == crate::settings::SrtpPolicy::Required,
        });
    sono_sip::sdp::LocalMedia {
        srtp,
        address: shared.settings.media.address,
        port: rtp_port,
        codecs: shared.codecs.clone(),
        telephone_event: shared.settings.media.telephone_event,
        ptime: shared.settings.media.ptime,
        session_id: rand::random::<u32>() as u64,
        session_version: 1,
        video: None,
    }
}

/// The call's configuration from settings: identity (From, Contact), next hop
/// (outbound proxy or the target), media offer and credentials. The second
/// value names a host to resolve when the target is not an IP address.
pub fn outbound_config(
    shared: &Shared,
    target: &sono_sip::uri::SipUri,
    implicit_user: Option<&str>,
    rtp_port: u16,
) -> (OutboundCallConfig, Option<(String, u16)>) {
    let sip = &shared.settings.sip;
    let user = if !sip.from_user.is_empty() {
        sip.from_user.as_str()
    } else {
        implicit_user.unwrap_or("sono")
    };
    let domain = if sip.from_domain.is_empty() {
        sip.domain.as_str()
    } else {
        sip.from_domain.as_str()
    };
    let from = if sip.from_name.is_empty() {
        format!("<sip:{user}@{domain}>")
    } else {
        let name = sip.from_name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{name}\" <sip:{user}@{domain}>")
    };
    // A maddr the dial plan allowed is where the request goes (RFC 3263 §4).
    let destination = target.destination().unwrap_or_else(|_| target.clone());
    let port = destination.port_or_default();
    let proxy = (!sip.outbound_proxy.is_empty())
        .then(|| sono_sip::uri::SipUri::parse(&sip.outbound_proxy).ok())
        .flatten();
    let mut resolve = None;
    let next_hop = match &proxy {
        // settings.validate() made sure the proxy is an IP address.
        Some(p) => SocketAddr::new(
            p.ip().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            p.port_or_default(),
        ),
        None => match destination.ip() {
            Some(ip) => SocketAddr::new(ip, port),
            None if destination.host == "localhost" => {
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port)
            }
            None => {
                resolve = Some((destination.host.clone(), port));
                SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port)
            }
        },
    };
    // The proxy's transport parameter when there is a proxy, else the target's.
    let transport = match &proxy {
        Some(p) => Transport::of_uri(&p.to_string()),
        None => Transport::of_uri(&target.to_string()),
    };
    let media = local_media(shared, rtp_port, transport);
    let advertised = shared.sip.advertised_for(transport);
    let contact = our_contact(shared, user, transport, target.secure);
    let auth = challenge_policy(shared, target, proxy.as_ref());
    let config = OutboundCallConfig {
        target: target.to_string(),
        from,
        contact,
        via_sent_by: advertised.to_owned(),
        next_hop,
        outbound_proxy: proxy.map(|p| p.to_string()),
        user_agent: sip.user_agent.clone(),
        media,
        timers: sip.timers(),
        transport,
        auth,
        dial_plan: Some(shared.dial_plan.clone()),
        call_id: String::new(),
        extra_headers: Vec::new(),
    };
    (config, resolve)
}

/// Whom `sip.auth_user`'s credentials answer on a call to `target`: the
/// outbound proxy when there is one; else the target only if it is a
/// configured registrar (a host in `sip.registrars`, "*" not counting, or
/// `sip.implicit_registrar`). Always only for realms in `sip.auth_realms`.
fn challenge_policy(
    shared: &Shared,
    target: &sono_sip::uri::SipUri,
    proxy: Option<&sono_sip::uri::SipUri>,
) -> Auth {
    let sip = &shared.settings.sip;
    if sip.auth_user.is_empty() {
        return Auth::None;
    }
    let registrar = sip.registrars.iter().any(|r| {
        r != "*"
            && r.trim_matches(['[', ']'])
                .eq_ignore_ascii_case(&target.host)
    }) || sono_sip::uri::SipUri::parse(&format!("sip:{}", sip.implicit_registrar))
        .is_ok_and(|r| r.host == target.host && r.port_or_default() == target.port_or_default());
    if proxy.is_none() && !registrar {
        return Auth::Withheld(format!(
            "{} is neither the outbound proxy nor a configured registrar (sip.registrars)",
            target.host
        ));
    }
    Auth::Realms {
        credentials: sono_sip::digest::Credentials {
            username: sip.auth_user.clone(),
            password: sip.password.expose().to_owned(),
        },
        realms: sip.auth_realms.clone(),
    }
}
