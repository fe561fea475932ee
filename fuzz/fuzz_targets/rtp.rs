//! Any datagram on an RTP port: parsing must not panic, and a packet that
//! parses, written back, must read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_media::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        let mut out = Vec::new();
        let plain = RtpPacket { csrc_count: 0, ..p.clone() };
        plain.write(&mut out);
        assert_eq!(RtpPacket::parse(&out), Ok(plain));
    }
});
