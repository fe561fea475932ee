//! An outbound call, UAC side, sans-I/O: the INVITE with our SDP offer
//! (RFC 3261 §13.2, RFC 3264), provisional and final responses, a digest
//! retry on 401/407 (§22.2), ACK for 2xx sent by the core (§13.2.2.4) and
//! re-sent for retransmitted 2xx, CANCEL before the answer (§9.1: only after a
//! provisional), BYE after it (§15), and the requests the peer sends inside the
//! dialog: BYE, re-INVITE (answered with our SDP, 2xx retransmitted until ACK,
//! §13.3.1.4), OPTIONS, INFO, and transfers both ways (REFER and NOTIFY,
//! RFC 3515, through [`Transfers`]); anything else 501 (§8.2.1).
//!
//! Bytes and time go in ([`OutboundCall::handle_message`],
//! [`OutboundCall::hangup`], [`OutboundCall::handle_timeout`]); datagrams,
//! [`CallEvent`]s and the next deadline come out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::Request;

use crate::dial_plan::{DialPlan, TargetGuard};
use crate::dialog::{strip_uri_headers, with_lr, Dialog, RequestContext};
use crate::dialog_server::{DialogOutcome, DialogServer};
use crate::digest::{Challenge, Credentials, DigestSession};
use crate::in_dialog::Bye;
use crate::message::Received;
use crate::mid_call::{MidCall, MidCallCore, MidCallEvent, MidCallParts};
use crate::reoffer::ReofferOutcome;
use crate::response::{header_values, ALLOW};
use crate::sdp::{LocalMedia, Negotiated, SessionDescription};
use crate::transaction::{ClientEvent, ClientTransaction, Timers};
use crate::transfer::TransferEvent;

pub use crate::ids::{random_token, BRANCH_COOKIE};
pub use crate::transmit::{Transmit, Transport};

/// Everything the call needs to know before it starts.
#[derive(Debug, Clone)]
pub struct OutboundCallConfig {
    /// The dialled URI: Request-URI and To.
    pub target: String,
    /// Our From, as a name-addr without tag: `"Alice" <sip:alice@example.com>`.
    pub from: String,
    /// Our Contact URI: `sip:alice@192.0.2.1:5060`.
    pub contact: String,
    /// Via sent-by: `192.0.2.1:5060`.
    pub via_sent_by: String,
    /// Where the INVITE goes: the outbound proxy or the target itself.
    pub next_hop: SocketAddr,
    /// The outbound proxy's URI, sent as a Route (loose routing) on every request.
    pub outbound_proxy: Option<String>,
    pub user_agent: String,
    pub media: LocalMedia,
    pub timers: Timers,
    /// UDP, or TCP when the target asked for `transport=tcp`.
    pub transport: Transport,
    /// Whose 401/407 challenges our credentials answer.
    pub auth: Auth,
    /// Judges where requests inside the dialog would go (a Contact or
    /// Record-Route of the peer's choosing); `None` trusts the peer.
    pub dial_plan: Option<DialPlan>,
    /// Call-ID; random when empty.
    pub call_id: String,
    /// Header fields the INVITE carries besides ours: `Referred-By` and
    /// `Replaces` when a peer's REFER asked for the call (RFC 3515 §2.4.2,
    /// RFC 3891).
    pub extra_headers: Vec<(String, String)>,
}

/// Whom our credentials answer. A challenge is a request for them: answered
/// blindly, anyone we call could collect a digest of our password for a
/// realm of its choosing, or relay a real registrar's nonce to us.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// No credentials: a challenge ends the call with its code.
    #[default]
    None,
    /// Challenges naming one of `realms` and coming from the next hop.
    Realms {
        credentials: Credentials,
        realms: Vec<String>,
    },
    /// Credentials exist, but not for this call's next hop (the reason).
    Withheld(String),
}

