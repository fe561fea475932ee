//! The answering half of an INVITE dialog, shared by outbound and inbound
//! calls: the peer's requests inside the dialog (RFC 3261 §12.2.2) each get a
//! server transaction (§17.2) so retransmissions are answered again; BYE ends
//! the call (§15.1.2), a re-INVITE is answered with our SDP (§14.2, RFC 3264
//! §8: hold, refresh) and its 2xx retransmitted until the ACK (§13.3.1.4),
//! OPTIONS and INFO get 200, REFER and NOTIFY are left to the call core's
//! transfers (RFC 3515), anything else 501; out-of-order CSeq 500,
//! unknown Require 420, non-SDP bodies 415, strangers 481.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::Request;

use crate::dialog::Dialog;
use crate::message::{refusal, Received};
use crate::outbound_call::Transmit;
use crate::response::{response, ALLOW};
use crate::sdp::{Direction, LocalMedia, Negotiated, SdpError, SessionDescription};
use crate::transaction::{ServerTransaction, Timers};
use crate::transmit::Transport;

/// A 2xx to an INVITE, retransmitted until its ACK (§13.3.1.4).
#[derive(Debug)]
struct Pending2xx {
    cseq: u32,
    bytes: Vec<u8>,
    to: SocketAddr,
    next_at: Instant,
    interval: Duration,
    give_up_at: Instant,
}

#[derive(Debug)]
struct Server {
    branch: String,
    method: String,
    transaction: ServerTransaction,
    to: SocketAddr,
}

/// What a request or a timer meant for the call.
#[derive(Debug, Clone, PartialEq)]
pub enum DialogOutcome {
    Nothing,
    /// The ACK for our 2xx arrived.
    Acknowledged,
    /// The peer hung up.
    RemoteBye,
    MediaChanged(Negotiated),
    /// Our 2xx was never ACKed: the dialog is dead (§13.3.1.4).
    AckTimeout,
    /// A REFER or NOTIFY inside the dialog, checked but not answered: the
    /// core's [`Transfers`](crate::transfer::Transfers) answers it.
    Unanswered,
}

#[derive(Debug)]
pub struct DialogServer {
    timers: Timers,
    /// Our Contact URI.
    contact: String,
    local_tag: String,
    media: LocalMedia,
    /// What we want of the media: sendrecv, or sendonly while we hold the
    /// call. Answers to the peer's offers keep to it.
    wish: Direction,
    /// What the last offer and answer settled: our re-offers keep to it.
    current: Option<Negotiated>,
    reliable: bool,
    servers: Vec<Server>,
    pending_2xx: Option<Pending2xx>,
}

impl DialogServer {
    pub fn new(
        timers: Timers,
        contact: String,
        local_tag: String,
        media: LocalMedia,
        transport: Transport,
    ) -> Self {
        DialogServer {
            timers,
            contact,
            local_tag,
            media,
            wish: Direction::SendRecv,
            current: None,
            reliable: transport.is_reliable(),
            servers: Vec::new(),
            pending_2xx: None,
        }
    }

    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// A new offer of ours in `direction` (a re-INVITE to hold or resume,
    /// RFC 3264 §8.4), its version one higher than the last (§8); answers
    /// to the peer's offers keep to `direction` from now on.
    pub fn our_offer(&mut self, direction: Direction) -> String {
        self.wish = direction;
        self.media.session_version += 1;
        match &self.current {
            Some(current) => self.media.reoffer(current, direction).to_text(),
            None => self.media.offer_in(direction).to_text(),
        }
    }

    /// The call's first offer and answer settled `media`.
    pub fn settled(&mut self, media: &Negotiated) {
        self.current = Some(media.clone());
    }

    /// What the peer's answer to our offer in `offered` settles.
    pub fn settle(&mut self, answer: &str, offered: Direction) -> Result<Negotiated, SdpError> {
        let sdp = SessionDescription::parse(answer)?;
        let media = self.media.settle_offered(&sdp, offered)?;
        self.current = Some(media.clone());
        Ok(media)
    }

    pub fn is_idle(&self) -> bool {
        self.servers.is_empty() && self.pending_2xx.is_none()
    }

