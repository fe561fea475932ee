//! sono's media side, sans-I/O: frames and time in; frames, packets and
//! deadlines out. The `MediaBridge` actor does the sockets and the clock.
//!
//! - Codecs: [`g711`] (µ-law, A-law), [`g722`], [`speex`] (wideband, through
//!   libspeex).
//! - [`resampler`]: rate conversion between the two sides.
//! - [`rtp`]: RTP packets (RFC 3550 §5.1).
//! - [`quality`]: SNR measures for tests and benchmarks.

pub mod g711;
pub mod g722;
pub mod quality;
pub mod resampler;
pub mod rtp;
pub mod speex;
