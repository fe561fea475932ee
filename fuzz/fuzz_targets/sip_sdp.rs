//! SDP from any peer, with and without SRTP keys: see `sono_sip::fuzzing::sdp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_sip::fuzzing::sdp(data));
