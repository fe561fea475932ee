//! The client session's calls: dialling, answering, hanging up, DTMF,
//! hold and resume on the client's [`Lines`], what each call tells the
//! session ([`LineNotice`]), and new INVITEs for the client (call waiting
//! when a call is up, 486 Busy Here when one rings or every line is taken).
//!
//! Only the active line carries the client's audio: the transport is told
//! of its media bridge ([`ToClient::Media`]); a line that stops being
//! active is held first (RFC 3264 §8.4 re-INVITE), so its peer hears
//! nothing while the client talks to another.

use std::sync::atomic::Ordering;

use actix::prelude::*;
use sono_media::codec::ClientCodec;
use sono_media::g711::Law;
use sono_rtmp::phone::{code, CallId};
use sono_rtmp::{AmfValue, PhoneEvent};
use sono_sip::dial_plan::Verdict;
use sono_sip::inbound_call::request_uri_is_sips;
use sono_sip::transmit::Transport;
use tracing::{info, warn};

use super::{ClientSession, IncomingInvite, ToClient};
use crate::call::{
    inbound_config, outbound_config, prefer_client_codec, AnswerIncoming, Call, CallNotice, Hangup,
    HoldCall, LineNotice,
};
use crate::control::{CallDirection, Responder};
use crate::lines::{DefaultCall, Line};
use crate::media_bridge::{MediaBridge, SendDtmf};
use crate::rtp_ports::RtpPorts;
use crate::sip_transport::answer_stateless;

impl ClientSession {
    /// Sends an event about call `line` to the client and the subscribers.
    pub(super) fn emit_on(&mut self, line: CallId, event: PhoneEvent) {
        self.shared
            .events
            .publish(self.id, event.info_on(Some(line)));
        self.to_client.do_send(ToClient::Event {
            event,
            call: Some(line),
        });
    }

    /// Changes line `id`, keeping `sono_calls{state}` in step.
    pub(super) fn update_line(&mut self, id: CallId, change: impl FnOnce(&mut Line)) {
        let Some(line) = self.lines.get_mut(id) else {
            return;
        };
        let before = line.phase();
        change(line);
        let after = line.phase();
        self.shared.metrics.call_phase(before, after);
    }

    /// Forgets line `id` (its call ended); the transport loses its media
    /// if it was the active one.
    pub(super) fn remove_line(&mut self, id: CallId) {
        let was_active = self.lines.active_id() == Some(id);
        if let Some(line) = self.lines.remove(id) {
            self.shared.metrics.call_phase(line.phase(), None);
            if was_active && line.media.is_some() {
                self.media_transport().do_send(ToClient::Media(None));
            }
        }
    }

    /// The active line's media bridge, if it is answered.
    pub(super) fn active_media(&self) -> Option<Addr<MediaBridge>> {
        self.lines.active().and_then(|l| l.media.clone())
    }

    /// Makes `id` the active line: the one before it is held (if it is up
    /// and not yet held), and the client's audio goes to `id`'s bridge.
    pub(super) fn make_active(&mut self, ctx: &mut Context<Self>, id: CallId) {
        self.end_three_way();
        if let Some(previous) = self.lines.active_id().filter(|p| *p != id) {
            self.hold_quietly(ctx, previous);
        }
        self.lines.set_active(Some(id));
        if let Some(bridge) = self.lines.get(id).and_then(|l| l.media.clone()) {
            self.media_transport()
                .do_send(ToClient::Media(Some(bridge)));
        }
    }

    /// Holds line `id` because another becomes active (no request to
    /// answer; `Sono.Call.Held` tells the client).
    pub(super) fn hold_quietly(&mut self, ctx: &mut Context<Self>, id: CallId) {
        let Some(line) = self.lines.get_mut(id) else {
            return;
        };
        if !line.is_up() || line.is_held() {
            return;
        }
        line.set_held(true);
        let call = line.call.clone();
        ctx.spawn(
            call.send(HoldCall(true))
                .into_actor(self)
                .map(move |result, session, _| {
                    if !matches!(result, Ok(Ok(()))) {
                        if let Some(line) = session.lines.get_mut(id) {
                            line.set_held(false);
                        }
                    }
                }),
        );
    }

