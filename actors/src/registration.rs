//! `Registration`: one client's binding at a registrar, on the client's
//! arbiter. It owns the sans-I/O registration core, feeds it the responses
//! `SipTransport` routes here by Call-ID and its deadlines, writes what it
//! produces to the SIP socket, and tells the client's connection every
//! change. `Unregister` (the client went away, registered elsewhere, or
//! sono is stopping) removes the binding with Expires: 0; the actor stops
//! once the registrar has answered or the attempt timed out.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use sono_sip::registration::{Registration as Binding, RegistrationConfig, RegistrationEvent};
use tracing::{info, warn};

use crate::directory::ConnectionId;
use crate::sip_stream::Sender;
use crate::sip_transport::{SipInbound, SipUnreachable};
use crate::Shared;

/// A change of the binding, for the connection.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RegistrationNotice {
    pub event: RegistrationEvent,
    /// The address of record the binding is for.
    pub aor: String,
}

/// Remove the binding and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister;

pub struct Registration {
    conn: ConnectionId,
    shared: Arc<Shared>,
    connection: Recipient<RegistrationNotice>,
    config: Option<RegistrationConfig>,
    /// A registrar host name to resolve before the first REGISTER.
    resolve: Option<(String, u16)>,
    aor: String,
    core: Option<Binding>,
    timer: Option<SpawnHandle>,
    /// The registrar's host as its URI names it: the name its TLS
    /// certificate must carry.
    peer_name: Option<String>,
}

impl Registration {
    /// Starts the registration; `resolve` names a registrar host whose
    /// address (A/AAAA) becomes the next hop first.
    pub fn start(
        conn: ConnectionId,
        shared: Arc<Shared>,
        connection: Recipient<RegistrationNotice>,
        config: RegistrationConfig,
        resolve: Option<(String, u16)>,
    ) -> Addr<Registration> {
        Registration {
            conn,
            shared,
            connection,
            resolve,
            aor: config.aor.clone(),
            peer_name: sono_sip::uri::SipUri::parse(&config.registrar_uri)
                .ok()
                .map(|u| u.host),
            config: Some(config),
            core: None,
            timer: None,
        }
        .start()
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(core) = &mut self.core else {
            return;
        };
        let transport = core.transport();
        while let Some(t) = core.poll_transmit() {
            let sender = Sender {
                peer_name: self.peer_name.clone(),
                report: Some(ctx.address().recipient()),
            };
            self.shared.sip.send_from(transport, t.to, &t.bytes, sender);
        }
        while let Some(event) = core.poll_event() {
            match &event {
                RegistrationEvent::Registered { expires, .. } => {
                    info!(conn = self.conn, aor = %self.aor, expires, "registered")
                }
                RegistrationEvent::Refused { code, reason } => {
                    warn!(conn = self.conn, aor = %self.aor, code, %reason, "registration refused")
                }
                RegistrationEvent::Retrying {
                    code,
                    reason,
                    retry_in,
                } => warn!(conn = self.conn, aor = %self.aor, ?code, %reason,
                           retry_in_ms = retry_in.as_millis() as u64, "registration failed; retrying"),
                RegistrationEvent::Unregistered => {
                    info!(conn = self.conn, aor = %self.aor, "unregistered")
                }
            }
            self.connection.do_send(RegistrationNotice {
                event,
                aor: self.aor.clone(),
            });
        }
        if let Some(h) = self.timer.take() {
            ctx.cancel_future(h);
        }
        if core.is_done() {
            ctx.stop();
            return;
        }
        if let Some(at) = core.poll_timeout() {
            let wait = at.saturating_duration_since(Instant::now());
            self.timer = Some(ctx.run_later(wait, |r, ctx| {
                r.timer = None;
                if let Some(core) = &mut r.core {
                    core.handle_timeout(Instant::now());
                }
                r.pump(ctx);
            }));
        }
    }
}

impl Registration {
    fn begin(&mut self, ctx: &mut Context<Self>) {
        let Some(config) = self.config.take() else {
            ctx.stop();
            return;
        };
        let core = Binding::new(config, Instant::now());
        self.shared
            .directory
            .add_call(core.call_id(), ctx.address().recipient());
        self.core = Some(core);
        self.pump(ctx);
    }
}

impl Actor for Registration {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared
            .metrics
            .registrations_active
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let Some((host, port)) = self.resolve.take() else {
            self.begin(ctx);
            return;
        };
        let lookup = async move {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))
                .and_then(|mut a| a.next().ok_or_else(|| format!("{host} has no address")))
        };
        ctx.spawn(lookup.into_actor(self).map(|result, r, ctx| match result {
            Ok(addr) => {
                if let Some(c) = &mut r.config {
                    c.next_hop = addr;
                }
                r.begin(ctx);
            }
            Err(reason) => {
                warn!(conn = r.conn, aor = %r.aor, %reason, "registrar unreachable");
                r.connection.do_send(RegistrationNotice {
                    event: RegistrationEvent::Refused { code: 503, reason },
                    aor: r.aor.clone(),
                });
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(core) = &self.core {
            self.shared.directory.remove_call(core.call_id());
        }
        self.shared
            .metrics
            .registrations_active
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Handler<SipInbound> for Registration {
    type Result = ();

    fn handle(&mut self, msg: SipInbound, ctx: &mut Context<Self>) {
        if let Some(core) = &mut self.core {
            core.handle_message(msg.message, msg.source, Instant::now());
        }
        self.pump(ctx);
    }
}

impl Handler<SipUnreachable> for Registration {
    type Result = ();

    fn handle(&mut self, msg: SipUnreachable, ctx: &mut Context<Self>) {
        if let Some(core) = &mut self.core {
            core.transport_failed(&msg.reason, Instant::now());
        }
        self.pump(ctx);
    }
}

impl Handler<Unregister> for Registration {
    type Result = ();

    fn handle(&mut self, _: Unregister, ctx: &mut Context<Self>) {
        if let Some(core) = &mut self.core {
            core.unregister(Instant::now());
        }
        self.pump(ctx);
    }
}
