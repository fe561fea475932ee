//! Three sono nodes behind Kamailio and HAProxy, each in a network namespace
//! of its own on a bridge this test makes (testkit's `cluster`, with the
//! configs docs/cluster.md shows). Clients, the SIP trunk and the SIP
//! caller live in a namespace of their own; nothing leaves the bridge.
//!
//! One life of the cluster, in order: 300 clients through HAProxy, calls
//! to a sample of them through Kamailio, calls out from every node, an
//! RTMPT client and a REST/SSE controller through HAProxy; then one node
//! drained mid-load and restarted, and one killed with SIGKILL.
//! Needs root (namespaces), kamailio, haproxy and sipp.

use std::time::{Duration, Instant};

use sono_rtmp::phone::code;
use sono_rtmp::{AmfValue, ObjectEncoding};
use sono_testkit::cluster::{node_address, node_name, node_of, Cluster, ADMIN};
use sono_testkit::{http, FlashClient};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(15);
const CLIENTS: usize = 300;

/// A client of the cluster: its connection, implicit user and node.
struct Client {
    c: FlashClient,
    user: String,
    node: usize,
}

fn connect(cluster: &Cluster) -> Client {
    let mut c = FlashClient::connect(cluster.rtmp(), "phone", ObjectEncoding::Amf3)
        .unwrap_or_else(|e| panic!("connecting through HAProxy: {e}\n{}", cluster.logs()));
    let node = node_of(&c.token()).unwrap_or_else(|| panic!("token {} names no node", c.token()));
    let user = c
        .register_implicit()
        .unwrap_or_else(|e| panic!("register: {e}\n{}", cluster.logs()));
    Client { c, user, node }
}

fn incoming(c: &FlashClient) -> usize {
    c.events
        .iter()
        .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::CALL_INCOMING))
        .count()
}

fn ended(c: &FlashClient) -> bool {
    let s = c.call_statuses();
    s.iter().any(|(st, _, _)| *st == 4) && s.last().is_some_and(|(st, _, _)| *st == 0)
}

/// SIPp calls each of `picked` through Kamailio; each client accepts its
/// call, and the caller hangs up. Every call must ring the client it was
/// for, once, and connect.
fn call_through_kamailio(cluster: &Cluster, clients: &mut [Client], picked: &[usize], tag: &str) {
    let users: Vec<String> = picked.iter().map(|&i| clients[i].user.clone()).collect();
    let before: Vec<usize> = picked.iter().map(|&i| incoming(&clients[i].c)).collect();
    let mut sipp = cluster.call_users(&users, 20, tag);
    let mut accepted = vec![false; picked.len()];
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let mut done = 0;
        for (k, &i) in picked.iter().enumerate() {
            let c = &mut clients[i].c;
            let _ = c.pump(Duration::from_millis(2));
            if !accepted[k] && incoming(c) > before[k] {
                c.send_call("accept", vec![]).expect("accept");
                accepted[k] = true;
            }
            if accepted[k] && ended(c) {
                done += 1;
            }
        }
        if done == picked.len() {
            break;
        }
    }
    for (k, &i) in picked.iter().enumerate() {
        let cl = &clients[i];
        assert!(
            accepted[k] && ended(&cl.c),
            "{tag}: the call to {} (on {}) did not ring and connect: {:?}\n{}\n{}",
            cl.user,
            node_name(cl.node),
            cl.c.call_statuses(),
            cluster.sipp_report(tag),
            cluster.logs()
        );
        assert_eq!(
            incoming(&cl.c),
            before[k] + 1,
            "{tag}: {} rang twice",
            cl.user
        );
    }
    let status = sipp.wait(WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "{tag}: SIPp {status:?}\n{}",
        cluster.sipp_report(tag)
    );
    // Kamailio sent each call to the node holding its user.
    let log = cluster.kamailio_log();
    for &i in picked {
        let cl = &clients[i];
        let line = format!(
            "CALL {} to sip:{}@{}",
            cl.user,
            cl.user,
            node_address(cl.node)
        );
        assert!(log.contains(&line), "{line:?} not in Kamailio's log");
    }
}

