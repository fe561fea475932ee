//! sono's HTTP side (actix-web). Now: `/healthz` and `/metrics` (Prometheus text).
//! The HTTP issue adds here the RTMPT tunnel (`/open`, `/send`, `/idle`, `/close`,
//! `/fcs/ident2`), the REST API under `/api/v1/` with its OpenAPI document, the
//! live event stream, and the demo page with `sono.js`.

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use sono_actors::Shared;

async fn healthz(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(
            "{{\"status\":\"ok\",\"rtmp_connections\":{}}}",
            shared.directory.connection_count()
        ))
}

async fn metrics(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(shared.metrics.render())
}

/// Binds the HTTP listener; the returned server runs until stopped.
pub fn serve(shared: Arc<Shared>) -> std::io::Result<Server> {
    let address = shared.settings.http.listen;
    let data = web::Data::new(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(address)?
    .run();
    tracing::info!(%address, "HTTP listening");
    Ok(server)
}
