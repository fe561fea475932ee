//! Server transactions: the INVITE server transaction (RFC 3261 §17.2.1, with
//! RFC 6026's Accepted state) and the non-INVITE server transaction (§17.2.2).
//! They answer retransmitted requests with the last response, retransmit non-2xx
//! finals to INVITE until the ACK arrives (timers G and H), and absorb what comes
//! late (timers I, J and L).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::{Method, Request, Response};

use super::{Deadlines, Due, Timers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE only: no response sent yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE only: the ACK for a non-2xx final arrived.
    Confirmed,
    /// INVITE only: a 2xx was sent (RFC 6026); the TU retransmits it.
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Timer H: no ACK for a non-2xx final to INVITE.
    AckTimeout,
    TransportError,
}

#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    /// Timers G, H, and I, J or L.
    deadlines: Deadlines,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
}

impl ServerTransaction {
    /// A transaction for a new request. An INVITE is answered 100 Trying at once
    /// (§17.2.1 allows waiting 200 ms; answering at once stops retransmissions sooner).
    pub fn new(
        request: &Request,
        trying: Option<Response>,
        reliable: bool,
        timers: Timers,
    ) -> ServerTransaction {
        let invite = request.method == Method::Invite;
        let mut t = ServerTransaction {
            invite,
            reliable,
            timers,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            deadlines: Deadlines::new(timers.t1),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        };
        if let (true, Some(trying)) = (invite, trying) {
            t.send(trying.to_string().into_bytes());
        }
        t
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    fn send(&mut self, wire: Vec<u8>) {
        self.transmit.push_back(wire.clone());
        self.last_response = Some(wire);
    }

    /// The transaction user's response.
    pub fn respond(&mut self, response: &Response, now: Instant) {
        let code = response.status_code.code();
        let wire = response.to_string().into_bytes();
        match self.state {
            ServerState::Trying | ServerState::Proceeding if code < 200 => {
                self.state = ServerState::Proceeding;
                self.send(wire);
            }
            ServerState::Trying | ServerState::Proceeding if self.invite && code < 300 => {
                self.state = ServerState::Accepted;
                self.send(wire);
                self.deadlines.end_at = Some(now + self.timers.timeout());
            }
            ServerState::Trying | ServerState::Proceeding if self.invite => {
                self.state = ServerState::Completed;
                self.send(wire);
                if !self.reliable {
                    self.deadlines.retransmit_at = Some(now + self.timers.t1);
                }
                self.deadlines.timeout_at = Some(now + self.timers.timeout());
            }
            ServerState::Trying | ServerState::Proceeding => {
                self.state = ServerState::Completed;
                self.send(wire);
                let j = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.timeout()
                };
                self.deadlines.end_at = Some(now + j);
                self.end_now_if_due(now);
            }
            // The TU retransmits its 2xx itself (RFC 6026 §7.1).
            ServerState::Accepted if (200..300).contains(&code) => self.transmit.push_back(wire),
            _ => {}
        }
    }

