//! SIP and SIPS URIs (RFC 3261 §19.1): enough structure to decide where a call
//! may go and to build request lines, with IPv6 references (RFC 5118).

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("not a sip: or sips: URI")]
    Scheme,
    #[error("the URI has no host")]
    NoHost,
    #[error("the URI's host {0:?} is not valid")]
    BadHost(String),
    #[error("the URI's port is not a number from 1 to 65535")]
    BadPort,
    #[error("the URI contains characters a SIP URI cannot hold")]
    BadCharacter,
}

/// A parsed `sip:user@host:port;params?headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    pub user: Option<String>,
    /// Lower-case; IPv6 without brackets.
    pub host: String,
    pub port: Option<u16>,
    /// Everything from the first `;` on (parameters and headers), as written.
    pub params: String,
}

impl SipUri {
    pub fn parse(text: &str) -> Result<SipUri, UriError> {
        let text = text.trim();
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>' || c == '"')
        {
            return Err(UriError::BadCharacter);
        }
        let (secure, rest) = if let Some(r) = strip_prefix_ci(text, "sips:") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(text, "sip:") {
            (false, r)
        } else {
            return Err(UriError::Scheme);
        };
        // The user part may itself hold ';' (user parameters), so split at '@' first.
        let (user, hostport_and_params) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let end = hostport_and_params
            .find([';', '?'])
            .unwrap_or(hostport_and_params.len());
        let (hostport, params) = hostport_and_params.split_at(end);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let close = v6
                .find(']')
                .ok_or_else(|| UriError::BadHost(hostport.into()))?;
            let host = &v6[..close];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(UriError::BadHost(host.into()));
            }
            let after = &v6[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None if after.is_empty() => None,
                None => return Err(UriError::BadHost(hostport.into())),
            };
            (host.to_ascii_lowercase(), port)
        } else {
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(parse_port(p)?)),
                None => (hostport, None),
            };
            if host.is_empty() {
                return Err(UriError::NoHost);
            }
            let valid = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid || host.starts_with(['-', '.']) {
                return Err(UriError::BadHost(host.into()));
            }
            (host.to_ascii_lowercase(), port)
        };
        if host.is_empty() {
            return Err(UriError::NoHost);
        }
        let user = match user {
            Some("") | None => None,
            Some(u) => Some(u.to_owned()),
        };
        Ok(SipUri {
            secure,
            user,
            host,
            port,
            params: params.to_owned(),
        })
    }

    /// The port, or the default of the scheme (5060, 5061 for sips; §19.1.2).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.secure { 5061 } else { 5060 })
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Whether the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.ip().is_some_and(|ip| ip.is_loopback())
    }

    /// The URI parameters (`;name=value` before any `?`), names percent-
    /// decoded and in lower case (RFC 3261 §25.1 lets a name be escaped, and
    /// a proxy may unescape it), values as written.
    pub fn parameters(&self) -> Vec<(String, Option<&str>)> {
        let params = self.params.split('?').next().unwrap_or_default();
        params
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (percent_decoded(n).to_ascii_lowercase(), Some(v)),
                None => (percent_decoded(p).to_ascii_lowercase(), None),
            })
            .collect()
    }

    /// The URI headers (`?name=value&…`, §19.1.1), if any.
    pub fn headers(&self) -> Option<&str> {
        self.params.split_once('?').map(|(_, h)| h)
    }

    /// Every `maddr` value (§19.1.1: it overrides the host as the address
    /// the request is sent to, RFC 3263 §4).
    pub fn maddrs(&self) -> Vec<&str> {
        self.parameters()
            .into_iter()
            .filter(|(n, _)| n == "maddr")
            .map(|(_, v)| v.unwrap_or_default())
            .collect()
    }

    /// Where a request for this URI is sent (RFC 3263 §4): the `maddr`
    /// host when there is one (the last, if several), else the host, with the
    /// URI's port and no `maddr`. An unusable `maddr` is an error.
    pub fn destination(&self) -> Result<SipUri, UriError> {
        let Some(maddr) = self.maddrs().pop() else {
            return Ok(self.clone());
        };
        let scheme = if self.secure { "sips:" } else { "sip:" };
        let host = SipUri::parse(&format!("{scheme}{maddr}"))?;
        if host.port.is_some() || !host.params.is_empty() || host.user.is_some() {
            return Err(UriError::BadHost(maddr.to_owned()));
        }
        let kept: String = self
            .params
            .split('?')
            .next()
            .unwrap_or_default()
            .split(';')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split('=').next().unwrap_or_default();
                !percent_decoded(name).eq_ignore_ascii_case("maddr")
            })
            .map(|p| format!(";{p}"))
            .collect();
        Ok(SipUri {
            host: host.host,
            params: kept,
            ..self.clone()
        })
    }
}

