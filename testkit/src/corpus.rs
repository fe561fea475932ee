//! The fuzz targets' seed corpora (`fuzz/seeds/TARGET`), for tests that
//! replay them on every run: each seed as it is, cut at every few bytes, and
//! with bits flipped at a spread of positions (a deterministic stand-in for
//! the fuzzer's first mutations), so the corpus is also one of malformed input.

use std::path::Path;

/// The seeds of `target`, sorted; a target without seeds fails the test.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
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

/// The seed, its prefixes, and copies with one bit flipped: about a hundred
/// variants per seed, whatever its size.
pub fn malformed(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
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

/// Runs `driver` on every seed of `target` and its malformed variants.
pub fn replay(target: &str, mut driver: impl FnMut(&[u8])) {
    for seed in seeds(target) {
        for input in malformed(&seed) {
            driver(&input);
        }
    }
}
