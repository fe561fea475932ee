//! The client APIs sono speaks over RTMP, chosen per application name
//! (`rtmp.app_apis`): sono's own (`phone`: onStatus events, see
//! [`crate::phone`]), FreeSWITCH mod_rtmp's ([`mod_rtmp`]) and rtmplite
//! siprtmp's ([`siprtmp`]), so clients written for those gateways work
//! unmodified. Each foreign API is translated here, sans-I/O, into sono's
//! phone requests, and sono's events into that API's callbacks (methods
//! the server invokes on the client's NetConnection).
//!
//! The translation keeps a little state per call (ringing, answered, who
//! placed it), because the foreign callbacks distinguish what sono's
//! `Sono.Call.Status` says with one code (siprtmp's `rejected`,
//! `cancelled` and `byed` are all status 0).

pub mod mod_rtmp;
pub mod siprtmp;

use std::collections::HashMap;

use crate::amf::AmfValue;
use crate::phone::{CallId, PhoneError, PhoneEvent, PhoneRequest};

/// Which API a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientApi {
    /// sono's own (and SEMS' RTMP gateway's): onStatus events.
    #[default]
    Sono,
    /// FreeSWITCH mod_rtmp (its Flex client `freeswitch.mxml`).
    ModRtmp,
    /// rtmplite's siprtmp.
    Siprtmp,
}

impl ClientApi {
    /// `"sono"`, `"mod_rtmp"` or `"siprtmp"`.
    pub fn parse(name: &str) -> Option<ClientApi> {
        match name {
            "sono" => Some(ClientApi::Sono),
            "mod_rtmp" => Some(ClientApi::ModRtmp),
            "siprtmp" => Some(ClientApi::Siprtmp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientApi::Sono => "sono",
            ClientApi::ModRtmp => "mod_rtmp",
            ClientApi::Siprtmp => "siprtmp",
        }
    }
}

/// A foreign API's request, in sono's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    Phone(PhoneRequest),
    /// mod_rtmp `login(user@domain, md5(session:user@domain:password))`:
    /// the owner checks it against its accounts and answers
    /// [`ApiAdapter::login_result`].
    Login {
        user: String,
        domain: String,
        digest: String,
    },
    /// mod_rtmp `logout`.
    Logout,
    /// mod_rtmp `log(text)`: a line for the server's log.
    Log(String),
    /// A method with nothing for sono to do (mod_rtmp `sendevent`).
    Ignored,
}

/// A method the server invokes on the client (`NetConnection.client`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invoke {
    pub name: &'static str,
    pub args: Vec<AmfValue>,
}

impl Invoke {
    fn new(name: &'static str, args: Vec<AmfValue>) -> Invoke {
        Invoke { name, args }
    }
}

/// What the adapter knows of one call.
#[derive(Debug, Clone, Default)]
struct CallView {
    inbound: bool,
    ringing: bool,
    answered: bool,
    /// Whether the API's "call placed" callback was sent.
    announced: bool,
}

/// One connection's translation, both ways.
#[derive(Debug, Default)]
pub struct ApiAdapter {
    api: ClientApi,
    /// Where a number without a domain is dialled (`sip.domain`).
    domain: String,
    /// siprtmp: the AOR of the connect URL (`rtmp://host/sip/<aor>`).
    aor: String,
    calls: HashMap<CallId, CallView>,
    /// mod_rtmp: the number and account of the last makeCall, for its
    /// `onMakeCall` once the call has an id.
    making: Option<(String, String)>,
    logged_in: Option<(String, String)>,
    /// mod_rtmp's `auth-calls`: makeCall only once logged in.
    login_required: bool,
}

impl ApiAdapter {
    /// `domain` completes numbers into SIP URIs; `app` is the connect
    /// application (siprtmp's carries the AOR after `sip/`).
    pub fn new(api: ClientApi, domain: &str, app: &str) -> ApiAdapter {
        ApiAdapter {
            api,
            domain: domain.to_owned(),
            aor: app.split_once('/').map_or("", |(_, aor)| aor).to_owned(),
            ..ApiAdapter::default()
        }
    }

    /// Calls need a login first (mod_rtmp's `auth-calls`).
    pub fn with_login_required(mut self, required: bool) -> ApiAdapter {
        self.login_required = required;
        self
    }

    pub fn api(&self) -> ClientApi {
        self.api
    }

    /// The AOR of a siprtmp connect URL (empty otherwise).
    pub fn aor(&self) -> &str {
        &self.aor
    }

    /// The account logged in with mod_rtmp's `login`, if any.
    pub fn logged_in(&self) -> Option<&(String, String)> {
        self.logged_in.as_ref()
    }

