//! Splitting a SIP byte stream (TCP) into messages (RFC 3261 §18.3): each
//! message is its header section up to the blank line plus Content-Length
//! bytes of body; Content-Length is mandatory on streams. CRLF keep-alives
//! between messages (RFC 5626 §3.5.1) are skipped. A message over the size
//! limit, or a header section without a readable Content-Length, is a framing
//! error: the stream cannot be resynchronised and must be closed.

use std::fmt;

use crate::message::{decimal, MAX_MESSAGE_SIZE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError(pub &'static str);

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    buffer: Vec<u8>,
    failed: bool,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next whole message, if one is buffered; after an error, only errors.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, FramingError>> {
        if self.failed {
            return Some(Err(FramingError("the stream already failed")));
        }
        let start = self
            .buffer
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buffer.len());
        self.buffer.drain(..start);
        let Some(head_end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buffer.len() > MAX_MESSAGE_SIZE {
                return Some(self.fail("header section larger than the message limit"));
            }
            return None;
        };
        let body_start = head_end + 4;
        let Some(length) = content_length(&self.buffer[..head_end]) else {
            return Some(self.fail("no valid Content-Length on a stream"));
        };
        let total = body_start + length;
        if total > MAX_MESSAGE_SIZE {
            return Some(self.fail("message larger than the limit"));
        }
        if self.buffer.len() < total {
            return None;
        }
        let message: Vec<u8> = self.buffer.drain(..total).collect();
        Some(Ok(message))
    }

    fn fail(&mut self, why: &'static str) -> Result<Vec<u8>, FramingError> {
        self.failed = true;
        self.buffer = Vec::new();
        Err(FramingError(why))
    }
}

/// The Content-Length (or `l`) value of a header section, if exactly one is readable.
fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    let mut found = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
            if found.is_some() {
                return None;
            }
            found = Some(usize::try_from(decimal(value.trim())?).ok()?);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn messages_split_across_reads_and_glued_together() {
        let mut f = StreamFramer::new();
        let mut all = b"\r\n\r\n".to_vec();
        all.extend_from_slice(OPTIONS);
        all.extend_from_slice(OPTIONS);
        for chunk in all.chunks(7) {
            f.push(chunk);
        }
        assert_eq!(f.next_message(), Some(Ok(OPTIONS.to_vec())));
        assert_eq!(f.next_message(), Some(Ok(OPTIONS.to_vec())));
        assert_eq!(f.next_message(), None);
        f.push(&OPTIONS[..20]);
        assert_eq!(f.next_message(), None);
    }

    #[test]
    fn a_stream_without_content_length_or_too_large_fails_for_good() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(matches!(f.next_message(), Some(Err(_))));
        f.push(OPTIONS);
        assert!(matches!(f.next_message(), Some(Err(_))));
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 99999999\r\n\r\n");
        assert!(matches!(f.next_message(), Some(Err(_))));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE_SIZE + 1]);
        assert!(matches!(f.next_message(), Some(Err(_))));
    }
}
