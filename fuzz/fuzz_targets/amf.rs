//! AMF0 (and AMF3 behind the switch marker) decoding; what decodes must encode
//! and decode again to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_rtmp::fuzzing::amf_round_trip;

fuzz_target!(|data: &[u8]| amf_round_trip(data));
