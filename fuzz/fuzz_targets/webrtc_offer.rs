//! A browser's SDP offer (POST /api/v1/webrtc) and then datagrams at the
//! answered session's port: sono's offer checks and answer, and str0m's
//! demultiplexing of what arrives, must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sono_actors::webrtc_offer::fuzz_offer(data);
});
