//! `MediaBridge`: the media of one answered call, on the call's arbiter (so
//! the audio path never crosses threads, and libspeex state, which is not
//! `Send`, stays where it was made). It owns the call's RTP and RTCP
//! sockets and the sans-I/O [`Uplink`] and [`Downlink`]:
//!
//! - audio up: each RTMP audio message the connection forwards is encoded
//!   (or passed through) and sent at once;
//! - audio down: RTP goes into the jitter buffer; a 20 ms clock takes one
//!   frame out for the client's play stream;
//! - symmetric RTP (RFC 4961's practice): we send where the peer's RTP
//!   really comes from once it has come, not only where its SDP said;
//! - RTCP reports every `media.rtcp_interval` (RFC 3550 §6), a BYE at the end;
//! - a peer silent for `media.rtp_timeout` ends the call through the `Call`;
//! - in a three-way call, two bridges mix (see [`three_way`]);
//! - a video call's H.264 has a [`VideoBridge`] of its own, which this
//!   bridge starts, forwards the client's video to, and stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::BytesMut;
use futures_util::StreamExt;
use sono_media::codec::{ClientCodec, SipCodec};
use sono_media::downlink::{Downlink, DownlinkConfig, Heard};
use sono_media::pacer::RtpPacer;
use sono_media::rtcp;
use sono_media::rtp::RtpPacket;
use sono_media::rtp_sender::RtpSender;
use sono_media::rtp_source::SourceVerdict;
use sono_media::srtp::{SrtpSession, SrtpSuite};
use sono_media::uplink::{Uplink, UplinkConfig, UplinkError};
use sono_sip::sdes::CryptoSuite;
use sono_sip::sdp::{Codec, Direction, Negotiated, SrtpKeys};
use tokio::net::UdpSocket;
use tokio_util::codec::BytesCodec;
use tokio_util::udp::UdpFramed;
use tracing::{debug, info, trace, warn};

use crate::directory::ConnectionId;
use crate::metrics::{Metrics, DOWN_PASSTHROUGH, DOWN_TRANSCODED, UP_PASSTHROUGH, UP_TRANSCODED};
use crate::rtp_ports::RtpPorts;
use crate::video_bridge::{ClientVideo, PictureFastUpdate, VideoBridge, VideoChanged};
use crate::Shared;

mod three_way;
pub use three_way::ThreeWay;
use three_way::ThreeWayRole;

/// The client's play stream ticks at this pace: one Speex frame.
const CLIENT_FRAME: Duration = Duration::from_millis(20);
/// Most audio up held back to pace a client's bursts; beyond it the oldest goes.
const PACER_MAX_QUEUE: Duration = Duration::from_millis(300);

/// One audio message the client published.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientAudio {
    pub codec: ClientCodec,
    pub timestamp: u32,
    pub data: bytes::Bytes,
    /// When the connection read it, for `sono_media_latency_seconds`.
    pub received: Instant,
}

/// `sendDTMF`: the digits, or why they cannot be sent.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SendDtmf(pub String);

/// A re-INVITE changed the media (new address, hold, resume).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MediaChanged(pub Negotiated);

/// The client put this call on hold (`true`) or took it back: a held
/// call neither takes the client's audio nor sends the peer's down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HoldMedia(pub bool);

/// The call ended: send RTCP BYE and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopMedia;

/// Where a call's audio down goes, and in what codec: the client's
/// transport (RTMP: Speex unless the client publishes Nellymoser and the
/// settings ask for it; WebRTC: Opus).
#[derive(Clone)]
pub struct ClientMedia {
    pub out: Recipient<MediaNotice>,
    pub codec: ClientCodec,
    /// Use `codec` only if the peer's codec passes it through (a G.711
    /// client gets its own law back untouched), Speex wideband otherwise.
    pub passthrough_only: bool,
}

