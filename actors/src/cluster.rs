//! One node among several (docs/cluster.md). sono keeps no cluster state of
//! its own: Kamailio keeps who is registered where, HAProxy spreads
//! connections. What a node adds is a way for the proxy to find it again:
//! every token and RTMPT session id it hands out starts with its name
//! (`cluster.node_id`), so a rule on a prefix sends a request to the node
//! that holds the connection, and a node that gets another's request says
//! which (HTTP 421, RFC 9110 §15.5.20).
//!
//! The address of a client behind a trusted proxy is also decided here: the
//! PROXY protocol header on RTMP ([`sono_rtmp::proxy_header`]) and
//! `X-Forwarded-For` on HTTP.

use std::net::{IpAddr, SocketAddr};

use rand::Rng;

use crate::settings::ClusterSettings;

/// A fresh unguessable secret: 128 random bits in hex, after `node-` when
/// the node has a name. Connection tokens and RTMPT session ids.
pub fn new_secret(node_id: &str) -> String {
    let random = rand::thread_rng().gen::<u128>();
    if node_id.is_empty() {
        format!("{random:032x}")
    } else {
        format!("{node_id}-{random:032x}")
    }
}

/// Where a request belongs when it is not here: another node's name and
/// its address from `cluster.nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misdirected {
    pub node: String,
    pub address: Option<String>,
}

/// Whether `secret` (a token or an RTMPT session id) was handed out by
/// another node of `cluster.nodes`. Only names listed there count, so a
/// stream key that happens to hold a `-` is never taken for one.
pub fn misdirected(cluster: &ClusterSettings, secret: &str) -> Option<Misdirected> {
    if cluster.node_id.is_empty() {
        return None;
    }
    let (node, rest) = secret.split_once('-')?;
    if node == cluster.node_id || rest.is_empty() {
        return None;
    }
    let address = cluster.nodes.get(node)?;
    Some(Misdirected {
        node: node.to_owned(),
        address: (!address.is_empty()).then(|| address.clone()),
    })
}

/// The client's address for an HTTP request: the socket's, or the last
/// address a trusted proxy appended to `X-Forwarded-For` (RFC 7239 §5.2's
/// older cousin: the rightmost entry is the one our own proxy wrote).
pub fn http_client(
    cluster: &ClusterSettings,
    socket: SocketAddr,
    forwarded_for: Option<&str>,
) -> SocketAddr {
    if !cluster.trusts(socket.ip()) {
        return socket;
    }
    forwarded_for
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(socket, |ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterSettings {
        ClusterSettings {
            node_id: "n1".into(),
            nodes: [
                ("n1".to_owned(), "10.0.0.11:8080".to_owned()),
                ("n2".to_owned(), "10.0.0.12:8080".to_owned()),
            ]
            .into(),
            trusted_proxies: vec!["10.0.0.0/24".parse().unwrap()],
            proxy_protocol: false,
        }
    }

    #[test]
    fn secrets_carry_the_node_name() {
        let t = new_secret("n1");
        assert!(t.starts_with("n1-") && t.len() == 3 + 32, "{t}");
        assert_eq!(new_secret("").len(), 32);
    }

    #[test]
    fn only_another_listed_node_is_misdirected() {
        let c = cluster();
        assert_eq!(
            misdirected(&c, "n2-0123"),
            Some(Misdirected {
                node: "n2".into(),
                address: Some("10.0.0.12:8080".into())
            })
        );
        assert_eq!(misdirected(&c, "n1-0123"), None);
        assert_eq!(misdirected(&c, "my-stream-key"), None);
        assert_eq!(misdirected(&c, "0123abcd"), None);
        let lone = ClusterSettings::default();
        assert_eq!(misdirected(&lone, "n2-0123"), None);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let c = cluster();
        let proxy: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let client = |s, h| http_client(&c, s, h).ip().to_string();
        assert_eq!(
            client(proxy, Some("198.51.100.1, 203.0.113.9")),
            "203.0.113.9"
        );
        assert_eq!(client(proxy, None), "10.0.0.5");
        assert_eq!(client(proxy, Some("garbage")), "10.0.0.5");
        assert_eq!(client(stranger, Some("203.0.113.9")), "192.0.2.1");
    }
}
