//! FreeSWITCH mod_rtmp's client API (its `rtmp_sig.c` handlers and the
//! callbacks of `rtmp.c`, as its Flex client `freeswitch.mxml` uses
//! them), on sono's phone. Calls are named by uuid strings: sono's call
//! ids written as strings.
//!
//! Methods: `login(user@domain, md5(session:user@domain:password))`,
//! `logout`, `makeCall(number, [account], [vars])`, `answer([uuid])`,
//! `attach([uuid])` (a call becomes the active one: a ringing one is
//! answered, a held one resumed; none: the active call is held),
//! `hangup([uuid], [cause])`, `sendDTMF(digits, [duration])`,
//! `register([account], [nickname])`, `unregister`, `transfer(uuid, dest)`,
//! `three_way(uuid1, uuid2)`, `join(uuid1, uuid2)`, `sendevent`, `log`.
//!
//! Callbacks: `connected(session)`, `onLogin(result, user, domain)`,
//! `onLogout`, `onMakeCall(uuid, number, account)`,
//! `incomingCall(uuid, cid_name, cid_number, account, vars)`,
//! `callState(uuid, state)` (FreeSWITCH's call states: DIALING, RINGING,
//! EARLY, ACTIVE, HELD, HANGUP), `displayUpdate(uuid, name, number)`,
//! `onAttach(uuid)`, `onHangup(uuid, cause)` (Q.850 cause names from the
//! SIP code, RFC 3398 §8.2.6.1), `event(object)` for the rest.

use super::{string_arg, uuid, ApiAdapter, ApiRequest, CallView, Invoke};
use crate::amf::AmfValue;
use crate::phone::{
    call_arg, code, parse_dtmf, target_uri, CallId, CallStatus, PhoneError, PhoneEvent,
    PhoneRequest,
};

pub(super) fn parse(
    adapter: &mut ApiAdapter,
    name: &str,
    args: &[AmfValue],
) -> Option<Result<ApiRequest, PhoneError>> {
    let phone = |r: Result<PhoneRequest, PhoneError>| Some(r.map(ApiRequest::Phone));
    match name {
        "login" => Some(login(args)),
        "logout" => Some(Ok(ApiRequest::Logout)),
        "makeCall" => Some(make_call(adapter, args)),
        "answer" => phone(call_arg(args, 0).map(|call| PhoneRequest::Accept { call })),
        "attach" => phone(attach(adapter, args)),
        "hangup" => phone(hangup(adapter, args)),
        // sendDTMF(digits, duration): the duration is the peer's business.
        "sendDTMF" => phone(parse_dtmf(&args[..args.len().min(1)])),
        "register" => phone(Ok(PhoneRequest::Register(Default::default()))),
        "unregister" => phone(Ok(PhoneRequest::Unregister)),
        "transfer" => phone(call_arg(args, 0).and_then(|call| {
            let dest = target_uri("transfer", args.get(1))?;
            Ok(PhoneRequest::Transfer {
                uri: adapter.complete_uri(&dest, None),
                call,
            })
        })),
        "three_way" | "join" => phone(call_arg(args, 0).and_then(|a| {
            let b = call_arg(args, 1)?;
            Ok(if name == "join" {
                PhoneRequest::Join { a, b }
            } else {
                PhoneRequest::ThreeWay { a, b }
            })
        })),
        "sendevent" => Some(Ok(ApiRequest::Ignored)),
        "log" => Some(Ok(ApiRequest::Log(
            string_arg(args, 0)
                .unwrap_or_default()
                .chars()
                .take(512)
                .collect(),
        ))),
        _ => None,
    }
}

fn login(args: &[AmfValue]) -> Result<ApiRequest, PhoneError> {
    let (Some(account), Some(digest)) = (string_arg(args, 0), string_arg(args, 1)) else {
        return Err(PhoneError::new(
            code::REGISTRATION_FAILED,
            "login takes user@domain and the md5 of session:user@domain:password",
        ));
    };
    let (user, domain) = account.split_once('@').unwrap_or((account.as_str(), ""));
    Ok(ApiRequest::Login {
        user: user.to_owned(),
        domain: domain.to_owned(),
        digest: digest.to_ascii_lowercase(),
    })
}