/// What the call's user (the `Call` actor) must hear.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A provisional response (100–199).
    Progress { code: u16, reason: String },
    /// A 2xx with a usable SDP answer: the call is up.
    Answered {
        code: u16,
        reason: String,
        media: Negotiated,
    },
    /// The peer changed the media with a re-INVITE.
    MediaChanged(Negotiated),
    /// What our re-INVITE to hold or resume came to (settled or refused;
    /// one that ends the call ends it with [`CallEvent::Ended`]).
    Reoffer(ReofferOutcome),
    /// How our transfer of the peer goes, or the peer's wish that we call
    /// someone else (its REFER, accepted: the dial plan allows the target).
    /// A transfer of ours that succeeded ends the call with
    /// [`CallEvent::Ended`] (reason "transferred") after its last progress.
    Transfer(TransferEvent),
    /// The peer named a target (Contact, Record-Route) outside the dial
    /// plan; nothing was sent there.
    TargetRefused { target: String, reason: String },
    /// A 401/407 our credentials may not answer (the reason); the call
    /// fails with its code.
    ChallengeRefused(String),
    /// The call is over. `code` is the SIP status that ended it, if one did.
    Ended {
        code: Option<u16>,
        reason: String,
        /// Whether the call had been answered.
        answered: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent; no final response yet.
    Inviting,
    Confirmed,
    /// Over for the user: failed, refused, or hung up by either side. Our
    /// BYE's transaction may still run; its outcome changes nothing the
    /// user needs to know, so the user is not kept waiting for it (64·T1
    /// when the peer is gone).
    Ended,
}

#[derive(Debug)]
pub struct OutboundCall {
    config: OutboundCallConfig,
    call_id: String,
    local_tag: String,
    phase: Phase,
    invite: ClientTransaction,
    invite_branch: String,
    invite_seq: u32,
    /// Challenges answered so far (at most two).
    auth_attempts: u8,
    provisional_seen: bool,
    hangup_requested: bool,
    cancel: Option<ClientTransaction>,
    dialog: Option<Dialog>,
    /// The ACK for our 2xx, re-sent for each retransmitted 2xx.
    ack: Option<Transmit>,
    bye: Option<Bye>,
    /// INVITEs superseded by a retry with credentials: they still ACK and
    /// absorb retransmitted challenges until timer D.
    challenged: Vec<ClientTransaction>,
    /// BYEs for 2xx from other forks than the one we kept.
    stray_byes: Vec<Bye>,
    /// Answers the peer's requests inside the dialog.
    server: DialogServer,
    /// Hold, resume and transfers (see [`MidCallCore`]).
    mid: MidCall,
    /// The 2xx named a target outside the dial plan: it is never ACKed.
    target_refused: bool,
    answered: bool,
    transmit: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
}

