//! Outbound and inbound calls driven by a fuzzed peer (responses, requests
//! inside the dialog, the local user's actions, time): no panic, and
//! everything either call sends parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sono_sip::fuzzing::call(data);
    sono_sip::fuzzing::inbound(data);
});
