//! See `sono_media::fuzzing::rtp_h264` for what this target checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_media::fuzzing::rtp_h264(data));
