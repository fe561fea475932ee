//! Our BYE (RFC 3261 §15.1.1): a non-INVITE client transaction inside the
//! dialog. The call is over for its user as soon as the BYE is sent
//! (§15.1.1: "the UAC MUST consider the session terminated ... as soon as
//! the BYE is sent"); the transaction then runs to its end on its own.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Request, Response};

use crate::dialog::{Dialog, RequestContext};
use crate::transaction::{ClientTransaction, Timers};
use crate::transmit::Transmit;

#[derive(Debug)]
pub struct Bye {
    transaction: ClientTransaction,
    to: SocketAddr,
}

impl Bye {
    /// Builds the BYE with the dialog's next CSeq and starts its transaction.
    pub fn send(
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        timers: Timers,
        now: Instant,
    ) -> Option<Bye> {
        let seq = dialog.next_seq();
        let bye = dialog.request(ctx, "BYE", seq, &[], None);
        let request = Request::try_from(bye.bytes.as_slice()).ok()?;
        Some(Bye {
            transaction: ClientTransaction::new(request, ctx.transport.is_reliable(), timers, now),
            to: bye.to,
        })
    }

    pub fn request(&self) -> &Request {
        self.transaction.request()
    }

    /// Answered, timed out or unsendable: the peer has had its say.
    pub fn is_answered(&self) -> bool {
        self.transaction.has_final()
    }

    pub fn is_terminated(&self) -> bool {
        self.transaction.is_terminated()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transaction.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transaction.handle_timeout(now);
    }

    pub fn handle_response(&mut self, response: Response, now: Instant) {
        self.transaction.handle_response(response, now);
    }

    /// Moves its datagrams to `out`; what the peer answers changes nothing.
    pub fn drain(&mut self, out: &mut VecDeque<Transmit>) {
        while let Some(bytes) = self.transaction.poll_transmit() {
            out.push_back(Transmit { to: self.to, bytes });
        }
        while self.transaction.poll_event().is_some() {}
    }
}
