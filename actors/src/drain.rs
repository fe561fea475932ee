//! Draining: a node leaving service without cutting a call (docs/cluster.md).
//!
//! Once draining (SIGTERM, or `POST /api/v1/drain` with the admin key), the
//! node takes nothing new: its listeners close, `/healthz` and SIP OPTIONS
//! answer 503 so HAProxy and Kamailio's dispatcher send new work elsewhere,
//! new INVITEs and dials are refused, and idle clients are told to go (they
//! reconnect through the balancer to another node). Calls in progress go on
//! until they end or `shutdown.grace` runs out. [`crate::Gateway::shutdown`]
//! runs the sequence; this is the flag everyone reads and the request that
//! starts it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub struct DrainState {
    draining: AtomicBool,
    requested: Notify,
}

impl DrainState {
    /// Whether the node is draining: refuse anything new.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the node draining; true the first time.
    pub fn begin(&self) -> bool {
        !self.draining.swap(true, Ordering::AcqRel)
    }

    /// Asks the binary to drain and exit (the admin REST call); false if a
    /// drain was already under way.
    pub fn request(&self) -> bool {
        if self.is_draining() {
            return false;
        }
        // notify_one keeps the permit if the binary is not waiting yet.
        self.requested.notify_one();
        true
    }

    /// Resolves when [`Self::request`] was called.
    pub async fn requested(&self) {
        self.requested.notified().await;
    }
}
