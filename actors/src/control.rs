//! Controlling a connection from outside RTMP: the messages the REST API sends
//! to an `RtmpConnection`, the answers it gets, the connection's state as the
//! API shows it, and the live events every controller may follow.
//!
//! A phone request from REST takes the same path through the connection as the
//! same request from Flash's `NetConnection.call`; only where its answer goes
//! differs ([`Responder`]). Events go both to the Flash client (`onStatus`) and
//! to [`EventBus`] subscribers, as the same info objects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use sono_rtmp::{AmfValue, PhoneRequest};
use tokio::sync::{broadcast, oneshot};

use crate::directory::ConnectionId;

/// Why a phone request failed: the same named code and description an
/// `_error` carries, and the SIP code and reason when SIP gave one.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneFailure {
    pub code: &'static str,
    pub description: String,
    pub sip_code: Option<u16>,
    pub reason: Option<String>,
}

/// The answer to a phone request: the `_result` value, or the failure.
pub type PhoneOutcome = Result<AmfValue, PhoneFailure>;

/// Where the answer to a phone request goes.
pub enum Responder {
    /// `_result`/`_error` for this transaction on the RTMP connection.
    Amf(f64),
    /// Back to the REST handler waiting for it.
    Rest(oneshot::Sender<PhoneOutcome>),
}

/// A phone request from the REST API.
#[derive(Message)]
#[rtype(result = "PhoneOutcome")]
pub struct Control(pub PhoneRequest);

/// Asks a connection for its state.
#[derive(Message)]
#[rtype(result = "ConnectionState")]
pub struct GetState;

/// How a connection reached sono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientTransport {
    Rtmp,
    Rtmps,
    Rtmpt,
    /// A browser: REST for signalling, WebRTC for audio.
    Webrtc,
}

/// Which way a call was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    Outbound,
    Inbound,
}

/// A connection's call, as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallState {
    /// Its id within the connection (what events carry as `call`).
    pub id: u32,
    pub direction: CallDirection,
    /// The URI dialled, or the caller's.
    pub remote_uri: String,
    /// The last `Sono.Call.Status` code (1 trying … 4 media; 0 ended), or
    /// `None` while an inbound call rings unanswered.
    pub status: Option<u8>,
    /// Seconds since the call began.
    pub age_seconds: u64,
    /// The client holds it.
    pub held: bool,
    /// It carries the client's audio.
    pub active: bool,
}

/// A connection's registration at a registrar, as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegistrationState {
    pub uri: String,
    pub registered: bool,
}

/// A connection's state, as `GET /api/v1/connections/{id}` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnectionState {
    pub id: ConnectionId,
    pub transport: ClientTransport,
    pub peer: String,
    /// `connect` was accepted (the application name is then known).
    pub connected: bool,
    pub app: Option<String>,
    /// Its implicit URI at sono, once attributed.
    pub implicit_uri: Option<String>,
    pub registration: Option<RegistrationState>,
    /// The active call, else the only one, else the newest.
    pub call: Option<CallState>,
    /// Every call of the connection, oldest first.
    pub calls: Vec<CallState>,
    /// The stream key it publishes under, for RTMP tools that cannot call
    /// methods (the key is also its token).
    pub stream_key: Option<String>,
    pub age_seconds: u64,
}

/// One event of one connection: the info object its Flash client gets with
/// `onStatus`, numbered in the order the bus saw it.
#[derive(Debug, Clone)]
pub struct ConnectionEvent {
    pub connection: ConnectionId,
    pub seq: u64,
    pub info: AmfValue,
}

/// Every connection's events, for the REST API's live streams. Subscribers
/// that fall behind lose the oldest events and are told how many.
pub struct EventBus {
    sender: broadcast::Sender<Arc<ConnectionEvent>>,
    seq: AtomicU64,
}

impl EventBus {
    /// Events kept for a slow subscriber before it starts losing them.
    const CAPACITY: usize = 1024;

    pub fn publish(&self, connection: ConnectionId, info: AmfValue) {
        // Without subscribers there is nothing to do, not even numbering.
        if self.sender.receiver_count() == 0 {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.sender.send(Arc::new(ConnectionEvent {
            connection,
            seq,
            info,
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ConnectionEvent>> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(Self::CAPACITY).0,
            seq: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_every_event_in_order() {
        let bus = EventBus::default();
        bus.publish(1, AmfValue::Null); // nobody listens: dropped
        let mut rx = bus.subscribe();
        bus.publish(7, AmfValue::from("a"));
        bus.publish(8, AmfValue::from("b"));
        let a = rx.try_recv().unwrap();
        let b = rx.try_recv().unwrap();
        assert_eq!((a.connection, a.seq), (7, 1));
        assert_eq!((b.connection, b.seq), (8, 2));
        assert!(rx.try_recv().is_err());
    }
}
