//! Call transfer inside a dialog, both ways, sans-I/O (RFC 3515 REFER,
//! RFC 5589 call control transfer, RFC 3420 sipfrag bodies), shared by both
//! call cores.
//!
//! - **We transfer the peer** ([`Transfers::refer`]): our REFER names the
//!   target in Refer-To; its answer (202) and the peer's NOTIFYs, each a
//!   sipfrag with the status its call to the target reached, come out as
//!   [`TransferEvent::Progress`]. A final 2xx means the peer reached the
//!   target: the core then ends our call with BYE (RFC 5589 §6.1).
//! - **The peer transfers us** ([`Transfers::on_request`]): its REFER is
//!   judged before anything is dialled — a REFER is a way to make us call
//!   someone, so a target the dial plan refuses gets 403 and nothing is
//!   sent; one transfer at a time (another REFER meanwhile: 403). Accepted
//!   ones answer 202 and come out as [`TransferEvent::Referred`]; the core
//!   then reports the new call's progress with [`Transfers::notify`]
//!   (Event: refer, Subscription-State active until the final status).

use std::collections::VecDeque;
use std::time::Instant;

use crate::dial_plan::{DialPlan, Verdict};
use crate::dialog::{uri_of, Dialog, RequestContext};
use crate::dialog_server::DialogServer;
use crate::in_dialog::InDialogRequest;
use crate::message::Received;
use crate::response::header_value;
use crate::transaction::Timers;
use crate::transmit::Transmit;

/// A sipfrag body's content type (RFC 3420).
const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// What a transfer tells the call's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// Our transfer of the peer: the REFER's answer, then each status the
    /// peer's call to the target reached; `done` once it is final.
    Progress {
        code: u16,
        reason: String,
        done: bool,
    },
    /// The peer asks us to call `target` (its REFER got 202); `replaces`
    /// is the Replaces header its Refer-To carried (attended transfer,
    /// RFC 3891), to be sent on with our INVITE.
    Referred {
        target: String,
        replaces: Option<String>,
        referred_by: Option<String>,
    },
}

impl TransferEvent {
    /// Our transfer reached its target: the peer's final NOTIFY said 2xx.
    pub fn transferred_away(&self) -> bool {
        matches!(self, TransferEvent::Progress { code, done: true, .. } if (200..300).contains(code))
    }
}

/// A confirmed dialog's identity as another party would name it in a
/// Replaces header (RFC 3891 §3), and where it can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The peer's Contact.
    pub remote_target: String,
}

impl DialogId {
    pub fn of(dialog: &Dialog) -> DialogId {
        DialogId {
            call_id: dialog.call_id.clone(),
            local_tag: dialog.local_tag.clone(),
            remote_tag: dialog.remote_tag.clone(),
            remote_target: dialog.remote_target.clone(),
        }
    }

    /// The Refer-To URI of an attended transfer to this dialog's peer: its
    /// Contact with a Replaces header, so that the peer we REFER calls it
    /// and takes our place. The tags are the recipient's view (RFC 3891
    /// §3: to-tag is its local tag, our remote one).
    pub fn replacing_uri(&self) -> String {
        let replaces = format!(
            "{};to-tag={};from-tag={}",
            self.call_id, self.remote_tag, self.local_tag
        );
        let target = self
            .remote_target
            .split_once('?')
            .map_or(self.remote_target.as_str(), |(t, _)| t);
        format!("{target}?Replaces={}", escape_header_value(&replaces))
    }
}

/// The answer the core owes a REFER or NOTIFY the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    pub reason: String,
}

impl Answer {
    fn new(code: u16, reason: impl Into<String>) -> Answer {
        Answer {
            code,
            reason: reason.into(),
        }
    }
}

/// The transfers of one dialog.
#[derive(Debug)]
pub struct Transfers {
    timers: Timers,
    /// Our REFER, while its transaction runs.
    refer: Option<InDialogRequest>,
    /// Our transfer is under way (accepted, no final NOTIFY yet).
    transferring: bool,
    /// The peer's transfer of us is under way: we owe it NOTIFYs.
    referred: bool,
    notifies: Vec<InDialogRequest>,
    events: VecDeque<TransferEvent>,
}

impl Transfers {
    pub fn new(timers: Timers) -> Transfers {
        Transfers {
            timers,
            refer: None,
            transferring: false,
            referred: false,
            notifies: Vec::new(),
            events: VecDeque::new(),
        }
    }

    pub fn poll_event(&mut self) -> Option<TransferEvent> {
        self.events.pop_front()
    }

    /// Whether our transfer of the peer is under way.
    pub fn is_transferring(&self) -> bool {
        self.transferring || self.refer.as_ref().is_some_and(|r| !r.is_answered())
    }

    pub fn is_idle(&self) -> bool {
        self.refer
            .as_ref()
            .is_none_or(InDialogRequest::is_terminated)
            && self.notifies.iter().all(InDialogRequest::is_terminated)
    }

