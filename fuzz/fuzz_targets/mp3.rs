//! See `sono_media::fuzzing::mp3` for what this target checks, and
//! `sono_media::fuzzing::let_symphonia_panics_reach_the_guard` for why a
//! panic inside symphonia is not a crash here.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: sono_media::fuzzing::let_symphonia_panics_reach_the_guard(),
    |data: &[u8]| sono_media::fuzzing::mp3(data)
);