fn make_call(adapter: &mut ApiAdapter, args: &[AmfValue]) -> Result<ApiRequest, PhoneError> {
    let number = target_uri("makeCall", args.first())?;
    if adapter.login_required && adapter.logged_in().is_none() {
        return Err(PhoneError::new(
            code::CALL_FORBIDDEN,
            "makeCall needs a login first (rtmp.accounts is set)",
        ));
    }
    let account = string_arg(args, 1)
        .or_else(|| {
            adapter
                .logged_in()
                .map(|(user, domain)| format!("{user}@{domain}"))
        })
        .unwrap_or_default();
    let domain = account.split_once('@').map(|(_, d)| d.to_owned());
    let uri = adapter.complete_uri(&number, domain.as_deref().filter(|d| !d.is_empty()));
    adapter.making = Some((number, account));
    // mod_rtmp's third argument: `{wantVideo: true}` asks for a video call.
    let video = args
        .get(2)
        .and_then(AmfValue::properties)
        .and_then(|p| p.iter().find(|(k, _)| k == "wantVideo"))
        .is_some_and(|(_, v)| matches!(v, AmfValue::Boolean(true)));
    Ok(ApiRequest::Phone(PhoneRequest::Dial {
        uri,
        codec: None,
        video,
    }))
}

/// `attach(uuid)`: that call becomes the active one; `attach()` holds the
/// active call (mod_rtmp detaches it and puts it on hold).
fn attach(adapter: &ApiAdapter, args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    Ok(match call_arg(args, 0)? {
        None => PhoneRequest::Hold {
            held: true,
            call: None,
        },
        Some(id) if adapter.ringing(id) => PhoneRequest::Accept { call: Some(id) },
        Some(id) => PhoneRequest::Hold {
            held: false,
            call: Some(id),
        },
    })
}

/// `hangup([uuid], [cause])`: a ringing call is refused with the SIP code
/// of the cause (busy 486, else 603), any other hung up.
fn hangup(adapter: &ApiAdapter, args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    let call = call_arg(args, 0)?;
    let ringing = match call {
        Some(id) => adapter.ringing(id).then_some(id),
        None => adapter.ringing_call().filter(|_| adapter.calls.len() == 1),
    };
    let Some(id) = ringing else {
        return Ok(PhoneRequest::Hangup { call });
    };
    let busy = match args.get(1) {
        Some(AmfValue::Number(n)) => *n == 17.0,
        Some(AmfValue::String(s)) => s == "USER_BUSY" || s == "17",
        _ => false,
    };
    Ok(PhoneRequest::Reject {
        code: if busy { 486 } else { 603 },
        call: Some(id),
    })
}

pub(super) fn render(
    adapter: &mut ApiAdapter,
    event: &PhoneEvent,
    call: Option<CallId>,
    view: Option<&CallView>,
) -> Vec<Invoke> {
    let id = uuid(call);
    let state = |s: &str| Invoke::new("callState", vec![id.clone(), s.into()]);
    match event {
        PhoneEvent::CallStatus {
            status, sip_code, ..
        } => {
            let mut out = Vec::new();
            let fresh = view.is_some_and(|v| !v.announced && !v.inbound);
            if fresh {
                if let Some((number, account)) = adapter.making.take() {
                    out.push(Invoke::new(
                        "onMakeCall",
                        vec![id.clone(), number.into(), account.into()],
                    ));
                }
            }
            match status {
                CallStatus::InProgress => out.push(state(match sip_code {
                    Some(180) => "RINGING",
                    Some(183) => "EARLY",
                    _ => "DIALING",
                })),
                CallStatus::Connected => out.push(state("ACTIVE")),
                CallStatus::ConnectStreams => {
                    out.push(Invoke::new("onAttach", vec![id.clone()]));
                }
                CallStatus::Disconnecting => {}
                CallStatus::NotConnected => {
                    out.push(state("HANGUP"));
                    out.push(Invoke::new(
                        "onHangup",
                        vec![id.clone(), q850_cause(*sip_code).into()],
                    ));
                }
            }
            out
        }
        PhoneEvent::CallIncoming { uri, display_name } => {
            let number = user_of(uri);
            let name = display_name.clone().unwrap_or_else(|| number.clone());
            vec![
                Invoke::new(
                    "incomingCall",
                    vec![
                        id.clone(),
                        name.as_str().into(),
                        number.as_str().into(),
                        account_of(adapter).into(),
                        AmfValue::object([("sip_from_uri", AmfValue::from(uri.as_str()))]),
                    ],
                ),
                state("RINGING"),
                Invoke::new("displayUpdate", vec![id, name.into(), number.into()]),
            ]
        }
        PhoneEvent::Held { held, .. } => vec![state(if *held { "HELD" } else { "ACTIVE" })],
        other => vec![Invoke::new("event", vec![other.info_on(call)])],
    }
}

