//! Clients written for other gateways, unmodified: FreeSWITCH mod_rtmp's
//! API (its challenge login, makeCall, attach, answer, hangup and their
//! callbacks) and rtmplite siprtmp's (invite, accept, hold, bye and theirs),
//! each spoken by a test client written from the documented wire API, on
//! the application `rtmp.app_apis` gives it, against SIPp peers.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::{http, FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const CONFIG: &str = "[media]\nrtp_port_min = 39000\nrtp_port_max = 39999\n\
[rtmp.app_apis]\nfreeswitch = \"mod_rtmp\"\nsip = \"siprtmp\"\n\
[rtmp.accounts]\n\"alice@example.com\" = \"secret\"\n";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// md5 in hex by coreutils, not by sono's code.
fn md5_hex(text: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", "printf %s \"$0\" | md5sum", text])
        .output()
        .expect("md5sum (coreutils)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn strings(args: &[AmfValue]) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{a:?}"))
        })
        .collect()
}

/// Whether the server called `name` on the client with these first arguments.
fn called(c: &FlashClient, name: &str, first: &[&str]) -> bool {
    c.invoked(name).iter().any(|args| {
        strings(args).iter().zip(first).all(|(a, b)| a == b) && args.len() >= first.len()
    })
}

/// The implicit URI sono attributed to connection `c` (REST state).
fn implicit_uri(sono: &Sono, c: &FlashClient) -> String {
    let state = http::get(
        sono.http,
        &format!("/api/v1/connections/{}", c.connection_id()),
        &c.token(),
    )
    .unwrap()
    .json();
    state["implicit_uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_mod_rtmp_client_logs_in_places_holds_receives_and_hangs_up_calls() {
    let sono = Sono::start(SONO, CONFIG);
    let mut c = FlashClient::connect(sono.rtmp, "freeswitch", ObjectEncoding::Amf0).unwrap();
    let connected = c
        .wait_invoke("connected", WAIT)
        .expect("connected(session)");
    let session = connected[0].as_str().unwrap_or_default().to_owned();
    assert!(
        session.len() >= 16,
        "an unguessable session id: {session:?}"
    );

    // No call before a login (rtmp.accounts is set), and a wrong proof is refused.
    let early = c.call("makeCall", vec!["1000".into()]).unwrap();
    assert_eq!(early.error_code(), Some(code::CALL_FORBIDDEN), "{early:?}");
    let wrong = md5_hex(&format!("{session}:alice@example.com:guess"));
    c.call("login", vec!["alice@example.com".into(), wrong.into()])
        .unwrap();
    assert!(c.wait_for(WAIT, |c| called(
        c,
        "onLogin",
        &["failure", "alice", "example.com"]
    )));
    // A proof made for another session is refused too.
    let replayed = md5_hex("another-session:alice@example.com:secret");
    c.call("login", vec!["alice@example.com".into(), replayed.into()])
        .unwrap();
    let proof = md5_hex(&format!("{session}:alice@example.com:secret"));
    c.call("login", vec!["alice@example.com".into(), proof.into()])
        .unwrap();
    assert!(
        c.wait_for(WAIT, |c| called(
            c,
            "onLogin",
            &["success", "alice", "example.com"]
        )),
        "{:?}\n{}",
        c.invokes,
        sono.log()
    );
    assert_eq!(c.invoked("onLogin").len(), 3);
    assert!(
        !sono.log().contains("secret"),
        "the password never reaches the log"
    );

    // Places a call; attach() holds it, attach(uuid) takes it back; hangup.
    let mut peer = Sipp::uas(
        &scenario("uas_line"),
        1,
        Duration::from_secs(30),
        &[
            "-key",
            "rtp_port",
            &sono_testkit::free_udp_port().to_string(),
        ],
    );
    let number = peer.uri("bob");
    c.call(
        "makeCall",
        vec![
            number.as_str().into(),
            "alice@example.com".into(),
            AmfValue::object([("wantVideo", AmfValue::Boolean(false))]),
        ],
    )
    .unwrap();
    assert!(
        c.wait_for(WAIT, |c| called(
            c,
            "onMakeCall",
            &["1", &number, "alice@example.com"]
        ) && called(c, "callState", &["1", "ACTIVE"])
            && called(c, "onAttach", &["1"])),
        "{:?}\n{}",
        c.invokes,
        sono.log()
    );
    c.call("attach", vec![]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| called(c, "callState", &["1", "HELD"])),
        "{:?}",
        c.invokes
    );
    c.call("attach", vec!["1".into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| c
        .invoked("callState")
        .iter()
        .filter(|a| strings(a) == ["1", "ACTIVE"])
        .count()
        == 2));
    c.call("hangup", vec!["1".into(), "NORMAL_CLEARING".into()])
        .unwrap();
    assert!(c.wait_for(WAIT, |c| called(c, "onHangup", &["1", "NORMAL_CLEARING"])));
    peer.assert_success(WAIT);

    // Receives one: register, then a caller; answer; the caller hangs up.
    let reply = c
        .call("register", vec!["alice@example.com".into(), "desk".into()])
        .unwrap();
    assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    let uri = implicit_uri(&sono, &c);
    let user = uri
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let mut caller = Sipp::uac(
        &scenario("uac_answered"),
        sono.sip,
        &user,
        Duration::from_secs(30),
        &[],
    );
    let incoming = c.wait_invoke("incomingCall", WAIT).expect("incomingCall");
    let incoming = strings(&incoming);
    assert_eq!(incoming[0], "2");
    assert_eq!(incoming[2], "caller", "the caller's number: {incoming:?}");
    assert_eq!(
        incoming[3], "alice@example.com",
        "the account: {incoming:?}"
    );
    assert!(called(&c, "displayUpdate", &["2"]));
    c.call("answer", vec!["2".into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| called(c, "callState", &["2", "ACTIVE"])));
    assert!(
        c.wait_for(WAIT, |c| called(c, "onHangup", &["2", "NORMAL_CLEARING"])),
        "{:?}",
        c.invokes
    );
    caller.assert_success(WAIT);
    // sono's own events never reach a mod_rtmp client.
    assert!(c.events.is_empty(), "{:?}", c.events);

    c.call("logout", vec!["alice@example.com".into()]).unwrap();
    assert!(c.wait_for(WAIT, |c| called(c, "onLogout", &["alice", "example.com"])));
}

