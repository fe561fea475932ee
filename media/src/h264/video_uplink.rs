//! A call's video up (client → RTP): FLV video messages as the client
//! publishes them become H.264 RTP packets (RFC 6184), with no decoding.
//!
//! - The AVC sequence header is kept: its SPS and PPS go in-band before
//!   every IDR picture that lacks them, so a receiver that joins late or
//!   lost them can decode from the next keyframe.
//! - Nothing is sent before the first keyframe, nor after a drop (the
//!   bitrate cap, a malformed message) until the next one: a picture
//!   predicted from one the peer never had would decode to garbage.
//! - The RTP timestamp is the FLV presentation time (timestamp plus
//!   composition time) on the 90 kHz clock (RFC 6184 §5.1), the marker
//!   on the last packet of each access unit.

use std::time::Instant;

use super::flv_video::{self, AvcConfig, FlvVideoError, VideoMessage};
use super::packetizer::Packetizer;
use super::rate_cap::RateCap;
use super::{has_idr, nal_type, nal_unit_type, CLOCK_RATE};
use crate::rtp_sender::RtpSender;

/// What became of one video message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoUp {
    /// This many RTP packets are ready.
    Sent(usize),
    /// A sequence header: kept for the next IDR.
    Config,
    /// Dropped: no keyframe yet since the start or the last drop.
    WaitingForKeyframe,
    /// Dropped by the bitrate cap; the next keyframe resumes.
    OverCap,
    /// Not AVC (the FLV codec id), or nothing to send.
    Ignored(u8),
}

/// Counts for metrics and the call's log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoUpStats {
    pub access_units: u64,
    pub keyframes: u64,
    pub packets: u64,
    pub dropped: u64,
    pub malformed: u64,
}

pub struct VideoUplink {
    payload_type: u8,
    sender: RtpSender,
    packetizer: Packetizer,
    config: Option<AvcConfig>,
    waiting_for_keyframe: bool,
    cap: RateCap,
    first_ms: Option<i64>,
    base_timestamp: u32,
    stats: VideoUpStats,
}

impl VideoUplink {
    /// `ssrc`, `first_sequence` and `base_timestamp` should be random
    /// (RFC 3550 §5.1); `cap_bps` 0 means no cap.
    pub fn new(
        payload_type: u8,
        (ssrc, first_sequence, base_timestamp): (u32, u16, u32),
        cap_bps: u64,
    ) -> VideoUplink {
        VideoUplink {
            payload_type,
            sender: RtpSender::new(ssrc, first_sequence, base_timestamp),
            packetizer: Packetizer::default(),
            config: None,
            waiting_for_keyframe: true,
            cap: RateCap::new(cap_bps),
            first_ms: None,
            base_timestamp,
            stats: VideoUpStats::default(),
        }
    }

    pub fn stats(&self) -> VideoUpStats {
        self.stats
    }

    pub fn sender(&self) -> &RtpSender {
        &self.sender
    }

    /// Nothing more goes until the next keyframe (the connection dropped
    /// video it could not deliver, or the peer lost what it had).
    pub fn resync(&mut self) {
        self.waiting_for_keyframe = true;
    }

