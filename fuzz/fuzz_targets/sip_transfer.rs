//! A peer's REFER or NOTIFY (RFC 3515, RFC 3420 sipfrag) as any bytes: the
//! message parser, then the transfer core's judgement of it; nothing panics,
//! and only a 202 ever yields a target to call, which the judge allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sono_sip::message::parse;
use sono_sip::transaction::Timers;
use sono_sip::transfer::{parse_sipfrag, TransferEvent, Transfers};

fuzz_target!(|data: &[u8]| {
    let _ = parse_sipfrag(&String::from_utf8_lossy(data));
    let Ok(rx) = parse(data) else {
        return;
    };
    let mut t = Transfers::new(Timers::default());
    let answer = t.on_request(&rx, |target| {
        if target.contains("127.0.0.1") {
            Ok(())
        } else {
            Err("outside".into())
        }
    });
    match t.poll_event() {
        Some(TransferEvent::Referred { target, .. }) => {
            assert_eq!(answer.code, 202);
            assert!(target.contains("127.0.0.1"));
        }
        Some(TransferEvent::Progress { .. }) => unreachable!("no transfer of ours is under way"),
        None => assert_ne!(answer.code, 202),
    }
});
