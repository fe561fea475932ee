//! The Flash phone API (sono's wire contract, compatible with SEMS' RTMP gateway):
//! the methods a Flash client invokes with `NetConnection.call`, their argument
//! checks and named errors, and the `onStatus` events sono sends back.
//!
//! Everything here is pure data; the `RtmpConnection` actor decides what a valid
//! request does. docs/flash-api.md is the reference for client authors.

use crate::amf::AmfValue;

/// `_error` codes and `onStatus` codes of the phone API.
pub mod code {
    pub const CALL_NO_URI: &str = "Sono.Call.NoUri";
    pub const CALL_EXISTING: &str = "Sono.Call.Existing";
    pub const CALL_FAILED: &str = "Sono.Call.Failed";
    pub const CALL_FORBIDDEN: &str = "Sono.Call.Forbidden";
    /// `accept`, `reject` or `sendDTMF` with no call they could apply to.
    pub const CALL_NO_CALL: &str = "Sono.Call.NoCall";
    /// `reject` with a code that is not a SIP final error (400–699).
    pub const CALL_INVALID_CODE: &str = "Sono.Call.InvalidCode";
    pub const DTMF_INVALID: &str = "Sono.DTMF.Invalid";
    pub const REGISTRATION_FAILED: &str = "Sono.Registration.Failed";
    /// `unregister` with no registration at a registrar.
    pub const REGISTRATION_NONE: &str = "Sono.Registration.None";
    pub const CALL_STATUS: &str = "Sono.Call.Status";
    pub const CALL_INCOMING: &str = "Sono.Call.Incoming";
    pub const CALL_DTMF: &str = "Sono.Call.DTMF";
    /// The call was put on hold or taken off it, by the client or the peer.
    pub const CALL_HELD: &str = "Sono.Call.Held";
    /// The peer refused the client's hold or resume: nothing changed.
    pub const CALL_HOLD_FAILED: &str = "Sono.Call.HoldFailed";
    /// How the client's transfer of a call goes (the peer's REFER answer
    /// and NOTIFYs), or why `transfer`/`join` was refused.
    pub const CALL_TRANSFER: &str = "Sono.Call.Transfer";
    /// The peer asked sono to call someone else (its REFER): the new call.
    pub const CALL_REFERRED: &str = "Sono.Call.Referred";
    /// A three-way call began or ended.
    pub const CALL_THREE_WAY: &str = "Sono.Call.ThreeWay";
    pub const REGISTRATION_STATUS: &str = "Sono.Registration.Status";
    /// A connection closed (to REST event subscribers), or a request reached
    /// a connection that was closing.
    pub const CONNECTION_CLOSED: &str = "Sono.Connection.Closed";
    /// Sent to every client before sono closes its connection on shutdown.
    pub const SERVER_SHUTDOWN: &str = "Sono.Server.Shutdown";
    /// Flash's own code for a method the server does not have.
    pub const METHOD_NOT_FOUND: &str = "NetConnection.Call.Failed";
}

/// Longest DTMF string one `sendDTMF` may carry.
pub const MAX_DTMF_DIGITS: usize = 64;
/// Longest URI or register argument we accept, in bytes.
const MAX_ARGUMENT_LEN: usize = 1024;

/// What `reject` sends when the client gives no code.
pub const DEFAULT_REJECT_CODE: u16 = 603;

