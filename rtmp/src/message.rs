//! RTMP messages (RTMP 1.0 §5.4 protocol control, §6.2 user control, §7.1 the
//! command, data and media message types): typed views of a [`RawMessage`]'s
//! payload, and the payloads of what we send.

use bytes::Bytes;

use crate::amf::{amf0, AmfError, AmfValue, DecodeLimits};
use crate::chunk::RawMessage;

/// Message type ids (§5.4, §7.1).
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// User control event types (§6.2, §7.1.7).
pub mod user_control {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// How a command's values were framed: AMF0 (type 20) or the AMF3 "flex" framing
/// (type 17: one format byte, then AMF0 values that may switch to AMF3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectEncoding {
    Amf0,
    Amf3,
}

impl ObjectEncoding {
    /// The value of `objectEncoding` in `connect` (0 or 3).
    pub fn number(self) -> f64 {
        match self {
            ObjectEncoding::Amf0 => 0.0,
            ObjectEncoding::Amf3 => 3.0,
        }
    }
}

/// A message as the session sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort {
        chunk_stream_id: u32,
    },
    Acknowledgement(u32),
    UserControl {
        event: u16,
        data: Bytes,
    },
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit_type: u8,
    },
    Audio(Bytes),
    Video(Bytes),
    Command {
        encoding: ObjectEncoding,
        values: Vec<AmfValue>,
    },
    Data(Vec<AmfValue>),
    /// Shared objects and aggregates: valid RTMP that a phone has no use for.
    Unsupported(u8),
}

/// Why a message's payload makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message type {type_id} has a {len}-byte payload, too short")]
    Truncated { type_id: u8, len: usize },
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("AMF3 command or data message starts with format byte 0x{0:02x}, not 0x00")]
    BadFormatByte(u8),
    #[error("undecodable AMF in message type {type_id}: {source}")]
    Amf { type_id: u8, source: AmfError },
}

impl Message {
    /// Interprets a reassembled message.
    pub fn parse(raw: &RawMessage, limits: DecodeLimits) -> Result<Message, MessageError> {
        use type_id::*;
        let p = &raw.payload;
        let t = raw.type_id;
        let be32 = |at: usize| -> Result<u32, MessageError> {
            p.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(MessageError::Truncated {
                    type_id: t,
                    len: p.len(),
                })
        };
        let amf = |body: &[u8]| {
            amf0::decode_all(body, limits)
                .map_err(|source| MessageError::Amf { type_id: t, source })
        };
        let flex_body = || -> Result<&[u8], MessageError> {
            match p.first() {
                None => Err(MessageError::Truncated { type_id: t, len: 0 }),
                Some(0) => Ok(&p[1..]),
                Some(&b) => Err(MessageError::BadFormatByte(b)),
            }
        };
        Ok(match t {
            // The top bit of Set Chunk Size is reserved (§5.4.1).
            SET_CHUNK_SIZE => Message::SetChunkSize(be32(0)? & 0x7FFF_FFFF),
            ABORT => Message::Abort {
                chunk_stream_id: be32(0)?,
            },
            ACKNOWLEDGEMENT => Message::Acknowledgement(be32(0)?),
            WINDOW_ACK_SIZE => Message::WindowAckSize(be32(0)?),
            SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: be32(0)?,
                limit_type: *p.get(4).ok_or(MessageError::Truncated {
                    type_id: t,
                    len: p.len(),
                })?,
            },
            USER_CONTROL => {
                if p.len() < 2 {
                    return Err(MessageError::Truncated {
                        type_id: t,
                        len: p.len(),
                    });
                }
                Message::UserControl {
                    event: u16::from_be_bytes([p[0], p[1]]),
                    data: p.slice(2..),
                }
            }
            AUDIO => Message::Audio(p.clone()),
            VIDEO => Message::Video(p.clone()),
            COMMAND_AMF0 => Message::Command {
                encoding: ObjectEncoding::Amf0,
                values: amf(p)?,
            },
            COMMAND_AMF3 => Message::Command {
                encoding: ObjectEncoding::Amf3,
                values: amf(flex_body()?)?,
            },
            DATA_AMF0 => Message::Data(amf(p)?),
            DATA_AMF3 => Message::Data(amf(flex_body()?)?),
            SHARED_OBJECT_AMF0 | SHARED_OBJECT_AMF3 | AGGREGATE => Message::Unsupported(t),
            other => return Err(MessageError::UnknownType(other)),
        })
    }
}

/// Payload of a protocol control message holding one 32-bit number.
pub fn u32_payload(value: u32) -> [u8; 4] {
    value.to_be_bytes()
}

/// Payload of Set Peer Bandwidth; limit type 2 is "dynamic" (§5.4.5).
pub fn peer_bandwidth_payload(size: u32, limit_type: u8) -> [u8; 5] {
    let b = size.to_be_bytes();
    [b[0], b[1], b[2], b[3], limit_type]
}

/// Payload of a user control event whose data is one 32-bit number.
pub fn user_control_payload(event: u16, value: u32) -> [u8; 6] {
    let e = event.to_be_bytes();
    let v = value.to_be_bytes();
    [e[0], e[1], v[0], v[1], v[2], v[3]]
}

/// Payload of a command message in the given framing.
pub fn command_payload(encoding: ObjectEncoding, values: &[AmfValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    if encoding == ObjectEncoding::Amf3 {
        out.push(0);
    }
    amf0::encode_all(values, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            chunk_stream_id: 3,
            timestamp: 0,
            type_id,
            message_stream_id: 0,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn parses_control_and_command_messages() {
        let l = DecodeLimits::default();
        assert_eq!(
            Message::parse(&raw(1, &[0x80, 0, 0x10, 0]), l),
            Ok(Message::SetChunkSize(4096))
        );
        let cmd = command_payload(ObjectEncoding::Amf3, &[AmfValue::from("dial")]);
        assert_eq!(
            Message::parse(&raw(17, &cmd), l),
            Ok(Message::Command {
                encoding: ObjectEncoding::Amf3,
                values: vec![AmfValue::from("dial")]
            })
        );
        assert_eq!(
            Message::parse(&raw(7, &[]), l),
            Err(MessageError::UnknownType(7))
        );
        assert!(matches!(
            Message::parse(&raw(5, &[0, 0]), l),
            Err(MessageError::Truncated { .. })
        ));
        assert_eq!(
            Message::parse(&raw(17, &[1, 2]), l),
            Err(MessageError::BadFormatByte(1))
        );
        assert!(matches!(
            Message::parse(&raw(20, &[0x02, 0, 9, b'x']), l),
            Err(MessageError::Amf { .. })
        ));
    }
}
