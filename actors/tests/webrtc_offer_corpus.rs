//! The `webrtc_offer` fuzz target's seeds (`fuzz/seeds/webrtc_offer`:
//! browser offers, offers sono refuses, and datagrams after an answered
//! offer), replayed with malformed variants on every run: none may panic,
//! and a browser's audio offer is answered with Opus (or the G.722 or
//! G.711 it prefers).

use sono_actors::webrtc_offer::fuzz_offer;
use sono_testkit::corpus::{replay, seeds};

#[test]
fn webrtc_offer_corpus() {
    replay("webrtc_offer", |input| {
        let _ = fuzz_offer(input);
    });
}

#[test]
fn browser_offers_among_the_seeds_are_answered_with_opus_or_the_codec_they_prefer() {
    let answered: Vec<String> = seeds("webrtc_offer")
        .iter()
        .filter_map(|s| fuzz_offer(s))
        .collect();
    assert!(!answered.is_empty(), "no seed was answered");
    assert!(
        answered
            .iter()
            .any(|sdp| sdp.contains("a=rtpmap:9 G722/8000")),
        "the G.722 seed was not answered with G.722"
    );
    for sdp in &answered {
        assert!(sdp.contains("a=ice-lite"), "{sdp}");
        assert!(
            sdp.contains("opus/48000/2") || sdp.contains("PCMU/8000") || sdp.contains("G722/8000"),
            "{sdp}"
        );
        assert!(sdp.contains("a=candidate:"), "{sdp}");
        assert!(sdp.contains("a=fingerprint:sha-256"), "{sdp}");
    }
}
