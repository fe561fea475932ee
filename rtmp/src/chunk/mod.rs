//! The RTMP chunk stream (Adobe RTMP specification 1.0, §5.3): how messages are
//! cut into chunks, interleaved, and their headers compressed.
//!
//! [`ChunkDecoder`] reassembles messages per chunk stream, so a peer may interleave
//! the chunks of several messages (which rml_rtmp's deserializer cannot); it
//! enforces limits on chunk size, message size and the number of chunk streams.
//! [`ChunkEncoder`] cuts our messages into chunks, compressing headers per stream.

mod decoder;
mod encoder;

pub use decoder::{ChunkDecoder, ChunkError, ChunkLimits};
pub use encoder::ChunkEncoder;

use bytes::Bytes;

/// Chunk size every RTMP peer starts with (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// A timestamp field of this value means a 32-bit extended timestamp follows (§5.3.1.3).
const EXTENDED_TIMESTAMP: u32 = 0x00FF_FFFF;

/// One whole message as reassembled from its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The chunk stream it arrived on; answers do not need it, but logs do.
    pub chunk_stream_id: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub message_stream_id: u32,
    pub payload: Bytes,
}
