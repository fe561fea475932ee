//! sono's HTTP side (actix-web), on `http.listen`:
//!
//! - `/` the demo page, `/sono.js` and `/sono.d.ts` the JavaScript library,
//!   `/flash_phone.swf` the invisible Flash phone ([`static_files`]);
//! - RTMPT: `/fcs/ident2`, `/open/1`, `/send|idle|close/<id>/<seq>` ([`rtmpt`]);
//! - the REST API under `/api/v1/` with its OpenAPI document ([`api`]) and
//!   live events ([`events`]), authorised by tokens ([`auth`]);
//! - `/healthz` and `/metrics` (Prometheus text).

pub mod amf_json;
pub mod api;
pub mod api_error;
pub mod auth;
pub mod events;
pub mod rtmpt;
pub mod static_files;
pub mod webrtc;

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use sono_actors::Shared;

use crate::api_error::ApiError;

/// 200 while serving, 503 while draining: what HAProxy's `option httpchk`
/// checks before sending new connections here.
async fn healthz(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let draining = shared.drain.is_draining();
    let mut response = if draining {
        HttpResponse::ServiceUnavailable()
    } else {
        HttpResponse::Ok()
    };
    response.json(serde_json::json!({
        "status": if draining { "draining" } else { "ok" },
        "node": shared.settings.cluster.node_id,
        "rtmp_connections": shared.directory.connection_count(),
        "rtmpt_sessions": shared.tunnels.len(),
    }))
}

/// The client's address: the socket's, or behind a trusted proxy the one
/// it forwarded (`cluster.trusted_proxies`).
pub fn client_address(req: &HttpRequest, shared: &Shared) -> Option<std::net::SocketAddr> {
    let socket = req.peer_addr()?;
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    Some(sono_actors::cluster::http_client(
        &shared.settings.cluster,
        socket,
        forwarded,
    ))
}

async fn metrics(
    shared: web::Data<Arc<Shared>>,
    open: web::Data<Arc<events::OpenStreams>>,
) -> HttpResponse {
    let mut text = shared.metrics.render();
    text.push_str(&format!(
        "# HELP sono_rtmpt_sessions RTMPT tunnel sessions open.\n# TYPE sono_rtmpt_sessions gauge\nsono_rtmpt_sessions {}\n\
         # HELP sono_event_streams Live-event streams (SSE) open.\n# TYPE sono_event_streams gauge\nsono_event_streams {}\n",
        shared.tunnels.len(),
        open.count()
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}

/// A page or document: GET, and HEAD (the same headers, no body; actix-http
/// leaves the body out), anything else 405 with `Allow` (RFC 9110 §9.3.2,
/// §15.5.6).
fn page<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(|| async { not_allowed("GET, HEAD") }))
}

/// An RTMPT request: POST only (the tunnel's every request is one).
fn tunnel(path: &str) -> actix_web::Resource {
    web::resource(path)
        .route(web::post().to(rtmpt::tunnel))
        .default_service(web::to(|| async { not_allowed("POST") }))
}

fn not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .content_type("text/plain; charset=utf-8")
        .body(format!("method not allowed: {allow} only\n"))
}

/// Anything no route matched: JSON under the API, plain text elsewhere.
async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    if req.path().starts_with("/api/") {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint").error_response()
    } else {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found\n")
    }
}

fn bad_body(message: String) -> actix_web::Error {
    ApiError::invalid_request(message).into()
}

fn cors(shared: &Shared) -> actix_cors::Cors {
    let origins = &shared.settings.http.cors_origins;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(["authorization", "content-type"])
        .expose_headers(["location", "sono-connection-id", "sono-token"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// Binds the HTTP listener; the returned server runs until stopped.
pub fn serve(shared: Arc<Shared>) -> std::io::Result<Server> {
    let address = shared.settings.http.listen;
    let max_body = shared.settings.rtmpt.max_body;
    let open_streams = web::Data::new(Arc::new(events::OpenStreams::default()));
    let data = web::Data::new(shared);
    let server = HttpServer::new(move || {
        let path =
            web::PathConfig::default().error_handler(|e, _| bad_body(format!("bad path: {e}")));
        let query =
            web::QueryConfig::default().error_handler(|e, _| bad_body(format!("bad query: {e}")));
        App::new()
            .app_data(data.clone())
            .app_data(open_streams.clone())
            // RTMPT bodies: over rtmpt.max_body is 413 before the handler runs.
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(path)
            .app_data(query)
            .wrap(cors(&data))
            .service(page("/healthz", healthz))
            .service(page("/metrics", metrics))
            .service(page("/", static_files::index))
            .service(page("/sono.js", static_files::sono_js))
            .service(page("/favicon.ico", static_files::favicon))
            .service(page("/sono.d.ts", static_files::sono_d_ts))
            .service(page("/flash_phone.swf", static_files::flash_phone))
            .service(tunnel("/fcs/{rest:.*}"))
            .service(tunnel("/open/{rest:.*}"))
            .service(tunnel("/send/{rest:.*}"))
            .service(tunnel("/idle/{rest:.*}"))
            .service(tunnel("/close/{rest:.*}"))
            .service(api::scope())
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(address)?
    .run();
    tracing::info!(%address, "HTTP listening");
    Ok(server)
}
