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
use sono_actors::directory::ConnectionEntry;
use sono_actors::{ClientSession, ConnectionId, Shared};
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

async fn state_of(addr: &Addr<ClientSession>) -> Result<ConnectionState, ApiError> {
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
async fn states(shared: &Shared, query: &ListQuery, calls_only: bool) -> Result<Value, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_request("limit must be from 1 to 1000"));
    }
    if query.after.is_some_and(|a| a > i64::MAX as u64) {
        return Err(ApiError::invalid_request(
            "after is a connection id (int64)",
        ));
    }
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
    Ok(json!({ key: items, "next_after": last }))
}

/// `POST /api/v1/drain` (admin): leave service as on SIGTERM (docs/cluster.md).
pub async fn drain(req: HttpRequest, shared: Data) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    let started = shared.drain.request();
    Ok(HttpResponse::Accepted().json(json!({
        "draining": true,
        "already": !started,
        "grace_seconds": shared.settings.shutdown.grace.as_secs_f64(),
    })))
}

/// `GET /api/v1/connections` (admin).
pub async fn list_connections(
    req: HttpRequest,
    shared: Data,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    Ok(HttpResponse::Ok().json(states(&shared, &query, false).await?))
}

/// `GET /api/v1/calls` (admin): the connections that have a call.
pub async fn list_calls(
    req: HttpRequest,
    shared: Data,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    Ok(HttpResponse::Ok().json(states(&shared, &query, true).await?))
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

/// The JSON body of a request (checked after its authorisation, so a
/// stranger learns nothing from body errors); an empty body is `T::default()`
/// unless the endpoint needs one.
fn json_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
    required: bool,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::invalid_request("this endpoint takes a JSON body"))
        } else {
            Ok(T::default())
        };
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "the JSON body is not what this endpoint takes: {e}"
        ))
    })
}

async fn control(entry: ConnectionEntry, request: PhoneRequest) -> Result<HttpResponse, ApiError> {
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    uri: String,
    /// Offer H.264 video (the connection's RTMP publisher sends it).
    #[serde(default)]
    video: bool,
}

pub async fn dial(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    let body: DialBody = json_body(&body, true)?;
    let mut args = vec![body.uri.into()];
    if body.video {
        args.push(sono_rtmp::amf::AmfValue::object([(
            "video",
            sono_rtmp::amf::AmfValue::Boolean(true),
        )]));
    }
    control(entry, parse("dial", args)?).await
}

/// `/connections/{id}/…` or `/connections/{id}/calls/{call}/…`: a
/// connection, and the call of it a method is about (none: the one the
/// method means by default, as for Flash clients).
#[derive(Deserialize)]
pub struct CallPath {
    id: ConnectionId,
    call: Option<sono_rtmp::phone::CallId>,
}

impl CallPath {
    /// The call id as the phone API's optional argument.
    fn arg(&self) -> sono_rtmp::AmfValue {
        self.call.map_or(sono_rtmp::AmfValue::Null, |c| {
            sono_rtmp::AmfValue::Number(c.into())
        })
    }
}

pub async fn hangup(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    control(entry, parse("hangup", vec![path.arg()])?).await
}

/// `POST …/hold` and `…/unhold`.
pub async fn hold(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    control(entry, parse("hold", vec![path.arg()])?).await
}

pub async fn unhold(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    control(entry, parse("unhold", vec![path.arg()])?).await
}

pub async fn accept(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    control(entry, parse("accept", vec![path.arg()])?).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    code: Option<u16>,
}

pub async fn reject(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    let body: RejectBody = json_body(&body, false)?;
    let code = body.code.map_or(sono_rtmp::AmfValue::Null, |c| {
        sono_rtmp::AmfValue::Number(c.into())
    });
    control(entry, parse("reject", vec![code, path.arg()])?).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DtmfBody {
    digits: String,
}

pub async fn dtmf(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    let body: DtmfBody = json_body(&body, true)?;
    control(
        entry,
        parse("sendDTMF", vec![body.digits.into(), path.arg()])?,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    uri: String,
}

/// `POST …/transfer {uri}`: a blind transfer of the call's peer (REFER).
pub async fn transfer(
    req: HttpRequest,
    shared: Data,
    path: web::Path<CallPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, path.id)?;
    let body: TransferBody = json_body(&body, true)?;
    control(entry, parse("transfer", vec![body.uri.into(), path.arg()])?).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    a: Option<sono_rtmp::phone::CallId>,
    b: Option<sono_rtmp::phone::CallId>,
}

/// `POST …/join {a?, b?}`: an attended transfer, a's peer to b's.
pub async fn join(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    pair_request("join", req, shared, *id, body).await
}

/// `POST …/three_way {a?, b?}`: the client and both calls' peers together.
pub async fn three_way(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    pair_request("three_way", req, shared, *id, body).await
}

/// A phone method about two calls, `{a?, b?}` in the body.
async fn pair_request(
    method: &str,
    req: HttpRequest,
    shared: Data,
    id: ConnectionId,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, id)?;
    let body: JoinBody = json_body(&body, false)?;
    let arg = |c: Option<sono_rtmp::phone::CallId>| {
        c.map_or(sono_rtmp::AmfValue::Null, |c| {
            sono_rtmp::AmfValue::Number(c.into())
        })
    };
    control(entry, parse(method, vec![arg(body.a), arg(body.b)])?).await
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
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    let raw: Value = json_body(&body, false)?;
    if !body.iter().all(u8::is_ascii_whitespace) && !raw.is_object() {
        return Err(ApiError::invalid_request("register takes a JSON object"));
    }
    if raw
        .as_object()
        .is_some_and(|o| o.values().any(Value::is_null))
    {
        return Err(ApiError::invalid_request(
            "register's fields are strings; leave out the ones you do not give",
        ));
    }
    let b: RegisterBody = if raw.is_null() {
        RegisterBody::default()
    } else {
        serde_json::from_value(raw).map_err(|e| {
            ApiError::invalid_request(format!("the JSON body is not what register takes: {e}"))
        })?
    };
    let arg = |v: Option<String>| v.map_or(sono_rtmp::AmfValue::Null, Into::into);
    let implicit = b.user.is_none()
        && b.domain.is_none()
        && b.auth_user.is_none()
        && b.password.is_none()
        && b.display_name.is_none();
    let args = if implicit {
        Vec::new()
    } else if b.user.is_none() || b.domain.is_none() {
        return Err(ApiError::invalid_request(
            "register needs a user and a domain (with optional credentials), or nothing (implicit)",
        ));
    } else {
        vec![
            arg(b.user),
            arg(b.domain),
            arg(b.auth_user),
            arg(b.password),
            arg(b.display_name),
        ]
    };
    control(entry, parse("register", args)?).await
}

