//! The client session's three-way calls: `three_way([a], [b])` makes the
//! client and the peers of calls a and b hear each other. Both calls are
//! resumed if held (re-INVITE `a=sendrecv`: both peers must send), a
//! becomes the active line and its media bridge hosts the mix, b's bridge
//! joins it (see `media_bridge::three_way`). Holding, resuming or
//! accepting another call, or either call ending, returns to normal calls;
//! the client hears `Sono.Call.ThreeWay {calls, on}` both times.

use actix::prelude::*;
use sono_rtmp::phone::{code, CallId};
use sono_rtmp::{AmfValue, PhoneEvent};
use tracing::info;

use super::{ClientSession, ToClient};
use crate::call::HoldCall;
use crate::control::Responder;
use crate::media_bridge::ThreeWay;

impl ClientSession {
    pub(super) fn three_way(&mut self, txn: Responder, a: Option<CallId>, b: Option<CallId>) {
        let (a, b) = match self.lines.pick_pair(a, b) {
            Ok(pair) => pair,
            Err(why) => {
                let why = format!("no calls for a three-way call: {why}");
                self.fail(txn, code::CALL_NO_CALL, &why);
                return;
            }
        };
        let bridges = (
            self.lines.get(a).and_then(|l| l.media.clone()),
            self.lines.get(b).and_then(|l| l.media.clone()),
        );
        let (Some(host), Some(guest)) = bridges else {
            let why = "both calls of a three-way call must be answered";
            self.fail(txn, code::CALL_NO_CALL, why);
            return;
        };
        self.end_three_way();
        for id in [a, b] {
            let Some(line) = self.lines.get_mut(id) else {
                continue;
            };
            if line.is_held() {
                line.set_held(false);
                line.call.do_send(HoldCall(false));
            }
        }
        self.lines.set_active(Some(a));
        self.media_transport()
            .do_send(ToClient::Media(Some(host.clone())));
        host.do_send(ThreeWay::Host(guest.clone()));
        guest.do_send(ThreeWay::Guest(host));
        self.lines.three_way = Some((a, b));
        info!(conn = self.id, host = a, guest = b, "three-way call");
        self.announce_three_way((a, b), true);
        self.respond(txn, Ok(AmfValue::Null));
    }

    /// Returns the three-way call's two calls to normal ones, if there is
    /// one (the bridges tell each other; telling both is harmless).
    pub(super) fn end_three_way(&mut self) {
        let Some((a, b)) = self.lines.three_way.take() else {
            return;
        };
        for id in [a, b] {
            if let Some(bridge) = self.lines.get(id).and_then(|l| l.media.clone()) {
                bridge.do_send(ThreeWay::End);
            }
        }
        info!(conn = self.id, host = a, guest = b, "three-way call over");
        self.announce_three_way((a, b), false);
    }

    /// A call of the three-way call ended: the other goes on as a normal
    /// call, and as the active one (the client hears its peer).
    pub(super) fn three_way_call_ended(&mut self, ctx: &mut Context<Self>, ended: CallId) {
        let Some((a, b)) = self.lines.three_way else {
            return;
        };
        if ended != a && ended != b {
            return;
        }
        self.end_three_way();
        let other = if ended == a { b } else { a };
        if self.lines.active_id().is_none_or(|active| active == ended) {
            self.lines.set_active(None);
            self.make_active(ctx, other);
        }
    }

    fn announce_three_way(&mut self, (a, b): (CallId, CallId), on: bool) {
        for id in [a, b] {
            if self.lines.get(id).is_some() {
                self.emit_on(id, PhoneEvent::ThreeWay { calls: [a, b], on });
            }
        }
    }
}
