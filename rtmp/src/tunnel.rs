//! RTMPT: RTMP tunnelled through HTTP POSTs, sans-I/O. Adobe never published a
//! specification; this follows what Flash Player and ffmpeg's `rtmpt://` client
//! send, and what Flash Media Server and Red5 answer:
//!
//! - `POST /fcs/ident2`: an edge-identity probe. A server without an edge answers
//!   404 and the client carries on (Flash Player does exactly that).
//! - `POST /open/1`: the body is one ignored byte; the answer's body is the new
//!   session id followed by a newline.
//! - `POST /send/<session>/<seq>`: the body is RTMP bytes from the client.
//! - `POST /idle/<session>/<seq>`: a poll with nothing to send.
//! - `POST /close/<session>/<seq>`: the client is done.
//!
//! Every answer to send, idle and close is `application/x-fcs`; its first byte
//! is how long the client should wait before polling again, and the rest are
//! RTMP bytes for the client. The interval grows while nothing flows, so an idle
//! client costs few requests, and drops back to the minimum when bytes move.

use std::fmt;

/// The content type of every RTMPT request and answer.
pub const CONTENT_TYPE: &str = "application/x-fcs";

/// Longest session id we hand out or accept.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// One RTMPT request, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelRequest<'a> {
    /// `/fcs/ident` or `/fcs/ident2`.
    Ident {
        version2: bool,
    },
    Open,
    Send {
        session: &'a str,
        seq: u64,
    },
    Idle {
        session: &'a str,
        seq: u64,
    },
    Close {
        session: &'a str,
        seq: u64,
    },
}

impl<'a> TunnelRequest<'a> {
    /// The session and sequence number of send, idle and close.
    pub fn session(&self) -> Option<(&'a str, u64)> {
        match *self {
            TunnelRequest::Send { session, seq }
            | TunnelRequest::Idle { session, seq }
            | TunnelRequest::Close { session, seq } => Some((session, seq)),
            TunnelRequest::Ident { .. } | TunnelRequest::Open => None,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    #[error("not an RTMPT path")]
    UnknownPath,
    #[error("malformed RTMPT session id")]
    BadSession,
    #[error("malformed RTMPT sequence number")]
    BadSequenceNumber,
    #[error("RTMPT sequence number {got} is not after {last}")]
    OutOfSequence { last: u64, got: u64 },
}

/// Parses a request path (without query string).
pub fn parse_path(path: &str) -> Result<TunnelRequest<'_>, TunnelError> {
    let rest = path.strip_prefix('/').ok_or(TunnelError::UnknownPath)?;
    let mut parts = rest.split('/');
    let verb = parts.next().ok_or(TunnelError::UnknownPath)?;
    let request = match verb {
        "fcs" => match (parts.next(), parts.next()) {
            (Some("ident"), None) => TunnelRequest::Ident { version2: false },
            (Some("ident2"), None) => TunnelRequest::Ident { version2: true },
            _ => return Err(TunnelError::UnknownPath),
        },
        "open" => match (parts.next(), parts.next()) {
            // Every client sends version 1; anything else is not RTMPT.
            (Some("1"), None) => TunnelRequest::Open,
            _ => return Err(TunnelError::UnknownPath),
        },
        "send" | "idle" | "close" => {
            let session = parts.next().ok_or(TunnelError::BadSession)?;
            if !is_session_id(session) {
                return Err(TunnelError::BadSession);
            }
            let seq = parts.next().ok_or(TunnelError::BadSequenceNumber)?;
            if parts.next().is_some() {
                return Err(TunnelError::UnknownPath);
            }
            // Digits only: `u64::from_str` would also take a leading '+'.
            if seq.is_empty() || seq.len() > 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TunnelError::BadSequenceNumber);
            }
            let seq = seq
                .parse::<u64>()
                .map_err(|_| TunnelError::BadSequenceNumber)?;
            match verb {
                "send" => TunnelRequest::Send { session, seq },
                "idle" => TunnelRequest::Idle { session, seq },
                _ => TunnelRequest::Close { session, seq },
            }
        }
        _ => return Err(TunnelError::UnknownPath),
    };
    Ok(request)
}

/// Session ids are ASCII letters, digits and `-` (a cluster node's prefix,
/// `n1-…`), which every client copies into its paths unchanged.
pub fn is_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SESSION_ID_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The sequence numbers of one session: each request's must be above the
/// last one's. A replayed or reordered request is refused rather than applied
/// twice, which would corrupt the RTMP byte stream.
#[derive(Debug, Default, Clone)]
pub struct TunnelSequence {
    last: Option<u64>,
}