/// Each of `picked` dials the trunk through its node and Kamailio, the
/// call connects, and the client hangs up.
fn dial_out(cluster: &Cluster, clients: &mut [Client], picked: &[usize]) {
    for &i in picked {
        let before = clients[i].c.call_statuses().len();
        clients[i]
            .c
            .send_call("dial", vec!["sip:trunk@10.200.0.2".into()])
            .unwrap();
        let c = &mut clients[i].c;
        assert!(
            c.wait_for(WAIT, |c| c.call_statuses()[before..]
                .iter()
                .any(|(s, _, _)| *s == 4)),
            "a dialled call from {} did not connect: {:?}\n{}",
            node_name(clients[i].node),
            c.call_statuses(),
            cluster.logs()
        );
    }
    for &i in picked {
        let c = &mut clients[i].c;
        c.call("hangup", vec![]).unwrap();
        assert!(c.wait_for(WAIT, |c| c
            .call_statuses()
            .last()
            .is_some_and(|(s, _, _)| *s == 0)));
    }
}

/// Indices of up to `n` clients on `node`, skipping `skip` first.
fn on_node(clients: &[Client], node: usize, skip: usize, n: usize) -> Vec<usize> {
    clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.node == node)
        .map(|(i, _)| i)
        .skip(skip)
        .take(n)
        .collect()
}

