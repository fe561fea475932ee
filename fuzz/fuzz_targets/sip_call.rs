//! An outbound call driven by a fuzzed peer (responses, in-dialog requests,
//! hangups, time): no panic, and everything the call sends parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_sip::fuzzing::call(data));