    /// Whether a 2xx still waits for its ACK.
    pub fn awaits_ack(&self) -> bool {
        self.pending_2xx.is_some()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let servers = self
            .servers
            .iter()
            .filter_map(|s| s.transaction.poll_timeout());
        let pending = self
            .pending_2xx
            .as_ref()
            .map(|p| p.next_at.min(p.give_up_at));
        servers.chain(pending).min()
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Transmit>) -> DialogOutcome {
        for s in &mut self.servers {
            s.transaction.handle_timeout(now);
        }
        let mut outcome = DialogOutcome::Nothing;
        if let Some(p) = &mut self.pending_2xx {
            if now >= p.give_up_at {
                self.pending_2xx = None;
                outcome = DialogOutcome::AckTimeout;
            } else if now >= p.next_at {
                out.push_back(Transmit {
                    to: p.to,
                    bytes: p.bytes.clone(),
                });
                p.interval = (p.interval * 2).min(self.timers.t2);
                p.next_at = now + p.interval;
            }
        }
        self.drain(out);
        outcome
    }

    /// Moves the transactions' datagrams to `out` and forgets ended ones.
    pub fn drain(&mut self, out: &mut VecDeque<Transmit>) {
        for s in &mut self.servers {
            while let Some(bytes) = s.transaction.poll_transmit() {
                out.push_back(Transmit { to: s.to, bytes });
            }
            while s.transaction.poll_event().is_some() {}
        }
        self.servers.retain(|s| !s.transaction.is_terminated());
    }

