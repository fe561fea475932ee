//! Reading a received SIP message: framing (RFC 3261 §7: start line, header
//! folding, compact header names, Content-Length over UDP per §18.3), the
//! checks of §8.2 and §16.3 that a UA must make before it uses a request, and
//! which status each failure deserves (400, 416, 505) or whether the message
//! must be dropped because no response can be routed (§18.2.1).
//!
//! rsip's tokenizer takes only `Name: value` lines in CRLF with full names, so
//! [`parse`] first rewrites the header block into that canonical form and then
//! hands it to rsip. The fields sono routes by (Call-ID, CSeq, the top Via and
//! the tags) are extracted here, once, into [`Received`].

use std::fmt;

use rsip::{Request, Response, SipMessage};

use crate::via::Via;

/// A datagram or stream message larger than this is refused (RFC 3261 §18.1.1
/// lets UDP messages reach 65 535 bytes).
pub const MAX_MESSAGE_SIZE: usize = 65_535;
/// More header lines than this is an attack, not a phone.
const MAX_HEADERS: usize = 256;
/// CSeq numbers must be below 2^31 (§8.1.1.5).
const MAX_CSEQ: u64 = (1 << 31) - 1;

/// Why a message was refused, and the response it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The status to answer with; `None` when the message must be dropped
    /// (a response, or a request whose Via cannot be read).
    pub status: Option<u16>,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) => write!(f, "{} (answer {code})", self.reason),
            None => write!(f, "{} (dropped)", self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// A message that passed the checks, with the fields used to route it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: SipMessage,
    pub call_id: String,
    pub cseq: u32,
    /// The CSeq method, upper case (equal to the request method for requests).
    pub cseq_method: String,
    pub top_via: Via,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    /// The reason phrase exactly as the peer wrote it (responses only).
    pub reason_phrase: Option<String>,
}

impl Received {
    pub fn is_request(&self) -> bool {
        matches!(self.message, SipMessage::Request(_))
    }

    pub fn request(&self) -> Option<&Request> {
        match &self.message {
            SipMessage::Request(r) => Some(r),
            SipMessage::Response(_) => None,
        }
    }

    pub fn response(&self) -> Option<&Response> {
        match &self.message {
            SipMessage::Response(r) => Some(r),
            SipMessage::Request(_) => None,
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        self.response().map(|r| r.status_code.code())
    }

    /// The transaction key of RFC 3261 §17.1.3 / §17.2.3: top Via branch and
    /// CSeq method (ACK and CANCEL share the INVITE's branch but not its key).
    pub fn branch(&self) -> &str {
        &self.top_via.branch
    }
}

/// Compact header forms (RFC 3261 §7.3.3 and the registry of IANA).
fn expand_compact(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'a' => "Accept-Contact",
        b'b' => "Referred-By",
        b'c' => "Content-Type",
        b'd' => "Request-Disposition",
        b'e' => "Content-Encoding",
        b'f' => "From",
        b'i' => "Call-ID",
        b'j' => "Reject-Contact",
        b'k' => "Supported",
        b'l' => "Content-Length",
        b'm' => "Contact",
        b'n' => "Identity-Info",
        b'o' => "Event",
        b'r' => "Refer-To",
        b's' => "Subject",
        b't' => "To",
        b'u' => "Allow-Events",
        b'v' => "Via",
        b'x' => "Session-Expires",
        b'y' => "Identity",
        _ => name,
    }
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// The methods rsip (and so sono) can represent; others are answered 501 (§8.2.1).
const KNOWN_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Header fields that may appear once only; a second copy makes the request
/// ambiguous and earns a 400 (RFC 4475 §3.1.2.x "multi" cases).
const SINGLE: [&str; 5] = ["Call-ID", "CSeq", "From", "To", "Content-Length"];

/// One header line after unfolding, name canonicalised.
struct Field<'a> {
    name: &'a str,
    value: String,
}

/// Splits the head into the start line and unfolded header fields.
fn fields(head: &str) -> Result<(&str, Vec<Field<'_>>), String> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().ok_or("empty message")?;
    let mut out: Vec<Field<'_>> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = out.last_mut().ok_or("a folded line before any header")?;
            let more = line.trim_matches([' ', '\t']);
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {line:.40?}"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(format!("bad header name {name:.40?}"));
        }
        out.push(Field {
            name: expand_compact(name),
            value: value.trim_matches([' ', '\t']).to_owned(),
        });
        if out.len() > MAX_HEADERS {
            return Err("too many header fields".into());
        }
    }
    Ok((start, out))
}

