//! A SIP dialog (RFC 3261 §12): the peer-to-peer relationship an INVITE's 2xx
//! creates, identified by Call-ID and both tags, carrying the CSeq counters, the
//! remote target (Contact) and the route set (Record-Route). It builds the
//! requests sent inside the dialog (§12.2.1.1, with loose and strict routing)
//! and checks the ones received (§12.2.2).

use std::net::SocketAddr;

use crate::ids::{random_token, BRANCH_COOKIE};
use crate::message::{first_element, header_param, Received};
use crate::response::header_values;
use crate::transmit::{Transmit, Transport};
use crate::uri::SipUri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From (UAC) without its tag, as a name-addr.
    pub local_uri: String,
    /// The peer's To (UAC) without its tag.
    pub remote_uri: String,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    /// Where requests go: the Contact URI of the peer.
    pub remote_target: String,
    /// URIs (with their parameters), in the order requests must visit them.
    pub route_set: Vec<String>,
}

/// The URI inside a name-addr (`"x" <sip:…>;p`) or an addr-spec (`sip:…;p`).
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim(),
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// Every element of every field named `name`, split at top-level commas.
pub fn elements(headers: &rsip::Headers, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for value in header_values(headers, name) {
        let mut rest = value.as_str();
        while !rest.trim().is_empty() {
            let first = first_element(rest);
            out.push(first.to_owned());
            let at = rest.find(first).map_or(rest.len(), |i| i + first.len());
            rest = rest[at..].trim_start().trim_start_matches(',');
        }
    }
    out
}

/// A request built inside the dialog, and the URI its next hop is taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogRequest {
    pub request_uri: String,
    pub routes: Vec<String>,
    pub next_hop: String,
}

impl Dialog {
    /// The dialog a 2xx (or a provisional with a To tag) creates on the UAC side
    /// (§12.1.2). `from` and `to` are our request's values without tags;
    /// `request_uri` is the remote target when the Contact is not a SIP URI we
    /// could send to (the ACK must still go somewhere sane).
    pub fn uac(
        response: &Received,
        local_tag: &str,
        from: &str,
        to: &str,
        local_seq: u32,
        request_uri: &str,
    ) -> Option<Dialog> {
        let r = response.response()?;
        let remote_tag = response.to_tag.clone()?;
        let contact = elements(&r.headers, "Contact").into_iter().next()?;
        let contact = uri_of(&contact);
        let remote_target = if usable_uri(contact) {
            contact.to_owned()
        } else {
            request_uri.to_owned()
        };
        // A route we could not parse is left out rather than sent on.
        let mut route_set: Vec<String> = elements(&r.headers, "Record-Route")
            .iter()
            .map(|rr| uri_of(rr).to_owned())
            .filter(|uri| usable_uri(uri))
            .collect();
        route_set.reverse();
        Some(Dialog {
            call_id: response.call_id.clone(),
            local_tag: local_tag.to_owned(),
            remote_tag,
            local_uri: from.to_owned(),
            remote_uri: to.to_owned(),
            local_seq,
            remote_seq: None,
            remote_target,
            route_set,
        })
    }

    /// Request-URI and Route set of the next request (§12.2.1.1): loose routing
    /// when the first route has `lr`, else strict (the first route becomes the
    /// Request-URI and the remote target goes last).
    pub fn route(&self) -> DialogRequest {
        match self.route_set.first() {
            None => DialogRequest {
                request_uri: strip_uri_headers(&self.remote_target),
                routes: Vec::new(),
                next_hop: self.remote_target.clone(),
            },
            Some(first) if is_loose(first) => DialogRequest {
                request_uri: strip_uri_headers(&self.remote_target),
                routes: self.route_set.clone(),
                next_hop: first.clone(),
            },
            Some(first) => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(self.remote_target.clone());
                DialogRequest {
                    request_uri: strip_uri_headers(first),
                    routes,
                    next_hop: first.clone(),
                }
            }
        }
    }

    /// Takes the next local CSeq number.
    pub fn next_seq(&mut self) -> u32 {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.local_seq
    }

    /// Whether a request belongs to this dialog (Call-ID and both tags, §12.2.2).
    pub fn matches(&self, request: &Received) -> bool {
        request.call_id == self.call_id
            && request.to_tag.as_deref() == Some(self.local_tag.as_str())
            && request.from_tag.as_deref() == Some(self.remote_tag.as_str())
    }

    /// Checks the remote CSeq (§12.2.2): a lower one than seen before is out of
    /// order and earns a 500. ACK and CANCEL reuse their INVITE's number.
    pub fn accept_remote_seq(&mut self, request: &Received) -> Result<(), u16> {
        if request.cseq_method == "ACK" || request.cseq_method == "CANCEL" {
            return Ok(());
        }
        match self.remote_seq {
            Some(seen) if request.cseq <= seen => Err(500),
            _ => {
                self.remote_seq = Some(request.cseq);
                Ok(())
            }
        }
    }
}

