//! WebRTC signalling, WHIP-like (RFC 9725's shape): `POST /api/v1/webrtc`
//! with the browser's SDP offer (`application/sdp`) opens a phone session
//! whose audio is WebRTC and answers `201 Created` with the SDP answer, the
//! session's URL in `Location` and its id and token in `Sono-Connection-Id`
//! and `Sono-Token`. The token then drives `/api/v1/connections/{id}/…` and
//! the live events, as any connection's does; `DELETE` on the `Location`
//! with it ends the session (and its call).
//!
//! With a connection's token (`Authorization: Bearer`), the offer attaches
//! WebRTC media to that connection instead: its calls' audio goes to and
//! from the browser, while its own transport (an RTMP tool under a stream
//! key, a Flash client) keeps the control; the `Location` then ends only
//! the media.
//!
//! Opening a session needs no token, as an RTMP `connect` needs none: what
//! a session may do is bounded by the dial plan, and how many a client may
//! open by `webrtc.max_sessions_per_address`.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use sono_actors::client_session::EndWebRtc;
use sono_actors::webrtc_connection::{OfferRefused, WebRtcConnection};
use sono_actors::{ConnectionId, Shared};

use crate::api_error::ApiError;
use crate::auth;

type Data = web::Data<Arc<Shared>>;

/// `POST /api/v1/webrtc`: the offer in, the answer out.
pub async fn offer(
    req: HttpRequest,
    shared: Data,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send the SDP offer as the body, with Content-Type: application/sdp",
        ));
    }
    let limit = shared.settings.webrtc.max_offer_size;
    if body.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_offer",
            format!("the offer is over {limit} bytes (webrtc.max_offer_size)"),
        ));
    }
    let offer = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_offer",
            "the offer is not UTF-8",
        )
    })?;
    let peer = crate::client_address(&req, &shared)
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    // With a connection's token, the WebRTC media carries that connection's
    // audio (its own transport keeps the control); without one, a new
    // session starts.
    let attach_to = if req.headers().contains_key(header::AUTHORIZATION) {
        match auth::grant(&req, &shared)? {
            auth::Grant::Connection(id) => {
                let entry = auth::connection(&req, &shared, id)?;
                Some((id, entry.token, entry.addr))
            }
            auth::Grant::Admin => {
                return Err(ApiError::invalid_request(
                    "the admin key opens no WebRTC session: send none to open one, or a connection's token to attach to it",
                ))
            }
        }
    } else if shared.drain.is_draining() {
        return Err(ApiError::draining());
    } else {
        None
    };
    let answered = WebRtcConnection::answer(&shared, offer, peer, attach_to)
        .await
        .map_err(refused)?;
    let location = format!("/api/v1/webrtc/{}", answered.id);
    let mut response = HttpResponse::Created()
        .content_type("application/sdp")
        .insert_header((header::LOCATION, location))
        .insert_header(("Sono-Connection-Id", answered.id.to_string()))
        .body(answered.sdp);
    // The token is a secret: set as a header value marked sensitive, so no
    // middleware logs it.
    if let Ok(mut token) = HeaderValue::from_str(&answered.token) {
        token.set_sensitive(true);
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("sono-token"), token);
    }
    Ok(response)
}

fn refused(e: OfferRefused) -> ApiError {
    let (status, code) = match &e {
        OfferRefused::Disabled => (StatusCode::NOT_FOUND, "webrtc_disabled"),
        OfferRefused::BadOffer(_) | OfferRefused::NoAudio => {
            (StatusCode::BAD_REQUEST, "invalid_offer")
        }
        OfferRefused::TooManyFromAddress => (StatusCode::TOO_MANY_REQUESTS, "too_many_sessions"),
        OfferRefused::TooMany(_) => (StatusCode::SERVICE_UNAVAILABLE, "too_many_sessions"),
        OfferRefused::NoPort(_) | OfferRefused::NotStarted => {
            (StatusCode::SERVICE_UNAVAILABLE, "no_port")
        }
        OfferRefused::AlreadyAttached => (StatusCode::CONFLICT, "media_attached"),
    };
    ApiError::new(status, code, e.to_string())
}

/// `DELETE /api/v1/webrtc/{id}`: ends the session, with its token (or the
/// admin key); for a connection WebRTC media was attached to, only the
/// media ends.
pub async fn delete(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        entry.addr.send(EndWebRtc),
    )
    .await
    {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "connection_not_found",
                format!("connection {} has no WebRTC session nor media", *id),
            ))
        }
        _ => return Err(ApiError::connection_closed()),
    }
    Ok(HttpResponse::NoContent().finish())
}