/// What the start line says.
enum StartLine<'a> {
    Request { method: &'a str, uri: &'a str },
    Response { code: u16, reason: &'a str },
}

fn start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    let drop = |reason: String| ParseError {
        status: None,
        reason,
    };
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "2.0" {
            return Err(drop(format!("response with version SIP/{version:.10}")));
        }
        let code = parts
            .next()
            .and_then(|c| (c.len() == 3).then(|| c.parse::<u16>().ok()).flatten())
            .filter(|c| (100..700).contains(c))
            .ok_or_else(|| drop("response with a bad status code".into()))?;
        return Ok(StartLine::Response {
            code,
            reason: parts.next().unwrap_or(""),
        });
    }
    let bad = |reason: &str| ParseError {
        status: Some(400),
        reason: reason.to_owned(),
    };
    // Request-Line = Method SP Request-URI SP SIP-Version: single spaces (§7.1).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(bad("malformed method"));
    }
    if uri.is_empty() || uri.contains(['<', '>']) {
        return Err(bad("malformed Request-URI"));
    }
    if !version.starts_with("SIP/") {
        return Err(bad("malformed SIP version"));
    }
    if version != "SIP/2.0" {
        return Err(ParseError {
            status: Some(505),
            reason: format!("unsupported version {version:.12}"),
        });
    }
    Ok(StartLine::Request { method, uri })
}

/// A header parameter (`;name=value`) of a name-addr or addr-spec value, such
/// as the `tag` of From and To (§20.20, §20.39). Parameters inside `<…>` belong
/// to the URI and are skipped.
pub fn header_param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        // addr-spec: every ';' after the URI starts a header parameter (§20.10).
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The first element of a comma-separated header value, respecting quotes and
/// angle brackets.
pub fn first_element(value: &str) -> &str {
    let mut quoted = false;
    let mut angle = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => return value[..i].trim(),
            _ => {}
        }
    }
    value.trim()
}