    /// Reads one FLV video message published at `timestamp` (ms); each
    /// RTP packet it makes goes to `packets`.
    pub fn push(
        &mut self,
        data: &[u8],
        timestamp: u32,
        now: Instant,
        packets: &mut Vec<Vec<u8>>,
    ) -> Result<VideoUp, FlvVideoError> {
        let message = match flv_video::parse(data, self.config.as_ref()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                self.waiting_for_keyframe = true;
                return Err(e);
            }
        };
        let (keyframe, composition_time, nalus) = match message {
            VideoMessage::Config(c) => {
                self.config = Some(c);
                return Ok(VideoUp::Config);
            }
            VideoMessage::Other { codec_id, .. } => return Ok(VideoUp::Ignored(codec_id)),
            VideoMessage::EndOfSequence => return Ok(VideoUp::Ignored(flv_video::CODEC_AVC)),
            VideoMessage::AccessUnit {
                keyframe,
                composition_time,
                nalus,
            } => (keyframe, composition_time, nalus),
        };
        let idr = keyframe || has_idr(&nalus);
        if self.waiting_for_keyframe && !idr {
            self.stats.dropped += 1;
            return Ok(VideoUp::WaitingForKeyframe);
        }
        let size: usize = nalus.iter().map(|n| n.len()).sum();
        if !self.cap.allow(size, now) {
            self.stats.dropped += 1;
            self.waiting_for_keyframe = true;
            return Ok(VideoUp::OverCap);
        }
        self.waiting_for_keyframe = false;
        let mut units: Vec<&[u8]> = Vec::with_capacity(nalus.len() + 2);
        let in_band = nalus.iter().any(|n| nal_unit_type(n) == nal_type::SPS);
        if idr && !in_band {
            if let Some(c) = &self.config {
                units.extend(c.sps.iter().map(Vec::as_slice));
                units.extend(c.pps.iter().map(Vec::as_slice));
            }
        }
        // FLV's delimiters say nothing RTP's marker does not. Types 0 and
        // 24-31 are unspecified in H.264 and mean aggregates and fragments
        // on RTP (RFC 6184 §5.2): sent alone they would be misread (found
        // by the flv_avc fuzz target).
        units.extend(
            nalus.iter().filter(|n| {
                matches!(nal_unit_type(n), 1..=23) && nal_unit_type(n) != nal_type::AUD
            }),
        );
        if units.is_empty() {
            return Ok(VideoUp::Ignored(flv_video::CODEC_AVC));
        }
        let presentation = i64::from(timestamp) + i64::from(composition_time);
        let first = *self.first_ms.get_or_insert(presentation);
        let ticks = (presentation - first) * i64::from(CLOCK_RATE / 1000);
        let rtp_timestamp = self.base_timestamp.wrapping_add(ticks as u32);
        let before = packets.len();
        let (pt, sender) = (self.payload_type, &mut self.sender);
        self.packetizer.packetize(&units, |payload, marker| {
            let mut out = Vec::with_capacity(12 + payload.len());
            sender.event(pt, marker, rtp_timestamp, payload, &mut out);
            packets.push(out);
        });
        let sent = packets.len() - before;
        self.stats.access_units += 1;
        self.stats.keyframes += u64::from(idr);
        self.stats.packets += sent as u64;
        Ok(VideoUp::Sent(sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::depacketizer::Depacketizer;
    use crate::rtp::RtpPacket;

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01];
    const PPS: &[u8] = &[0x68, 0xCE, 0x0F];

    fn config() -> Vec<u8> {
        flv_video::write_config(
            &AvcConfig::from_parameter_sets(vec![SPS.to_vec()], vec![PPS.to_vec()]).unwrap(),
        )
    }

    #[test]
    fn waits_for_a_keyframe_then_sends_parameter_sets_before_each_idr() {
        let mut up = VideoUplink::new(96, (7, 1, 1000), 0);
        let t = Instant::now();
        let mut packets = Vec::new();
        assert_eq!(up.push(&config(), 0, t, &mut packets), Ok(VideoUp::Config));
        let p_frame = flv_video::write_access_unit(false, &[vec![0x41u8; 100]]);
        assert_eq!(
            up.push(&p_frame, 0, t, &mut packets),
            Ok(VideoUp::WaitingForKeyframe)
        );
        let mut idr = vec![0x65u8];
        idr.extend(std::iter::repeat_n(9, 3000));
        let key = flv_video::write_access_unit(true, &[idr.clone()]);
        assert!(matches!(up.push(&key, 100, t, &mut packets), Ok(VideoUp::Sent(n)) if n > 2));
        assert_eq!(
            up.push(&p_frame, 133, t, &mut packets),
            Ok(VideoUp::Sent(1))
        );
        let parsed: Vec<RtpPacket> = packets
            .iter()
            .map(|p| RtpPacket::parse(p).unwrap())
            .collect();
        // The IDR's packets share timestamp 1000; the P frame is 33 ms on.
        let last = parsed.last().unwrap();
        assert_eq!(last.timestamp, 1000 + 33 * 90);
        assert!(parsed.iter().all(|p| p.payload_type == 96));
        assert_eq!(parsed.iter().filter(|p| p.marker).count(), 2);
        let mut d = Depacketizer::new();
        let mut nalus = Vec::new();
        for p in &parsed[..parsed.len() - 1] {
            d.push(p.payload, &mut nalus).unwrap();
        }
        assert_eq!(nalus, vec![SPS.to_vec(), PPS.to_vec(), idr]);
    }

    #[test]
    fn nal_types_rtp_gives_another_meaning_are_never_sent() {
        let mut up = VideoUplink::new(96, (7, 1, 0), 0);
        let t = Instant::now();
        let mut packets = Vec::new();
        up.push(&config(), 0, t, &mut packets).unwrap();
        // Type 28 would read as FU-A, type 0 is unspecified.
        let key =
            flv_video::write_access_unit(true, &[vec![0x65u8, 1], vec![0x7C, 0x85, 9], vec![0, 0]]);
        up.push(&key, 0, t, &mut packets).unwrap();
        let mut d = Depacketizer::new();
        let mut nalus = Vec::new();
        for p in &packets {
            d.push(RtpPacket::parse(p).unwrap().payload, &mut nalus)
                .unwrap();
        }
        assert_eq!(nalus, vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 1]]);
    }

    #[test]
    fn a_malformed_message_is_an_error_and_waits_for_the_next_keyframe() {
        let mut up = VideoUplink::new(96, (7, 1, 0), 0);
        let t = Instant::now();
        let mut packets = Vec::new();
        up.push(&config(), 0, t, &mut packets).unwrap();
        let key = flv_video::write_access_unit(true, &[vec![0x65u8, 1]]);
        up.push(&key, 0, t, &mut packets).unwrap();
        let mut broken = flv_video::write_access_unit(false, &[vec![0x41u8, 1, 2]]);
        broken[8] = 200;
        assert!(up.push(&broken, 33, t, &mut packets).is_err());
        let p_frame = flv_video::write_access_unit(false, &[vec![0x41u8; 10]]);
        assert_eq!(
            up.push(&p_frame, 66, t, &mut packets),
            Ok(VideoUp::WaitingForKeyframe)
        );
        assert_eq!(up.stats().malformed, 1);
    }
}
