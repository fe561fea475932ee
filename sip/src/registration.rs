//! A registration binding at a registrar, client side, sans-I/O (RFC 3261
//! §10.2): REGISTER with our Contact and Expires; digest authentication on
//! 401/407 (§22); the expiry the registrar grants, from our Contact's
//! `expires` parameter or the Expires header (§10.2.4); 423 Interval Too
//! Brief retried with its Min-Expires (§10.2.8); refreshed before it lapses;
//! retried with exponential backoff while the registrar fails or does not
//! answer; removed with Expires: 0 (§10.2.2). One Call-ID for the binding's
//! life, CSeq increasing (§10.2).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::Request;

use crate::digest::{Challenge, Credentials, DigestSession};
use crate::ids::{random_token, BRANCH_COOKIE};
use crate::message::{header_param, Received};
use crate::response::header_values;
use crate::transaction::{ClientEvent, ClientTransaction, Timers};
use crate::transmit::{Transmit, Transport};

#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// The registrar's Request-URI, `sip:domain`.
    pub registrar_uri: String,
    /// Where REGISTERs go.
    pub next_hop: SocketAddr,
    /// The address of record, `sip:user@domain`.
    pub aor: String,
    pub display_name: Option<String>,
    /// Our Contact URI for the binding.
    pub contact: String,
    pub via_sent_by: String,
    pub user_agent: String,
    pub credentials: Option<Credentials>,
    /// The expiry we ask for, in seconds.
    pub expires: u32,
    pub timers: Timers,
    pub transport: Transport,
    /// Backoff between attempts while the registrar fails: from `retry_min`
    /// doubling up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

/// What the user of the registration must hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// The binding is in place (again) for `expires` seconds.
    Registered {
        expires: u32,
        code: u16,
        reason: String,
    },
    /// The registrar refused us for good (wrong credentials, forbidden, no
    /// such user): no more attempts.
    Refused { code: u16, reason: String },
    /// An attempt failed (timeout, 5xx, 408…); the next one is in `retry_in`.
    Retrying {
        code: Option<u16>,
        reason: String,
        retry_in: Duration,
    },
    /// The binding was removed (or the registrar could not be told).
    Unregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Registering,
    Registered,
    /// Waiting for the retry timer.
    Waiting,
    Unregistering,
    /// Refused or unregistered: nothing more happens.
    Done,
}

pub struct Registration {
    config: RegistrationConfig,
    call_id: String,
    local_tag: String,
    seq: u32,
    phase: Phase,
    transaction: Option<ClientTransaction>,
    /// Digest answers given for the current attempt (at most two: one
    /// fresh, one after a stale nonce).
    auth_attempts: u32,
    /// The expiry asked for in the current attempt (423 raises it).
    asking: u32,
    refresh_at: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
    transmit: VecDeque<Transmit>,
    events: VecDeque<RegistrationEvent>,
}

