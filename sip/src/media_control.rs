//! Our SIP INFO requests that ask the peer for a video keyframe: the
//! `application/media_control+xml` body with `picture_fast_update` (RFC
//! 5168), for video peers that negotiated no RTCP feedback (RFC 4585's
//! PLI, RFC 5104's FIR), which many SIP video phones still expect. The
//! answer changes nothing: a peer that refuses it (415, 501) is not asked
//! again.

use std::collections::VecDeque;
use std::time::Instant;

use crate::dialog::{Dialog, RequestContext};
use crate::in_dialog::InDialogRequest;
use crate::message::Received;
use crate::transaction::Timers;
use crate::transmit::Transmit;

const CONTENT_TYPE: &str = "application/media_control+xml";
/// RFC 5168 §4's document.
const PICTURE_FAST_UPDATE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n<media_control>\r\n  <vc_primitive>\r\n    <to_encoder>\r\n      <picture_fast_update/>\r\n    </to_encoder>\r\n  </vc_primitive>\r\n</media_control>\r\n";

#[derive(Debug)]
pub struct MediaControl {
    timers: Timers,
    infos: Vec<InDialogRequest>,
    /// The peer answered an INFO with an error: it does not do this.
    refused: bool,
}

impl MediaControl {
    pub fn new(timers: Timers) -> MediaControl {
        MediaControl {
            timers,
            infos: Vec::new(),
            refused: false,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.infos.iter().all(InDialogRequest::is_terminated)
    }

    /// Sends one INFO, unless one is still unanswered or the peer refused.
    pub fn picture_fast_update(
        &mut self,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> bool {
        if self.refused || !self.is_idle() {
            return false;
        }
        let Some(info) = InDialogRequest::send_method(
            dialog,
            ctx,
            self.timers,
            now,
            "INFO",
            &[],
            Some((CONTENT_TYPE, PICTURE_FAST_UPDATE)),
        ) else {
            return false;
        };
        self.infos.push(info);
        self.drain(out);
        true
    }

    /// A response to one of our INFOs, if it is one.
    pub fn handle_response(
        &mut self,
        rx: &Received,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> bool {
        let Some(response) = rx.response() else {
            return false;
        };
        if rx.cseq_method != "INFO" {
            return false;
        }
        let branch = rx.branch();
        let Some(r) = self
            .infos
            .iter_mut()
            .find(|r| crate::outbound_call::branch_of(r.request()) == branch)
        else {
            return false;
        };
        r.handle_response(response.clone(), now);
        if r.final_code().is_some_and(|c| c >= 300) {
            self.refused = true;
        }
        self.drain(out);
        true
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.infos
            .iter()
            .filter_map(InDialogRequest::poll_timeout)
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Transmit>) {
        for r in &mut self.infos {
            r.handle_timeout(now);
        }
        self.drain(out);
    }

    fn drain(&mut self, out: &mut VecDeque<Transmit>) {
        for r in &mut self.infos {
            r.drain(out);
        }
        self.infos.retain(|r| !r.is_terminated());
    }
}
