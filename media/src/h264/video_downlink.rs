//! A call's video down (RTP → client): H.264 RTP packets are put in order
//! ([`VideoJitterBuffer`]), rebuilt into NAL units ([`Depacketizer`]) and
//! gathered into access units (one RTP timestamp, ended by the marker or
//! the next timestamp, RFC 6184 §5.1). Each access unit becomes one FLV
//! video message; in-band SPS and PPS become a new AVC sequence header
//! when they change.
//!
//! A client's decoder cannot survive a missing piece: an access unit with
//! a loss or a broken packet in it is dropped, and so is every one after
//! it until the next IDR picture, which is asked for (the caller sends
//! RTCP PLI or FIR, RFC 4585 §6.3.1, RFC 5104 §4.3.1, or SIP INFO). The
//! client so only ever receives decodable pictures.

use std::time::{Duration, Instant};

use super::depacketizer::Depacketizer;
use super::flv_video::{self, AvcConfig};
use super::rate_cap::RateCap;
use super::video_jitter_buffer::{Ordered, Released, VideoJitterBuffer};
use super::{has_idr, nal_type, nal_unit_type, CLOCK_RATE};
use crate::rtp::RtpPacket;

/// Most NAL units in one access unit (slices, SEI…): more is not video.
const MAX_NALUS: usize = 256;
/// A keyframe is asked for again if none came this long after asking
/// (the request, or the IDR, may have been lost too).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// What goes to the client, or to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoDown {
    /// An FLV video message (sequence header or access unit) at a
    /// timestamp in milliseconds from the first one.
    Message {
        timestamp: u32,
        data: Vec<u8>,
        keyframe: bool,
    },
    /// Ask the sender for an IDR picture.
    RequestKeyframe,
}

/// Counts for metrics and the call's log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoDownStats {
    pub access_units: u64,
    pub keyframes: u64,
    /// Dropped for a loss or a broken packet in them, or while waiting
    /// for an IDR after one.
    pub dropped: u64,
    /// Dropped by the bitrate cap.
    pub over_cap: u64,
    pub lost_packets: u64,
    pub bad_packets: u64,
    pub keyframe_requests: u64,
}

struct AccessUnit {
    timestamp: u32,
    nalus: Vec<Vec<u8>>,
    broken: bool,
}

pub struct VideoDownlink {
    buffer: VideoJitterBuffer,
    depacketizer: Depacketizer,
    unit: Option<AccessUnit>,
    config: Option<AvcConfig>,
    config_sent: bool,
    waiting_for_idr: bool,
    cap: RateCap,
    first_timestamp: Option<u32>,
    last_request: Option<Instant>,
    out: std::collections::VecDeque<VideoDown>,
    stats: VideoDownStats,
}

impl VideoDownlink {
    /// `config`: parameter sets the SDP announced (`sprop-parameter-sets`),
    /// if any; `cap_bps`: the bitrate cap towards the client (0: none).
    pub fn new(config: Option<AvcConfig>, cap_bps: u64) -> VideoDownlink {
        VideoDownlink {
            buffer: VideoJitterBuffer::default(),
            depacketizer: Depacketizer::new(),
            unit: None,
            config,
            config_sent: false,
            waiting_for_idr: true,
            cap: RateCap::new(cap_bps),
            first_timestamp: None,
            last_request: None,
            out: Default::default(),
            stats: VideoDownStats::default(),
        }
    }

    pub fn stats(&self) -> VideoDownStats {
        self.stats
    }

    /// Takes one RTP packet of the video stream.
    pub fn push(&mut self, packet: &RtpPacket<'_>, now: Instant) {
        let ordered = Ordered {
            timestamp: packet.timestamp,
            marker: packet.marker,
            payload: packet.payload.to_vec(),
        };
        self.buffer.push(packet.sequence, ordered, now);
    }

