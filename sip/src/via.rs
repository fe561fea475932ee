//! The Via header field (RFC 3261 §20.42, §18.2.1) with RFC 3581's `rport`:
//! where a request came from and where its responses must go.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One Via value: `SIP/2.0/UDP host[:port];param…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: String,
    /// `Some(None)` is a bare `rport` asking to be filled in (RFC 3581 §3).
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaError(&'static str);

impl fmt::Display for ViaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Via {
    /// Parses one Via value (already split from its neighbours), tolerating the
    /// linear white space RFC 3261 allows around `/`, `:`, `;` and `=`.
    pub fn parse(value: &str) -> Result<Via, ViaError> {
        let mut parts = value.split(';');
        let sent = parts.next().unwrap_or_default();
        let mut protocol = sent.splitn(3, '/');
        let name = protocol.next().unwrap_or_default().trim();
        let version = protocol.next().unwrap_or_default().trim();
        let rest = protocol.next().ok_or(ViaError("no sent-protocol"))?.trim();
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(ViaError("not SIP/2.0"));
        }
        let (transport, sent_by) = rest.split_once([' ', '\t']).ok_or(ViaError("no sent-by"))?;
        let sent_by: String = sent_by.chars().filter(|c| !c.is_whitespace()).collect();
        let (host, port) = split_host_port(&sent_by).ok_or(ViaError("bad sent-by"))?;
        let mut via = Via {
            transport: transport.trim().to_ascii_uppercase(),
            host,
            port,
            branch: String::new(),
            rport: None,
            received: None,
        };
        for p in parts {
            if p.trim().is_empty() {
                return Err(ViaError("empty parameter"));
            }
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if k.eq_ignore_ascii_case("branch") {
                via.branch = v.unwrap_or_default().to_owned();
            } else if k.eq_ignore_ascii_case("rport") {
                let port = match v {
                    Some(v) => Some(v.parse().map_err(|_| ViaError("bad rport"))?),
                    None => None,
                };
                via.rport = Some(port);
            } else if k.eq_ignore_ascii_case("received") {
                via.received = v.map(str::to_owned);
            }
        }
        Ok(via)
    }

    /// Where responses to a request carrying this Via go over UDP (RFC 3261
    /// §18.2.2 and RFC 3581 §4): the source the request came from when it asked
    /// for `rport`, else `received` or the sent-by host, and the sent-by port.
    pub fn response_address(&self, source: SocketAddr) -> SocketAddr {
        // Over a reliable transport the response takes the request's own
        // connection (§18.2.2), which is the source.
        if self.rport.is_some() || self.transport != "UDP" {
            return source;
        }
        let ip = self
            .received
            .as_deref()
            .and_then(|r| r.parse::<IpAddr>().ok())
            .or_else(|| self.host.trim_matches(['[', ']']).parse().ok())
            .unwrap_or(source.ip());
        SocketAddr::new(ip, self.port.unwrap_or(5060))
    }

    /// The Via value to put back into responses, with `received` and `rport`
    /// filled in for the actual source (RFC 3261 §18.2.1, RFC 3581 §4).
    pub fn stamped(value: &str, source: SocketAddr) -> String {
        let Ok(via) = Via::parse(value) else {
            return value.to_owned();
        };
        let mut out: Vec<String> = Vec::new();
        for (i, p) in value.split(';').enumerate() {
            let key = p.split('=').next().unwrap_or_default().trim();
            if i > 0 && (key.eq_ignore_ascii_case("rport") || key.eq_ignore_ascii_case("received"))
            {
                continue;
            }
            out.push(p.trim().to_owned());
        }
        let host_is_source =
            via.host.trim_matches(['[', ']']).parse::<IpAddr>().ok() == Some(source.ip());
        if via.rport.is_some() || !host_is_source {
            out.push(format!("received={}", source.ip()));
        }
        if via.rport.is_some() {
            out.push(format!("rport={}", source.port()));
        }
        out.join(";")
    }
}

/// `host[:port]` with IPv6 references in brackets.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    match s.split_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_owned(), Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lws_and_rport() {
        let v =
            Via::parse("SIP  /   2.0\r\n /UDP  192.0.2.2:5070 ; branch = z9hG4bKa;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch, "z9hG4bKa");
        assert_eq!(v.rport, Some(None));
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bKb").unwrap();
        assert_eq!(v.host, "[2001:db8::9]");
        assert!(Via::parse("SIP/3.0/UDP a").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn responses_follow_rport_and_received() {
        let src: SocketAddr = "10.0.0.7:40000".parse().unwrap();
        let v = Via::parse("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa;rport").unwrap();
        assert_eq!(v.response_address(src), src);
        let v = Via::parse("SIP/2.0/UDP 192.168.1.2:5062;branch=z9hG4bKa").unwrap();
        assert_eq!(v.response_address(src), "192.168.1.2:5062".parse().unwrap());
        assert_eq!(
            Via::stamped("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa;rport", src),
            "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa;received=10.0.0.7;rport=40000"
        );
        let same: SocketAddr = "192.168.1.2:5060".parse().unwrap();
        assert_eq!(
            Via::stamped("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa", same),
            "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa"
        );
    }
}
