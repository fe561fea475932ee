//! Cutting messages into chunks with compressed headers (RTMP 1.0 §5.3.1).

use std::collections::HashMap;

use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP};

#[derive(Debug, Clone, Copy)]
struct Last {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    message_stream_id: u32,
}

/// Writes messages as chunks; one per connection, as header compression is stateful.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    last: HashMap<u32, Last>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            last: HashMap::new(),
        }
    }
}

impl ChunkEncoder {
    /// Chunk size for what is written from now on. Call it right after writing
    /// the Set Chunk Size message that announces it.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7FFF_FFFF);
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Appends `payload` as one message on chunk stream `csid` (3..=65599).
    pub fn encode(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        message_stream_id: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let length = u32::try_from(payload.len())
            .unwrap_or(0x00FF_FFFF)
            .min(0x00FF_FFFF);
        let payload = &payload[..length as usize];
        let prev = self.last.get(&csid).copied();
        // Type 0 whenever compression would need a negative delta or a new stream id.
        let (fmt, field) = match prev {
            Some(p) if p.message_stream_id == message_stream_id && timestamp >= p.timestamp => {
                let delta = timestamp - p.timestamp;
                if p.type_id == type_id && p.length == length {
                    if delta == p.delta {
                        (3, delta)
                    } else {
                        (2, delta)
                    }
                } else {
                    (1, delta)
                }
            }
            _ => (0, timestamp),
        };
        let delta = if fmt == 0 { timestamp } else { field };
        self.last.insert(
            csid,
            Last {
                timestamp,
                delta,
                length,
                type_id,
                message_stream_id,
            },
        );
        // A type 3 header carries no timestamp, but repeats the extended one of the
        // header it stands for, which carried `field` (== delta).
        let extended = field >= EXTENDED_TIMESTAMP;
        let ts24 = if extended { EXTENDED_TIMESTAMP } else { field };

        put_basic_header(out, fmt, csid);
        if fmt <= 2 {
            out.extend_from_slice(&ts24.to_be_bytes()[1..]);
        }
        if fmt <= 1 {
            out.extend_from_slice(&length.to_be_bytes()[1..]);
            out.push(type_id);
        }
        if fmt == 0 {
            out.extend_from_slice(&message_stream_id.to_le_bytes());
        }
        if extended {
            out.extend_from_slice(&field.to_be_bytes());
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for chunk in chunks {
            put_basic_header(out, 3, csid);
            if extended {
                out.extend_from_slice(&field.to_be_bytes());
            }
            out.extend_from_slice(chunk);
        }
    }
}

fn put_basic_header(out: &mut Vec<u8>, fmt: u8, csid: u32) {
    let f = fmt << 6;
    match csid {
        0..=63 => out.push(f | csid as u8),
        64..=319 => out.extend_from_slice(&[f, (csid - 64) as u8]),
        _ => {
            let id = csid.min(65_599) - 64;
            out.extend_from_slice(&[f | 1, id as u8, (id >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ChunkDecoder, ChunkLimits};
    use super::*;

    #[test]
    fn decoder_reads_back_what_the_encoder_writes() {
        let mut e = ChunkEncoder::default();
        let mut wire = Vec::new();
        let messages: Vec<(u32, u32, u8, u32, Vec<u8>)> = vec![
            (3, 0, 20, 0, vec![1; 300]),
            (4, 1000, 8, 1, vec![2; 71]),
            (4, 1020, 8, 1, vec![3; 71]),
            (4, 1040, 8, 1, vec![4; 71]),
            (4, 1060, 8, 1, vec![5; 60]),
            (4, 10, 8, 1, vec![6; 60]),
            (4, 0x0100_0000, 8, 1, vec![7; 200]),
            (4, 0x0100_0014, 8, 1, vec![8; 200]),
            (400, 5, 18, 2, vec![9; 3]),
            (70_000, 5, 18, 2, vec![10; 3]),
        ];
        for (csid, ts, t, ms, p) in &messages {
            e.encode(*csid, *ts, *t, *ms, p, &mut wire);
        }
        let mut d = ChunkDecoder::new(ChunkLimits {
            max_chunk_streams: 1000,
            ..ChunkLimits::default()
        });
        d.push(&wire);
        for (csid, ts, t, ms, p) in messages {
            let m = d.next_message().unwrap().unwrap();
            assert_eq!(m.chunk_stream_id, csid.min(65_599));
            assert_eq!(m.timestamp, ts);
            assert_eq!(m.type_id, t);
            assert_eq!(m.message_stream_id, ms);
            assert_eq!(m.payload.as_ref(), p.as_slice());
        }
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn compresses_regular_audio_to_one_byte_headers() {
        let mut e = ChunkEncoder::default();
        let mut wire = Vec::new();
        for i in 0..3 {
            e.encode(4, i * 20, 8, 1, &[0xB2; 10], &mut wire);
        }
        // 12-byte header, then 4-byte (delta 20), then 1-byte (same delta).
        assert_eq!(wire.len(), 12 + 10 + 4 + 10 + 1 + 10);
    }
}
