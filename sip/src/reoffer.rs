//! Our re-INVITE inside a confirmed dialog (RFC 3261 §14.1): a new offer
//! that changes the session's direction, to hold the call (`a=sendonly`,
//! RFC 3264 §8.4) and to resume it. Sans-I/O, shared by both call cores.
//!
//! One offer is outstanding at a time. Its 2xx is ACKed by us (§13.2.2.4)
//! and ACKed again when retransmitted; a 491 (glare: the peer offered at
//! the same moment) is retried after a random 2.1–4 s when we own the
//! Call-ID, 0–2 s otherwise (§14.1); any other failure leaves the session
//! as it was, except 481 and 408, after which the dialog is gone (§14.1,
//! §12.2.1.2). A wish that changes while an offer is out is sent once the
//! offer is done, so the last wish wins.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::Request;

use crate::dialog::{Dialog, RequestContext};
use crate::dialog_server::DialogServer;
use crate::message::Received;
use crate::sdp::{Direction, Negotiated};
use crate::transaction::{ClientEvent, ClientTransaction, Timers};
use crate::transmit::Transmit;

/// What an offer of ours came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReofferOutcome {
    /// The peer accepted: the media as settled, in `direction` (ours).
    Settled(Negotiated),
    /// The peer refused (not glare): the session stays as it was.
    Refused { code: u16, reason: String },
    /// 481 or 408 (or no answer at all): the dialog is gone.
    DialogGone { code: u16, reason: String },
    /// A 2xx whose SDP we cannot use: ACKed, and the dialog must end.
    Unusable(String),
}

