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
//! - [`message`]: framing and checks of received messages (§7, §8.2), and the
//!   status each failure earns; [`stream_framer`]: messages out of a TCP stream; [`via`]: Via and `rport` (RFC 3581);
//!   [`response`]: responses to received requests (§8.2.6).
//! - [`dialog`]: dialogs (§12), routing of in-dialog requests.
//! - [`outbound_call`]: the UAC core of an outbound call: INVITE, digest retry,
//!   ACK, CANCEL, BYE, and the peer's requests inside the dialog.
//!
//! - [`registration`]: a REGISTER binding at a registrar: digest, refresh,
//!   backoff, removal.
//! - [`inbound_call`]: the UAS core of an inbound call: 100/180, accept with
//!   our SDP, reject, CANCEL/487, BYE; [`dialog_server`]: what both call
//!   cores answer inside a dialog.
//!
//! Messages are parsed and generated with rsip. Like `sono-rtmp`, this crate performs no I/O and reads
//! no clock: bytes and time in; bytes, events and deadlines out.

pub mod dial_plan;
pub mod dialog;
pub mod dialog_server;
pub mod digest;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod in_dialog;
pub mod inbound_call;
pub mod media_control;
pub mod message;
pub mod mid_call;
pub mod outbound_call;
pub mod registration;
pub mod reoffer;
pub mod response;
pub mod sdes;
pub mod sdp;
pub mod stream_framer;
pub mod transaction;
pub mod transfer;
pub mod transmit;
pub mod uri;
pub mod via;
pub mod video_sdp;
