//! Audio up: what the client sends (Flash over RTMP, a browser over WebRTC),
//! to RTP for the SIP peer.
//!
//! Each audio message (Speex wideband, Nellymoser at any of Flash's rates,
//! G.711 from Flash Player 11, AAC, MP3, ADPCM or linear PCM from an RTMP
//! tool, or an Opus packet from a browser) is handled as it arrives (no
//! clock of our own: the client's pace is the pace). Speex to Speex is
//! passed through — the message's frames become one RTP payload byte for
//! byte (RFC 5574 allows several frames per packet), and the RTP clock
//! advances by the frames counted from their mode bits — and so is Opus to
//! Opus (RFC 7587). G.711 to the same law is passed through too, its bytes
//! regrouped into packets of the peer's ptime (one byte is one sample, so
//! that costs no codec work). Anything else is decoded, resampled to the
//! SIP codec's rate, cut into ptime packets and encoded.
//!
//! Gaps in the client's RTMP timestamps (Flash stops sending in silence
//! when its silence level is above 0) advance the RTP clock and start a new
//! talkspurt, so the peer's jitter buffer sees the real timing. DTMF from
//! `sendDTMF` goes out as RFC 4733 events on the same stream, driven by
//! [`Uplink::tick`]; audio is held back while an event plays.

use std::collections::VecDeque;

use crate::aac::{AacDecoder, AacOutput};
use crate::codec::{ClientCodec, SipCodec, SipEncoder};
use crate::dtmf::{event_of, DtmfSender};
use crate::g722::G722Decoder;
use crate::mp3::Mp3Decoder;
use crate::nellymoser::{NellymoserDecoder, BLOCK_BYTES, BLOCK_SAMPLES};
use crate::opus::{clock_ticks, OpusDecoder, OPUS_CLOCK, OPUS_PCM_RATE};
use crate::resampler::Resampler;
use crate::rtp_sender::RtpSender;
use crate::speex::{frames_in_packet, SpeexWbDecoder, SPEEX_WB_FRAME};
use crate::three_way::MIX_RATE;
use crate::{adpcm, g711, pcm};

/// The longest run of lost Opus packets concealed rather than treated as
/// a pause in the client's sending.
const MAX_CONCEALED_GAP_MS: u32 = 120;

/// How a call's audio up is set up.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub codec: SipCodec,
    pub payload_type: u8,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event: Option<u8>,
    pub ptime_ms: u32,
    pub speex_quality: u8,
    pub speex_complexity: u8,
    /// How long each DTMF digit sounds, and the pause after it.
    pub dtmf_duration_ms: u32,
    pub dtmf_pause_ms: u32,
}

/// Why client audio or a DTMF request was not sent on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UplinkError {
    #[error("the client publishes {0}, which this build cannot decode")]
    UnsupportedCodec(&'static str),
    #[error("a Speex packet whose mode bits do not parse")]
    CorruptSpeex,
    #[error("a Nellymoser message shorter than a block, or at a rate outside 4-48 kHz")]
    CorruptNellymoser,
    #[error("an Opus packet libopus cannot decode")]
    CorruptOpus,
    #[error("{codec} audio that cannot be decoded: {reason}")]
    Undecodable { codec: &'static str, reason: String },
    #[error("the SIP peer did not negotiate telephone-event (RFC 4733)")]
    NoTelephoneEvent,
    #[error("{0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    BadDigit(char),
}

/// Counters for the call's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UplinkStats {
    pub messages: u64,
    pub packets: u64,
    pub passed_through: u64,
    pub dropped: u64,
    pub dtmf_digits: u64,
}

struct DtmfInProgress {
    sender: DtmfSender,
    start: u32,
    /// Ticks of silence still owed after the event before the next one.
    pause_ticks: u32,
    done: bool,
}

/// Where decoded client audio goes: encoded for the peer (passed through
/// when the codecs allow), or to a three-way call's mix (always decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Peer,
    Mix,
}

pub struct Uplink {
    config: UplinkConfig,
    sender: RtpSender,
    encoder: SipEncoder,
    speex: Option<SpeexWbDecoder>,
    nellymoser: Option<NellymoserDecoder>,
    opus: Option<OpusDecoder>,
    aac: Option<AacDecoder>,
    mp3: Option<Mp3Decoder>,
    resampler: Option<(u32, Resampler)>,
    /// Three-way calls: the client's audio decoded to 16 kHz for the mix,
    /// and the mix back to the call's rate.
    to_mix: Option<(u32, Resampler)>,
    from_mix: Option<Resampler>,
    /// G.711 or G.722 bytes passed through, not yet a whole packet.
    pending_through: Vec<u8>,
    g722: Option<G722Decoder>,
    /// PCM at the SIP codec's rate not yet sent.
    pcm: Vec<i16>,
    decoded: Vec<i16>,
    payload: Vec<u8>,
    /// RTMP time (ms) the next message should carry if none is missing.
    expected_ms: Option<u32>,
    dtmf_queue: VecDeque<char>,
    dtmf: Option<DtmfInProgress>,
    stats: UplinkStats,
}