/// Parses and checks one received message; see the module docs.
pub fn parse(bytes: &[u8]) -> Result<Received, ParseError> {
    let drop = |reason: &str| ParseError {
        status: None,
        reason: reason.to_owned(),
    };
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(drop("message larger than 65535 bytes"));
    }
    // Keep-alive CRLFs (RFC 5626 §4.4.1) and leading blank lines are ignored (§7.5).
    let start = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or_else(|| drop("keep-alive"))?;
    let bytes = &bytes[start..];
    let (head_end, body_start) = find_head_end(bytes).ok_or_else(|| drop("no end of headers"))?;
    let head =
        std::str::from_utf8(&bytes[..head_end]).map_err(|_| drop("header section is not UTF-8"))?;
    let body = &bytes[body_start..];
    let (line, fields) = fields(head).map_err(|r| ParseError {
        status: None,
        reason: r,
    })?;
    let start = start_line(line)?;
    let is_request = matches!(start, StartLine::Request { .. });
    // From here on a request is answerable once its Via is known.
    let via = fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("Via"))
        .ok_or_else(|| drop("no Via"))?;
    let fail = |status: u16, reason: String| ParseError {
        status: is_request.then_some(status),
        reason,
    };
    let top_via =
        Via::parse(first_element(&via.value)).map_err(|e| fail(400, format!("Via: {e}")))?;
    for single in SINGLE {
        if fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(single))
            .count()
            > 1
        {
            return Err(fail(400, format!("more than one {single}")));
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    };
    let call_id = get("Call-ID")
        .filter(|v| !v.is_empty() && !v.contains([' ', '\t']))
        .ok_or_else(|| fail(400, "missing or malformed Call-ID".into()))?
        .to_owned();
    let from = get("From").ok_or_else(|| fail(400, "missing From".into()))?;
    let to = get("To").ok_or_else(|| fail(400, "missing To".into()))?;
    for (name, value) in [("From", from), ("To", to)] {
        if !name_addr_is_balanced(value) || first_element(value) != value.trim() {
            return Err(fail(400, format!("malformed {name}")));
        }
    }
    for f in fields.iter().filter(|f| {
        NAME_ADDR_FIELDS
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n))
    }) {
        if let Err(why) = check_name_addr(&f.value) {
            return Err(fail(400, format!("{}: {why}", f.name)));
        }
    }
    if let Some(date) = get("Date") {
        // rfc1123-date in GMT only (§20.17).
        if !date.ends_with(" GMT") {
            return Err(fail(400, "Date not in GMT".into()));
        }
    }
    let cseq = get("CSeq").ok_or_else(|| fail(400, "missing CSeq".into()))?;
    let (number, cseq_method) = cseq
        .split_once([' ', '\t'])
        .map(|(n, m)| (n.trim(), m.trim()))
        .ok_or_else(|| fail(400, "malformed CSeq".into()))?;
    let cseq = decimal(number)
        .filter(|n| *n <= MAX_CSEQ)
        .ok_or_else(|| fail(400, "CSeq number out of range".into()))? as u32;
    if cseq_method.is_empty() || !cseq_method.bytes().all(is_token_char) {
        return Err(fail(400, "malformed CSeq method".into()));
    }
    if let Some(mf) = get("Max-Forwards") {
        if decimal(mf).is_none_or(|n| n > 255) {
            return Err(fail(400, "malformed Max-Forwards".into()));
        }
    }
    if let Some(expires) = get("Expires") {
        if !is_decimal(expires) {
            return Err(fail(400, "malformed Expires".into()));
        }
    }
    // Content-Length: required over streams; over UDP the datagram's end is the
    // message's end, extra bytes are discarded and missing ones are an error (§18.3).
    let body = match get("Content-Length") {
        Some(cl) => {
            let n = decimal(cl).ok_or_else(|| fail(400, "malformed Content-Length".into()))?;
            if n > body.len() as u64 {
                return Err(fail(400, "body shorter than Content-Length".into()));
            }
            &body[..n as usize]
        }
        None => body,
    };
    if let StartLine::Request { method, uri } = &start {
        if !KNOWN_METHODS.contains(method) {
            return Err(fail(501, format!("unknown method {method:.20}")));
        }
        // ACK and CANCEL must name themselves exactly (§17.1.1.3, §9.1).
        let same = match *method {
            "ACK" | "CANCEL" => cseq_method == *method,
            _ => method.eq_ignore_ascii_case(cseq_method),
        };
        if !same {
            return Err(fail(
                400,
                "CSeq method differs from the request method".into(),
            ));
        }
        if uri.contains('?') {
            // URI headers have no meaning in a Request-URI (§19.1.1, RFC 4475 escruri).
            return Err(fail(400, "headers in the Request-URI".into()));
        }
        let scheme = uri.split(':').next().unwrap_or_default();
        if !["sip", "sips", "tel"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
            || !uri.contains(':')
        {
            return Err(fail(416, format!("unsupported URI scheme {scheme:.10}")));
        }
    }
    let line = match &start {
        StartLine::Request { method, uri } => {
            format!("{method} {} SIP/2.0", escape_user_semicolons(uri))
        }
        StartLine::Response { .. } => line.to_owned(),
    };
    let canonical = canonical_message(&line, &fields, body);
    let message = SipMessage::try_from(canonical.as_slice()).map_err(|e| {
        let mut why = format!("unparseable: {e}");
        why.truncate(why.char_indices().nth(120).map_or(why.len(), |(i, _)| i));
        fail(400, why)
    })?;
    let (from_tag, to_tag) = (header_param(from, "tag"), header_param(to, "tag"));
    let reason_phrase = match start {
        StartLine::Response { code, reason } => {
            if message_code(&message) != Some(code) {
                return Err(drop("status code changed in parsing"));
            }
            Some(reason.to_owned())
        }
        StartLine::Request { .. } => None,
    };
    Ok(Received {
        message,
        call_id,
        cseq,
        cseq_method: cseq_method.to_ascii_uppercase(),
        top_via,
        from_tag,
        to_tag,
        reason_phrase,
    })
}

/// Why a well-formed request cannot be served, with the header field that
/// tells the sender what would work (§8.2.2.3 Require → 420 with Unsupported;
/// §8.2.3 an INVITE body other than SDP → 415 with Accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub header: (&'static str, String),
}

/// The UAS checks every request passes before its method is considered.
pub fn refusal(request: &Received) -> Option<Refusal> {
    let req = request.request()?;
    let method = request.cseq_method.as_str();
    if method == "ACK" || method == "CANCEL" {
        return None;
    }
    let required: Vec<String> = crate::response::header_values(&req.headers, "Require")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if !required.is_empty() {
        return Some(Refusal {
            code: 420,
            reason: "Bad Extension",
            header: ("Unsupported", required.join(", ")),
        });
    }
    if !req.body.is_empty() {
        let content_type = crate::response::header_value(&req.headers, "Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        let encoding = crate::response::header_value(&req.headers, "Content-Encoding");
        let sdp_ok = media_type == "application/sdp"
            || (media_type == "multipart/mixed"
                && String::from_utf8_lossy(&req.body).contains("application/sdp"));
        let needs_sdp = matches!(method, "INVITE" | "UPDATE" | "PRACK");
        if (needs_sdp && !sdp_ok) || encoding.is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
            return Some(Refusal {
                code: 415,
                reason: "Unsupported Media Type",
                header: ("Accept", "application/sdp".into()),
            });
        }
    }
    None
}

