//! SIP over TCP and over TLS (RFC 3261 §18 and §26.2): a listener, a reader
//! and a writer task per connection, and the table of open connections by
//! peer address through which [`crate::sip_transport::SipSocket`] sends. One
//! table serves one transport: plain TCP on `sip.listen`, or TLS on
//! `sip.tls_listen`. A message to a peer without a connection opens one
//! (§18.1.1); over TLS the peer's certificate must be valid for the name
//! the request's URI gave (RFC 5922 §7), or for its address when no name
//! is known. A connection that cannot be opened is reported to whoever
//! sent, with the reason, so a call or registration fails at once as with
//! 503 (§8.1.3.1) instead of waiting for its timer. Responses to requests
//! that came over a connection go back on it (§18.2.2). Messages are cut out
//! of the stream by `sono_sip::stream_framer` and handed to the
//! `SipTransport` actor like datagrams. A connection idle for
//! `sip.tcp_idle_timeout`, or whose stream cannot be framed, is closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Recipient;
use dashmap::DashMap;
use rustls::pki_types::ServerName;
use sono_sip::stream_framer::StreamFramer;
use sono_sip::transmit::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::sip_transport::{SipReceived, SipUnreachable};

/// How long connecting to a peer, TLS handshake included, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS side of a table of SIP over TLS connections.
pub struct SipTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

/// Who to tell when a message could not be delivered, and the name the
/// peer's certificate must carry.
#[derive(Default)]
pub struct Sender {
    /// The host the URI named (a domain or an address); `None`: the
    /// destination's address.
    pub peer_name: Option<String>,
    pub report: Option<Recipient<SipUnreachable>>,
}

pub struct StreamConnections {
    /// TCP or TLS.
    transport: Transport,
    tls: Option<SipTls>,
    writers: DashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    open: AtomicUsize,
    max: usize,
    idle: Duration,
    /// The `SipTransport` actor, set once it runs.
    inbound: OnceLock<Recipient<SipReceived>>,
}

impl StreamConnections {
    /// Plain SIP over TCP.
    pub fn tcp(max: usize, idle: Duration) -> Arc<StreamConnections> {
        Self::new(Transport::Tcp, None, max, idle)
    }

    /// SIP over TLS with this server and client configuration.
    pub fn tls(tls: SipTls, max: usize, idle: Duration) -> Arc<StreamConnections> {
        Self::new(Transport::Tls, Some(tls), max, idle)
    }

    fn new(
        transport: Transport,
        tls: Option<SipTls>,
        max: usize,
        idle: Duration,
    ) -> Arc<StreamConnections> {
        Arc::new(StreamConnections {
            transport,
            tls,
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
    pub fn send(self: &Arc<Self>, to: SocketAddr, bytes: Vec<u8>, sender: Sender) {
        if let Some(writer) = self.writers.get(&to) {
            if writer.send(bytes.clone()).is_ok() {
                return;
            }
        }
        let transport = self.transport;
        if self.open.load(Ordering::Relaxed) >= self.max {
            let reason =
                format!("SIP over {transport}: too many connections (sip.max_tcp_connections)");
            warn!(%to, "{reason}; message dropped");
            report(&sender, reason);
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(bytes);
        self.writers.insert(to, tx.clone());
        let me = self.clone();
        actix_rt::spawn(async move {
            let connecting = me.connect(to, sender.peer_name.as_deref());
            let failed = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(stream)) => {
                    debug!(%to, "SIP over {transport}: connected");
                    me.run(stream, to, tx, rx).await;
                    return;
                }
                Ok(Err(reason)) => reason,
                Err(_) => format!("SIP over {transport}: connecting to {to} timed out"),
            };
            warn!(%to, reason = %failed, "SIP: cannot connect");
            me.forget(to, &tx);
            report(&sender, failed);
        });
    }

    /// Opens a connection to `to`, with a TLS handshake over TLS that
    /// checks the peer's certificate against `peer_name` (or `to`'s address).
    async fn connect(
        &self,
        to: SocketAddr,
        peer_name: Option<&str>,
    ) -> Result<Box<dyn SipStream>, String> {
        let transport = self.transport;
        let tcp = TcpStream::connect(to)
            .await
            .map_err(|e| format!("SIP over {transport}: cannot connect to {to}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = match peer_name {
            Some(n) => ServerName::try_from(n.trim_matches(|c| c == '[' || c == ']').to_owned())
                .map_err(|e| {
                    format!("SIP over TLS: {n:?} is not a name a certificate can carry: {e}")
                })?,
            None => ServerName::IpAddress(to.ip().into()),
        };
        // rustls' error names the name expected and the names the
        // certificate carries.
        let stream = tls
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("SIP over TLS to {to}: handshake failed: {e}"))?;
        Ok(Box::new(stream))
    }

    /// Accepts connections until the task is dropped.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let transport = self.transport;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "SIP over {transport}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.open.load(Ordering::Relaxed) >= self.max {
                warn!(%peer, "SIP over {transport}: too many connections, refused");
                continue;
            }
            let me = self.clone();
            actix_rt::spawn(async move {
                let _ = stream.set_nodelay(true);
                let stream: Box<dyn SipStream> = match &me.tls {
                    None => Box::new(stream),
                    Some(tls) => {
                        let handshake = tls.acceptor.accept(stream);
                        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                            Ok(Ok(s)) => Box::new(s),
                            Ok(Err(e)) => {
                                info!(%peer, error = %e, "SIP over TLS: handshake failed");
                                return;
                            }
                            Err(_) => {
                                info!(%peer, "SIP over TLS: handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let (tx, rx) = mpsc::unbounded_channel();
                me.writers.insert(peer, tx.clone());
                me.run(stream, peer, tx, rx).await;
            });
        }
    }

    async fn run(
        self: Arc<Self>,
        stream: Box<dyn SipStream>,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Vec<u8>>,
        mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let transport = self.transport;
        self.open.fetch_add(1, Ordering::Relaxed);
        let (mut read, mut write) = tokio::io::split(stream);
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
                                transport,
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
        info!(%peer, %reason, "SIP over {transport}: connection closed");
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

/// A connection's byte stream: plain TCP, or TLS over it.
pub trait SipStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> SipStream for S {}

fn report(sender: &Sender, reason: String) {
    if let Some(r) = &sender.report {
        r.do_send(SipUnreachable { reason });
    }
}