impl TunnelSequence {
    pub fn accept(&mut self, seq: u64) -> Result<(), TunnelError> {
        match self.last {
            Some(last) if seq <= last => Err(TunnelError::OutOfSequence { last, got: seq }),
            _ => {
                self.last = Some(seq);
                Ok(())
            }
        }
    }
}

/// The polling interval written as the first byte of each answer.
#[derive(Clone, PartialEq, Eq)]
pub struct PollInterval {
    current: u8,
}

impl PollInterval {
    /// The interval while bytes flow.
    pub const MIN: u8 = 0x01;
    /// The longest interval: Flash Player and FMS stop growing it there.
    pub const MAX: u8 = 0x21;

    /// The byte for this answer: back to the minimum when bytes moved either
    /// way, else doubled up to the maximum.
    pub fn next(&mut self, bytes_moved: bool) -> u8 {
        self.current = if bytes_moved {
            Self::MIN
        } else {
            (self.current.saturating_mul(2)).clamp(Self::MIN, Self::MAX)
        };
        self.current
    }
}

impl Default for PollInterval {
    fn default() -> Self {
        PollInterval { current: Self::MIN }
    }
}

impl fmt::Debug for PollInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PollInterval({:#04x})", self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_real_clients_send() {
        assert_eq!(parse_path("/open/1"), Ok(TunnelRequest::Open));
        assert_eq!(
            parse_path("/fcs/ident2"),
            Ok(TunnelRequest::Ident { version2: true })
        );
        assert_eq!(
            parse_path("/send/a1B2/7"),
            Ok(TunnelRequest::Send {
                session: "a1B2",
                seq: 7
            })
        );
        // A cluster node's session (cluster.node_id = n2).
        assert_eq!(
            parse_path("/idle/n2-0af3/3"),
            Ok(TunnelRequest::Idle {
                session: "n2-0af3",
                seq: 3
            })
        );
        assert_eq!(
            parse_path("/idle/x/0"),
            Ok(TunnelRequest::Idle {
                session: "x",
                seq: 0
            })
        );
        assert_eq!(
            parse_path("/close/x/18446744073709551615")
                .ok()
                .and_then(|r| r.session().map(|(s, q)| (s.to_owned(), q))),
            Some(("x".to_owned(), u64::MAX))
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for (path, want) in [
            ("open/1", TunnelError::UnknownPath),
            ("/open/2", TunnelError::UnknownPath),
            ("/open/1/x", TunnelError::UnknownPath),
            ("/fcs/ident3", TunnelError::UnknownPath),
            ("/send", TunnelError::BadSession),
            ("/send//1", TunnelError::BadSession),
            ("/send/a_b/1", TunnelError::BadSession),
            ("/send/a.b/1", TunnelError::BadSession),
            ("/send/a/", TunnelError::BadSequenceNumber),
            ("/send/a", TunnelError::BadSequenceNumber),
            ("/send/a/+1", TunnelError::BadSequenceNumber),
            ("/send/a/-1", TunnelError::BadSequenceNumber),
            (
                "/send/a/18446744073709551616",
                TunnelError::BadSequenceNumber,
            ),
            ("/send/a/1/2", TunnelError::UnknownPath),
            ("/api/v1/x", TunnelError::UnknownPath),
        ] {
            assert_eq!(parse_path(path), Err(want), "{path}");
        }
        let long = format!("/idle/{}/1", "a".repeat(MAX_SESSION_ID_LEN + 1));
        assert_eq!(parse_path(&long), Err(TunnelError::BadSession));
    }

    #[test]
    fn sequence_numbers_must_rise() {
        let mut s = TunnelSequence::default();
        s.accept(1).unwrap();
        s.accept(2).unwrap();
        // A client may skip numbers (a request it gave up on), never go back.
        s.accept(5).unwrap();
        assert_eq!(
            s.accept(5),
            Err(TunnelError::OutOfSequence { last: 5, got: 5 })
        );
        assert_eq!(
            s.accept(3),
            Err(TunnelError::OutOfSequence { last: 5, got: 3 })
        );
        s.accept(6).unwrap();
    }

    #[test]
    fn the_interval_grows_while_idle_and_resets_on_traffic() {
        let mut p = PollInterval::default();
        let idle: Vec<u8> = (0..8).map(|_| p.next(false)).collect();
        assert_eq!(idle, [2, 4, 8, 16, 32, 0x21, 0x21, 0x21]);
        assert_eq!(p.next(true), 1);
        assert_eq!(p.next(false), 2);
    }
}
