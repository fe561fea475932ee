//! sono's media side, sans-I/O (to be filled by the media issue).
//!
//! What belongs here: Speex wideband (speex-safe), our own Nellymoser encoder
//! and decoder, G.711 µ-law/A-law, G.722, resampling (rubato), RTP/RTCP
//! (RFC 3550), an adaptive jitter buffer with loss concealment, RFC 4733
//! telephone-events, and the transcoding pipeline between what a Flash client
//! speaks and what the SIP peer negotiated, with Speex passthrough. Frames and
//! time in; frames, packets and deadlines out.
