//! Secrets stay secret: `sip.password` and `http.admin_key` never appear in
//! anything sono prints — `check-config` (settings from a file or from the
//! environment), refusals of bad settings, or the log of a run in which the
//! admin key is used and refused over REST and the password answers a real
//! challenge (SIPp's 401) — nor in what the REST API answers.

use std::process::Command;
use std::time::Duration;

use sono_rtmp::ObjectEncoding;
use sono_testkit::http::request;
use sono_testkit::{FlashClient, Sipp, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");
const WAIT: Duration = Duration::from_secs(10);
/// SIPp's uas_401 scenario checks this password; the key is ours.
const PASSWORD: &str = "secret";
const ADMIN_KEY: &str = "adm1n-K3y-0f-th3-0p3rat0r";

/// Runs `sono ARGS` with `env`; its exit code and everything it printed.
fn sono(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(SONO)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("running sono");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{s:?} was printed:\n{text}");
    }
}

#[test]
fn check_config_and_refusals_never_print_a_secret() {
    let dir = std::env::temp_dir().join(format!("sono-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sono.toml");
    let password = "file-Pa55w0rd-xyzzy";
    let key = "file-adm1n-k3y-plugh-0123";
    std::fs::write(
        &file,
        format!(
            "[http]\nadmin_key = \"{key}\"\n[sip]\nauth_user = \"alice\"\npassword = \"{password}\"\nauth_realms = [\"sono.test\"]\n"
        ),
    )
    .unwrap();
    let config = file.display().to_string();
    let (code, out) = sono(&["--config", &config, "check-config"], &[]);
    assert_eq!(code, 0, "{out}");
    assert_hidden(&out, &[password, key]);
    assert!(out.contains("password = \"(set, not shown)\""), "{out}");
    assert!(out.contains("admin_key = \"(set, not shown)\""), "{out}");

    let env_password = "env-Pa55w0rd-fnord";
    let env_key = "env-adm1n-k3y-frobozz-99";
    let env = [
        ("SONO_SIP__PASSWORD", env_password),
        ("SONO_HTTP__ADMIN_KEY", env_key),
        ("SONO_SIP__AUTH_USER", "bob"),
        ("SONO_SIP__AUTH_REALMS", "sono.test"),
    ];
    let (code, out) = sono(&["check-config"], &env);
    assert_eq!(code, 0, "{out}");
    assert_hidden(&out, &[env_password, env_key]);
    assert!(out.contains("auth_user = \"bob\""), "{out}");

    // Refused settings name the key, never the value.
    let short_key = "short-k3y-quux";
    let refusals = [
        vec![("SONO_HTTP__ADMIN_KEY", short_key)],
        vec![
            ("SONO_SIP__PASSWORD", env_password),
            ("SONO_SIP__AUTH_USER", "bob"),
        ],
        vec![
            ("SONO_SIP__PASSWORD", env_password),
            ("SONO_SIP__T1", "nonsense"),
        ],
    ];
    for env in refusals {
        for command in ["check-config", "run"] {
            let (code, out) = sono(&[command], &env);
            assert_eq!(code, 2, "{command} with {env:?}: {out}");
            assert_hidden(&out, &[short_key, env_password]);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_that_uses_its_secrets_logs_none_of_them() {
    let mut sipp = Sipp::uas(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_401.xml"),
        1,
        WAIT,
        &[],
    );
    let mut sono = Sono::start(
        SONO,
        &format!(
            "[log]\nlevel = \"debug\"\n[http]\nadmin_key = \"{ADMIN_KEY}\"\n\
[sip]\nauth_user = \"alice\"\npassword = \"{PASSWORD}\"\nauth_realms = [\"sono.test\"]\n\
[media]\nrtp_port_min = 34400\nrtp_port_max = 34599\n"
        ),
    );
    let mut c = FlashClient::connect(sono.rtmp, "phone", ObjectEncoding::Amf3).unwrap();
    // The password answers SIPp's challenge (SIPp checks the digest).
    c.send_call("dial", vec![sipp.uri("bob").into()]).unwrap();
    assert!(
        c.wait_call_status(4, WAIT),
        "{:?}\n{}",
        c.call_statuses(),
        sono.log()
    );
    // The admin key is used, and a near miss refused.
    let bearer = format!("Bearer {ADMIN_KEY}");
    let mut answers = String::new();
    for (auth, path) in [
        (bearer.as_str(), "/api/v1/connections"),
        (bearer.as_str(), "/api/v1/calls"),
        ("Bearer adm1n-K3y-0f-th3-0p3rat0R", "/api/v1/connections"),
    ] {
        let r = request(sono.http, "GET", path, &[("Authorization", auth)], b"").unwrap();
        answers.push_str(&r.text());
    }
    for path in ["/metrics", "/healthz", "/api/v1/openapi.json"] {
        answers.push_str(&sono.get(path).unwrap_or_default());
    }
    assert!(answers.contains("connections"), "{answers}");
    c.call("hangup", vec![]).unwrap();
    assert!(c.wait_call_status(0, WAIT));
    sipp.assert_success(WAIT);
    sono.terminate(WAIT);
    let log = sono.log();
    assert!(log.contains("call answered"), "{log}");
    assert_hidden(&log, &[PASSWORD, ADMIN_KEY, "adm1n-K3y"]);
    // ("secret" is a word the OpenAPI document uses; the key is not.)
    assert_hidden(&answers, &[ADMIN_KEY, "adm1n-K3y"]);
}