#[test]
fn three_nodes_behind_kamailio_and_haproxy() {
    let mut cluster = Cluster::start(SONO, 3, "");

    // 300 clients through HAProxy, spread over the three nodes, each with
    // its implicit URI registered at Kamailio by its node.
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| connect(&cluster)).collect();
    let mut per_node = [0usize; 3];
    for c in &clients {
        per_node[c.node] += 1;
    }
    assert!(
        per_node.iter().all(|&n| n >= CLIENTS / 3 - 10),
        "unbalanced: {per_node:?}"
    );
    let deadline = Instant::now() + WAIT;
    while cluster.total("sono_registrations") < CLIENTS as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        cluster.total("sono_registrations"),
        CLIENTS as f64,
        "{}",
        cluster.logs()
    );
    // Behind the PROXY protocol each node sees the clients' address, not HAProxy's.
    let list = http::get(cluster.node_http(0), "/api/v1/connections", ADMIN).unwrap();
    let peers = list.text();
    assert!(
        peers.contains("\"peer\":\"10.200.0.100:") && !peers.contains("\"peer\":\"10.200.0.3:"),
        "{peers}"
    );

    // Calls through Kamailio to ten clients of each node.
    let picked: Vec<usize> = (0..3).flat_map(|n| on_node(&clients, n, 0, 10)).collect();
    call_through_kamailio(&cluster, &mut clients, &picked, "sample");

    // Calls out from five clients of each node, through Kamailio to the trunk.
    let dialling: Vec<usize> = (0..3).flat_map(|n| on_node(&clients, n, 10, 5)).collect();
    dial_out(&cluster, &mut clients, &dialling);
    let log = cluster.kamailio_log();
    for n in 0..3 {
        let line = format!("DIAL trunk from node {}", node_address(n));
        assert!(log.contains(&line), "{line:?} not in Kamailio's log");
    }

    // An RTMPT client through HAProxy: every request of its session reaches
    // the node that opened it, through a whole call.
    let mut tunnelled = FlashClient::connect_tunnel(cluster.http(), "phone", ObjectEncoding::Amf3)
        .unwrap_or_else(|e| panic!("RTMPT through HAProxy: {e}\n{}", cluster.logs()));
    let session = tunnelled.tunnel().map(|t| t.session.clone()).unwrap();
    let tunnel_node = node_of(&session).expect("a node-prefixed session id");
    assert_eq!(node_of(&tunnelled.token()), Some(tunnel_node));
    tunnelled
        .send_call("dial", vec!["sip:trunk@10.200.0.2".into()])
        .unwrap();
    assert!(
        tunnelled.wait_call_status(4, WAIT),
        "{:?}\n{}",
        tunnelled.call_statuses(),
        cluster.logs()
    );
    let _ = tunnelled.pump(Duration::from_secs(2));
    tunnelled.call("hangup", vec![]).unwrap();
    assert!(tunnelled.wait_call_status(0, WAIT));

    // A REST/SSE controller through HAProxy drives a client of node n2.
    let ctl = on_node(&clients, 1, 20, 1)[0];
    let token = clients[ctl].c.token();
    let id = clients[ctl].c.connection_id();
    // As a browser's EventSource: the token in the URL (HAProxy routes on it).
    let mut events = http::EventStream::open(
        cluster.http(),
        &format!("/api/v1/connections/{id}/events?access_token={token}"),
        "",
    )
    .unwrap_or_else(|e| panic!("SSE through HAProxy: {e}"));
    let bearer = format!("Bearer {token}");
    let dial = http::request(
        cluster.http(),
        "POST",
        &format!("/api/v1/connections/{id}/dial"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        br#"{"uri":"sip:trunk@10.200.0.2"}"#,
    )
    .unwrap();
    assert!(dial.status < 300, "{} {}", dial.status, dial.text());
    assert!(
        events.wait_call_status(4, WAIT).is_some(),
        "no status 4 on the event stream"
    );
    let hangup = http::request(
        cluster.http(),
        "POST",
        &format!("/api/v1/connections/{id}/hangup"),
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert!(hangup.status < 300, "{} {}", hangup.status, hangup.text());
    assert!(events.wait_call_status(0, WAIT).is_some());
    drop(events);
    let _ = clients[ctl].c.pump(Duration::from_millis(50));
    // The same request sent straight to another node: 421, naming n2.
    let wrong = http::get(
        cluster.node_http(0),
        &format!("/api/v1/connections/{id}"),
        &token,
    )
    .unwrap();
    assert_eq!(wrong.status, 421, "{}", wrong.text());
    assert_eq!(wrong.json()["error"]["node"], "n2");
    assert_eq!(wrong.json()["error"]["node_address"], "10.200.0.12:8080");

    // Load on every node: two calls out per node, running on.
    let busy: Vec<usize> = (0..3).flat_map(|n| on_node(&clients, n, 30, 2)).collect();
    for &i in &busy {
        clients[i]
            .c
            .send_call("dial", vec!["sip:trunk@10.200.0.2".into()])
            .unwrap();
    }
    for &i in &busy {
        assert!(
            clients[i].c.wait_call_status(4, WAIT),
            "{:?}",
            clients[i].c.call_statuses()
        );
    }

    // Drain n1 (SIGTERM) mid-load.
    cluster.signal_node(0, "-TERM");
    let drained_at = Instant::now();
    let marked = cluster
        .wait_kamailio_log("NODE DOWN sip:10.200.0.11:5060", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("Kamailio never took n1 out\n{}", cluster.logs()));
    eprintln!("Kamailio took the draining n1 out after {marked:?} (its OPTIONS got 503)");
    // Its idle clients are sent away; they come back through HAProxy and
    // land on the others.
    let n1_busy: Vec<usize> = busy
        .iter()
        .copied()
        .filter(|&i| clients[i].node == 0)
        .collect();
    let n1_idle: Vec<usize> = (0..clients.len())
        .filter(|&i| clients[i].node == 0 && !n1_busy.contains(&i))
        .collect();
    for &i in &n1_idle {
        assert!(
            clients[i].c.wait_closed(Duration::from_secs(5)),
            "an idle client of the draining n1 was not sent away"
        );
        assert!(clients[i]
            .c
            .events
            .iter()
            .any(|e| e.get("code").and_then(AmfValue::as_str) == Some(code::SERVER_SHUTDOWN)));
    }
    for &i in &n1_idle {
        clients[i] = connect(&cluster);
        assert_ne!(
            clients[i].node, 0,
            "a new connection landed on the draining n1"
        );
    }
    // n1 removed the bindings of the clients it sent away (Expires: 0).
    let removed = |log: &str| {
        log.lines()
            .filter(|l| l.contains("REGISTER") && l.contains("expires=0 from 10.200.0.11"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while removed(&cluster.kamailio_log()) < n1_idle.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        removed(&cluster.kamailio_log()) >= n1_idle.len(),
        "{} of {} bindings removed by the draining n1",
        removed(&cluster.kamailio_log()),
        n1_idle.len()
    );
    // The calls in progress on n1 and elsewhere are untouched.
    std::thread::sleep(Duration::from_secs(1));
    for &i in &busy {
        let _ = clients[i].c.pump(Duration::from_millis(10));
        assert!(
            !clients[i].c.has_call_status(0),
            "a call on {} was cut by the drain: {:?}",
            node_name(clients[i].node),
            clients[i].c.call_statuses()
        );
    }
    // Calls to the moved clients ring on their new nodes.
    let moved: Vec<usize> = n1_idle.iter().copied().take(10).collect();
    call_through_kamailio(&cluster, &mut clients, &moved, "after-drain");
    // Every call ends when its client hangs up; n1 then exits cleanly,
    // long before its grace of 30 s.
    for &i in &busy {
        clients[i].c.call("hangup", vec![]).unwrap();
        assert!(clients[i].c.wait_for(WAIT, |c| c
            .call_statuses()
            .last()
            .is_some_and(|(s, _, _)| *s == 0)));
    }
    let status = cluster.wait_node(0, Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "n1 {status:?}\n{}",
        cluster.logs()
    );
    assert!(drained_at.elapsed() < Duration::from_secs(30));
    assert!(
        cluster
            .node_log(0)
            .contains("every call and registration ended and answered"),
        "{}",
        cluster.node_log(0)
    );

    // n1 comes back (a rolling restart): Kamailio and HAProxy take it in again.
    cluster.start_node(0);
    assert!(
        cluster
            .wait_kamailio_log("NODE UP sip:10.200.0.11:5060", Duration::from_secs(10))
            .is_some(),
        "{}",
        cluster.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut back: Vec<Client> = (0..10).map(|_| connect(&cluster)).collect();
    assert!(
        back.iter().any(|c| c.node == 0),
        "no new client reached the restarted n1"
    );
    let first_on_n1 = back.iter().position(|c| c.node == 0).unwrap_or(0);
    call_through_kamailio(&cluster, &mut back, &[first_on_n1], "restarted");

    // SIGKILL n2 in the middle of a call between one of its clients (who
    // talks) and a client of n3.
    let a = on_node(&clients, 1, 40, 1)[0];
    let mut a = clients.swap_remove(a);
    let b = on_node(&clients, 2, 40, 1)[0];
    let b_user = clients[b].user.clone();
    a.c.send_call("dial", vec![format!("sip:{b_user}@10.200.0.2").into()])
        .unwrap();
    assert!(
        clients[b].c.wait_for(WAIT, |c| incoming(c) > 0),
        "{}",
        cluster.logs()
    );
    clients[b].c.call("accept", vec![]).unwrap();
    assert!(a.c.wait_call_status(4, WAIT), "{:?}", a.c.call_statuses());
    assert!(clients[b].c.wait_call_status(4, WAIT));
    let dir = sono_testkit::AudioDir::new("cluster");
    let tone = dir.file("tone.wav");
    sono_testkit::audio::tone_wav(&tone, 16000, 2, 440);
    let tags = sono_testkit::flash_speex_tags(&tone).unwrap();
    let mic = a.c.create_stream().unwrap();
    a.c.publish(mic, "mic").unwrap();
    let talking = std::thread::spawn(move || {
        // Ends early, with an error, when n2 dies under it.
        let _ =
            a.c.publish_without_reading(mic, &tags, Duration::from_secs(20));
    });
    std::thread::sleep(Duration::from_secs(2));
    cluster.signal_node(1, "-KILL");
    let killed = Instant::now();
    let marked = cluster
        .wait_kamailio_log("NODE DOWN sip:10.200.0.12:5060", Duration::from_secs(10))
        .expect("Kamailio never took the killed n2 out");
    eprintln!(
        "Kamailio took the killed n2 out after {marked:?} (ping interval 1 s, fr_timer 1.5 s)"
    );
    assert!(marked < Duration::from_secs(5), "{marked:?}");
    // n3 hears no more RTP: media.rtp_timeout (6 s) ends B's call with a BYE.
    assert!(
        clients[b].c.wait_call_status(0, Duration::from_secs(12)),
        "{:?}\n{}",
        clients[b].c.call_statuses(),
        cluster.logs()
    );
    let why = clients[b]
        .c
        .call_statuses()
        .last()
        .and_then(|s| s.2.clone())
        .unwrap_or_default();
    eprintln!(
        "B's call ended {:?} after the kill: {why}",
        killed.elapsed()
    );
    assert!(why.contains("RTP"), "{why}");
    let _ = talking.join();
    // n2's clients lost their connection; back through HAProxy they land on
    // n1 or n3, and calls to them succeed.
    let n2_clients: Vec<usize> = (0..clients.len())
        .filter(|&i| clients[i].node == 1)
        .collect();
    for &i in n2_clients.iter().take(10) {
        assert!(clients[i].c.wait_closed(Duration::from_secs(5)));
        clients[i] = connect(&cluster);
        assert_ne!(clients[i].node, 1);
    }
    let moved: Vec<usize> = n2_clients.iter().copied().take(10).collect();
    call_through_kamailio(&cluster, &mut clients, &moved, "after-kill");
    dial_out(&cluster, &mut clients, &moved[..2]);
    drop(back);
}

/// docs/cluster.md shows the configs this test runs, as they are.
#[test]
fn the_docs_show_the_configs_the_test_uses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/cluster.md")).expect("docs/cluster.md");
    for file in ["kamailio.cfg", "haproxy.cfg", "dispatcher.list"] {
        let text = std::fs::read_to_string(root.join("tests/peers/cluster").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            doc.contains(text.trim_end()),
            "docs/cluster.md does not show tests/peers/cluster/{file} as it is"
        );
    }
}
