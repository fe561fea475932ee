//! The PROXY protocol version 2 header (HAProxy's `send-proxy-v2`, "The
//! PROXY protocol", §2.2) that a load balancer puts before the RTMP bytes, so
//! sono sees the client's address rather than the balancer's.
//!
//! Sans-I/O in two steps, so the reader never takes a byte of RTMP: the
//! fixed 16 bytes say how long the header is ([`header_length`]); the whole
//! header then gives the client ([`client_address`]). The binary layout is
//! parsed by the `ppp` crate; this module decides what sono accepts.

use std::net::SocketAddr;

use ppp::v2::{Addresses, Command, Header};

/// The signature and the fixed part: version/command, family, length.
pub const FIXED_LEN: usize = 16;

/// Longest header accepted: the addresses of any family plus room for the
/// TLVs HAProxy may add (SSL, unique id, ALPN, authority).
pub const MAX_HEADER_LEN: usize = 1024;

const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("no PROXY protocol v2 signature (is the balancer set to send-proxy-v2?)")]
    NoSignature,
    #[error("PROXY protocol version {0}; only version 2 is accepted")]
    Version(u8),
    #[error("PROXY header of {0} bytes; at most {MAX_HEADER_LEN} are accepted")]
    TooLong(usize),
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
}

/// The whole header's length, from its first [`FIXED_LEN`] bytes.
pub fn header_length(fixed: &[u8; FIXED_LEN]) -> Result<usize, ProxyHeaderError> {
    if fixed[..12] != SIGNATURE {
        return Err(ProxyHeaderError::NoSignature);
    }
    let version = fixed[12] >> 4;
    if version != 2 {
        return Err(ProxyHeaderError::Version(version));
    }
    let total = FIXED_LEN + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if total > MAX_HEADER_LEN {
        return Err(ProxyHeaderError::TooLong(total));
    }
    Ok(total)
}

/// The client the balancer speaks for: `Some` for a proxied TCP connection
/// over IPv4 or IPv6; `None` for a LOCAL connection (the balancer's own
/// health check) or an unspecified family, which keep the socket's address.
pub fn client_address(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let fixed: &[u8; FIXED_LEN] = header
        .get(..FIXED_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProxyHeaderError::Malformed("shorter than 16 bytes".into()))?;
    let total = header_length(fixed)?;
    if header.len() != total {
        return Err(ProxyHeaderError::Malformed(format!(
            "{} bytes where the header says {total}",
            header.len()
        )));
    }
    let parsed =
        Header::try_from(header).map_err(|e| ProxyHeaderError::Malformed(e.to_string()))?;
    // ppp reads TLVs lazily; a header whose TLVs overrun it is malformed
    // even if the addresses are fine.
    if let Some(Err(e)) = parsed.tlvs().find(Result::is_err) {
        return Err(ProxyHeaderError::Malformed(format!("TLV: {e}")));
    }
    if parsed.command == Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    })
}

/// A header for `client` arriving at `server` (tests and tools).
pub fn encode(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out.push(0x11); // TCP over IPv4
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.ip().octets());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
        (c, s) => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
                SocketAddr::V6(v6) => *v6.ip(),
            };
            out.push(0x21); // TCP over IPv6
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(c).octets());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
        let fixed: [u8; FIXED_LEN] = header[..FIXED_LEN].try_into().unwrap();
        assert_eq!(header_length(&fixed)?, header.len());
        client_address(header)
    }

    #[test]
    fn ipv4_and_ipv6_clients_are_read() {
        let server: SocketAddr = "10.0.0.1:1935".parse().unwrap();
        let client: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        assert_eq!(parse(&encode(client, server)), Ok(Some(client)));
        let client6: SocketAddr = "[2001:db8::7]:40001".parse().unwrap();
        let server6: SocketAddr = "[2001:db8::1]:1935".parse().unwrap();
        assert_eq!(parse(&encode(client6, server6)), Ok(Some(client6)));
    }

    #[test]
    fn tlvs_after_the_addresses_are_skipped() {
        let client: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let mut h = encode(client, "10.0.0.1:1935".parse().unwrap());
        h.extend_from_slice(&[0x04, 0x00, 0x02, 0xAA, 0xBB]); // NOOP TLV
        let len = (h.len() - FIXED_LEN) as u16;
        h[14..16].copy_from_slice(&len.to_be_bytes());
        assert_eq!(parse(&h), Ok(Some(client)));
    }

    #[test]
    fn a_local_connection_keeps_the_socket_address() {
        let mut h = SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(parse(&h), Ok(None));
    }

    #[test]
    fn rtmp_bytes_and_version_1_are_refused() {
        let mut rtmp = [0u8; FIXED_LEN];
        rtmp[0] = 3; // an RTMP C0
        assert_eq!(header_length(&rtmp), Err(ProxyHeaderError::NoSignature));
        let v1: [u8; FIXED_LEN] = *b"PROXY TCP4 1.2.3";
        assert_eq!(header_length(&v1), Err(ProxyHeaderError::NoSignature));
        let mut v3 = [0u8; FIXED_LEN];
        v3[..12].copy_from_slice(&SIGNATURE);
        v3[12] = 0x31;
        assert_eq!(header_length(&v3), Err(ProxyHeaderError::Version(3)));
    }

    #[test]
    fn lengths_beyond_the_limit_or_the_bytes_are_refused() {
        let mut h = [0u8; FIXED_LEN];
        h[..12].copy_from_slice(&SIGNATURE);
        h[12] = 0x21;
        h[13] = 0x11;
        h[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            header_length(&h),
            Err(ProxyHeaderError::TooLong(_))
        ));
        // IPv4 says 12 bytes of addresses; 4 are there.
        let mut short = h.to_vec();
        short[14..16].copy_from_slice(&4u16.to_be_bytes());
        short.extend_from_slice(&[1, 2, 3, 4]);
        assert!(matches!(
            client_address(&short),
            Err(ProxyHeaderError::Malformed(_))
        ));
    }
}
