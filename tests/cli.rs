//! The command line and settings as an operator meets them: --version, --help,
//! check-config with files and environment overrides, refusals, JSON logs.

use std::process::Command;
use std::time::Duration;

use sono_testkit::Sono;

const SONO: &str = env!("CARGO_BIN_EXE_sono");

fn sono(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = std::env::temp_dir(); // no config/sono.toml here: embedded defaults
    let out = Command::new(SONO)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("running sono");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (code, out, _) = sono(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("sono {}", env!("CARGO_PKG_VERSION")));
    let (code, out, _) = sono(&["--help"], &[]);
    assert_eq!(code, 0);
    for word in ["run", "check-config", "--config"] {
        assert!(out.contains(word), "--help does not mention {word}:\n{out}");
    }
}

#[test]
fn check_config_shows_defaults_and_environment_overrides() {
    let (code, out, err) = sono(&["check-config"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("embedded defaults"), "{out}");
    assert!(out.contains("listen = \"127.0.0.1:1935\""), "{out}");

    let (code, out, err) = sono(
        &["check-config"],
        &[
            ("SONO_RTMP__LISTEN", "127.0.0.1:19999"),
            ("SONO_RTMP__APPS", "phone,sono"),
            ("SONO_LOG__FORMAT", "json"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:19999\""), "{out}");
    assert!(
        out.contains("\"phone\"") && out.contains("\"sono\""),
        "{out}"
    );
    assert!(out.contains("format = \"json\""), "{out}");
}

#[test]
fn bad_settings_are_refused_with_a_reason() {
    let (code, _, err) = sono(&["check-config"], &[("SONO_RTMP__CHUNK_SIZE", "5")]);
    assert_eq!(code, 2);
    assert!(err.contains("rtmp.chunk_size"), "{err}");
    let (code, _, err) = sono(&["--config", "/nonexistent/sono.toml", "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = sono(&["check-config"], &[("SONO_RTMP__IDLE_TIMEOUT", "soon")]);
    assert_eq!(code, 2, "{err}");
    // A port already taken: a clear error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = sono(&["run"], &[("SONO_RTMP__LISTEN", &addr)]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot listen for RTMP"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut sono = Sono::start(SONO, "[log]\nformat = \"json\"\n");
    let _ = sono.terminate(Duration::from_secs(10));
    let log = sono.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
}
