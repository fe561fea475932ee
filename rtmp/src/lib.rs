//! sono's RTMP side, sans-I/O: a server session for Flash phones.
//!
//! Bytes from the client go into [`ServerSession::handle_input`]; bytes for the
//! client come out of [`ServerSession::take_output`] and things to act on out of
//! [`ServerSession::poll_event`]. No sockets, no clocks, no async: the
//! `RtmpConnection` actor does the I/O, and tests and fuzzers feed bytes directly.
//!
//! - [`chunk`]: the chunk stream (RTMP 1.0 §5.3), with per-stream reassembly and limits.
//! - [`amf`]: AMF0 and AMF3 values (Flash sends AMF3 behind AMF0's switch marker).
//! - [`message`]: message types (§5.4, §6, §7).
//! - [`audio`]: the FLV audio header of audio messages (Speex, Nellymoser).
//! - [`phone`]: the Flash phone API: requests, named errors, `onStatus` events.
//! - [`session`]: the connection state machine tying them together.
//! - [`tunnel`]: RTMPT, the same bytes carried in HTTP POSTs.
//! - [`proxy_header`]: the PROXY protocol v2 header a load balancer sends first.

pub mod amf;
pub mod api;
pub mod audio;
pub mod chunk;
pub mod fuzzing;
pub mod message;
pub mod phone;
pub mod proxy_header;
pub mod session;
pub mod tunnel;

pub use amf::AmfValue;
pub use audio::{AudioCodec, AudioTag};
pub use message::ObjectEncoding;
pub use phone::{CallStatus, PhoneError, PhoneEvent, PhoneRequest, RegisterRequest};
pub use session::{ConnectRequest, ServerSession, SessionConfig, SessionError, SessionEvent};
