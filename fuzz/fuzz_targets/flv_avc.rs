//! See `sono_media::fuzzing::flv_avc` for what this target checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_media::fuzzing::flv_avc(data));