/// Audio down goes elsewhere from now on (WebRTC media attached to a
/// connection, or detached again), in that transport's codec.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SwitchClient(pub ClientMedia);

/// What the bridge tells the client's connection.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum MediaNotice {
    /// Audio for the play stream (no FLV header byte): Speex wideband, or
    /// Nellymoser for a Nellymoser client when the settings ask for it.
    AudioDown {
        timestamp: u32,
        codec: ClientCodec,
        data: Vec<u8>,
        /// When the frame left the jitter buffer.
        taken: Instant,
    },
    Dtmf(char),
    /// An FLV video message for the play stream (H.264: a sequence header
    /// or one access unit), at milliseconds from the call's first.
    VideoDown {
        timestamp: u32,
        data: Vec<u8>,
        keyframe: bool,
    },
    /// The client's audio in `codec` cannot be decoded (said once per codec
    /// and call): the client is told, the call goes on with silence up.
    Undecodable {
        codec: &'static str,
        reason: String,
    },
}

/// What the bridge tells its call.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MediaTimeout {
    pub reason: String,
}

pub struct MediaBridge {
    conn: ConnectionId,
    shared: Arc<Shared>,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    /// From SDP; replaced by the source actually seen.
    remote: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    direction: Direction,
    codec: SipCodec,
    uplink: Uplink,
    downlink: Downlink,
    to_client: Recipient<MediaNotice>,
    call: Recipient<MediaTimeout>,
    started: Instant,
    last_heard: Option<Instant>,
    /// Samples sent down so far in the current client codec, at its rate,
    /// and the milliseconds sent before it took over: the RTMP timestamps
    /// follow from both, and keep rising when audio down changes codec.
    client_samples: u64,
    client_base_ms: u64,
    /// The peer's last SR: the middle of its NTP time, and when it came.
    peer_sr: Option<(u32, Instant)>,
    packets_sent_at_last_report: u32,
    datagrams: Vec<Vec<u8>>,
    /// Audio up due now, with when each message arrived.
    paced: Vec<(Vec<u8>, Instant)>,
    /// Audio up waits here for its RTP time (clients send in bursts).
    pacer: RtpPacer,
    timed_out: bool,
    /// Held by the client ([`HoldMedia`]).
    held: bool,
    /// The peer holds the call (its SDP said so): it need not send.
    peer_holds: bool,
    /// Codecs whose undecodable audio the client was told about.
    refused: Vec<&'static str>,
    /// This bridge's part in a three-way call, while there is one.
    three_way: Option<ThreeWayRole>,
    /// The call's video, if it has any.
    video: Option<Addr<VideoBridge>>,
    /// SRTP (RFC 3711) with the SDES keys offer and answer settled, and
    /// those keys (a re-INVITE that changes them rekeys).
    srtp: Option<(SrtpSession, SrtpKeys)>,
}

/// The fixed RTP header (RFC 3550 §5.1) and an RTCP header with its
/// sender SSRC (§6.4): anything shorter is not a packet of either.
const RTP_HEADER: usize = 12;
const RTCP_HEADER: usize = 8;

/// The SRTP session for negotiated keys.
fn srtp_session(keys: &SrtpKeys) -> Result<SrtpSession, String> {
    let suite = match keys.suite {
        CryptoSuite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
    };
    SrtpSession::new(suite, &keys.local, &keys.remote).map_err(|e| e.to_string())
}

