//! Our BYE (RFC 3261 §15.1.1): a non-INVITE client transaction inside the
//! dialog whose final response, timeout or transport error ends the call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Request, Response};

use crate::dialog::{Dialog, RequestContext};
use crate::transaction::{ClientEvent, ClientTransaction, Timers};
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

    /// Moves its datagrams to `out`; true once the BYE is over (answered,
    /// timed out or unsendable).
    pub fn drain(&mut self, out: &mut VecDeque<Transmit>) -> bool {
        while let Some(bytes) = self.transaction.poll_transmit() {
            out.push_back(Transmit { to: self.to, bytes });
        }
        let mut over = false;
        while let Some(event) = self.transaction.poll_event() {
            over |= match event {
                ClientEvent::Timeout | ClientEvent::TransportError => true,
                ClientEvent::Response(r) => r.status_code.code() >= 200,
            };
        }
        over
    }
}
