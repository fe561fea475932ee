//! Reassembly of messages from interleaved chunks (RTMP 1.0 §5.3.1, §5.3.2).

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use super::{RawMessage, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP};

/// Limits on what a peer may make us hold in memory.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Largest chunk size the peer may announce with Set Chunk Size.
    pub max_chunk_size: u32,
    /// Largest message length a chunk header may declare.
    pub max_message_size: u32,
    /// Most chunk streams the peer may use at once.
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: 1 << 20,
            max_message_size: 1 << 20,
            max_chunk_streams: 64,
        }
    }
}

/// Why the chunk stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk stream {0} sent a compressed header before any full header")]
    NoPreviousHeader(u32),
    #[error("chunk stream {0} started a new message before finishing the previous one")]
    MessageInterrupted(u32),
    #[error("message of {size} bytes is over the limit of {limit}")]
    MessageTooLarge { size: u32, limit: u32 },
    #[error("chunk size {size} is outside 1..={limit}")]
    BadChunkSize { size: u32, limit: u32 },
    #[error("peer uses more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    #[error("unfinished messages hold more than {0} bytes")]
    TooMuchBuffered(usize),
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// Added to the timestamp by a type 3 chunk that starts a new message. After a
    /// type 0 header this is the absolute timestamp, as ffmpeg and librtmp read it.
    delta: u32,
    length: u32,
    type_id: u8,
    message_stream_id: u32,
    /// Whether the last header carried an extended timestamp: type 3 chunks then repeat it.
    extended: bool,
    /// Payload of the message being reassembled, if one is in progress.
    partial: Option<BytesMut>,
}

/// Turns the bytes after the handshake into whole messages.
#[derive(Debug)]
pub struct ChunkDecoder {
    input: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    limits: ChunkLimits,
    /// Bytes held in unfinished messages across all chunk streams.
    partial_bytes: usize,
}

/// What became of the chunk at the head of the input.
enum Chunk {
    /// Its body is not all here yet; nothing was consumed.
    Incomplete,
    /// Consumed, with the message it completed, if any.
    Consumed(Option<RawMessage>),
}

