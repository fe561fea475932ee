//! An inbound call, UAS side, sans-I/O (RFC 3261 §13.3): the INVITE server
//! transaction answers 100 Trying at once; the user rings (180), accepts (200
//! with our SDP answer, or our offer when the INVITE had none, retransmitted
//! until the ACK, §13.3.1.4) or rejects (a final the transaction retransmits
//! until its ACK, §17.2.1). A CANCEL before the answer gets 200 and the INVITE
//! 487 (§9.2). After the answer, the dialog's requests go to the
//! [`DialogServer`]; hanging up sends BYE. The registration issue wires it to
//! the RTMP client; it is complete and tested here.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::Request;

use crate::dial_plan::{DialPlan, TargetGuard};
use crate::dialog::{Dialog, RequestContext};
use crate::dialog_server::{DialogOutcome, DialogServer};
use crate::ids::random_token;
use crate::in_dialog::Bye;
use crate::message::Received;
use crate::mid_call::{MidCall, MidCallCore, MidCallEvent, MidCallParts};
use crate::reoffer::ReofferOutcome;
use crate::response::{response, response_text, ALLOW};
use crate::sdp::{LocalMedia, Negotiated, SessionDescription};
use crate::transaction::{ServerTransaction, Timers};
use crate::transfer::TransferEvent;
use crate::transmit::{Transmit, Transport};

#[derive(Debug, Clone)]
pub struct InboundCallConfig {
    /// Our Contact URI.
    pub contact: String,
    pub via_sent_by: String,
    pub user_agent: String,
    pub media: LocalMedia,
    pub timers: Timers,
    /// The transport the INVITE came on.
    pub transport: Transport,
    /// Judges where our requests inside the dialog would go when that is
    /// not where the INVITE came from; `None` trusts the caller.
    pub dial_plan: Option<DialPlan>,
}

/// What the call's user must hear.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    /// The ACK for our 2xx arrived: media may flow.
    Confirmed(Negotiated),
    MediaChanged(Negotiated),
    /// What our re-INVITE to hold or resume came to.
    Reoffer(ReofferOutcome),
    /// A transfer, either way (see `CallEvent::Transfer`).
    Transfer(TransferEvent),
    /// The caller's Contact or Record-Route is outside the dial plan: the
    /// call was refused (403) before it rang.
    TargetRefused {
        target: String,
        reason: String,
    },
    Ended {
        code: Option<u16>,
        reason: String,
        answered: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not answered yet.
    Offered,
    /// 2xx sent, waiting for its ACK.
    Accepted,
    Confirmed,
    /// Over for the user; our BYE's transaction may still run on its own.
    Ended,
}

#[derive(Debug)]
pub struct InboundCall {
    config: InboundCallConfig,
    invite: Received,
    reply_to: SocketAddr,
    transaction: ServerTransaction,
    local_tag: String,
    /// What the offer settled, when the INVITE carried one.
    negotiated: Option<Negotiated>,
    answer_sdp: Option<String>,
    phase: Phase,
    dialog: Option<Dialog>,
    server: DialogServer,
    /// Hold, resume and transfers (see [`MidCallCore`]).
    mid: MidCall,
    bye: Option<Bye>,
    answered: bool,
    transmit: VecDeque<Transmit>,
    events: VecDeque<InboundEvent>,
}

/// The user part of a request's Request-URI (`None` for a response or a
/// URI without one).
pub fn request_uri_user(message: &Received) -> Option<String> {
    let user = message.request()?.uri.auth.as_ref()?.user.clone();
    (!user.is_empty()).then_some(user)
}

/// Whether a request's Request-URI is `sips:` (RFC 3261 §19.1.1): it must
/// have come over TLS, and the dialog it makes is secure (RFC 5630 §3.1).
pub fn request_uri_is_sips(message: &Received) -> bool {
    message.request().is_some_and(|r| {
        r.uri
            .scheme
            .as_ref()
            .is_some_and(|s| matches!(s, rsip::Scheme::Sips))
    })
}