impl MediaBridge {
    /// Starts the bridge on the current arbiter with the call's sockets.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        conn: ConnectionId,
        shared: Arc<Shared>,
        mut ports: RtpPorts,
        media: &Negotiated,
        client: ClientMedia,
        (call, keyframes): (Recipient<MediaTimeout>, Recipient<PictureFastUpdate>),
    ) -> std::io::Result<Addr<MediaBridge>> {
        let video = match (ports.video.take(), &media.video) {
            (Some(video_ports), Some(v)) => Some(VideoBridge::start(
                conn,
                shared.clone(),
                *video_ports,
                (**v).clone(),
                client.out.clone(),
                keyframes,
            )?),
            _ => None,
        };
        let srtp = match &media.srtp {
            Some(keys) => Some((
                srtp_session(keys).map_err(std::io::Error::other)?,
                keys.clone(),
            )),
            None => None,
        };
        let rtp = Arc::new(UdpSocket::from_std(ports.rtp)?);
        let rtcp = Arc::new(UdpSocket::from_std(ports.rtcp)?);
        let m = &shared.settings.media;
        let codec = sip_codec(media.codec);
        let sender = RtpSender::new(rand::random(), rand::random(), rand::random());
        let uplink = Uplink::new(
            UplinkConfig {
                codec,
                payload_type: media.payload_type,
                telephone_event: media.telephone_event,
                ptime_ms: codec.packet_ms(media.ptime),
                speex_quality: m.speex_quality,
                speex_complexity: m.speex_complexity,
                dtmf_duration_ms: m.dtmf_duration.as_millis() as u32,
                dtmf_pause_ms: m.dtmf_pause.as_millis() as u32,
            },
            sender,
        );
        let mut downlink = Downlink::new(DownlinkConfig {
            codec,
            payload_type: media.payload_type,
            telephone_event: media.telephone_event,
            ptime_ms: codec.packet_ms(media.ptime),
            jitter_min: m.jitter_min,
            jitter_max: m.jitter_max,
            speex_quality: m.speex_quality,
            speex_complexity: m.speex_complexity,
            silence_dbov: m.skip_silence.then_some(m.silence_dbov),
        });
        // A G.711 client's own law goes down only to pass the peer's
        // through; otherwise Speex wideband sounds better.
        let down = if client.passthrough_only && !codec.passes_through(client.codec) {
            ClientCodec::SpeexWb
        } else {
            client.codec
        };
        downlink.set_client_codec(down);
        let to_client = client.out;
        let bridge = MediaBridge {
            conn,
            remote: media.remote,
            latched: None,
            remote_rtcp: media
                .remote
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
            direction: media.direction,
            codec,
            uplink,
            downlink,
            to_client,
            call,
            started: Instant::now(),
            last_heard: None,
            client_samples: 0,
            client_base_ms: 0,
            peer_sr: None,
            packets_sent_at_last_report: 0,
            datagrams: Vec::new(),
            paced: Vec::new(),
            pacer: RtpPacer::new(codec.rtp_clock_rate(), PACER_MAX_QUEUE),
            timed_out: false,
            held: false,
            peer_holds: media.peer_holds,
            refused: Vec::new(),
            three_way: None,
            video,
            srtp,
            rtp: rtp.clone(),
            rtcp: rtcp.clone(),
            shared,
        };
        Ok(MediaBridge::create(move |ctx| {
            ctx.add_stream(UdpFramed::new(rtp, BytesCodec::new()).map(RtpIn));
            ctx.add_stream(UdpFramed::new(rtcp, BytesCodec::new()).map(RtcpIn));
            bridge
        }))
    }

    fn destination(&self) -> Option<SocketAddr> {
        if matches!(self.direction, Direction::RecvOnly | Direction::Inactive) {
            return None;
        }
        self.latched.or(self.remote)
    }

    fn send_datagrams(&mut self) {
        let dest = self.destination();
        let metrics = &self.shared.metrics;
        let rtp = &self.rtp;
        let mut srtp = self.srtp.as_mut().map(|(s, _)| s);
        let mut send = |d: &[u8]| {
            let Some(to) = dest else {
                return false;
            };
            let sent = match srtp.as_mut() {
                Some(srtp) => match srtp.protect_rtp(d) {
                    Ok(secret) => rtp.try_send_to(&secret, to).is_ok(),
                    Err(e) => {
                        debug!(error = %e, "RTP not protected; not sent");
                        false
                    }
                },
                // UDP: a full socket buffer drops the packet, as the network would.
                None => rtp.try_send_to(d, to).is_ok(),
            };
            if sent {
                Metrics::add(&metrics.rtp_packets_sent, 1);
            }
            sent
        };
        for (d, arrived) in self.paced.drain(..) {
            if send(&d) {
                metrics.media_latency_up.observe(arrived.elapsed());
            }
        }
        for d in self.datagrams.drain(..) {
            send(&d);
        }
    }

    fn clock_tick(&mut self) {
        let now = Instant::now();
        self.pacer.pop_due(now, CLIENT_FRAME / 2, &mut self.paced);
        self.uplink.tick(&mut self.datagrams);
        if !self.three_way_tick(now) {
            let mut frames = Vec::new();
            let started = Instant::now();
            self.downlink.tick(now, &mut frames);
            self.shared
                .metrics
                .transcode_down
                .observe(started.elapsed());
            let path = if self.downlink.is_passthrough() {
                DOWN_PASSTHROUGH
            } else {
                DOWN_TRANSCODED
            };
            Metrics::add(&self.shared.metrics.audio_paths[path], frames.len() as u64);
            self.send_down(frames, now);
        }
        self.send_datagrams();
        if self.peer_holds || !self.direction.receives() {
            // On hold, either way, the peer need not send (RFC 3264 §8.4).
            self.last_heard = Some(now);
        }
        let timeout = self.shared.settings.media.rtp_timeout;
        let silent = now.duration_since(self.last_heard.unwrap_or(self.started));
        if !timeout.is_zero() && silent >= timeout && !self.timed_out {
            self.timed_out = true;
            let reason = format!("no RTP from the peer for {} s", timeout.as_secs());
            warn!(conn = self.conn, %reason, "media timeout");
            self.call.do_send(MediaTimeout { reason });
        }
    }

    /// Audio down in `codec` from now on; its timestamps carry on from the
    /// old codec's.
    fn switch_down_codec(&mut self, codec: ClientCodec) {
        let old_rate = self
            .downlink
            .client_codec()
            .rate_and_frame()
            .map_or(16_000, |(rate, _)| rate);
        self.client_base_ms += self.client_samples * 1000 / u64::from(old_rate);
        self.client_samples = 0;
        self.downlink.set_client_codec(codec);
    }

    fn send_report(&mut self, bye: bool) {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = Vec::new();
        let cname = format!("sono@{}", self.shared.settings.media.address);
        rtcp::write_periodic_report(
            self.uplink.sender().ssrc(),
            self.uplink.sender().counts(),
            &mut self.packets_sent_at_last_report,
            self.downlink.receive_stats().report(),
            self.peer_sr,
            wall,
            &cname,
            &mut out,
        );
        if bye {
            rtcp::write_bye(self.uplink.sender().ssrc(), &mut out);
        }
        if let Some((srtp, _)) = &mut self.srtp {
            match srtp.protect_rtcp(&out) {
                Ok(secret) => out = secret,
                Err(e) => {
                    debug!(conn = self.conn, error = %e, "RTCP not protected; not sent");
                    return;
                }
            }
        }
        if let Some(to) = self.remote_rtcp {
            let _ = self.rtcp.try_send_to(&out, to);
        }
    }
}

