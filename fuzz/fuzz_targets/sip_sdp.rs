//! SDP from any peer: parse, answer what parses, and the answer must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_sip::sdp::{Codec, LocalMedia, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = SessionDescription::parse(text) else {
        return;
    };
    let local = LocalMedia {
        address: [127, 0, 0, 1].into(),
        port: 30000,
        codecs: vec![Codec::Speex16k, Codec::G722, Codec::Pcmu, Codec::Pcma],
        telephone_event: true,
        ptime: 20,
        session_id: 1,
        session_version: 1,
    };
    if let Ok((answer, _)) = local.answer(&offer) {
        let text = answer.to_text();
        let back = SessionDescription::parse(&text).expect("our answer parses");
        assert!(local.settle(&back).is_ok(), "our answer settles: {text}");
    }
    let _ = local.settle(&offer);
});
