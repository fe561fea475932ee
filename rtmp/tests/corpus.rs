//! The malformed-input corpus (fuzz/seeds/, written by fuzz/make_seeds.py) run on
//! every test run through the same entry points as the fuzz targets, in every
//! read size from 1 to 64 bytes: valid seeds must pass, malformed ones must be
//! refused with the expected reason, and none may panic.

use std::path::Path;

use sono_rtmp::api::ClientApi;
use sono_rtmp::fuzzing::{amf_round_trip, drive_session_in, Split};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("a seed file"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn session_corpus_in_every_read_size() {
    let expectations = [
        ("phone_amf0", None),
        ("phone_amf3", None),
        ("phone_lines", None),
        ("mod_rtmp_phone", None),
        ("siprtmp_phone", None),
        ("publish_audio", None),
        ("play", None),
        ("chunk_size_then_big", None),
        ("ping_and_ack", None),
        ("abort", None),
        ("bad_chunk_size", Some("chunk size")),
        ("zero_chunk_size", Some("chunk size 0")),
        ("oversized_message", Some("over the limit")),
        ("unknown_type", Some("unknown message type 7")),
        ("compressed_first", Some("compressed header")),
        ("truncated_amf", Some("ends in the middle")),
        ("reserved_marker", Some("unknown AMF0 type marker")),
        ("bad_format_byte", Some("format byte")),
        ("no_command_name", Some("without a name")),
        ("bad_utf8", Some("UTF-8")),
        ("publish_unknown_stream", Some("never created")),
        ("interrupted_message", Some("before finishing")),
        ("deep_nesting", Some("nested deeper")),
        ("reference_bomb", Some("more than")),
    ];
    let corpus = seeds("rtmp_session");
    assert_eq!(
        corpus.len(),
        expectations.len(),
        "a seed without an expectation"
    );
    for (name, expected) in expectations {
        let (_, data) = corpus
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("seed {name} is missing: run fuzz/make_seeds.py"));
        let input = &data[1..];
        let api = match data[0] >> 6 {
            1 => ClientApi::ModRtmp,
            2 => ClientApi::Siprtmp,
            _ => ClientApi::Sono,
        };
        for size in 1..=64u8 {
            let result = drive_session_in(input, Split::from_byte(size - 1), api);
            match (expected, result) {
                (None, Ok(())) => {}
                (Some(reason), Err(e)) => {
                    assert!(
                        e.to_string().contains(reason),
                        "{name} in reads of {size}: {e}"
                    )
                }
                (expected, result) => {
                    panic!("{name} in reads of {size}: expected {expected:?}, got {result:?}")
                }
            }
        }
        assert_eq!(
            drive_session_in(input, Split::whole(), api).is_ok(),
            expected.is_none(),
            "{name} whole"
        );
    }
}

#[test]
fn amf_corpus_round_trips() {
    for (_, data) in seeds("amf") {
        amf_round_trip(&data);
    }
}

#[test]
fn rtmpt_path_corpus_runs_clean() {
    let corpus = seeds("rtmpt_path");
    assert!(corpus.len() >= 2);
    for (_, data) in corpus {
        sono_rtmp::fuzzing::tunnel_requests(&data);
        // Every cut of each seed too, as a fuzzer would mutate it.
        for cut in 0..data.len() {
            sono_rtmp::fuzzing::tunnel_requests(&data[..cut]);
        }
    }
}

#[test]
fn proxy_header_corpus_runs_clean() {
    let corpus = seeds("proxy_header");
    assert!(corpus.len() >= 10);
    for (name, data) in corpus {
        sono_rtmp::fuzzing::proxy_header(&data);
        for cut in 0..data.len() {
            sono_rtmp::fuzzing::proxy_header(&data[..cut]);
        }
        // What each seed is: the valid ones give a client, the rest an error.
        let fixed: Option<&[u8; 16]> = data.get(..16).and_then(|b| b.try_into().ok());
        let verdict = fixed
            .ok_or(())
            .and_then(|f| sono_rtmp::proxy_header::header_length(f).map_err(|_| ()))
            .and_then(|n| data.get(..n).ok_or(()))
            .and_then(|h| sono_rtmp::proxy_header::client_address(h).map_err(|_| ()));
        match name.as_str() {
            "valid_ipv4" | "valid_ipv6" | "tlv_noop" => {
                assert!(matches!(verdict, Ok(Some(_))), "{name}: {verdict:?}")
            }
            "local" => assert_eq!(verdict, Ok(None), "{name}"),
            _ => assert!(
                verdict.is_err() || verdict == Ok(None),
                "{name}: {verdict:?}"
            ),
        }
    }
}