impl OutboundCall {
    /// Builds and queues the INVITE.
    pub fn new(mut config: OutboundCallConfig, now: Instant) -> Result<OutboundCall, String> {
        // URI headers have no place in a Request-URI or To (§19.1.1 table 1).
        config.target = strip_uri_headers(&config.target);
        let call_id = if config.call_id.is_empty() {
            format!("{}@sono", random_token())
        } else {
            config.call_id.clone()
        };
        let local_tag = random_token();
        let invite_branch = format!("{BRANCH_COOKIE}{}", random_token());
        let request = invite_request(&config, &call_id, &local_tag, &invite_branch, 1, None)?;
        let reliable = config.transport.is_reliable();
        let invite = ClientTransaction::new(request, reliable, config.timers, now);
        let config_timers = config.timers;
        let server = DialogServer::new(
            config.timers,
            config.contact.clone(),
            local_tag.clone(),
            config.media.clone(),
            config.transport,
        );
        let mut call = OutboundCall {
            config,
            call_id,
            local_tag,
            phase: Phase::Inviting,
            invite,
            invite_branch,
            invite_seq: 1,
            auth_attempts: 0,
            provisional_seen: false,
            hangup_requested: false,
            cancel: None,
            dialog: None,
            ack: None,
            bye: None,
            challenged: Vec::new(),
            stray_byes: Vec::new(),
            server,
            mid: MidCall::new(config_timers, true),
            target_refused: false,
            answered: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        };
        call.drain();
        Ok(call)
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn transport(&self) -> Transport {
        self.config.transport
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// True once the call has ended and no transaction needs the core any more.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
            && self.invite.is_terminated()
            && self.cancel.as_ref().is_none_or(|c| c.is_terminated())
            && self.bye.as_ref().is_none_or(Bye::is_terminated)
            && self.challenged.is_empty()
            && self.stray_byes.is_empty()
            && self.server.is_idle()
            && self.mid.is_idle()
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Ended, and every request we sent has its final answer (or gave up):
    /// what a graceful shutdown waits for, while the transactions' last
    /// timers (absorbing retransmissions) need not be waited for.
    pub fn is_settled(&self) -> bool {
        self.phase == Phase::Ended
            && self.invite.has_final()
            && self
                .cancel
                .as_ref()
                .is_none_or(ClientTransaction::has_final)
            && self.bye.as_ref().is_none_or(Bye::is_answered)
            && self.stray_byes.iter().all(Bye::is_answered)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut all = vec![self.invite.poll_timeout()];
        all.extend(self.cancel.as_ref().map(|c| c.poll_timeout()));
        all.push(self.bye.as_ref().and_then(Bye::poll_timeout));
        all.extend(self.challenged.iter().map(ClientTransaction::poll_timeout));
        all.extend(self.stray_byes.iter().map(Bye::poll_timeout));
        all.push(self.server.poll_timeout());
        all.push(self.mid.poll_timeout());
        all.into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.invite.handle_timeout(now);
        if let Some(c) = &mut self.cancel {
            c.handle_timeout(now);
        }
        if let Some(b) = &mut self.bye {
            b.handle_timeout(now);
        }
        for t in &mut self.challenged {
            t.handle_timeout(now);
        }
        for b in &mut self.stray_byes {
            b.handle_timeout(now);
        }
        if self.server.handle_timeout(now, &mut self.transmit) == DialogOutcome::AckTimeout {
            self.send_bye(now);
            self.end(None, "no ACK for our 2xx to the re-INVITE".into());
        }
        self.mid_call_timeout(now);
        self.drain();
    }

    /// The client hung up: CANCEL before the answer (once a provisional
    /// arrived), BYE after it.
    pub fn hangup(&mut self, now: Instant) {
        match self.phase {
            Phase::Inviting => {
                self.hangup_requested = true;
                if self.provisional_seen {
                    self.send_cancel(now);
                }
            }
            Phase::Confirmed => {
                self.send_bye(now);
                self.end(None, "hung up".into());
            }
            Phase::Ended => {}
        }
        self.drain();
    }

    /// The transport could not deliver to the next hop (no connection, or a
    /// TLS peer whose certificate failed; `reason` says which). An INVITE
    /// still unanswered fails as with 503 (§8.1.3.1); an established call
    /// learns of it from its next transaction.
    pub fn transport_failed(&mut self, reason: &str) {
        if self.phase == Phase::Inviting && !self.provisional_seen {
            self.invite.handle_transport_error();
            while self.invite.poll_event().is_some() {}
            self.invite_failed(503, reason);
        }
        self.drain();
    }

    /// A message the transport routed to this call (same Call-ID).
    pub fn handle_message(&mut self, message: Received, source: SocketAddr, now: Instant) {
        if message.is_request() {
            self.handle_request(message, source, now);
        } else {
            self.handle_response(message, source, now);
        }
        self.drain();
    }

    fn handle_response(&mut self, rx: Received, source: SocketAddr, now: Instant) {
        let Some(response) = rx.response().cloned() else {
            return;
        };
        let branch = rx.branch().to_owned();
        if self.mid_call_response(&rx, now) {
            return;
        }
        match rx.cseq_method.as_str() {
            "INVITE" if branch == self.invite_branch => {
                self.invite.handle_response(response, now);
                let mut delivered = false;
                while let Some(event) = self.invite.poll_event() {
                    match event {
                        ClientEvent::Response(_) => delivered = true,
                        ClientEvent::Timeout => self.invite_failed(408, "Request Timeout"),
                        ClientEvent::TransportError => self.invite_failed(503, "transport error"),
                    }
                }
                // A 2xx retransmitted after the transaction ended (timer M
                // over) is not delivered by it, but must still be ACKed.
                if delivered || (200..300).contains(&rx.status_code().unwrap_or(0)) {
                    self.on_invite_response(&rx, source, now);
                }
            }
            "INVITE" => {
                // A retransmitted challenge to an INVITE we already retried.
                for t in &mut self.challenged {
                    if branch_of(t.request()) == branch {
                        t.handle_response(response.clone(), now);
                    }
                }
            }
            "CANCEL" => {
                if let Some(c) = &mut self.cancel {
                    c.handle_response(response, now);
                    while c.poll_event().is_some() {}
                }
            }
            "BYE" => {
                if let Some(b) = &mut self.bye {
                    if branch_of(b.request()) == branch {
                        // Its outcome is read in drain().
                        b.handle_response(response, now);
                        return;
                    }
                }
                for b in &mut self.stray_byes {
                    if branch_of(b.request()) == branch {
                        b.handle_response(response.clone(), now);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, rx: &Received, source: SocketAddr, now: Instant) {
        let code = rx.status_code().unwrap_or(0);
        let reason = rx.reason_phrase.clone().unwrap_or_default();
        if code < 200 {
            if self.phase != Phase::Inviting {
                return;
            }
            self.provisional_seen = true;
            self.events.push_back(CallEvent::Progress { code, reason });
            if self.hangup_requested && self.cancel.is_none() {
                self.send_cancel(now);
            }
            return;
        }
        if code < 300 {
            self.on_2xx(rx, code, reason, now);
            return;
        }
        if self.phase != Phase::Inviting {
            return;
        }
        if (code == 401 || code == 407) && !self.hangup_requested {
            match self.retry_with_auth(rx, source, now) {
                Ok(()) => return,
                Err(Some(why)) => {
                    self.events
                        .push_back(CallEvent::ChallengeRefused(why.clone()));
                    let reason = if reason.is_empty() {
                        format!("{code}: {why}")
                    } else {
                        format!("{reason} ({why})")
                    };
                    self.invite_failed(code, &reason);
                    return;
                }
                Err(None) => {}
            }
        }
        self.invite_failed(code, &reason);
    }

    fn on_2xx(&mut self, rx: &Received, code: u16, reason: String, now: Instant) {
        if let Some(d) = &self.dialog {
            if rx.to_tag.as_deref() == Some(d.remote_tag.as_str()) {
                // A retransmission: our ACK got lost.
                if let Some(ack) = &self.ack {
                    self.transmit.push_back(ack.clone());
                }
            } else {
                self.reject_stray_2xx(rx, now);
            }
            return;
        }
        if self.target_refused {
            // A retransmission of the 2xx whose target we refused.
            return;
        }
        let Some(dialog) = self.dialog_of(rx) else {
            // No To tag or no Contact: we cannot even ACK it properly.
            self.invite_failed(502, "2xx without To tag or Contact");
            return;
        };
        if let Err((target, why)) = self.judge_target(&dialog) {
            // Not even the ACK goes there: the call ends here, and the peer,
            // unacknowledged, gives up on its own (§13.3.1.4).
            self.target_refused = true;
            let reason = format!("the peer's target {target} is outside the dial plan ({why}); nothing was sent there");
            self.events.push_back(CallEvent::TargetRefused {
                target,
                reason: why,
            });
            self.invite_failed(403, &reason);
            return;
        }
        let ack = dialog.request(
            &request_context(&self.config),
            "ACK",
            self.invite_seq,
            &[],
            None,
        );
        self.dialog = Some(dialog);
        self.transmit.push_back(ack.clone());
        self.ack = Some(ack);
        self.answered = true;
        if self.hangup_requested {
            self.send_bye(now);
            self.end(None, "hung up".into());
            return;
        }
        let body = rx
            .response()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default();
        let settled = SessionDescription::parse(&body)
            .map_err(|e| e.to_string())
            .and_then(|sdp| self.config.media.settle(&sdp).map_err(|e| e.to_string()));
        match settled {
            Ok(media) => {
                self.phase = Phase::Confirmed;
                self.server.settled(&media);
                self.events.push_back(CallEvent::Answered {
                    code,
                    reason,
                    media,
                });
            }
            Err(e) => {
                self.send_bye(now);
                self.end(Some(488), format!("unusable SDP answer: {e}"));
            }
        }
    }

    /// The dialog a 2xx (from any fork) establishes (§12.1.2).
    fn dialog_of(&self, rx: &Received) -> Option<Dialog> {
        let target = &self.config.target;
        let to = format!("<{target}>");
        Dialog::uac(
            rx,
            &self.local_tag,
            &self.config.from,
            &to,
            self.invite_seq,
            target,
        )
    }

    /// Where requests inside `dialog` would be sent, if the dial plan (or
    /// the address the INVITE went to) allows it.
    fn judge_target(&self, dialog: &Dialog) -> Result<(), (String, String)> {
        let Some(plan) = &self.config.dial_plan else {
            return Ok(());
        };
        let guard = TargetGuard {
            plan,
            trusted: self.config.next_hop,
        };
        guard.judge(dialog, &request_context(&self.config))
    }

    fn reject_stray_2xx(&mut self, rx: &Received, now: Instant) {
        let Some(mut other) = self.dialog_of(rx) else {
            return;
        };
        if let Err((target, reason)) = self.judge_target(&other) {
            self.events
                .push_back(CallEvent::TargetRefused { target, reason });
            return;
        }
        let ctx = request_context(&self.config);
        let ack = other.request(&ctx, "ACK", self.invite_seq, &[], None);
        self.transmit.push_back(ack);
        if let Some(bye) = Bye::send(&mut other, &ctx, self.config.timers, now) {
            self.stray_byes.push(bye);
        }
    }

    /// Resends the INVITE with credentials. `Err(None)`: nothing to answer
    /// with (no credentials, no challenge we can read, or tried enough);
    /// `Err(Some(why))`: credentials withheld from this challenger.
    fn retry_with_auth(
        &mut self,
        rx: &Received,
        source: SocketAddr,
        now: Instant,
    ) -> Result<(), Option<String>> {
        let (credentials, realms) = match &self.config.auth {
            Auth::None => return Err(None),
            Auth::Withheld(why) => return Err(Some(format!("credentials not sent: {why}"))),
            Auth::Realms {
                credentials,
                realms,
            } => (credentials.clone(), realms),
        };
        if self.auth_attempts >= 2 {
            return Err(None);
        }
        let code = rx.status_code().unwrap_or(0);
        let (challenge_header, answer_header) = if code == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Some(response) = rx.response() else {
            return Err(None);
        };
        let challenges: Vec<Challenge> = header_values(&response.headers, challenge_header)
            .iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        if challenges.is_empty() {
            return Err(None);
        }
        if source != self.config.next_hop {
            return Err(Some(format!(
                "credentials not sent: the challenge came from {source}, not from {} where the INVITE went",
                self.config.next_hop
            )));
        }
        let Some(challenge) = challenges
            .iter()
            .find(|c| realms.iter().any(|r| r == &c.realm))
            .cloned()
        else {
            let named: Vec<String> = challenges
                .iter()
                .map(|c| format!("{:?}", c.realm))
                .collect();
            return Err(Some(format!(
                "credentials not sent: realm {} is not in sip.auth_realms",
                named.join(", ")
            )));
        };
        let mut session = DigestSession::new(challenge);
        let authorization =
            session.authorize(&credentials, "INVITE", &self.config.target, &random_token());
        self.auth_attempts += 1;
        self.invite_seq += 1;
        self.invite_branch = format!("{BRANCH_COOKIE}{}", random_token());
        let Ok(request) = invite_request(
            &self.config,
            &self.call_id,
            &self.local_tag,
            &self.invite_branch,
            self.invite_seq,
            Some((answer_header, &authorization)),
        ) else {
            return Err(None);
        };
        let reliable = self.config.transport.is_reliable();
        let retry = ClientTransaction::new(request, reliable, self.config.timers, now);
        let challenged = std::mem::replace(&mut self.invite, retry);
        self.challenged.push(challenged);
        self.provisional_seen = false;
        Ok(())
    }

    fn invite_failed(&mut self, code: u16, reason: &str) {
        if self.phase == Phase::Inviting {
            let reason = if reason.is_empty() {
                default_reason(code).to_owned()
            } else {
                reason.to_owned()
            };
            self.end(Some(code), reason);
        }
    }

    fn end(&mut self, code: Option<u16>, reason: String) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.events.push_back(CallEvent::Ended {
            code,
            reason,
            answered: self.answered,
        });
    }

    fn send_cancel(&mut self, now: Instant) {
        let request = self.invite.request();
        let mut text = format!("CANCEL {} SIP/2.0\r\n", request.uri);
        text.push_str(&format!(
            "Via: SIP/2.0/{} {};branch={};rport\r\n",
            self.config.transport, self.config.via_sent_by, self.invite_branch
        ));
        text.push_str("Max-Forwards: 70\r\n");
        for name in ["Route", "From", "To", "Call-ID"] {
            for v in header_values(&request.headers, name) {
                text.push_str(&format!("{name}: {v}\r\n"));
            }
        }
        text.push_str(&format!("CSeq: {} CANCEL\r\n", self.invite_seq));
        text.push_str(&format!("User-Agent: {}\r\n", self.config.user_agent));
        text.push_str("Content-Length: 0\r\n\r\n");
        if let Ok(cancel) = Request::try_from(text.as_bytes()) {
            self.cancel = Some(ClientTransaction::new(
                cancel,
                self.config.transport.is_reliable(),
                self.config.timers,
                now,
            ));
        }
    }

    fn send_bye(&mut self, now: Instant) {
        if self.bye.is_some() {
            return;
        }
        let Some(dialog) = &mut self.dialog else {
            return;
        };
        let ctx = request_context(&self.config);
        self.bye = Bye::send(dialog, &ctx, self.config.timers, now);
    }

    fn handle_request(&mut self, rx: Received, source: SocketAddr, now: Instant) {
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
            DialogOutcome::RemoteBye => self.end(None, "the other party hung up (BYE)".into()),
            DialogOutcome::MediaChanged(media) => {
                self.events.push_back(CallEvent::MediaChanged(media))
            }
            DialogOutcome::Unanswered => self.mid_call_request(&rx, source, now),
            DialogOutcome::Nothing | DialogOutcome::Acknowledged | DialogOutcome::AckTimeout => {}
        }
    }

    /// Moves every transaction's datagrams to the outbox and forgets ended ones.
    fn drain(&mut self) {
        for t in &mut self.challenged {
            while let Some(bytes) = t.poll_transmit() {
                self.transmit.push_back(Transmit {
                    to: self.config.next_hop,
                    bytes,
                });
            }
            while t.poll_event().is_some() {}
        }
        self.challenged.retain(|t| !t.is_terminated());
        for b in &mut self.stray_byes {
            b.drain(&mut self.transmit);
        }
        self.stray_byes.retain(|b| !b.is_terminated());
        while let Some(bytes) = self.invite.poll_transmit() {
            self.transmit.push_back(Transmit {
                to: self.config.next_hop,
                bytes,
            });
        }
        while let Some(event) = self.invite.poll_event() {
            match event {
                ClientEvent::Timeout => self.invite_failed(408, "Request Timeout"),
                ClientEvent::TransportError => self.invite_failed(503, "transport error"),
                ClientEvent::Response(_) => {}
            }
        }
        if let Some(c) = &mut self.cancel {
            while let Some(bytes) = c.poll_transmit() {
                self.transmit.push_back(Transmit {
                    to: self.config.next_hop,
                    bytes,
                });
            }
            while c.poll_event().is_some() {}
        }
        if let Some(b) = &mut self.bye {
            b.drain(&mut self.transmit);
        }
        self.server.drain(&mut self.transmit);
    }
}

impl MidCallCore for OutboundCall {
    fn parts(&mut self) -> MidCallParts<'_> {
        MidCallParts {
            dialog: self
                .dialog
                .as_mut()
                .filter(|_| self.phase == Phase::Confirmed),
            server: &mut self.server,
            mid: &mut self.mid,
            ctx: request_context(&self.config),
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
        crate::dialog::uri_of(&self.config.from).to_owned()
    }

    fn mid_call_event(&mut self, event: MidCallEvent) {
        self.events.push_back(match event {
            MidCallEvent::Reoffer(o) => CallEvent::Reoffer(o),
            MidCallEvent::Transfer(t) => CallEvent::Transfer(t),
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

pub(crate) fn branch_of(request: &Request) -> String {
    header_values(&request.headers, "Via")
        .first()
        .and_then(|v| crate::via::Via::parse(crate::message::first_element(v)).ok())
        .map(|v| v.branch)
        .unwrap_or_default()
}

fn default_reason(code: u16) -> &'static str {
    match code {
        408 => "Request Timeout",
        487 => "Request Terminated",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn invite_request(
    config: &OutboundCallConfig,
    call_id: &str,
    local_tag: &str,
    branch: &str,
    seq: u32,
    authorization: Option<(&str, &str)>,
) -> Result<Request, String> {
    let sdp = config.media.offer().to_text();
    let target = &config.target;
    let mut text = format!("INVITE {target} SIP/2.0\r\n");
    text.push_str(&format!(
        "Via: SIP/2.0/{} {};branch={branch};rport\r\n",
        config.transport, config.via_sent_by
    ));
    text.push_str("Max-Forwards: 70\r\n");
    if let Some(proxy) = &config.outbound_proxy {
        text.push_str(&format!("Route: <{}>\r\n", with_lr(proxy)));
    }
    text.push_str(&format!("From: {};tag={local_tag}\r\n", config.from));
    text.push_str(&format!("To: <{target}>\r\n"));
    text.push_str(&format!("Call-ID: {call_id}\r\n"));
    text.push_str(&format!("CSeq: {seq} INVITE\r\n"));
    text.push_str(&format!("Contact: <{}>\r\n", config.contact));
    text.push_str(&format!("Allow: {ALLOW}\r\n"));
    text.push_str(&format!("User-Agent: {}\r\n", config.user_agent));
    if let Some((name, value)) = authorization {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    for (name, value) in &config.extra_headers {
        // A header field must not carry a line break into the request.
        if !value.contains(['\r', '\n']) && !name.contains(['\r', '\n', ':']) {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    text.push_str(&format!(
        "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    Request::try_from(text.as_bytes()).map_err(|e| format!("cannot build the INVITE: {e}"))
}

/// How the call's requests inside its dialog are stamped and routed.
fn request_context(config: &OutboundCallConfig) -> RequestContext<'_> {
    RequestContext {
        via_sent_by: &config.via_sent_by,
        user_agent: &config.user_agent,
        outbound_proxy: config.outbound_proxy.as_deref(),
        fallback: config.next_hop,
        transport: config.transport,
    }
}