    pub(super) fn hangup(&mut self, txn: Responder, call: Option<CallId>) {
        match self.lines.pick(call, DefaultCall::Active) {
            Ok(id) => {
                if let Some(line) = self.lines.get(id) {
                    line.call.do_send(Hangup { client_gone: false });
                }
                self.respond(txn, Ok(AmfValue::Null));
            }
            Err(why) => self.fail(txn, code::CALL_NO_CALL, &why),
        }
    }

    /// `accept` (no code) or `reject(code)` for a ringing inbound call.
    /// Accepting makes it the active line (the active one is held).
    pub(super) fn answer_incoming(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        call: Option<CallId>,
        reject: Option<u16>,
    ) {
        let line = self
            .lines
            .pick(call, DefaultCall::Ringing)
            .ok()
            .and_then(|id| self.lines.get(id))
            .filter(|l| l.ringing);
        let Some(line) = line else {
            let why = match call {
                Some(id) => format!("call {id} is not an incoming call ringing"),
                None => "there is no incoming call".to_owned(),
            };
            self.fail(txn, code::CALL_NO_CALL, &why);
            return;
        };
        let (id, call) = (line.id, line.call.clone());
        ctx.spawn(call.send(AnswerIncoming { reject }).into_actor(self).map(
            move |result, session, ctx| match result {
                Ok(true) => {
                    session.update_line(id, |l| l.ringing = false);
                    if reject.is_none() {
                        session.make_active(ctx, id);
                    }
                    session.respond(txn, Ok(AmfValue::Null))
                }
                _ => session.fail(txn, code::CALL_NO_CALL, "there is no incoming call ringing"),
            },
        ));
    }

