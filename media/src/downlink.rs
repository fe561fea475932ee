//! Audio down: RTP from the SIP peer, to what the client plays (Flash over
//! RTMP, a browser over WebRTC).
//!
//! Packets go through the [`JitterBuffer`]; the bridge's 20 ms clock calls
//! [`Downlink::tick`], which produces one client frame per tick: Speex
//! passed through as it came (one RTMP message per RTP payload, the ticks it
//! covers counted from its frames; G.711 and Opus likewise), or decoded,
//! concealed where lost, resampled to the client's rate and encoded in its
//! codec (Speex wideband by default, Nellymoser, G.711, Opus for a browser). Telephone events
//! (RFC 4733) are taken out before the jitter buffer and reported once per
//! digit; packets of other payload types (comfort noise, a codec the peer
//! switched to without asking) are counted and dropped. While the peer is
//! silent, a [`SilenceGate`] lets ready-made silent frames stand in for the
//! encoder's work.

use std::time::{Duration, Instant};

use crate::codec::{ClientCodec, SipCodec, SipDecoder, G711_FRAME};
use crate::concealment::Concealment;
use crate::dtmf::DtmfReceiver;
use crate::g711;
use crate::g722::G722Encoder;
use crate::jitter_buffer::{JitterBuffer, JitterStats, Playout};
use crate::nellymoser::{NellymoserEncoder, BLOCK_SAMPLES};
use crate::opus::{OpusEncoder, OPUS_FRAME};
use crate::receive_stats::ReceiveStats;
use crate::resampler::Resampler;
use crate::rtp::RtpPacket;
use crate::rtp_source::{SourceFilter, SourceStats, SourceVerdict};
use crate::silence::SilenceGate;
use crate::speex::{frames_in_packet, SpeexWbEncoder, SPEEX_WB_FRAME};
use crate::three_way::{MIX_FRAME, MIX_RATE};

/// Opus down to a browser: what browsers themselves send for speech.
const OPUS_BITRATE: u32 = 32_000;

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
    /// Frames quieter than this (dBov) are not encoded once quiet has lasted
    /// a moment (see [`SilenceGate`]); `None` encodes every frame.
    pub silence_dbov: Option<f64>,
}

/// Counters for the call's statistics and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownlinkStats {
    pub packets: u64,
    pub other_payload_types: u64,
    pub frames_to_client: u64,
    pub concealed: u64,
    /// Frames to the client that were silent frames, not encoded.
    pub silent: u64,
}

/// What became of one RTP packet from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Taken (audio, or a telephone-event that starts no digit).
    Audio,
    /// A DTMF digit started.
    Digit(char),
    /// Not the peer's stream: dropped before anything saw it.
    Dropped(SourceVerdict),
}