    /// Sends REFER with `Refer-To: <target>` (the dial plan has allowed
    /// it); false if a transfer of ours is already under way.
    pub fn refer(
        &mut self,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        target: &str,
        referred_by: &str,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> bool {
        if self.is_transferring() {
            return false;
        }
        let refer_to = format!("<{target}>");
        let by = format!("<{referred_by}>");
        let extra = [
            ("Refer-To", refer_to.as_str()),
            ("Referred-By", by.as_str()),
        ];
        let Some(refer) =
            InDialogRequest::send_method(dialog, ctx, self.timers, now, "REFER", &extra, None)
        else {
            return false;
        };
        self.refer = Some(refer);
        self.transferring = true;
        self.drain(out);
        true
    }

    /// A response to one of our REFERs or NOTIFYs, if it is one.
    pub fn handle_response(
        &mut self,
        rx: &Received,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) -> bool {
        let Some(response) = rx.response() else {
            return false;
        };
        let branch = rx.branch();
        let ours = |r: &InDialogRequest| crate::outbound_call::branch_of(r.request()) == branch;
        match rx.cseq_method.as_str() {
            "REFER" => match &mut self.refer {
                Some(r) if ours(r) => r.handle_response(response.clone(), now),
                _ => return false,
            },
            "NOTIFY" => match self.notifies.iter_mut().find(|r| ours(r)) {
                Some(r) => r.handle_response(response.clone(), now),
                None => return false,
            },
            _ => return false,
        }
        self.drain(out);
        true
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.refer
            .iter()
            .chain(self.notifies.iter())
            .filter_map(InDialogRequest::poll_timeout)
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Transmit>) {
        for r in self.refer.iter_mut().chain(self.notifies.iter_mut()) {
            r.handle_timeout(now);
        }
        self.drain(out);
    }

    /// A REFER or NOTIFY from the peer inside the dialog: what to answer.
    /// `judge` applies the dial plan to a REFER's target.
    pub fn on_request(
        &mut self,
        rx: &Received,
        judge: impl Fn(&str) -> Result<(), String>,
    ) -> Answer {
        let Some(request) = rx.request() else {
            return Answer::new(400, "Bad Request");
        };
        let headers = &request.headers;
        match rx.cseq_method.as_str() {
            "NOTIFY" => {
                let event = header_value(headers, "Event").unwrap_or_default();
                let package = event.split(';').next().unwrap_or_default().trim();
                if !package.eq_ignore_ascii_case("refer") {
                    return Answer::new(489, "Bad Event");
                }
                if !self.transferring {
                    return Answer::new(481, "Subscription Does Not Exist");
                }
                let Some((code, reason)) = parse_sipfrag(&String::from_utf8_lossy(&request.body))
                else {
                    return Answer::new(400, "Bad Request (no sipfrag status line)");
                };
                let terminated = header_value(headers, "Subscription-State")
                    .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
                let done = code >= 200 || terminated;
                if done {
                    self.transferring = false;
                }
                self.events
                    .push_back(TransferEvent::Progress { code, reason, done });
                Answer::new(200, "OK")
            }
            "REFER" => {
                let Some(refer_to) = header_value(headers, "Refer-To") else {
                    return Answer::new(400, "Bad Request (no Refer-To)");
                };
                let uri = uri_of(&refer_to);
                let (target, replaces) = split_replaces(uri);
                if !target.to_ascii_lowercase().starts_with("sip:")
                    && !target.to_ascii_lowercase().starts_with("sips:")
                {
                    return Answer::new(416, "Unsupported URI Scheme");
                }
                if self.referred {
                    return Answer::new(403, "Forbidden (a transfer is already under way)");
                }
                if let Err(why) = judge(&target) {
                    return Answer::new(403, format!("Forbidden ({why})"));
                }
                self.referred = true;
                self.events.push_back(TransferEvent::Referred {
                    target,
                    replaces,
                    referred_by: header_value(headers, "Referred-By"),
                });
                Answer::new(202, "Accepted")
            }
            _ => Answer::new(501, "Not Implemented"),
        }
    }

    /// Answers a REFER or NOTIFY the dialog server left to the core
    /// ([`DialogOutcome::Unanswered`](crate::dialog_server::DialogOutcome)):
    /// judged by `plan` (a REFER's target), answered through `server`, and
    /// an accepted REFER followed by its first NOTIFY, 100 Trying.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &mut self,
        rx: &Received,
        source: std::net::SocketAddr,
        plan: Option<&DialPlan>,
        server: &mut DialogServer,
        dialog: Option<&mut Dialog>,
        ctx: &RequestContext<'_>,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        let Some(request) = rx.request() else {
            return;
        };
        if dialog.is_none() && rx.cseq_method == "REFER" {
            let reply_to = rx.top_via.response_address(source);
            let reason = "Forbidden (the call is not up)";
            server.respond(rx, request, reply_to, 403, reason, &[], None, now);
            server.drain(out);
            return;
        }
        let judge = |target: &str| match plan.map(|p| p.check(target)) {
            None | Some(Verdict::Allowed(_)) => Ok(()),
            Some(Verdict::Forbidden(reason)) => Err(reason),
            Some(Verdict::Invalid(e)) => Err(format!("{target}: {e}")),
        };
        let answer = self.on_request(rx, judge);
        let reply_to = rx.top_via.response_address(source);
        server.respond(
            rx,
            request,
            reply_to,
            answer.code,
            &answer.reason,
            &[],
            None,
            now,
        );
        server.drain(out);
        if answer.code == 202 {
            if let Some(dialog) = dialog {
                self.notify(dialog, ctx, 100, "Trying", now, out);
            }
        }
    }

    /// Tells the peer that transferred us how our call to the target goes
    /// (a NOTIFY with its status as sipfrag; the final one ends the
    /// subscription). Nothing if no transfer of us is under way.
    pub fn notify(
        &mut self,
        dialog: &mut Dialog,
        ctx: &RequestContext<'_>,
        code: u16,
        reason: &str,
        now: Instant,
        out: &mut VecDeque<Transmit>,
    ) {
        if !self.referred {
            return;
        }
        let last = code >= 200;
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let frag = format!("SIP/2.0 {code} {reason}\r\n");
        let extra = [("Event", "refer"), ("Subscription-State", state)];
        if let Some(n) = InDialogRequest::send_method(
            dialog,
            ctx,
            self.timers,
            now,
            "NOTIFY",
            &extra,
            Some((SIPFRAG, &frag)),
        ) {
            self.notifies.push(n);
        }
        if last {
            self.referred = false;
        }
        self.drain(out);
    }

    fn drain(&mut self, out: &mut VecDeque<Transmit>) {
        if let Some(r) = &mut self.refer {
            let before = r.final_code();
            r.drain(out);
            if let (None, Some(code)) = (before, r.final_code()) {
                if (200..300).contains(&code) {
                    self.events.push_back(TransferEvent::Progress {
                        code,
                        reason: crate::response::reason_phrase(code).to_owned(),
                        done: false,
                    });
                } else {
                    self.transferring = false;
                    self.events.push_back(TransferEvent::Progress {
                        code,
                        reason: crate::response::reason_phrase(code).to_owned(),
                        done: true,
                    });
                }
            }
        }
        for n in &mut self.notifies {
            n.drain(out);
        }
        self.notifies.retain(|n| !n.is_terminated());
    }
}

