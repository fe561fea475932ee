//! Test support shared by sono's end-to-end tests and benchmarks:
//! - [`FlashClient`]: an RTMP client that behaves like Flash Player's NetConnection.
//! - [`Sono`]: the real `sono` binary, started on free loopback ports and stopped by PID.
//! - [`require_tool`]: fails a test loudly, naming the package, when a peer is missing.

mod flash_client;
mod flv;
mod sono;

pub use flash_client::{FlashClient, Reply};
pub use flv::{read_flv_audio, FlvAudioTag};
pub use sono::{require_tool, Sono};
