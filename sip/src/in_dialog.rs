//! Our non-INVITE requests inside a dialog (RFC 3261 §12.2.1.1), each a
//! client transaction (§17.1.2): BYE (§15.1.1: the call is over for its
//! user as soon as the BYE is sent, the transaction then runs on its own),
//! REFER (RFC 3515) and NOTIFY (RFC 6665) for transfers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Request, Response};

use crate::dialog::{Dialog, RequestContext};
use crate::transaction::{ClientEvent, ClientTransaction, Timers};
use crate::transmit::Transmit;

#[derive(Debug)]
pub struct InDialogRequest {
    transaction: ClientTransaction,
    to: SocketAddr,
    /// The final response's code, once it came (408 on timeout, 503 on a
    /// transport error).
    final_code: Option<u16>,
}

/// Our BYE.
pub type Bye = InDialogRequest;

impl InDialogRequest {
    /// Builds the BYE with the dialog's next CSeq and starts its transaction.
    pub fn send(
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        timers: Timers,
        now: Instant,
    ) -> Option<InDialogRequest> {
        InDialogRequest::send_method(dialog, ctx, timers, now, "BYE", &[], None)
    }

    /// Builds `method` with the dialog's next CSeq, `extra` header fields
    /// and a body (content type, text), and starts its transaction.
    pub fn send_method(
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        timers: Timers,
        now: Instant,
        method: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Option<InDialogRequest> {
        let seq = dialog.next_seq();
        let wire = dialog.request_typed(ctx, method, seq, extra, body);
        let request = Request::try_from(wire.bytes.as_slice()).ok()?;
        Some(InDialogRequest {
            transaction: ClientTransaction::new(request, ctx.transport.is_reliable(), timers, now),
            to: wire.to,
            final_code: None,
        })
    }

    /// The final response's code, once it came.
    pub fn final_code(&self) -> Option<u16> {
        self.final_code
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

    /// Moves its datagrams to `out` and notes its final code.
    pub fn drain(&mut self, out: &mut VecDeque<Transmit>) {
        while let Some(bytes) = self.transaction.poll_transmit() {
            out.push_back(Transmit { to: self.to, bytes });
        }
        while let Some(event) = self.transaction.poll_event() {
            let code = match event {
                ClientEvent::Response(r) => u16::from(r.status_code),
                ClientEvent::Timeout => 408,
                ClientEvent::TransportError => 503,
            };
            if code >= 200 {
                self.final_code = Some(code);
            }
        }
    }
}
