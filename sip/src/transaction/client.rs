//! Client transactions: the INVITE client transaction (RFC 3261 §17.1.1, with
//! the Accepted state of RFC 6026 §7.2) and the non-INVITE client transaction
//! (§17.1.2). Over an unreliable transport they retransmit the request (timers A
//! and E), give up after 64·T1 (timers B and F), answer non-2xx finals to INVITE
//! with ACK (§17.1.1.3) and absorb retransmitted responses (timers D, K and M).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::prelude::*;
use rsip::{Header, Method, Request, Response};

use super::{Deadlines, Due, Timers};

/// Where the transaction is (figures 5 and 6 of RFC 3261, and RFC 6026's Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing heard (INVITE's "Calling", non-INVITE's "Trying").
    Calling,
    Proceeding,
    /// A non-2xx final (INVITE) or any final (non-INVITE) arrived; absorbing retransmissions.
    Completed,
    /// INVITE got a 2xx; further 2xx go to the transaction user (RFC 6026).
    Accepted,
    Terminated,
}

/// What the transaction user must hear.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Response(Response),
    /// No final response within 64·T1 (timer B or F): treat as 408.
    Timeout,
    /// The transport could not send the request: treat as 503 (§8.1.3.1).
    TransportError,
}

#[derive(Debug)]
pub struct ClientTransaction {
    request: Request,
    wire: Vec<u8>,
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: ClientState,
    /// Timers A or E, B or F, and D, K or M.
    deadlines: Deadlines,
    /// The ACK for a non-2xx final, resent when that final is retransmitted.
    ack: Option<Vec<u8>>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl ClientTransaction {
    /// Starts the transaction: the request is queued for sending at once.
    pub fn new(
        request: Request,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> ClientTransaction {
        let invite = request.method == Method::Invite;
        let wire = request.to_string().into_bytes();
        let mut transmit = VecDeque::new();
        transmit.push_back(wire.clone());
        ClientTransaction {
            request,
            wire,
            invite,
            reliable,
            timers,
            state: ClientState::Calling,
            deadlines: Deadlines {
                retransmit_at: (!reliable).then(|| now + timers.t1),
                timeout_at: Some(now + timers.timeout()),
                ..Deadlines::new(timers.t1)
            },
            ack: None,
            transmit,
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether a final response came (or the transaction gave up): nothing
    /// more is waited for from the peer.
    pub fn has_final(&self) -> bool {
        !matches!(self.state(), ClientState::Calling | ClientState::Proceeding)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// The next datagram or stream write to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadlines.due(now) {
            Due::End => self.terminate(),
            Due::Timeout => {
                self.events.push_back(ClientEvent::Timeout);
                self.terminate();
            }
            Due::Retransmit => {
                self.transmit.push_back(self.wire.clone());
                let interval = self.deadlines.interval;
                let next = match (self.invite, self.state) {
                    // Timer A doubles without bound (§17.1.1.2).
                    (true, _) => interval * 2,
                    // Timer E doubles up to T2, and is T2 once a provisional arrived.
                    (false, ClientState::Proceeding) => self.timers.t2,
                    (false, _) => (interval * 2).min(self.timers.t2),
                };
                self.deadlines.reschedule(now, next);
            }
            Due::Nothing => {}
        }
    }

    /// A response whose top Via branch (and CSeq method) matched this transaction (§17.1.3).
    pub fn handle_response(&mut self, response: Response, now: Instant) {
        let code = response.status_code.code();
        let provisional = code < 200;
        match (self.state, self.invite) {
            (ClientState::Calling | ClientState::Proceeding, _) if provisional => {
                self.state = ClientState::Proceeding;
                if self.invite {
                    // A provisional stops INVITE retransmissions and timer B (§17.1.1.2).
                    self.deadlines.stop_running();
                } else if self.deadlines.is_retransmitting() {
                    self.deadlines.interval = self.timers.t2;
                }
                self.events.push_back(ClientEvent::Response(response));
            }
            (ClientState::Calling | ClientState::Proceeding, true) if code < 300 => {
                self.state = ClientState::Accepted;
                self.deadlines.stop_running();
                self.deadlines.end_at = Some(now + self.timers.timeout());
                self.events.push_back(ClientEvent::Response(response));
            }
            (ClientState::Calling | ClientState::Proceeding, true) => {
                let ack = self.build_ack(&response).to_string().into_bytes();
                self.transmit.push_back(ack.clone());
                self.ack = Some(ack);
                self.state = ClientState::Completed;
                self.deadlines.stop_running();
                // Timer D: at least 32 s over UDP, to absorb retransmitted finals.
                let d = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(self.timers.timeout())
                };
                self.deadlines.end_at = Some(now + d);
                self.events.push_back(ClientEvent::Response(response));
                self.end_now_if_due(now);
            }
            (ClientState::Calling | ClientState::Proceeding, false) => {
                self.state = ClientState::Completed;
                self.deadlines.stop_running();
                let k = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.deadlines.end_at = Some(now + k);
                self.events.push_back(ClientEvent::Response(response));
                self.end_now_if_due(now);
            }
            (ClientState::Completed, true) if code >= 300 => {
                if let Some(ack) = &self.ack {
                    self.transmit.push_back(ack.clone());
                }
            }
            (ClientState::Accepted, _) if (200..300).contains(&code) => {
                self.events.push_back(ClientEvent::Response(response));
            }
            _ => {}
        }
    }

    /// The transport failed to send: the transaction is over (§17.1.4).
    pub fn handle_transport_error(&mut self) {
        if self.state != ClientState::Terminated {
            self.events.push_back(ClientEvent::TransportError);
            self.terminate();
        }
    }

    fn end_now_if_due(&mut self, now: Instant) {
        if self.deadlines.due(now) == Due::End {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.deadlines.clear();
    }

    /// The ACK for a non-2xx final (§17.1.1.3): the request's URI, top Via,
    /// Route set, From, Call-ID and CSeq number; the response's To (with its tag).
    fn build_ack(&self, response: &Response) -> Request {
        let mut headers = rsip::Headers::default();
        if let Ok(via) = self.request.via_header() {
            headers.push(Header::Via(via.clone()));
        }
        for h in self.request.headers.iter() {
            if let Header::Route(r) = h {
                headers.push(Header::Route(r.clone()));
            }
        }
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::from(70u32)));
        if let Ok(from) = self.request.from_header() {
            headers.push(Header::From(from.clone()));
        }
        match response.to_header() {
            Ok(to) => headers.push(Header::To(to.clone())),
            Err(_) => {
                if let Ok(to) = self.request.to_header() {
                    headers.push(Header::To(to.clone()));
                }
            }
        }
        if let Ok(call_id) = self.request.call_id_header() {
            headers.push(Header::CallId(call_id.clone()));
        }
        let seq = self
            .request
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or(1);
        headers.push(Header::CSeq(
            rsip::typed::CSeq {
                seq,
                method: Method::Ack,
            }
            .into(),
        ));
        headers.push(Header::ContentLength(rsip::headers::ContentLength::from(
            0u32,
        )));
        Request {
            method: Method::Ack,
            uri: self.request.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
To: <sip:bob@127.0.0.1:5080>\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

    fn request(text: &str) -> Request {
        Request::try_from(text.as_bytes()).expect("a valid request")
    }

    fn response(code: u16, method: &str) -> Response {
        let text = format!(
            "SIP/2.0 {code} Whatever\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport=5060\r\n\
To: <sip:bob@127.0.0.1:5080>;tag=a6c85cf\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 {method}\r\n\
Content-Length: 0\r\n\r\n"
        );
        Response::try_from(text.as_bytes()).expect("a valid response")
    }

    /// Runs the transaction's timers until `until`, recording when it transmitted.
    fn run(t: &mut ClientTransaction, start: Instant, until: Duration) -> Vec<u128> {
        let mut sent = Vec::new();
        while t.poll_transmit().is_some() {
            sent.push(0);
        }
        let mut guard = 0;
        while let Some(at) = t.poll_timeout() {
            guard += 1;
            assert!(guard < 1000, "runaway timers");
            if at > start + until {
                break;
            }
            t.handle_timeout(at);
            while t.poll_transmit().is_some() {
                sent.push((at - start).as_millis());
            }
        }
        sent
    }

    #[test]
    fn invite_over_udp_retransmits_by_timer_a_and_times_out_by_timer_b() {
        let now = Instant::now();
        let mut t = ClientTransaction::new(request(INVITE), false, Timers::default(), now);
        let sent = run(&mut t, now, Duration::from_secs(40));
        // 0, then A = 0.5, 1, 2, 4, 8, 16 s apart; B at 32 s ends it.
        assert_eq!(sent, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(t.poll_event(), Some(ClientEvent::Timeout));
        assert!(t.is_terminated());
    }

    #[test]
    fn non_invite_retransmits_up_to_t2_and_at_t2_once_proceeding() {
        let now = Instant::now();
        let register = INVITE
            .replace("INVITE sip", "REGISTER sip")
            .replace("314159 INVITE", "314159 REGISTER");
        let mut t = ClientTransaction::new(request(&register), false, Timers::default(), now);
        let sent = run(&mut t, now, Duration::from_secs(40));
        // E: 0.5, 1, 2, 4, 4, 4 … until F at 32 s.
        assert_eq!(
            sent,
            vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(t.poll_event(), Some(ClientEvent::Timeout));

        let mut t = ClientTransaction::new(request(&register), false, Timers::default(), now);
        t.poll_transmit();
        t.handle_response(response(100, "REGISTER"), now + Duration::from_millis(100));
        assert_eq!(t.state(), ClientState::Proceeding);
        let sent = run(&mut t, now, Duration::from_secs(10));
        assert_eq!(sent, vec![500, 4500, 8500], "T2 apart once proceeding");
        t.handle_response(response(200, "REGISTER"), now + Duration::from_secs(10));
        assert_eq!(t.state(), ClientState::Completed);
        t.handle_response(response(200, "REGISTER"), now + Duration::from_secs(11));
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(
            events.len(),
            2,
            "the 100 and the first 200 only: {events:?}"
        );
        // Timer K (T4) then ends it; nothing more is sent.
        assert_eq!(
            run(&mut t, now, Duration::from_secs(20)),
            Vec::<u128>::new()
        );
        assert!(t.is_terminated());
    }

    #[test]
    fn a_provisional_stops_invite_retransmissions_and_timer_b() {
        let now = Instant::now();
        let mut t = ClientTransaction::new(request(INVITE), false, Timers::default(), now);
        t.poll_transmit();
        t.handle_response(response(180, "INVITE"), now + Duration::from_millis(200));
        assert_eq!(t.poll_timeout(), None, "no timer while ringing");
        t.handle_response(response(183, "INVITE"), now + Duration::from_secs(60));
        assert_eq!(t.state(), ClientState::Proceeding);
        assert_eq!(std::iter::from_fn(|| t.poll_event()).count(), 2);
    }

    #[test]
    fn invite_rejected_is_acked_and_the_ack_repeated_for_retransmitted_finals() {
        let now = Instant::now();
        let mut t = ClientTransaction::new(request(INVITE), false, Timers::default(), now);
        t.poll_transmit();
        t.handle_response(response(486, "INVITE"), now + Duration::from_millis(300));
        assert_eq!(t.state(), ClientState::Completed);
        let ack = String::from_utf8(t.poll_transmit().expect("an ACK")).unwrap();
        assert!(
            ack.starts_with("ACK sip:bob@127.0.0.1:5080 SIP/2.0\r\n"),
            "{ack}"
        );
        assert!(
            ack.contains("branch=z9hG4bK776asdhds"),
            "same branch as the INVITE: {ack}"
        );
        assert!(ack.contains("tag=a6c85cf"), "the response's To tag: {ack}");
        assert!(ack.contains("CSeq: 314159 ACK"), "{ack}");
        assert!(ack.contains("Route: <sip:proxy.example.com;lr>"), "{ack}");
        let parsed = Request::try_from(ack.as_bytes()).expect("the ACK parses");
        assert_eq!(parsed.method, Method::Ack);
        // The 486 again: ACK again, and the TU hears it once only.
        t.handle_response(response(486, "INVITE"), now + Duration::from_secs(1));
        assert!(t.poll_transmit().is_some());
        assert_eq!(std::iter::from_fn(|| t.poll_event()).count(), 1);
        // Timer D (32 s) ends it.
        t.handle_timeout(now + Duration::from_secs(33));
        assert!(t.is_terminated());
    }

    #[test]
    fn invite_accepted_passes_2xx_retransmissions_to_the_tu_until_timer_m() {
        let now = Instant::now();
        let mut t = ClientTransaction::new(request(INVITE), false, Timers::default(), now);
        t.poll_transmit();
        t.handle_response(response(200, "INVITE"), now + Duration::from_millis(300));
        assert_eq!(t.state(), ClientState::Accepted);
        assert!(
            t.poll_transmit().is_none(),
            "the TU, not the transaction, ACKs a 2xx"
        );
        t.handle_response(response(200, "INVITE"), now + Duration::from_secs(1));
        t.handle_response(response(180, "INVITE"), now + Duration::from_secs(1));
        assert_eq!(std::iter::from_fn(|| t.poll_event()).count(), 2);
        t.handle_timeout(now + Duration::from_secs(33));
        assert!(t.is_terminated());
    }

    #[test]
    fn over_a_reliable_transport_nothing_is_retransmitted() {
        let now = Instant::now();
        let mut t = ClientTransaction::new(request(INVITE), true, Timers::default(), now);
        assert_eq!(run(&mut t, now, Duration::from_secs(40)), vec![0]);
        assert_eq!(t.poll_event(), Some(ClientEvent::Timeout));
        let mut t = ClientTransaction::new(request(INVITE), true, Timers::default(), now);
        t.handle_response(response(404, "INVITE"), now);
        assert!(t.is_terminated(), "timer D is zero over TCP");
    }

    #[test]
    fn transmission_loss_is_recovered_by_retransmission() {
        // The first two copies are lost; the third reaches the peer, which answers.
        let now = Instant::now();
        let register = INVITE
            .replace("INVITE sip", "OPTIONS sip")
            .replace("314159 INVITE", "314159 OPTIONS");
        let mut t = ClientTransaction::new(request(&register), false, Timers::default(), now);
        let mut delivered = 0;
        let mut clock = now;
        for _ in 0..3 {
            while t.poll_transmit().is_some() {
                delivered += 1;
            }
            if delivered == 3 {
                break;
            }
            clock = t.poll_timeout().expect("a retransmission is due");
            t.handle_timeout(clock);
        }
        assert_eq!(delivered, 3);
        assert_eq!(clock - now, Duration::from_millis(1500));
        t.handle_response(response(200, "OPTIONS"), clock + Duration::from_millis(5));
        assert!(
            matches!(t.poll_event(), Some(ClientEvent::Response(r)) if r.status_code.code() == 200)
        );
        t.handle_transport_error();
        assert_eq!(t.poll_event(), Some(ClientEvent::TransportError));
    }
}