#[test]
fn a_siprtmp_client_invites_holds_is_invited_and_says_bye() {
    let sono = Sono::start(SONO, CONFIG);
    let mut c = FlashClient::connect_with_args(
        sono.rtmp,
        "sip/alice@127.0.0.1",
        ObjectEncoding::Amf0,
        vec![],
    )
    .unwrap();

    // Refused: ringing then rejected, with the code.
    let mut busy = Sipp::uas(&scenario("uas_486"), 1, Duration::from_secs(30), &[]);
    c.call("invite", vec![busy.uri("bob").into(), "speex".into()])
        .ok();
    assert!(
        c.wait_for(WAIT, |c| c
            .invoked("rejected")
            .iter()
            .any(|a| strings(a)[0].starts_with("486"))),
        "{:?}\n{}",
        c.invokes,
        sono.log()
    );
    busy.assert_success(WAIT);

    // Accepted, held and resumed (SIPp checks both re-INVITEs), bye.
    let mut peer = Sipp::uas(
        &scenario("uas_line"),
        1,
        Duration::from_secs(30),
        &[
            "-key",
            "rtp_port",
            &sono_testkit::free_udp_port().to_string(),
        ],
    );
    c.call("invite", vec![peer.uri("bob").into()]).ok();
    assert!(
        c.wait_for(WAIT, |c| !c.invoked("accepted").is_empty()),
        "{:?}\n{}",
        c.invokes,
        sono.log()
    );
    let held = c.call("hold", vec![AmfValue::Boolean(true)]).unwrap();
    assert!(matches!(held, Reply::Result(_)), "{held:?}");
    std::thread::sleep(Duration::from_millis(300));
    let resumed = c.call("hold", vec![AmfValue::Boolean(false)]).unwrap();
    assert!(matches!(resumed, Reply::Result(_)), "{resumed:?}");
    std::thread::sleep(Duration::from_millis(300));
    c.call("bye", vec![]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| c.invoked("byed").len() == 1),
        "{:?}",
        c.invokes
    );
    peer.assert_success(WAIT);

    // Invited: accept; the caller hangs up after two seconds.
    let uri = implicit_uri(&sono, &c);
    let user = uri
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    assert!(!user.is_empty(), "an implicit URI without a siprtmp login");
    let mut caller = Sipp::uac(
        &scenario("uac_answered"),
        sono.sip,
        &user,
        Duration::from_secs(30),
        &[],
    );
    let invited = c.wait_invoke("invited", WAIT).expect("invited(dest, from)");
    let invited = strings(&invited);
    assert_eq!(invited[0], "alice@127.0.0.1");
    assert!(invited[1].starts_with("sip:caller@"), "{invited:?}");
    c.call("accept", vec![]).unwrap();
    assert!(
        c.wait_for(WAIT, |c| c.invoked("byed").len() == 2),
        "{:?}",
        c.invokes
    );
    caller.assert_success(WAIT);
    // siprtmp's own names only: sono's method names are unknown here.
    let dial = c.call("dial", vec!["sip:x@127.0.0.1".into()]).unwrap();
    assert_eq!(dial.error_code(), Some(code::METHOD_NOT_FOUND), "{dial:?}");
    assert!(c.events.is_empty(), "{:?}", c.events);
}