/// A valid phone API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneRequest {
    Dial {
        uri: String,
        /// `dial(uri, {codec: "PCMU"})`: the law a Flash Player 11 or AIR
        /// client will publish, offered first so the call passes it
        /// through (`Pcmu` or `Pcma`).
        codec: Option<crate::audio::AudioCodec>,
        /// `dial(uri, {video: true})`: offer H.264 video even before the
        /// client publishes any.
        video: bool,
    },
    /// `call`, in every request about one call: which of the connection's
    /// calls (its id, as `dial`'s answer and every event name it); `None`:
    /// the one the method means by default (the active call, the ringing one).
    Hangup {
        call: Option<CallId>,
    },
    Register(RegisterRequest),
    /// Removes the binding `register` made at a registrar.
    Unregister,
    Accept {
        call: Option<CallId>,
    },
    Reject {
        code: u16,
        call: Option<CallId>,
    },
    SendDtmf {
        digits: String,
        call: Option<CallId>,
    },
    /// `hold()` (true) or `unhold()` (false): the answered call is held
    /// with a re-INVITE (`a=sendonly`) or resumed.
    Hold {
        held: bool,
        call: Option<CallId>,
    },
    /// `transfer(uri, [call])` (or `transfer(call, uri)`): a blind
    /// transfer of the call's peer to `uri` (REFER, RFC 3515).
    Transfer {
        uri: String,
        call: Option<CallId>,
    },
    /// `join([a], [b])`: an attended transfer, a's peer is asked to call
    /// b's in b's place (REFER with Replaces, RFC 3891); both calls end
    /// when it succeeds. Without ids: the active call and the other one.
    Join {
        a: Option<CallId>,
        b: Option<CallId>,
    },
    /// `three_way([a], [b])`: the client and both calls' peers hear each
    /// other (mixed at 16 kHz); either peer leaving returns to a normal
    /// call. Without ids: the active call and the other one.
    ThreeWay {
        a: Option<CallId>,
        b: Option<CallId>,
    },
}

/// A call's id within its connection: 1, 2, 3… in the order calls began.
pub type CallId = u32;

/// The optional call id at `args[at]`: a whole number from 1, or one
/// written as a string (Flash text fields); null or absent is `None`.
pub(crate) fn call_arg(args: &[AmfValue], at: usize) -> Result<Option<CallId>, PhoneError> {
    let id = match args.get(at) {
        None => return Ok(None),
        Some(v) if v.is_nullish() => return Ok(None),
        Some(AmfValue::Number(n)) if n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(u32::MAX) => {
            Some(*n as CallId)
        }
        Some(AmfValue::String(s)) => s.trim().parse::<CallId>().ok().filter(|id| *id >= 1),
        Some(_) => None,
    };
    id.map(Some).ok_or_else(|| {
        PhoneError::new(
            code::CALL_NO_CALL,
            "a call id is a whole number from 1 (as dial's answer and the events give it)",
        )
    })
}

/// Refuses arguments beyond the `most` a method takes.
fn at_most(name: &str, args: &[AmfValue], most: usize) -> Result<(), PhoneError> {
    if args.len() > most {
        return Err(PhoneError::new(
            code::CALL_NO_CALL,
            format!(
                "{name} takes at most {most} argument(s), not {}",
                args.len()
            ),
        ));
    }
    Ok(())
}

/// The arguments of `register`, each optional. Its `Debug` hides the password,
/// so logging a request never leaks it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegisterRequest {
    pub user: Option<String>,
    pub domain: Option<String>,
    pub auth_user: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("auth_user", &self.auth_user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("display_name", &self.display_name)
            .finish()
    }
}

impl RegisterRequest {
    /// True when nothing was given: sono then attributes an implicit URI.
    pub fn is_implicit(&self) -> bool {
        self.user.is_none()
            && self.domain.is_none()
            && self.auth_user.is_none()
            && self.password.is_none()
    }
}

/// A refused request: the `_error` code and a human description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneError {
    pub code: &'static str,
    pub description: String,
}

impl PhoneError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        PhoneError {
            code,
            description: description.into(),
        }
    }
}

/// Parses a `NetConnection.call` into a phone request; `None` if `name` is not a
/// phone method at all.
pub fn parse_request(name: &str, args: &[AmfValue]) -> Option<Result<PhoneRequest, PhoneError>> {
    Some(match name {
        "dial" => parse_dial(args),
        "hangup" => at_most(name, args, 1)
            .and_then(|()| call_arg(args, 0))
            .map(|call| PhoneRequest::Hangup { call }),
        "accept" => at_most(name, args, 1)
            .and_then(|()| call_arg(args, 0))
            .map(|call| PhoneRequest::Accept { call }),
        "reject" => parse_reject(args),
        "sendDTMF" => parse_dtmf(args),
        "register" => parse_register(args),
        "unregister" => Ok(PhoneRequest::Unregister),
        "transfer" => parse_transfer(args),
        "join" => at_most(name, args, 2).and_then(|()| {
            Ok(PhoneRequest::Join {
                a: call_arg(args, 0)?,
                b: call_arg(args, 1)?,
            })
        }),
        "three_way" => at_most(name, args, 2).and_then(|()| {
            Ok(PhoneRequest::ThreeWay {
                a: call_arg(args, 0)?,
                b: call_arg(args, 1)?,
            })
        }),
        "hold" | "unhold" => at_most(name, args, 1)
            .and_then(|()| call_arg(args, 0))
            .map(|call| PhoneRequest::Hold {
                held: name == "hold",
                call,
            }),
        _ => return None,
    })
}

