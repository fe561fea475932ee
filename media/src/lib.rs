//! sono's media side, sans-I/O.
//!
//! Now:
//! - [`g711`]: µ-law and A-law (ITU-T G.711).
//! - [`rtp`]: RTP packets (RFC 3550 §5.1), read and written.
//!
//! To come in this crate (the media issue): Speex wideband (speex-safe), our own
//! Nellymoser encoder and decoder, G.722, resampling (rubato), RTCP, an
//! adaptive jitter buffer with loss concealment, RFC 4733 telephone-events,
//! and the transcoding pipeline between what a Flash client speaks and what
//! the SIP peer negotiated, with Speex passthrough. Frames and time in; frames,
//! packets and deadlines out.

pub mod g711;
pub mod rtp;
