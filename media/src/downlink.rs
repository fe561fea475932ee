//! Audio down: RTP from the SIP peer, to what the Flash client plays.
//!
//! Packets go through the [`JitterBuffer`]; the bridge's 20 ms clock calls
//! [`Downlink::tick`], which produces one client frame per tick: Speex
//! passed through as it came (one RTMP message per RTP payload, the ticks it
//! covers counted from its frames), or decoded, concealed where lost,
//! resampled to 16 kHz and encoded as Speex wideband. Telephone events
//! (RFC 4733) are taken out before the jitter buffer and reported once per
//! digit; packets of other payload types (comfort noise, a codec the peer
//! switched to without asking) are counted and dropped.

use std::time::{Duration, Instant};

use crate::codec::{SipCodec, SipDecoder};
use crate::concealment::Concealment;
use crate::dtmf::DtmfReceiver;
use crate::jitter_buffer::{JitterBuffer, JitterStats, Playout};
use crate::receive_stats::ReceiveStats;
use crate::resampler::Resampler;
use crate::rtp::RtpPacket;
use crate::speex::{frames_in_packet, SpeexWbEncoder, SPEEX_WB_FRAME};

#[derive(Debug, Clone)]
pub struct DownlinkConfig {
    pub codec: SipCodec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// The peer's packet interval.
    pub ptime_ms: u32,
    pub jitter_min: Duration,
    pub jitter_max: Duration,
    pub speex_quality: u8,
    pub speex_complexity: u8,
}

/// Counters for the call's statistics and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownlinkStats {
    pub packets: u64,
    pub other_payload_types: u64,
    pub frames_to_client: u64,
    pub concealed: u64,
}

pub struct Downlink {
    config: DownlinkConfig,
    jitter: JitterBuffer,
    receive: ReceiveStats,
    dtmf: DtmfReceiver,
    decoder: SipDecoder,
    concealment: Concealment,
    resampler: Resampler,
    encoder: Option<SpeexWbEncoder>,
    decoded: Vec<i16>,
    /// 16 kHz PCM waiting to be encoded for the client.
    pcm: Vec<i16>,
    /// Client frames owed in passthrough (ticks minus frames sent).
    owed: i64,
    stats: DownlinkStats,
}

impl Downlink {
    pub fn new(config: DownlinkConfig) -> Downlink {
        let ptime = Duration::from_millis(u64::from(config.ptime_ms.max(10)));
        let rate = config.codec.sample_rate();
        Downlink {
            jitter: JitterBuffer::new(
                config.codec.rtp_clock_rate(),
                ptime,
                config.jitter_min,
                config.jitter_max,
            ),
            receive: ReceiveStats::new(config.codec.rtp_clock_rate()),
            dtmf: DtmfReceiver::default(),
            decoder: SipDecoder::new(config.codec),
            concealment: Concealment::new(rate),
            // 16 kHz to 16 kHz cannot fail; neither can 8 kHz to 16 kHz.
            resampler: Resampler::new(rate, 16_000).unwrap_or_else(|_| unreachable_resampler()),
            encoder: None,
            decoded: Vec::new(),
            pcm: Vec::new(),
            owed: 0,
            stats: DownlinkStats::default(),
            config,
        }
    }

    pub fn is_passthrough(&self) -> bool {
        self.config.codec == SipCodec::SpeexWb
    }

    pub fn receive_stats(&mut self) -> &mut ReceiveStats {
        &mut self.receive
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    pub fn jitter_target(&self) -> Duration {
        self.jitter.target_delay()
    }

    pub fn stats(&self) -> DownlinkStats {
        self.stats
    }

    /// An RTP packet from the peer; returns a DTMF digit when one starts.
    pub fn rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) -> Option<char> {
        self.receive
            .packet(now, packet.ssrc, packet.sequence, packet.timestamp);
        if Some(packet.payload_type) == self.config.telephone_event {
            return self
                .dtmf
                .packet(packet.timestamp, packet.marker, packet.payload);
        }
        if packet.payload_type != self.config.payload_type {
            self.stats.other_payload_types += 1;
            return None;
        }
        self.stats.packets += 1;
        self.jitter.push(
            now,
            packet.sequence,
            packet.timestamp,
            packet.payload_type,
            packet.payload,
        );
        None
    }

