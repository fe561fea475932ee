//! RTMPT on actix-web: each POST is parsed by `sono_rtmp::tunnel` and its body
//! handed to the session's `RtmpConnection`, whose answer (the polling
//! interval, then RTMP bytes) is the response body. Bad input gets a status
//! and no harm to the session: 400 for a malformed path or a sequence number
//! that does not rise, 404 for an unknown or closed session, 413 for a body
//! over `rtmpt.max_body`, 429 when the client address holds too many sessions,
//! 503 at `rtmp.max_connections`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use sono_actors::tunnel::{OpenRefusal, TunnelExchange, TunnelRefusal};
use sono_actors::Shared;
use sono_rtmp::tunnel::{parse_path, TunnelRequest, CONTENT_TYPE};
use tracing::debug;

fn fcs(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        // Proxies between Flash and us must neither cache nor transform polls.
        .insert_header(("Cache-Control", "no-cache"))
        .body(body.into())
}

fn refuse(status: StatusCode, why: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{why}\n"))
}

/// Every RTMPT request: `/fcs/ident2`, `/open/1`, `/send|idle|close/<id>/<seq>`.
pub async fn tunnel(req: HttpRequest, body: Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    if !shared.settings.rtmpt.enabled {
        return refuse(StatusCode::NOT_FOUND, "RTMPT is off (rtmpt.enabled)");
    }
    let request = match parse_path(req.path()) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let peer = match crate::client_address(&req, &shared) {
        Some(p) => p,
        None => return refuse(StatusCode::BAD_REQUEST, "no peer address"),
    };
    match request {
        // No edge server to name: 404 tells Flash Player to go on with /open.
        TunnelRequest::Ident { version2: true } => fcs(StatusCode::NOT_FOUND, ""),
        TunnelRequest::Ident { version2: false } => fcs(
            StatusCode::OK,
            "<fcs><Company>sono</Company><Team>sono RTMP-SIP gateway</Team></fcs>",
        ),
        TunnelRequest::Open if shared.drain.is_draining() => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node is draining (leaving service); open the session on another node",
        ),
        TunnelRequest::Open => match shared.tunnels.open(&shared, peer) {
            Ok(id) => {
                debug!(%peer, session = %id, "RTMPT session opened");
                fcs(StatusCode::OK, format!("{id}\n"))
            }
            Err(OpenRefusal::TooManyFromAddress) => refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many RTMPT sessions from this address",
            ),
            Err(OpenRefusal::TooManyConnections) => refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "sono has all the connections it may have",
            ),
        },
        TunnelRequest::Send { session, seq }
        | TunnelRequest::Idle { session, seq }
        | TunnelRequest::Close { session, seq } => {
            let Some(connection) = shared.tunnels.get(session) else {
                if let Some(to) =
                    sono_actors::cluster::misdirected(&shared.settings.cluster, session)
                {
                    return refuse(
                        StatusCode::MISDIRECTED_REQUEST,
                        &format!(
                            "RTMPT session of node {}{}; the balancer must route on the session id's prefix",
                            to.node,
                            to.address.map_or(String::new(), |a| format!(" ({a})"))
                        ),
                    );
                }
                return refuse(StatusCode::NOT_FOUND, "no such RTMPT session");
            };
            let close = matches!(request, TunnelRequest::Close { .. });
            // Idle polls carry one filler byte that is not RTMP.
            let data = match request {
                TunnelRequest::Send { .. } => body,
                _ => Bytes::new(),
            };
            match connection.send(TunnelExchange { seq, data, close }).await {
                Ok(Ok(reply)) => {
                    let mut body = Vec::with_capacity(1 + reply.data.len());
                    body.push(reply.interval);
                    body.extend_from_slice(&reply.data);
                    fcs(StatusCode::OK, body)
                }
                Ok(Err(TunnelRefusal::Sequence(e))) => {
                    refuse(StatusCode::BAD_REQUEST, &e.to_string())
                }
                Ok(Err(TunnelRefusal::Closed)) | Err(_) => {
                    refuse(StatusCode::NOT_FOUND, "the RTMPT session has closed")
                }
            }
        }
    }
}
