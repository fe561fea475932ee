//! The RTMP connection's side of the foreign client APIs (mod_rtmp,
//! siprtmp; see `sono_rtmp::api`): the API the connect's application
//! speaks (`rtmp.app_apis`), mod_rtmp's `connected(session)` and its
//! challenge login against `rtmp.accounts`, and siprtmp's registration
//! from its connect URL. The calls themselves go to the phone as sono's
//! own requests; their events come back through the same adapter.

use actix::prelude::*;
use sono_rtmp::api::{mod_rtmp, ApiAdapter, ApiRequest, ClientApi};
use sono_rtmp::{AmfValue, ConnectRequest, PhoneRequest, RegisterRequest};
use tracing::{info, warn};

use super::RtmpConnection;
use crate::client_session::FromClient;

impl RtmpConnection {
    /// Sets the API `req`'s application speaks, before the connect is
    /// accepted.
    pub(super) fn choose_api(&mut self, req: &ConnectRequest) {
        let api = self.shared.settings.rtmp.api_of(&req.app);
        let domain = &self.shared.settings.sip.domain;
        let login_required = !self.shared.settings.rtmp.accounts.is_empty();
        self.session
            .set_api(ApiAdapter::new(api, domain, &req.app).with_login_required(login_required));
        if api != ClientApi::Sono {
            info!(conn = self.id, api = api.name(), app = %req.app, "the client speaks a foreign API");
        }
    }

    /// What a foreign API does once the connect is accepted: mod_rtmp
    /// tells the client its session id (the login challenge), siprtmp
    /// registers the connect URL's AOR.
    pub(super) fn api_connected(&mut self, _: &mut Context<Self>, req: &ConnectRequest) {
        match self.session.api().api() {
            ClientApi::Sono => {}
            ClientApi::ModRtmp => {
                let session = self.api_session.clone();
                self.session.api_connected(&session);
            }
            ClientApi::Siprtmp => {
                let register = siprtmp_registration(self.session.api().aor(), &req.arguments);
                self.tell_phone(FromClient::Phone {
                    txn: 0.0,
                    request: PhoneRequest::Register(register),
                });
            }
        }
    }

    /// A foreign API's own request (not a phone request).
    pub(super) fn api_request(&mut self, txn: f64, request: ApiRequest) {
        match request {
            ApiRequest::Login {
                user,
                domain,
                digest,
            } => {
                let account = format!("{user}@{domain}");
                let ok = self
                    .shared
                    .settings
                    .rtmp
                    .accounts
                    .get(&account)
                    .is_some_and(|password| {
                        mod_rtmp::login_matches(
                            &self.api_session,
                            &user,
                            &domain,
                            password.expose(),
                            &digest,
                        )
                    });
                if ok {
                    info!(conn = self.id, %account, "mod_rtmp login");
                } else {
                    warn!(conn = self.id, %account, "mod_rtmp login refused");
                }
                self.session.answer_result(txn, AmfValue::Boolean(ok));
                self.session.login_result(&user, &domain, ok);
            }
            ApiRequest::Logout => {
                self.session.answer_result(txn, AmfValue::Null);
                self.session.logout_result();
            }
            ApiRequest::Log(text) => {
                info!(conn = self.id, client = %text, "client log");
                self.session.answer_result(txn, AmfValue::Null);
            }
            ApiRequest::Ignored | ApiRequest::Phone(_) => {
                self.session.answer_result(txn, AmfValue::Null)
            }
        }
    }
}

/// siprtmp's registration: the AOR of `rtmp://host/sip/<aor>` with the
/// connect arguments `login`, `passwd`, `display` registered at its
/// registrar (which `sip.registrars` must allow); without a password, an
/// implicit URI at sono.
fn siprtmp_registration(aor: &str, arguments: &[AmfValue]) -> RegisterRequest {
    let text = |at: usize| match arguments.get(at) {
        Some(AmfValue::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let (login, password, display) = (text(0), text(1), text(2));
    let aor = aor.trim_start_matches("sip:");
    match (aor.split_once('@'), password) {
        (Some((user, domain)), Some(password)) => RegisterRequest {
            user: Some(user.to_owned()),
            domain: Some(domain.to_owned()),
            auth_user: login,
            password: Some(password),
            display_name: display,
        },
        _ => RegisterRequest::default(),
    }
}
