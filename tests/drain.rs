//! One node leaving service (docs/cluster.md), seen from outside: SIGTERM
//! or `POST /api/v1/drain` stops new work (RTMP refused, `/healthz` and SIP
//! OPTIONS 503, new dials refused) while calls in progress go on until they
//! end or `shutdown.grace` runs out; idle clients are sent away at once.
//! Also the cluster's routing aids on one node: node-prefixed tokens and
//! RTMPT session ids, 421 for another node's, and the PROXY protocol header
//! through a real HAProxy.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sono_rtmp::phone::code;
use sono_rtmp::ObjectEncoding;
use sono_testkit::http;
use sono_testkit::{FlashClient, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
const ADMIN: &str = "drain-test-admin-key-0123456789";

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// The status code sono answers an out-of-dialog OPTIONS with.
fn options_status(sip: SocketAddr) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:ping@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKdrain{};rport\r\n\
From: <sip:probe@{me}>;tag=p\r\nTo: <sip:ping@{sip}>\r\nCall-ID: drain-{}\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        me.port(),
        me.port()
    );
    sock.send_to(msg.as_bytes(), sip).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => String::from_utf8_lossy(&buf[..n])
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_owned(),
        Err(e) => format!("no answer: {e}"),
    }
}

fn healthz_status(sono: &Sono) -> u16 {
    http::request(sono.http, "GET", "/healthz", &[], b"").map_or(0, |r| r.status)
}

fn in_call(sono: &Sono, sipp: &Sipp) -> FlashClient {
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    c
}

#[test]
fn sigterm_drains_new_work_away_and_lets_the_call_in_progress_finish() {
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, Duration::from_secs(40), &[]);
    let mut sono = Sono::start(
        SONO,
        "[shutdown]\ngrace = \"20s\"\n[media]\nrtp_port_min = 35200\nrtp_port_max = 35299\nrtp_timeout = \"0s\"\n",
    );
    let mut caller = in_call(&sono, &sipp);
    let mut idle = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    assert_eq!(options_status(sono.sip), "200");
    assert_eq!(healthz_status(&sono), 200);

    sono.send_signal("-TERM");
    // The idle client is sent away at once, to reconnect elsewhere.
    assert!(
        idle.wait_event(code::SERVER_SHUTDOWN, Duration::from_secs(3))
            .is_ok(),
        "{:?}\n{}",
        idle.events,
        sono.log()
    );
    assert!(idle.wait_closed(Duration::from_secs(3)));
    // Nothing new: OPTIONS (Kamailio's probe) and /healthz (HAProxy's) say
    // 503, the RTMP listener is gone, and the caller cannot dial again.
    let deadline = Instant::now() + Duration::from_secs(2);
    while options_status(sono.sip) != "503" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(options_status(sono.sip), "503", "{}", sono.log());
    assert_eq!(healthz_status(&sono), 503);
    assert!(
        FlashClient::handshake(sono.rtmp).is_err(),
        "a new RTMP connection got in while draining"
    );
    match caller.call("dial", vec![sipp.uri("carol").into()]) {
        Ok(sono_testkit::Reply::Error(info)) => {
            let text = format!("{info:?}");
            assert!(text.contains("draining"), "{text}");
        }
        other => panic!("a dial while draining was not refused: {other:?}"),
    }
    // The call in progress is untouched for as long as its client wants.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !caller.has_call_status(0),
        "the call was cut: {:?}",
        caller.call_statuses()
    );
    let hung_up = Instant::now();
    caller.call("hangup", vec![]).unwrap();
    assert!(caller.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    // With its last call over, sono says goodbye and exits well before the grace.
    let status = sono.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        sono.log()
    );
    assert!(hung_up.elapsed() < Duration::from_secs(5));
    let log = sono.log();
    assert!(
        log.contains("draining") && log.contains("every call and registration ended"),
        "{log}"
    );
}

#[test]
fn the_admin_drain_ends_calls_left_when_the_grace_runs_out() {
    let mut sipp = Sipp::uas(&scenario("uas_200"), 1, Duration::from_secs(40), &[]);
    let mut sono = Sono::start(
        SONO,
        &format!(
            "[http]\nadmin_key = \"{ADMIN}\"\n[shutdown]\ngrace = \"2s\"\n\
             [media]\nrtp_port_min = 35300\nrtp_port_max = 35399\nrtp_timeout = \"0s\"\n"
        ),
    );
    let mut caller = in_call(&sono, &sipp);
    // A connection's own token may not drain the node.
    let drain = |token: &str| {
        let bearer = format!("Bearer {token}");
        http::request(
            sono.http,
            "POST",
            "/api/v1/drain",
            &[("Authorization", &bearer)],
            b"",
        )
        .unwrap()
    };
    let refused = drain(&caller.token());
    assert_eq!(refused.status, 403, "{}", refused.text());
    let asked = Instant::now();
    let accepted = drain(ADMIN);
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    assert_eq!(accepted.json()["draining"], true);
    // The grace (2 s) runs out with the call still up: sono ends it (BYE,
    // which SIPp answers), the client hears status 0, then goodbye.
    assert!(
        caller.wait_call_status(0, Duration::from_secs(6)),
        "{:?}\n{}",
        caller.call_statuses(),
        sono.log()
    );
    let ended = asked.elapsed();
    assert!(
        ended >= Duration::from_millis(1800),
        "the call ended {ended:?} after the drain, before the grace of 2 s"
    );
    sipp.assert_success(WAIT);
    let status = sono.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        sono.log()
    );
}

