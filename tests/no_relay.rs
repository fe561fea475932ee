//! sono is no open relay, and it gives its credentials to no stranger. Each
//! test here plays an attacker against the real binary, with SIPp as the
//! attacker's SIP peer and a plain UDP socket catching whatever would reach
//! an address the dial plan forbids (127.0.0.9 stands for "off-machine":
//! the traffic stays on loopback):
//! - `maddr` in a dialled URI (RFC 3263 §4: it overrides the host) must be
//!   allowed by the dial plan too, in every spelling;
//! - an allowed peer answering with a Contact elsewhere gets no ACK, no BYE;
//! - a 407 from anyone but the outbound proxy or a configured registrar, or
//!   in a realm not listed in `sip.auth_realms`, gets no credentials.

use std::net::UdpSocket;
use std::time::Duration;

use sono_rtmp::phone::code;
use sono_rtmp::ObjectEncoding;
use sono_testkit::{free_udp_port, FlashClient, Reply, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const MEDIA: &str = "[media]\nrtp_port_min = 34200\nrtp_port_max = 34399\n";

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// A UDP socket on a forbidden address: it must hear nothing.
struct Catcher(UdpSocket);

impl Catcher {
    fn bind(ip: &str, port: u16) -> Catcher {
        let s = UdpSocket::bind((ip, port)).expect("binding a loopback catcher");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Catcher(s)
    }

    /// What arrived within `wait`, as text.
    fn heard(&self, wait: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            if let Ok(n) = self.0.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        got
    }
}

/// A dial plan that allows exactly one peer: 127.0.0.1:`port`.
fn one_peer_plan(port: u16) -> String {
    format!(
        "[sip.dial_plan]\nallow_loopback = false\nallow = ['sip:[0-9a-z]+@127\\.0\\.0\\.1:{port}(;.*)?']\n"
    )
}

#[test]
fn maddr_cannot_send_a_dial_past_the_dial_plan() {
    let sipp = Sipp::uas(&scenario("uas_200"), 1, WAIT, &[]);
    let port = sipp.addr.port();
    let catcher = Catcher::bind("127.0.0.9", port);
    let sono = Sono::start(SONO, &format!("{MEDIA}{}", one_peer_plan(port)));
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    for target in [
        format!("sip:900123@127.0.0.1:{port};maddr=127.0.0.9"),
        format!("sip:900123@127.0.0.1:{port};MADDR=127.0.0.9"),
        format!("sip:900123@127.0.0.1:{port};transport=udp;maddr=127.0.0.9;lr"),
        format!("sip:900123@127.0.0.1:{port};m%61ddr=127.0.0.9"),
        format!("sip:900123@127.0.0.1:{port};maddr=127.0.0.1;maddr=127.0.0.9"),
        format!("sip:900123;maddr=127.0.0.9@127.0.0.1:{port}"),
        format!("sip:900123@127.0.0.1:{port}?Route=%3Csip:127.0.0.9;lr%3E"),
    ] {
        let reply = c.call("dial", vec![target.as_str().into()]).unwrap();
        assert_eq!(
            reply.error_code(),
            Some(code::CALL_FORBIDDEN),
            "{target}: {reply:?}"
        );
    }
    assert!(
        catcher.heard(Duration::from_secs(1)).is_empty(),
        "a refused dial reached the maddr"
    );
    assert!(
        sipp.received().is_empty(),
        "a refused dial reached the peer"
    );
    // A maddr the plan allows is where the INVITE goes.
    let allowed = format!("sip:900123@127.0.0.1:{port};maddr=127.0.0.1");
    c.send_call("dial", vec![allowed.as_str().into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
}

#[test]
fn a_contact_outside_the_dial_plan_gets_no_ack_and_no_bye() {
    let elsewhere = free_udp_port();
    let catcher = Catcher::bind("127.0.0.9", elsewhere);
    let contact = format!("sip:900123@127.0.0.9:{elsewhere}");
    let sipp = Sipp::uas(
        &scenario("uas_contact_elsewhere"),
        1,
        WAIT,
        &["-key", "contact", &contact],
    );
    let sono = Sono::start(SONO, &format!("{MEDIA}{}", one_peer_plan(sipp.addr.port())));
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![sipp.uri("900123").into()])
        .unwrap();
    assert!(
        c.wait_call_status(0, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    let statuses = c.call_statuses();
    let (_, sip_code, reason) = statuses.last().cloned().unwrap_or_default();
    let reason = reason.unwrap_or_default();
    assert_eq!(sip_code, Some(403), "{statuses:?}");
    assert!(
        reason.contains("outside the dial plan") && reason.contains("127.0.0.9"),
        "{reason}"
    );
    assert!(
        !statuses.iter().any(|(s, _, _)| *s == 4),
        "no media for a refused target: {statuses:?}"
    );
    // Nothing reaches the Contact while SIPp retransmits its 200 (3 s),
    // nor after; SIPp itself gets no ACK either.
    let heard = catcher.heard(Duration::from_secs(3));
    assert!(heard.is_empty(), "sent to the forbidden Contact: {heard:?}");
    assert!(
        !sipp.received().iter().any(|m| m.starts_with("ACK")),
        "{:?}",
        sipp.received()
    );
    assert_eq!(sono.metric("sono_sip_targets_refused_total"), 1.0);
    assert!(sono.log().contains("outside the dial plan"));
}

/// A dialled peer asks for credentials: 407 in `realm`. The call must fail
/// with 407 and the reason, and SIPp must see no second INVITE.
fn challenged_dial(extra_settings: &str, realm: &str) -> (String, Sipp, Sono) {
    let sipp = Sipp::uas(
        &scenario("uas_407_realm"),
        1,
        WAIT,
        &["-key", "realm", realm],
    );
    let sono = Sono::start(
        SONO,
        &format!(
            "{MEDIA}[sip]\nauth_user = \"alice\"\npassword = \"Pa55-w0rd-of-alice\"\n{extra_settings}"
        ),
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let txn = c
        .send_call("dial", vec![sipp.uri("900123").into()])
        .unwrap();
    assert!(c.wait_for(WAIT, |c| c.has_reply(txn)));
    let reply = c.reply(txn);
    assert!(
        matches!(&reply, Some(Reply::Error(_))),
        "the dial must fail: {reply:?}"
    );
    let statuses = c.call_statuses();
    let (status, sip_code, reason) = statuses.last().cloned().unwrap_or_default();
    assert_eq!((status, sip_code), (0, Some(407)), "{statuses:?}");
    (reason.unwrap_or_default(), sipp, sono)
}

fn assert_no_credentials_sent(sipp: &mut Sipp, sono: &Sono) {
    sipp.wait(Duration::from_secs(5));
    let got = sipp.received();
    let invites = got.iter().filter(|m| m.starts_with("INVITE")).count();
    assert_eq!(invites, 1, "{got:?}");
    assert!(
        !got.iter()
            .any(|m| m.contains("Authorization") || m.contains("alice\"")),
        "{got:?}"
    );
    assert_eq!(sono.metric("sono_sip_challenges_refused_total"), 1.0);
}

#[test]
fn a_challenge_in_an_unlisted_realm_gets_no_credentials() {
    let (reason, mut sipp, sono) =
        challenged_dial("auth_realms = [\"pbx.example.com\"]\n", "evil.example");
    assert!(
        reason.contains("credentials not sent")
            && reason.contains("\"evil.example\" is not in sip.auth_realms"),
        "{reason}"
    );
    assert_no_credentials_sent(&mut sipp, &sono);
}

#[test]
fn a_challenge_from_a_dialled_host_that_is_no_registrar_gets_no_credentials() {
    // 127.0.0.1 is not a registrar here: only "localhost" is.
    let (reason, mut sipp, sono) = challenged_dial(
        "auth_realms = [\"sono.test\"]\nregistrars = [\"localhost\"]\n",
        "sono.test",
    );
    assert!(
        reason.contains("credentials not sent")
            && reason.contains("neither the outbound proxy nor a configured registrar"),
        "{reason}"
    );
    assert_no_credentials_sent(&mut sipp, &sono);
}
