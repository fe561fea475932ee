//! sono's SIP side, sans-I/O (to be filled by the SIP issue).
//!
//! What belongs here: RFC 3261 transactions (§17: INVITE and non-INVITE, client
//! and server, timers A–K with time as an input), dialogs (§12), UAC and UAS
//! cores, CANCEL/ACK/BYE, digest authentication (RFC 2617, RFC 8760) written and
//! tested here rather than taken from rsip, and SDP offer/answer (RFC 3264).
//! Messages are parsed and generated with rsip. Like `sono-rtmp`, this crate
//! performs no I/O and reads no clock: bytes and time in; bytes, events and
//! deadlines out.
