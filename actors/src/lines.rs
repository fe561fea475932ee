//! A client's calls, as the lines of a desk phone: each call has an id
//! (1, 2, 3… per connection) that every event about it carries and every
//! call method may name. At most one line is active, and only the active
//! line carries the client's audio; the others are on hold or ringing
//! (call waiting). `sip.lines` bounds how many a connection holds.
//!
//! A method that names no call means the obvious one: `accept` and
//! `reject` the ringing call, `unhold` the call most recently held, every
//! other method the active call (or, with none active, the only call).

use std::time::Instant;

use actix::Addr;
use sono_rtmp::phone::CallId;

use crate::call::Call;
use crate::control::{CallDirection, CallState, Responder};
use crate::media_bridge::MediaBridge;
use crate::metrics::CallPhase;

/// One call of the client.
pub struct Line {
    pub id: CallId,
    pub call: Addr<Call>,
    pub direction: CallDirection,
    pub remote_uri: String,
    /// The last `Sono.Call.Status` code.
    pub status: Option<u8>,
    pub started: Instant,
    /// The SIP Call-ID of an inbound call (its INVITE's retransmissions
    /// come to the session until the call's actor owns the Call-ID).
    pub inbound_call_id: Option<String>,
    /// An inbound call not yet accepted nor rejected.
    pub ringing: bool,
    /// The `dial` this call still has to answer.
    pub pending_dial: Option<Responder>,
    /// The answered call's media bridge.
    pub media: Option<Addr<MediaBridge>>,
    /// Since when the client holds this call (asked for; `Sono.Call.Held`
    /// confirms); the latest is what `unhold` means by default.
    held_since: Option<Instant>,
    /// The line whose peer asked for this call (its REFER): told how this
    /// call goes until a final status, and replaced by it once answered.
    pub referred_from: Option<CallId>,
}

impl Line {
    pub fn new(id: CallId, call: Addr<Call>, direction: CallDirection, remote_uri: String) -> Line {
        Line {
            id,
            call,
            direction,
            remote_uri,
            status: None,
            started: Instant::now(),
            inbound_call_id: None,
            ringing: direction == CallDirection::Inbound,
            pending_dial: None,
            media: None,
            held_since: None,
            referred_from: None,
        }
    }

    /// The phase `sono_calls{state}` counts this call in.
    pub fn phase(&self) -> Option<CallPhase> {
        match (self.status, self.direction) {
            (None, CallDirection::Inbound) => Some(CallPhase::Ringing),
            (None, CallDirection::Outbound) | (Some(1), _) => Some(CallPhase::InProgress),
            (Some(2), _) => Some(CallPhase::Connected),
            (Some(3), _) => Some(CallPhase::Disconnecting),
            (Some(4), _) => Some(CallPhase::Media),
            _ => None,
        }
    }

    /// The client holds this call.
    pub fn is_held(&self) -> bool {
        self.held_since.is_some()
    }

    /// The client holds the call from now on, or no longer.
    pub fn set_held(&mut self, held: bool) {
        if held != self.is_held() {
            self.held_since = held.then(Instant::now);
        }
    }

    /// Answered and not ended: it can be held, resumed, sent DTMF.
    pub fn is_up(&self) -> bool {
        self.media.is_some()
    }

    pub fn state(&self, active: bool) -> CallState {
        CallState {
            id: self.id,
            direction: self.direction,
            remote_uri: self.remote_uri.clone(),
            status: self.status,
            age_seconds: self.started.elapsed().as_secs(),
            held: self.is_held(),
            active,
        }
    }
}

/// Which call a method means when it names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultCall {
    /// The active call, else the only one.
    Active,
    /// The ringing inbound call.
    Ringing,
    /// The call most recently held.
    LastHeld,
}

/// The client's calls.
pub struct Lines {
    lines: Vec<Line>,
    active: Option<CallId>,
    next_id: CallId,
    /// The two calls of a three-way call (the host, the active one, first).
    pub three_way: Option<(CallId, CallId)>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            lines: Vec::new(),
            active: None,
            next_id: 1,
            three_way: None,
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The id the next call gets.
    pub fn next_id(&mut self) -> CallId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    pub fn add(&mut self, line: Line) {
        self.lines.push(line);
    }

    pub fn get(&self, id: CallId) -> Option<&Line> {
        self.lines.iter().find(|l| l.id == id)
    }

    pub fn get_mut(&mut self, id: CallId) -> Option<&mut Line> {
        self.lines.iter_mut().find(|l| l.id == id)
    }

    pub fn remove(&mut self, id: CallId) -> Option<Line> {
        let at = self.lines.iter().position(|l| l.id == id)?;
        if self.active == Some(id) {
            self.active = None;
        }
        Some(self.lines.remove(at))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Line> + '_ {
        self.active = None;
        self.lines.drain(..)
    }

    pub fn active(&self) -> Option<&Line> {
        self.active.and_then(|id| self.get(id))
    }

    pub fn active_id(&self) -> Option<CallId> {
        self.active
    }

    pub fn set_active(&mut self, id: Option<CallId>) {
        self.active = id;
    }

    pub fn ringing(&self) -> Option<&Line> {
        self.lines.iter().find(|l| l.ringing)
    }

    /// The line an inbound INVITE with this Call-ID already rings on.
    pub fn by_inbound_call_id(&self, call_id: &str) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| l.inbound_call_id.as_deref() == Some(call_id))
    }

    /// Two different calls for a method about a pair (`join`,
    /// `three_way`): `a` or the active call, `b` or the one other answered
    /// call; the reason (for the client) if there are not two.
    pub fn pick_pair(
        &self,
        a: Option<CallId>,
        b: Option<CallId>,
    ) -> Result<(CallId, CallId), String> {
        let a = self.pick(a, DefaultCall::Active)?;
        let b =
            match b {
                Some(b) => self.pick(Some(b), DefaultCall::Active)?,
                None => {
                    let mut others = self.lines.iter().filter(|l| l.id != a && l.is_up());
                    match (others.next(), others.next()) {
                        (Some(only), None) => only.id,
                        _ => return Err(
                            "name the second call: there is not exactly one other answered call"
                                .into(),
                        ),
                    }
                }
            };
        if a == b {
            return Err("two different calls are needed".into());
        }
        Ok((a, b))
    }

    /// The call `asked` names, or the one `default` means; the reason
    /// (for the client) if there is none.
    pub fn pick(&self, asked: Option<CallId>, default: DefaultCall) -> Result<CallId, String> {
        if let Some(id) = asked {
            return self
                .get(id)
                .map(|l| l.id)
                .ok_or_else(|| format!("there is no call {id}"));
        }
        let found = match default {
            DefaultCall::Active => {
                let only = match self.lines.as_slice() {
                    [only] => Some(only),
                    _ => None,
                };
                self.active().or(only)
            }
            DefaultCall::Ringing => self.ringing(),
            DefaultCall::LastHeld => self
                .lines
                .iter()
                .filter(|l| l.is_held())
                .max_by_key(|l| l.held_since),
        };
        found.map(|l| l.id).ok_or_else(|| {
            match (default, self.lines.len()) {
                (_, 0) => "there is no call",
                (DefaultCall::Ringing, _) => "there is no incoming call ringing",
                (DefaultCall::LastHeld, _) => "no call is on hold",
                (DefaultCall::Active, _) => "no call is active: name the call (its id)",
            }
            .to_owned()
        })
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}
