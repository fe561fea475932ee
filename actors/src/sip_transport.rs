//! `SipTransport`: the SIP UDP socket (RFC 3261 §18). Every datagram is parsed
//! and checked once here (`sono_sip::message`); a malformed request is answered
//! 400/416/505 statelessly, anything unanswerable is dropped, and both are
//! counted. A message whose Call-ID belongs to a call goes to that call's
//! actor; what no call owns is answered here: OPTIONS 200 (keep-alive probes
//! from proxies), INVITE 480 (inbound calls need a registered client), REGISTER
//! 405 (sono is no registrar), BYE/CANCEL/in-dialog requests 481, others 501.
//! Sending needs no actor: [`SipSocket`] is shared and writes datagrams directly.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use bytes::BytesMut;
use sono_sip::message::{error_response, parse, Received};
use sono_sip::outbound_call::random_token;
use sono_sip::response::{response_text, ALLOW};
use tokio::net::UdpSocket;
use tokio_util::codec::BytesCodec;
use tokio_util::udp::UdpFramed;
use tracing::{debug, trace, warn};

use crate::metrics::Metrics;
use crate::Shared;

/// A received message for the call that owns its Call-ID.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SipInbound {
    pub message: Received,
    pub source: SocketAddr,
}

/// The bound SIP socket, shared by every actor that sends SIP.
#[derive(Debug, Clone)]
pub struct SipSocket {
    socket: Arc<UdpSocket>,
    /// `host:port` written in Via and Contact.
    advertised: String,
}

impl SipSocket {
    pub async fn bind(listen: SocketAddr, advertise: &str) -> io::Result<SipSocket> {
        let socket = UdpSocket::bind(listen).await?;
        let local = socket.local_addr()?;
        let advertised = if advertise.is_empty() {
            local.to_string()
        } else if advertise.contains(':') && !advertise.starts_with('[') {
            advertise.to_owned()
        } else {
            format!("{advertise}:{}", local.port())
        };
        Ok(SipSocket {
            socket: Arc::new(socket),
            advertised,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// Sends one datagram without waiting. A full socket buffer loses the
    /// datagram, as the network could: transactions retransmit.
    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        trace!(%to, message = %String::from_utf8_lossy(bytes), "SIP out");
        if let Err(e) = self.socket.try_send_to(bytes, to) {
            debug!(%to, error = %e, "SIP datagram not sent");
        }
    }
}

pub struct SipTransport {
    shared: Arc<Shared>,
    socket: SipSocket,
}

impl SipTransport {
    pub fn start(shared: Arc<Shared>, socket: SipSocket) -> Addr<SipTransport> {
        SipTransport::create(|ctx| {
            ctx.add_stream(UdpFramed::new(socket.socket.clone(), BytesCodec::new()));
            SipTransport { shared, socket }
        })
    }

    fn datagram(&mut self, bytes: &[u8], source: SocketAddr) {
        Metrics::add(&self.shared.metrics.sip_messages_received, 1);
        trace!(%source, message = %String::from_utf8_lossy(bytes), "SIP in");
        let message = match parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                Metrics::add(&self.shared.metrics.sip_messages_rejected, 1);
                debug!(%source, error = %e, "SIP message refused");
                if let Some(answer) = error_response(bytes, &e, source, &random_token()) {
                    self.socket.send(source, &answer);
                }
                return;
            }
        };
        if let Some(call) = self.shared.directory.call(&message.call_id) {
            call.do_send(SipInbound { message, source });
            return;
        }
        self.unowned(message, source);
    }

    /// A message no call owns.
    fn unowned(&mut self, message: Received, source: SocketAddr) {
        if !message.is_request() {
            debug!(%source, call_id = %message.call_id, "SIP response for no call, dropped");
            return;
        }
        let method = message.cseq_method.as_str();
        let (code, reason, extra): (u16, &str, Vec<(&str, &str)>) = match method {
            "ACK" => return,
            "OPTIONS" => (
                200,
                "OK",
                vec![("Allow", ALLOW), ("Accept", "application/sdp")],
            ),
            _ if message.to_tag.is_some() => (481, "Call/Transaction Does Not Exist", vec![]),
            "BYE" | "CANCEL" => (481, "Call/Transaction Does Not Exist", vec![]),
            "INVITE" => (480, "Temporarily Unavailable", vec![]),
            "REGISTER" | "SUBSCRIBE" | "NOTIFY" | "MESSAGE" | "REFER" | "UPDATE" | "PRACK"
            | "INFO" | "PUBLISH" => (405, "Method Not Allowed", vec![("Allow", ALLOW)]),
            _ => (501, "Not Implemented", vec![("Allow", ALLOW)]),
        };
        let mut extra = extra;
        let server = self.shared.settings.sip.user_agent.clone();
        extra.push(("Server", &server));
        debug!(%source, method, code, "SIP request outside any call answered");
        let text = response_text(
            &message,
            source,
            code,
            reason,
            Some(&random_token()),
            &extra,
            None,
        );
        let to = message.top_via.response_address(source);
        self.socket.send(to, text.as_bytes());
    }
}

impl Actor for SipTransport {
    type Context = Context<Self>;
}

impl StreamHandler<Result<(BytesMut, SocketAddr), io::Error>> for SipTransport {
    fn handle(&mut self, item: Result<(BytesMut, SocketAddr), io::Error>, _: &mut Context<Self>) {
        match item {
            Ok((bytes, source)) => self.datagram(&bytes, source),
            // ICMP port unreachable and the like surface here on Linux; the
            // socket stays usable.
            Err(e) => debug!(error = %e, "SIP socket read error"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        warn!("the SIP socket closed");
    }
}
