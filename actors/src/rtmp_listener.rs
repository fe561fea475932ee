//! The RTMP listener: accepts TCP connections and spreads them over one arbiter
//! per core, refusing any beyond `rtmp.max_connections`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Arbiter;
use tokio::net::TcpListener;
use tracing::{debug, error, warn};

use crate::metrics::Metrics;
use crate::rtmp_connection::RtmpConnection;
use crate::Shared;

/// Accepts connections until the task is dropped or aborted.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, arbiters: Arc<Vec<Arbiter>>) {
    let mut next = 0usize;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: wait a little rather than spin.
                error!(error = %e, "accepting an RTMP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Counted here, before the actor exists, so a burst cannot overshoot the limit;
        // the actor's `stopped` (or a failed start below) gives the slot back.
        let active = shared
            .metrics
            .rtmp_connections_active
            .fetch_add(1, Ordering::AcqRel);
        if active as usize >= shared.settings.rtmp.max_connections {
            shared
                .metrics
                .rtmp_connections_active
                .fetch_sub(1, Ordering::AcqRel);
            Metrics::add(&shared.metrics.rtmp_connections_refused, 1);
            warn!(%peer, limit = shared.settings.rtmp.max_connections,
                  "refusing RTMP connection: rtmp.max_connections reached");
            drop(stream);
            continue;
        }
        Metrics::add(&shared.metrics.rtmp_connections_accepted, 1);
        let _ = stream.set_nodelay(true);
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                shared
                    .metrics
                    .rtmp_connections_active
                    .fetch_sub(1, Ordering::AcqRel);
                debug!(error = %e, "could not hand the stream over");
                continue;
            }
        };
        let arbiter = &arbiters[next % arbiters.len()];
        next = next.wrapping_add(1);
        let shared = shared.clone();
        arbiter.spawn_fn(move || match tokio::net::TcpStream::from_std(std_stream) {
            Ok(stream) => {
                RtmpConnection::start(stream, peer, shared);
            }
            Err(e) => {
                shared
                    .metrics
                    .rtmp_connections_active
                    .fetch_sub(1, Ordering::AcqRel);
                debug!(error = %e, "could not adopt the stream on its arbiter")
            }
        });
    }
}