/// A parsed chunk header, not yet applied to its stream's state.
struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    timestamp_field: Option<u32>,
    length: Option<u32>,
    type_id: Option<u8>,
    message_stream_id: Option<u32>,
    /// Whether a 32-bit extended timestamp followed the header (§5.3.1.3).
    extended: bool,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            input: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            limits,
            partial_bytes: 0,
        }
    }

    /// Queues bytes received from the peer.
    pub fn push(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// Bytes received but not yet consumed by a whole chunk.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// Applies the peer's Set Chunk Size (§5.4.1) to the chunks that follow.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        // The top bit is reserved and must be zero; zero itself would never progress.
        if size == 0 || size > self.limits.max_chunk_size || size > 0x7FFF_FFFF {
            return Err(ChunkError::BadChunkSize {
                size,
                limit: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partial message of a chunk stream (Abort Message, §5.4.2).
    pub fn abort(&mut self, csid: u32) {
        if let Some(partial) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
            self.partial_bytes -= partial.len();
        }
    }

    /// The next whole message, if the queued bytes complete one.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            let Some(header) = self.parse_header()? else {
                return Ok(None);
            };
            match self.consume_chunk(header)? {
                Chunk::Incomplete => return Ok(None),
                Chunk::Consumed(None) => {}
                Chunk::Consumed(Some(message)) => return Ok(Some(message)),
            }
        }
    }

    /// Parses the next chunk header if all of it is queued; consumes nothing.
    fn parse_header(&self) -> Result<Option<Header>, ChunkError> {
        let b = &self.input[..];
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + u32::from(lo) + 256 * u32::from(hi), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let be24 = |p: usize| u32::from_be_bytes([0, b[p], b[p + 1], b[p + 2]]);
        let mut h = Header {
            fmt,
            csid,
            len: 0,
            timestamp_field: None,
            length: None,
            type_id: None,
            message_stream_id: None,
            extended: false,
        };
        if fmt <= 2 {
            h.timestamp_field = Some(be24(pos));
        }
        if fmt <= 1 {
            h.length = Some(be24(pos + 3));
            h.type_id = Some(b[pos + 6]);
        }
        if fmt == 0 {
            // The message stream id alone is little-endian (§5.3.1.2.1).
            h.message_stream_id = Some(u32::from_le_bytes([
                b[pos + 7],
                b[pos + 8],
                b[pos + 9],
                b[pos + 10],
            ]));
        }
        pos += header_len;
        let previous = self.streams.get(&csid);
        // A type 1 header carries all but the message stream id, which is 0 on
        // a fresh chunk stream: librtmp-based peers (SEMS' gateway among them)
        // open chunk streams with it, and ffmpeg and Flash accept it. Types 2
        // and 3 leave the length and type unknown.
        if fmt >= 2 && previous.is_none() {
            return Err(ChunkError::NoPreviousHeader(csid));
        }
        let extended = match h.timestamp_field {
            Some(t) => t == EXTENDED_TIMESTAMP,
            None => previous.is_some_and(|s| s.extended),
        };
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            let ext = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            if h.timestamp_field.is_some() {
                h.timestamp_field = Some(ext);
            }
            pos += 4;
        }
        h.extended = extended;
        h.len = pos;
        Ok(Some(h))
    }

    /// Applies a header and takes its chunk body if queued, with the message it completes.
    fn consume_chunk(&mut self, h: Header) -> Result<Chunk, ChunkError> {
        if !self.streams.contains_key(&h.csid)
            && self.streams.len() >= self.limits.max_chunk_streams
        {
            return Err(ChunkError::TooManyChunkStreams(
                self.limits.max_chunk_streams,
            ));
        }
        let chunk_size = self.chunk_size as usize;
        let limit = self.limits.max_message_size;
        let stream = self.streams.entry(h.csid).or_default();
        let in_progress = stream.partial.is_some();
        if in_progress && h.fmt != 3 {
            return Err(ChunkError::MessageInterrupted(h.csid));
        }
        let length = h.length.unwrap_or(stream.length);
        if length > limit {
            return Err(ChunkError::MessageTooLarge {
                size: length,
                limit,
            });
        }
        let received = stream.partial.as_ref().map_or(0, BytesMut::len);
        let body = (length as usize - received).min(chunk_size);
        if self.input.len() < h.len + body {
            return Ok(Chunk::Incomplete);
        }
        // Interleaving lets a peer keep one unfinished message per chunk stream;
        // together they may hold no more than two whole messages.
        let budget = 2 * limit as usize;
        if self.partial_bytes + body > budget {
            return Err(ChunkError::TooMuchBuffered(budget));
        }

        // The whole chunk is here: commit the header to the stream's state.
        if !in_progress {
            match h.fmt {
                0 => {
                    let t = h.timestamp_field.unwrap_or(0);
                    stream.timestamp = t;
                    stream.delta = t;
                }
                1 | 2 => {
                    let d = h.timestamp_field.unwrap_or(0);
                    stream.delta = d;
                    stream.timestamp = stream.timestamp.wrapping_add(d);
                }
                _ => stream.timestamp = stream.timestamp.wrapping_add(stream.delta),
            }
            if let Some(t) = h.type_id {
                stream.type_id = t;
            }
            if let Some(id) = h.message_stream_id {
                stream.message_stream_id = id;
            }
            stream.length = length;
            stream.extended = h.extended;
        }
        self.input.advance(h.len);
        let chunk = self.input.split_to(body);
        if !in_progress && body == length as usize {
            // A message in one chunk (most audio) shares the input buffer: no copy.
            return Ok(Chunk::Consumed(Some(RawMessage {
                chunk_stream_id: h.csid,
                timestamp: stream.timestamp,
                type_id: stream.type_id,
                message_stream_id: stream.message_stream_id,
                payload: chunk.freeze(),
            })));
        }
        // Grow with what arrives, not with what the header claims.
        let partial = stream
            .partial
            .get_or_insert_with(|| BytesMut::with_capacity(body));
        partial.extend_from_slice(&chunk);
        if partial.len() < length as usize {
            self.partial_bytes += body;
            return Ok(Chunk::Consumed(None));
        }
        self.partial_bytes -= partial.len() - body;
        let payload = stream.partial.take().unwrap_or_default().freeze();
        Ok(Chunk::Consumed(Some(RawMessage {
            chunk_stream_id: h.csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            message_stream_id: stream.message_stream_id,
            payload,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_header(csid: u8, ts: u32, len: u32, type_id: u8, msid: u32) -> Vec<u8> {
        let mut h = vec![csid];
        h.extend_from_slice(&ts.to_be_bytes()[1..]);
        h.extend_from_slice(&len.to_be_bytes()[1..]);
        h.push(type_id);
        h.extend_from_slice(&msid.to_le_bytes());
        h
    }

    #[test]
    fn reassembles_interleaved_messages_of_two_chunk_streams() {
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        let a = [b'a'; 200];
        let b = [b'b'; 150];
        let mut wire = full_header(4, 10, 200, 8, 1);
        wire.extend_from_slice(&a[..128]);
        wire.extend(full_header(3, 0, 150, 20, 0));
        wire.extend_from_slice(&b[..128]);
        wire.push(0xC4); // fmt 3, csid 4: rest of a
        wire.extend_from_slice(&a[128..]);
        wire.push(0xC3);
        wire.extend_from_slice(&b[128..]);
        d.push(&wire);
        let m1 = d.next_message().unwrap().unwrap();
        assert_eq!(
            (m1.chunk_stream_id, m1.type_id, m1.payload.len()),
            (4, 8, 200)
        );
        assert!(m1.payload.iter().all(|&x| x == b'a'));
        let m2 = d.next_message().unwrap().unwrap();
        assert_eq!(
            (m2.chunk_stream_id, m2.type_id, m2.payload.len()),
            (3, 20, 150)
        );
        assert!(m2.payload.iter().all(|&x| x == b'b'));
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn byte_by_byte_input_gives_the_same_messages() {
        let mut wire = full_header(4, 0xFF_FFFF, 300, 8, 1);
        wire.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        wire.extend(vec![1u8; 128]);
        for rest in [128, 44] {
            wire.push(0xC4);
            wire.extend_from_slice(&0x0100_0000u32.to_be_bytes());
            wire.extend(vec![1u8; rest]);
        }
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        let mut got = Vec::new();
        for b in &wire {
            d.push(&[*b]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].timestamp, 0x0100_0000);
        assert_eq!(got[0].payload.len(), 300);
    }

    #[test]
    fn type_3_header_starting_a_message_repeats_the_delta() {
        let mut wire = full_header(4, 100, 2, 8, 1);
        wire.extend_from_slice(&[1, 2]);
        wire.extend_from_slice(&[0x84, 0, 0, 20, 3, 4]); // fmt 2: delta 20
        wire.extend_from_slice(&[0xC4, 5, 6]); // fmt 3: delta 20 again
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&wire);
        let ts: Vec<u32> = std::iter::from_fn(|| d.next_message().unwrap())
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(ts, vec![100, 120, 140]);
    }

    #[test]
    fn enforces_limits() {
        let limits = ChunkLimits {
            max_chunk_size: 4096,
            max_message_size: 1000,
            max_chunk_streams: 2,
        };
        let mut d = ChunkDecoder::new(limits);
        assert!(d.set_chunk_size(0).is_err());
        assert!(d.set_chunk_size(4097).is_err());
        assert!(d.set_chunk_size(4096).is_ok());
        d.push(&full_header(3, 0, 1001, 20, 0));
        assert_eq!(
            d.next_message(),
            Err(ChunkError::MessageTooLarge {
                size: 1001,
                limit: 1000
            })
        );

        let mut d = ChunkDecoder::new(limits);
        for csid in 3..6 {
            d.push(&full_header(csid, 0, 10, 8, 1));
            d.push(&[0u8; 10]);
        }
        assert!(d.next_message().unwrap().is_some());
        assert!(d.next_message().unwrap().is_some());
        assert_eq!(d.next_message(), Err(ChunkError::TooManyChunkStreams(2)));

        let mut d = ChunkDecoder::new(limits);
        d.push(&[0xC7, 1, 2, 3]);
        assert_eq!(d.next_message(), Err(ChunkError::NoPreviousHeader(7)));
        let mut d = ChunkDecoder::new(limits);
        d.push(&[0x87, 0, 0, 20]);
        assert_eq!(d.next_message(), Err(ChunkError::NoPreviousHeader(7)));

        // Type 1 first (as librtmp writes it): message stream 0, timestamp the delta.
        let mut d = ChunkDecoder::new(limits);
        d.push(&[0x47, 0, 0, 40, 0, 0, 2, 8, 0xAA, 0xBB]);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(
            (
                m.chunk_stream_id,
                m.timestamp,
                m.type_id,
                m.message_stream_id
            ),
            (7, 40, 8, 0)
        );
        assert_eq!(&m.payload[..], [0xAA, 0xBB]);

        let mut d = ChunkDecoder::new(limits);
        d.push(&full_header(3, 0, 200, 20, 0));
        d.push(&[0u8; 128]);
        d.push(&full_header(3, 0, 10, 20, 0));
        assert_eq!(d.next_message(), Err(ChunkError::MessageInterrupted(3)));
    }

    #[test]
    fn abort_discards_a_partial_message() {
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&full_header(3, 0, 200, 20, 0));
        d.push(&[0u8; 128]);
        assert_eq!(d.next_message().unwrap(), None);
        d.abort(3);
        d.push(&full_header(3, 0, 1, 20, 0));
        d.push(&[9]);
        assert_eq!(d.next_message().unwrap().unwrap().payload.as_ref(), &[9]);
    }
}