/// `transfer(uri, [call])`, or mod_rtmp's order `transfer(call, uri)`
/// (a call id first, as a number or a numeric string).
fn parse_transfer(args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    at_most("transfer", args, 2)?;
    let id_first = match args.first() {
        Some(AmfValue::Number(_)) => true,
        Some(AmfValue::String(s)) => s.trim().parse::<CallId>().is_ok() && args.len() == 2,
        _ => false,
    };
    let (uri_at, call_at) = if id_first { (1, 0) } else { (0, 1) };
    let uri = target_uri("transfer", args.get(uri_at))?;
    Ok(PhoneRequest::Transfer {
        uri,
        call: call_arg(args, call_at)?,
    })
}

/// A URI argument (`dial`'s, `transfer`'s, and the foreign APIs' call
/// targets): a non-empty string without control characters, at most
/// `MAX_ARGUMENT_LEN` bytes.
pub(crate) fn target_uri(method: &str, arg: Option<&AmfValue>) -> Result<String, PhoneError> {
    let missing = || PhoneError::new(code::CALL_NO_URI, format!("{method} needs a URI to call"));
    let uri = match arg {
        None => return Err(missing()),
        Some(v) if v.is_nullish() => return Err(missing()),
        Some(AmfValue::String(s)) => s.trim(),
        Some(_) => {
            return Err(PhoneError::new(
                code::CALL_NO_URI,
                format!("the URI to {method} must be a string"),
            ))
        }
    };
    if uri.is_empty() {
        return Err(missing());
    }
    if uri.len() > MAX_ARGUMENT_LEN || uri.chars().any(char::is_control) {
        return Err(PhoneError::new(
            code::CALL_FAILED,
            format!("the URI to {method} is not a valid URI"),
        ));
    }
    Ok(uri.to_owned())
}

fn parse_dial(args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    let uri = target_uri("dial", args.first())?;
    let (codec, video) = match args.get(1) {
        None => (None, false),
        Some(v) if v.is_nullish() => (None, false),
        Some(options) => (dial_codec(options)?, dial_video(options)?),
    };
    Ok(PhoneRequest::Dial { uri, codec, video })
}

/// The `video` of `dial`'s options object: a boolean, false if absent.
fn dial_video(options: &AmfValue) -> Result<bool, PhoneError> {
    let props = options.properties().unwrap_or_default();
    match props.iter().find(|(k, _)| k == "video").map(|(_, v)| v) {
        None => Ok(false),
        Some(v) if v.is_nullish() => Ok(false),
        Some(AmfValue::Boolean(b)) => Ok(*b),
        Some(_) => Err(PhoneError::new(
            code::CALL_FAILED,
            "dial's options: video is true or false",
        )),
    }
}

/// The `codec` of `dial`'s options object, if it names one.
fn dial_codec(options: &AmfValue) -> Result<Option<crate::audio::AudioCodec>, PhoneError> {
    use crate::audio::AudioCodec;
    let bad = || {
        PhoneError::new(
            code::CALL_FAILED,
            "dial's options: codec is \"PCMU\" or \"PCMA\"",
        )
    };
    let Some(props) = options.properties() else {
        return Err(PhoneError::new(
            code::CALL_FAILED,
            "dial's second argument must be an options object",
        ));
    };
    match props.iter().find(|(k, _)| k == "codec").map(|(_, v)| v) {
        None => Ok(None),
        Some(v) if v.is_nullish() => Ok(None),
        Some(AmfValue::String(s)) if s.eq_ignore_ascii_case("pcmu") => Ok(Some(AudioCodec::Pcmu)),
        Some(AmfValue::String(s)) if s.eq_ignore_ascii_case("pcma") => Ok(Some(AudioCodec::Pcma)),
        Some(_) => Err(bad()),
    }
}