/// The status line of a sipfrag body (`SIP/2.0 200 OK`).
pub fn parse_sipfrag(body: &str) -> Option<(u16, String)> {
    let line = body.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok()?;
    (100..700)
        .contains(&code)
        .then(|| (code, reason.trim().to_owned()))
}

/// A Refer-To URI without its headers, and its Replaces header
/// (`sip:b@h?Replaces=call%40id%3Bto-tag%3Da%3Bfrom-tag%3Db`, unescaped).
fn split_replaces(uri: &str) -> (String, Option<String>) {
    let Some((target, headers)) = uri.split_once('?') else {
        return (uri.to_owned(), None);
    };
    let replaces = headers.split('&').find_map(|h| {
        let (name, value) = h.split_once('=')?;
        name.eq_ignore_ascii_case("Replaces")
            .then(|| unescape(value))
    });
    (target.to_owned(), replaces)
}

/// `%XX` escapes of a URI header value, decoded (RFC 3261 §19.1.2).
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3);
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `value` escaped for a URI header (RFC 3261 §19.1.2: `hnv-unreserved`
/// and unreserved characters stay, everything else is `%XX`).
pub fn escape_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrags_and_replaces_are_read() {
        assert_eq!(
            parse_sipfrag("SIP/2.0 180 Ringing\r\n"),
            Some((180, "Ringing".into()))
        );
        assert_eq!(parse_sipfrag("SIP/2.0 200 OK"), Some((200, "OK".into())));
        assert_eq!(parse_sipfrag("SIP/2.0 99 X"), None);
        assert_eq!(parse_sipfrag("INVITE sip:x SIP/2.0"), None);
        assert_eq!(parse_sipfrag(""), None);
        let (t, r) = split_replaces("sip:b@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2");
        assert_eq!(t, "sip:b@h");
        assert_eq!(r.as_deref(), Some("abc@h;to-tag=1;from-tag=2"));
        assert_eq!(split_replaces("sip:b@h"), ("sip:b@h".into(), None));
        // A truncated escape is kept as it is, and nothing panics.
        assert_eq!(unescape("a%4"), "a%4");
        assert_eq!(unescape("%"), "%");
        assert_eq!(
            unescape(&escape_header_value("id@h;to-tag=x;from-tag=y")),
            "id@h;to-tag=x;from-tag=y"
        );
    }
}
