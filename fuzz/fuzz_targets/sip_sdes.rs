//! An SDP `a=crypto` value (RFC 4568) as any text: parsed without a panic,
//! and anything that parses is written back to a value that parses to the
//! same attribute.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_sip::sdes::CryptoAttribute;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(attribute) = CryptoAttribute::parse(&text) {
        let again = CryptoAttribute::parse(&attribute.to_value())
            .expect("what we write parses");
        assert_eq!(again, attribute);
    }
});
