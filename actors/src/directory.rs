//! Who is where: connection ids to their client sessions, SIP users to connections.
//! The one piece of shared state (dashmap), read by the SIP side to route
//! inbound calls and by the HTTP side to reach a connection.

use std::sync::atomic::{AtomicU64, Ordering};

use actix::{Addr, Recipient};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rand::Rng;

use crate::client_session::ClientSession;
use crate::sip_transport::SipInbound;

/// How long the token of a closed connection is remembered as closed.
pub const CLOSED_TOKEN_MEMORY: std::time::Duration = std::time::Duration::from_secs(3600);
/// Most closed tokens remembered.
const MAX_CLOSED_TOKENS: usize = 16_384;

/// A connection's number, unique for the life of the process.
pub type ConnectionId = u64;

/// A live connection: its actor and the capability token that controls it.
#[derive(Clone)]
pub struct ConnectionEntry {
    pub addr: Addr<ClientSession>,
    pub token: String,
}

#[derive(Default)]
pub struct Directory {
    next_id: AtomicU64,
    connections: DashMap<ConnectionId, ConnectionEntry>,
    /// Stream keys (publish names of RTMP tools) → the connection publishing.
    stream_keys: DashMap<String, ConnectionId>,
    /// Capability tokens → their connection.
    tokens: DashMap<String, ConnectionId>,
    /// Tokens of connections that closed lately, so the API can say "closed"
    /// to their holders rather than "wrong token".
    closed_tokens: DashMap<String, (ConnectionId, std::time::Instant)>,
    users: DashMap<String, ConnectionId>,
    /// Call-ID → the call that owns it; the SIP transport routes by it.
    calls: DashMap<String, Recipient<SipInbound>>,
}

impl Directory {
    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add_connection(&self, id: ConnectionId, addr: Addr<ClientSession>, token: String) {
        self.tokens.insert(token.clone(), id);
        self.connections.insert(id, ConnectionEntry { addr, token });
    }

    /// The connection a capability token belongs to.
    pub fn token_owner(&self, token: &str) -> Option<ConnectionId> {
        self.tokens.get(token).map(|c| *c)
    }

    /// The connection a token belonged to, if it closed within the last
    /// [`CLOSED_TOKEN_MEMORY`].
    pub fn closed_token_owner(&self, token: &str) -> Option<ConnectionId> {
        self.closed_tokens
            .get(token)
            .filter(|e| e.1.elapsed() < CLOSED_TOKEN_MEMORY)
            .map(|e| e.0)
    }

    /// The connection and its token, for the REST API to check a caller's.
    pub fn entry(&self, id: ConnectionId) -> Option<ConnectionEntry> {
        self.connections.get(&id).map(|e| e.clone())
    }

    /// Takes `key` for connection `id`; false if another connection holds it.
    pub fn claim_stream_key(&self, key: &str, id: ConnectionId) -> bool {
        match self.stream_keys.entry(key.to_owned()) {
            Entry::Vacant(v) => {
                v.insert(id);
                true
            }
            Entry::Occupied(o) => *o.get() == id,
        }
    }

    /// Frees a stream key, if `id` holds it.
    pub fn release_stream_key(&self, key: &str, id: ConnectionId) {
        self.stream_keys.remove_if(key, |_, holder| *holder == id);
    }

    /// The connection publishing under a stream key.
    pub fn stream_key(&self, key: &str) -> Option<ConnectionId> {
        self.stream_keys.get(key).map(|c| *c)
    }

    /// Forgets a connection; its users are released one by one with [`Self::release_user`]
    /// (a scan of every user per disconnect would not scale).
    pub fn remove_connection(&self, id: ConnectionId) {
        if let Some((_, entry)) = self.connections.remove(&id) {
            self.tokens.remove(&entry.token);
            if self.closed_tokens.len() >= MAX_CLOSED_TOKENS {
                self.closed_tokens
                    .retain(|_, (_, at)| at.elapsed() < CLOSED_TOKEN_MEMORY);
                // Still full: a burst of closes; forget the oldest half at random.
                if self.closed_tokens.len() >= MAX_CLOSED_TOKENS {
                    let mut n = 0usize;
                    self.closed_tokens.retain(|_, _| {
                        n += 1;
                        n.is_multiple_of(2)
                    });
                }
            }
            self.closed_tokens
                .insert(entry.token, (id, std::time::Instant::now()));
        }
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

    pub fn connection(&self, id: ConnectionId) -> Option<Addr<ClientSession>> {
        self.connections.get(&id).map(|e| e.addr.clone())
    }

    pub fn connections(&self) -> Vec<(ConnectionId, Addr<ClientSession>)> {
        self.connections
            .iter()
            .map(|e| (*e.key(), e.value().addr.clone()))
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
    fn a_stream_key_has_one_holder() {
        let d = Directory::default();
        assert!(d.claim_stream_key("k", 1));
        assert!(d.claim_stream_key("k", 1), "its holder may claim it again");
        assert!(!d.claim_stream_key("k", 2));
        d.release_stream_key("k", 2);
        assert_eq!(d.stream_key("k"), Some(1));
        d.release_stream_key("k", 1);
        assert!(d.claim_stream_key("k", 2));
    }

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