fn parse_reject(args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    let code = match args.first() {
        None => DEFAULT_REJECT_CODE,
        Some(v) if v.is_nullish() => DEFAULT_REJECT_CODE,
        Some(AmfValue::Number(n)) if n.fract() == 0.0 && (400.0..=699.0).contains(n) => *n as u16,
        // Flash may send numbers typed into a text field as strings.
        Some(AmfValue::String(s))
            if s.trim()
                .parse::<u16>()
                .is_ok_and(|c| (400..=699).contains(&c)) =>
        {
            s.trim().parse().unwrap_or(DEFAULT_REJECT_CODE)
        }
        Some(other) => {
            return Err(PhoneError::new(
                code::CALL_INVALID_CODE,
                format!("reject takes a SIP error code from 400 to 699, not {other}"),
            ))
        }
    };
    at_most("reject", args, 2)?;
    Ok(PhoneRequest::Reject {
        code,
        call: call_arg(args, 1)?,
    })
}

pub(crate) fn parse_dtmf(args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    let digits = match args.first() {
        Some(AmfValue::String(s)) => s.clone(),
        // A single digit typed as a number.
        Some(AmfValue::Number(n)) if n.fract() == 0.0 && (0.0..=9.0).contains(n) => format!("{n}"),
        _ => {
            return Err(PhoneError::new(
                code::DTMF_INVALID,
                "sendDTMF needs a string of digits",
            ))
        }
    };
    if digits.is_empty() || digits.len() > MAX_DTMF_DIGITS {
        return Err(PhoneError::new(
            code::DTMF_INVALID,
            format!("sendDTMF takes 1 to {MAX_DTMF_DIGITS} digits"),
        ));
    }
    if let Some(bad) = digits.chars().find(|c| !is_dtmf_digit(*c)) {
        return Err(PhoneError::new(
            code::DTMF_INVALID,
            format!("{bad:?} is not a DTMF digit (0-9, *, #, A-D)"),
        ));
    }
    at_most("sendDTMF", args, 2)?;
    Ok(PhoneRequest::SendDtmf {
        digits: digits.to_ascii_uppercase(),
        call: call_arg(args, 1)?,
    })
}

/// The sixteen events of RFC 4733 §3.2 that a keypad sends.
pub fn is_dtmf_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d')
}

fn parse_register(args: &[AmfValue]) -> Result<PhoneRequest, PhoneError> {
    const NAMES: [&str; 5] = ["user", "domain", "auth_user", "password", "display_name"];
    if args.len() > NAMES.len() {
        return Err(PhoneError::new(
            code::REGISTRATION_FAILED,
            format!(
                "register takes at most {} arguments, got {}",
                NAMES.len(),
                args.len()
            ),
        ));
    }
    let mut fields: [Option<String>; 5] = Default::default();
    for (i, arg) in args.iter().enumerate() {
        fields[i] = match arg {
            v if v.is_nullish() => None,
            AmfValue::String(s) if s.trim().is_empty() => None,
            AmfValue::String(s)
                if s.len() > MAX_ARGUMENT_LEN || s.chars().any(char::is_control) =>
            {
                return Err(PhoneError::new(
                    code::REGISTRATION_FAILED,
                    format!("register argument {} ({}) is not valid", i + 1, NAMES[i]),
                ))
            }
            AmfValue::String(s) => Some(s.trim().to_owned()),
            _ => {
                return Err(PhoneError::new(
                    code::REGISTRATION_FAILED,
                    format!(
                        "register argument {} ({}) must be a string",
                        i + 1,
                        NAMES[i]
                    ),
                ))
            }
        };
    }
    let [user, domain, auth_user, password, display_name] = fields;
    let request = RegisterRequest {
        user,
        domain,
        auth_user,
        password,
        display_name,
    };
    if request.user.is_none() && (request.auth_user.is_some() || request.password.is_some()) {
        return Err(PhoneError::new(
            code::REGISTRATION_FAILED,
            "credentials were given without a user to register",
        ));
    }
    if let Some(user) = &request.user {
        if !is_sip_user(user) {
            return Err(PhoneError::new(
                code::REGISTRATION_FAILED,
                format!("{user:?} is not a valid SIP user part"),
            ));
        }
    }
    Ok(PhoneRequest::Register(request))
}

