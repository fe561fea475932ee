//! The sending half of one RTP stream (RFC 3550 §5.1): one SSRC, a sequence
//! number that starts at a random value and only increments, a timestamp
//! that follows the media clock across silences, and the marker bit on the
//! first packet of a talkspurt only (RFC 3551 §4.1). Audio and telephone
//! events (RFC 4733 §2.1) share the stream, so they share this counter.

use crate::rtp::RtpPacket;

#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
    packets: u32,
    octets: u32,
    last_timestamp: u32,
}

impl RtpSender {
    /// `ssrc`, the first sequence number and the first timestamp should be
    /// random (RFC 3550 §5.1); the caller draws them.
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> RtpSender {
        RtpSender {
            ssrc,
            sequence: first_sequence,
            timestamp: first_timestamp,
            talkspurt_start: true,
            packets: 0,
            octets: 0,
            last_timestamp: first_timestamp,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The timestamp the next audio packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Writes an audio packet of `duration` clock ticks and advances the
    /// clock past it.
    pub fn audio(&mut self, payload_type: u8, payload: &[u8], duration: u32, out: &mut Vec<u8>) {
        let marker = std::mem::take(&mut self.talkspurt_start);
        let timestamp = self.timestamp;
        self.write(payload_type, marker, timestamp, payload, out);
        self.timestamp = self.timestamp.wrapping_add(duration);
    }

    /// Writes a packet at an explicit timestamp without moving the audio
    /// clock: telephone events repeat their start timestamp (RFC 4733 §2.5.1).
    pub fn event(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.write(payload_type, marker, timestamp, payload, out);
    }

    /// Time passes with nothing sent (silence, or an event in progress):
    /// the clock advances and the next audio packet starts a talkspurt.
    pub fn skip(&mut self, duration: u32) {
        self.timestamp = self.timestamp.wrapping_add(duration);
        self.talkspurt_start = true;
    }

    /// Packets and payload octets sent, and the last timestamp, for the
    /// sender report (RFC 3550 §6.4.1).
    pub fn counts(&self) -> (u32, u32, u32) {
        (self.packets, self.octets, self.last_timestamp)
    }

    fn write(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        RtpPacket {
            marker,
            payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            csrc_count: 0,
            payload,
        }
        .write(out);
        self.sequence = self.sequence.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        self.last_timestamp = timestamp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_and_timestamp_run_on_and_the_marker_starts_talkspurts() {
        let mut s = RtpSender::new(7, 65_535, u32::MAX - 100);
        let mut packets = Vec::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            s.audio(0, &[0; 160], 160, &mut out);
            packets.push(out);
        }
        s.skip(320);
        let mut out = Vec::new();
        s.audio(0, &[0; 160], 160, &mut out);
        packets.push(out);
        let p: Vec<_> = packets
            .iter()
            .map(|b| RtpPacket::parse(b).unwrap())
            .collect();
        assert_eq!(
            p.iter()
                .map(|p| (p.sequence, p.timestamp, p.marker))
                .collect::<Vec<_>>(),
            [
                (65_535, u32::MAX - 100, true),
                (0, (u32::MAX - 100).wrapping_add(160), false),
                (1, (u32::MAX - 100).wrapping_add(640), true),
            ]
        );
        assert!(p.iter().all(|p| p.ssrc == 7));
        assert_eq!(s.counts().0, 3);
        assert_eq!(s.counts().1, 480);
    }
}