    /// The 20 ms clock's turn: appends the client's audio data (Speex
    /// frames, without the FLV header byte) to `out`, one message each.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.is_passthrough() {
            self.tick_passthrough(now, out);
        } else {
            self.tick_transcode(now, out);
        }
    }

    fn tick_passthrough(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        // A few late frames may catch up at once; a long pause may not.
        self.owed = (self.owed + 1).min(3);
        while self.owed > 0 {
            match self.jitter.pop(now) {
                Playout::Packet { payload, .. } => {
                    let frames = frames_in_packet(&payload).unwrap_or(0) as i64;
                    if frames > 0 {
                        self.owed -= frames;
                        self.stats.frames_to_client += frames as u64;
                        out.push(payload);
                    }
                }
                Playout::Lost => {
                    // Flash's decoder covers the gap; we only keep time.
                    self.owed -= i64::from(self.config.ptime_ms.max(20) / 20);
                    self.stats.concealed += 1;
                }
                // Late: it goes out with the next tick's, for Flash's own
                // buffer to absorb, rather than be dropped later.
                Playout::Waiting => break,
                Playout::Idle => {
                    self.owed = 0;
                }
            }
        }
    }

    fn tick_transcode(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let rate = self.config.codec.sample_rate();
        let packet_samples = (rate * self.config.ptime_ms.max(10) / 1000) as usize;
        while self.pcm.len() < SPEEX_WB_FRAME {
            self.decoded.clear();
            match self.jitter.pop(now) {
                Playout::Packet { payload, .. } => {
                    self.decoder.decode(&payload, &mut self.decoded);
                    self.concealment.received(&mut self.decoded);
                }
                Playout::Lost | Playout::Waiting => {
                    self.concealment.conceal(packet_samples, &mut self.decoded);
                    self.stats.concealed += 1;
                }
                Playout::Idle => break,
            }
            self.resampler.process(&self.decoded, &mut self.pcm);
        }
        if self.pcm.len() < SPEEX_WB_FRAME {
            return;
        }
        let (quality, complexity) = (self.config.speex_quality, self.config.speex_complexity);
        let encoder = self
            .encoder
            .get_or_insert_with(|| SpeexWbEncoder::new(quality, complexity));
        let mut frame = Vec::with_capacity(80);
        encoder.encode(&self.pcm[..SPEEX_WB_FRAME], &mut frame);
        self.pcm.drain(..SPEEX_WB_FRAME);
        self.stats.frames_to_client += 1;
        out.push(frame);
    }
}