/// `%XX` escapes decoded (bytes that are not valid UTF-8 are kept escaped).
pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get`, not indexing: the prefix's length may fall inside a multi-byte
    // character of what a client sent.
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(UriError::BadPort),
        Ok(n) => Ok(n),
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_phones_dial() {
        let u = SipUri::parse("sip:Bob@Example.COM:5070;transport=udp").unwrap();
        assert_eq!(u.user.as_deref(), Some("Bob"));
        assert_eq!((u.host.as_str(), u.port), ("example.com", Some(5070)));
        assert_eq!(u.params, ";transport=udp");
        assert_eq!(u.to_string(), "sip:Bob@example.com:5070;transport=udp");
        let v6 = SipUri::parse("sips:alice@[::1]:5061").unwrap();
        assert!(v6.secure && v6.is_loopback());
        assert_eq!(v6.to_string(), "sips:alice@[::1]:5061");
        assert!(SipUri::parse("sip:127.0.0.2").unwrap().is_loopback());
        let odd = SipUri::parse("sip:a;x=@b@host").unwrap();
        assert_eq!(
            (odd.user.as_deref(), odd.host.as_str()),
            (Some("a;x=@b"), "host")
        );
    }

    #[test]
    fn refuses_what_is_not_a_sip_uri() {
        assert_eq!(SipUri::parse("tel:+123"), Err(UriError::Scheme));
        assert_eq!(SipUri::parse("sip:bob@"), Err(UriError::NoHost));
        assert_eq!(SipUri::parse("sip:bob@host:0"), Err(UriError::BadPort));
        assert_eq!(SipUri::parse("sip:bob@host:99999"), Err(UriError::BadPort));
        assert!(matches!(
            SipUri::parse("sip:bob@ho_st"),
            Err(UriError::BadHost(_))
        ));
        assert!(matches!(
            SipUri::parse("sip:bob@[::g]"),
            Err(UriError::BadHost(_))
        ));
        assert_eq!(
            SipUri::parse("sip:bob@host\r\nVia: x"),
            Err(UriError::BadCharacter)
        );
        // Multi-byte characters where the scheme would end (found by
        // schemathesis through the REST API's dial; it panicked before).
        for s in ["ï^\u{9fff7}k", "sï", "\u{e9}\u{e9}\u{e9}", "SIPS\u{e9}"] {
            assert!(SipUri::parse(s).is_err(), "{s:?}");
        }
        // A look-alike host is not loopback.
        assert!(!SipUri::parse("sip:bob@127.0.0.1.example.com")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn maddr_is_the_destination_in_any_spelling() {
        for text in [
            "sip:900@127.0.0.1;maddr=192.0.2.1",
            "sip:900@127.0.0.1;MADDR=192.0.2.1",
            "sip:900@127.0.0.1;m%61ddr=192.0.2.1;transport=udp",
            "sip:900@127.0.0.1;maddr=127.0.0.1;maddr=192.0.2.1",
        ] {
            let u = SipUri::parse(text).unwrap();
            assert!(u.maddrs().contains(&"192.0.2.1"), "{text}");
            let d = u.destination().unwrap();
            assert_eq!(d.host, "192.0.2.1", "{text}");
            assert!(!d.to_string().to_ascii_lowercase().contains("ddr"), "{d}");
        }
        let plain = SipUri::parse("sip:900@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(plain.destination().unwrap(), plain);
        let v6 = SipUri::parse("sip:900@127.0.0.1:5070;maddr=[::1]").unwrap();
        assert_eq!(v6.destination().unwrap().to_string(), "sip:900@[::1]:5070");
        for bad in ["sip:9@h;maddr=", "sip:9@h;maddr=a%2eb", "sip:9@h;maddr=h:1"] {
            assert!(SipUri::parse(bad).unwrap().destination().is_err(), "{bad}");
        }
        let headers = SipUri::parse("sip:9@h;lr?Route=%3Csip:x%3E").unwrap();
        assert_eq!(headers.headers(), Some("Route=%3Csip:x%3E"));
        assert_eq!(headers.parameters(), vec![("lr".to_owned(), None)]);
    }
}
