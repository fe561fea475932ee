//! Parsing WWW-Authenticate/Proxy-Authenticate challenges from any peer, and
//! answering whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_sip::digest::{Challenge, Credentials, DigestSession};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(challenge) = Challenge::parse(text) {
        let creds = Credentials {
            username: "alice".into(),
            password: "pw".into(),
        };
        let answer = DigestSession::new(challenge).authorize(&creds, "REGISTER", "sip:example.org", "c0ffee");
        assert!(answer.starts_with("Digest "));
    }
});