    /// When [`poll`](Self::poll) must run again even if nothing arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.buffer.deadline()
    }

    /// What is ready for the client or the sender.
    pub fn poll(&mut self, now: Instant) -> Option<VideoDown> {
        loop {
            if let Some(next) = self.out.pop_front() {
                return Some(next);
            }
            match self.buffer.pop(now)? {
                Released::Packet(p) => self.take(p, now),
                Released::Lost(n) => {
                    self.stats.lost_packets += n;
                    self.depacketizer.reset();
                    // A unit whose start was lost shows it by itself (an
                    // FU-A without its start); one under way is broken.
                    if let Some(unit) = &mut self.unit {
                        unit.broken = true;
                    }
                    self.want_keyframe(now);
                }
            }
        }
    }

    /// Nothing goes until the next IDR, which is asked for (again, if the
    /// last request is old).
    fn want_keyframe(&mut self, now: Instant) {
        self.waiting_for_idr = true;
        if self
            .last_request
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_INTERVAL)
        {
            self.last_request = Some(now);
            self.stats.keyframe_requests += 1;
            self.out.push_back(VideoDown::RequestKeyframe);
        }
    }

    fn take(&mut self, p: Ordered, now: Instant) {
        if self
            .unit
            .as_ref()
            .is_some_and(|u| u.timestamp != p.timestamp)
        {
            self.finish(now);
        }
        let unit = self.unit.get_or_insert_with(|| AccessUnit {
            timestamp: p.timestamp,
            nalus: Vec::new(),
            broken: false,
        });
        if self.depacketizer.push(&p.payload, &mut unit.nalus).is_err() {
            self.stats.bad_packets += 1;
            unit.broken = true;
        }
        if unit.nalus.len() > MAX_NALUS {
            unit.nalus.clear();
            unit.broken = true;
        }
        if p.marker {
            self.finish(now);
        }
    }

    fn finish(&mut self, now: Instant) {
        self.depacketizer.reset();
        let Some(unit) = self.unit.take() else {
            return;
        };
        let mut sps = Vec::new();
        let mut pps = Vec::new();
        let mut picture = Vec::with_capacity(unit.nalus.len());
        for n in unit.nalus {
            match nal_unit_type(&n) {
                nal_type::SPS => sps.push(n),
                nal_type::PPS => pps.push(n),
                // FLV frames need no delimiters.
                nal_type::AUD => {}
                _ => picture.push(n),
            }
        }
        if !unit.broken && (!sps.is_empty() || !pps.is_empty()) {
            let old = self.config.as_ref();
            let sps = if sps.is_empty() {
                old.map(|c| c.sps.clone()).unwrap_or_default()
            } else {
                sps
            };
            let pps = if pps.is_empty() {
                old.map(|c| c.pps.clone()).unwrap_or_default()
            } else {
                pps
            };
            if let Some(config) = AvcConfig::from_parameter_sets(sps, pps) {
                if self.config.as_ref() != Some(&config) {
                    self.config = Some(config);
                    self.config_sent = false;
                }
            }
        }
        if unit.broken {
            self.stats.dropped += 1;
            self.want_keyframe(now);
            return;
        }
        if picture.is_empty() {
            return;
        }
        let idr = has_idr(&picture);
        if self.waiting_for_idr && !idr {
            self.stats.dropped += 1;
            self.want_keyframe(now);
            return;
        }
        if self.config.is_none() {
            // An IDR without parameter sets cannot be decoded.
            self.stats.dropped += 1;
            return;
        }
        let data = flv_video::write_access_unit(idr, &picture);
        if !self.cap.allow(data.len(), now) {
            self.stats.over_cap += 1;
            self.want_keyframe(now);
            return;
        }
        let timestamp = self.ms(unit.timestamp);
        if let Some(config) = &self.config {
            if !self.config_sent || idr && self.waiting_for_idr {
                self.out.push_back(VideoDown::Message {
                    timestamp,
                    data: flv_video::write_config(config),
                    keyframe: true,
                });
                self.config_sent = true;
            }
        }
        self.waiting_for_idr = false;
        self.stats.access_units += 1;
        self.stats.keyframes += u64::from(idr);
        self.out.push_back(VideoDown::Message {
            timestamp,
            data,
            keyframe: idr,
        });
    }

    /// Milliseconds since the first access unit's timestamp.
    fn ms(&mut self, timestamp: u32) -> u32 {
        let first = *self.first_timestamp.get_or_insert(timestamp);
        let ticks = timestamp.wrapping_sub(first);
        (u64::from(ticks) * 1000 / u64::from(CLOCK_RATE)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::packetizer::Packetizer;
    use std::time::Duration;

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01];
    const PPS: &[u8] = &[0x68, 0xCE, 0x0F];

    /// The RTP packets of `frames` access units (an IDR every `gop`), 30 fps.
    fn stream(frames: u32, gop: u32) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        let mut seq = 100u16;
        for f in 0..frames {
            let idr = f % gop == 0;
            let mut units: Vec<Vec<u8>> = Vec::new();
            if idr {
                units.push(SPS.to_vec());
                units.push(PPS.to_vec());
            }
            let mut pic = vec![if idr { 0x65 } else { 0x41 }];
            pic.extend(std::iter::repeat_n(f as u8, if idr { 3000 } else { 700 }));
            units.push(pic);
            Packetizer::new(1000).packetize(&units, |payload, marker| {
                let mut out = Vec::new();
                RtpPacket {
                    marker,
                    payload_type: 96,
                    sequence: seq,
                    timestamp: 3000 * f,
                    ssrc: 1,
                    csrc_count: 0,
                    payload,
                }
                .write(&mut out);
                packets.push(out);
                seq = seq.wrapping_add(1);
            });
        }
        packets
    }

    fn run(d: &mut VideoDownlink, packets: &[Vec<u8>], skip: &[usize]) -> Vec<VideoDown> {
        let start = Instant::now();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let t = start + Duration::from_millis(5 * i as u64);
            if !skip.contains(&i) {
                d.push(&RtpPacket::parse(p).unwrap(), t);
            }
            out.extend(std::iter::from_fn(|| d.poll(t)));
        }
        let end = start + Duration::from_secs(5);
        out.extend(std::iter::from_fn(|| d.poll(end)));
        out
    }

    fn frames(out: &[VideoDown]) -> Vec<(u32, bool)> {
        out.iter()
            .filter_map(|e| match e {
                VideoDown::Message {
                    timestamp,
                    data,
                    keyframe,
                } if data[1] == 1 => Some((*timestamp, *keyframe)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_clean_stream_becomes_one_message_per_access_unit_after_a_sequence_header() {
        let mut d = VideoDownlink::new(None, 0);
        let out = run(&mut d, &stream(10, 5), &[]);
        let VideoDown::Message { data, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(data[1], 0, "a sequence header first");
        let f = frames(&out);
        assert_eq!(f.len(), 10);
        assert_eq!(f[0], (0, true));
        assert_eq!(f[1], (33, false));
        assert_eq!(f[5], (166, true));
        assert_eq!(d.stats().keyframe_requests, 0);
    }

    #[test]
    fn a_loss_drops_to_the_next_idr_and_asks_for_one() {
        let packets = stream(10, 5);
        let mut d = VideoDownlink::new(None, 0);
        // Frame 0 is 5 packets (a STAP-A of SPS and PPS, four FU-A
        // fragments of the IDR), frames 1-4 one each: lose frame 1's.
        let out = run(&mut d, &packets, &[5]);
        let f = frames(&out);
        assert_eq!(
            f.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![0, 166, 200, 233, 266, 300]
        );
        assert_eq!(
            out.iter()
                .filter(|e| **e == VideoDown::RequestKeyframe)
                .count(),
            1
        );
        assert_eq!(d.stats().dropped, 3);
        assert_eq!(d.stats().lost_packets, 1);
        // A lost fragment of the second IDR (frame 5) breaks it: frames
        // 0-4 only, and nothing after until an IDR that never comes.
        let mut d = VideoDownlink::new(None, 0);
        let f = frames(&run(&mut d, &packets, &[12]));
        assert_eq!(f.len(), 5, "{f:?}");
        assert_eq!(d.stats().dropped, 5);
        // A stream joined mid-GOP waits for its first IDR, and asks once.
        let mut d = VideoDownlink::new(None, 0);
        let out = run(&mut d, &packets[6..], &[]);
        assert_eq!(frames(&out)[0], (0, true));
        assert_eq!(
            out.iter()
                .filter(|e| **e == VideoDown::RequestKeyframe)
                .count(),
            1
        );
    }

    #[test]
    fn the_cap_drops_to_the_next_keyframe() {
        let mut d = VideoDownlink::new(None, 100_000);
        let out = run(&mut d, &stream(30, 10), &[]);
        let f = frames(&out);
        assert!(f.len() < 30 && !f.is_empty(), "{f:?}");
        assert!(d.stats().over_cap > 0);
    }
}