pub async fn unregister(
    req: HttpRequest,
    shared: Data,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    control(entry, PhoneRequest::Unregister).await
}

/// A method the endpoint does not have (RFC 9110 §15.5.6), with the `Allow`
/// header naming the one it has.
fn method_not_allowed(allow: &'static str) -> HttpResponse {
    use actix_web::ResponseError;
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint takes {allow} only"),
    )
    .error_response();
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

/// A resource answering `method` with `handler` and 405 to anything else.
fn resource<F, Args>(path: &str, get: bool, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let (route, allow) = if get {
        (web::get(), "GET")
    } else {
        (web::post(), "POST")
    };
    web::resource(path)
        .route(route.to(handler))
        .default_service(web::to(move || async move { method_not_allowed(allow) }))
}

/// `limits.rest_calls_per_second`, per token (per address without one).
fn within_rest_limit(req: &actix_web::dev::ServiceRequest, shared: &Shared) -> bool {
    let ip = crate::client_address(req.request(), shared)
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
    let token = auth::presented_token(req.request());
    shared.limits.allow(
        sono_actors::rate_limit::Limit::Rest,
        ip,
        token.as_deref(),
        &shared.metrics,
    )
}

/// Largest JSON body an API request may carry (413 beyond).
const MAX_BODY: usize = 16 * 1024;

/// Every route of the API, under `/api/v1`.
pub fn scope() -> impl actix_web::dev::HttpServiceFactory {
    use actix_web::dev::Service;
    use futures_util::future::{ready, Either};
    web::scope("/api/v1")
        .wrap_fn(|req, srv| {
            let limited = req
                .app_data::<Data>()
                .is_some_and(|shared| !within_rest_limit(&req, shared));
            if limited {
                let error = ApiError::unavailable(
                    "too many calls with this token (limits.rest_calls_per_second); retry later",
                );
                let response = actix_web::ResponseError::error_response(&error);
                return Either::Left(ready(Ok(req.into_response(response))));
            }
            Either::Right(srv.call(req))
        })
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .service(resource("/openapi.json", true, openapi))
        .service(resource("/token", true, token))
        .service(resource("/drain", false, drain))
        .service(resource("/connections", true, list_connections))
        .service(resource("/calls", true, list_calls))
        .service(resource("/events", true, crate::events::all_events))
        .service(resource("/connections/{id}", true, connection))
        .service(resource(
            "/connections/{id}/events",
            true,
            crate::events::connection_events,
        ))
        .service(resource("/connections/{id}/dial", false, dial))
        .service(resource("/connections/{id}/hangup", false, hangup))
        .service(resource("/connections/{id}/accept", false, accept))
        .service(resource("/connections/{id}/hold", false, hold))
        .service(resource("/connections/{id}/unhold", false, unhold))
        .service(resource("/connections/{id}/reject", false, reject))
        .service(resource("/connections/{id}/dtmf", false, dtmf))
        .service(resource("/connections/{id}/transfer", false, transfer))
        .service(resource("/connections/{id}/join", false, join))
        .service(resource("/connections/{id}/three_way", false, three_way))
        // The same, about one call of the connection (its id from `dial`'s
        // answer or the events' `call`).
        .service(resource(
            "/connections/{id}/calls/{call}/hangup",
            false,
            hangup,
        ))
        .service(resource(
            "/connections/{id}/calls/{call}/accept",
            false,
            accept,
        ))
        .service(resource("/connections/{id}/calls/{call}/hold", false, hold))
        .service(resource(
            "/connections/{id}/calls/{call}/unhold",
            false,
            unhold,
        ))
        .service(resource(
            "/connections/{id}/calls/{call}/reject",
            false,
            reject,
        ))
        .service(resource("/connections/{id}/calls/{call}/dtmf", false, dtmf))
        .service(resource(
            "/connections/{id}/calls/{call}/transfer",
            false,
            transfer,
        ))
        .service(resource("/connections/{id}/register", false, register))
        .service(resource("/connections/{id}/unregister", false, unregister))
        .service(
            web::resource("/webrtc")
                // Over webrtc.max_offer_size is refused by the handler, with
                // the setting named; this only bounds what is read at all.
                .app_data(web::PayloadConfig::new(1 << 20))
                .route(web::post().to(crate::webrtc::offer))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource("/webrtc/{id}")
                .route(web::delete().to(crate::webrtc::delete))
                .default_service(web::to(|| async { method_not_allowed("DELETE") })),
        )
}
