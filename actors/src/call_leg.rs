//! The SIP side of a `Call`: an outbound leg (we sent the INVITE, the
//! [`OutboundCall`] UAC core) or an inbound one (a peer called a client,
//! the [`InboundCall`] UAS core). One face over both, so the `Call` actor
//! drives either the same way: messages and time in, datagrams and events
//! out.

use std::net::SocketAddr;
use std::time::Instant;

use sono_sip::inbound_call::{InboundCall, InboundEvent};
use sono_sip::message::Received;
use sono_sip::outbound_call::{CallEvent, OutboundCall};
use sono_sip::sdp::Negotiated;
use sono_sip::transmit::{Transmit, Transport};

pub enum CallLeg {
    Outbound(Box<OutboundCall>),
    Inbound(Box<InboundCall>),
}

/// What a leg tells the `Call`, whichever side placed it.
pub enum LegEvent {
    /// A provisional response to our INVITE.
    Progress {
        code: u16,
        reason: String,
    },
    /// Media may flow: our INVITE was answered, or the ACK for our answer
    /// came.
    Answered {
        code: u16,
        reason: String,
        media: Negotiated,
    },
    MediaChanged(Negotiated),
    Ended {
        code: Option<u16>,
        reason: String,
        answered: bool,
    },
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

    pub fn poll_event(&mut self) -> Option<LegEvent> {
        match self {
            CallLeg::Outbound(c) => c.poll_event().map(|e| match e {
                CallEvent::Progress { code, reason } => LegEvent::Progress { code, reason },
                CallEvent::Answered {
                    code,
                    reason,
                    media,
                } => LegEvent::Answered {
                    code,
                    reason,
                    media,
                },
                CallEvent::MediaChanged(m) => LegEvent::MediaChanged(m),
                CallEvent::Ended {
                    code,
                    reason,
                    answered,
                } => LegEvent::Ended {
                    code,
                    reason,
                    answered,
                },
            }),
            CallLeg::Inbound(c) => c.poll_event().map(|e| match e {
                InboundEvent::Confirmed(media) => LegEvent::Answered {
                    code: 200,
                    reason: "OK".into(),
                    media,
                },
                InboundEvent::MediaChanged(m) => LegEvent::MediaChanged(m),
                InboundEvent::Ended {
                    code,
                    reason,
                    answered,
                } => LegEvent::Ended {
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

    /// CANCEL or BYE for an outbound leg; 603 or BYE for an inbound one.
    pub fn hangup(&mut self, now: Instant) {
        match self {
            CallLeg::Outbound(c) => c.hangup(now),
            CallLeg::Inbound(c) => c.hangup(now),
        }
    }
}