    pub(super) fn send_dtmf(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        call: Option<CallId>,
        digits: String,
    ) {
        let line = match self.lines.pick(call, DefaultCall::Active) {
            Ok(id) => self.lines.get(id),
            Err(why) => {
                self.fail(
                    txn,
                    code::CALL_NO_CALL,
                    &format!("no call to send DTMF to: {why}"),
                );
                return;
            }
        };
        let Some(media) = line.and_then(|l| l.media.clone()) else {
            self.fail(txn, code::CALL_NO_CALL, "the call is not answered yet");
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
    /// Resuming a call makes it the active line (the active one is held).
    pub(super) fn hold(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        call: Option<CallId>,
        held: bool,
    ) {
        let default = if held {
            DefaultCall::Active
        } else {
            DefaultCall::LastHeld
        };
        let id = match self.lines.pick(call, default) {
            Ok(id) => id,
            Err(why) => {
                self.fail(txn, code::CALL_NO_CALL, &format!("no call to hold: {why}"));
                return;
            }
        };
        let Some(line) = self.lines.get(id) else {
            return;
        };
        let target = line.call.clone();
        self.end_three_way();
        if !held {
            // The active line goes on hold before this one comes back.
            if let Some(previous) = self.lines.active_id().filter(|p| *p != id) {
                self.hold_quietly(ctx, previous);
            }
        }
        ctx.spawn(
            target
                .send(HoldCall(held))
                .into_actor(self)
                .map(move |result, session, ctx| match result {
                    Ok(Ok(())) => {
                        session.update_line(id, |l| {
                            l.set_held(held);
                        });
                        if held {
                            if session.lines.active_id() == Some(id) {
                                session.lines.set_active(None);
                            }
                        } else {
                            session.make_active(ctx, id);
                        }
                        session.respond(txn, Ok(AmfValue::Null))
                    }
                    Ok(Err(why)) => session.fail(txn, code::CALL_HOLD_FAILED, why),
                    Err(_) => session.fail(txn, code::CALL_NO_CALL, "the call has ended"),
                }),
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

    /// Whether a new call offers (and accepts) video, by `video.offer`:
    /// only RTMP clients carry it, and only with plain RTP (SRTP keys are
    /// for the audio stream alone).
    fn wants_video(&self, srtp: bool) -> bool {
        use crate::settings::VideoOffer;
        let rtmp = self.attached.is_none() && self.media_out.codec != ClientCodec::Opus;
        let wish = match self.shared.settings.video.offer {
            VideoOffer::Never => false,
            VideoOffer::Always => true,
            VideoOffer::Publishing => self.publishes_video.is_some() || self.video_asked,
        };
        rtmp && wish && !srtp
    }

    /// A new call's video: a second RTP pair and what to announce (the
    /// client's profile and parameter sets once known), or `None` for an
    /// audio-only call.
    fn video_media(&self, rtp: &mut RtpPorts, srtp: bool) -> Option<sono_sip::sdp::LocalVideo> {
        if !self.wants_video(srtp) {
            return None;
        }
        let m = &self.shared.settings.media;
        if let Err(e) = rtp.add_video(m.address, m.rtp_port_min, m.rtp_port_max) {
            warn!(conn = self.id, error = %e, "no RTP port for video: the call is audio only");
            return None;
        }
        let config = self.publishes_video.as_ref().and_then(Option::as_ref);
        Some(sono_sip::sdp::LocalVideo {
            port: rtp.video_port()?,
            profile_level_id: config.map_or_else(
                || sono_sip::video_sdp::CONSTRAINED_BASELINE_31.to_owned(),
                |c| c.profile_level_id(),
            ),
            sprop_parameter_sets: config.map(|c| c.sprop_parameter_sets()),
        })
    }

    /// Where a new call's audio down goes, and in what codec: a G.711
    /// client gets its law back when the peer speaks it (the bridge
    /// decides, once the codec is negotiated).
    fn call_media(&self) -> crate::media_bridge::ClientMedia {
        match (&self.attached, self.publishes) {
            (None, Some(codec @ ClientCodec::G711(_)))
                if self.media_out.codec == ClientCodec::SpeexWb =>
            {
                crate::media_bridge::ClientMedia {
                    out: self.media_out.out.clone(),
                    codec,
                    passthrough_only: true,
                }
            }
            _ => self.media_out.clone(),
        }
    }

    pub(super) fn dial(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        uri: &str,
        codec: Option<sono_rtmp::AudioCodec>,
        video: bool,
    ) {
        self.video_asked = video;
        // The law a Flash Player 11 client says it will publish.
        match codec {
            Some(sono_rtmp::AudioCodec::Pcmu) => self.publishes = Some(ClientCodec::G711(Law::Mu)),
            Some(sono_rtmp::AudioCodec::Pcma) => self.publishes = Some(ClientCodec::G711(Law::A)),
            _ => {}
        }
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

    /// Why a new call cannot start now, if it cannot: the active call must
    /// be held first (a one-call client hears `Sono.Call.Existing` as it
    /// always did), and every line may be taken.
    fn line_refusal(&self) -> Option<(&'static str, &'static str)> {
        // Set before any session hears `Drain`, so it covers them all.
        if self.shared.drain.is_draining() {
            return Some((
                code::CALL_FAILED,
                "sono is draining (leaving service): no new calls here; connect again to reach another node",
            ));
        }
        if self.lines.active().is_some_and(|l| !l.is_held()) || self.lines.ringing().is_some() {
            return Some((
                code::CALL_EXISTING,
                "this connection already has a call; hold it or hang up first",
            ));
        }
        if self.lines.len() >= self.shared.settings.sip.lines {
            return Some((
                code::CALL_EXISTING,
                "every line of this connection is taken (sip.lines); hang up one first",
            ));
        }
        None
    }

    fn place_call(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        target: &sono_sip::uri::SipUri,
    ) {
        if let Some((code, why)) = self.line_refusal() {
            self.fail(txn, code, why);
            return;
        }
        let id = match self.start_outbound(ctx, target, Vec::new()) {
            Ok(id) => id,
            Err(why) => {
                self.fail(txn, code::CALL_FAILED, &why);
                return;
            }
        };
        let started = AmfValue::object([
            ("status", AmfValue::from("trying")),
            ("call", AmfValue::Number(f64::from(id))),
        ]);
        match txn {
            // REST does not hold a request open while the phone rings: it is
            // told the call started, and follows it with events.
            Responder::Rest(_) => self.respond(txn, Ok(started)),
            Responder::Amf(_) => {
                if let Some(line) = self.lines.get_mut(id) {
                    line.pending_dial = Some(txn);
                }
            }
        }
        self.make_active(ctx, id);
    }

    /// Starts an outbound call to `target` (the dial plan allowed it) on a
    /// new line, its INVITE carrying `extra_headers`; the line's id, or
    /// why it could not start (sip.max_calls, no RTP port, TCP off).
    pub(super) fn start_outbound(
        &mut self,
        ctx: &mut Context<Self>,
        target: &sono_sip::uri::SipUri,
        extra_headers: Vec<(String, String)>,
    ) -> Result<CallId, String> {
        let shared = &self.shared;
        let active = shared.metrics.sip_calls_active.load(Ordering::Acquire);
        if active >= shared.settings.sip.max_calls as u64 {
            warn!(
                conn = self.id,
                active, "call refused: sip.max_calls reached"
            );
            return Err("too many calls in progress (sip.max_calls)".into());
        }
        let m = &shared.settings.media;
        let mut rtp = match RtpPorts::allocate(m.address, m.rtp_port_min, m.rtp_port_max) {
            Ok(rtp) => rtp,
            Err(e) => {
                warn!(conn = self.id, error = %e, "call refused: no RTP port");
                return Err(format!("no RTP port: {e}"));
            }
        };
        let user = self.implicit.as_ref().map(|(u, _)| u.as_str());
        let (mut config, resolve) = outbound_config(shared, target, user, rtp.port());
        config.extra_headers = extra_headers;
        prefer_client_codec(&mut config.media, self.preferred_codec());
        config.media.video = self.video_media(&mut rtp, config.media.srtp.is_some());
        if target.secure && config.transport != Transport::Tls {
            // RFC 5630 §3.1.3: sips: needs TLS on every hop; ours is the first.
            return Err(format!(
                "{target} is a sips: URI and the next hop is not reached over TLS (sip.outbound_proxy must be a sips: URI or use transport=tls)"
            ));
        }
        if let Some(why) = shared.settings.sip.srtp_refusal(config.transport) {
            return Err(why);
        }
        if !shared.sip.supports(config.transport) {
            return Err(match config.transport {
                Transport::Tls => {
                    "the target asks for TLS and SIP over TLS is off (sip.tls_listen)".into()
                }
                _ => "the target asks for TCP and SIP over TCP is off (sip.tcp)".into(),
            });
        }
        let id = self.lines.next_id();
        let call = Call::start(
            (self.id, id),
            ctx.address().recipient(),
            self.call_media(),
            shared.clone(),
            config,
            resolve,
            rtp,
        );
        let line = Line::new(id, call, CallDirection::Outbound, target.to_string());
        self.shared.metrics.call_phase(None, line.phase());
        self.lines.add(line);
        Ok(id)
    }

    /// Says goodbye on every line still there (sono is shutting down).
    pub(super) fn end_lines_for_shutdown(&mut self) {
        let ids: Vec<CallId> = self.lines.iter().map(|l| l.id).collect();
        for id in ids {
            // The call did not end in time (a dial not yet answered, whose
            // CANCEL must wait for a provisional): the client hears it here.
            self.emit_on(
                id,
                PhoneEvent::CallStatus {
                    status: sono_rtmp::phone::CallStatus::NotConnected,
                    sip_code: None,
                    reason: Some("sono is shutting down".into()),
                },
            );
        }
    }

    /// Hangs up every line; `client_gone`: nothing more reaches the client.
    pub(super) fn hang_up_all(&mut self, client_gone: bool) {
        for line in self.lines.iter() {
            line.call.do_send(Hangup { client_gone });
        }
    }
}

impl Handler<LineNotice> for ClientSession {
    type Result = ();

    fn handle(&mut self, LineNotice { line: id, notice }: LineNotice, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        match notice {
            CallNotice::Referred {
                target,
                replaces,
                referred_by,
            } => self.follow_referral(ctx, id, &target, replaces, referred_by),
            CallNotice::Status(event) => {
                self.report_to_referrer(ctx, id, &event);
                self.update_line(id, |line| match &event {
                    PhoneEvent::CallStatus { status, .. } => line.status = Some(*status as u8),
                    PhoneEvent::CallIncoming { uri, .. } => line.remote_uri.clone_from(uri),
                    PhoneEvent::HoldFailed { held, .. } => line.set_held(!held),
                    _ => {}
                });
                self.emit_on(id, event);
            }
            CallNotice::DialAnswer(answer) => {
                let Some(txn) = self.lines.get_mut(id).and_then(|l| l.pending_dial.take()) else {
                    return;
                };
                match answer {
                    Ok(()) => self.respond(
                        txn,
                        Ok(AmfValue::object([
                            ("level", AmfValue::from("status")),
                            ("call", AmfValue::Number(f64::from(id))),
                        ])),
                    ),
                    Err((sip_code, reason)) => {
                        let description = match sip_code {
                            Some(c) => format!("the call failed: {c} {reason}"),
                            None => format!("the call failed: {reason}"),
                        };
                        self.respond(
                            txn,
                            Err(crate::control::PhoneFailure {
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
                let active = self.lines.active_id() == Some(id);
                self.update_line(id, |l| l.media = Some(bridge.clone()));
                if active {
                    self.media_transport()
                        .do_send(ToClient::Media(Some(bridge)));
                }
            }
            CallNotice::Ended => {
                self.remove_line(id);
                self.three_way_call_ended(ctx, id);
                if (self.shutting_down || self.draining) && self.lines.is_empty() {
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
        if self.lines.by_inbound_call_id(&message.call_id).is_some() {
            return; // a retransmission, before the call's actor took over
        }
        if self.closing || !self.connected {
            refuse(480, "Temporarily Unavailable");
            return;
        }
        if let Some(why) = shared.settings.sip.srtp_refusal(transport) {
            info!(conn = self.id, call_id = %message.call_id, %why, "incoming call refused");
            refuse(488, "Not Acceptable Here (SRTP required over TLS only)");
            return;
        }
        // One call rings at a time, and a one-line phone has no call waiting.
        let busy = self.lines.ringing().is_some()
            || self.lines.len() >= shared.settings.sip.lines
            || self
                .lines
                .iter()
                .any(|l| l.direction == CallDirection::Outbound && !l.is_up());
        if busy {
            info!(conn = self.id, call_id = %message.call_id, lines = self.lines.len(),
                  "incoming call refused: busy");
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
        let mut rtp = match RtpPorts::allocate(m.address, m.rtp_port_min, m.rtp_port_max) {
            Ok(rtp) => rtp,
            Err(e) => {
                warn!(conn = self.id, error = %e, "incoming call refused: no RTP port");
                refuse(503, "Service Unavailable");
                return;
            }
        };
        let user = self.implicit.as_ref().map_or("sono", |(u, _)| u.as_str());
        let secure = request_uri_is_sips(&message);
        let mut config = inbound_config(&shared, user, rtp.port(), transport, secure);
        prefer_client_codec(&mut config.media, self.preferred_codec());
        config.media.video = self.video_media(&mut rtp, config.media.srtp.is_some());
        let id = self.lines.next_id();
        let call_id = message.call_id.clone();
        if !self.lines.is_empty() {
            info!(conn = self.id, %call_id, call = id, "call waiting");
        }
        let call = Call::start_inbound(
            (self.id, id),
            ctx.address().recipient(),
            self.call_media(),
            shared.clone(),
            message,
            source,
            config,
            rtp,
        );
        // The remote URI comes with the call's `Sono.Call.Incoming`.
        let mut line = Line::new(id, call, CallDirection::Inbound, String::new());
        line.inbound_call_id = Some(call_id);
        self.shared.metrics.call_phase(None, line.phase());
        self.lines.add(line);
    }
}
