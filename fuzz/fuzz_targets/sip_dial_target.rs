//! Dial targets through the SIP URI parser and the default dial plan.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_sip::fuzzing::dial_target;

fuzz_target!(|data: &[u8]| dial_target(data));
