//! The RTMP and RTMPS listeners: accept TCP connections (behind a balancer:
//! and their PROXY protocol header, then RTMPS: their TLS handshake) and
//! spread them over one arbiter per core, refusing any beyond
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

/// Accepts connections until the task is dropped or aborted. With
/// `cluster.proxy_protocol`, each must first carry a PROXY protocol v2 header
/// from a trusted proxy; with `tls`, each must then finish a TLS handshake.
/// Both within `rtmp.handshake_timeout`.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    arbiters: Arc<Vec<Arbiter>>,
    tls: Option<TlsAcceptor>,
) {
    let mut next = 0usize;
    let proxied = shared.settings.cluster.proxy_protocol;
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
        if proxied && !shared.settings.cluster.trusts(peer.ip()) {
            warn!(%peer, "RTMP connection refused: cluster.proxy_protocol is on and this address is not in cluster.trusted_proxies");
            Metrics::add(&shared.metrics.rtmp_connections_refused, 1);
            continue;
        }
        // Counted here, before the actor exists, so a burst cannot overshoot the limit;
        // the actor's `stopped` (or a failed start below) gives the slot back.
        // Behind a proxy the client's address is known only from its header.
        if !proxied && !shared.take_connection_slot(peer) {
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
                if !proxied {
                    give_back_slot(&shared);
                }
                debug!(error = %e, "could not hand the stream over");
                continue;
            }
        };
        let arbiter = &arbiters[next % arbiters.len()];
        next = next.wrapping_add(1);
        let shared = shared.clone();
        let tls = tls.clone();
        arbiter.spawn(async move {
            let mut stream = match tokio::net::TcpStream::from_std(std_stream) {
                Ok(stream) => stream,
                Err(e) => {
                    if !proxied {
                        give_back_slot(&shared);
                    }
                    debug!(error = %e, "could not adopt the stream on its arbiter");
                    return;
                }
            };
            let limit = shared.settings.rtmp.handshake_timeout;
            let peer = if proxied {
                let client = match tokio::time::timeout(limit, read_proxy_header(&mut stream)).await
                {
                    Ok(Ok(client)) => client.unwrap_or(peer),
                    outcome => {
                        let why = match outcome {
                            Ok(Err(e)) => e,
                            _ => "no PROXY header in time".into(),
                        };
                        warn!(proxy = %peer, %why, "RTMP connection dropped: bad PROXY protocol header");
                        Metrics::add(&shared.metrics.rtmp_connections_closed_on_error, 1);
                        return;
                    }
                };
                if !shared.take_connection_slot(client) {
                    return;
                }
                debug!(proxy = %peer, %client, "RTMP client behind a proxy");
                client
            } else {
                peer
            };
            let Some(tls) = tls else {
                RtmpConnection::start(stream, peer, ClientTransport::Rtmp, shared);
                return;
            };
            match tokio::time::timeout(limit, tls.accept(stream)).await {
                Ok(Ok(stream)) => {
                    RtmpConnection::start(stream, peer, ClientTransport::Rtmps, shared);
                }
                outcome => {
                    give_back_slot(&shared);
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

fn give_back_slot(shared: &Shared) {
    shared
        .metrics
        .rtmp_connections_active
        .fetch_sub(1, Ordering::AcqRel);
}

/// Reads exactly the PROXY protocol v2 header, leaving the RTMP (or TLS)
/// bytes after it in the socket: the client's address, or `None` for the
/// proxy's own health check (LOCAL).
async fn read_proxy_header(
    stream: &mut tokio::net::TcpStream,
) -> Result<Option<std::net::SocketAddr>, String> {
    use sono_rtmp::proxy_header::{client_address, header_length, FIXED_LEN};
    use tokio::io::AsyncReadExt;
    let mut fixed = [0u8; FIXED_LEN];
    stream
        .read_exact(&mut fixed)
        .await
        .map_err(|e| format!("reading it: {e}"))?;
    let total = header_length(&fixed).map_err(|e| e.to_string())?;
    let mut header = fixed.to_vec();
    header.resize(total, 0);
    stream
        .read_exact(&mut header[FIXED_LEN..])
        .await
        .map_err(|e| format!("reading it: {e}"))?;
    client_address(&header).map_err(|e| e.to_string())
}
