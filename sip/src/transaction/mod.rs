//! SIP transactions (RFC 3261 §17), sans-I/O: time is an input, retransmissions
//! and timeouts are outputs. [`ClientTransaction`]: INVITE (§17.1.1) and
//! non-INVITE (§17.1.2); [`ServerTransaction`]: INVITE (§17.2.1) and non-INVITE
//! (§17.2.2); both with RFC 6026's Accepted state for INVITE 2xx.

mod client;
mod server;

use std::time::{Duration, Instant};

pub use client::{ClientEvent, ClientState, ClientTransaction};
pub use server::{ServerEvent, ServerState, ServerTransaction};

/// The timer base values of RFC 3261 §17.1.1.1 and table 4; settings may change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate: first retransmission interval.
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// Timers B, F, H, J, L and M: 64·T1.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// The three kinds of timer every transaction runs, shared by client and
/// server: retransmission (A, E, G), giving up (B, F, H) and ending (D, I, J,
/// K, L, M).
#[derive(Debug, Clone)]
struct Deadlines {
    retransmit_at: Option<Instant>,
    /// The retransmission interval after the one now running.
    interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
}

/// Which timer [`Deadlines::due`] found expired, the ending one first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    End,
    Timeout,
    Retransmit,
    Nothing,
}

impl Deadlines {
    fn new(interval: Duration) -> Deadlines {
        Deadlines {
            retransmit_at: None,
            interval,
            timeout_at: None,
            end_at: None,
        }
    }

    fn next(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.end_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn due(&self, now: Instant) -> Due {
        let expired = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        if expired(self.end_at) {
            Due::End
        } else if expired(self.timeout_at) {
            Due::Timeout
        } else if expired(self.retransmit_at) {
            Due::Retransmit
        } else {
            Due::Nothing
        }
    }

    /// After a retransmission: the next one `interval` after the one just due.
    fn reschedule(&mut self, now: Instant, interval: Duration) {
        if let Some(at) = self.retransmit_at {
            self.interval = interval;
            self.retransmit_at = Some(at.max(now) + interval);
        }
    }

    fn is_retransmitting(&self) -> bool {
        self.retransmit_at.is_some()
    }

    /// Stops retransmitting and giving up; an ending timer keeps running.
    fn stop_running(&mut self) {
        self.retransmit_at = None;
        self.timeout_at = None;
    }

    fn clear(&mut self) {
        self.stop_running();
        self.end_at = None;
    }
}
