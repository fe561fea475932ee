//! `SipTransport`: the SIP UDP socket (RFC 3261 §18). Every datagram is parsed
//! and checked once here (`sono_sip::message`); a malformed request is answered
//! 400/416/505 statelessly, anything unanswerable is dropped, and both are
//! counted. A message whose Call-ID belongs to a call goes to that call's
//! actor; what no call owns is answered here: OPTIONS 200 (keep-alive probes
//! from proxies; 503 while the node drains, as new INVITEs), BYE, CANCEL and in-dialog requests 481, other known
//! methods 405 (sono is no registrar); unknown methods got 501 from the
//! parser, unsupported Require 420 and non-SDP INVITE bodies 415. A new
//! INVITE goes to the client holding its Request-URI's user, or gets 404.
//! Sending needs no actor: [`SipSocket`] is shared and writes datagrams
//! directly, or hands them to the connection table of TCP or TLS
//! (`crate::sip_stream`). A request whose Request-URI is `sips:` must come
//! over TLS (RFC 5630 §3.1.3); any other is answered 416.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use bytes::BytesMut;
use sono_sip::ids::random_token;
use sono_sip::inbound_call::{request_uri_is_sips, request_uri_user};
use sono_sip::message::{error_response, parse, Received};
use sono_sip::response::{response_text, ALLOW};
use tokio::net::UdpSocket;
use tokio_util::codec::BytesCodec;
use tokio_util::udp::UdpFramed;
use tracing::{debug, trace, warn};

use crate::client_session::IncomingInvite;
use crate::metrics::Metrics;
use crate::rate_limit::Limit;
use crate::settings::OverLimit;
use crate::sip_stream::{Sender, StreamConnections};
use crate::Shared;
use sono_sip::transmit::Transport;

/// A received message for the call that owns its Call-ID.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SipInbound {
    pub message: Received,
    pub source: SocketAddr,
}

/// A message read from a TCP connection, for the transport to handle like a datagram.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SipReceived {
    pub bytes: Vec<u8>,
    pub source: SocketAddr,
    pub transport: Transport,
}

/// A message to a peer could not be delivered: no connection could be
/// opened, or its TLS certificate failed. `reason` says which, for the
/// call or registration that sent it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SipUnreachable {
    pub reason: String,
}

/// SIP over TLS: its connections and the `host:port` our Via and Contact
/// carry on it (the advertised host, the TLS listener's port).
#[derive(Clone)]
pub struct SipTlsSide {
    pub connections: Arc<StreamConnections>,
    pub advertised: String,
}

/// The bound SIP sockets, shared by every actor that sends SIP.
#[derive(Clone)]
pub struct SipSocket {
    socket: Arc<UdpSocket>,
    /// TCP connections, when `sip.tcp` is on.
    tcp: Option<Arc<StreamConnections>>,
    /// TLS connections, when `sip.tls_listen` is set.
    tls: Option<SipTlsSide>,
    /// `host:port` written in Via and Contact over UDP and TCP.
    advertised: String,
}

impl SipSocket {
    pub async fn bind(
        listen: SocketAddr,
        advertise: &str,
        tcp: Option<Arc<StreamConnections>>,
    ) -> io::Result<SipSocket> {
        let socket = UdpSocket::bind(listen).await?;
        let local = socket.local_addr()?;
        let advertised = advertised(advertise, local);
        Ok(SipSocket {
            socket: Arc::new(socket),
            tcp,
            tls: None,
            advertised,
        })
    }

    /// Adds SIP over TLS, whose listener is bound to `local`.
    pub fn with_tls(
        mut self,
        connections: Arc<StreamConnections>,
        advertise: &str,
        local: SocketAddr,
    ) -> SipSocket {
        // The advertised host with the TLS port: a host:port in
        // sip.advertise names the UDP/TCP port, not this one.
        let host = match advertise.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')) => h,
            _ => advertise,
        };
        self.tls = Some(SipTlsSide {
            connections,
            advertised: advertised(host, local),
        });
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// `host:port` for Via and Contact over UDP and TCP.
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// `host:port` for Via and Contact on `transport`.
    pub fn advertised_for(&self, transport: Transport) -> &str {
        match (transport, &self.tls) {
            (Transport::Tls, Some(tls)) => &tls.advertised,
            _ => &self.advertised,
        }
    }