/// Whether `digest` is mod_rtmp's login proof for `user@domain` with
/// `password` in `session`: md5 of `session:user@domain:password`, in hex.
/// The password never travels; a digest from another session is useless.
pub fn login_matches(
    session: &str,
    user: &str,
    domain: &str,
    password: &str,
    digest: &str,
) -> bool {
    use md5::{Digest, Md5};
    let expected = Md5::digest(format!("{session}:{user}@{domain}:{password}").as_bytes());
    let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    // Same length and no early exit: the comparison's time says nothing.
    hex.len() == digest.len()
        && hex
            .bytes()
            .zip(digest.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The account a call comes to: the logged-in one, else none.
fn account_of(adapter: &ApiAdapter) -> String {
    adapter
        .logged_in()
        .map(|(u, d)| format!("{u}@{d}"))
        .unwrap_or_default()
}

/// The user part of a SIP URI (the caller's number).
fn user_of(uri: &str) -> String {
    let rest = uri
        .trim()
        .trim_start_matches("sips:")
        .trim_start_matches("sip:");
    rest.split(['@', ';', '>'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// FreeSWITCH's hangup cause for the SIP code that ended a call (RFC 3398
/// §8.2.6.1's table, as FreeSWITCH applies it); no code: a normal end.
pub fn q850_cause(sip_code: Option<u16>) -> &'static str {
    match sip_code {
        None | Some(200) => "NORMAL_CLEARING",
        Some(401 | 402 | 403 | 407 | 603) => "CALL_REJECTED",
        Some(404 | 604) => "UNALLOCATED_NUMBER",
        Some(408 | 504) => "RECOVERY_ON_TIMER_EXPIRE",
        Some(410) => "NUMBER_CHANGED",
        Some(480) => "NO_USER_RESPONSE",
        Some(484) => "INVALID_NUMBER_FORMAT",
        Some(486 | 600) => "USER_BUSY",
        Some(487) => "ORIGINATOR_CANCEL",
        Some(488 | 606) => "INCOMPATIBLE_DESTINATION",
        Some(502) => "NETWORK_OUT_OF_ORDER",
        Some(405 | 406 | 501) => "SERVICE_UNAVAILABLE",
        Some(400..=499) => "NORMAL_TEMPORARY_FAILURE",
        Some(_) => "NORMAL_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientApi;

    fn adapter() -> ApiAdapter {
        ApiAdapter::new(ClientApi::ModRtmp, "example.com", "freeswitch")
    }

    fn phone(a: &mut ApiAdapter, name: &str, args: Vec<AmfValue>) -> PhoneRequest {
        match a.parse(name, &args) {
            Some(Ok(ApiRequest::Phone(p))) => p,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn methods_map_onto_the_phone() {
        let mut a = adapter();
        assert_eq!(
            phone(
                &mut a,
                "makeCall",
                vec![
                    "1000".into(),
                    "alice@pbx.test".into(),
                    AmfValue::object([("wantVideo", AmfValue::Boolean(false))])
                ]
            ),
            PhoneRequest::Dial {
                uri: "sip:1000@pbx.test".into(),
                codec: None,
                video: false
            }
        );
        assert_eq!(
            phone(&mut a, "attach", vec![]),
            PhoneRequest::Hold {
                held: true,
                call: None
            }
        );
        assert_eq!(
            phone(&mut a, "attach", vec!["2".into()]),
            PhoneRequest::Hold {
                held: false,
                call: Some(2)
            }
        );
        assert_eq!(
            phone(&mut a, "transfer", vec!["1".into(), "2000".into()]),
            PhoneRequest::Transfer {
                uri: "sip:2000@example.com".into(),
                call: Some(1)
            }
        );
        assert_eq!(
            phone(&mut a, "three_way", vec!["1".into(), "2".into()]),
            PhoneRequest::ThreeWay {
                a: Some(1),
                b: Some(2)
            }
        );
        match a.parse("login", &["alice@example.com".into(), "ABCDEF".into()]) {
            Some(Ok(ApiRequest::Login {
                user,
                domain,
                digest,
            })) => {
                assert_eq!(
                    (user.as_str(), domain.as_str(), digest.as_str()),
                    ("alice", "example.com", "abcdef")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(a.parse("login", &[]), Some(Err(_))));
        assert!(matches!(
            a.parse("makeCall", &[AmfValue::Number(5.0)]),
            Some(Err(_))
        ));
        assert!(matches!(a.parse("answer", &["x".into()]), Some(Err(_))));
        assert!(
            a.parse("dial", &[]).is_none(),
            "sono's own names are not mod_rtmp's"
        );
    }

    #[test]
    fn a_ringing_call_is_answered_by_attach_and_refused_by_hangup() {
        let mut a = adapter();
        let incoming = PhoneEvent::CallIncoming {
            uri: "sip:1001@example.com".into(),
            display_name: Some("Bob".into()),
        };
        let out = a.render(&incoming, Some(3));
        assert_eq!(out[0].name, "incomingCall");
        assert_eq!(out[0].args[0], AmfValue::from("3"));
        assert_eq!(out[0].args[1], AmfValue::from("Bob"));
        assert_eq!(out[0].args[2], AmfValue::from("1001"));
        assert_eq!(
            phone(&mut a, "attach", vec!["3".into()]),
            PhoneRequest::Accept { call: Some(3) }
        );
        assert_eq!(
            phone(&mut a, "hangup", vec!["3".into(), "USER_BUSY".into()]),
            PhoneRequest::Reject {
                code: 486,
                call: Some(3)
            }
        );
        assert_eq!(
            phone(&mut a, "hangup", vec![]),
            PhoneRequest::Reject {
                code: 603,
                call: Some(3)
            }
        );
    }

    #[test]
    fn the_login_proof_is_md5_of_session_account_and_password() {
        // md5("s1:alice@example.com:secret") from coreutils' md5sum.
        let digest = "df6c3ec7edeec949510e83b0e450ae96";
        assert!(login_matches(
            "s1",
            "alice",
            "example.com",
            "secret",
            digest
        ));
        assert!(!login_matches(
            "s2",
            "alice",
            "example.com",
            "secret",
            digest
        ));
        assert!(!login_matches(
            "s1",
            "alice",
            "example.com",
            "wrong",
            digest
        ));
        assert!(!login_matches("s1", "alice", "example.com", "secret", ""));
    }

    #[test]
    fn statuses_become_call_states_and_hangup_causes() {
        let mut a = adapter();
        let _ = a.parse("makeCall", &["1000".into()]);
        let status = |status, sip_code| PhoneEvent::CallStatus {
            status,
            sip_code,
            reason: None,
        };
        let first = a.render(&status(CallStatus::InProgress, None), Some(1));
        assert_eq!(first[0].name, "onMakeCall");
        assert_eq!(
            first[0].args,
            vec![AmfValue::from("1"), "1000".into(), "".into()]
        );
        assert_eq!(first[1].args[1], AmfValue::from("DIALING"));
        let ringing = a.render(&status(CallStatus::InProgress, Some(180)), Some(1));
        assert_eq!(ringing.len(), 1, "onMakeCall only once");
        assert_eq!(ringing[0].args[1], AmfValue::from("RINGING"));
        let end = a.render(&status(CallStatus::NotConnected, Some(486)), Some(1));
        assert_eq!(end[1].name, "onHangup");
        assert_eq!(end[1].args[1], AmfValue::from("USER_BUSY"));
        assert_eq!(q850_cause(None), "NORMAL_CLEARING");
        assert_eq!(q850_cause(Some(404)), "UNALLOCATED_NUMBER");
    }
}
