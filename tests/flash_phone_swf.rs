//! The invisible Flash phone as sono serves it: a real SWF (built from
//! `flash_phone/` by Haxe in `web/build.rs`) whose ActionScript byte code
//! registers every ExternalInterface callback sono.js calls. The check reads
//! the SWF's DoABC tag and the ABC constant pool's strings (SWF File Format
//! Specification v19, chapter 2 and the DoABC tag; AVM2 Overview §4.3).

use std::io::Read;

use sono_testkit::{http, Sono};

const SONO: &str = env!("CARGO_BIN_EXE_sono");

/// The SWF's body after its 8-byte header, inflated if compressed ("CWS").
fn swf_body(swf: &[u8]) -> Vec<u8> {
    assert!(swf.len() > 8, "{} bytes is no SWF", swf.len());
    match &swf[..3] {
        b"FWS" => swf[8..].to_vec(),
        b"CWS" => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&swf[8..])
                .read_to_end(&mut out)
                .expect("the SWF inflates");
            out
        }
        other => panic!("not an SWF: starts with {other:?}"),
    }
}

/// The ABC blocks of every DoABC (82) and DoABC1 (72) tag.
fn abc_blocks(body: &[u8]) -> Vec<Vec<u8>> {
    // The frame RECT: 5 bits of field width, then four fields of that width.
    let nbits = usize::from(body[0] >> 3);
    let mut at = (5 + 4 * nbits).div_ceil(8) + 4; // + frame rate and count
    let mut blocks = Vec::new();
    while at + 2 <= body.len() {
        let head = u16::from_le_bytes([body[at], body[at + 1]]);
        at += 2;
        let (code, mut len) = (head >> 6, usize::from(head & 0x3f));
        if len == 0x3f {
            len = u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
            at += 4;
        }
        let tag = &body[at..at + len];
        match code {
            82 => {
                // Flags (4 bytes) and a NUL-terminated name come first.
                let name_end = tag[4..].iter().position(|&b| b == 0).expect("a DoABC name") + 5;
                blocks.push(tag[name_end..].to_vec());
            }
            72 => blocks.push(tag.to_vec()),
            0 => break,
            _ => {}
        }
        at += len;
    }
    blocks
}

fn u30(abc: &[u8], at: &mut usize) -> u32 {
    let mut value = 0u32;
    for shift in 0..5 {
        let b = abc[*at];
        *at += 1;
        value |= u32::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            break;
        }
    }
    value
}

/// The string constants of an ABC block's constant pool.
fn pool_strings(abc: &[u8]) -> Vec<String> {
    let mut at = 4; // minor and major version
    let ints = u30(abc, &mut at);
    for _ in 1..ints {
        u30(abc, &mut at);
    }
    let uints = u30(abc, &mut at);
    for _ in 1..uints {
        u30(abc, &mut at);
    }
    let doubles = u30(abc, &mut at);
    at += 8 * doubles.saturating_sub(1) as usize;
    let count = u30(abc, &mut at);
    (1..count)
        .map(|_| {
            let len = u30(abc, &mut at) as usize;
            let s = String::from_utf8_lossy(&abc[at..at + len]).into_owned();
            at += len;
            s
        })
        .collect()
}

#[test]
fn the_served_swf_registers_every_callback_sono_js_calls() {
    let sono = Sono::start(SONO, "");
    let answer = http::request(sono.http, "GET", "/flash_phone.swf", &[], b"").unwrap();
    assert_eq!(
        answer.status,
        200,
        "{} (install haxe: scripts/install-deps.sh)",
        answer.text()
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-shockwave-flash")
    );
    let body = swf_body(&answer.body);
    let strings: Vec<String> = abc_blocks(&body)
        .iter()
        .flat_map(|abc| pool_strings(abc))
        .collect();
    assert!(strings.len() > 50, "{strings:?}");
    for name in [
        "addCallback",
        "connect",
        "close",
        "dial",
        "hangup",
        "register",
        "unregister",
        "accept",
        "reject",
        "sendDTMF",
        // What it does on its own: follow call status 4, publish Speex
        // wideband, play the call, tell JavaScript.
        "Sono.Call.Status",
        "status_code",
        "sono-up",
        "sono-down",
        "setSilenceLevel",
        "framesPerPacket",
        "netStatus",
    ] {
        assert!(
            strings.iter().any(|s| s == name),
            "the SWF's constant pool has no {name:?}"
        );
    }
    // sono.js calls exactly these on the <object>.
    let js = http::request(sono.http, "GET", "/sono.js", &[], b"")
        .unwrap()
        .text();
    for method in ["connect(", "close?.()"] {
        assert!(js.contains(method), "sono.js does not call {method}");
    }
}
