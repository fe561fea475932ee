//! SIP over TCP (RFC 3261 §18): the listener on `sip.listen`, a reader and a
//! writer task per connection, and the table of open connections by peer
//! address through which [`crate::sip_transport::SipSocket`] sends. A message
//! to a peer without a connection opens one (§18.1.1); responses to requests
//! that came over TCP go back on their connection (§18.2.2). Messages are cut
//! out of the stream by `sono_sip::stream_framer` and handed to the
//! `SipTransport` actor like datagrams. A connection idle for
//! `sip.tcp_idle_timeout`, or whose stream cannot be framed, is closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Recipient;
use dashmap::DashMap;
use sono_sip::stream_framer::StreamFramer;
use sono_sip::transmit::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::sip_transport::SipReceived;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct TcpConnections {
    writers: DashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    open: AtomicUsize,
    max: usize,
    idle: Duration,
    /// The `SipTransport` actor, set once it runs.
    inbound: OnceLock<Recipient<SipReceived>>,
}

impl TcpConnections {
    pub fn new(max: usize, idle: Duration) -> Arc<TcpConnections> {
        Arc::new(TcpConnections {
            writers: DashMap::new(),
            open: AtomicUsize::new(0),
            max,
            idle,
            inbound: OnceLock::new(),
        })
    }

    pub fn set_inbound(&self, inbound: Recipient<SipReceived>) {
        let _ = self.inbound.set(inbound);
    }

    /// Queues `bytes` for `to`, opening a connection if there is none.
    pub fn send(self: &Arc<Self>, to: SocketAddr, bytes: Vec<u8>) {
        if let Some(writer) = self.writers.get(&to) {
            if writer.send(bytes.clone()).is_ok() {
                return;
            }
        }
        if self.open.load(Ordering::Relaxed) >= self.max {
            warn!(%to, "SIP over TCP: too many connections (sip.max_tcp_connections), message dropped");
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(bytes);
        self.writers.insert(to, tx.clone());
        let me = self.clone();
        actix_rt::spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
                Ok(Ok(stream)) => {
                    debug!(%to, "SIP over TCP: connected");
                    me.run(stream, to, tx, rx).await;
                }
                Ok(Err(e)) => {
                    warn!(%to, error = %e, "SIP over TCP: cannot connect");
                    me.forget(to, &tx);
                }
                Err(_) => {
                    warn!(%to, "SIP over TCP: connecting timed out");
                    me.forget(to, &tx);
                }
            }
        });
    }

    /// Accepts connections until the task is dropped.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "SIP over TCP: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.open.load(Ordering::Relaxed) >= self.max {
                warn!(%peer, "SIP over TCP: too many connections, refused");
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            self.writers.insert(peer, tx.clone());
            let me = self.clone();
            actix_rt::spawn(async move { me.run(stream, peer, tx, rx).await });
        }
    }

    async fn run(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Vec<u8>>,
        mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        self.open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let writer = actix_rt::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = write.shutdown().await;
        });
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        let reason = loop {
            let n = match tokio::time::timeout(self.idle, read.read(&mut buf)).await {
                Err(_) => break "idle".to_owned(),
                Ok(Err(e)) => break format!("read error: {e}"),
                Ok(Ok(0)) => break "closed by the peer".to_owned(),
                Ok(Ok(n)) => n,
            };
            framer.push(&buf[..n]);
            let mut failed = None;
            while let Some(message) = framer.next_message() {
                match message {
                    Ok(bytes) => {
                        if let Some(inbound) = self.inbound.get() {
                            inbound.do_send(SipReceived {
                                bytes,
                                source: peer,
                                transport: Transport::Tcp,
                            });
                        }
                    }
                    Err(e) => {
                        failed = Some(format!("unframeable stream: {e}"));
                        break;
                    }
                }
            }
            if let Some(why) = failed {
                break why;
            }
        };
        info!(%peer, %reason, "SIP over TCP: connection closed");
        self.forget(peer, &tx);
        drop(tx);
        writer.abort();
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Removes `peer`'s entry if it is still this connection's.
    fn forget(&self, peer: SocketAddr, tx: &mpsc::UnboundedSender<Vec<u8>>) {
        self.writers
            .remove_if(&peer, |_, current| current.same_channel(tx));
    }
}
