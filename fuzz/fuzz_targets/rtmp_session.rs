//! The RTMP session's whole input path after the handshake: chunks, messages,
//! AMF, commands and the phone API (sono's, mod_rtmp's or siprtmp's: the
//! first byte's top bits pick it), fed in pieces whose sizes the input picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_rtmp::api::ClientApi;
use sono_rtmp::fuzzing::{drive_session_in, Split};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let api = match split >> 6 {
        1 => ClientApi::ModRtmp,
        2 => ClientApi::Siprtmp,
        _ => ClientApi::Sono,
    };
    let _ = drive_session_in(rest, Split::from_byte(split), api);
});