fn sip_codec(codec: Codec) -> SipCodec {
    match codec {
        Codec::Pcmu => SipCodec::Pcmu,
        Codec::Pcma => SipCodec::Pcma,
        Codec::G722 => SipCodec::G722,
        Codec::Speex16k => SipCodec::SpeexWb,
        Codec::Opus => SipCodec::Opus,
    }
}

impl Actor for MediaBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        info!(conn = self.conn, codec = self.codec.name(), remote = ?self.remote,
              passthrough = self.downlink.is_passthrough(), srtp = ?self.srtp.as_ref().map(|(_, k)| k.suite),
              "media started");
        self.shared
            .metrics
            .media_bridges_active
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ctx.run_interval(CLIENT_FRAME, |bridge, _| bridge.clock_tick());
        let every = self.shared.settings.media.rtcp_interval;
        ctx.run_interval(every, |bridge, _| bridge.send_report(false));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.leave_three_way();
        let up = self.uplink.stats();
        let down = self.downlink.stats();
        let jitter = self.downlink.jitter_stats();
        let source = self.downlink.source_stats();
        let m = &self.shared.metrics;
        m.media_bridges_active
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        Metrics::add(&m.rtp_packets_lost, jitter.lost);
        Metrics::add(&m.rtp_packets_late, jitter.late);
        Metrics::add(&m.audio_frames_concealed, down.concealed);
        info!(
            conn = self.conn,
            packets_sent = up.packets,
            passed_through = up.passed_through,
            client_messages = up.messages,
            client_dropped = up.dropped,
            dtmf_sent = up.dtmf_digits,
            packets_received = down.packets,
            other_ssrc = source.other_source,
            bad_sequence = source.bad_sequence,
            ssrc_switches = source.switches,
            frames_to_client = down.frames_to_client,
            lost = jitter.lost,
            late = jitter.late,
            discarded = jitter.discarded,
            underruns = jitter.underruns,
            concealed = down.concealed,
            silent_frames = down.silent,
            jitter_target_ms = self.downlink.jitter_target().as_millis() as u64,
            paced_dropped = self.pacer.dropped(),
            "media stopped"
        );
    }
}

