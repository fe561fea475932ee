//! The PROXY protocol v2 header in front of RTMP (rtmp::proxy_header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_rtmp::fuzzing::proxy_header;

fuzz_target!(|data: &[u8]| proxy_header(data));