impl InboundCall {
    /// Takes a new INVITE (already checked by [`crate::message::refusal`]):
    /// answers 100 Trying, and 488 at once when its offer has no codec of ours.
    pub fn new(
        invite: Received,
        source: SocketAddr,
        config: InboundCallConfig,
        now: Instant,
    ) -> InboundCall {
        let local_tag = random_token();
        let reply_to = invite.top_via.response_address(source);
        let trying = response(&invite, reply_to, 100, "Trying", None, &[], None);
        let request = invite.request().cloned().unwrap_or_else(empty_request);
        let reliable = config.transport.is_reliable();
        let transaction = ServerTransaction::new(&request, trying, reliable, config.timers);
        let server = DialogServer::new(
            config.timers,
            config.contact.clone(),
            local_tag.clone(),
            config.media.clone(),
            config.transport,
        );
        let mut call = InboundCall {
            invite,
            reply_to,
            transaction,
            local_tag,
            negotiated: None,
            answer_sdp: None,
            phase: Phase::Offered,
            dialog: None,
            server,
            // The caller owns the Call-ID (§14.1's longer glare wait is theirs).
            mid: MidCall::new(config.timers, false),
            bye: None,
            answered: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        let body = call
            .invite
            .request()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default();
        if body.trim().is_empty() {
            // No offer: our 2xx will offer, the ACK answers (§13.2.1).
            call.answer_sdp = Some(call.config.media.offer().to_text());
        } else {
            let answered = SessionDescription::parse(&body)
                .map_err(|e| e.to_string())
                .and_then(|offer| call.config.media.answer(&offer).map_err(|e| e.to_string()));
            match answered {
                Ok((answer, negotiated)) => {
                    call.answer_sdp = Some(answer.to_text());
                    call.negotiated = Some(negotiated);
                }
                Err(e) => call.reject(488, &format!("Not Acceptable Here ({e})"), now),
            }
        }
        if let Err((target, reason)) = call.judge_target(source) {
            call.events.push_back(InboundEvent::TargetRefused {
                target: target.clone(),
                reason: reason.clone(),
            });
            call.reject(
                403,
                &format!("Forbidden (our requests would go to {target}, outside the dial plan)"),
                now,
            );
        }
        call.drain();
        call
    }

    /// Where our BYE would go (the first Record-Route, else the Contact),
    /// judged: the INVITE's source is trusted, anything else must pass the
    /// dial plan.
    fn judge_target(&self, source: SocketAddr) -> Result<(), (String, String)> {
        let Some(plan) = &self.config.dial_plan else {
            return Ok(());
        };
        let Some(dialog) = Dialog::uas(&self.invite, &self.local_tag) else {
            return Ok(());
        };
        let guard = TargetGuard {
            plan,
            trusted: source,
        };
        guard.judge(&dialog, &request_context(&self.config, self.reply_to))
    }

    pub fn call_id(&self) -> &str {
        &self.invite.call_id
    }

    /// The caller's From value (display name and URI), as they sent it.
    pub fn caller(&self) -> String {
        self.invite
            .request()
            .and_then(|r| crate::response::header_value(&r.headers, "From"))
            .map(|f| crate::dialog::without_tag(&f))
            .unwrap_or_default()
    }

    /// The caller's display name (unquoted) and URI, from its From.
    pub fn caller_parts(&self) -> (Option<String>, String) {
        let from = self.caller();
        match (from.find('<'), from.rfind('>')) {
            (Some(open), Some(close)) if open < close => {
                let name = from[..open].trim().trim_matches('"').trim();
                let name = (!name.is_empty()).then(|| name.replace("\\\"", "\""));
                (name, from[open + 1..close].to_owned())
            }
            _ => (
                None,
                from.split(';').next().unwrap_or_default().trim().to_owned(),
            ),
        }
    }

    /// The user part of the INVITE's Request-URI: whom the call is for.
    pub fn callee_user(&self) -> Option<String> {
        request_uri_user(&self.invite)
    }

    /// The transport the INVITE came on, which the call's answers use.
    pub fn transport(&self) -> Transport {
        self.config.transport
    }

    /// What the offer settled, if the INVITE carried one.
    pub fn offered_media(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<InboundEvent> {
        self.events.pop_front()
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Ended, and our BYE (if any) has its answer or gave up.
    pub fn is_settled(&self) -> bool {
        self.phase == Phase::Ended && self.bye.as_ref().is_none_or(Bye::is_answered)
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
            && self.transaction.is_terminated()
            && self.bye.as_ref().is_none_or(Bye::is_terminated)
            && self.server.is_idle()
            && self.mid.is_idle()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.transaction.poll_timeout(),
            self.bye.as_ref().and_then(Bye::poll_timeout),
            self.server.poll_timeout(),
            self.mid.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// 180 Ringing.
    pub fn ring(&mut self, now: Instant) {
        if self.phase == Phase::Offered {
            let contact = format!("<{}>", self.config.contact);
            if let Some(r) = response(
                &self.invite,
                self.reply_to,
                180,
                "Ringing",
                Some(&self.local_tag),
                &[("Contact", &contact)],
                None,
            ) {
                self.transaction.respond(&r, now);
            }
        }
        self.drain();
    }

    /// 200 OK with our SDP; the call is up once the ACK arrives.
    pub fn accept(&mut self, now: Instant) {
        if self.phase != Phase::Offered {
            return;
        }
        let Some(sdp) = self.answer_sdp.clone() else {
            return;
        };
        self.dialog = Dialog::uas(&self.invite, &self.local_tag);
        if self.dialog.is_none() {
            self.reject(400, "Bad Request (no usable Contact or From tag)", now);
            return;
        }
        self.server.send_2xx(
            &self.invite,
            self.reply_to,
            &sdp,
            &mut self.transaction,
            now,
            &mut self.transmit,
        );
        self.phase = Phase::Accepted;
        self.answered = true;
        self.drain();
    }

    /// A final failure response (400–699) before the answer.
    pub fn reject(&mut self, code: u16, reason: &str, now: Instant) {
        if self.phase != Phase::Offered {
            return;
        }
        let code = code.clamp(300, 699);
        let extra: &[(&str, &str)] = if code == 405 {
            &[("Allow", ALLOW)]
        } else {
            &[]
        };
        if let Some(r) = response(
            &self.invite,
            self.reply_to,
            code,
            reason,
            Some(&self.local_tag),
            extra,
            None,
        ) {
            self.transaction.respond(&r, now);
        }
        self.end(Some(code), reason.to_owned());
        self.drain();
    }

    /// The local user hangs up: 603 Decline before the answer, BYE after.
    pub fn hangup(&mut self, now: Instant) {
        match self.phase {
            Phase::Offered => self.reject(603, "Decline", now),
            Phase::Accepted | Phase::Confirmed => {
                self.send_bye(now);
                self.end(None, "hung up".into());
            }
            Phase::Ended => {}
        }
        self.drain();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transaction.handle_timeout(now);
        if let Some(b) = &mut self.bye {
            b.handle_timeout(now);
        }
        if self.server.handle_timeout(now, &mut self.transmit) == DialogOutcome::AckTimeout {
            self.send_bye(now);
            self.end(None, "no ACK for our 2xx".into());
        }
        self.mid_call_timeout(now);
        self.drain();
    }

    pub fn handle_message(&mut self, rx: Received, source: SocketAddr, now: Instant) {
        if let Some(request) = rx.request().cloned() {
            self.handle_request(rx, &request, source, now);
        } else if !self.mid_call_response(&rx, now) && rx.cseq_method == "BYE" {
            if let Some(b) = &mut self.bye {
                if let Some(r) = rx.response() {
                    b.handle_response(r.clone(), now);
                }
            }
        }
        self.drain();
    }

    fn handle_request(
        &mut self,
        rx: Received,
        request: &Request,
        source: SocketAddr,
        now: Instant,
    ) {
        let same_transaction = rx.top_via.branch == self.invite.top_via.branch;
        match rx.cseq_method.as_str() {
            // A retransmitted INVITE, or the ACK for a failure we sent.
            "INVITE" | "ACK"
                if same_transaction
                    && rx.cseq == self.invite.cseq
                    && self.phase != Phase::Accepted =>
            {
                self.transaction.handle_request(request, now);
                return;
            }
            "INVITE" if same_transaction => {
                self.transaction.handle_request(request, now);
                return;
            }
            "CANCEL" if same_transaction => {
                let to = rx.top_via.response_address(source);
                let ok = response_text(&rx, to, 200, "OK", Some(&self.local_tag), &[], None);
                self.transmit.push_back(Transmit {
                    to,
                    bytes: ok.into_bytes(),
                });
                if self.phase == Phase::Offered {
                    if let Some(r) = response(
                        &self.invite,
                        self.reply_to,
                        487,
                        "Request Terminated",
                        Some(&self.local_tag),
                        &[],
                        None,
                    ) {
                        self.transaction.respond(&r, now);
                    }
                    self.end(Some(487), "cancelled by the caller".into());
                }
                return;
            }
            _ => {}
        }
        // While our own offer is out, the peer's gets 491 (§14.2).
        let confirmed = self.phase == Phase::Confirmed && !self.mid.offer_pending();
        let outcome = self.server.handle_request(
            &rx,
            source,
            self.dialog.as_mut(),
            confirmed,
            now,
            &mut self.transmit,
        );
        match outcome {
            DialogOutcome::Acknowledged if self.phase == Phase::Accepted => {
                self.phase = Phase::Confirmed;
                // Without an offer in the INVITE the ACK carries the answer.
                let media = self.negotiated.clone().or_else(|| {
                    let body = String::from_utf8_lossy(&request.body).into_owned();
                    SessionDescription::parse(&body)
                        .ok()
                        .and_then(|sdp| self.config.media.settle(&sdp).ok())
                });
                match media {
                    Some(m) => {
                        self.server.settled(&m);
                        self.events.push_back(InboundEvent::Confirmed(m))
                    }
                    None => {
                        self.send_bye(now);
                        self.end(Some(488), "the ACK carried no usable SDP answer".into());
                    }
                }
            }
            DialogOutcome::RemoteBye => self.end(None, "the other party hung up (BYE)".into()),
            DialogOutcome::MediaChanged(m) => self.events.push_back(InboundEvent::MediaChanged(m)),
            DialogOutcome::Unanswered => self.mid_call_request(&rx, source, now),
            _ => {}
        }
    }

    fn send_bye(&mut self, now: Instant) {
        if self.bye.is_some() {
            return;
        }
        let ctx = request_context(&self.config, self.reply_to);
        let Some(dialog) = &mut self.dialog else {
            return;
        };
        self.bye = Bye::send(dialog, &ctx, self.config.timers, now);
    }

    fn end(&mut self, code: Option<u16>, reason: String) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.events.push_back(InboundEvent::Ended {
            code,
            reason,
            answered: self.answered,
        });
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.transaction.poll_transmit() {
            self.transmit.push_back(Transmit {
                to: self.reply_to,
                bytes,
            });
        }
        while self.transaction.poll_event().is_some() {}
        if let Some(b) = &mut self.bye {
            b.drain(&mut self.transmit);
        }
        self.server.drain(&mut self.transmit);
    }
}

impl MidCallCore for InboundCall {
    fn parts(&mut self) -> MidCallParts<'_> {
        MidCallParts {
            dialog: self
                .dialog
                .as_mut()
                .filter(|_| self.phase == Phase::Confirmed),
            server: &mut self.server,
            mid: &mut self.mid,
            ctx: request_context(&self.config, self.reply_to),
            contact: &self.config.contact,
            plan: self.config.dial_plan.as_ref(),
            out: &mut self.transmit,
        }
    }

    fn confirmed_dialog(&self) -> Option<&Dialog> {
        self.dialog
            .as_ref()
            .filter(|_| self.phase == Phase::Confirmed)
    }

    fn referred_by(&self) -> String {
        self.config.contact.clone()
    }

    fn mid_call_event(&mut self, event: MidCallEvent) {
        self.events.push_back(match event {
            MidCallEvent::Reoffer(o) => InboundEvent::Reoffer(o),
            MidCallEvent::Transfer(t) => InboundEvent::Transfer(t),
        });
    }

    fn end_with_bye(&mut self, code: Option<u16>, reason: String, now: Instant) {
        self.send_bye(now);
        self.end(code, reason);
    }

    fn drain_all(&mut self) {
        self.drain();
    }
}

/// How our requests inside the dialog are stamped; a Contact with a host
/// name is reached where the INVITE came from.
fn request_context(config: &InboundCallConfig, reply_to: SocketAddr) -> RequestContext<'_> {
    RequestContext {
        via_sent_by: &config.via_sent_by,
        user_agent: &config.user_agent,
        outbound_proxy: None,
        fallback: reply_to,
        transport: config.transport,
    }
}

fn empty_request() -> Request {
    Request {
        method: rsip::Method::Invite,
        uri: rsip::Uri::default(),
        version: rsip::Version::V2,
        headers: Default::default(),
        body: Vec::new(),
    }
}