/// The unreserved and user-unreserved characters of RFC 3261 §25.1 `user`
/// (escapes excluded: a user part we build URIs from must not need them).
pub fn is_sip_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c))
}

/// The state of the client's call, as numbered by the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    NotConnected = 0,
    InProgress = 1,
    Connected = 2,
    Disconnecting = 3,
    /// Publish and play now: media flows.
    ConnectStreams = 4,
}

/// An `onStatus` event on stream 0.
#[derive(Debug, Clone, PartialEq)]
pub enum PhoneEvent {
    CallStatus {
        status: CallStatus,
        sip_code: Option<u16>,
        reason: Option<String>,
    },
    CallIncoming {
        uri: String,
        display_name: Option<String>,
    },
    RegistrationStatus {
        registered: bool,
        uri: String,
        expires: u32,
        sip_code: Option<u16>,
        reason: Option<String>,
    },
    Dtmf {
        digit: char,
    },
    /// `by_peer`: the peer's re-INVITE said so; else the client's own hold.
    Held {
        held: bool,
        by_peer: bool,
    },
    /// The peer refused the re-INVITE that would have made `held` true.
    HoldFailed {
        held: bool,
        sip_code: u16,
        reason: String,
    },
    /// How the client's transfer goes: the REFER's answer, then each
    /// status of the peer's call to the target; `done` once final (a 2xx
    /// then means the call was transferred and ends).
    Transfer {
        sip_code: u16,
        reason: String,
        done: bool,
    },
    /// The peer asked sono to call `target` (its REFER, allowed by the dial
    /// plan): `new_call` is that call's id; it replaces this one when
    /// answered.
    Referred {
        target: String,
        referred_by: Option<String>,
        new_call: CallId,
    },
    /// The client's calls `calls` are (`on`) or are no longer a three-way
    /// call.
    ThreeWay {
        calls: [CallId; 2],
        on: bool,
    },
    ServerShutdown,
}

impl PhoneEvent {
    /// The info object of an event about call `call`: `call` is one of its
    /// fields (Flash clients that know one call only may ignore it).
    pub fn info_on(&self, call: Option<CallId>) -> AmfValue {
        let mut info = self.info();
        if let (Some(id), AmfValue::Object(fields)) = (call, &mut info) {
            fields.push(("call".into(), AmfValue::Number(f64::from(id))));
        }
        info
    }