impl Uplink {
    pub fn new(config: UplinkConfig, sender: RtpSender) -> Uplink {
        Uplink {
            encoder: SipEncoder::new(config.codec, config.speex_quality, config.speex_complexity),
            config,
            sender,
            speex: None,
            nellymoser: None,
            opus: None,
            aac: None,
            mp3: None,
            resampler: None,
            to_mix: None,
            from_mix: None,
            pending_through: Vec::new(),
            g722: None,
            pcm: Vec::new(),
            decoded: Vec::new(),
            payload: Vec::new(),
            expected_ms: None,
            dtmf_queue: VecDeque::new(),
            dtmf: None,
            stats: UplinkStats::default(),
        }
    }

    pub fn sender(&self) -> &RtpSender {
        &self.sender
    }

    pub fn stats(&self) -> UplinkStats {
        self.stats
    }

    fn packet_samples(&self) -> usize {
        (self.config.codec.sample_rate() * self.config.ptime_ms.max(10) / 1000) as usize
    }

    /// One audio message from the client (its codec, RTMP timestamp in ms
    /// and the data after the FLV header byte); RTP datagrams go to `out`.
    pub fn client_audio(
        &mut self,
        codec: ClientCodec,
        rtmp_ms: u32,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), UplinkError> {
        self.stats.messages += 1;
        let result = self.client_audio_inner(codec, rtmp_ms, data, out);
        if result.is_err() {
            self.stats.dropped += 1;
        }
        result
    }

    fn client_audio_inner(
        &mut self,
        codec: ClientCodec,
        rtmp_ms: u32,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), UplinkError> {
        match self.decode(codec, rtmp_ms, data, out, Destination::Peer)? {
            Some(client_rate) => self.send_decoded(client_rate, out),
            None => Ok(()),
        }
    }

