//! The client session's transfers, both ways (RFC 3515 REFER, RFC 5589):
//!
//! - `transfer(uri, [call])`: a blind transfer. The dial plan judges the
//!   target first (a transfer makes the peer call someone in our name);
//!   the call's core sends REFER, and the peer's NOTIFYs reach the client
//!   as `Sono.Call.Transfer`; the call ends ("transferred") on success.
//! - `join([a], [b])`: an attended transfer. a's peer is referred to b's
//!   peer with a Replaces header naming our dialog with b (RFC 3891), so
//!   the two peers talk to each other and both our calls end.
//! - The peer's REFER: its core judged the target by the dial plan and
//!   answered 202; here the new call is placed on a new line, the client
//!   hears `Sono.Call.Referred` (with the new call's id), the referring
//!   peer hears each status as a NOTIFY, and the new call takes the old
//!   line's place (and audio) once answered.

use actix::prelude::*;
use sono_rtmp::phone::{code, CallId, CallStatus};
use sono_rtmp::{AmfValue, PhoneEvent};
use sono_sip::dial_plan::Verdict;
use tracing::{info, warn};

use super::ClientSession;
use crate::call::{GetDialogId, NotifyTransfer, TransferCall};
use crate::control::Responder;
use crate::lines::DefaultCall;

impl ClientSession {
    /// `transfer(uri, [call])`: answered once the REFER is on its way.
    pub(super) fn transfer(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        call: Option<CallId>,
        uri: &str,
    ) {
        let id = match self.lines.pick(call, DefaultCall::Active) {
            Ok(id) => id,
            Err(why) => {
                self.fail(
                    txn,
                    code::CALL_NO_CALL,
                    &format!("no call to transfer: {why}"),
                );
                return;
            }
        };
        let target = match self.shared.dial_plan.check(uri) {
            Verdict::Allowed(target) => target.to_string(),
            Verdict::Forbidden(reason) => {
                warn!(conn = self.id, %reason, "transfer refused by the dial plan");
                self.fail(txn, code::CALL_FORBIDDEN, &reason);
                return;
            }
            Verdict::Invalid(e) => {
                let why = format!("{uri:?} cannot be called: {e}");
                self.fail(txn, code::CALL_FAILED, &why);
                return;
            }
        };
        self.refer_line(ctx, txn, id, target);
    }

    /// `join([a], [b])`: a's peer is referred to b's in b's place. Without
    /// ids, a is the active call and b the one other answered call.
    pub(super) fn join(
        &mut self,
        ctx: &mut Context<Self>,
        txn: Responder,
        a: Option<CallId>,
        b: Option<CallId>,
    ) {
        let (a, b) = match self.lines.pick_pair(a, b) {
            Ok(pair) => pair,
            Err(why) => {
                self.fail(txn, code::CALL_NO_CALL, &format!("no calls to join: {why}"));
                return;
            }
        };
        let Some(b_line) = self.lines.get(b) else {
            return;
        };
        let other = b_line.call.clone();
        ctx.spawn(
            other.send(GetDialogId).into_actor(self).map(
                move |result, session, ctx| match result {
                    Ok(Some(dialog)) => session.refer_line(ctx, txn, a, dialog.replacing_uri()),
                    _ => session.fail(txn, code::CALL_NO_CALL, "the call to join is not answered"),
                },
            ),
        );
    }

    /// Sends line `id`'s peer a REFER to `target`.
    fn refer_line(&mut self, ctx: &mut Context<Self>, txn: Responder, id: CallId, target: String) {
        let Some(line) = self.lines.get(id) else {
            self.fail(txn, code::CALL_NO_CALL, "the call has ended");
            return;
        };
        let call = line.call.clone();
        ctx.spawn(call.send(TransferCall(target)).into_actor(self).map(
            move |result, session, _| match result {
                Ok(Ok(())) => session.respond(txn, Ok(AmfValue::Null)),
                Ok(Err(why)) => session.fail(txn, code::CALL_TRANSFER, why),
                Err(_) => session.fail(txn, code::CALL_NO_CALL, "the call has ended"),
            },
        ));
    }

    /// Line `from`'s peer asked us to call `target` (its REFER got 202):
    /// the call is placed on a new line, or the peer is told why not.
    pub(super) fn follow_referral(
        &mut self,
        ctx: &mut Context<Self>,
        from: CallId,
        target: &str,
        replaces: Option<String>,
        referred_by: Option<String>,
    ) {
        let Some(referrer) = self.lines.get(from).map(|l| l.call.clone()) else {
            return;
        };
        let refuse = |code: u16, reason: String| {
            referrer.do_send(NotifyTransfer { code, reason });
        };
        // The core judged the target already; the plan also gives its URI.
        let uri = match self.shared.dial_plan.check(target) {
            Verdict::Allowed(uri) => uri,
            Verdict::Forbidden(reason) => {
                refuse(403, format!("Forbidden ({reason})"));
                return;
            }
            Verdict::Invalid(e) => {
                refuse(403, format!("Forbidden ({e})"));
                return;
            }
        };
        if self.lines.len() >= self.shared.settings.sip.lines {
            refuse(486, "Busy Here (every line is taken)".into());
            return;
        }
        let mut headers = Vec::new();
        if let Some(by) = &referred_by {
            headers.push(("Referred-By".to_owned(), by.clone()));
        }
        if let Some(replaces) = replaces {
            headers.push(("Replaces".to_owned(), replaces));
        }
        match self.start_outbound(ctx, &uri, headers) {
            Ok(id) => {
                info!(conn = self.id, from, call = id, target = %uri, "calling the target of the peer's REFER");
                self.update_line(id, |l| l.referred_from = Some(from));
                self.emit_on(
                    from,
                    PhoneEvent::Referred {
                        target: uri.to_string(),
                        referred_by,
                        new_call: id,
                    },
                );
            }
            Err(why) => refuse(503, format!("Service Unavailable ({why})")),
        }
    }

    /// A status of line `id`: when the line was placed for a peer's REFER,
    /// that peer hears it (NOTIFY), and once answered the new call takes
    /// the referring line's place as the active one.
    pub(super) fn report_to_referrer(
        &mut self,
        ctx: &mut Context<Self>,
        id: CallId,
        event: &PhoneEvent,
    ) {
        let Some(from) = self.lines.get(id).and_then(|l| l.referred_from) else {
            return;
        };
        let PhoneEvent::CallStatus {
            status,
            sip_code,
            reason,
        } = event
        else {
            return;
        };
        let reason = reason.clone().unwrap_or_default();
        let (code, reason) = match status {
            CallStatus::InProgress => match sip_code {
                Some(c) if (101..200).contains(c) => (*c, reason),
                _ => return,
            },
            CallStatus::Connected => (200, "OK".to_owned()),
            CallStatus::NotConnected => (sip_code.unwrap_or(487), reason),
            CallStatus::Disconnecting | CallStatus::ConnectStreams => return,
        };
        if let Some(referrer) = self.lines.get(from) {
            referrer.call.do_send(NotifyTransfer { code, reason });
        }
        if code < 200 {
            return;
        }
        self.update_line(id, |l| l.referred_from = None);
        if code == 200 {
            // The new call takes over: the referring one is being hung up
            // by its peer and is not held first.
            match self.lines.active_id() {
                Some(active) if active == from => {
                    self.lines.set_active(None);
                    self.make_active(ctx, id);
                }
                None => self.make_active(ctx, id),
                Some(_) => self.hold_quietly(ctx, id),
            }
        }
    }
}
