//! The media fuzz targets' seeds (`fuzz/seeds/{rtcp,speex,media_downlink,
//! media_uplink,nellymoser,aac,mp3,adpcm,pcm,flv_avc,rtp_h264}`), replayed on every test run, each also cut at every few
//! bytes and with bits flipped: a corpus of malformed input that must never
//! panic any of the drivers in `sono_media::fuzzing`.

use sono_testkit::corpus::replay;

#[test]
fn rtcp_corpus() {
    replay("rtcp", sono_media::fuzzing::rtcp);
}

#[test]
fn speex_corpus() {
    replay("speex", sono_media::fuzzing::speex);
}

#[test]
fn downlink_corpus() {
    replay("media_downlink", sono_media::fuzzing::downlink);
}

#[test]
fn uplink_corpus() {
    replay("media_uplink", sono_media::fuzzing::uplink);
}

#[test]
fn nellymoser_corpus() {
    replay("nellymoser", sono_media::fuzzing::nellymoser);
}

#[test]
fn aac_corpus() {
    replay("aac", sono_media::fuzzing::aac);
}

#[test]
fn mp3_corpus() {
    replay("mp3", sono_media::fuzzing::mp3);
}

#[test]
fn adpcm_corpus() {
    replay("adpcm", sono_media::fuzzing::adpcm);
}

#[test]
fn pcm_corpus() {
    replay("pcm", sono_media::fuzzing::pcm);
}

#[test]
fn flv_avc_corpus() {
    replay("flv_avc", sono_media::fuzzing::flv_avc);
}

#[test]
fn rtp_h264_corpus() {
    replay("rtp_h264", sono_media::fuzzing::rtp_h264);
}
