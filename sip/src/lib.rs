//! sono's SIP side, sans-I/O.
//!
//! Now:
//! - [`digest`]: the client side of HTTP Digest authentication as SIP uses it
//!   (RFC 3261 §22.4 on RFC 2617, with RFC 7616/8760's SHA-256).
//! - [`uri`]: SIP and SIPS URIs (RFC 3261 §19.1).
//! - [`dial_plan`]: which URIs a client may call (no open relay).
//! - [`sdp`]: SDP parsing and writing (RFC 8866) and offer/answer for one audio
//!   stream (RFC 3264).
//! - [`transaction`]: RFC 3261 §17 client and server transactions, INVITE (with
//!   RFC 6026's Accepted state) and non-INVITE, timers as inputs.
//!
//! To come in this crate: dialogs (§12), UAC and UAS cores, CANCEL/ACK/BYE. Messages are parsed
//! and generated with rsip. Like `sono-rtmp`, this crate performs no I/O and reads
//! no clock: bytes and time in; bytes, events and deadlines out.

pub mod dial_plan;
pub mod digest;
pub mod sdp;
pub mod transaction;
pub mod uri;
