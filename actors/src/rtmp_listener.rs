//! The RTMP and RTMPS listeners: accept TCP connections (RTMPS: and their TLS
//! handshake) and spread them over one arbiter per core, refusing any beyond
//! `rtmp.max_connections`, which counts every transport together.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Arbiter;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, warn};

use crate::control::ClientTransport;
use crate::metrics::Metrics;
use crate::rtmp_connection::RtmpConnection;
use crate::Shared;

/// Accepts connections until the task is dropped or aborted; with `tls`, each
/// must finish a TLS handshake within `rtmp.handshake_timeout` first.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    arbiters: Arc<Vec<Arbiter>>,
    tls: Option<TlsAcceptor>,
) {
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
        if !shared.take_connection_slot(peer) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let send_buffer = shared.settings.rtmp.send_buffer;
        if send_buffer > 0 {
            // Bounds the audio delay a slow reader can build up in the kernel.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
        }
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
        let tls = tls.clone();
        arbiter.spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(std_stream) {
                Ok(stream) => stream,
                Err(e) => {
                    shared
                        .metrics
                        .rtmp_connections_active
                        .fetch_sub(1, Ordering::AcqRel);
                    debug!(error = %e, "could not adopt the stream on its arbiter");
                    return;
                }
            };
            let Some(tls) = tls else {
                RtmpConnection::start(stream, peer, ClientTransport::Rtmp, shared);
                return;
            };
            let limit = shared.settings.rtmp.handshake_timeout;
            match tokio::time::timeout(limit, tls.accept(stream)).await {
                Ok(Ok(stream)) => {
                    RtmpConnection::start(stream, peer, ClientTransport::Rtmps, shared);
                }
                outcome => {
                    shared
                        .metrics
                        .rtmp_connections_active
                        .fetch_sub(1, Ordering::AcqRel);
                    Metrics::add(&shared.metrics.rtmp_connections_closed_on_error, 1);
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "not finished in time".into(),
                    };
                    warn!(%peer, %why, "RTMPS: TLS handshake failed");
                }
            }
        });
    }
}