    /// The info object of the event: `{level: "status", code, …}`.
    pub fn info(&self) -> AmfValue {
        let mut p: Vec<(String, AmfValue)> = vec![("level".into(), "status".into())];
        let mut put = |k: &str, v: AmfValue| p.push((k.into(), v));
        match self {
            PhoneEvent::CallStatus {
                status,
                sip_code,
                reason,
            } => {
                put("code", code::CALL_STATUS.into());
                put("status_code", AmfValue::Number(*status as u8 as f64));
                if let Some(c) = sip_code {
                    put("sip_code", AmfValue::Number(f64::from(*c)));
                }
                if let Some(r) = reason {
                    put("reason", r.as_str().into());
                }
            }
            PhoneEvent::CallIncoming { uri, display_name } => {
                put("code", code::CALL_INCOMING.into());
                put("uri", uri.as_str().into());
                put(
                    "display_name",
                    display_name
                        .as_deref()
                        .map_or(AmfValue::Null, AmfValue::from),
                );
            }
            PhoneEvent::RegistrationStatus {
                registered,
                uri,
                expires,
                sip_code,
                reason,
            } => {
                put("code", code::REGISTRATION_STATUS.into());
                put("registered", AmfValue::Boolean(*registered));
                put("uri", uri.as_str().into());
                put("expires", AmfValue::Number(f64::from(*expires)));
                if let Some(c) = sip_code {
                    put("sip_code", AmfValue::Number(f64::from(*c)));
                }
                if let Some(r) = reason {
                    put("reason", r.as_str().into());
                }
            }
            PhoneEvent::Dtmf { digit } => {
                put("code", code::CALL_DTMF.into());
                put("digit", digit.to_string().into());
            }
            PhoneEvent::Held { held, by_peer } => {
                put("code", code::CALL_HELD.into());
                put("held", AmfValue::Boolean(*held));
                put("by", if *by_peer { "peer" } else { "client" }.into());
            }
            PhoneEvent::HoldFailed {
                held,
                sip_code,
                reason,
            } => {
                put("code", code::CALL_HOLD_FAILED.into());
                put("held", AmfValue::Boolean(*held));
                put("sip_code", AmfValue::Number(f64::from(*sip_code)));
                put("reason", reason.as_str().into());
            }
            PhoneEvent::Transfer {
                sip_code,
                reason,
                done,
            } => {
                put("code", code::CALL_TRANSFER.into());
                put("sip_code", AmfValue::Number(f64::from(*sip_code)));
                put("reason", reason.as_str().into());
                put("done", AmfValue::Boolean(*done));
            }
            PhoneEvent::Referred {
                target,
                referred_by,
                new_call,
            } => {
                put("code", code::CALL_REFERRED.into());
                put("target", target.as_str().into());
                put(
                    "referred_by",
                    referred_by
                        .as_deref()
                        .map_or(AmfValue::Null, AmfValue::from),
                );
                put("new_call", AmfValue::Number(f64::from(*new_call)));
            }
            PhoneEvent::ThreeWay { calls, on } => {
                put("code", code::CALL_THREE_WAY.into());
                put(
                    "calls",
                    AmfValue::StrictArray(
                        calls
                            .iter()
                            .map(|c| AmfValue::Number(f64::from(*c)))
                            .collect(),
                    ),
                );
                put("on", AmfValue::Boolean(*on));
            }
            PhoneEvent::ServerShutdown => {
                put("code", code::SERVER_SHUTDOWN.into());
                put("description", "sono is shutting down".into());
            }
        }
        AmfValue::Object(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, args: Vec<AmfValue>) -> Result<PhoneRequest, PhoneError> {
        parse_request(name, &args).expect("a phone method")
    }

    fn err(name: &str, args: Vec<AmfValue>) -> &'static str {
        parse(name, args).expect_err("should be refused").code
    }

    #[test]
    fn dial_needs_a_uri() {
        assert_eq!(
            parse("dial", vec!["sip:bob@127.0.0.1".into()]),
            Ok(PhoneRequest::Dial {
                uri: "sip:bob@127.0.0.1".into(),
                codec: None,
                video: false
            })
        );
        let options = |codec: AmfValue| AmfValue::Object(vec![("codec".into(), codec)]);
        assert_eq!(
            parse(
                "dial",
                vec!["sip:bob@127.0.0.1".into(), options("pcmu".into())]
            ),
            Ok(PhoneRequest::Dial {
                uri: "sip:bob@127.0.0.1".into(),
                codec: Some(crate::audio::AudioCodec::Pcmu),
                video: false
            })
        );
        assert_eq!(
            parse("dial", vec!["sip:b@h".into(), AmfValue::Null]),
            Ok(PhoneRequest::Dial {
                uri: "sip:b@h".into(),
                codec: None,
                video: false
            })
        );
        assert_eq!(
            err("dial", vec!["sip:b@h".into(), options("G729".into())]),
            code::CALL_FAILED
        );
        let video = |v: AmfValue| AmfValue::Object(vec![("video".into(), v)]);
        assert_eq!(
            parse(
                "dial",
                vec!["sip:b@h".into(), video(AmfValue::Boolean(true))]
            ),
            Ok(PhoneRequest::Dial {
                uri: "sip:b@h".into(),
                codec: None,
                video: true
            })
        );
        assert_eq!(
            err("dial", vec!["sip:b@h".into(), video("yes".into())]),
            code::CALL_FAILED
        );
        assert_eq!(
            err("dial", vec!["sip:b@h".into(), AmfValue::Number(1.0)]),
            code::CALL_FAILED
        );
        assert_eq!(err("dial", vec![]), code::CALL_NO_URI);
        assert_eq!(err("dial", vec![AmfValue::Null]), code::CALL_NO_URI);
        assert_eq!(err("dial", vec!["  ".into()]), code::CALL_NO_URI);
        assert_eq!(err("dial", vec![AmfValue::Number(5.0)]), code::CALL_NO_URI);
        assert_eq!(err("dial", vec!["sip:a\r\nb".into()]), code::CALL_FAILED);
    }

