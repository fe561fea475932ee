//! RTMPT tunnel sessions: which session id belongs to which `RtmpConnection`,
//! and the limits on opening them. The HTTP side (`sono-web`) parses requests
//! with `sono_rtmp::tunnel` and hands each one's bytes to the session's
//! connection as a [`TunnelExchange`]; the connection answers with the bytes
//! it has for the client, so a tunnelled client runs exactly the code a TCP
//! client runs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use dashmap::DashMap;
use sono_rtmp::tunnel::TunnelError;
use tracing::warn;

use crate::rtmp_connection::RtmpConnection;
use crate::Shared;

/// One `/send`, `/idle` or `/close` request of a session.
#[derive(Message)]
#[rtype(result = "Result<TunnelReply, TunnelRefusal>")]
pub struct TunnelExchange {
    pub seq: u64,
    /// RTMP bytes from the client (empty for idle and close).
    pub data: Bytes,
    /// The client closes the session.
    pub close: bool,
}

/// The answer's body: the polling interval byte, then bytes for the client.
#[derive(Debug)]
pub struct TunnelReply {
    pub interval: u8,
    pub data: Vec<u8>,
}

/// Why a request of a known session was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelRefusal {
    /// A replayed or reordered sequence number; the session is unharmed.
    Sequence(TunnelError),
    /// The connection has closed and everything it had was delivered.
    Closed,
}

/// Why `/open` made no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRefusal {
    /// `rtmp.max_connections` is reached (TCP, TLS and tunnels together).
    TooManyConnections,
    /// `rtmpt.max_sessions_per_address` is reached for this client address.
    TooManyFromAddress,
}

/// The live tunnel sessions.
#[derive(Default)]
pub struct TunnelSessions {
    sessions: DashMap<String, (Addr<RtmpConnection>, IpAddr)>,
    per_address: DashMap<IpAddr, usize>,
}

impl TunnelSessions {
    /// Opens a session for a client at `peer`: a new `RtmpConnection` on one of
    /// the connection arbiters, and the session id the client will use.
    pub fn open(&self, shared: &Arc<Shared>, peer: SocketAddr) -> Result<String, OpenRefusal> {
        let limit = shared.settings.rtmpt.max_sessions_per_address;
        {
            let mut count = self.per_address.entry(peer.ip()).or_insert(0);
            if *count >= limit {
                warn!(%peer, limit, "refusing RTMPT session: rtmpt.max_sessions_per_address reached");
                return Err(OpenRefusal::TooManyFromAddress);
            }
            *count += 1;
        }
        if !shared.take_connection_slot(peer) {
            self.release_address(peer.ip());
            return Err(OpenRefusal::TooManyConnections);
        }
        // 128 random bits: the session id is all a request needs to feed the
        // connection, so it must not be guessable.
        let id = crate::cluster::new_secret(&shared.settings.cluster.node_id);
        let arbiter = shared.next_arbiter();
        let addr = RtmpConnection::start_tunnel(&arbiter, id.clone(), peer, shared.clone());
        self.sessions.insert(id.clone(), (addr, peer.ip()));
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<Addr<RtmpConnection>> {
        self.sessions.get(id).map(|s| s.0.clone())
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Forgets a session (its connection stopped).
    pub(crate) fn remove(&self, id: &str) {
        if let Some((_, (_, ip))) = self.sessions.remove(id) {
            self.release_address(ip);
        }
    }

    fn release_address(&self, ip: IpAddr) {
        if let dashmap::mapref::entry::Entry::Occupied(mut e) = self.per_address.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}