    /// One audio message from the client of a three-way call: decoded
    /// (never passed through) and appended to `pcm` at 16 kHz, for the
    /// mix; nothing is sent.
    pub fn client_audio_to_pcm(
        &mut self,
        codec: ClientCodec,
        rtmp_ms: u32,
        data: &[u8],
        pcm: &mut Vec<i16>,
    ) -> Result<(), UplinkError> {
        self.stats.messages += 1;
        let mut unused = Vec::new();
        let decoded = self.decode(codec, rtmp_ms, data, &mut unused, Destination::Mix);
        let client_rate = match decoded {
            Ok(Some(rate)) => rate,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.stats.dropped += 1;
                return Err(e);
            }
        };
        if client_rate == MIX_RATE {
            pcm.extend_from_slice(&self.decoded);
            return Ok(());
        }
        let resampler = match &mut self.to_mix {
            Some((from, r)) if *from == client_rate => r,
            slot => {
                let r = Resampler::new(client_rate, MIX_RATE)
                    .map_err(|_| UplinkError::UnsupportedCodec("a rate"))?;
                &mut slot.insert((client_rate, r)).1
            }
        };
        resampler.process(&self.decoded, pcm);
        Ok(())
    }

    /// What the peer hears in a three-way call (the mix, 16 kHz PCM):
    /// encoded in the call's codec and sent as the peer's ptime fills.
    pub fn mixed_pcm(&mut self, pcm: &[i16], out: &mut Vec<Vec<u8>>) {
        let rate = self.config.codec.sample_rate();
        if rate == MIX_RATE {
            self.pcm.extend_from_slice(pcm);
        } else {
            if self.from_mix.is_none() {
                self.from_mix = Resampler::new(MIX_RATE, rate).ok();
            }
            match &mut self.from_mix {
                Some(r) => r.process(pcm, &mut self.pcm),
                None => return,
            }
        }
        self.packetize(out);
    }

    /// Decodes one client message to PCM at the client's rate in
    /// `decoded`: `Some(rate)`, or `None` when there was nothing to decode
    /// or it went through untouched (to `out`).
    fn decode(
        &mut self,
        codec: ClientCodec,
        rtmp_ms: u32,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
        to: Destination,
    ) -> Result<Option<u32>, UplinkError> {
        // Decode to PCM at the client's rate; Speex to Speex goes through.
        self.decoded.clear();
        let through = to == Destination::Peer;
        let client_rate = match codec {
            ClientCodec::SpeexWb => {
                let frames = frames_in_packet(data).ok_or(UplinkError::CorruptSpeex)?;
                if frames == 0 {
                    return Ok(None);
                }
                self.follow_client_clock(rtmp_ms, frames as u32 * 20, to);
                if through && self.config.codec == SipCodec::SpeexWb {
                    self.pass_through(data, (frames * SPEEX_WB_FRAME) as u32, out);
                    return Ok(None);
                }
                self.speex
                    .get_or_insert_with(SpeexWbDecoder::new)
                    .decode(data, &mut self.decoded);
                16_000
            }
            ClientCodec::Nellymoser { rate } => {
                if data.len() < BLOCK_BYTES || !(4000..=48_000).contains(&rate) {
                    return Err(UplinkError::CorruptNellymoser);
                }
                let blocks = self
                    .nellymoser
                    .get_or_insert_with(NellymoserDecoder::new)
                    .decode(data, &mut self.decoded);
                let ms = (blocks * BLOCK_SAMPLES) as u64 * 1000 / u64::from(rate);
                self.follow_client_clock(rtmp_ms, ms as u32, to);
                rate
            }
            ClientCodec::Opus if through && self.config.codec == SipCodec::Opus => {
                // Opus to Opus: the browser's packets go on untouched.
                let ticks = clock_ticks(data).ok_or(UplinkError::CorruptOpus)?;
                self.follow_client_clock(rtmp_ms, (ticks * 1000 / OPUS_CLOCK as usize) as u32, to);
                self.pass_through(data, ticks as u32, out);
                return Ok(None);
            }
            ClientCodec::Opus => {
                self.opus_packet(rtmp_ms, data, to)?;
                OPUS_PCM_RATE
            }
            ClientCodec::G711(_) | ClientCodec::G722 => {
                if data.is_empty() {
                    return Ok(None);
                }
                // One byte per 8 kHz RTP tick, G.722's too (RFC 3551
                // §4.5.2): 8 bytes a millisecond.
                self.follow_client_clock(rtmp_ms, (data.len() / 8) as u32, to);
                if through && self.config.codec.passes_through(codec) {
                    self.bytes_through(data, out);
                    return Ok(None);
                }
                if let ClientCodec::G711(law) = codec {
                    g711::decode(law, data, &mut self.decoded);
                    8_000
                } else {
                    self.g722
                        .get_or_insert_with(G722Decoder::new)
                        .decode(data, &mut self.decoded);
                    16_000
                }
            }
            ClientCodec::Pcm {
                rate,
                stereo,
                sixteen_bit,
            } => {
                pcm::decode(data, stereo, sixteen_bit, &mut self.decoded)
                    .map_err(|e| undecodable(codec, e))?;
                rate
            }
            ClientCodec::Adpcm { rate, stereo } => {
                adpcm::decode(data, stereo, &mut self.decoded)
                    .map_err(|e| undecodable(codec, e))?;
                rate
            }
            ClientCodec::Mp3 => self
                .mp3
                .get_or_insert_with(Mp3Decoder::new)
                .decode(data, &mut self.decoded)
                .map_err(|e| undecodable(codec, e))?,
            ClientCodec::Aac => {
                match self
                    .aac
                    .get_or_insert_with(AacDecoder::new)
                    .decode(data, &mut self.decoded)
                    .map_err(|e| undecodable(codec, e))?
                {
                    AacOutput::Configured(_) => return Ok(None),
                    AacOutput::Audio { rate } => rate,
                }
            }
        };
        if matches!(
            codec,
            ClientCodec::Pcm { .. }
                | ClientCodec::Adpcm { .. }
                | ClientCodec::Mp3
                | ClientCodec::Aac
        ) {
            if self.decoded.is_empty() || client_rate == 0 {
                return Ok(None);
            }
            let ms = self.decoded.len() as u64 * 1000 / u64::from(client_rate);
            self.follow_client_clock(rtmp_ms, ms as u32, to);
        }
        Ok(Some(client_rate))
    }

    /// The decoded client audio, resampled to the call's rate, encoded and
    /// sent as the peer's ptime fills.
    fn send_decoded(
        &mut self,
        client_rate: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), UplinkError> {
        let rate = self.config.codec.sample_rate();
        if rate == client_rate {
            self.pcm.extend_from_slice(&self.decoded);
        } else {
            let resampler = match &mut self.resampler {
                Some((from, r)) if *from == client_rate => r,
                slot => {
                    let r = Resampler::new(client_rate, rate)
                        .map_err(|_| UplinkError::UnsupportedCodec("a rate"))?;
                    &mut slot.insert((client_rate, r)).1
                }
            };
            resampler.process(&self.decoded, &mut self.pcm);
        }
        self.packetize(out);
        Ok(())
    }

    /// Encodes and sends every whole packet of `pcm`.
    fn packetize(&mut self, out: &mut Vec<Vec<u8>>) {
        let n = self.packet_samples();
        let mut at = 0;
        while self.pcm.len() - at >= n {
            let chunk = &self.pcm[at..at + n];
            at += n;
            let ticks = self.config.codec.rtp_ticks(n);
            if self.dtmf.is_some() {
                self.sender.skip(ticks);
                continue;
            }
            self.payload.clear();
            self.encoder.encode(chunk, &mut self.payload);
            let mut datagram = Vec::with_capacity(12 + self.payload.len());
            self.sender.audio(
                self.config.payload_type,
                &self.payload,
                ticks,
                &mut datagram,
            );
            out.push(datagram);
            self.stats.packets += 1;
        }
        self.pcm.drain(..at);
    }

    /// G.711 or G.722 bytes from the client, unchanged, in packets of the peer's
    /// ptime.
    fn bytes_through(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) {
        self.pending_through.extend_from_slice(data);
        // One byte per RTP tick: G.711's 8 kHz, and G.722's 8 kHz clock.
        let n = (self.config.codec.rtp_clock_rate() * self.config.ptime_ms.max(10) / 1000) as usize;
        let mut at = 0;
        while self.pending_through.len() - at >= n {
            let (start, end) = (at, at + n);
            at = end;
            if self.dtmf.is_some() {
                self.sender.skip(n as u32);
                continue;
            }
            let mut datagram = Vec::with_capacity(12 + n);
            self.sender.audio(
                self.config.payload_type,
                &self.pending_through[start..end],
                n as u32,
                &mut datagram,
            );
            out.push(datagram);
            self.stats.packets += 1;
            self.stats.passed_through += 1;
        }
        self.pending_through.drain(..at);
    }

    /// One client packet as one RTP payload, byte for byte, covering
    /// `ticks` of the RTP clock.
    fn pass_through(&mut self, data: &[u8], ticks: u32, out: &mut Vec<Vec<u8>>) {
        if self.dtmf.is_some() {
            self.sender.skip(ticks);
            return;
        }
        let mut datagram = Vec::with_capacity(12 + data.len());
        self.sender
            .audio(self.config.payload_type, data, ticks, &mut datagram);
        out.push(datagram);
        self.stats.packets += 1;
        self.stats.passed_through += 1;
    }

    /// Decodes one Opus packet into `decoded`. A short gap before it (lost
    /// packets: WebRTC is carried over UDP) is concealed by libopus, from
    /// the packet's in-band FEC where it has some, so the peer hears no
    /// hole and the RTP clock stays continuous; a long one is a pause.
    fn opus_packet(&mut self, ms: u32, data: &[u8], to: Destination) -> Result<(), UplinkError> {
        let decoder = match &mut self.opus {
            Some(decoder) => decoder,
            slot => slot.insert(OpusDecoder::new().map_err(|_| UplinkError::CorruptOpus)?),
        };
        let ticks = clock_ticks(data).ok_or(UplinkError::CorruptOpus)?;
        if let Some(expected) = self.expected_ms {
            let gap = ms.wrapping_sub(expected);
            if (1..=MAX_CONCEALED_GAP_MS).contains(&gap) {
                let lost = gap as usize * OPUS_PCM_RATE as usize / 1000;
                // Concealment failing leaves the gap to `follow_client_clock`.
                if decoder.conceal(lost, Some(data), &mut self.decoded).is_ok() {
                    self.expected_ms = Some(ms);
                }
            }
        }
        decoder
            .decode(data, &mut self.decoded)
            .map_err(|_| UplinkError::CorruptOpus)?;
        self.follow_client_clock(ms, (ticks * 1000 / OPUS_CLOCK as usize) as u32, to);
        Ok(())
    }

    /// A jump in the client's timestamps beyond a packet's worth is a pause
    /// in its sending: the RTP clock jumps with it.
    fn follow_client_clock(&mut self, rtmp_ms: u32, duration_ms: u32, to: Destination) {
        if let Some(expected) = self.expected_ms {
            let gap = rtmp_ms.wrapping_sub(expected);
            // In a three-way call the mix keeps the RTP clock, not the client.
            if to == Destination::Peer && gap > 2 * self.config.ptime_ms.max(20) && gap < 60_000 {
                let ticks =
                    (u64::from(gap) * u64::from(self.config.codec.rtp_clock_rate()) / 1000) as u32;
                self.sender.skip(ticks);
                self.pcm.clear();
                self.pending_through.clear();
            }
        }
        self.expected_ms = Some(rtmp_ms.wrapping_add(duration_ms));
    }

    /// Queues digits to send as telephone events.
    pub fn send_dtmf(&mut self, digits: &str) -> Result<(), UplinkError> {
        if self.config.telephone_event.is_none() {
            return Err(UplinkError::NoTelephoneEvent);
        }
        if let Some(bad) = digits.chars().find(|c| event_of(*c).is_none()) {
            return Err(UplinkError::BadDigit(bad));
        }
        self.dtmf_queue.extend(digits.chars());
        Ok(())
    }

    /// The clock's turn (every ptime): sends the next telephone-event
    /// packet, if a digit is playing or waiting.
    pub fn tick(&mut self, out: &mut Vec<Vec<u8>>) {
        let Some(pt) = self.config.telephone_event else {
            return;
        };
        let clock = self.config.codec.rtp_clock_rate();
        let tick = clock * self.config.ptime_ms.max(10) / 1000;
        if self.dtmf.is_none() {
            let Some(digit) = self.dtmf_queue.pop_front() else {
                return;
            };
            let length =
                (clock * self.config.dtmf_duration_ms.max(40) / 1000).min(u32::from(u16::MAX));
            let Some(sender) = DtmfSender::new(digit, tick as u16, length as u16) else {
                return;
            };
            self.stats.dtmf_digits += 1;
            self.dtmf = Some(DtmfInProgress {
                sender,
                start: self.sender.timestamp(),
                pause_ticks: self.config.dtmf_pause_ms / self.config.ptime_ms.max(10),
                done: false,
            });
        }
        let Some(event) = &mut self.dtmf else {
            return;
        };
        if !event.done {
            if let Some(packet) = event.sender.next_packet() {
                let mut datagram = Vec::with_capacity(16);
                self.sender.event(
                    pt,
                    packet.marker,
                    event.start,
                    &packet.payload,
                    &mut datagram,
                );
                out.push(datagram);
                return;
            }
            event.done = true;
            // The event took `length` of the stream's time; if no audio
            // advanced the clock meanwhile, advance it now, so the next
            // event gets a new timestamp (receivers tell events apart by it).
            let elapsed = self.sender.timestamp().wrapping_sub(event.start);
            let length = u32::from(event.sender.length());
            if elapsed < length {
                self.sender.skip(length - elapsed);
            }
        }
        if event.pause_ticks > 0 {
            event.pause_ticks -= 1;
            self.sender.skip(tick);
            return;
        }
        self.dtmf = None;
    }
}

