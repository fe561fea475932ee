//! sono's media side, sans-I/O: frames and time in; frames, packets and
//! deadlines out. The `MediaBridge` actor does the sockets and the clock.
//!
//! - Codecs: [`g711`] (µ-law, A-law), [`g722`], [`speex`] (wideband, through
//!   libspeex), [`nellymoser`] (our own encoder and decoder), [`opus`]
//!   (WebRTC's, through libopus); and what RTMP tools publish, decoded only:
//!   [`aac`] and [`mp3`] (through symphonia, [`symphonia_pcm`]), [`adpcm`]
//!   (Flash's, our own), [`pcm`].
//! - [`resampler`]: rate conversion between the two sides.
//! - [`rtp`]: RTP packets (RFC 3550 §5.1); [`rtp_sender`] and
//!   [`receive_stats`] the two ends of a stream; [`rtcp`] the reports.
//! - [`jitter_buffer`] and [`concealment`]: playing out what the network
//!   delivers, and covering what it lost.
//! - [`dtmf`]: RFC 4733 telephone events.
//! - [`codec`]: the codecs of each side; [`uplink`] (client → RTP) and
//!   [`downlink`] (RTP → client) are the two directions of a call's
//!   pipeline, transcoding or passing Speex through.
//! - [`h264`]: H.264 video passed through between FLV and RTP (RFC 6184).
//! - [`quality`]: SNR measures for tests and benchmarks.
//! - [`fuzzing`]: the drivers of the fuzz targets and the corpus tests.

pub mod aac;
pub mod adpcm;
pub mod codec;
pub mod concealment;
pub mod downlink;
pub mod dtmf;
pub mod fuzzing;
pub mod g711;
pub mod g722;
pub mod h264;
pub mod jitter_buffer;
pub mod mp3;
pub mod nellymoser;
pub mod opus;
pub mod pacer;
pub mod pcm;
pub mod quality;
pub mod receive_stats;
pub mod resampler;
pub mod rtcp;
pub mod rtp;
pub mod rtp_sender;
pub mod rtp_source;
pub mod silence;
pub mod speex;
pub mod srtp;
pub mod symphonia_pcm;
pub mod three_way;
pub mod uplink;
