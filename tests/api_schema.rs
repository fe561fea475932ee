//! The REST API against its own OpenAPI document, by schemathesis (PyPI):
//! examples, boundary values, random and stateful sequences, with the admin
//! key and with a connection's token. Every answer must match the document
//! (status, content type, body schema), no request may get a 5xx, and
//! undeclared methods must get 405 with `Allow`, schema-violating requests
//! 400. The live-event streams never end, so they are left to `http_side.rs`.
//! Its first run found a panic in the SIP URI parser (a multi-byte character
//! where the scheme would end), fixed and kept as a unit test.

use std::process::{Command, Stdio};
use std::time::Duration;

use sono_rtmp::ObjectEncoding;
use sono_testkit::{require_tool, wait_with_output_or_kill, FlashClient, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const ADMIN: &str = "schemathesis-admin-key-0123456789";

fn schemathesis(sono: &Sono, token: &str) -> (bool, String) {
    let base = format!("http://{}/api/v1", sono.http);
    let child = Command::new("schemathesis")
        .args(["run", &format!("{base}/openapi.json"), "--url", &base])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Draining would end the run: tests/drain.rs covers it.
        .args(["--exclude-path-regex", "(events|drain)$"])
        .args(["--checks", "all", "--max-examples", "25", "--seed", "7"])
        // A SIP URI's grammar (RFC 3261 §25) is no JSON Schema pattern: a
        // string the document allows may still be refused with 400, which
        // this check alone would count against us.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--request-timeout", "10", "--no-color"])
        // The WebRTC offer is SDP text, which schemathesis cannot send
        // without a serializer of ours.
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting schemathesis");
    let run = wait_with_output_or_kill(child, Duration::from_secs(240));
    (run.success(), format!("{}{}", run.stdout, run.stderr))
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    require_tool("schemathesis", "schemathesis (pip install schemathesis)");
    let sono = Sono::start(
        SONO,
        &format!("[http]\nadmin_key = \"{ADMIN}\"\n[media]\nrtp_port_min = 37000\nrtp_port_max = 37999\n"),
    );
    // A live connection with id 1, the id the document's examples use.
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    assert_eq!(c.connection_id(), 1);
    let token = c.token();
    for (who, key) in [("admin key", ADMIN), ("connection token", token.as_str())] {
        let (ok, report) = schemathesis(&sono, key);
        let summary: String = report
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n");
        eprintln!("schemathesis with the {who}:\n{summary}");
        assert!(ok, "schemathesis with the {who} found failures:\n{report}");
        assert!(report.contains(" passed"), "{report}");
        assert!(
            !report.contains("5xx") || !report.contains("Server error"),
            "{report}"
        );
    }
    // sono is still up and the connection still answers.
    assert!(sono.get("/healthz").is_some());
    assert!(c.call("register", vec![]).unwrap().value().is_some());
}