impl ReofferOutcome {
    /// The code and reason the call ends with, if this outcome ends it.
    pub fn ending(&self) -> Option<(Option<u16>, String)> {
        match self {
            ReofferOutcome::DialogGone { code, reason } => Some((
                Some(*code),
                format!("the re-INVITE failed: {code} {reason}"),
            )),
            ReofferOutcome::Unusable(reason) => Some((Some(488), reason.clone())),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Outstanding {
    transaction: ClientTransaction,
    to: SocketAddr,
    seq: u32,
    branch: String,
    direction: Direction,
    /// Our ACK for its 2xx, sent again for a retransmitted 2xx.
    ack: Option<Transmit>,
}

/// Our offers in one dialog: what the user wishes, what is in force, and
/// the offer on its way.
#[derive(Debug)]
pub struct Reoffers {
    timers: Timers,
    /// Whether we sent the dialog's INVITE (and so own its Call-ID, §14.1).
    owns_call_id: bool,
    wish: Direction,
    /// What the last settled offer (or the call's start) put in force.
    in_force: Direction,
    outstanding: Option<Outstanding>,
    /// Glare: when to try again.
    retry_at: Option<Instant>,
    outcomes: VecDeque<ReofferOutcome>,
}

impl Reoffers {
    pub fn new(timers: Timers, owns_call_id: bool) -> Reoffers {
        Reoffers {
            timers,
            owns_call_id,
            wish: Direction::SendRecv,
            in_force: Direction::SendRecv,
            outstanding: None,
            retry_at: None,
            outcomes: VecDeque::new(),
        }
    }

    /// The direction the user wants (sendonly: hold; sendrecv: resume).
    pub fn wish(&self) -> Direction {
        self.wish
    }

    /// Whether an offer of ours awaits its final answer: a peer's offer
    /// now gets 491 (§14.2).
    pub fn is_pending(&self) -> bool {
        self.outstanding
            .as_ref()
            .is_some_and(|o| !o.transaction.has_final())
    }

    pub fn is_idle(&self) -> bool {
        self.outstanding
            .as_ref()
            .is_none_or(|o| o.transaction.is_terminated())
            && self.retry_at.is_none()
    }

    /// A response that belongs to our offer.
    pub fn owns(&self, rx: &Received) -> bool {
        rx.cseq_method == "INVITE"
            && self
                .outstanding
                .as_ref()
                .is_some_and(|o| o.branch == rx.branch() && o.seq == rx.cseq)
    }

    /// The user holds the call (`a=sendonly`) or resumes it (`sendrecv`):
    /// an offer goes now, or once the one outstanding is done.
    #[allow(clippy::too_many_arguments)]
    pub fn hold(
        &mut self,
        held: bool,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        contact: &str,
        server: &mut DialogServer,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        self.wish = if held {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        self.send_if_due(dialog, ctx, contact, server, now, out);
    }

    pub fn poll_outcome(&mut self) -> Option<ReofferOutcome> {
        self.outcomes.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self
            .outstanding
            .as_ref()
            .and_then(|o| o.transaction.poll_timeout());
        [t, self.retry_at].into_iter().flatten().min()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn handle_timeout(
        &mut self,
        dialog: Option<&mut Dialog>,
        ctx: &RequestContext<'_>,
        contact: &str,
        server: &mut DialogServer,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        if let Some(o) = &mut self.outstanding {
            o.transaction.handle_timeout(now);
        }
        self.drain(now, out);
        if self.retry_at.is_some_and(|at| now >= at) {
            self.retry_at = None;
            if let Some(dialog) = dialog {
                self.send_if_due(dialog, ctx, contact, server, now, out);
            }
        }
    }

    /// A response with our offer's branch and CSeq ([`Reoffers::owns`]).
    #[allow(clippy::too_many_arguments)]
    pub fn handle_response(
        &mut self,
        rx: &Received,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        contact: &str,
        server: &mut DialogServer,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        let Some(o) = &mut self.outstanding else {
            return;
        };
        let code = rx.status_code().unwrap_or(0);
        if (200..300).contains(&code) {
            if let Some(ack) = &o.ack {
                // A retransmitted 2xx: our ACK got lost.
                out.push_back(ack.clone());
                return;
            }
            let ack = dialog.request(ctx, "ACK", o.seq, &[], None);
            out.push_back(ack.clone());
            o.ack = Some(ack);
            if let Some(response) = rx.response() {
                o.transaction.handle_response(response.clone(), now);
            }
            let body = rx
                .response()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .unwrap_or_default();
            let direction = o.direction;
            match server.settle(&body, direction) {
                Ok(media) => {
                    self.in_force = direction;
                    self.outcomes.push_back(ReofferOutcome::Settled(media));
                }
                Err(e) => self.outcomes.push_back(ReofferOutcome::Unusable(format!(
                    "unusable SDP answer: {e}"
                ))),
            }
        } else if let Some(response) = rx.response() {
            o.transaction.handle_response(response.clone(), now);
        }
        self.drain(now, out);
        if !self.is_pending() && self.retry_at.is_none() {
            self.send_if_due(dialog, ctx, contact, server, now, out);
        }
    }

    /// Sends an offer for the wish if none is out and it is not in force.
    fn send_if_due(
        &mut self,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        contact: &str,
        server: &mut DialogServer,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        if self.is_pending() || self.retry_at.is_some() || self.wish == self.in_force {
            return;
        }
        let direction = self.wish;
        let sdp = server.our_offer(direction);
        let seq = dialog.next_seq();
        let contact = format!("<{contact}>");
        let extra = [
            ("Contact", contact.as_str()),
            ("Allow", crate::response::ALLOW),
        ];
        let invite = dialog.request(ctx, "INVITE", seq, &extra, Some(&sdp));
        let Ok(request) = Request::try_from(invite.bytes.as_slice()) else {
            return;
        };
        let branch = crate::outbound_call::branch_of(&request);
        let transaction =
            ClientTransaction::new(request, ctx.transport.is_reliable(), self.timers, now);
        self.outstanding = Some(Outstanding {
            transaction,
            to: invite.to,
            seq,
            branch,
            direction,
            ack: None,
        });
        self.drain(now, out);
    }

    fn drain(&mut self, now: Instant, out: &mut VecDeque<Transmit>) {
        let Some(o) = &mut self.outstanding else {
            return;
        };
        while let Some(bytes) = o.transaction.poll_transmit() {
            out.push_back(Transmit { to: o.to, bytes });
        }
        while let Some(event) = o.transaction.poll_event() {
            let failure = match event {
                ClientEvent::Response(r) => {
                    let code = u16::from(r.status_code);
                    let reason = crate::response::reason_phrase(code).to_owned();
                    (code >= 300).then_some((code, reason))
                }
                ClientEvent::Timeout => Some((408, "Request Timeout".to_owned())),
                ClientEvent::TransportError => Some((503, "transport error".to_owned())),
            };
            let Some((code, reason)) = failure else {
                continue;
            };
            match code {
                491 => {
                    // §14.1: the owner of the Call-ID waits 2.1–4 s, the other 0–2 s.
                    let (base, spread) = if self.owns_call_id {
                        (2100, 1900)
                    } else {
                        (0, 2000)
                    };
                    let jitter = rand::random::<u64>() % spread;
                    self.retry_at = Some(now + Duration::from_millis(base + jitter));
                }
                408 | 481 => self
                    .outcomes
                    .push_back(ReofferOutcome::DialogGone { code, reason }),
                _ => {
                    // The session stays as it was, and so does the wish we
                    // could not have: the user hears it refused.
                    self.wish = self.in_force;
                    self.outcomes
                        .push_back(ReofferOutcome::Refused { code, reason });
                }
            }
        }
    }
}
