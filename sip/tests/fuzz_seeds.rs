//! The SIP fuzz targets' seeds, replayed on every test run: the RFC 4475
//! corpus through the message path, and scripted peers through a call
//! (`fuzz/seeds/sip_call`), each also cut at every length.

use std::path::Path;

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file() && e.path().extension().is_none_or(|x| x != "md"))
        .map(|e| std::fs::read(e.path()).expect("a seed"))
        .collect();
    out.sort();
    out
}

#[test]
fn message_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let seeds = files(&dir);
    assert_eq!(seeds.len(), 49);
    for seed in &seeds {
        sono_sip::fuzzing::message(seed);
        // The same messages as a TCP stream, two glued together, in odd read sizes.
        let mut stream = vec![13u8];
        stream.extend_from_slice(seed);
        stream.extend_from_slice(seed);
        sono_sip::fuzzing::stream(&stream);
        for cut in (0..seed.len()).step_by(7) {
            sono_sip::fuzzing::message(&seed[..cut]);
        }
    }
}

#[test]
fn call_seeds_do_not_panic_and_send_only_valid_sip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_call");
    let seeds = files(&dir);
    assert!(seeds.len() >= 8);
    for seed in &seeds {
        sono_sip::fuzzing::call(seed);
        sono_sip::fuzzing::inbound(seed);
        for cut in (0..seed.len()).step_by(5) {
            sono_sip::fuzzing::call(&seed[..cut]);
            sono_sip::fuzzing::inbound(&seed[..cut]);
        }
    }
}

#[test]
fn registration_seeds_do_not_panic_and_send_only_valid_sip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_registration");
    let seeds = files(&dir);
    assert!(seeds.len() >= 5);
    for seed in &seeds {
        sono_sip::fuzzing::registration(seed);
        for cut in 0..seed.len() {
            sono_sip::fuzzing::registration(&seed[..cut]);
        }
    }
}

#[test]
fn dial_target_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_dial_target");
    let seeds = files(&dir);
    assert!(seeds.len() >= 4);
    for seed in &seeds {
        for cut in 0..=seed.len() {
            sono_sip::fuzzing::dial_target(&seed[..cut]);
        }
    }
}

#[test]
fn sdes_seeds_parse_as_expected_and_cut_short_never_panic() {
    use sono_sip::sdes::CryptoAttribute;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_sdes");
    let seeds = files(&dir);
    assert_eq!(seeds.len(), 6);
    let parsed: Vec<bool> = seeds
        .iter()
        .map(|s| CryptoAttribute::parse(&String::from_utf8_lossy(s)).is_ok())
        .collect();
    // Two good lines (the RFC's example, an _32 one), four refused.
    assert_eq!(parsed.iter().filter(|ok| **ok).count(), 2, "{parsed:?}");
    for seed in &seeds {
        for cut in 0..=seed.len() {
            let text = String::from_utf8_lossy(&seed[..cut]);
            if let Ok(c) = CryptoAttribute::parse(&text) {
                assert_eq!(CryptoAttribute::parse(&c.to_value()), Ok(c));
            }
        }
    }
}

#[test]
fn sdp_seeds_and_their_cuts_do_not_panic_and_answers_settle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_sdp");
    let seeds = files(&dir);
    assert!(seeds.len() >= 3);
    for seed in &seeds {
        sono_sip::fuzzing::sdp(seed);
        for cut in 0..seed.len() {
            sono_sip::fuzzing::sdp(&seed[..cut]);
        }
    }
}