pub struct Downlink {
    config: DownlinkConfig,
    source: SourceFilter,
    jitter: JitterBuffer,
    receive: ReceiveStats,
    dtmf: DtmfReceiver,
    decoder: SipDecoder,
    concealment: Concealment,
    resampler: Resampler,
    encoders: ClientEncoders,
    silence: Option<SilenceGate>,
    /// The client codec's silent frame, made once when first needed.
    silent_frame: Option<Vec<u8>>,
    /// What audio down is encoded as.
    client: ClientCodec,
    /// Client samples owed to the play stream, × 1000.
    due_milli: i64,
    decoded: Vec<i16>,
    /// 16 kHz PCM waiting to be encoded for the client.
    pcm: Vec<i16>,
    /// Milliseconds of audio owed to the client in passthrough (ticks
    /// minus what was sent).
    owed_ms: i64,
    /// Three-way calls: the peer at 16 kHz for the mix, and the mix back
    /// at the client's rate, each with its resampler.
    to_mix: Option<Resampler>,
    mix_in: Vec<i16>,
    from_mix: Option<(u32, Resampler)>,
    mix_out: Vec<i16>,
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
            source: SourceFilter::new(),
            dtmf: DtmfReceiver::default(),
            decoder: SipDecoder::new(config.codec),
            concealment: Concealment::new(rate),
            // 16 kHz to 16 kHz cannot fail; neither can 8 kHz to 16 kHz.
            resampler: Resampler::new(rate, 16_000).unwrap_or_else(|_| unreachable_resampler()),
            encoders: ClientEncoders::default(),
            silence: config.silence_dbov.map(SilenceGate::new),
            silent_frame: None,
            client: ClientCodec::SpeexWb,
            due_milli: 0,
            decoded: Vec::new(),
            pcm: Vec::new(),
            owed_ms: 0,
            to_mix: None,
            mix_in: Vec::new(),
            from_mix: None,
            mix_out: Vec::new(),
            stats: DownlinkStats::default(),
            config,
        }
    }

    pub fn is_passthrough(&self) -> bool {
        self.config.codec.passes_through(self.client)
    }

    /// Milliseconds of audio in a payload passed through as it came.
    fn ms_in(&self, payload: &[u8]) -> i64 {
        match self.client {
            ClientCodec::Opus => crate::opus::clock_ticks(payload).map_or(0, |n| n as i64 / 48),
            // One byte per 8 kHz RTP tick, G.722's clock included.
            ClientCodec::G711(_) | ClientCodec::G722 => payload.len() as i64 / 8,
            _ => frames_in_packet(payload).unwrap_or(0) as i64 * 20,
        }
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
        match self.receive_rtp(now, packet) {
            Heard::Digit(d) => Some(d),
            Heard::Audio | Heard::Dropped(_) => None,
        }
    }

    /// An RTP packet from the peer, and what became of it. Only packets of
    /// the peer's stream ([`SourceFilter`]) reach the statistics, the DTMF
    /// receiver and the jitter buffer.
    pub fn receive_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) -> Heard {
        match self.source.check(now, packet.ssrc, packet.sequence) {
            SourceVerdict::Accept => {}
            SourceVerdict::Switched => {
                // A new stream: its numbering has nothing to do with the old.
                self.jitter.restart();
                self.dtmf = DtmfReceiver::default();
            }
            dropped @ (SourceVerdict::OtherSource | SourceVerdict::BadSequence) => {
                return Heard::Dropped(dropped);
            }
        }
        self.receive
            .packet(now, packet.ssrc, packet.sequence, packet.timestamp);
        if Some(packet.payload_type) == self.config.telephone_event {
            return match self
                .dtmf
                .packet(packet.timestamp, packet.marker, packet.payload)
            {
                Some(d) => Heard::Digit(d),
                None => Heard::Audio,
            };
        }
        if packet.payload_type != self.config.payload_type {
            self.stats.other_payload_types += 1;
            return Heard::Audio;
        }
        self.stats.packets += 1;
        self.jitter.push(
            now,
            packet.sequence,
            packet.timestamp,
            packet.payload_type,
            packet.payload,
        );
        Heard::Audio
    }

    /// What the source filter dropped.
    pub fn source_stats(&self) -> SourceStats {
        self.source.stats()
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
        self.owed_ms = (self.owed_ms + 20).min(60);
        while self.owed_ms > 0 {
            match self.jitter.pop(now) {
                Playout::Packet { payload, .. } => {
                    let ms = self.ms_in(&payload);
                    if ms > 0 {
                        self.owed_ms -= ms;
                        self.stats.frames_to_client += (ms as u64).div_ceil(20);
                        out.push(payload);
                    }
                }
                Playout::Lost => {
                    // The client's decoder (Flash's, the browser's) covers
                    // the gap; we only keep time.
                    self.owed_ms -= i64::from(self.config.ptime_ms.max(10));
                    self.stats.concealed += 1;
                }
                // Late: it goes out with the next tick's, for Flash's own
                // buffer to absorb, rather than be dropped later.
                Playout::Waiting => break,
                Playout::Idle => {
                    self.owed_ms = 0;
                }
            }
        }
    }

    fn tick_transcode(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let rate = self.config.codec.sample_rate();
        let packet_samples = (rate * self.config.ptime_ms.max(10) / 1000) as usize;
        let Some((client_rate, frame)) = self.client.rate_and_frame() else {
            return;
        };
        // 20 ms of the client's samples are due each tick (in thousandths,
        // for 44.1, 22.05 and 11.025 kHz).
        self.due_milli += i64::from(client_rate) * 20;
        let due = (self.due_milli / 1000) as usize;
        let mut idle = false;
        while self.pcm.len() < due {
            if !self.decode_next(now, packet_samples) {
                idle = true;
                break;
            }
            self.resampler.process(&self.decoded, &mut self.pcm);
        }
        while self.pcm.len() >= frame && self.due_milli >= (frame * 1000) as i64 {
            let mut data = Vec::with_capacity(80);
            let silent = self
                .silence
                .as_mut()
                .is_some_and(|gate| gate.replace(&self.pcm[..frame]));
            let (quality, complexity) = (self.config.speex_quality, self.config.speex_complexity);
            if silent {
                let client = self.client;
                let canned = self
                    .silent_frame
                    .get_or_insert_with(|| silent_frame(client, quality, complexity));
                data.extend_from_slice(canned);
                self.stats.silent += 1;
            } else {
                let client = self.client;
                self.encoders
                    .encode(client, quality, complexity, &self.pcm[..frame], &mut data);
            }
            self.pcm.drain(..frame);
            self.due_milli -= (frame * 1000) as i64;
            self.stats.frames_to_client += 1;
            out.push(data);
        }
        if idle {
            // Nothing to play: time passing in silence is not owed later.
            self.due_milli = self.due_milli.min((frame * 1000) as i64);
        }
    }

    /// The peer's next packet from the jitter buffer, decoded into
    /// `decoded` (a lost or late one concealed); false when nothing plays.
    fn decode_next(&mut self, now: Instant, packet_samples: usize) -> bool {
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
            Playout::Idle => return false,
        }
        true
    }

    /// Three-way calls: the peer's next 20 ms at 16 kHz (decoded, losses
    /// concealed; silence when it sends nothing), appended to `out` for
    /// the mix. Nothing goes to the client.
    pub fn tick_pcm(&mut self, now: Instant, out: &mut Vec<i16>) {
        let rate = self.config.codec.sample_rate();
        let packet_samples = (rate * self.config.ptime_ms.max(10) / 1000) as usize;
        if self.to_mix.is_none() {
            self.to_mix = Resampler::new(rate, MIX_RATE).ok();
        }
        if self.to_mix.is_none() {
            return;
        }
        while self.mix_in.len() < MIX_FRAME && self.decode_next(now, packet_samples) {
            if let Some(to_mix) = &mut self.to_mix {
                to_mix.process(&self.decoded, &mut self.mix_in);
            }
        }
        let n = self.mix_in.len().min(MIX_FRAME);
        out.extend(self.mix_in.drain(..n));
        out.resize(out.len() + MIX_FRAME - n, 0);
    }

    /// What the client hears in a three-way call (16 kHz PCM): encoded in
    /// the client's codec, one message per whole frame appended to `out`.
    pub fn mixed_for_client(&mut self, pcm: &[i16], out: &mut Vec<Vec<u8>>) {
        let Some((client_rate, frame)) = self.client.rate_and_frame() else {
            return;
        };
        if client_rate == MIX_RATE {
            self.mix_out.extend_from_slice(pcm);
        } else {
            let resampler = match &mut self.from_mix {
                Some((to, r)) if *to == client_rate => r,
                slot => match Resampler::new(MIX_RATE, client_rate) {
                    Ok(r) => &mut slot.insert((client_rate, r)).1,
                    Err(_) => return,
                },
            };
            resampler.process(pcm, &mut self.mix_out);
        }
        let (quality, complexity) = (self.config.speex_quality, self.config.speex_complexity);
        let mut at = 0;
        while self.mix_out.len() - at >= frame {
            let mut data = Vec::with_capacity(80);
            self.encoders.encode(
                self.client,
                quality,
                complexity,
                &self.mix_out[at..at + frame],
                &mut data,
            );
            at += frame;
            self.stats.frames_to_client += 1;
            out.push(data);
        }
        self.mix_out.drain(..at);
    }

    /// The codec audio down is in (Speex wideband unless switched).
    pub fn client_codec(&self) -> ClientCodec {
        self.client
    }

    /// Sends audio down in another codec: Nellymoser at `rate` (a client
    /// that publishes Nellymoser, when the settings ask for it), G.711 (a
    /// client that publishes the peer's law), Opus (a browser), or back to
    /// Speex. A codec sono only decodes is ignored.
    pub fn set_client_codec(&mut self, codec: ClientCodec) {
        if codec == self.client {
            return;
        }
        let Some((to, _)) = codec.rate_and_frame() else {
            return;
        };
        let Ok(resampler) = Resampler::new(self.config.codec.sample_rate(), to) else {
            return;
        };
        self.client = codec;
        self.silent_frame = None;
        self.resampler = resampler;
        self.pcm.clear();
        self.due_milli = 0;
    }
}

