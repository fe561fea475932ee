//! What both call cores do alike once their dialog is confirmed, written
//! once: our re-INVITEs to hold and resume ([`Reoffers`], RFC 3264 §8.4)
//! and transfers both ways ([`Transfers`], RFC 3515, RFC 5589). A core
//! lends its parts ([`MidCallParts`]) and says how its user hears of an
//! outcome and how it ends the call; the [`MidCallCore`] trait does the
//! rest, so the outbound (UAC) and inbound (UAS) cores offer the same
//! `hold`, `transfer`, `notify_transfer` and `dialog_id`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::dial_plan::DialPlan;
use crate::dialog::{Dialog, RequestContext};
use crate::dialog_server::DialogServer;
use crate::media_control::MediaControl;
use crate::message::Received;
use crate::reoffer::{ReofferOutcome, Reoffers};
use crate::transaction::Timers;
use crate::transfer::{DialogId, TransferEvent, Transfers};
use crate::transmit::Transmit;

/// The mid-call state of one call.
#[derive(Debug)]
pub struct MidCall {
    pub(crate) reoffers: Reoffers,
    pub(crate) transfers: Transfers,
    pub(crate) media_control: MediaControl,
}

impl MidCall {
    /// `owns_call_id`: we sent the INVITE (RFC 3261 §14.1's longer glare
    /// wait is ours).
    pub fn new(timers: Timers, owns_call_id: bool) -> MidCall {
        MidCall {
            reoffers: Reoffers::new(timers, owns_call_id),
            transfers: Transfers::new(timers),
            media_control: MediaControl::new(timers),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.reoffers.is_idle() && self.transfers.is_idle() && self.media_control.is_idle()
    }

    /// Whether our re-INVITE is out (the peer's own then gets 491).
    pub fn offer_pending(&self) -> bool {
        self.reoffers.is_pending()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.reoffers.poll_timeout(),
            self.transfers.poll_timeout(),
            self.media_control.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// What a mid-call feature tells the call's user.
#[derive(Debug, Clone, PartialEq)]
pub enum MidCallEvent {
    Reoffer(ReofferOutcome),
    Transfer(TransferEvent),
}

/// A core's parts the mid-call features work with, borrowed together.
pub struct MidCallParts<'a> {
    /// The dialog, while it is confirmed (and not over).
    pub dialog: Option<&'a mut Dialog>,
    pub server: &'a mut DialogServer,
    pub mid: &'a mut MidCall,
    pub ctx: RequestContext<'a>,
    /// Our Contact URI.
    pub contact: &'a str,
    /// Judges a REFER's target.
    pub plan: Option<&'a DialPlan>,
    pub out: &'a mut VecDeque<Transmit>,
}

/// Hold, resume and transfers on a call core.
pub trait MidCallCore {
    /// The parts, borrowed together.
    fn parts(&mut self) -> MidCallParts<'_>;
    /// The confirmed dialog, if it is.
    fn confirmed_dialog(&self) -> Option<&Dialog>;
    /// Who we are in a REFER's Referred-By.
    fn referred_by(&self) -> String;
    /// The user hears of an outcome.
    fn mid_call_event(&mut self, event: MidCallEvent);
    /// The call is over (BYE sent): `code` and `reason` for the user.
    fn end_with_bye(&mut self, code: Option<u16>, reason: String, now: Instant);
    /// Moves what the transactions produced to the outbox.
    fn drain_all(&mut self);

    /// Holds the answered call (`a=sendonly`) or resumes it; false if it
    /// is not up.
    fn hold(&mut self, held: bool, now: Instant) -> bool {
        let p = self.parts();
        let Some(dialog) = p.dialog else {
            return false;
        };
        p.mid
            .reoffers
            .hold(held, dialog, &p.ctx, p.contact, p.server, now, p.out);
        self.mid_call_outcomes(now);
        true
    }

    /// Transfers the peer to `target` (REFER; the caller applied the dial
    /// plan); false if the call is not up or a transfer of ours is under way.
    fn transfer(&mut self, target: &str, now: Instant) -> bool {
        let by = self.referred_by();
        let p = self.parts();
        let Some(dialog) = p.dialog else {
            return false;
        };
        let sent = p
            .mid
            .transfers
            .refer(dialog, &p.ctx, target, &by, now, p.out);
        self.mid_call_outcomes(now);
        sent
    }

    /// Tells the peer that transferred us how our call to its target goes
    /// (NOTIFY with a sipfrag; a final `code` ends the subscription).
    fn notify_transfer(&mut self, code: u16, reason: &str, now: Instant) {
        let p = self.parts();
        if let Some(dialog) = p.dialog {
            p.mid
                .transfers
                .notify(dialog, &p.ctx, code, reason, now, p.out);
        }
        self.drain_all();
    }

    /// Asks the peer for a video keyframe with SIP INFO (RFC 5168); false
    /// if the call is not up, one is unanswered, or the peer refused one.
    fn picture_fast_update(&mut self, now: Instant) -> bool {
        let p = self.parts();
        let Some(dialog) = p.dialog else {
            return false;
        };
        let sent = p
            .mid
            .media_control
            .picture_fast_update(dialog, &p.ctx, now, p.out);
        self.drain_all();
        sent
    }

    /// The confirmed dialog's identity, for a Replaces header naming it.
    fn dialog_id(&self) -> Option<DialogId> {
        self.confirmed_dialog().map(DialogId::of)
    }

    /// The features' timers.
    fn mid_call_timeout(&mut self, now: Instant) {
        let p = self.parts();
        p.mid
            .reoffers
            .handle_timeout(p.dialog, &p.ctx, p.contact, p.server, now, p.out);
        p.mid.transfers.handle_timeout(now, p.out);
        p.mid.media_control.handle_timeout(now, p.out);
        self.mid_call_outcomes(now);
    }

    /// A response to our re-INVITE, REFER or NOTIFY; false if it is not one.
    fn mid_call_response(&mut self, rx: &Received, now: Instant) -> bool {
        let p = self.parts();
        let ours = if p.mid.transfers.handle_response(rx, now, p.out)
            || p.mid.media_control.handle_response(rx, now, p.out)
        {
            true
        } else if p.mid.reoffers.owns(rx) {
            if let Some(dialog) = p.dialog {
                p.mid
                    .reoffers
                    .handle_response(rx, dialog, &p.ctx, p.contact, p.server, now, p.out);
            }
            true
        } else {
            false
        };
        if ours {
            self.mid_call_outcomes(now);
        }
        ours
    }

    /// A REFER or NOTIFY the dialog server left to us.
    fn mid_call_request(&mut self, rx: &Received, source: SocketAddr, now: Instant) {
        let p = self.parts();
        p.mid
            .transfers
            .answer(rx, source, p.plan, p.server, p.dialog, &p.ctx, now, p.out);
        self.mid_call_outcomes(now);
    }

    /// What the features came to, told to the user; a re-INVITE that ends
    /// the call (481, 408) or a transfer of ours that succeeded (RFC 5589
    /// §6.1: the transferor hangs up) ends it with BYE.
    fn mid_call_outcomes(&mut self, now: Instant) {
        loop {
            let p = self.parts();
            let event = match p.mid.reoffers.poll_outcome() {
                Some(outcome) => MidCallEvent::Reoffer(outcome),
                None => match p.mid.transfers.poll_event() {
                    Some(event) => MidCallEvent::Transfer(event),
                    None => break,
                },
            };
            match event {
                MidCallEvent::Reoffer(outcome) => match outcome.ending() {
                    Some((code, reason)) => self.end_with_bye(code, reason, now),
                    None => self.mid_call_event(MidCallEvent::Reoffer(outcome)),
                },
                MidCallEvent::Transfer(event) => {
                    let succeeded = event.transferred_away();
                    self.mid_call_event(MidCallEvent::Transfer(event));
                    if succeeded {
                        self.end_with_bye(None, "transferred".into(), now);
                    }
                }
            }
        }
        self.drain_all();
    }
}
