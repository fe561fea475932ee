//! Who is where: connection ids to actor addresses, SIP users to connections.
//! The one piece of shared state (dashmap), read by the SIP side to route
//! inbound calls and by the HTTP side to reach a connection.

use std::sync::atomic::{AtomicU64, Ordering};

use actix::{Addr, Recipient};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rand::Rng;

use crate::rtmp_connection::RtmpConnection;
use crate::sip_transport::SipInbound;

/// A connection's number, unique for the life of the process.
pub type ConnectionId = u64;

#[derive(Default)]
pub struct Directory {
    next_id: AtomicU64,
    connections: DashMap<ConnectionId, Addr<RtmpConnection>>,
    users: DashMap<String, ConnectionId>,
    /// Call-ID → the call that owns it; the SIP transport routes by it.
    calls: DashMap<String, Recipient<SipInbound>>,
}

impl Directory {
    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add_connection(&self, id: ConnectionId, addr: Addr<RtmpConnection>) {
        self.connections.insert(id, addr);
    }

    /// Forgets a connection; its users are released one by one with [`Self::release_user`]
    /// (a scan of every user per disconnect would not scale).
    pub fn remove_connection(&self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// Frees a user name, if `id` still holds it.
    pub fn release_user(&self, user: &str, id: ConnectionId) {
        self.users.remove_if(user, |_, holder| *holder == id);
    }

    pub fn add_call(&self, call_id: &str, call: Recipient<SipInbound>) {
        self.calls.insert(call_id.to_owned(), call);
    }

    pub fn remove_call(&self, call_id: &str) {
        self.calls.remove(call_id);
    }

    pub fn call(&self, call_id: &str) -> Option<Recipient<SipInbound>> {
        self.calls.get(call_id).map(|c| c.clone())
    }

    pub fn connection(&self, id: ConnectionId) -> Option<Addr<RtmpConnection>> {
        self.connections.get(&id).map(|a| a.clone())
    }

    pub fn connections(&self) -> Vec<(ConnectionId, Addr<RtmpConnection>)> {
        self.connections
            .iter()
            .map(|e| (*e.key(), e.value().clone()))
            .collect()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Gives `id` a fresh, unguessable user name at sono's domain.
    pub fn allocate_implicit_user(&self, id: ConnectionId) -> String {
        let mut rng = rand::thread_rng();
        loop {
            let user = format!("sono-{:016x}", rng.gen::<u64>());
            if let Entry::Vacant(v) = self.users.entry(user.clone()) {
                v.insert(id);
                return user;
            }
        }
    }

    /// The connection a SIP user belongs to.
    pub fn user(&self, user: &str) -> Option<ConnectionId> {
        self.users.get(user).map(|c| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_unique_and_released_only_by_their_holder() {
        let d = Directory::default();
        let a = d.allocate_implicit_user(1);
        let b = d.allocate_implicit_user(2);
        assert_ne!(a, b);
        assert!(a.starts_with("sono-") && a.len() == 21, "{a}");
        assert_eq!(d.user(&a), Some(1));
        d.release_user(&a, 2);
        assert_eq!(d.user(&a), Some(1), "another connection cannot release it");
        d.release_user(&a, 1);
        assert_eq!(d.user(&a), None);
        assert_eq!(d.user(&b), Some(2));
    }
}