/// The client codecs' encoders, each made when first needed.
#[derive(Default)]
struct ClientEncoders {
    speex: Option<SpeexWbEncoder>,
    nellymoser: Option<NellymoserEncoder>,
    opus: Option<OpusEncoder>,
    g722: Option<G722Encoder>,
}

impl ClientEncoders {
    /// One frame of `pcm` (at the codec's rate) in `client`'s codec.
    fn encode(
        &mut self,
        client: ClientCodec,
        quality: u8,
        complexity: u8,
        pcm: &[i16],
        data: &mut Vec<u8>,
    ) {
        match client {
            ClientCodec::SpeexWb => {
                self.speex
                    .get_or_insert_with(|| SpeexWbEncoder::new(quality, complexity))
                    .encode(pcm, data);
            }
            ClientCodec::Nellymoser { .. } => {
                self.nellymoser
                    .get_or_insert_with(NellymoserEncoder::new)
                    .encode(pcm, data);
            }
            ClientCodec::G711(law) => g711::encode(law, pcm, data),
            ClientCodec::G722 => self
                .g722
                .get_or_insert_with(G722Encoder::new)
                .encode(pcm, data),
            ClientCodec::Opus => {
                if self.opus.is_none() {
                    self.opus = OpusEncoder::new(OPUS_BITRATE).ok();
                }
                if let Some(encoder) = &mut self.opus {
                    // 960 samples always make a packet.
                    let _ = encoder.encode(pcm, data);
                }
            }
            // Not codecs audio down is in (`rate_and_frame` is None).
            ClientCodec::Pcm { .. }
            | ClientCodec::Adpcm { .. }
            | ClientCodec::Mp3
            | ClientCodec::Aac => {}
        }
    }
}

