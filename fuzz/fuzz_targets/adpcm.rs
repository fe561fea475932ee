//! See `sono_media::fuzzing::adpcm` for what this target checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_media::fuzzing::adpcm(data));
