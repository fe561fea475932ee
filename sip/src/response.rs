//! Building a response to a received request (RFC 3261 §8.2.6): the Via
//! fields (the top one stamped with `received`/`rport`, §18.2.1 and RFC 3581),
//! From, To (with our tag once the response is not 100), Call-ID and CSeq
//! copied, and Record-Route in every response that can create a dialog
//! (§12.1.1: 101–299 to an INVITE outside a dialog), then ours. Used by
//! transactions' users and for stateless errors.

use std::net::SocketAddr;

use rsip::Response;

use crate::message::Received;
use crate::via::Via;

/// Every value of the header fields named `name` (case-insensitive), in order.
pub fn header_values(headers: &rsip::Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

/// The first value of the header field `name`.
pub fn header_value(headers: &rsip::Headers, name: &str) -> Option<String> {
    header_values(headers, name).into_iter().next()
}

/// The methods sono's UA understands, for Allow.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY";

/// A response to `request` as text. `to_tag` is added to To when it has none.
#[allow(clippy::too_many_arguments)]
pub fn response_text(
    request: &Received,
    source: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let Some(req) = request.request() else {
        return out;
    };
    let headers = &req.headers;
    for (i, via) in header_values(headers, "Via").iter().enumerate() {
        if i == 0 {
            // Only the first element of the first field is stamped.
            let first = crate::message::first_element(via);
            let rest = &via[first.len()..];
            out.push_str(&format!("Via: {}{rest}\r\n", Via::stamped(first, source)));
        } else {
            out.push_str(&format!("Via: {via}\r\n"));
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        for v in header_values(headers, name) {
            let tagged = name == "To" && code > 100 && request.to_tag.is_none();
            match to_tag {
                Some(tag) if tagged => out.push_str(&format!("{name}: {v};tag={tag}\r\n")),
                _ => out.push_str(&format!("{name}: {v}\r\n")),
            }
        }
    }
    // Without the Record-Route a proxy put in, the caller would send its
    // ACK and BYE straight to us while ours go through the proxy.
    let creates_dialog = (101..300).contains(&code)
        && request.to_tag.is_none()
        && req.method == rsip::Method::Invite;
    if creates_dialog {
        for rr in header_values(headers, "Record-Route") {
            out.push_str(&format!("Record-Route: {rr}\r\n"));
        }
    }
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        Some((content_type, body)) => out.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out
}

/// [`response_text`] as an rsip response, for server transactions.
#[allow(clippy::too_many_arguments)]
pub fn response(
    request: &Received,
    source: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Option<Response> {
    let text = response_text(request, source, code, reason, to_tag, extra, body);
    Response::try_from(text.as_bytes()).ok()
}

/// The reason phrase RFC 3261 §21 gives a status code (the class's name
/// for codes it does not list), for responses whose code a user chose.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        416 => "Unsupported URI Scheme",
        489 => "Bad Event",
        491 => "Request Pending",
        _ => match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    #[test]
    fn copies_the_dialog_fields_and_stamps_the_via() {
        let req = parse(
            b"BYE sip:sono@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKq;rport, SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKp\r\n\
From: <sip:a@b>;tag=f\r\nTo: <sip:c@d>\r\nCall-ID: cid\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let text = response_text(
            &req,
            src,
            481,
            "Call/Transaction Does Not Exist",
            Some("t9"),
            &[],
            None,
        );
        assert!(
            text.starts_with("SIP/2.0 481 Call/Transaction Does Not Exist\r\n"),
            "{text}"
        );
        assert!(text.contains(
            "Via: SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKq;received=127.0.0.1;rport=40000, SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKp\r\n"
        ), "{text}");
        assert!(text.contains("To: <sip:c@d>;tag=t9\r\n"), "{text}");
        assert!(text.contains("CSeq: 2 BYE\r\n"));
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.status_code(), Some(481));
    }

    fn invite(to_tag: &str) -> Received {
        parse(
            format!(
                "INVITE sip:sono-1@127.0.0.1 SIP/2.0\r\n\
Record-Route: <sip:127.0.0.1:5070;lr>, <sip:10.0.0.1;lr>\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKk\r\n\
From: <sip:a@b>;tag=f\r\nTo: <sip:sono-1@127.0.0.1>{to_tag}\r\nCall-ID: cid\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:a@127.0.0.1:5090>\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn dialog_creating_responses_carry_the_record_route_in_order() {
        let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let req = invite("");
        for code in [180, 183, 200] {
            let text = response_text(&req, src, code, "X", Some("t"), &[], None);
            assert!(
                text.contains(
                    "Record-Route: <sip:127.0.0.1:5070;lr>, <sip:10.0.0.1;lr>\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n"
                ),
                "{code}: {text}"
            );
        }
        // 100 Trying and failures create no dialog; nor does a re-INVITE.
        for code in [100, 486] {
            let text = response_text(&req, src, code, "X", Some("t"), &[], None);
            assert!(!text.contains("Record-Route"), "{code}: {text}");
        }
        let reinvite = invite(";tag=ours");
        let text = response_text(&reinvite, src, 200, "OK", Some("ours"), &[], None);
        assert!(!text.contains("Record-Route"), "{text}");
    }
}