    #[test]
    fn transfer_takes_a_uri_and_an_optional_call_in_either_order() {
        let want = |call| {
            Ok(PhoneRequest::Transfer {
                uri: "sip:carol@127.0.0.1".into(),
                call,
            })
        };
        assert_eq!(
            parse("transfer", vec!["sip:carol@127.0.0.1".into()]),
            want(None)
        );
        assert_eq!(
            parse(
                "transfer",
                vec!["sip:carol@127.0.0.1".into(), AmfValue::Number(2.0)]
            ),
            want(Some(2))
        );
        assert_eq!(
            parse(
                "transfer",
                vec![AmfValue::Number(2.0), "sip:carol@127.0.0.1".into()]
            ),
            want(Some(2))
        );
        assert_eq!(
            parse("transfer", vec!["2".into(), "sip:carol@127.0.0.1".into()]),
            want(Some(2))
        );
        assert_eq!(err("transfer", vec![]), code::CALL_NO_URI);
        assert_eq!(
            err("transfer", vec![AmfValue::Number(2.0)]),
            code::CALL_NO_URI
        );
        assert_eq!(err("transfer", vec!["sip:a\nb".into()]), code::CALL_FAILED);
        assert_eq!(
            err("transfer", vec!["sip:a@b".into(), AmfValue::Number(0.5)]),
            code::CALL_NO_CALL
        );
        assert_eq!(
            parse("join", vec![]),
            Ok(PhoneRequest::Join { a: None, b: None })
        );
        assert_eq!(
            parse("join", vec![AmfValue::Number(1.0), AmfValue::Number(2.0)]),
            Ok(PhoneRequest::Join {
                a: Some(1),
                b: Some(2)
            })
        );
        assert_eq!(
            err("join", vec![1.0.into(), 2.0.into(), 3.0.into()]),
            code::CALL_NO_CALL
        );
        assert_eq!(
            parse("three_way", vec![AmfValue::Null, AmfValue::Number(2.0)]),
            Ok(PhoneRequest::ThreeWay {
                a: None,
                b: Some(2)
            })
        );
        assert_eq!(err("three_way", vec!["x".into()]), code::CALL_NO_CALL);
    }

    #[test]
    fn reject_takes_an_optional_error_code() {
        assert_eq!(
            parse("reject", vec![]),
            Ok(PhoneRequest::Reject {
                code: 603,
                call: None
            })
        );
        assert_eq!(
            parse("reject", vec![AmfValue::Number(486.0)]),
            Ok(PhoneRequest::Reject {
                code: 486,
                call: None
            })
        );
        assert_eq!(
            parse("reject", vec!["480".into()]),
            Ok(PhoneRequest::Reject {
                code: 480,
                call: None
            })
        );
        assert_eq!(
            err("reject", vec![AmfValue::Number(200.0)]),
            code::CALL_INVALID_CODE
        );
        assert_eq!(
            err("reject", vec![AmfValue::Number(486.5)]),
            code::CALL_INVALID_CODE
        );
        assert_eq!(
            err("reject", vec![AmfValue::Boolean(true)]),
            code::CALL_INVALID_CODE
        );
    }