struct RtpIn(Result<(BytesMut, SocketAddr), std::io::Error>);
struct RtcpIn(Result<(BytesMut, SocketAddr), std::io::Error>);

impl StreamHandler<RtpIn> for MediaBridge {
    fn handle(&mut self, RtpIn(item): RtpIn, _: &mut Context<Self>) {
        let Ok((bytes, source)) = item else {
            // ICMP unreachable from a peer gone away surfaces here; keep going.
            return;
        };
        if bytes.len() < RTP_HEADER {
            // Too short for any RTP: malformed, not a forgery.
            Metrics::add(&self.shared.metrics.rtp_packets_malformed, 1);
            return;
        }
        let plain;
        let bytes: &[u8] = match &mut self.srtp {
            Some((srtp, _)) => match srtp.unprotect_rtp(&bytes) {
                Ok(p) => {
                    plain = p;
                    &plain
                }
                Err(e) => {
                    // Forged, replayed or keyed otherwise: dropped and counted.
                    Metrics::add(&self.shared.metrics.srtp_packets_refused, 1);
                    trace!(conn = self.conn, %source, error = %e, "SRTP packet refused");
                    return;
                }
            },
            None => &bytes,
        };
        let Ok(packet) = RtpPacket::parse(bytes) else {
            Metrics::add(&self.shared.metrics.rtp_packets_malformed, 1);
            return;
        };
        let now = Instant::now();
        if self.latched.is_none() {
            if Some(source) != self.remote {
                debug!(conn = self.conn, %source, sdp = ?self.remote, "RTP latched to its real source");
            }
            self.latched = Some(source);
            self.remote_rtcp
                .get_or_insert(SocketAddr::new(source.ip(), source.port().wrapping_add(1)));
        } else if self.latched != Some(source) {
            // Only the latched source is heard: anybody else could inject audio.
            Metrics::add(&self.shared.metrics.rtp_packets_foreign, 1);
            return;
        }
        let metrics = &self.shared.metrics;
        match self.downlink.receive_rtp(now, &packet) {
            Heard::Dropped(SourceVerdict::OtherSource) => {
                Metrics::add(&metrics.rtp_packets_other_ssrc, 1);
                return;
            }
            Heard::Dropped(_) => {
                Metrics::add(&metrics.rtp_packets_bad_sequence, 1);
                return;
            }
            Heard::Digit(digit) => {
                info!(conn = self.conn, %digit, "DTMF received");
                self.to_client.do_send(MediaNotice::Dtmf(digit));
            }
            Heard::Audio => {}
        }
        Metrics::add(&metrics.rtp_packets_received, 1);
        // Only the peer's own stream keeps the call alive (media.rtp_timeout).
        self.last_heard = Some(now);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<RtcpIn> for MediaBridge {
    fn handle(&mut self, RtcpIn(item): RtcpIn, _: &mut Context<Self>) {
        let Ok((bytes, source)) = item else {
            return;
        };
        if bytes.len() < RTCP_HEADER {
            // Too short for any RTCP: a keep-alive or garbage, not a forgery.
            debug!(conn = self.conn, %source, len = bytes.len(), "short RTCP datagram ignored");
            return;
        }
        let plain;
        let bytes: &[u8] = match &mut self.srtp {
            Some((srtp, _)) => match srtp.unprotect_rtcp(&bytes) {
                Ok(p) => {
                    plain = p;
                    &plain
                }
                Err(e) => {
                    // libre's plain RTCP APP "PINGPONG" keep-alive lands
                    // here too: logged like malformed RTCP, not counted.
                    debug!(conn = self.conn, %source, error = %e, "SRTCP packet refused");
                    return;
                }
            },
            None => &bytes,
        };
        match rtcp::parse(bytes, self.uplink.sender().ssrc()) {
            Ok(report) => {
                self.last_heard = Some(Instant::now());
                self.remote_rtcp = Some(source);
                if let Some((_, middle)) = report.sender_report {
                    self.peer_sr = Some((middle, Instant::now()));
                }
                if let Some(b) = report.about_us {
                    debug!(
                        conn = self.conn,
                        fraction_lost = b.report.fraction_lost,
                        cumulative_lost = b.report.cumulative_lost,
                        jitter = b.report.jitter,
                        "the peer's report on our RTP"
                    );
                }
            }
            Err(e) => debug!(conn = self.conn, %source, error = %e, "malformed RTCP ignored"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<ClientAudio> for MediaBridge {
    type Result = ();

    fn handle(&mut self, msg: ClientAudio, _: &mut Context<Self>) {
        if self.held || self.three_way_client_audio(&msg) {
            return;
        }
        // Audio down follows a Nellymoser client when the settings ask for
        // it, and a G.711 client whose law the peer speaks (both ways
        // untouched then).
        let follow = match msg.codec {
            ClientCodec::Nellymoser { .. } => self.shared.settings.media.nellymoser_to_client,
            ClientCodec::G711(_) => self.codec.passes_through(msg.codec),
            _ => false,
        };
        if follow && self.downlink.client_codec() != msg.codec {
            info!(
                conn = self.conn,
                codec = msg.codec.name(),
                "audio down follows the client's codec"
            );
            self.switch_down_codec(msg.codec);
        }
        let mut packets = Vec::new();
        let started = Instant::now();
        let before = self.uplink.stats();
        let result = self
            .uplink
            .client_audio(msg.codec, msg.timestamp, &msg.data, &mut packets);
        self.shared.metrics.transcode_up.observe(started.elapsed());
        let after = self.uplink.stats();
        let through = after.passed_through - before.passed_through;
        let metrics = &self.shared.metrics;
        Metrics::add(&metrics.audio_paths[UP_PASSTHROUGH], through);
        Metrics::add(
            &metrics.audio_paths[UP_TRANSCODED],
            after.packets - before.packets - through,
        );
        match result {
            Err(UplinkError::Undecodable { codec, reason }) => {
                metrics.undecodable(codec);
                if !self.refused.contains(&codec) {
                    self.refused.push(codec);
                    self.to_client
                        .do_send(MediaNotice::Undecodable { codec, reason });
                }
            }
            Err(e) => {
                metrics.undecodable(msg.codec.name());
                // debug: a bad client must not flood the log.
                debug!(conn = self.conn, error = %e, "client audio dropped");
            }
            Ok(()) => {}
        }
        let now = Instant::now();
        for packet in packets {
            self.pacer.push(packet, msg.received, now);
        }
        // What is due goes at once; the rest on the clock's ticks.
        self.pacer.pop_due(now, Duration::ZERO, &mut self.paced);
        self.send_datagrams();
    }
}

impl Handler<SendDtmf> for MediaBridge {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: SendDtmf, _: &mut Context<Self>) -> Result<(), String> {
        info!(conn = self.conn, digits = %msg.0, "sending DTMF");
        self.uplink.send_dtmf(&msg.0).map_err(|e| e.to_string())
    }
}

impl Handler<MediaChanged> for MediaBridge {
    type Result = ();

    fn handle(&mut self, MediaChanged(media): MediaChanged, _: &mut Context<Self>) {
        if let Some(v) = &self.video {
            v.do_send(VideoChanged(media.video.as_deref().cloned()));
        }
        if media.remote != self.remote {
            // The peer moved its media: latch again.
            self.remote = media.remote;
            self.latched = None;
            self.remote_rtcp = media
                .remote
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)));
        }
        self.direction = media.direction;
        self.peer_holds = media.peer_holds;
        let keys_now = self.srtp.as_ref().map(|(_, k)| k);
        if media.srtp.as_ref() != keys_now {
            // A re-INVITE rekeyed (or turned SRTP on or off): new contexts.
            self.srtp = match &media.srtp {
                Some(keys) => match srtp_session(keys) {
                    Ok(session) => Some((session, keys.clone())),
                    Err(e) => {
                        warn!(conn = self.conn, error = %e, "SRTP rekeying failed; keeping the old keys");
                        return;
                    }
                },
                None => None,
            };
            info!(
                conn = self.conn,
                srtp = self.srtp.is_some(),
                "media keys changed by a re-INVITE"
            );
        }
        if sip_codec(media.codec) != self.codec {
            warn!(conn = self.conn, codec = ?media.codec, "a re-INVITE changed the codec; keeping the first one");
        }
    }
}

impl Handler<HoldMedia> for MediaBridge {
    type Result = ();

    fn handle(&mut self, HoldMedia(held): HoldMedia, _: &mut Context<Self>) {
        self.held = held;
        if let Some(v) = &self.video {
            v.do_send(HoldMedia(held));
        }
    }
}

impl Handler<SwitchClient> for MediaBridge {
    type Result = ();

    fn handle(&mut self, SwitchClient(client): SwitchClient, _: &mut Context<Self>) {
        info!(conn = self.conn, codec = ?client.codec, "audio down goes to another transport");
        self.to_client = client.out;
        if self.downlink.client_codec() != client.codec {
            self.switch_down_codec(client.codec);
        }
    }
}

impl Handler<StopMedia> for MediaBridge {
    type Result = ();

    fn handle(&mut self, _: StopMedia, ctx: &mut Context<Self>) {
        self.send_report(true);
        if let Some(v) = self.video.take() {
            v.do_send(StopMedia);
        }
        ctx.stop();
    }
}

impl Handler<ClientVideo> for MediaBridge {
    type Result = ();

    /// The client's video goes to the call's video bridge, if the call
    /// has video; otherwise it was counted by the connection and is dropped.
    fn handle(&mut self, msg: ClientVideo, _: &mut Context<Self>) {
        if let Some(v) = &self.video {
            v.do_send(msg);
        }
    }
}

impl Handler<crate::video_bridge::VideoResync> for MediaBridge {
    type Result = ();

    fn handle(&mut self, msg: crate::video_bridge::VideoResync, _: &mut Context<Self>) {
        if let Some(v) = &self.video {
            v.do_send(msg);
        }
    }
}
