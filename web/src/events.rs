//! Live events as Server-Sent Events (HTML Living Standard §9.2): a
//! connection's stream carries the info objects its Flash client gets with
//! `onStatus`, as JSON, named by their code; the admin stream carries every
//! connection's, each with its `connection` id. A stream opens with the
//! connection's state (event `Sono.Connection.State`) so a page never misses
//! what happened before it subscribed, and ends after `Sono.Connection.Closed`.
//! Silent streams get a comment every `http.event_keepalive`, which keeps
//! proxies from timing them out, and tells sono soon enough that a page
//! that left is gone: a session counts its open streams (a WebRTC page
//! between calls has nothing else open to sono).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream;
use serde_json::json;
use sono_actors::client_session::{ClientSession, EventStream};
use sono_actors::control::{ConnectionEvent, GetState};
use sono_actors::{ConnectionId, Shared};
use sono_rtmp::phone::code;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::amf_json::to_json;
use crate::api_error::ApiError;
use crate::auth;

/// Event streams open now, against `http.max_event_streams`.
#[derive(Default)]
pub struct OpenStreams(AtomicUsize);

impl OpenStreams {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Gives the stream's slot back when the stream is dropped (client gone).
struct Slot(Arc<OpenStreams>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn take_slot(open: &Arc<OpenStreams>, max: usize) -> Result<Slot, ApiError> {
    if open.0.fetch_add(1, Ordering::Relaxed) >= max {
        open.0.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::unavailable(
            "too many event streams are open (http.max_event_streams)",
        ));
    }
    Ok(Slot(open.clone()))
}

fn frame(seq: u64, name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("id: {seq}\nevent: {name}\ndata: {data}\n\n"))
}

/// Tells a session its stream is open, and when it closes.
struct Watching(actix::Addr<ClientSession>);

impl Watching {
    fn start(session: actix::Addr<ClientSession>) -> Watching {
        session.do_send(EventStream { open: true });
        Watching(session)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.do_send(EventStream { open: false });
    }
}

struct Follow {
    rx: broadcast::Receiver<Arc<ConnectionEvent>>,
    only: Option<ConnectionId>,
    keepalive: std::time::Duration,
    first: Option<Bytes>,
    done: bool,
    _slot: Slot,
    _watching: Option<Watching>,
}

fn follow(f: Follow) -> HttpResponse {
    let body = stream::unfold(f, |mut f| async move {
        if let Some(first) = f.first.take() {
            return Some((Ok::<_, actix_web::Error>(first), f));
        }
        if f.done {
            return None;
        }
        loop {
            let next = tokio::time::timeout(f.keepalive, f.rx.recv()).await;
            let event = match next {
                Err(_) => return Some((Ok(Bytes::from_static(b": keepalive\n\n")), f)),
                Ok(Ok(event)) => event,
                Ok(Err(RecvError::Lagged(n))) => {
                    let data = json!({ "lost": n });
                    return Some((Ok(frame(0, "Sono.Events.Lost", &data)), f));
                }
                Ok(Err(RecvError::Closed)) => return None,
            };
            if f.only.is_some_and(|id| id != event.connection) {
                continue;
            }
            let mut data = to_json(&event.info);
            let name = data
                .get("code")
                .and_then(|c| c.as_str())
                .unwrap_or("message")
                .to_owned();
            if f.only.is_some() && name == code::CONNECTION_CLOSED {
                f.done = true;
            }
            data["connection"] = json!(event.connection);
            return Some((Ok(frame(event.seq, &name, &data)), f));
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        // nginx and friends must pass events through as they come.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// `GET /api/v1/connections/{id}/events`.
pub async fn connection_events(
    req: HttpRequest,
    shared: web::Data<Arc<Shared>>,
    open: web::Data<Arc<OpenStreams>>,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, ApiError> {
    let entry = auth::connection(&req, &shared, *id)?;
    let slot = take_slot(&open, shared.settings.http.max_event_streams)?;
    // Subscribe before asking for the state, so nothing falls in between.
    let rx = shared.events.subscribe();
    let state = entry
        .addr
        .send(GetState)
        .await
        .map_err(|_| ApiError::connection_closed())?;
    let state = serde_json::to_value(&state).unwrap_or_default();
    Ok(follow(Follow {
        rx,
        only: Some(*id),
        keepalive: shared.settings.http.event_keepalive,
        first: Some(frame(0, "Sono.Connection.State", &state)),
        done: false,
        _slot: slot,
        _watching: Some(Watching::start(entry.addr)),
    }))
}

/// `GET /api/v1/events` (admin): every connection's events.
pub async fn all_events(
    req: HttpRequest,
    shared: web::Data<Arc<Shared>>,
    open: web::Data<Arc<OpenStreams>>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &shared)?;
    let slot = take_slot(&open, shared.settings.http.max_event_streams)?;
    let rx = shared.events.subscribe();
    Ok(follow(Follow {
        rx,
        only: None,
        keepalive: shared.settings.http.event_keepalive,
        // Tells the client the stream is live before any event happens.
        first: Some(Bytes::from_static(b": sono events\n\n")),
        done: false,
        _slot: slot,
        _watching: None,
    }))
}