    #[test]
    fn call_ids_are_whole_numbers_from_one_and_optional() {
        assert_eq!(
            parse("hangup", vec![]),
            Ok(PhoneRequest::Hangup { call: None })
        );
        assert_eq!(
            parse("hold", vec![AmfValue::Number(3.0)]),
            Ok(PhoneRequest::Hold {
                held: true,
                call: Some(3)
            })
        );
        assert_eq!(
            parse("unhold", vec![" 2 ".into()]),
            Ok(PhoneRequest::Hold {
                held: false,
                call: Some(2)
            })
        );
        assert_eq!(
            parse("reject", vec![AmfValue::Null, AmfValue::Number(4.0)]),
            Ok(PhoneRequest::Reject {
                code: 603,
                call: Some(4)
            })
        );
        for bad in [
            AmfValue::Number(0.0),
            AmfValue::Number(1.5),
            AmfValue::Number(-1.0),
            AmfValue::Number(1e12),
            "x".into(),
            AmfValue::Boolean(true),
        ] {
            assert_eq!(
                err("hangup", vec![bad.clone()]),
                code::CALL_NO_CALL,
                "{bad:?}"
            );
            assert_eq!(
                err("accept", vec![bad.clone()]),
                code::CALL_NO_CALL,
                "{bad:?}"
            );
        }
        assert_eq!(
            err("hold", vec![AmfValue::Number(1.0), AmfValue::Number(2.0)]),
            code::CALL_NO_CALL
        );
    }

    #[test]
    fn dtmf_digits_are_checked() {
        assert_eq!(
            parse("sendDTMF", vec!["12#*ad".into()]),
            Ok(PhoneRequest::SendDtmf {
                digits: "12#*AD".into(),
                call: None
            })
        );
        assert_eq!(
            parse("sendDTMF", vec!["5".into(), AmfValue::Number(2.0)]),
            Ok(PhoneRequest::SendDtmf {
                digits: "5".into(),
                call: Some(2)
            })
        );
        assert_eq!(err("sendDTMF", vec![]), code::DTMF_INVALID);
        assert_eq!(err("sendDTMF", vec!["".into()]), code::DTMF_INVALID);
        assert_eq!(err("sendDTMF", vec!["12x".into()]), code::DTMF_INVALID);
        assert_eq!(
            err("sendDTMF", vec!["1".repeat(65).into()]),
            code::DTMF_INVALID
        );
    }

    #[test]
    fn register_arguments_are_optional_strings() {
        assert!(matches!(
            parse("register", vec![]),
            Ok(PhoneRequest::Register(r)) if r.is_implicit()
        ));
        let full = parse(
            "register",
            vec![
                "alice".into(),
                "127.0.0.1:5090".into(),
                AmfValue::Null,
                "alicepw".into(),
                "Alice".into(),
            ],
        );
        assert_eq!(
            full,
            Ok(PhoneRequest::Register(RegisterRequest {
                user: Some("alice".into()),
                domain: Some("127.0.0.1:5090".into()),
                auth_user: None,
                password: Some("alicepw".into()),
                display_name: Some("Alice".into()),
            }))
        );
        let Ok(PhoneRequest::Register(r)) = &full else {
            unreachable!()
        };
        assert!(
            !format!("{r:?}").contains("alicepw"),
            "Debug shows the password"
        );
        assert_eq!(
            err("register", vec![AmfValue::Number(1.0)]),
            code::REGISTRATION_FAILED
        );
        assert_eq!(
            err(
                "register",
                vec![AmfValue::Null, AmfValue::Null, AmfValue::Null, "pw".into()]
            ),
            code::REGISTRATION_FAILED
        );
        assert_eq!(
            err("register", vec!["a b".into()]),
            code::REGISTRATION_FAILED
        );
        assert_eq!(
            err("register", vec![AmfValue::Null; 6]),
            code::REGISTRATION_FAILED
        );
    }

    #[test]
    fn events_carry_the_documented_fields() {
        let e = PhoneEvent::CallStatus {
            status: CallStatus::ConnectStreams,
            sip_code: Some(200),
            reason: Some("OK".into()),
        }
        .info();
        assert_eq!(e.get("level").and_then(AmfValue::as_str), Some("status"));
        assert_eq!(
            e.get("code").and_then(AmfValue::as_str),
            Some("Sono.Call.Status")
        );
        assert_eq!(
            e.get("status_code").and_then(AmfValue::as_number),
            Some(4.0)
        );
        assert_eq!(e.get("sip_code").and_then(AmfValue::as_number), Some(200.0));
        assert_eq!(e.get("reason").and_then(AmfValue::as_str), Some("OK"));
        assert!(parse_request("makeCall", &[]).is_none());
    }
}
