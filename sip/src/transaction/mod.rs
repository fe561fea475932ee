//! SIP transactions (RFC 3261 §17), sans-I/O: time is an input, retransmissions
//! and timeouts are outputs. [`ClientTransaction`]: INVITE (§17.1.1) and
//! non-INVITE (§17.1.2); [`ServerTransaction`]: INVITE (§17.2.1) and non-INVITE
//! (§17.2.2); both with RFC 6026's Accepted state for INVITE 2xx.

mod client;
mod server;

use std::time::Duration;

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