    /// Answers `request` through a new server transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn respond(
        &mut self,
        rx: &Received,
        request: &Request,
        to: SocketAddr,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
        sdp: Option<&str>,
        now: Instant,
    ) {
        let body = sdp.map(|s| ("application/sdp", s));
        let Some(resp) = response(rx, to, code, reason, Some(&self.local_tag), extra, body) else {
            return;
        };
        let mut t = ServerTransaction::new(request, None, self.reliable, self.timers);
        t.respond(&resp, now);
        self.servers.push(Server {
            branch: rx.top_via.branch.clone(),
            method: rx.cseq_method.clone(),
            transaction: t,
            to,
        });
    }

    /// Sends a 2xx to an INVITE with `sdp` through its server `transaction`
    /// (which goes to Accepted and absorbs retransmitted INVITEs, RFC 6026),
    /// then retransmits it until the ACK with the same CSeq arrives
    /// (§13.3.1.4), at T1, 2·T1… capped at T2.
    #[allow(clippy::too_many_arguments)]
    pub fn send_2xx(
        &mut self,
        rx: &Received,
        to: SocketAddr,
        sdp: &str,
        transaction: &mut ServerTransaction,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        let contact = format!("<{}>", self.contact);
        let extra = [("Contact", contact.as_str()), ("Allow", ALLOW)];
        let body = Some(("application/sdp", sdp));
        let Some(ok) = response(rx, to, 200, "OK", Some(&self.local_tag), &extra, body) else {
            return;
        };
        transaction.respond(&ok, now);
        let mut bytes = Vec::new();
        while let Some(wire) = transaction.poll_transmit() {
            out.push_back(Transmit {
                to,
                bytes: wire.clone(),
            });
            bytes = wire;
        }
        let t1 = self.timers.t1;
        self.pending_2xx = Some(Pending2xx {
            cseq: rx.cseq,
            bytes,
            to,
            next_at: now + t1,
            interval: t1,
            give_up_at: now + self.timers.timeout(),
        });
    }

    /// A request with the dialog's Call-ID. `dialog` is `None` before the
    /// dialog exists; `confirmed` says whether a re-INVITE can be taken now.
    pub fn handle_request(
        &mut self,
        rx: &Received,
        source: SocketAddr,
        dialog: Option<&mut Dialog>,
        confirmed: bool,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> DialogOutcome {
        let outcome = self.request(rx, source, dialog, confirmed, now, out);
        self.drain(out);
        outcome
    }

    fn request(
        &mut self,
        rx: &Received,
        source: SocketAddr,
        dialog: Option<&mut Dialog>,
        confirmed: bool,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> DialogOutcome {
        let Some(request) = rx.request() else {
            return DialogOutcome::Nothing;
        };
        let method = rx.cseq_method.as_str();
        let reply_to = rx.top_via.response_address(source);
        // A retransmission of a request we are already answering.
        if let Some(s) = self
            .servers
            .iter_mut()
            .find(|s| s.branch == rx.top_via.branch && (s.method == method || method == "ACK"))
        {
            s.transaction.handle_request(request, now);
            if method != "ACK" {
                return DialogOutcome::Nothing;
            }
        }
        if method == "ACK" {
            if self.pending_2xx.as_ref().is_some_and(|p| p.cseq == rx.cseq) {
                self.pending_2xx = None;
                return DialogOutcome::Acknowledged;
            }
            return DialogOutcome::Nothing;
        }
        if let Some(r) = refusal(rx) {
            let header = [(r.header.0, r.header.1.as_str())];
            self.respond(rx, request, reply_to, r.code, r.reason, &header, None, now);
            return DialogOutcome::Nothing;
        }
        let Some(dialog) = dialog.filter(|d| d.matches(rx)) else {
            let reason = "Call/Transaction Does Not Exist";
            self.respond(rx, request, reply_to, 481, reason, &[], None, now);
            return DialogOutcome::Nothing;
        };
        if let Err(code) = dialog.accept_remote_seq(rx) {
            let extra = [("Retry-After", "1")];
            self.respond(
                rx,
                request,
                reply_to,
                code,
                "Server Internal Error",
                &extra,
                None,
                now,
            );
            return DialogOutcome::Nothing;
        }
        let contact = format!("<{}>", self.contact);
        match method {
            "BYE" => {
                self.respond(rx, request, reply_to, 200, "OK", &[], None, now);
                DialogOutcome::RemoteBye
            }
            "INVITE" if confirmed && self.pending_2xx.is_none() => {
                self.answer_reinvite(rx, request, reply_to, now, out)
            }
            "INVITE" => {
                // An offer while ours is unanswered, or before the call is up (§14.2).
                let extra = [("Retry-After", "1")];
                self.respond(
                    rx,
                    request,
                    reply_to,
                    491,
                    "Request Pending",
                    &extra,
                    None,
                    now,
                );
                DialogOutcome::Nothing
            }
            "OPTIONS" => {
                let extra = [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Contact", &contact),
                ];
                self.respond(rx, request, reply_to, 200, "OK", &extra, None, now);
                DialogOutcome::Nothing
            }
            "INFO" | "CANCEL" => {
                self.respond(rx, request, reply_to, 200, "OK", &[], None, now);
                DialogOutcome::Nothing
            }
            "REFER" | "NOTIFY" => DialogOutcome::Unanswered,
            _ => {
                let extra = [("Allow", ALLOW)];
                self.respond(
                    rx,
                    request,
                    reply_to,
                    501,
                    "Not Implemented",
                    &extra,
                    None,
                    now,
                );
                DialogOutcome::Nothing
            }
        }
    }

    fn answer_reinvite(
        &mut self,
        rx: &Received,
        request: &Request,
        reply_to: SocketAddr,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> DialogOutcome {
        self.media.session_version += 1;
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let mut outcome = DialogOutcome::Nothing;
        let sdp = if body.trim().is_empty() {
            // An offerless re-INVITE (a refresh): our 2xx offers, the ACK answers.
            Ok(self.media.offer_in(self.wish).to_text())
        } else {
            SessionDescription::parse(&body)
                .map_err(|e| e.to_string())
                .and_then(|offer| {
                    self.media
                        .answer_within(&offer, self.wish)
                        .map_err(|e| e.to_string())
                })
                .map(|(answer, negotiated)| {
                    self.current = Some(negotiated.clone());
                    outcome = DialogOutcome::MediaChanged(negotiated);
                    answer.to_text()
                })
        };
        match sdp {
            Ok(sdp) => {
                let mut t = ServerTransaction::new(request, None, self.reliable, self.timers);
                self.send_2xx(rx, reply_to, &sdp, &mut t, now, out);
                self.servers.push(Server {
                    branch: rx.top_via.branch.clone(),
                    method: rx.cseq_method.clone(),
                    transaction: t,
                    to: reply_to,
                });
            }
            Err(e) => {
                let reason = format!("Not Acceptable Here ({e})");
                self.respond(rx, request, reply_to, 488, &reason, &[], None, now);
            }
        }
        outcome
    }
}