/// How our requests are stamped, and where they go when the next hop's host
/// is not an IP address.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// Via sent-by: `host:port`.
    pub via_sent_by: &'a str,
    pub user_agent: &'a str,
    /// Used as the route when the dialog has no route set.
    pub outbound_proxy: Option<&'a str>,
    pub fallback: SocketAddr,
    pub transport: Transport,
}

impl Dialog {
    /// A request inside the dialog (§12.2.1.1), and where to send it.
    pub fn request(
        &self,
        ctx: &RequestContext<'_>,
        method: &str,
        seq: u32,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> Transmit {
        self.request_typed(
            ctx,
            method,
            seq,
            extra,
            body.map(|b| ("application/sdp", b)),
        )
    }

    /// [`Dialog::request`] with a body of any type: (content type, text).
    pub fn request_typed(
        &self,
        ctx: &RequestContext<'_>,
        method: &str,
        seq: u32,
        extra: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Transmit {
        let (route, to) = self.next_hop(ctx);
        let branch = format!("{BRANCH_COOKIE}{}", random_token());
        let mut text = format!("{method} {} SIP/2.0\r\n", route.request_uri);
        text.push_str(&format!(
            "Via: SIP/2.0/{} {};branch={branch};rport\r\n",
            ctx.transport, ctx.via_sent_by
        ));
        text.push_str("Max-Forwards: 70\r\n");
        for r in &route.routes {
            text.push_str(&format!("Route: <{r}>\r\n"));
        }
        text.push_str(&format!(
            "From: {};tag={}\r\n",
            self.local_uri, self.local_tag
        ));
        text.push_str(&format!(
            "To: {};tag={}\r\n",
            self.remote_uri, self.remote_tag
        ));
        text.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        text.push_str(&format!("CSeq: {seq} {method}\r\n"));
        text.push_str(&format!("User-Agent: {}\r\n", ctx.user_agent));
        for (name, value) in extra {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some((content_type, b)) => text.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        Transmit {
            to,
            bytes: text.into_bytes(),
        }
    }

    /// How the next request inside the dialog is routed, and the address it
    /// is sent to: the first route, else the outbound proxy, else the remote
    /// target (its `maddr` if it has one, RFC 3263 §4). A next hop with a
    /// host name is reached where the INVITE went (`ctx.fallback`).
    pub fn next_hop(&self, ctx: &RequestContext<'_>) -> (DialogRequest, SocketAddr) {
        let mut route = self.route();
        let mut to = address_of(&route.next_hop);
        if route.routes.is_empty() {
            if let Some(proxy) = ctx.outbound_proxy {
                route.routes.push(with_lr(proxy));
                route.next_hop = proxy.to_owned();
                to = address_of(proxy);
            }
        }
        (route, to.unwrap_or(ctx.fallback))
    }

    /// The dialog our 2xx to `invite` creates on the UAS side (§12.1.1): the
    /// route set is the INVITE's Record-Route in order, the remote target its
    /// Contact, the remote sequence its CSeq.
    pub fn uas(invite: &Received, local_tag: &str) -> Option<Dialog> {
        let req = invite.request()?;
        let remote_tag = invite.from_tag.clone()?;
        let contact = elements(&req.headers, "Contact").into_iter().next()?;
        let contact = uri_of(&contact);
        if !usable_uri(contact) {
            return None;
        }
        let from = header_values(&req.headers, "From").into_iter().next()?;
        let to = header_values(&req.headers, "To").into_iter().next()?;
        let route_set = elements(&req.headers, "Record-Route")
            .iter()
            .map(|rr| uri_of(rr).to_owned())
            .filter(|uri| usable_uri(uri))
            .collect();
        Some(Dialog {
            call_id: invite.call_id.clone(),
            local_tag: local_tag.to_owned(),
            remote_tag,
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            local_seq: 0,
            remote_seq: Some(invite.cseq),
            remote_target: contact.to_owned(),
            route_set,
        })
    }
}

/// Whether a URI from the peer can become a Request-URI or Route of ours:
/// a SIP URI by our reading and by rsip's, which writes the request.
fn usable_uri(uri: &str) -> bool {
    SipUri::parse(uri).is_ok() && rsip::Uri::try_from(uri).is_ok()
}

/// A From or To value with its `tag` parameter removed.
pub fn without_tag(value: &str) -> String {
    if header_param(value, "tag").is_none() {
        return value.trim().to_owned();
    }
    let split = value.rfind('>').map_or(0, |i| i + 1);
    let (addr, params) = value.split_at(split);
    let (addr, params) = if split == 0 {
        value.split_once(';').map_or((value, ""), |(a, p)| (a, p))
    } else {
        (addr, params.trim_start_matches(';'))
    };
    let kept: Vec<&str> = params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("tag"))
        .collect();
    let mut out = addr.trim().to_owned();
    for p in kept {
        out.push(';');
        out.push_str(p);
    }
    out
}

/// A URI's socket address when its host (or its `maddr`, which overrides
/// the host, RFC 3263 §4) is an IP address.
pub fn address_of(uri: &str) -> Option<SocketAddr> {
    let uri = SipUri::parse(uri).ok()?.destination().ok()?;
    uri.ip()
        .map(|ip| SocketAddr::new(ip, uri.port_or_default()))
}

/// A route URI with the loose-routing parameter (RFC 3261 §19.1.1).
pub fn with_lr(uri: &str) -> String {
    if uri.to_ascii_lowercase().contains(";lr") {
        uri.to_owned()
    } else {
        format!("{uri};lr")
    }
}

fn is_loose(uri: &str) -> bool {
    uri.split(';').skip(1).any(|p| {
        p.trim().eq_ignore_ascii_case("lr") || p.trim().to_ascii_lowercase().starts_with("lr=")
    })
}

/// A Request-URI may not carry URI headers (`?…`, §19.1.1 table 1).
pub fn strip_uri_headers(uri: &str) -> String {
    uri.split('?').next().unwrap_or(uri).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn ok_with(record_route: &str) -> Received {
        let text = format!(
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n\
{record_route}\
From: <sip:sono@127.0.0.1>;tag=ours\r\nTo: <sip:bob@127.0.0.1:5080>;tag=theirs\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: \"Bob\" <sip:bob@127.0.0.1:5080;transport=udp>;expires=60\r\n\
Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn without_record_route_requests_go_to_the_contact() {
        let d = Dialog::uac(
            &ok_with(""),
            "ours",
            "<sip:sono@127.0.0.1>",
            "<sip:bob@127.0.0.1:5080>",
            1,
            "sip:bob@127.0.0.1:5080",
        )
        .unwrap();
        assert_eq!(d.remote_tag, "theirs");
        assert_eq!(d.remote_target, "sip:bob@127.0.0.1:5080;transport=udp");
        let r = d.route();
        assert_eq!(r.request_uri, d.remote_target);
        assert!(r.routes.is_empty());
    }

    #[test]
    fn record_route_is_reversed_and_loose_or_strict() {
        let loose = ok_with("Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n");
        let d = Dialog::uac(&loose, "ours", "a", "b", 1, "sip:bob@127.0.0.1:5080").unwrap();
        assert_eq!(
            d.route_set,
            vec!["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
        );
        let r = d.route();
        assert_eq!(r.request_uri, "sip:bob@127.0.0.1:5080;transport=udp");
        assert_eq!(r.next_hop, "sip:p1.example.com;lr");
        let strict =
            ok_with("Record-Route: <sip:p2.example.com>\r\nRecord-Route: <sip:p1.example.com>\r\n");
        let d = Dialog::uac(&strict, "ours", "a", "b", 1, "sip:bob@127.0.0.1:5080").unwrap();
        let r = d.route();
        assert_eq!(r.request_uri, "sip:p1.example.com");
        assert_eq!(
            r.routes,
            vec!["sip:p2.example.com", "sip:bob@127.0.0.1:5080;transport=udp"]
        );
    }

    #[test]
    fn remote_cseq_must_grow() {
        let mut d =
            Dialog::uac(&ok_with(""), "ours", "a", "b", 1, "sip:bob@127.0.0.1:5080").unwrap();
        let bye = |n: u32| {
            parse(format!("BYE sip:sono@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{n}\r\n\
From: <sip:bob@127.0.0.1:5080>;tag=theirs\r\nTo: <sip:sono@127.0.0.1>;tag=ours\r\nCall-ID: c1\r\nCSeq: {n} BYE\r\n\r\n").as_bytes()).unwrap()
        };
        assert!(d.matches(&bye(5)));
        assert_eq!(d.accept_remote_seq(&bye(5)), Ok(()));
        assert_eq!(d.accept_remote_seq(&bye(4)), Err(500));
        assert_eq!(d.accept_remote_seq(&bye(6)), Ok(()));
    }
}
