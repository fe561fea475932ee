//! Any datagram on the SIP port: parse and check it as the transport does, and
//! build the answer it would send; answers must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sono_sip::fuzzing::message(data));