    pub fn tcp_enabled(&self) -> bool {
        self.tcp.is_some()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether messages can go out on `transport` (TCP and TLS can be off).
    pub fn supports(&self, transport: Transport) -> bool {
        match transport {
            Transport::Udp => true,
            Transport::Tcp => self.tcp_enabled(),
            Transport::Tls => self.tls_enabled(),
        }
    }

    /// Sends one message without waiting, and without anyone to tell when
    /// it cannot be delivered (responses, ACKs, stateless answers).
    pub fn send(&self, transport: Transport, to: SocketAddr, bytes: &[u8]) {
        self.send_from(transport, to, bytes, Sender::default());
    }

    /// Sends one message without waiting. Over UDP a full socket buffer loses
    /// the datagram, as the network could: transactions retransmit. Over TCP
    /// and TLS it goes on the connection to `to`, opened if needed; when
    /// that fails, `sender.report` hears why.
    pub fn send_from(&self, transport: Transport, to: SocketAddr, bytes: &[u8], sender: Sender) {
        trace!(%to, %transport, message = %String::from_utf8_lossy(bytes), "SIP out");
        let connections = match transport {
            Transport::Udp => {
                if let Err(e) = self.socket.try_send_to(bytes, to) {
                    debug!(%to, error = %e, "SIP datagram not sent");
                }
                return;
            }
            Transport::Tcp => self.tcp.as_ref(),
            Transport::Tls => self.tls.as_ref().map(|t| &t.connections),
        };
        match connections {
            Some(c) => c.send(to, bytes.to_vec(), sender),
            None => {
                let reason = match transport {
                    Transport::Tls => "SIP over TLS is off (sip.tls_listen)",
                    _ => "SIP over TCP is off (sip.tcp)",
                };
                debug!(%to, "{reason}; message dropped");
                if let Some(r) = sender.report {
                    r.do_send(SipUnreachable {
                        reason: reason.to_owned(),
                    });
                }
            }
        }
    }
}

/// `host:port` for Via and Contact: `advertise` with `local`'s port when it
/// names no port, or `local` itself when it is empty.
fn advertised(advertise: &str, local: SocketAddr) -> String {
    let port = local.port();
    if advertise.is_empty() {
        local.to_string()
    } else if advertise.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{advertise}]:{port}")
    } else if advertise.starts_with('[') {
        if advertise.contains("]:") {
            advertise.to_owned()
        } else {
            format!("{advertise}:{port}")
        }
    } else if advertise.contains(':') {
        advertise.to_owned()
    } else {
        format!("{advertise}:{port}")
    }
}

pub struct SipTransport {
    shared: Arc<Shared>,
}

impl SipTransport {
    /// Reads `shared.sip`'s UDP socket and answers through it.
    pub fn start(shared: Arc<Shared>) -> Addr<SipTransport> {
        SipTransport::create(|ctx| {
            let socket = shared.sip.socket.clone();
            ctx.add_stream(UdpFramed::new(socket, BytesCodec::new()));
            SipTransport { shared }
        })
    }

