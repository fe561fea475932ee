//! The demo page in Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/demo_call.mjs`): it loads `/`, connects with sono.js's REST
//! transport to a connection whose media comes from ffmpeg (publishing under
//! a stream key, which the page uses as its token), dials baresip, sees the
//! call's events, sends a DTMF digit from the keypad, and hangs up.
//! `UPDATE_DOCS_SCREENSHOT=1` copies its screenshot to docs/demo-page.png.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sono_testkit::audio::{self, AudioDir};
use sono_testkit::{wait_with_output_or_kill, Baresip, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_demo_page_places_and_ends_a_call_over_rest_in_headless_chromium() {
    let browser_dir = sono_testkit::browser_dir();
    let dir = AudioDir::new("browser-demo");
    let tone = dir.file("peer.wav");
    audio::tone_wav(&tone, 16_000, 40, 600);
    let peer = Baresip::start(&tone, (35000, 35999), Duration::from_secs(90));
    let sono = Sono::start(
        SONO,
        "[media]\nrtp_port_min = 36000\nrtp_port_max = 36999\n",
    );
    let key = "browser-demo-key-0123456789abcdef";
    let mut ffmpeg = sono.ffmpeg_publishing_under_key(key, 1000);

    let screenshot = dir.file("demo-page.png");
    let base = format!("http://{}", sono.http);
    let node = Command::new("node")
        .current_dir(&browser_dir)
        .arg("demo_call.mjs")
        .args([&base, "", key, &peer.uri()])
        .arg(&screenshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let run = wait_with_output_or_kill(node, Duration::from_secs(90));
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(
        run.success(),
        "the browser run failed: {stdout}\n{stderr}\n{}",
        sono.log()
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!("browser saw: {result}");
    assert!(result["title"].as_str().unwrap_or("").contains("sono"));
    assert!(
        result["inCall"]
            .as_str()
            .unwrap_or("")
            .starts_with("In call"),
        "{result}"
    );
    assert!(
        result["afterHangup"]
            .as_str()
            .unwrap_or("")
            .starts_with("No call"),
        "{result}"
    );
    let events = result["events"].to_string();
    for needle in [
        "Sono.Connection.State",
        "Sono.Call.Status",
        "status_code\\\":4",
        "status_code\\\":0",
    ] {
        assert!(events.contains(needle), "no {needle} in {events}");
    }
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    // The call really happened at the SIP peer, DTMF included.
    assert!(peer.wait_log("received event: '5'", WAIT), "{}", peer.log());
    assert!(peer.wait_log("session closed", WAIT), "{}", peer.log());
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if std::env::var_os("UPDATE_DOCS_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo-page.png");
        std::fs::copy(&screenshot, docs).expect("copying the screenshot to docs/");
    }
}
