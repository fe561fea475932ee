//! H.264 passed through between RTMP and RTP, never decoded nor encoded:
//! only its framing changes.
//!
//! - [`flv_video`]: the FLV `VIDEODATA` tag (Adobe "Video File Format
//!   Specification" v10, §E.4.3.1) and the AVC sequence header it carries,
//!   the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1);
//! - [`packetizer`]: NAL units to RTP payloads (RFC 6184 §5.6 single NAL
//!   unit, §5.7.1 STAP-A, §5.8 FU-A; packetization-mode 1);
//! - [`depacketizer`]: RTP payloads back to NAL units and access units;
//! - [`video_jitter_buffer`]: reordering, loss, and the wait for the next
//!   IDR picture after a loss;
//! - [`video_uplink`] (client → RTP) and [`video_downlink`] (RTP →
//!   client): the two directions of a call's video;
//! - [`rate_cap`]: the per-call bitrate cap.

pub mod depacketizer;
pub mod flv_video;
pub mod packetizer;
pub mod rate_cap;
pub mod video_downlink;
pub mod video_jitter_buffer;
pub mod video_uplink;

/// The 90 kHz clock of H.264 over RTP (RFC 6184 §5.1).
pub const CLOCK_RATE: u32 = 90_000;

/// NAL unit types of ITU-T H.264 Table 7-1 sono looks at.
pub mod nal_type {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    /// RFC 6184 §5.7.1.
    pub const STAP_A: u8 = 24;
    /// RFC 6184 §5.8.
    pub const FU_A: u8 = 28;
}

/// The type of a NAL unit from its first byte.
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// Whether an access unit's NAL units start a picture decodable on its own.
pub fn has_idr<T: AsRef<[u8]>>(nalus: &[T]) -> bool {
    nalus
        .iter()
        .any(|n| nal_unit_type(n.as_ref()) == nal_type::IDR)
}
