//! RTMPT request paths and sequence numbers (rtmp::tunnel).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_rtmp::fuzzing::tunnel_requests;

fuzz_target!(|data: &[u8]| tunnel_requests(data));