/// A stateless error response to a request [`parse`] refused with a status
/// (§8.2.6 as far as the message allows): Via (top one stamped), From, To
/// (with a tag), Call-ID and CSeq copied as written. `None` when the message is
/// not a request or has no readable Via.
pub fn error_response(
    bytes: &[u8],
    error: &ParseError,
    source: std::net::SocketAddr,
    to_tag: &str,
) -> Option<Vec<u8>> {
    let code = error.status?;
    let start = bytes.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let bytes = &bytes[start..];
    let end = find_head_end(bytes).map_or(bytes.len(), |(e, _)| e);
    let head = String::from_utf8_lossy(&bytes[..end]);
    let (line, fields) = fields(&head).ok()?;
    if line.starts_with("SIP/") {
        return None;
    }
    let reason = match code {
        416 => "Unsupported URI Scheme",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        _ => "Bad Request",
    };
    // The reason says what was wrong; control characters cannot reach the wire.
    let detail: String = error
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    let mut out = format!("SIP/2.0 {code} {reason} ({detail})\r\n");
    let mut vias = fields.iter().filter(|f| f.name.eq_ignore_ascii_case("Via"));
    let top = vias.next()?;
    let first = first_element(&top.value);
    out.push_str(&format!(
        "Via: {}{}\r\n",
        Via::stamped(first, source),
        &top.value[first.len()..]
    ));
    for v in vias {
        out.push_str(&format!("Via: {}\r\n", v.value));
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(f) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
            if name == "To" && header_param(&f.value, "tag").is_none() {
                out.push_str(&format!("To: {};tag={to_tag}\r\n", f.value));
            } else {
                out.push_str(&format!("{}: {}\r\n", name, f.value));
            }
        }
    }
    if code == 501 {
        out.push_str(&format!("Allow: {}\r\n", crate::response::ALLOW));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// Digits only, at least one (the `1*DIGIT` of §25.1).
fn is_decimal(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// A `1*DIGIT` value that fits in 64 bits.
pub(crate) fn decimal(value: &str) -> Option<u64> {
    is_decimal(value).then(|| value.parse().ok()).flatten()
}

fn message_code(message: &SipMessage) -> Option<u16> {
    match message {
        SipMessage::Response(r) => Some(r.status_code.code()),
        SipMessage::Request(_) => None,
    }
}

/// A `;` in the user part of a URI (RFC 4475 semiuri) is the same character
/// escaped (§19.1.4); rsip only reads the escaped form.
fn escape_user_semicolons(uri: &str) -> String {
    match uri.rfind('@') {
        Some(at) if uri[..at].contains(';') => {
            format!("{}{}", uri[..at].replace(';', "%3B"), &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

/// Header fields whose values are name-addr or addr-spec lists (§20).
const NAME_ADDR_FIELDS: [&str; 6] = ["From", "To", "Contact", "Route", "Record-Route", "Reply-To"];

/// The checks of §20.10 on each element of a name-addr field: a display name
/// is a quoted string or tokens; no white space inside `<…>`; an addr-spec
/// with `?` (or a comma) must be enclosed in `<…>` (RFC 4475 baddn, badaspec,
/// regbadct).
fn check_name_addr(value: &str) -> Result<(), &'static str> {
    if value.trim() == "*" {
        return Ok(());
    }
    let mut rest = value;
    while !rest.trim().is_empty() {
        let element = first_element(rest);
        let at = rest.find(element).map_or(rest.len(), |i| i + element.len());
        rest = rest[at..].trim_start().trim_start_matches(',');
        match (element.find('<'), element.rfind('>')) {
            (Some(open), Some(close)) if open < close => {
                let display = element[..open].trim();
                if !display.starts_with('"')
                    && !display
                        .bytes()
                        .all(|b| is_token_char(b) || b == b' ' || b == b'\t')
                {
                    return Err("display name is neither a quoted string nor tokens");
                }
                if element[open + 1..close].contains([' ', '\t']) {
                    return Err("white space inside <>");
                }
            }
            (None, None) => {
                let uri = element.split(';').next().unwrap_or_default();
                if !uri.contains(':') {
                    return Err("not a URI");
                }
                if uri.contains('?') {
                    return Err("an addr-spec with URI headers must be inside <>");
                }
            }
            _ if element.starts_with('"') => {}
            _ => return Err("unbalanced <>"),
        }
    }
    Ok(())
}

/// Quotes closed, angle brackets paired: what a From or To needs to be read.
fn name_addr_is_balanced(value: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    let mut depth = 0i32;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return false;
        }
    }
    !quoted && depth == 0 && !value.trim().is_empty()
}

/// The end of the header section: index where it ends and where the body starts.
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l + 1 < c + 2 => Some((l, l + 2)),
        (Some(c), _) => Some((c, c + 4)),
        (None, Some(l)) => Some((l, l + 2)),
        // A message that ends right after its last header (no blank line) has
        // no body; UDP allows it to be cut there.
        (None, None) => None,
    }
}

fn canonical_message(start: &str, fields: &[Field<'_>], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for f in fields {
        if f.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.extend_from_slice(f.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:sono@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
f: <sip:a@127.0.0.1>;tag=x1\r\n\
t : <sip:sono@127.0.0.1>\r\n\
i: abc@127.0.0.1\r\n\
CSeq: 0007\r\n  OPTIONS\r\n\
Max-Forwards: 70\r\n\
l: 0\r\n\r\n";

    #[test]
    fn compact_and_folded_headers_are_read() {
        let r = parse(OPTIONS.as_bytes()).expect("valid");
        assert_eq!(r.call_id, "abc@127.0.0.1");
        assert_eq!(r.cseq, 7);
        assert_eq!(r.cseq_method, "OPTIONS");
        assert_eq!(r.top_via.branch, "z9hG4bK-1");
        assert_eq!(r.from_tag.as_deref(), Some("x1"));
        assert_eq!(r.to_tag, None);
        assert!(r.is_request());
    }

    #[test]
    fn failures_get_the_right_status() {
        let cases = [
            (OPTIONS.replace("SIP/2.0\r\nv:", "SIP/7.0\r\nv:"), Some(505)),
            (OPTIONS.replace("sip:sono@", "http:sono@"), Some(416)),
            (OPTIONS.replace("i: abc@127.0.0.1\r\n", ""), Some(400)),
            (OPTIONS.replace("l: 0", "l: 9"), Some(400)),
            (OPTIONS.replace("  OPTIONS", "  INVITE"), Some(400)),
            (
                OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 300"),
                Some(400),
            ),
            (
                OPTIONS.replace(
                    "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n",
                    "",
                ),
                None,
            ),
            (
                OPTIONS.replace("i: abc", "i: abc\r\nCall-ID: other"),
                Some(400),
            ),
        ];
        for (text, status) in cases {
            let e = parse(text.as_bytes()).expect_err(&text);
            assert_eq!(e.status, status, "{text}: {e}");
        }
    }

    #[test]
    fn a_response_keeps_its_reason_phrase_and_extra_bytes_are_cut() {
        let text = "SIP/2.0 486 Busy Here Now\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport=5060\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\ngarbage";
        let r = parse(text.as_bytes()).expect("valid");
        assert_eq!(r.status_code(), Some(486));
        assert_eq!(r.reason_phrase.as_deref(), Some("Busy Here Now"));
        assert_eq!(r.to_tag.as_deref(), Some("2"));
        assert!(r.response().is_some_and(|r| r.body.is_empty()));
    }

    #[test]
    fn refused_requests_get_an_error_response_they_can_match() {
        let bad = OPTIONS.replace("SIP/2.0\r\nv:", "SIP/7.0\r\nv:");
        let e = parse(bad.as_bytes()).unwrap_err();
        let src: std::net::SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let resp = error_response(bad.as_bytes(), &e, src, "t1").expect("answerable");
        let r = parse(&resp).expect("our error response parses");
        assert_eq!(r.status_code(), Some(505));
        assert_eq!(r.top_via.branch, "z9hG4bK-1");
        assert_eq!(r.to_tag.as_deref(), Some("t1"));
        let no_via = OPTIONS.replace(
            "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n",
            "",
        );
        let e = parse(no_via.as_bytes()).unwrap_err();
        assert!(error_response(no_via.as_bytes(), &e, src, "t1").is_none());
    }

    #[test]
    fn header_params_skip_uri_params() {
        assert_eq!(
            header_param("<sip:a@b;tag=no>;tag=yes", "tag").as_deref(),
            Some("yes")
        );
        assert_eq!(header_param("sip:a@b;tag=t", "tag").as_deref(), Some("t"));
        assert_eq!(header_param("<sip:a@b;tag=no>", "tag"), None);
        assert_eq!(
            first_element("\"a,b\" <sip:x,y@z>, <sip:q>"),
            "\"a,b\" <sip:x,y@z>"
        );
    }
}
