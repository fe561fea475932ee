//! Who may control what. A page holds its connection's capability token (from
//! `connect`'s or `register`'s result, or the stream key it published under);
//! the operator holds the admin key (`http.admin_key`). Either arrives as
//! `Authorization: Bearer TOKEN` (RFC 6750 §2.1) or, for EventSource, which
//! cannot set headers, as the `access_token` query parameter (§2.3).

use actix_web::HttpRequest;
use sono_actors::directory::ConnectionEntry;
use sono_actors::{ConnectionId, Shared};

use crate::api_error::ApiError;

/// What the presented token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Admin,
    Connection(ConnectionId),
}

/// The token the request carries. The `access_token` query parameter
/// counts only on the event streams (`…/events`): a token in a URL ends up
/// in proxies' and servers' access logs, so it is accepted only where a
/// browser's EventSource leaves no other way.
pub fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get("authorization") {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
            .filter(|t| !t.is_empty());
    }
    if !is_event_stream(req) {
        return None;
    }
    query_token(req)
}

fn query_token(req: &HttpRequest) -> Option<String> {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
}

fn is_event_stream(req: &HttpRequest) -> bool {
    req.path().ends_with("/events")
}

/// Why no token was taken: none at all, or one in the URL where it is not
/// accepted.
pub fn missing_token(req: &HttpRequest) -> ApiError {
    if !is_event_stream(req) && query_token(req).is_some() {
        ApiError::token_in_url()
    } else {
        ApiError::missing_token()
    }
}

/// Compares secrets without stopping at the first differing byte, so timing
/// does not tell how much of a guess was right.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `token` is the admin key (never, when `http.admin_key` is empty).
fn is_admin_key(token: &str, shared: &Shared) -> bool {
    let admin = &shared.settings.http.admin_key;
    !admin.is_empty() && same_secret(token, admin.expose())
}

/// The grant of the request's token, whatever it asks for.
pub fn grant(req: &HttpRequest, shared: &Shared) -> Result<Grant, ApiError> {
    let token = presented_token(req).ok_or_else(|| missing_token(req))?;
    if is_admin_key(&token, shared) {
        return Ok(Grant::Admin);
    }
    if let Some(id) = token_connection(&token, shared) {
        return Ok(Grant::Connection(id));
    }
    Err(not_here(&token, shared))
}

/// Why a token that controls nothing here is refused: another node's
/// (421, naming it), or simply wrong (403).
fn not_here(token: &str, shared: &Shared) -> ApiError {
    match sono_actors::cluster::misdirected(&shared.settings.cluster, token) {
        Some(to) => ApiError::misdirected(to),
        None => ApiError::invalid_token(),
    }
}

/// The connection a token belongs to: its own token's, or the one publishing
/// under it as a stream key.
fn token_connection(token: &str, shared: &Shared) -> Option<ConnectionId> {
    if let Some(id) = shared.directory.stream_key(token) {
        return Some(id);
    }
    let id = shared.directory.token_owner(token)?;
    let entry = shared.directory.entry(id)?;
    same_secret(&entry.token, token).then_some(id)
}

/// Checks that the request may control connection `id`, and finds it.
pub fn connection(
    req: &HttpRequest,
    shared: &Shared,
    id: ConnectionId,
) -> Result<ConnectionEntry, ApiError> {
    let token = presented_token(req).ok_or_else(|| missing_token(req))?;
    let is_admin = is_admin_key(&token, shared);
    if !is_admin && token_connection(&token, shared).is_none() {
        if let Some(to) = sono_actors::cluster::misdirected(&shared.settings.cluster, &token) {
            return Err(ApiError::misdirected(to));
        }
    }
    match shared.directory.entry(id) {
        Some(entry) => {
            let own = same_secret(&entry.token, &token)
                || shared.directory.stream_key(&token) == Some(id);
            if is_admin || own {
                Ok(entry)
            } else {
                Err(ApiError::invalid_token())
            }
        }
        None if is_admin => Err(ApiError::connection_not_found()),
        None if shared.directory.closed_token_owner(&token) == Some(id) => {
            Err(ApiError::connection_closed())
        }
        // A stranger learns nothing about which ids exist.
        None => Err(ApiError::invalid_token()),
    }
}

/// Checks that the request carries the admin key.
pub fn admin(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    match grant(req, shared)? {
        Grant::Admin => Ok(()),
        Grant::Connection(_) => Err(ApiError::admin_only()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
