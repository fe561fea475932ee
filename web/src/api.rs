//! The REST API under `/api/v1/` (documented in `openapi.json` beside this
//! file): a connection's state and phone requests, for the page holding its
//! token; every connection and call, for the admin key. Phone requests take the
//! same path through the connection as Flash's `NetConnection.call`.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use sono_actors::control::{ConnectionState, Control, GetState};
use sono_actors::{ConnectionId, RtmpConnection, Shared};
use sono_rtmp::PhoneRequest;

use crate::amf_json::to_json;
use crate::api_error::ApiError;
use crate::auth::{self, Grant};

/// The OpenAPI 3.0 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Longest wait for a connection's answer: a registrar that does not answer
/// is retried by SIP's own timers, which end well within this.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(40);

type Data = web::Data<Arc<Shared>>;

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// `GET /api/v1/token`: what the presented token controls.
pub async fn token(req: HttpRequest, shared: Data) -> Result<HttpResponse, ApiError> {
    Ok(match auth::grant(&req, &shared)? {
        Grant::Admin => HttpResponse::Ok().json(json!({"admin": true})),
        Grant::Connection(id) => {
            HttpResponse::Ok().json(json!({"admin": false, "connection_id": id}))
        }
    })
}

async fn state_of(addr: &Addr<RtmpConnection>) -> Result<ConnectionState, ApiError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, addr.send(GetState)).await {
        Ok(Ok(state)) => Ok(state),
        _ => Err(ApiError::connection_closed()),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Only connections with an id above this (paging).
    after: Option<ConnectionId>,
    limit: Option<usize>,
}

/// Connections' states, by id, `limit` at most (default 100, at most 1000).
async fn states(shared: &Shared, query: &ListQuery, calls_only: bool) -> Value {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let after = query.after.unwrap_or(0);
    let mut all = shared.directory.connections();
    all.retain(|(id, _)| *id > after);
    all.sort_unstable_by_key(|(id, _)| *id);
    let mut items = Vec::new();
    let mut last = None;
    for (id, addr) in all {
        if items.len() >= limit {
            break;
        }
        last = Some(id);
        // A connection that closes meanwhile is left out.
        if let Ok(state) = state_of(&addr).await {
            if calls_only && state.call.is_none() {
                continue;
            }
            items.push(state);
        }
    }
    let key = if calls_only { "calls" } else { "connections" };
    json!({ key: items, "next_after": last })
}

/// `GET /api/v1/connections` (admin).
pub async fn list_connections(
    req: HttpRequest,
    shared: Data,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    Ok(HttpResponse::Ok().json(states(&shared, &query, false).await))
}

/// `GET /api/v1/calls` (admin): the connections that have a call.
pub async fn list_calls(
    req: HttpRequest,
    shared: Data,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    Ok(HttpResponse::Ok().json(states(&shared, &query, true).await))
}

/// `GET /api/v1/connections/{id}`.
pub async fn connection(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    Ok(HttpResponse::Ok().json(state_of(&entry.addr).await?))
}

async fn control(
    req: &HttpRequest,
    shared: &Shared,
    id: ConnectionId,
    request: PhoneRequest,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(req, shared, id)?;
    let status = match request {
        PhoneRequest::Dial { .. } => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, entry.addr.send(Control(request))).await {
        Ok(Ok(Ok(value))) => {
            Ok(HttpResponse::build(status).json(json!({ "result": to_json(&value) })))
        }
        Ok(Ok(Err(failure))) => Err(ApiError::phone(failure)),
        Ok(Err(_)) => Err(ApiError::connection_closed()),
        Err(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "timeout",
            "the connection did not answer in time",
        )),
    }
}

/// Runs a phone request's arguments through the parser the Flash API uses, so
/// both check them the same way.
fn parse(name: &str, args: Vec<sono_rtmp::AmfValue>) -> Result<PhoneRequest, ApiError> {
    match sono_rtmp::phone::parse_request(name, &args) {
        Some(Ok(request)) => Ok(request),
        Some(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            e.code,
            e.description,
        )),
        None => Err(ApiError::invalid_request(format!("no method {name}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    uri: String,
}

pub async fn dial(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: web::Json<DialBody>,
) -> Result<HttpResponse, ApiError> {
    let request = parse("dial", vec![body.into_inner().uri.into()])?;
    control(&req, &shared, *id, request).await
}

pub async fn hangup(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    control(&req, &shared, *id, PhoneRequest::Hangup).await
}

pub async fn accept(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    control(&req, &shared, *id, PhoneRequest::Accept).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    code: Option<u16>,
}

pub async fn reject(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: Option<web::Json<RejectBody>>,
) -> Result<HttpResponse, ApiError> {
    let code = body.and_then(|b| b.into_inner().code);
    let args = code.map_or_else(Vec::new, |c| vec![sono_rtmp::AmfValue::Number(c.into())]);
    let request = parse("reject", args)?;
    control(&req, &shared, *id, request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfBody {
    digits: String,
}

pub async fn dtmf(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: web::Json<DtmfBody>,
) -> Result<HttpResponse, ApiError> {
    let request = parse("sendDTMF", vec![body.into_inner().digits.into()])?;
    control(&req, &shared, *id, request).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    user: Option<String>,
    domain: Option<String>,
    auth_user: Option<String>,
    password: Option<String>,
    display_name: Option<String>,
}

pub async fn register(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: Option<web::Json<RegisterBody>>,
) -> Result<HttpResponse, ApiError> {
    let b = body.map(web::Json::into_inner).unwrap_or_default();
    let arg = |v: Option<String>| v.map_or(sono_rtmp::AmfValue::Null, Into::into);
    let args = if b.user.is_none() && b.domain.is_none() {
        if b.auth_user.is_some() || b.password.is_some() || b.display_name.is_some() {
            return Err(ApiError::invalid_request(
                "register needs a user and a domain with credentials, or nothing (implicit)",
            ));
        }
        Vec::new()
    } else {
        vec![
            arg(b.user),
            arg(b.domain),
            arg(b.auth_user),
            arg(b.password),
            arg(b.display_name),
        ]
    };
    let request = parse("register", args)?;
    control(&req, &shared, *id, request).await
}

pub async fn unregister(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    control(&req, &shared, *id, PhoneRequest::Unregister).await
}

/// The routes of one connection, `/connections/{id}/…`.
pub fn connection_scope() -> actix_web::Scope {
    web::scope("/connections/{id}")
        .route("", web::get().to(connection))
        .route("/events", web::get().to(crate::events::connection_events))
        .route("/dial", web::post().to(dial))
        .route("/hangup", web::post().to(hangup))
        .route("/accept", web::post().to(accept))
        .route("/reject", web::post().to(reject))
        .route("/dtmf", web::post().to(dtmf))
        .route("/register", web::post().to(register))
        .route("/unregister", web::post().to(unregister))
}
