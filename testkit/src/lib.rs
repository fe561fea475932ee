//! Test support shared by sono's end-to-end tests and benchmarks:
//! - [`FlashClient`]: an RTMP client that behaves like Flash Player's NetConnection.
//! - [`Sono`]: the real `sono` binary, started on free loopback ports and stopped by PID.
//! - [`Baresip`]: baresip auto-answering, with its SIP traced.
//! - [`Sipp`]: SIPp running one scenario as a scripted SIP peer.
//! - [`Kamailio`]: a registrar with digest authentication.
//! - [`Haproxy`]: the balancer in front of sono.
//! - [`netns`]: a private network of namespaces; [`cluster`]: sono nodes behind Kamailio and HAProxy in it.
//! - [`TestCertificates`]: a test CA and certificates for TLS tests.
//! - [`audio`]: speech WAVs, ffmpeg codec chains, FLV writing and PESQ scores.
//! - [`http`]: requests to sono's HTTP side and its event streams; [`rtmpt`]: an RTMPT tunnel.
//! - [`corpus`]: the fuzz targets' seeds, and malformed variants of them.
//! - [`require_tool`]: fails a test loudly, naming the package, when a peer is missing.

pub mod audio;
mod baresip;
mod certs;
pub mod cluster;
pub mod corpus;
mod flash_client;
mod flv;
mod haproxy;
pub mod http;
mod kamailio;
pub mod netns;
pub mod process_stats;
pub mod rtmpt;
pub mod rtp_peer;
mod sipp;
mod sono;
pub mod video;

pub use audio::AudioDir;
pub use baresip::{Baresip, BaresipTls};
pub use certs::TestCertificates;
pub use flash_client::{flash_speex_tags, FlashClient, Reply};
pub use flv::{read_flv_audio, read_flv_video, write_flv_video, FlvAudioTag};
pub use haproxy::Haproxy;
pub use kamailio::Kamailio;
pub use sipp::{free_udp_port, Sipp};
pub use sono::{
    browser_dir, free_port, require_tool, send_signal, wait_or_kill, wait_with_output_or_kill,
    Finished, Sono,
};