    /// Parses a method of this API; `None` if it has no such method (the
    /// client then gets Flash's `NetConnection.Call.Failed`).
    pub fn parse(
        &mut self,
        name: &str,
        args: &[AmfValue],
    ) -> Option<Result<ApiRequest, PhoneError>> {
        match self.api {
            ClientApi::Sono => {
                crate::phone::parse_request(name, args).map(|r| r.map(ApiRequest::Phone))
            }
            ClientApi::ModRtmp => mod_rtmp::parse(self, name, args),
            ClientApi::Siprtmp => siprtmp::parse(self, name, args),
        }
    }

    /// What the client is told once connected.
    pub fn connected(&self, session_id: &str) -> Vec<Invoke> {
        match self.api {
            ClientApi::ModRtmp => vec![Invoke::new("connected", vec![session_id.into()])],
            _ => Vec::new(),
        }
    }

    /// The answer to a `login`: `onLogin`, and the account is kept when it
    /// succeeded.
    pub fn login_result(&mut self, user: &str, domain: &str, ok: bool) -> Vec<Invoke> {
        if ok {
            self.logged_in = Some((user.to_owned(), domain.to_owned()));
        }
        let outcome = if ok { "success" } else { "failure" };
        vec![Invoke::new(
            "onLogin",
            vec![outcome.into(), user.into(), domain.into()],
        )]
    }

    /// The answer to a `logout`.
    pub fn logout_result(&mut self) -> Vec<Invoke> {
        let (user, domain) = self.logged_in.take().unwrap_or_default();
        vec![Invoke::new("onLogout", vec![user.into(), domain.into()])]
    }

    /// sono's event about `call`, as this API's callbacks (none for sono's
    /// own API: the owner sends it as onStatus).
    pub fn render(&mut self, event: &PhoneEvent, call: Option<CallId>) -> Vec<Invoke> {
        if let (Some(id), PhoneEvent::CallIncoming { .. }) = (call, event) {
            self.calls.insert(
                id,
                CallView {
                    inbound: true,
                    ringing: true,
                    ..CallView::default()
                },
            );
        }
        let view = call.map(|id| self.calls.entry(id).or_default().clone());
        let out = match self.api {
            ClientApi::Sono => Vec::new(),
            ClientApi::ModRtmp => mod_rtmp::render(self, event, call, view.as_ref()),
            ClientApi::Siprtmp => siprtmp::render(self, event, view.as_ref()),
        };
        if let (Some(id), PhoneEvent::CallStatus { status, .. }) = (call, event) {
            use crate::phone::CallStatus;
            let ended = *status == CallStatus::NotConnected;
            if let Some(view) = self.calls.get_mut(&id) {
                view.announced = true;
                if matches!(status, CallStatus::Connected | CallStatus::ConnectStreams) {
                    view.answered = true;
                    view.ringing = false;
                }
            }
            if ended {
                self.calls.remove(&id);
            }
        }
        out
    }

    /// Whether call `id` rings (an inbound call not yet answered).
    fn ringing(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.ringing)
    }

    /// The one ringing call, if any.
    fn ringing_call(&self) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, c)| c.ringing)
            .map(|(id, _)| *id)
    }

    /// `target` as a SIP URI: as it is when it is one, `sip:` added to
    /// `user@host`, and a bare number dialled at `domain` (or sono's).
    fn complete_uri(&self, target: &str, domain: Option<&str>) -> String {
        let t = target.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            t.to_owned()
        } else if t.contains('@') {
            format!("sip:{t}")
        } else {
            format!("sip:{t}@{}", domain.unwrap_or(&self.domain))
        }
    }
}

/// A call id as the foreign APIs write it (a string, as their uuids are).
fn uuid(call: Option<CallId>) -> AmfValue {
    call.map_or(AmfValue::from(""), |id| AmfValue::from(id.to_string()))
}

/// The string at `args[at]`, if it is one (and not empty).
fn string_arg(args: &[AmfValue], at: usize) -> Option<String> {
    match args.get(at) {
        Some(AmfValue::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_uris_at_the_domain() {
        let a = ApiAdapter::new(ClientApi::ModRtmp, "example.com", "freeswitch");
        assert_eq!(a.complete_uri("1000", None), "sip:1000@example.com");
        assert_eq!(
            a.complete_uri("1000", Some("pbx.test")),
            "sip:1000@pbx.test"
        );
        assert_eq!(a.complete_uri("bob@h", None), "sip:bob@h");
        assert_eq!(a.complete_uri("sip:bob@h", None), "sip:bob@h");
        let s = ApiAdapter::new(ClientApi::Siprtmp, "example.com", "sip/alice@example.com");
        assert_eq!(s.aor(), "alice@example.com");
        assert_eq!(ClientApi::parse("mod_rtmp"), Some(ClientApi::ModRtmp));
        assert_eq!(ClientApi::parse("x"), None);
    }
}
