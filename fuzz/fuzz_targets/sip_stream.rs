//! A SIP byte stream (TCP) in reads of fuzzed sizes: the framer must cut the
//! same messages however the bytes arrive, and every message it gives out
//! goes through the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_sip::fuzzing::stream(data));
