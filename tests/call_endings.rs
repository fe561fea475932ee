//! When a call ends, the client hears it when sono decides it, not when the
//! peer gets round to answering: a BYE to a peer that has gone is
//! retransmitted for 32 s (64·T1), but the call is over for the client as
//! the BYE leaves (RFC 3261 §15.1.1). SIPp answers the call and is then
//! killed, so nothing answers our BYE.
//!
//! Shutting down is the same in reverse: every client hears its call end
//! before sono says goodbye, and sono stays until every BYE is answered
//! (or `shutdown.close_timeout` runs out), so no peer is left with a dead call.

use std::time::{Duration, Instant};

use sono_rtmp::ObjectEncoding;
use sono_testkit::{FlashClient, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
/// How late status 0 may follow sono's decision (it used to take 32 s).
const PROMPT: Duration = Duration::from_millis(1500);

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(format!("{name}.xml"))
}

/// Waits for a status after the first `from` statuses; when it came.
fn wait_new_status(
    c: &mut FlashClient,
    from: usize,
    status: u8,
    wait: Duration,
) -> Option<Instant> {
    c.wait_for(wait, |c| {
        c.call_statuses()
            .get(from..)
            .is_some_and(|s| s.iter().any(|(st, _, _)| *st == status))
    })
    .then(Instant::now)
}

/// Dials a SIPp that answers, waits for status 4, then kills SIPp.
fn answered_then_peer_killed(c: &mut FlashClient) -> usize {
    let sipp = Sipp::uas(&scenario("uas_200"), 1, Duration::from_secs(30), &[]);
    let from = c.call_statuses().len();
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        wait_new_status(c, from, 4, WAIT).is_some(),
        "{:?}",
        c.call_statuses()
    );
    drop(sipp);
    c.call_statuses().len()
}

#[test]
fn a_peer_gone_mid_call_is_reported_when_the_rtp_timeout_hangs_up() {
    let sono = Sono::start(
        SONO,
        "[media]\nrtp_timeout = \"3s\"\nrtp_port_min = 34000\nrtp_port_max = 34199\n",
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    let from = answered_then_peer_killed(&mut c);
    let disconnecting = wait_new_status(&mut c, from, 3, WAIT)
        .unwrap_or_else(|| panic!("no status 3: {:?}\n{}", c.call_statuses(), sono.log()));
    let ended = wait_new_status(&mut c, from, 0, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("no status 0: {:?}", c.call_statuses()));
    let late = ended - disconnecting;
    assert!(
        late < PROMPT,
        "status 0 came {late:?} after status 3: {:?}",
        c.call_statuses()
    );
    let statuses = c.call_statuses();
    assert_eq!(
        statuses.last().and_then(|(_, _, r)| r.as_deref()),
        Some("no RTP from the peer for 3 s"),
        "{statuses:?}"
    );
    // The BYE runs on (retransmitted to nobody), and the client may call again.
    assert!(sono.wait_log("call ended", WAIT));
    let from = answered_then_peer_killed(&mut c);
    c.call("hangup", vec![]).unwrap();
    let asked = Instant::now();
    let ended = wait_new_status(&mut c, from, 0, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("no status 0 after hangup: {:?}", c.call_statuses()));
    assert!(
        ended - asked < PROMPT,
        "status 0 came {:?} after the client's hangup",
        ended - asked
    );
}

/// Ten clients in calls when sono gets SIGINT: each hears its call end
/// (status 0) before `Sono.Server.Shutdown`, and sono waits for every BYE's
/// answer (the peer takes 1.5 s) or `shutdown.close_timeout` (here 8 s) to
/// exit. (SIGTERM drains first: tests/drain.rs.)
fn ten_calls_then_sigterm(
    scenario_name: &str,
    kill_peer: bool,
) -> (Duration, Sono, Vec<FlashClient>) {
    let sipp = Sipp::uas(&scenario(scenario_name), 10, Duration::from_secs(40), &[]);
    let mut sono = Sono::start(
        SONO,
        "[shutdown]\nclose_timeout = \"8s\"\n[media]\nrtp_port_min = 34800\nrtp_port_max = 34999\n",
    );
    let mut clients = Vec::new();
    for _ in 0..10 {
        let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
        c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
        assert!(
            wait_new_status(&mut c, 0, 4, WAIT).is_some(),
            "{:?}\n{}",
            c.call_statuses(),
            sono.log()
        );
        clients.push(c);
    }
    let mut sipp = Some(sipp);
    if kill_peer {
        drop(sipp.take());
    }
    let asked = Instant::now();
    let status = sono.interrupt(Duration::from_secs(20));
    let took = asked.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        sono.log()
    );
    if let Some(mut sipp) = sipp {
        sipp.assert_success(WAIT);
    }
    for c in &mut clients {
        c.wait_closed(Duration::from_secs(2));
        let codes: Vec<(String, Option<u8>)> = c
            .events
            .iter()
            .map(|e| {
                (
                    e.get("code")
                        .and_then(sono_rtmp::AmfValue::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    e.get("status_code")
                        .and_then(sono_rtmp::AmfValue::as_number)
                        .map(|n| n as u8),
                )
            })
            .collect();
        let ended = codes
            .iter()
            .position(|(code, s)| code == sono_rtmp::phone::code::CALL_STATUS && *s == Some(0));
        let goodbye = codes
            .iter()
            .position(|(code, _)| code == sono_rtmp::phone::code::SERVER_SHUTDOWN);
        assert!(
            matches!((ended, goodbye), (Some(e), Some(g)) if e < g),
            "status 0 must come before the shutdown notice: {codes:?}"
        );
    }
    (took, sono, clients)
}

#[test]
fn shutdown_waits_for_every_bye_to_be_answered_and_clients_hear_their_calls_end() {
    let (took, sono, _) = ten_calls_then_sigterm("uas_slow_bye", false);
    let log = sono.log();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "sono exited {took:?} after SIGINT; the BYEs took 1.5 s to be answered\n{log}"
    );
    assert!(
        log.contains("every call and registration ended and answered"),
        "{log}"
    );
}

#[test]
fn shutdown_gives_unanswered_byes_the_close_timeout_and_no_more() {
    let (took, sono, _) = ten_calls_then_sigterm("uas_200", true);
    let log = sono.log();
    assert!(
        took >= Duration::from_millis(7500) && took < Duration::from_secs(12),
        "sono exited {took:?} after SIGINT, with shutdown.close_timeout = 8s\n{log}"
    );
    assert!(
        log.contains("close timeout over") && log.contains("calls_unanswered=10"),
        "{log}"
    );
}