fn undecodable(codec: ClientCodec, e: impl std::fmt::Display) -> UplinkError {
    UplinkError::Undecodable {
        codec: codec.name(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::TelephoneEvent;
    use crate::rtp::RtpPacket;
    use crate::speex::SpeexWbEncoder;

    fn config(codec: SipCodec, payload_type: u8) -> UplinkConfig {
        UplinkConfig {
            codec,
            payload_type,
            telephone_event: Some(101),
            ptime_ms: 20,
            speex_quality: 8,
            speex_complexity: 2,
            dtmf_duration_ms: 100,
            dtmf_pause_ms: 40,
        }
    }

    fn speech_like(frames: usize) -> Vec<i16> {
        (0..frames * 320)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                ((t * 2.0 * std::f64::consts::PI * 300.0).sin() * 6000.0
                    + (t * 2.0 * std::f64::consts::PI * 1100.0).sin() * 3000.0)
                    as i16
            })
            .collect()
    }

    fn flash_packets(frames_per_packet: usize, packets: usize) -> Vec<Vec<u8>> {
        let pcm = speech_like(frames_per_packet * packets);
        let mut enc = SpeexWbEncoder::new(8, 2);
        pcm.chunks(320 * frames_per_packet)
            .map(|c| {
                let mut p = Vec::new();
                enc.encode(c, &mut p);
                p
            })
            .collect()
    }

    /// A browser's Opus up to a PCMU peer, one packet lost on the way: the
    /// peer gets a packet for every 20 ms, the lost one's included
    /// (concealed), RTP timestamps in one unbroken run, and the tone.
    #[test]
    fn opus_from_a_browser_reaches_pcmu_with_a_lost_packet_concealed() {
        use crate::opus::{OpusEncoder, OPUS_FRAME, OPUS_PCM_RATE};
        let pcm: Vec<i16> = (0..OPUS_FRAME * 50)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(OPUS_PCM_RATE)).sin()
                    * 8000.0) as i16
            })
            .collect();
        let mut enc = OpusEncoder::new(32_000).unwrap();
        let mut up = Uplink::new(config(SipCodec::Pcmu, 0), RtpSender::new(1, 100, 1000));
        let mut out = Vec::new();
        for (i, frame) in pcm.chunks(OPUS_FRAME).enumerate() {
            let mut packet = Vec::new();
            enc.encode(frame, &mut packet).unwrap();
            if i != 20 {
                up.client_audio(ClientCodec::Opus, 20 * i as u32, &packet, &mut out)
                    .unwrap();
            }
        }
        // The resampler holds a little back; every other 20 ms is sent.
        assert!((48..=50).contains(&out.len()), "{} packets", out.len());
        let packets: Vec<RtpPacket> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        for pair in packets.windows(2) {
            assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 160);
            assert_eq!(pair[1].sequence.wrapping_sub(pair[0].sequence), 1);
        }
        let mut heard = Vec::new();
        for p in &packets {
            crate::g711::decode(crate::g711::Law::Mu, p.payload, &mut heard);
        }
        let snr = crate::quality::tone_snr_db(&heard[1600..heard.len() - 320], 440.0, 8000);
        assert!(snr > 10.0, "tone SNR {snr:.1} dB");
        assert_eq!(up.stats().dropped, 0);
        assert!(
            up.client_audio(ClientCodec::Opus, 2000, &[0x03, 0x00], &mut out)
                .is_err(),
            "a corrupt packet is refused"
        );
    }

    #[test]
    fn opus_to_opus_passes_packets_through_byte_for_byte() {
        use crate::opus::{OpusEncoder, OPUS_FRAME};
        let mut enc = OpusEncoder::new(32_000).unwrap();
        let input: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                let pcm: Vec<i16> = (0..OPUS_FRAME)
                    .map(|n| ((n * (i + 1)) % 3000) as i16)
                    .collect();
                let mut p = Vec::new();
                enc.encode(&pcm, &mut p).unwrap();
                p
            })
            .collect();
        let mut up = Uplink::new(config(SipCodec::Opus, 111), RtpSender::new(1, 100, 1000));
        let mut out = Vec::new();
        for (i, p) in input.iter().enumerate() {
            up.client_audio(ClientCodec::Opus, 20 * i as u32, p, &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 5);
        let packets: Vec<RtpPacket> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        for (p, sent) in packets.iter().zip(&input) {
            assert_eq!(p.payload_type, 111);
            assert_eq!(p.payload, sent.as_slice());
        }
        for pair in packets.windows(2) {
            assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 960);
        }
        assert_eq!(up.stats().passed_through, 5);
    }

    #[test]
    fn g711_to_the_same_law_passes_bytes_through_in_ptime_packets() {
        use crate::g711::Law;
        // Flash Player 11 sends G.711 in messages of its own size; the peer
        // asked for 30 ms packets.
        let mut cfg = config(SipCodec::Pcmu, 0);
        cfg.ptime_ms = 30;
        let mut up = Uplink::new(cfg, RtpSender::new(1, 100, 1000));
        let sent: Vec<u8> = (0..2400u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        for (i, chunk) in sent.chunks(160).enumerate() {
            up.client_audio(ClientCodec::G711(Law::Mu), 20 * i as u32, chunk, &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 10);
        let packets: Vec<RtpPacket> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        let bytes: Vec<u8> = packets.iter().flat_map(|p| p.payload.to_vec()).collect();
        assert_eq!(bytes, sent, "the client's bytes, unchanged and in order");
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.payload.len(), 240);
            assert_eq!(p.timestamp, 1000 + 240 * i as u32);
        }
        assert_eq!(up.stats().passed_through, 10);
        // The other law is transcoded: same count of packets, other bytes.
        let mut up = Uplink::new(config(SipCodec::Pcma, 8), RtpSender::new(1, 100, 1000));
        let mut out = Vec::new();
        for (i, chunk) in sent.chunks(160).enumerate() {
            up.client_audio(ClientCodec::G711(Law::Mu), 20 * i as u32, chunk, &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 15);
        assert_eq!(up.stats().passed_through, 0);
    }

    #[test]
    fn g722_from_a_browser_passes_through_to_g722_and_is_decoded_for_pcmu() {
        // A browser's 20 ms G.722 packets (160 bytes, 160 ticks of the 8 kHz
        // RTP clock) to a G.722 peer asking for 30 ms: bytes unchanged, 240
        // a packet, 240 ticks apart.
        let mut cfg = config(SipCodec::G722, 9);
        cfg.ptime_ms = 30;
        let mut up = Uplink::new(cfg, RtpSender::new(1, 100, 1000));
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 700.0 / 16_000.0).sin() * 8000.0) as i16
            })
            .collect();
        let mut sent = Vec::new();
        crate::g722::G722Encoder::new().encode(&tone[..4800], &mut sent);
        assert_eq!(sent.len(), 2400);
        let mut out = Vec::new();
        for (i, chunk) in sent.chunks(160).enumerate() {
            up.client_audio(ClientCodec::G722, 20 * i as u32, chunk, &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 10);
        let packets: Vec<RtpPacket> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        let bytes: Vec<u8> = packets.iter().flat_map(|p| p.payload.to_vec()).collect();
        assert_eq!(bytes, sent, "the browser's bytes, unchanged and in order");
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.payload_type, 9);
            assert_eq!(p.timestamp, 1000 + 240 * i as u32);
        }
        assert_eq!(up.stats().passed_through, 10);
        // To PCMU it is decoded at 16 kHz and resampled: 20 ms packets of
        // 160 µ-law bytes that carry the tone.
        let mut up = Uplink::new(config(SipCodec::Pcmu, 0), RtpSender::new(1, 100, 1000));
        let mut out = Vec::new();
        let mut all = Vec::new();
        crate::g722::G722Encoder::new().encode(&tone, &mut all);
        for (i, chunk) in all.chunks(160).enumerate() {
            up.client_audio(ClientCodec::G722, 20 * i as u32, chunk, &mut out)
                .unwrap();
        }
        assert!((48..=50).contains(&out.len()), "{} packets", out.len());
        assert_eq!(up.stats().passed_through, 0);
        let mut heard = Vec::new();
        for d in &out[10..] {
            let p = RtpPacket::parse(d).unwrap();
            assert_eq!(p.payload.len(), 160);
            crate::g711::decode(crate::g711::Law::Mu, p.payload, &mut heard);
        }
        let power = heard.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / heard.len() as f64;
        assert!(
            power.sqrt() > 3000.0,
            "the tone is there: rms {}",
            power.sqrt()
        );
    }

    #[test]
    fn tool_codecs_become_packets_at_real_time_pace() {
        // 2 s of a 44.1 kHz stereo PCM tone, 4096 frames a message as
        // ffmpeg sends it, to G.722: 100 packets of 20 ms (give or take the
        // resampler's delay).
        let tone: Vec<i16> = (0..88_200)
            .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
            .collect();
        let mut bytes = Vec::new();
        for s in &tone {
            bytes.extend_from_slice(&s.to_le_bytes());
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let codec = ClientCodec::Pcm {
            rate: 44_100,
            stereo: true,
            sixteen_bit: true,
        };
        let mut up = Uplink::new(config(SipCodec::G722, 9), RtpSender::new(1, 100, 1000));
        let mut out = Vec::new();
        for (i, chunk) in bytes.chunks(4096 * 4).enumerate() {
            let ms = (i * 4096 * 1000 / 44_100) as u32;
            up.client_audio(codec, ms, chunk, &mut out).unwrap();
        }
        assert!((97..=100).contains(&out.len()), "{} packets", out.len());
        let packets: Vec<RtpPacket> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        for pair in packets.windows(2) {
            assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 160);
        }
        // AAC before its sequence header, and a PCM message cut mid-sample,
        // are refused with the codec named, and counted.
        let err = up.client_audio(ClientCodec::Aac, 3000, &[1, 0x21, 0], &mut out);
        assert!(
            matches!(&err, Err(UplinkError::Undecodable { codec: "aac", reason }) if reason.contains("sequence header")),
            "{err:?}"
        );
        let err = up.client_audio(codec, 3020, &[1, 2, 3], &mut out);
        assert!(
            matches!(err, Err(UplinkError::Undecodable { codec: "pcm", .. })),
            "{err:?}"
        );
        assert_eq!(up.stats().dropped, 2);
    }

    #[test]
    fn speex_to_speex_passes_frames_through_byte_for_byte() {
        let mut up = Uplink::new(config(SipCodec::SpeexWb, 97), RtpSender::new(1, 100, 1000));
        let input = flash_packets(2, 5);
        let mut out = Vec::new();
        for (i, p) in input.iter().enumerate() {
            up.client_audio(ClientCodec::SpeexWb, 40 * i as u32, p, &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 5);
        for (i, (d, p)) in out.iter().zip(&input).enumerate() {
            let rtp = RtpPacket::parse(d).unwrap();
            assert_eq!(rtp.payload, &p[..], "packet {i} changed");
            assert_eq!(rtp.timestamp, 1000 + 640 * i as u32);
            assert_eq!(rtp.payload_type, 97);
            assert_eq!(rtp.marker, i == 0);
        }
        assert_eq!(up.stats().passed_through, 5);
    }

    #[test]
    fn speex_to_pcmu_makes_20_ms_packets_at_8_khz_and_a_pause_moves_the_clock() {
        let mut up = Uplink::new(config(SipCodec::Pcmu, 0), RtpSender::new(1, 0, 0));
        let mut out = Vec::new();
        for (i, p) in flash_packets(1, 10).iter().enumerate() {
            up.client_audio(ClientCodec::SpeexWb, 20 * i as u32, p, &mut out)
                .unwrap();
        }
        // The resampler holds back part of the last frame.
        assert!(out.len() >= 9, "{} packets", out.len());
        let rtp: Vec<_> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        assert!(rtp
            .iter()
            .all(|p| p.payload.len() == 160 && p.payload_type == 0));
        let last = rtp.last().unwrap().timestamp;
        // One second of silence from Flash, then it talks again.
        let mut more = Vec::new();
        up.client_audio(
            ClientCodec::SpeexWb,
            1200,
            &flash_packets(1, 1)[0],
            &mut more,
        )
        .unwrap();
        up.client_audio(
            ClientCodec::SpeexWb,
            1220,
            &flash_packets(1, 1)[0],
            &mut more,
        )
        .unwrap();
        let next = RtpPacket::parse(&more[0]).unwrap();
        assert!(next.marker, "a new talkspurt");
        assert!(
            next.timestamp.wrapping_sub(last) >= 8000,
            "the clock moved by the pause"
        );
    }

    #[test]
    fn dtmf_goes_out_as_rfc_4733_events_with_fresh_timestamps() {
        let mut up = Uplink::new(config(SipCodec::Pcmu, 0), RtpSender::new(1, 0, 0));
        up.send_dtmf("1#").unwrap();
        let mut out = Vec::new();
        for _ in 0..40 {
            up.tick(&mut out);
        }
        let rtp: Vec<_> = out.iter().map(|d| RtpPacket::parse(d).unwrap()).collect();
        assert!(rtp.iter().all(|p| p.payload_type == 101));
        let events: Vec<_> = rtp
            .iter()
            .map(|p| (p.timestamp, TelephoneEvent::parse(p.payload).unwrap()))
            .collect();
        let digits: Vec<_> = events
            .iter()
            .filter(|(_, e)| e.duration == 160)
            .map(|(ts, e)| (*ts, e.event))
            .collect();
        assert_eq!(digits.len(), 2);
        assert_eq!(digits[0].1, 1);
        assert_eq!(digits[1].1, 11);
        assert!(
            digits[1].0 > digits[0].0,
            "the second digit has a later timestamp"
        );
        assert_eq!(
            events.iter().filter(|(_, e)| e.end).count(),
            6,
            "three ends each"
        );
        assert!(matches!(up.send_dtmf("x"), Err(UplinkError::BadDigit('x'))));
        let mut none = Uplink::new(
            UplinkConfig {
                telephone_event: None,
                ..config(SipCodec::Pcmu, 0)
            },
            RtpSender::new(1, 0, 0),
        );
        assert_eq!(none.send_dtmf("1"), Err(UplinkError::NoTelephoneEvent));
    }

    #[test]
    fn nellymoser_at_flash_rates_becomes_every_sip_codec_at_the_right_pace() {
        use crate::nellymoser::NellymoserEncoder;
        for (rate, codec, pt) in [
            (8000, SipCodec::Pcmu, 0),
            (16_000, SipCodec::G722, 9),
            (11_025, SipCodec::Pcmu, 0),
            (5512, SipCodec::Pcma, 8),
            (44_100, SipCodec::SpeexWb, 97),
        ] {
            let mut up = Uplink::new(config(codec, pt), RtpSender::new(1, 0, 0));
            let mut enc = NellymoserEncoder::new();
            let mut out = Vec::new();
            // One second, in messages of one block, as Flash sends them.
            let pcm = vec![0i16; rate as usize];
            let mut blocks = Vec::new();
            enc.encode(&pcm, &mut blocks);
            for (i, block) in blocks.chunks(64).enumerate() {
                let ms = (i * 256 * 1000) as u64 / u64::from(rate);
                up.client_audio(ClientCodec::Nellymoser { rate }, ms as u32, block, &mut out)
                    .unwrap();
            }
            // About a second of 20 ms packets (whole blocks only; the
            // resampler holds back up to 125 ms at 5.5 kHz).
            assert!(
                (42..=50).contains(&out.len()),
                "{rate} Hz: {} packets",
                out.len()
            );
            let p = RtpPacket::parse(&out[10]).unwrap();
            assert_eq!(p.payload_type, pt);
            match codec {
                SipCodec::SpeexWb => assert_eq!(frames_in_packet(p.payload), Some(1)),
                _ => assert_eq!(p.payload.len(), 160),
            }
        }
    }

    #[test]
    fn corrupt_speex_and_short_nellymoser_are_refused_and_counted() {
        let mut up = Uplink::new(config(SipCodec::G722, 9), RtpSender::new(1, 0, 0));
        let mut out = Vec::new();
        assert_eq!(
            up.client_audio(ClientCodec::SpeexWb, 0, &[0b0110_0000, 0], &mut out),
            Err(UplinkError::CorruptSpeex)
        );
        assert_eq!(
            up.client_audio(
                ClientCodec::Nellymoser { rate: 8000 },
                0,
                &[0; 10],
                &mut out
            ),
            Err(UplinkError::CorruptNellymoser)
        );
        assert_eq!(up.stats().dropped, 2);
        assert!(out.is_empty());
    }
}
