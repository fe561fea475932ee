//! What the sans-I/O SIP cores hand to the transport: one message and where
//! it goes, and the transports a call can use (RFC 3261 §18).

use std::fmt;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// The transport a call's messages travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports need no retransmissions by transactions (§17.1.1.2).
    pub fn is_reliable(self) -> bool {
        self == Transport::Tcp
    }

    /// The transport a URI asks for with its `transport` parameter (§19.1.1).
    pub fn of_uri(uri: &str) -> Transport {
        let params = uri.split('?').next().unwrap_or(uri);
        let tcp = params.split(';').skip(1).any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("transport") && v.trim().eq_ignore_ascii_case("tcp")
            })
        });
        if tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_parameter_picks_tcp() {
        assert_eq!(
            Transport::of_uri("sip:bob@192.0.2.1;transport=TCP"),
            Transport::Tcp
        );
        assert_eq!(
            Transport::of_uri("sip:bob@192.0.2.1;lr;transport=tcp"),
            Transport::Tcp
        );
        assert_eq!(Transport::of_uri("sip:bob@192.0.2.1"), Transport::Udp);
        assert_eq!(
            Transport::of_uri("sip:transport=tcp@192.0.2.1"),
            Transport::Udp
        );
    }
}
