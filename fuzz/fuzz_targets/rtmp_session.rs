//! The RTMP session's whole input path after the handshake: chunks, messages,
//! AMF, commands and the phone API, fed in pieces whose sizes the input picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_rtmp::fuzzing::{drive_session, Split};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let _ = drive_session(rest, Split::from_byte(split));
});