/// Rates here are 8 or 16 kHz, which rubato always accepts; should that
/// ever change, an identity resampler keeps the call alive.
fn unreachable_resampler() -> Resampler {
    Resampler::new(16_000, 16_000).unwrap_or_else(|_| unreachable!("16 kHz to 16 kHz"))
}

/// One frame of digital silence in the client's codec, from an encoder of
/// its own that has settled on silence (its first frames may still carry its
/// start-up state).
fn silent_frame(client: ClientCodec, quality: u8, complexity: u8) -> Vec<u8> {
    let mut frame = Vec::new();
    match client {
        ClientCodec::SpeexWb => {
            let mut encoder = SpeexWbEncoder::new(quality, complexity);
            for _ in 0..3 {
                frame.clear();
                encoder.encode(&[0; SPEEX_WB_FRAME], &mut frame);
            }
        }
        ClientCodec::Nellymoser { .. } => {
            let mut encoder = NellymoserEncoder::new();
            for _ in 0..3 {
                frame.clear();
                encoder.encode(&[0; BLOCK_SAMPLES], &mut frame);
            }
        }
        ClientCodec::Opus => {
            if let Ok(mut encoder) = OpusEncoder::new(OPUS_BITRATE) {
                for _ in 0..3 {
                    frame.clear();
                    let _ = encoder.encode(&[0; OPUS_FRAME], &mut frame);
                }
            }
        }
        ClientCodec::G711(law) => g711::encode(law, &[0; G711_FRAME], &mut frame),
        ClientCodec::G722 => {
            let mut encoder = G722Encoder::new();
            for _ in 0..3 {
                frame.clear();
                encoder.encode(&[0; 2 * G711_FRAME], &mut frame);
            }
        }
        ClientCodec::Pcm { .. }
        | ClientCodec::Adpcm { .. }
        | ClientCodec::Mp3
        | ClientCodec::Aac => {}
    }
    frame
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
            silence_dbov: None,
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
    fn a_browser_gets_one_20_ms_opus_packet_per_tick_that_decodes_to_the_tone() {
        use crate::opus::{OpusDecoder, OPUS_FRAME};
        let mut down = Downlink::new(config(SipCodec::Pcmu, 0));
        down.set_client_codec(ClientCodec::Opus);
        let mut enc = SipEncoder::new(SipCodec::Pcmu, 8, 2);
        let mut sender = RtpSender::new(5, 0, 0);
        let t0 = Instant::now();
        let mut packets = Vec::new();
        let ticks = 100;
        for (i, chunk) in tone(8000, 2.0).chunks(160).enumerate() {
            let now = t0 + 20 * MS * i as u32;
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload);
            let mut d = Vec::new();
            sender.audio(0, &payload, 160, &mut d);
            down.rtp(now, &RtpPacket::parse(&d).unwrap());
            down.tick(now, &mut packets);
        }
        // The jitter buffer holds the first few ticks back.
        assert!(
            (ticks - 5..=ticks).contains(&packets.len()),
            "{} packets for {ticks} ticks",
            packets.len()
        );
        let mut dec = OpusDecoder::new().unwrap();
        let mut pcm = Vec::new();
        for p in &packets {
            assert_eq!(dec.decode(p, &mut pcm).unwrap(), OPUS_FRAME);
        }
        let snr = crate::quality::tone_snr_db(&pcm[3200..pcm.len() - 640], 440.0, 16_000);
        assert!(snr > 10.0, "tone SNR {snr:.1} dB");
    }

    #[test]
    fn opus_from_an_opus_peer_reaches_a_browser_untouched() {
        use crate::opus::{OpusEncoder, OPUS_FRAME};
        let mut enc = OpusEncoder::new(32_000).unwrap();
        let pcm: Vec<i16> = (0..OPUS_FRAME).map(|n| ((n * 7) % 2000) as i16).collect();
        passed_through_untouched(SipCodec::Opus, 111, ClientCodec::Opus, 960, |_| {
            let mut payload = Vec::new();
            enc.encode(&pcm, &mut payload).unwrap();
            payload
        });
    }

    /// 50 packets of 20 ms (`ticks` of the RTP clock each, `payload(i)`)
    /// from a `sip` peer to a `client` of the same codec: what reaches the
    /// client is what the peer sent, in order.
    fn passed_through_untouched(
        sip: SipCodec,
        pt: u8,
        client: ClientCodec,
        ticks: u32,
        mut payload: impl FnMut(u32) -> Vec<u8>,
    ) -> Vec<Vec<u8>> {
        let mut down = Downlink::new(config(sip, pt));
        down.set_client_codec(client);
        assert!(down.is_passthrough());
        let mut sender = RtpSender::new(5, 0, 0);
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut got = Vec::new();
        for i in 0..50u32 {
            let now = t0 + 20 * MS * i;
            let payload = payload(i);
            let mut d = Vec::new();
            sender.audio(pt, &payload, ticks, &mut d);
            down.rtp(now, &RtpPacket::parse(&d).unwrap());
            sent.push(payload);
            down.tick(now, &mut got);
        }
        assert!(got.len() >= 45, "{} packets", got.len());
        assert_eq!(got.as_slice(), &sent[..got.len()]);
        got
    }

    /// 160 bytes: 20 ms of G.711, or of G.722 (its RTP clock is 8 kHz too).
    fn bytes_160(i: u32) -> Vec<u8> {
        (0..160).map(|n| (n * 3 + i) as u8).collect()
    }

    #[test]
    fn g711_from_a_peer_of_the_same_law_reaches_the_client_untouched() {
        use crate::g711::Law;
        for (codec, pt, law) in [(SipCodec::Pcmu, 0, Law::Mu), (SipCodec::Pcma, 8, Law::A)] {
            let got = passed_through_untouched(codec, pt, ClientCodec::G711(law), 160, bytes_160);
            assert_eq!(ClientCodec::G711(law).samples_in(&got[0]), 160);
        }
        // PCMA to a µ-law client is transcoded, one 160-byte frame a tick.
        let mut down = Downlink::new(config(SipCodec::Pcma, 8));
        down.set_client_codec(ClientCodec::G711(Law::Mu));
        assert!(!down.is_passthrough());
        assert_eq!(down.client_codec(), ClientCodec::G711(Law::Mu));
    }

    #[test]
    fn g722_reaches_a_g722_browser_untouched_and_pcmu_is_encoded_for_it() {
        let got = passed_through_untouched(SipCodec::G722, 9, ClientCodec::G722, 160, bytes_160);
        assert_eq!(ClientCodec::G722.samples_in(&got[0]), 320);
        let t0 = Instant::now();
        // PCMU to a G.722 browser: 160-byte G.722 frames (320 samples at
        // 16 kHz), one a tick, that decode to the peer's tone.
        let mut down = Downlink::new(config(SipCodec::Pcmu, 0));
        down.set_client_codec(ClientCodec::G722);
        assert!(!down.is_passthrough());
        let mut enc = SipEncoder::new(SipCodec::Pcmu, 8, 2);
        let mut sender = RtpSender::new(5, 0, 0);
        let mut got = Vec::new();
        for i in 0..50u32 {
            let now = t0 + 20 * MS * i;
            let pcm: Vec<i16> = (0..160)
                .map(|n| {
                    let t = f64::from(i * 160 + n) / 8000.0;
                    ((t * 2.0 * std::f64::consts::PI * 500.0).sin() * 8000.0) as i16
                })
                .collect();
            let mut payload = Vec::new();
            enc.encode(&pcm, &mut payload);
            let mut d = Vec::new();
            sender.audio(0, &payload, 160, &mut d);
            down.rtp(now, &RtpPacket::parse(&d).unwrap());
            down.tick(now, &mut got);
        }
        assert!(got.len() >= 40, "{} frames", got.len());
        assert!(got.iter().all(|f| f.len() == 160));
        let mut decoder = crate::g722::G722Decoder::new();
        let mut heard = Vec::new();
        for frame in &got[got.len() - 20..] {
            decoder.decode(frame, &mut heard);
        }
        let power = heard.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / heard.len() as f64;
        assert!(
            power.sqrt() > 2000.0,
            "the tone is there: rms {}",
            power.sqrt()
        );
    }

    #[test]
    fn nellymoser_down_comes_at_real_time_pace_for_a_nellymoser_client() {
        use crate::nellymoser::NellymoserDecoder;
        for rate in [8000, 22_050] {
            let mut down = Downlink::new(config(SipCodec::Pcmu, 0));
            down.set_client_codec(ClientCodec::Nellymoser { rate });
            assert!(!down.is_passthrough());
            let mut enc = SipEncoder::new(SipCodec::Pcmu, 8, 2);
            let mut sender = RtpSender::new(5, 0, 0);
            let t0 = Instant::now();
            let mut blocks = Vec::new();
            for (i, chunk) in tone(8000, 2.0).chunks(160).enumerate() {
                let now = t0 + 20 * MS * i as u32;
                let mut payload = Vec::new();
                enc.encode(chunk, &mut payload);
                let mut d = Vec::new();
                sender.audio(0, &payload, 160, &mut d);
                down.rtp(now, &RtpPacket::parse(&d).unwrap());
                down.tick(now, &mut blocks);
            }
            // Two seconds at `rate` are rate·2/256 blocks, less the start-up delay.
            let expected = rate as usize * 2 / 256;
            assert!(
                blocks.len() <= expected && blocks.len() + 12 >= expected,
                "{rate}: {} blocks",
                blocks.len()
            );
            assert!(blocks.iter().all(|b| b.len() == 64));
            let mut pcm = Vec::new();
            let mut dec = NellymoserDecoder::new();
            for b in &blocks {
                dec.decode(b, &mut pcm);
            }
            let snr =
                crate::quality::tone_snr_db(&pcm[pcm.len() / 4..pcm.len() - 512], 440.0, rate);
            assert!(snr > 8.0, "{rate}: tone SNR {snr:.1} dB");
        }
    }

    #[test]
    fn silence_goes_down_as_silent_frames_and_speech_is_still_encoded() {
        // A second of silence, a second of tone, a second of silence.
        let mut pcm = vec![0i16; 8000];
        pcm.extend(tone(8000, 1.0));
        pcm.extend(vec![0i16; 8000]);
        let mut gated_config = config(SipCodec::Pcmu, 0);
        gated_config.silence_dbov = Some(-60.0);
        let mut gated = Downlink::new(gated_config);
        let mut plain = Downlink::new(config(SipCodec::Pcmu, 0));
        let mut enc = SipEncoder::new(SipCodec::Pcmu, 8, 2);
        let mut sender = RtpSender::new(5, 0, 0);
        let t0 = Instant::now();
        let (mut gated_out, mut plain_out) = (Vec::new(), Vec::new());
        for (i, chunk) in pcm.chunks(160).enumerate() {
            let now = t0 + 20 * MS * i as u32;
            let mut payload = Vec::new();
            enc.encode(chunk, &mut payload);
            let mut datagram = Vec::new();
            sender.audio(0, &payload, 160, &mut datagram);
            let packet = RtpPacket::parse(&datagram).unwrap();
            gated.rtp(now, &packet);
            plain.rtp(now, &packet);
            gated.tick(now, &mut gated_out);
            plain.tick(now, &mut plain_out);
        }
        assert_eq!(
            gated_out.len(),
            plain_out.len(),
            "one frame a tick either way"
        );
        let silent = gated.stats().silent;
        // Both silences, less the 100 ms hangover of each and the tone's frames.
        assert!((80..=95).contains(&silent), "{:?}", gated.stats());
        assert_eq!(plain.stats().silent, 0);
        let mut dec = SpeexWbDecoder::new();
        let mut heard = Vec::new();
        for frame in &gated_out {
            dec.decode(frame, &mut heard);
        }
        let snr = crate::quality::tone_snr_db(&heard[60 * 320..90 * 320], 440.0, 16_000);
        assert!(snr > 10.0, "tone SNR {snr:.1} dB through the gate");
        let loudest_in_silence = heard[..40 * 320]
            .iter()
            .chain(&heard[heard.len() - 30 * 320..])
            .map(|s| s.unsigned_abs())
            .max();
        assert!(
            loudest_in_silence.unwrap_or(0) < 100,
            "silent frames decode to near silence: {loudest_in_silence:?}"
        );
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
