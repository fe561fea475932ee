//! The SIP side of a `Call`: an outbound leg (we sent the INVITE, the
//! [`OutboundCall`] UAC core) or an inbound one (a peer called a client,
//! the [`InboundCall`] UAS core). One face over both, so the `Call` actor
//! drives either the same way: messages and time in, datagrams and events
//! out.

use std::net::SocketAddr;
use std::time::Instant;

use sono_sip::inbound_call::{InboundCall, InboundEvent};
use sono_sip::message::Received;
use sono_sip::mid_call::MidCallCore;
use sono_sip::outbound_call::{CallEvent, OutboundCall};
use sono_sip::transfer::DialogId;
use sono_sip::transmit::{Transmit, Transport};

pub enum CallLeg {
    Outbound(Box<OutboundCall>),
    Inbound(Box<InboundCall>),
}

impl CallLeg {
    pub fn call_id(&self) -> &str {
        match self {
            CallLeg::Outbound(c) => c.call_id(),
            CallLeg::Inbound(c) => c.call_id(),
        }
    }

    pub fn transport(&self) -> Transport {
        match self {
            CallLeg::Outbound(c) => c.transport(),
            CallLeg::Inbound(c) => c.transport(),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            CallLeg::Outbound(c) => c.poll_transmit(),
            CallLeg::Inbound(c) => c.poll_transmit(),
        }
    }

    /// What the leg tells the `Call`, in the outbound core's terms: an
    /// inbound leg's confirmed answer (the ACK came) is its `Answered`.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        match self {
            CallLeg::Outbound(c) => c.poll_event(),
            CallLeg::Inbound(c) => c.poll_event().map(|e| match e {
                InboundEvent::Confirmed(media) => CallEvent::Answered {
                    code: 200,
                    reason: "OK".into(),
                    media,
                },
                InboundEvent::MediaChanged(m) => CallEvent::MediaChanged(m),
                InboundEvent::Reoffer(o) => CallEvent::Reoffer(o),
                InboundEvent::Transfer(t) => CallEvent::Transfer(t),
                InboundEvent::TargetRefused { target, reason } => {
                    CallEvent::TargetRefused { target, reason }
                }
                InboundEvent::Ended {
                    code,
                    reason,
                    answered,
                } => CallEvent::Ended {
                    code,
                    reason,
                    answered,
                },
            }),
        }
    }

    pub fn is_ended(&self) -> bool {
        match self {
            CallLeg::Outbound(c) => c.is_ended(),
            CallLeg::Inbound(c) => c.is_ended(),
        }
    }

    pub fn is_settled(&self) -> bool {
        match self {
            CallLeg::Outbound(c) => c.is_settled(),
            CallLeg::Inbound(c) => c.is_settled(),
        }
    }

    pub fn is_finished(&self) -> bool {
        match self {
            CallLeg::Outbound(c) => c.is_finished(),
            CallLeg::Inbound(c) => c.is_finished(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            CallLeg::Outbound(c) => c.poll_timeout(),
            CallLeg::Inbound(c) => c.poll_timeout(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            CallLeg::Outbound(c) => c.handle_timeout(now),
            CallLeg::Inbound(c) => c.handle_timeout(now),
        }
    }

    pub fn handle_message(&mut self, message: Received, source: SocketAddr, now: Instant) {
        match self {
            CallLeg::Outbound(c) => c.handle_message(message, source, now),
            CallLeg::Inbound(c) => c.handle_message(message, source, now),
        }
    }

    /// Hold, resume and transfers: the same on either leg.
    fn mid_call(&mut self) -> &mut dyn MidCallCore {
        match self {
            CallLeg::Outbound(c) => c.as_mut(),
            CallLeg::Inbound(c) => c.as_mut(),
        }
    }

    /// Holds or resumes an answered call; false if it is not up.
    pub fn hold(&mut self, held: bool, now: Instant) -> bool {
        self.mid_call().hold(held, now)
    }

    /// Transfers the peer to `target` (REFER); false if the call is not
    /// up or a transfer is already under way.
    pub fn transfer(&mut self, target: &str, now: Instant) -> bool {
        self.mid_call().transfer(target, now)
    }

    /// Asks the peer for a video keyframe (SIP INFO, RFC 5168).
    pub fn picture_fast_update(&mut self, now: Instant) -> bool {
        self.mid_call().picture_fast_update(now)
    }

    /// Reports our call to the target of the peer's REFER (NOTIFY).
    pub fn notify_transfer(&mut self, code: u16, reason: &str, now: Instant) {
        self.mid_call().notify_transfer(code, reason, now)
    }

    pub fn dialog_id(&self) -> Option<DialogId> {
        match self {
            CallLeg::Outbound(c) => c.dialog_id(),
            CallLeg::Inbound(c) => c.dialog_id(),
        }
    }

    /// CANCEL or BYE for an outbound leg; 603 or BYE for an inbound one.
    /// The next hop could not be reached (see `OutboundCall::transport_failed`);
    /// an inbound call answers on the connection its INVITE came on.
    pub fn transport_failed(&mut self, reason: &str) {
        if let CallLeg::Outbound(c) = self {
            c.transport_failed(reason);
        }
    }

    pub fn hangup(&mut self, now: Instant) {
        match self {
            CallLeg::Outbound(c) => c.hangup(now),
            CallLeg::Inbound(c) => c.hangup(now),
        }
    }
}
