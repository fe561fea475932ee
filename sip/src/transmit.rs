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
    /// TLS over TCP (§26.2): `sips:` URIs and `;transport=tls`.
    Tls,
}

impl Transport {
    /// Reliable transports need no retransmissions by transactions (§17.1.1.2).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// The transport a URI asks for (§19.1.1, RFC 5630 §3.1): TLS for a
    /// `sips:` URI whatever its parameters say, else the `transport`
    /// parameter's (tcp or tls), else UDP.
    pub fn of_uri(uri: &str) -> Transport {
        let trimmed = uri.trim_start_matches('<');
        if trimmed
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
        {
            return Transport::Tls;
        }
        let params = uri.split('?').next().unwrap_or(uri);
        let mut transport = Transport::Udp;
        for p in params.split(';').skip(1) {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("transport") {
                    let v = v.trim().trim_end_matches('>');
                    if v.eq_ignore_ascii_case("tcp") {
                        transport = Transport::Tcp;
                    } else if v.eq_ignore_ascii_case("tls") {
                        transport = Transport::Tls;
                    }
                }
            }
        }
        transport
    }

    /// The `;transport=` parameter a Contact of ours carries on this
    /// transport (none for UDP, the default).
    pub fn uri_parameter(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
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
            Transport::of_uri("sip:bob@192.0.2.1;transport=TLS"),
            Transport::Tls
        );
        // sips: means TLS to the next hop whatever the parameter says.
        assert_eq!(Transport::of_uri("sips:bob@example.com"), Transport::Tls);
        assert_eq!(
            Transport::of_uri("SIPS:bob@example.com;transport=tcp"),
            Transport::Tls
        );
        assert!(Transport::Tls.is_reliable());
        assert_eq!(Transport::Tls.to_string(), "TLS");
        assert_eq!(
            Transport::of_uri("sip:transport=tcp@192.0.2.1"),
            Transport::Udp
        );
    }
}