/// Rates here are 8 or 16 kHz, which rubato always accepts; should that
/// ever change, an identity resampler keeps the call alive.
fn unreachable_resampler() -> Resampler {
    Resampler::new(16_000, 16_000).unwrap_or_else(|_| unreachable!("16 kHz to 16 kHz"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SipEncoder;
    use crate::dtmf::TelephoneEvent;
    use crate::rtp_sender::RtpSender;
    use crate::speex::SpeexWbDecoder;

    const MS: Duration = Duration::from_millis(1);

    fn config(codec: SipCodec, payload_type: u8) -> DownlinkConfig {
        DownlinkConfig {
            codec,
            payload_type,
            telephone_event: Some(101),
            ptime_ms: 20,
            jitter_min: 20 * MS,
            jitter_max: 200 * MS,
            speex_quality: 10,
            speex_complexity: 3,
        }
    }

    fn tone(rate: u32, seconds: f64) -> Vec<i16> {
        (0..(f64::from(rate) * seconds) as usize)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate)).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    /// Sends `pcm` as 20 ms packets through a downlink, dropping the
    /// packets `lose` says, and decodes what the client would get.
    fn run(codec: SipCodec, pt: u8, lose: impl Fn(usize) -> bool) -> (Vec<i16>, Downlink) {
        let rate = codec.sample_rate();
        let mut down = Downlink::new(config(codec, pt));
        let mut enc = SipEncoder::new(codec, 8, 2);
        let mut sender = RtpSender::new(5, 0, 0);
        let t0 = Instant::now();
        let mut client = Vec::new();
        let pcm = tone(rate, 1.0);
        for (i, chunk) in pcm.chunks((rate / 50) as usize).enumerate() {
            let now = t0 + 20 * MS * i as u32;
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload);
            let mut datagram = Vec::new();
            sender.audio(pt, &payload, codec.rtp_ticks(chunk.len()), &mut datagram);
            if !lose(i) {
                down.rtp(now, &RtpPacket::parse(&datagram).unwrap());
            }
            down.tick(now, &mut client);
        }
        let mut dec = SpeexWbDecoder::new();
        let mut out = Vec::new();
        for frame in &client {
            dec.decode(frame, &mut out);
        }
        (out, down)
    }

    #[test]
    fn pcmu_and_g722_come_out_as_16_khz_speex_at_one_frame_per_tick() {
        for (codec, pt) in [
            (SipCodec::Pcmu, 0),
            (SipCodec::Pcma, 8),
            (SipCodec::G722, 9),
        ] {
            let (out, down) = run(codec, pt, |_| false);
            assert!(
                down.stats().frames_to_client >= 48,
                "{codec:?}: {:?}",
                down.stats()
            );
            let snr = crate::quality::tone_snr_db(&out[3200..out.len() - 640], 440.0, 16_000);
            assert!(snr > 10.0, "{codec:?}: tone SNR {snr:.1} dB");
        }
    }

    #[test]
    fn lost_packets_are_concealed_not_skipped() {
        let (_, down) = run(SipCodec::Pcmu, 0, |i| i % 10 == 5);
        assert!(down.stats().concealed >= 4, "{:?}", down.stats());
        assert!(down.stats().frames_to_client >= 48);
    }

    #[test]
    fn speex_passes_through_unchanged() {
        let mut down = Downlink::new(config(SipCodec::SpeexWb, 97));
        let mut sender = RtpSender::new(5, 0, 0);
        let t0 = Instant::now();
        let mut enc = SpeexWbEncoder::new(8, 2);
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        for (i, chunk) in tone(16_000, 0.5).chunks(320).enumerate() {
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload);
            let mut datagram = Vec::new();
            sender.audio(97, &payload, 320, &mut datagram);
            let now = t0 + 20 * MS * i as u32;
            down.rtp(now, &RtpPacket::parse(&datagram).unwrap());
            down.tick(now, &mut got);
            sent.push(payload);
        }
        assert!(got.len() >= sent.len() - 2);
        assert_eq!(got[..], sent[..got.len()]);
    }

    #[test]
    fn telephone_events_become_digits_and_foreign_payloads_are_dropped() {
        let mut down = Downlink::new(config(SipCodec::Pcmu, 0));
        let mut sender = RtpSender::new(5, 0, 0);
        let now = Instant::now();
        let mut digits = Vec::new();
        for (ts, event, duration) in [(0, 5, 160), (0, 5, 320), (0, 5, 480), (800, 11, 160)] {
            let payload = TelephoneEvent {
                event,
                end: false,
                volume: 10,
                duration,
            }
            .to_bytes();
            let mut datagram = Vec::new();
            sender.event(101, false, ts, &payload, &mut datagram);
            digits.extend(down.rtp(now, &RtpPacket::parse(&datagram).unwrap()));
        }
        assert_eq!(digits, ['5', '#']);
        let mut datagram = Vec::new();
        sender.audio(13, &[0x40], 160, &mut datagram);
        assert_eq!(down.rtp(now, &RtpPacket::parse(&datagram).unwrap()), None);
        assert_eq!(down.stats().other_payload_types, 1);
        assert_eq!(down.stats().packets, 0);
    }
}
