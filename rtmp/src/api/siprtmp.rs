//! rtmplite siprtmp's client API (`siprtmp.py`), on sono's phone: one
//! call at a time, named by nothing.
//!
//! Connect to `rtmp://host/sip/<aor>` with the arguments `login`,
//! `passwd`, `display`, `rate`. Methods: `invite(dest, [codecs…])`,
//! `accept([codecs…])`, `reject(reason)`, `bye()`, `sendDTMF(digit)`,
//! `hold(bool)`. Callbacks: `ringing()`, `accepted(audioCodec,
//! videoCodec)`, `rejected(reason)`, `invited(dest, from)`,
//! `cancelled()`, `byed()`, `holded(bool)` (the peer's hold).

use super::{string_arg, ApiAdapter, ApiRequest, CallView, Invoke};
use crate::amf::AmfValue;
use crate::phone::{parse_dtmf, target_uri, CallStatus, PhoneError, PhoneEvent, PhoneRequest};

pub(super) fn parse(
    adapter: &mut ApiAdapter,
    name: &str,
    args: &[AmfValue],
) -> Option<Result<ApiRequest, PhoneError>> {
    let request = match name {
        "invite" => target_uri("invite", args.first()).map(|dest| PhoneRequest::Dial {
            uri: adapter.complete_uri(&dest, None),
            codec: None,
            // siprtmp's Flash client publishes its camera when it has one:
            // video follows from what it publishes (video.offer).
            video: false,
        }),
        "accept" => Ok(PhoneRequest::Accept { call: None }),
        "reject" => Ok(PhoneRequest::Reject {
            // A reason given as a SIP code is sent as that code.
            code: string_arg(args, 0)
                .and_then(|r| r.parse::<u16>().ok())
                .filter(|c| (400..=699).contains(c))
                .unwrap_or(603),
            call: None,
        }),
        "bye" => Ok(PhoneRequest::Hangup { call: None }),
        "sendDTMF" => parse_dtmf(&args[..args.len().min(1)]),
        "hold" => Ok(PhoneRequest::Hold {
            held: !matches!(args.first(), Some(AmfValue::Boolean(false))),
            call: None,
        }),
        _ => return None,
    };
    Some(request.map(ApiRequest::Phone))
}

pub(super) fn render(
    adapter: &mut ApiAdapter,
    event: &PhoneEvent,
    view: Option<&CallView>,
) -> Vec<Invoke> {
    let inbound = view.is_some_and(|v| v.inbound);
    let answered = view.is_some_and(|v| v.answered);
    match event {
        PhoneEvent::CallStatus {
            status,
            sip_code,
            reason,
        } => match status {
            CallStatus::InProgress if matches!(sip_code, Some(180 | 183)) && !inbound => {
                vec![Invoke::new("ringing", vec![])]
            }
            CallStatus::Connected if !inbound => {
                vec![Invoke::new(
                    "accepted",
                    vec!["speex".into(), AmfValue::Null],
                )]
            }
            CallStatus::NotConnected if answered => vec![Invoke::new("byed", vec![])],
            CallStatus::NotConnected if inbound => vec![Invoke::new("cancelled", vec![])],
            CallStatus::NotConnected => {
                let why = match (sip_code, reason) {
                    (Some(c), Some(r)) => format!("{c} {r}"),
                    (Some(c), None) => c.to_string(),
                    (None, Some(r)) => r.clone(),
                    (None, None) => "failed".into(),
                };
                vec![Invoke::new("rejected", vec![why.into()])]
            }
            _ => Vec::new(),
        },
        PhoneEvent::CallIncoming { uri, .. } => vec![Invoke::new(
            "invited",
            vec![adapter.aor().into(), uri.as_str().into()],
        )],
        PhoneEvent::Held {
            held,
            by_peer: true,
        } => vec![Invoke::new("holded", vec![AmfValue::Boolean(*held)])],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientApi;

    #[test]
    fn invite_and_its_callbacks() {
        let mut a = ApiAdapter::new(ClientApi::Siprtmp, "example.com", "sip/alice@example.com");
        match a.parse("invite", &["bob@example.com".into(), "speex".into()]) {
            Some(Ok(ApiRequest::Phone(PhoneRequest::Dial { uri, .. }))) => {
                assert_eq!(uri, "sip:bob@example.com")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(a.parse("invite", &[]), Some(Err(_))));
        assert!(matches!(
            a.parse("hold", &[AmfValue::Boolean(false)]),
            Some(Ok(ApiRequest::Phone(PhoneRequest::Hold {
                held: false,
                ..
            })))
        ));
        let status = |status, sip_code: Option<u16>| PhoneEvent::CallStatus {
            status,
            sip_code,
            reason: Some("Busy Here".into()),
        };
        assert_eq!(
            a.render(&status(CallStatus::InProgress, Some(180)), Some(1))[0].name,
            "ringing"
        );
        assert_eq!(
            a.render(&status(CallStatus::NotConnected, Some(486)), Some(1))[0].args,
            vec![AmfValue::from("486 Busy Here")]
        );
        // An inbound call: invited, then the caller gives up: cancelled.
        let incoming = PhoneEvent::CallIncoming {
            uri: "sip:carol@example.com".into(),
            display_name: None,
        };
        let invited = a.render(&incoming, Some(2));
        assert_eq!(
            invited[0].args,
            vec![
                AmfValue::from("alice@example.com"),
                "sip:carol@example.com".into()
            ]
        );
        assert_eq!(
            a.render(&status(CallStatus::NotConnected, Some(487)), Some(2))[0].name,
            "cancelled"
        );
        // Answered, then over: byed.
        let _ = a.render(&incoming, Some(3));
        let _ = a.render(&status(CallStatus::Connected, Some(200)), Some(3));
        assert_eq!(
            a.render(&status(CallStatus::NotConnected, None), Some(3))[0].name,
            "byed"
        );
    }
}