    /// A request that matched this transaction: a retransmission, or the ACK.
    pub fn handle_request(&mut self, request: &Request, now: Instant) {
        if request.method == Method::Ack {
            if self.state == ServerState::Completed && self.invite {
                self.state = ServerState::Confirmed;
                self.deadlines.stop_running();
                let i = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.deadlines.end_at = Some(now + i);
                self.end_now_if_due(now);
            }
            return;
        }
        // A retransmitted request gets the last response again (§17.2.1, §17.2.2).
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed) {
            if let Some(last) = &self.last_response {
                self.transmit.push_back(last.clone());
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadlines.due(now) {
            Due::End => self.terminate(),
            Due::Timeout => {
                self.events.push_back(ServerEvent::AckTimeout);
                self.terminate();
            }
            Due::Retransmit => {
                if let Some(last) = &self.last_response {
                    self.transmit.push_back(last.clone());
                }
                // Timer G doubles up to T2 (§17.2.1).
                let next = (self.deadlines.interval * 2).min(self.timers.t2);
                self.deadlines.reschedule(now, next);
            }
            Due::Nothing => {}
        }
    }

    pub fn handle_transport_error(&mut self) {
        if self.state != ServerState::Terminated {
            self.events.push_back(ServerEvent::TransportError);
            self.terminate();
        }
    }

    fn end_now_if_due(&mut self, now: Instant) {
        if self.deadlines.due(now) == Due::End {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.deadlines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str) -> Request {
        let text = format!(
            "{method} sip:sono-1@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: <sip:sono-1@127.0.0.1>\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=9fxced76sl\r\n\
Call-ID: 3848276298220188511@127.0.0.1\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_bytes()).expect("a valid request")
    }

    fn response(code: u16) -> Response {
        let text = format!(
            "SIP/2.0 {code} Whatever\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKnashds8\r\n\
To: <sip:sono-1@127.0.0.1>;tag=x1\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=9fxced76sl\r\n\
Call-ID: 3848276298220188511@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        Response::try_from(text.as_bytes()).expect("a valid response")
    }

    fn drain(t: &mut ServerTransaction) -> usize {
        std::iter::from_fn(|| t.poll_transmit()).count()
    }

    #[test]
    fn invite_rejected_retransmits_by_timer_g_until_ack() {
        let now = Instant::now();
        let invite = request("INVITE");
        let mut t = ServerTransaction::new(&invite, Some(response(100)), false, Timers::default());
        assert_eq!(drain(&mut t), 1, "100 Trying at once");
        t.handle_request(&invite, now);
        assert_eq!(
            drain(&mut t),
            1,
            "a retransmitted INVITE gets the 100 again"
        );
        t.respond(&response(486), now);
        assert_eq!(drain(&mut t), 1);
        let mut at = Vec::new();
        for _ in 0..5 {
            let due = t.poll_timeout().expect("timer G");
            t.handle_timeout(due);
            assert_eq!(drain(&mut t), 1);
            at.push((due - now).as_millis());
        }
        // G: 0.5, 1, 2, 4, 4 s apart (capped at T2).
        assert_eq!(at, vec![500, 1500, 3500, 7500, 11500]);
        t.handle_request(&request("ACK"), now + Duration::from_secs(12));
        assert_eq!(t.state(), ServerState::Confirmed);
        t.handle_timeout(now + Duration::from_secs(18));
        assert!(t.is_terminated(), "timer I");
        assert_eq!(t.poll_event(), None);
    }

    #[test]
    fn no_ack_ends_with_timer_h() {
        let now = Instant::now();
        let mut t = ServerTransaction::new(&request("INVITE"), None, false, Timers::default());
        t.respond(&response(603), now);
        let mut guard = 0;
        while let Some(due) = t.poll_timeout() {
            guard += 1;
            assert!(guard < 100);
            t.handle_timeout(due);
        }
        assert_eq!(t.poll_event(), Some(ServerEvent::AckTimeout));
        assert!(t.is_terminated());
    }

    #[test]
    fn invite_accepted_absorbs_retransmissions_until_timer_l() {
        let now = Instant::now();
        let invite = request("INVITE");
        let mut t = ServerTransaction::new(&invite, None, false, Timers::default());
        t.respond(&response(200), now);
        assert_eq!(t.state(), ServerState::Accepted);
        drain(&mut t);
        t.handle_request(&invite, now + Duration::from_millis(500));
        assert_eq!(
            drain(&mut t),
            0,
            "the TU, not the transaction, retransmits 2xx"
        );
        t.respond(&response(200), now + Duration::from_millis(500));
        assert_eq!(drain(&mut t), 1);
        t.handle_timeout(now + Duration::from_secs(32));
        assert!(t.is_terminated());
    }

    #[test]
    fn non_invite_answers_retransmissions_with_the_final_until_timer_j() {
        let now = Instant::now();
        let options = request("OPTIONS");
        let mut t = ServerTransaction::new(&options, None, false, Timers::default());
        assert_eq!(t.state(), ServerState::Trying);
        t.handle_request(&options, now);
        assert_eq!(drain(&mut t), 0, "nothing to repeat while trying");
        t.respond(&response(200), now);
        t.handle_request(&options, now + Duration::from_secs(1));
        assert_eq!(drain(&mut t), 2);
        t.handle_timeout(now + Duration::from_secs(32));
        assert!(t.is_terminated());
        let mut tcp = ServerTransaction::new(&options, None, true, Timers::default());
        tcp.respond(&response(200), now);
        assert!(tcp.is_terminated(), "timer J is zero over TCP");
    }
}
