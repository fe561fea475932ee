//! A SIP dialog (RFC 3261 §12): the peer-to-peer relationship an INVITE's 2xx
//! creates, identified by Call-ID and both tags, carrying the CSeq counters, the
//! remote target (Contact) and the route set (Record-Route). It builds the
//! requests sent inside the dialog (§12.2.1.1, with loose and strict routing)
//! and checks the ones received (§12.2.2).

use crate::message::{first_element, Received};
use crate::response::header_values;
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
        let remote_target = if SipUri::parse(contact).is_ok() {
            contact.to_owned()
        } else {
            request_uri.to_owned()
        };
        // A route we could not parse is left out rather than sent on.
        let mut route_set: Vec<String> = elements(&r.headers, "Record-Route")
            .iter()
            .map(|rr| uri_of(rr).to_owned())
            .filter(|uri| SipUri::parse(uri).is_ok())
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
                request_uri: self.remote_target.clone(),
                routes: Vec::new(),
                next_hop: self.remote_target.clone(),
            },
            Some(first) if is_loose(first) => DialogRequest {
                request_uri: self.remote_target.clone(),
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

fn is_loose(uri: &str) -> bool {
    uri.split(';').skip(1).any(|p| {
        p.trim().eq_ignore_ascii_case("lr") || p.trim().to_ascii_lowercase().starts_with("lr=")
    })
}

/// A Request-URI may not carry URI headers (`?…`) or the `method` parameter.
fn strip_uri_headers(uri: &str) -> String {
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