impl Registration {
    /// Starts registering: the first REGISTER goes out at once.
    pub fn new(config: RegistrationConfig, now: Instant) -> Registration {
        let mut r = Registration {
            call_id: format!("{}@sono", random_token()),
            local_tag: random_token(),
            seq: 0,
            phase: Phase::Registering,
            transaction: None,
            auth_attempts: 0,
            asking: config.expires,
            refresh_at: None,
            retry_at: None,
            backoff: config.retry_min,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        r.send(r.asking, None, now);
        r
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn transport(&self) -> Transport {
        self.config.transport
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    /// Nothing more will happen: refused, or unregistered. (The last
    /// transaction may still be absorbing retransmitted responses; they
    /// change nothing.)
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.transaction.as_ref().and_then(|t| t.poll_timeout()),
            self.refresh_at,
            self.retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Removes the binding (Expires: 0). The `Unregistered` event follows
    /// the registrar's answer, or its silence.
    pub fn unregister(&mut self, now: Instant) {
        match self.phase {
            Phase::Done | Phase::Unregistering => {}
            // Also when not (yet) registered: a binding an unanswered
            // attempt made would otherwise outlive us.
            _ => {
                self.phase = Phase::Unregistering;
                self.refresh_at = None;
                self.retry_at = None;
                self.auth_attempts = 0;
                self.send(0, None, now);
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = &mut self.transaction {
            t.handle_timeout(now);
        }
        self.drain(now);
        if self.refresh_at.is_some_and(|at| now >= at) || self.retry_at.is_some_and(|at| now >= at)
        {
            self.refresh_at = None;
            self.retry_at = None;
            self.phase = Phase::Registering;
            self.auth_attempts = 0;
            self.asking = self.asking.max(self.config.expires);
            self.send(self.asking, None, now);
        }
    }

    /// The transport could not reach the registrar (`reason`: no
    /// connection, or its TLS certificate failed): the attempt fails as
    /// with 503 (§8.1.3.1) and is retried after the backoff.
    pub fn transport_failed(&mut self, reason: &str, now: Instant) {
        let Some(t) = &mut self.transaction else {
            return;
        };
        if t.has_final() || t.is_terminated() {
            return;
        }
        t.handle_transport_error();
        while t.poll_event().is_some() {}
        self.transaction = None;
        self.on_failure(Some(503), reason.to_owned(), now);
    }

    /// A response to one of our REGISTERs (matched by Call-ID upstream).
    pub fn handle_message(&mut self, rx: Received, _source: SocketAddr, now: Instant) {
        let (Some(t), Some(response)) = (&mut self.transaction, rx.response()) else {
            return;
        };
        if rx.cseq != self.seq {
            return;
        }
        t.handle_response(response.clone(), now);
        self.drain_with(now, Some(&rx));
    }

    fn drain(&mut self, now: Instant) {
        self.drain_with(now, None);
    }

    fn drain_with(&mut self, now: Instant, rx: Option<&Received>) {
        let Some(t) = &mut self.transaction else {
            return;
        };
        while let Some(bytes) = t.poll_transmit() {
            self.transmit.push_back(Transmit {
                to: self.config.next_hop,
                bytes,
            });
        }
        let mut outcome = None;
        while let Some(e) = t.poll_event() {
            match e {
                ClientEvent::Response(r) if r.status_code.code() >= 200 => {
                    outcome = Some(Some(r.status_code.code()));
                }
                ClientEvent::Response(_) => {}
                ClientEvent::Timeout | ClientEvent::TransportError => outcome = Some(None),
            }
        }
        let Some(code) = outcome else {
            return;
        };
        let reason = rx
            .and_then(|r| r.reason_phrase.clone())
            .unwrap_or_else(|| match code {
                Some(c) => crate::response::reason_phrase(c).to_owned(),
                None => "the registrar did not answer".to_owned(),
            });
        match code {
            Some(200..=299) => self.on_success(rx, code.unwrap_or(200), reason, now),
            Some(c @ (401 | 407)) => {
                if !self.answer_challenge(rx, c, now) {
                    self.on_refused(
                        c,
                        format!("{c} {reason}: the registrar refused our credentials"),
                    );
                }
            }
            Some(423) => {
                let min = rx
                    .and_then(|r| r.response())
                    .and_then(|r| header_values(&r.headers, "Min-Expires").first().cloned())
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(m) if m > self.asking && self.phase != Phase::Unregistering => {
                        self.asking = m;
                        self.send(m, None, now);
                    }
                    _ => self.on_refused(423, reason),
                }
            }
            // The registrar or the network failing: try again later.
            None | Some(408 | 480 | 500..=599) => self.on_failure(code, reason, now),
            Some(c) => self.on_refused(c, reason),
        }
    }

    fn on_success(&mut self, rx: Option<&Received>, code: u16, reason: String, now: Instant) {
        if self.phase == Phase::Unregistering {
            self.finish_unregistered();
            return;
        }
        let granted = rx
            .and_then(|r| r.response())
            .map(|r| self.granted_expiry(&r.headers))
            .unwrap_or(self.asking);
        if granted == 0 {
            // A registrar that kept no binding: treat as a failure to retry.
            self.on_failure(Some(code), "the registrar kept no binding".into(), now);
            return;
        }
        self.phase = Phase::Registered;
        self.backoff = self.config.retry_min;
        // Refresh ahead of expiry: 10 % early, at least 5 s, at most half.
        let ahead = (granted / 10).max(5).min(granted / 2);
        self.refresh_at = Some(now + Duration::from_secs(u64::from(granted - ahead)));
        self.events.push_back(RegistrationEvent::Registered {
            expires: granted,
            code,
            reason,
        });
    }

    /// The expiry granted to our Contact: its `expires` parameter among the
    /// returned Contacts, else the Expires header, else what we asked.
    fn granted_expiry(&self, headers: &rsip::Headers) -> u32 {
        let ours = contact_uri(&self.config.contact).to_owned();
        let from_contact = header_values(headers, "Contact")
            .iter()
            .flat_map(|v| split_contacts(v))
            .find(|c| contact_uri(c) == ours)
            .and_then(|c| header_param(&c, "expires"))
            .and_then(|e| e.parse::<u32>().ok());
        from_contact
            .or_else(|| {
                header_values(headers, "Expires")
                    .first()
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(self.asking)
    }

    fn on_failure(&mut self, code: Option<u16>, reason: String, now: Instant) {
        if self.phase == Phase::Unregistering {
            self.finish_unregistered();
            return;
        }
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.retry_max);
        self.phase = Phase::Waiting;
        self.refresh_at = None;
        self.retry_at = Some(now + retry_in);
        self.events.push_back(RegistrationEvent::Retrying {
            code,
            reason,
            retry_in,
        });
    }

    fn on_refused(&mut self, code: u16, reason: String) {
        if self.phase == Phase::Unregistering {
            self.finish_unregistered();
            return;
        }
        self.phase = Phase::Done;
        self.refresh_at = None;
        self.retry_at = None;
        self.events
            .push_back(RegistrationEvent::Refused { code, reason });
    }

    fn finish_unregistered(&mut self) {
        self.phase = Phase::Done;
        self.refresh_at = None;
        self.retry_at = None;
        self.events.push_back(RegistrationEvent::Unregistered);
    }

    /// Resends with digest credentials; false when we have none, gave up,
    /// or the challenge does not parse.
    fn answer_challenge(&mut self, rx: Option<&Received>, code: u16, now: Instant) -> bool {
        let (Some(credentials), Some(response)) = (
            self.config.credentials.clone(),
            rx.and_then(|r| r.response()),
        ) else {
            return false;
        };
        let (challenge_header, answer_header) = if code == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Some(challenge) = header_values(&response.headers, challenge_header)
            .iter()
            .find_map(|v| Challenge::parse(v).ok())
        else {
            return false;
        };
        // A second challenge is only answered when the nonce went stale.
        if self.auth_attempts >= 2 || (self.auth_attempts == 1 && !challenge.stale) {
            return false;
        }
        self.auth_attempts += 1;
        let mut session = DigestSession::new(challenge);
        let authorization = session.authorize(
            &credentials,
            "REGISTER",
            &self.config.registrar_uri,
            &random_token(),
        );
        let expires = if self.phase == Phase::Unregistering {
            0
        } else {
            self.asking
        };
        self.send(expires, Some((answer_header, authorization)), now);
        true
    }

    fn send(&mut self, expires: u32, authorization: Option<(&str, String)>, now: Instant) {
        self.seq += 1;
        let c = &self.config;
        let transport = c.transport;
        let from = match &c.display_name {
            Some(n) => format!(
                "\"{}\" <{}>",
                n.replace('\\', "\\\\").replace('"', "\\\""),
                c.aor
            ),
            None => format!("<{}>", c.aor),
        };
        let mut text = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {via};branch={BRANCH_COOKIE}{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from};tag={tag}\r\n\
             To: <{aor}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} REGISTER\r\n\
             Contact: <{contact}>;expires={expires}\r\n\
             Expires: {expires}\r\n\
             User-Agent: {ua}\r\n",
            uri = c.registrar_uri,
            via = c.via_sent_by,
            branch = random_token(),
            tag = self.local_tag,
            aor = c.aor,
            call_id = self.call_id,
            seq = self.seq,
            contact = strip_brackets(&c.contact),
            ua = c.user_agent,
        );
        if let Some((name, value)) = authorization {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        let Ok(request) = Request::try_from(text.as_bytes()) else {
            // Our own settings made an unparsable request: nothing to retry.
            self.on_refused(
                400,
                "the REGISTER could not be built from the settings".into(),
            );
            return;
        };
        let mut t = ClientTransaction::new(request, c.transport.is_reliable(), c.timers, now);
        while let Some(bytes) = t.poll_transmit() {
            self.transmit.push_back(Transmit {
                to: c.next_hop,
                bytes,
            });
        }
        self.transaction = Some(t);
    }
}

/// The URI of a Contact value: inside `<…>` if there are brackets, else
/// up to the first `;`.
fn contact_uri(contact: &str) -> &str {
    let c = contact.trim();
    match (c.find('<'), c.find('>')) {
        (Some(open), Some(close)) if open < close => &c[open + 1..close],
        _ => c.split(';').next().unwrap_or(c),
    }
}

fn strip_brackets(uri: &str) -> &str {
    uri.trim().trim_start_matches('<').trim_end_matches('>')
}

/// Splits a Contact header value into its comma-separated contacts, outside
/// `<…>` and quotes.
fn split_contacts(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for ch in value.chars() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}
