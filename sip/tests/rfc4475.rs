//! RFC 4475's torture messages (files in `tests/rfc4475/`): the valid ones
//! parse, the invalid ones get the status the RFC asks of a UAS or are
//! dropped when no response can be routed, and none panics, whole or cut at
//! any length.

use std::path::Path;

use sono_sip::message::{error_response, parse, refusal};

/// What sono does with each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parses; a request passes the UAS checks.
    Parses,
    /// Parses, then the UAS refuses it with this status (§8.2.2, §8.2.3).
    Refused(u16),
    /// The parser refuses it with this status.
    Answered(u16),
    /// Refused and dropped: no response can be sent (bad responses).
    Dropped,
}

use Expect::*;

const CASES: &[(&str, Expect)] = &[
    // §3.1.1 valid messages
    ("wsinv", Parses),
    ("intmeth", Answered(501)),
    ("esc01", Parses),
    ("escnull", Parses),
    ("esc02", Answered(501)),
    ("lwsdisp", Parses),
    ("longreq", Parses),
    ("dblreq", Parses),
    ("semiuri", Parses),
    ("transports", Parses),
    ("mpart01", Parses),
    ("unreason", Parses),
    ("noreason", Parses),
    // §3.1.2 invalid messages
    ("badinv01", Answered(400)),
    ("clerr", Answered(400)),
    ("ncl", Answered(400)),
    ("scalar02", Answered(400)),
    ("scalarlg", Dropped),
    ("quotbal", Answered(400)),
    ("ltgtruri", Answered(400)),
    ("lwsruri", Answered(400)),
    ("lwsstart", Answered(400)),
    ("trws", Answered(400)),
    ("escruri", Answered(400)),
    ("baddate", Answered(400)),
    ("regbadct", Answered(400)),
    ("badaspec", Answered(400)),
    ("baddn", Answered(400)),
    ("badvers", Answered(505)),
    ("mismatch01", Answered(400)),
    ("mismatch02", Answered(501)),
    ("bigcode", Dropped),
    // §3.2 transaction layer
    ("badbranch", Parses),
    // §3.3 application layer
    ("insuf", Answered(400)),
    ("unkscm", Answered(416)),
    ("novelsc", Answered(416)),
    ("unksm2", Parses),
    ("bext01", Refused(420)),
    ("invut", Refused(415)),
    ("regaut01", Parses),
    ("multi01", Answered(400)),
    ("mcl01", Answered(400)),
    ("bcast", Parses),
    ("zeromf", Parses),
    ("cparam01", Parses),
    ("cparam02", Parses),
    ("regescrt", Parses),
    ("sdp01", Parses),
    // §3.4 backward compatibility
    ("inv2543", Parses),
];

fn load(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc4475")
        .join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_message_of_the_rfc_is_in_the_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let files = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sip"))
        })
        .count();
    assert_eq!(files, CASES.len());
    assert_eq!(CASES.len(), 49, "RFC 4475 has 49 messages");
}

#[test]
fn each_message_gets_what_the_rfc_asks() {
    let source = "192.0.2.200:5060".parse().unwrap();
    let mut wrong = Vec::new();
    for (name, expect) in CASES {
        let bytes = load(name);
        let got = match parse(&bytes) {
            Ok(m) => match refusal(&m) {
                Some(r) => Refused(r.code),
                None => Parses,
            },
            Err(e) => {
                let answer = error_response(&bytes, &e, source, "t4475");
                match (e.status, answer) {
                    (Some(code), Some(answer)) => {
                        // The answer is a response with that status; it copies the
                        // request's Via as written, so it parses whenever that does.
                        assert!(
                            answer.starts_with(format!("SIP/2.0 {code} ").as_bytes()),
                            "{name}"
                        );
                        if let Ok(back) = parse(&answer) {
                            assert_eq!(back.status_code(), Some(code), "{name}");
                        }
                        Answered(code)
                    }
                    (None, _) => Dropped,
                    (Some(code), None) => panic!("{name}: status {code} but no answer"),
                }
            }
        };
        if got != *expect {
            wrong.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_prefix_of_any_message_panics() {
    for (name, _) in CASES {
        let bytes = load(name);
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut]);
        }
    }
}