    fn receive(&mut self, bytes: &[u8], source: SocketAddr, transport: Transport) {
        Metrics::add(&self.shared.metrics.sip_messages_received, 1);
        trace!(%source, message = %String::from_utf8_lossy(bytes), "SIP in");
        let message = match parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                Metrics::add(&self.shared.metrics.sip_messages_rejected, 1);
                debug!(%source, error = %e, "SIP message refused");
                if !self.within_limit(source) {
                    return;
                }
                if let Some(answer) = error_response(bytes, &e, source, &random_token()) {
                    self.shared.sip.send(transport, source, &answer);
                }
                return;
            }
        };
        if let Some(call) = self.shared.directory.call(&message.call_id) {
            call.do_send(SipInbound { message, source });
            return;
        }
        self.unowned(message, source, transport);
    }

    /// Whether `source` is within its limit of requests no dialog owns
    /// (`limits.sip_requests_per_second`).
    fn within_limit(&self, source: SocketAddr) -> bool {
        let shared = &self.shared;
        shared
            .limits
            .allow(Limit::Sip, source.ip(), None, &shared.metrics)
    }

    /// A message no call owns.
    fn unowned(&mut self, message: Received, source: SocketAddr, transport: Transport) {
        if !message.is_request() {
            debug!(%source, call_id = %message.call_id, "SIP response for no call, dropped");
            return;
        }
        if message.cseq_method != "ACK" && !self.within_limit(source) {
            if self.shared.settings.limits.over_limit == OverLimit::Reject {
                let retry = [("Retry-After", "5")];
                self.answer(
                    &message,
                    source,
                    transport,
                    503,
                    "Service Unavailable",
                    &retry,
                );
            }
            return;
        }
        if request_uri_is_sips(&message)
            && transport != Transport::Tls
            && message.cseq_method != "ACK"
        {
            // RFC 5630 §3.1.3: a sips: request came over a hop that is not TLS.
            let warning = [("Warning", "399 sono \"sips: needs TLS\"")];
            self.answer(
                &message,
                source,
                transport,
                416,
                "Unsupported URI Scheme",
                &warning,
            );
            return;
        }
        if let Some(r) = sono_sip::message::refusal(&message) {
            let header = [(r.header.0, r.header.1.as_str())];
            self.answer(&message, source, transport, r.code, r.reason, &header);
            return;
        }
        let draining = self.shared.drain.is_draining();
        match message.cseq_method.as_str() {
            "ACK" => {}
            // Kamailio's dispatcher probes with OPTIONS: 503 takes a draining
            // node out of its set (RFC 3261 §21.5.4), and new calls go with it.
            "OPTIONS" | "INVITE" if draining && message.to_tag.is_none() => self.answer(
                &message,
                source,
                transport,
                503,
                "Service Unavailable",
                &[
                    ("Retry-After", "60"),
                    ("Warning", "399 sono \"draining: leaving service\""),
                ],
            ),
            "OPTIONS" => self.answer(
                &message,
                source,
                transport,
                200,
                "OK",
                &[("Allow", ALLOW), ("Accept", "application/sdp")],
            ),
            // In-dialog requests, and BYE/CANCEL, for a dialog we do not have.
            method if message.to_tag.is_some() || method == "BYE" || method == "CANCEL" => self
                .answer(
                    &message,
                    source,
                    transport,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                ),
            // A new call: for the client whose user the Request-URI names.
            "INVITE" => {
                let client = request_uri_user(&message)
                    .and_then(|user| self.shared.directory.user(&user))
                    .and_then(|id| self.shared.directory.connection(id));
                match client {
                    Some(client) => client.do_send(IncomingInvite {
                        message,
                        source,
                        transport,
                    }),
                    None => self.answer(&message, source, transport, 404, "Not Found", &[]),
                }
            }
            _ => self.answer(
                &message,
                source,
                transport,
                405,
                "Method Not Allowed",
                &[("Allow", ALLOW)],
            ),
        }
    }

    /// A stateless response (§8.2.6) to where the request's Via says.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        message: &Received,
        source: SocketAddr,
        transport: Transport,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        answer_stateless(
            &self.shared,
            message,
            source,
            transport,
            code,
            reason,
            extra,
        );
    }
}

/// A stateless response (§8.2.6) to a request no call owns, sent where the
/// request's Via says (UDP) or on its connection (TCP).
pub fn answer_stateless(
    shared: &Shared,
    message: &Received,
    source: SocketAddr,
    transport: Transport,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) {
    let mut headers = extra.to_vec();
    headers.push(("Server", shared.settings.sip.user_agent.as_str()));
    debug!(%source, method = %message.cseq_method, code, "SIP request outside any call answered");
    let text = response_text(
        message,
        source,
        code,
        reason,
        Some(&random_token()),
        &headers,
        None,
    );
    let to = match transport {
        Transport::Udp => message.top_via.response_address(source),
        Transport::Tcp | Transport::Tls => source,
    };
    shared.sip.send(transport, to, text.as_bytes());
}

impl Actor for SipTransport {
    type Context = Context<Self>;
}

impl Handler<SipReceived> for SipTransport {
    type Result = ();

    fn handle(&mut self, msg: SipReceived, _: &mut Context<Self>) {
        self.receive(&msg.bytes, msg.source, msg.transport);
    }
}

impl StreamHandler<Result<(BytesMut, SocketAddr), io::Error>> for SipTransport {
    fn handle(&mut self, item: Result<(BytesMut, SocketAddr), io::Error>, _: &mut Context<Self>) {
        match item {
            Ok((bytes, source)) => self.receive(&bytes, source, Transport::Udp),
            // ICMP port unreachable and the like surface here on Linux; the
            // socket stays usable.
            Err(e) => debug!(error = %e, "SIP socket read error"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        warn!("the SIP socket closed");
    }
}

#[cfg(test)]
mod tests {
    use super::advertised;

    #[test]
    fn the_advertised_address_takes_the_local_port_when_it_names_none() {
        let local = "127.0.0.1:5061".parse().unwrap();
        assert_eq!(advertised("", local), "127.0.0.1:5061");
        assert_eq!(advertised("sip.example.com", local), "sip.example.com:5061");
        assert_eq!(
            advertised("sip.example.com:5070", local),
            "sip.example.com:5070"
        );
        assert_eq!(advertised("2001:db8::1", local), "[2001:db8::1]:5061");
        assert_eq!(advertised("[2001:db8::1]", local), "[2001:db8::1]:5061");
        assert_eq!(
            advertised("[2001:db8::1]:5070", local),
            "[2001:db8::1]:5070"
        );
    }
}