#[test]
fn tokens_and_rtmpt_sessions_name_their_node_and_another_nodes_get_421() {
    let sono = Sono::start(
        SONO,
        "[cluster]\nnode_id = \"n1\"\nnodes = { n1 = \"10.0.0.11:8080\", n2 = \"10.0.0.12:8080\" }\n",
    );
    let c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let token = c.token();
    assert!(token.starts_with("n1-"), "{token}");
    let mut tunnelled = FlashClient::connect_tunnel(sono.http, "phone", ObjectEncoding::Amf3)
        .expect("an RTMPT session");
    let session = tunnelled
        .tunnel()
        .map(|t| t.session.clone())
        .unwrap_or_default();
    assert!(session.starts_with("n1-"), "{session}");
    // The connection's own token works here.
    let own = http::get(
        sono.http,
        &format!("/api/v1/connections/{}", c.connection_id()),
        &token,
    )
    .unwrap();
    assert_eq!(own.status, 200, "{}", own.text());
    // Another node's token: 421, naming that node and where it is.
    let other = format!("n2-{}", "0".repeat(32));
    let wrong = http::get(sono.http, "/api/v1/connections/1", &other).unwrap();
    assert_eq!(wrong.status, 421, "{}", wrong.text());
    let body = wrong.json();
    assert_eq!(body["error"]["code"], "misdirected");
    assert_eq!(body["error"]["node"], "n2");
    assert_eq!(body["error"]["node_address"], "10.0.0.12:8080");
    let wrong = http::get(sono.http, "/api/v1/token", &other).unwrap();
    assert_eq!(wrong.status, 421);
    // A made-up token of this node, or of no listed node, is just wrong.
    let forged = format!("n1-{}", "0".repeat(32));
    assert_eq!(
        http::get(sono.http, "/api/v1/token", &forged)
            .unwrap()
            .status,
        403
    );
    let stranger = format!("n9-{}", "0".repeat(32));
    assert_eq!(
        http::get(sono.http, "/api/v1/token", &stranger)
            .unwrap()
            .status,
        403
    );
    // An RTMPT request of another node's session: 421 as well.
    let rtmpt = http::request(sono.http, "POST", &format!("/idle/{other}/1"), &[], b"\0").unwrap();
    assert_eq!(rtmpt.status, 421, "{}", rtmpt.text());
    assert!(rtmpt.text().contains("n2"), "{}", rtmpt.text());
}

/// HAProxy (`send-proxy-v2`) in front of sono on loopback: sono sees the
/// address HAProxy's client came from, not HAProxy's; a connection without
/// the header is dropped; the per-address connect limit counts the real
/// clients.
#[test]
fn the_proxy_protocol_header_gives_sono_the_real_client() {
    sono_testkit::require_tool("haproxy", "haproxy");
    let sono = Sono::start(
        SONO,
        &format!(
            "[http]\nadmin_key = \"{ADMIN}\"\n[cluster]\ntrusted_proxies = [\"127.0.0.1/32\"]\nproxy_protocol = true\n\
             [limits]\nexempt_loopback = false\nrtmp_connects_per_second = 1\nrtmp_burst = 2\n"
        ),
    );
    let haproxy = sono_testkit::Haproxy::start(&format!(
        "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         frontend rtmp\n  bind 127.0.0.1:@PORT@\n  default_backend sono\n\
         backend sono\n  server s1 {} send-proxy-v2\n",
        sono.rtmp
    ));
    // A client from 127.0.0.7 through HAProxy.
    let through = FlashClient::connect_from(
        [127, 0, 0, 7].into(),
        haproxy.addr,
        "phone",
        ObjectEncoding::Amf3,
    )
    .expect("a connection through HAProxy");
    let list = http::get(sono.http, "/api/v1/connections", ADMIN).unwrap();
    let peers: Vec<String> = list.json()["connections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["peer"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        peers.iter().any(|p| p.starts_with("127.0.0.7:")),
        "{peers:?} ({})",
        list.text()
    );
    drop(through);
    // Without the header: dropped, and said why.
    assert!(FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).is_err());
    assert!(
        sono.wait_log("bad PROXY protocol header", WAIT),
        "{}",
        sono.log()
    );
    // The limit (burst 2) counts each real client: a third connect claiming
    // 203.0.113.7 is refused, another address still gets in.
    let server = sono.rtmp;
    let claim = |ip: [u8; 4]| {
        let header = sono_rtmp::proxy_header::encode(SocketAddr::from((ip, 40000)), server);
        FlashClient::connect_after(server, &header, "phone", ObjectEncoding::Amf3)
    };
    let _a = claim([203, 0, 113, 7]).expect("first");
    let _b = claim([203, 0, 113, 7]).expect("second");
    assert!(claim([203, 0, 113, 7]).is_err(), "a third within the burst");
    let _c = claim([198, 51, 100, 1]).expect("another address");
}
