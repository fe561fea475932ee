//! The media fuzz targets' seeds (`fuzz/seeds/{rtcp,speex,media_downlink,
//! media_uplink}`), replayed on every test run, each also cut at every few
//! bytes and with bits flipped: a corpus of malformed input that must never
//! panic any of the drivers in `sono_media::fuzzing`.

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| std::fs::read(e.path()).expect("a seed"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// The seed, its prefixes, and copies with one bit flipped at a spread of
/// positions (a deterministic stand-in for the fuzzer's first mutations).
fn malformed(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    // About a hundred variants per seed, whatever its size.
    for cut in (0..seed.len()).step_by((seed.len() / 50).max(3)) {
        out.push(seed[..cut].to_vec());
    }
    for (i, pos) in (0..seed.len())
        .step_by((seed.len() / 50).max(5))
        .enumerate()
    {
        let mut m = seed.to_vec();
        m[pos] ^= 1 << (i % 8);
        out.push(m);
    }
    out
}

fn replay(target: &str, driver: fn(&[u8])) {
    for seed in seeds(target) {
        for input in malformed(&seed) {
            driver(&input);
        }
    }
}

#[test]
fn rtcp_corpus() {
    replay("rtcp", sono_media::fuzzing::rtcp);
}

#[test]
fn speex_corpus() {
    replay("speex", sono_media::fuzzing::speex);
}

#[test]
fn downlink_corpus() {
    replay("media_downlink", sono_media::fuzzing::downlink);
}

#[test]
fn uplink_corpus() {
    replay("media_uplink", sono_media::fuzzing::uplink);
}

#[test]
fn nellymoser_corpus() {
    replay("nellymoser", sono_media::fuzzing::nellymoser);
}
