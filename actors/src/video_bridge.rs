//! `VideoBridge`: the H.264 video of one answered video call, beside its
//! [`MediaBridge`](crate::media_bridge::MediaBridge) on the call's
//! arbiter, with its own RTP and RTCP sockets (RFC 6184 over RFC 3550).
//! Video has its own actor so a burst of it never waits in front of a
//! call's audio, and audio never pays for video's bookkeeping.
//!
//! - video up: each FLV video message the connection forwards is cut into
//!   RTP packets ([`VideoUplink`]) and sent at once;
//! - video down: RTP goes through [`VideoDownlink`] (reordering, access
//!   units, drop to the next IDR after a loss) to the client's play
//!   stream; keyframes are asked for with RTCP PLI, or FIR (RFC 4585
//!   §6.3.1, RFC 5104 §4.3.1), or, for a peer that negotiated neither,
//!   SIP INFO `picture_fast_update` through the call;
//! - a keyframe request from the peer cannot be passed on (Flash cannot
//!   be asked for one): it is counted, and the peer waits for the
//!   client's next keyframe (docs/media.md says how to keep that short);
//! - symmetric RTP: we send where the peer's video comes from once it
//!   has come.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sono_media::h264::flv_video::AvcConfig;
use sono_media::h264::video_downlink::{VideoDown, VideoDownlink};
use sono_media::h264::video_uplink::{VideoUp, VideoUplink};
use sono_media::receive_stats::ReceiveStats;
use sono_media::rtcp;
use sono_media::rtp::RtpPacket;
use sono_sip::sdp::{Direction, NegotiatedVideo};
use tokio::net::UdpSocket;
use tokio_util::codec::BytesCodec;
use tokio_util::udp::UdpFramed;
use tracing::{debug, info, warn};

use crate::directory::ConnectionId;
use crate::media_bridge::{HoldMedia, MediaNotice, StopMedia};
use crate::metrics::Metrics;
use crate::rtp_ports::RtpPorts;
use crate::Shared;

/// One FLV video message the client published.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientVideo {
    pub timestamp: u32,
    pub data: Bytes,
    pub received: Instant,
}

/// A re-INVITE changed the video (new address, hold, or no video now).
#[derive(Message)]
#[rtype(result = "()")]
pub struct VideoChanged(pub Option<NegotiatedVideo>);

/// The client's connection could not deliver video down in time and
/// dropped some: nothing more until the next keyframe, which is asked for.
#[derive(Message)]
#[rtype(result = "()")]
pub struct VideoResync;

/// What the bridge asks of its call: a SIP INFO `picture_fast_update`
/// (for a peer that takes no RTCP feedback).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PictureFastUpdate;

pub struct VideoBridge {
    conn: ConnectionId,
    shared: Arc<Shared>,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    media: NegotiatedVideo,
    latched: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    uplink: VideoUplink,
    downlink: VideoDownlink,
    stats: ReceiveStats,
    peer_ssrc: Option<u32>,
    peer_sr: Option<(u32, Instant)>,
    fir_sequence: u8,
    to_client: Recipient<MediaNotice>,
    call: Recipient<PictureFastUpdate>,
    held: bool,
    poll_at: Option<SpawnHandle>,
    keyframe_requests_received: u64,
    /// Broken H.264 packets already counted in the metrics.
    bad_counted: u64,
    packets_sent_at_last_report: u32,
}

impl VideoBridge {
    /// Starts the bridge on the current arbiter with the call's video
    /// sockets. The client's sequence header comes as its first
    /// [`ClientVideo`] (the connection keeps it for each call).
    pub fn start(
        conn: ConnectionId,
        shared: Arc<Shared>,
        ports: RtpPorts,
        media: NegotiatedVideo,
        to_client: Recipient<MediaNotice>,
        call: Recipient<PictureFastUpdate>,
    ) -> std::io::Result<Addr<VideoBridge>> {
        let rtp = Arc::new(UdpSocket::from_std(ports.rtp)?);
        let rtcp = Arc::new(UdpSocket::from_std(ports.rtcp)?);
        let cap = shared.settings.video.max_bitrate;
        let uplink = VideoUplink::new(
            media.payload_type,
            (rand::random(), rand::random(), rand::random()),
            cap,
        );
        let sprop = media
            .sprop_parameter_sets
            .as_deref()
            .and_then(AvcConfig::from_sprop);
        let bridge = VideoBridge {
            conn,
            remote_rtcp: media
                .remote
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
            media,
            latched: None,
            uplink,
            downlink: VideoDownlink::new(sprop, cap),
            stats: ReceiveStats::new(sono_media::h264::CLOCK_RATE),
            peer_ssrc: None,
            peer_sr: None,
            fir_sequence: 0,
            to_client,
            call,
            held: false,
            poll_at: None,
            keyframe_requests_received: 0,
            bad_counted: 0,
            packets_sent_at_last_report: 0,
            rtp: rtp.clone(),
            rtcp: rtcp.clone(),
            shared,
        };
        Ok(VideoBridge::create(move |ctx| {
            ctx.add_stream(UdpFramed::new(rtp, BytesCodec::new()).map(VideoRtpIn));
            ctx.add_stream(UdpFramed::new(rtcp, BytesCodec::new()).map(VideoRtcpIn));
            bridge
        }))
    }

    fn destination(&self) -> Option<SocketAddr> {
        if !self.media.direction.sends() || self.held {
            return None;
        }
        self.latched.or(self.media.remote)
    }

    /// Takes what the downlink has ready: messages to the client, keyframe
    /// requests to the peer; then waits for the downlink's next deadline.
    fn pump_down(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while let Some(event) = self.downlink.poll(now) {
            match event {
                VideoDown::Message {
                    timestamp,
                    data,
                    keyframe,
                } => {
                    if self.held || !self.media.direction.receives() {
                        continue;
                    }
                    // A sequence header is not a picture.
                    if data.get(1) == Some(&1) {
                        Metrics::add(&self.shared.metrics.video_frames[2], 1);
                    }
                    self.to_client.do_send(MediaNotice::VideoDown {
                        timestamp,
                        data,
                        keyframe,
                    });
                }
                VideoDown::RequestKeyframe => self.request_keyframe(),
            }
        }
        let bad = self.downlink.stats().bad_packets;
        if bad > self.bad_counted {
            Metrics::add(
                &self.shared.metrics.video_malformed[1],
                bad - self.bad_counted,
            );
            self.bad_counted = bad;
        }
        if let Some(h) = self.poll_at.take() {
            ctx.cancel_future(h);
        }
        if let Some(at) = self.downlink.deadline() {
            let wait = at.saturating_duration_since(now) + Duration::from_millis(1);
            self.poll_at = Some(ctx.run_later(wait, |bridge, ctx| {
                bridge.poll_at = None;
                bridge.pump_down(ctx);
            }));
        }
    }

    /// Asks the peer for an IDR picture the way it understands.
    fn request_keyframe(&mut self) {
        Metrics::add(&self.shared.metrics.video_keyframe_requests[0], 1);
        let Some(media_ssrc) = self.peer_ssrc else {
            return;
        };
        let (pli, fir) = (self.media.pli, self.media.fir);
        if !pli && !fir {
            debug!(conn = self.conn, "keyframe asked for with SIP INFO");
            self.call.do_send(PictureFastUpdate);
            return;
        }
        let ours = self.uplink.sender().ssrc();
        let mut out = Vec::new();
        rtcp::write_report(ours, None, None, &self.cname(), &mut out);
        if pli {
            rtcp::write_pli(ours, media_ssrc, &mut out);
        }
        if fir {
            self.fir_sequence = self.fir_sequence.wrapping_add(1);
            rtcp::write_fir(ours, media_ssrc, self.fir_sequence, &mut out);
        }
        debug!(conn = self.conn, pli, fir, "keyframe asked for with RTCP");
        if let Some(to) = self.remote_rtcp {
            let _ = self.rtcp.try_send_to(&out, to);
        }
    }

    fn cname(&self) -> String {
        format!("sono@{}", self.shared.settings.media.address)
    }

    fn send_report(&mut self, bye: bool) {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = Vec::new();
        let cname = self.cname();
        rtcp::write_periodic_report(
            self.uplink.sender().ssrc(),
            self.uplink.sender().counts(),
            &mut self.packets_sent_at_last_report,
            self.stats.report(),
            self.peer_sr,
            wall,
            &cname,
            &mut out,
        );
        if bye {
            rtcp::write_bye(self.uplink.sender().ssrc(), &mut out);
        }
        if let Some(to) = self.remote_rtcp {
            let _ = self.rtcp.try_send_to(&out, to);
        }
    }
}

impl Actor for VideoBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        info!(conn = self.conn, remote = ?self.media.remote, payload_type = self.media.payload_type,
              direction = self.media.direction.name(), pli = self.media.pli, fir = self.media.fir,
              "video started");
        let every = self.shared.settings.media.rtcp_interval;
        ctx.run_interval(every, |bridge, _| bridge.send_report(false));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let up = self.uplink.stats();
        let down = self.downlink.stats();
        info!(
            conn = self.conn,
            frames_up = up.access_units,
            keyframes_up = up.keyframes,
            packets_up = up.packets,
            dropped_up = up.dropped,
            malformed_up = up.malformed,
            frames_down = down.access_units,
            keyframes_down = down.keyframes,
            dropped_down = down.dropped,
            over_cap_down = down.over_cap,
            lost_packets = down.lost_packets,
            bad_packets = down.bad_packets,
            keyframe_requests_sent = down.keyframe_requests,
            keyframe_requests_received = self.keyframe_requests_received,
            "video stopped"
        );
    }
}

struct VideoRtpIn(Result<(BytesMut, SocketAddr), std::io::Error>);
struct VideoRtcpIn(Result<(BytesMut, SocketAddr), std::io::Error>);

impl StreamHandler<VideoRtpIn> for VideoBridge {
    fn handle(&mut self, VideoRtpIn(item): VideoRtpIn, ctx: &mut Context<Self>) {
        let Ok((bytes, source)) = item else {
            return;
        };
        let Ok(packet) = RtpPacket::parse(&bytes) else {
            Metrics::add(&self.shared.metrics.video_malformed[1], 1);
            return;
        };
        if packet.payload_type != self.media.payload_type {
            Metrics::add(&self.shared.metrics.video_malformed[1], 1);
            return;
        }
        match self.latched {
            None => {
                self.latched = Some(source);
                self.remote_rtcp
                    .get_or_insert(SocketAddr::new(source.ip(), source.port().wrapping_add(1)));
            }
            // Only the latched source is heard: anybody else could inject video.
            Some(l) if l != source => {
                Metrics::add(&self.shared.metrics.rtp_packets_foreign, 1);
                return;
            }
            Some(_) => {}
        }
        self.peer_ssrc = Some(packet.ssrc);
        let now = Instant::now();
        self.stats
            .packet(now, packet.ssrc, packet.sequence, packet.timestamp);
        self.downlink.push(&packet, now);
        self.pump_down(ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<VideoRtcpIn> for VideoBridge {
    fn handle(&mut self, VideoRtcpIn(item): VideoRtcpIn, _: &mut Context<Self>) {
        let Ok((bytes, source)) = item else {
            return;
        };
        match rtcp::parse(&bytes, self.uplink.sender().ssrc()) {
            Ok(report) => {
                self.remote_rtcp = Some(source);
                if let Some((_, middle)) = report.sender_report {
                    self.peer_sr = Some((middle, Instant::now()));
                }
                if report.keyframe_requested {
                    self.keyframe_requests_received += 1;
                    Metrics::add(&self.shared.metrics.video_keyframe_requests[1], 1);
                    debug!(
                        conn = self.conn,
                        "the peer asks for a keyframe; it comes with the client's next one"
                    );
                }
            }
            Err(e) => debug!(conn = self.conn, %source, error = %e, "malformed video RTCP ignored"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<ClientVideo> for VideoBridge {
    type Result = ();

    fn handle(&mut self, msg: ClientVideo, _: &mut Context<Self>) {
        if self.held {
            return;
        }
        let mut packets = Vec::new();
        let metrics = &self.shared.metrics;
        match self
            .uplink
            .push(&msg.data, msg.timestamp, Instant::now(), &mut packets)
        {
            Ok(VideoUp::Sent(_)) => Metrics::add(&metrics.video_frames[0], 1),
            Ok(VideoUp::WaitingForKeyframe | VideoUp::OverCap) => {
                Metrics::add(&metrics.video_frames[1], 1)
            }
            Ok(VideoUp::Config | VideoUp::Ignored(_)) => {}
            Err(e) => {
                Metrics::add(&metrics.video_malformed[0], 1);
                Metrics::add(&metrics.video_frames[1], 1);
                debug!(conn = self.conn, error = %e, "client video dropped until the next keyframe");
            }
        }
        let Some(to) = self.destination() else {
            return;
        };
        for p in &packets {
            // UDP: a full socket buffer drops the packet, as the network would.
            if self.rtp.try_send_to(p, to).is_ok() {
                Metrics::add(&metrics.rtp_packets_sent, 1);
            }
        }
        metrics.video_latency_up.observe(msg.received.elapsed());
    }
}

impl Handler<VideoResync> for VideoBridge {
    type Result = ();

    fn handle(&mut self, _: VideoResync, ctx: &mut Context<Self>) {
        self.request_keyframe();
        self.pump_down(ctx);
    }
}

impl Handler<HoldMedia> for VideoBridge {
    type Result = ();

    fn handle(&mut self, HoldMedia(held): HoldMedia, _: &mut Context<Self>) {
        self.held = held;
        if held {
            self.uplink.resync();
        }
    }
}

impl Handler<VideoChanged> for VideoBridge {
    type Result = ();

    fn handle(&mut self, VideoChanged(media): VideoChanged, _: &mut Context<Self>) {
        match media {
            Some(m) => {
                if m.remote != self.media.remote {
                    self.latched = None;
                    self.remote_rtcp = m
                        .remote
                        .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)));
                }
                let resumed = !self.media.direction.sends() && m.direction.sends();
                self.media = m;
                if resumed {
                    // The peer starts from our next keyframe.
                    self.uplink.resync();
                }
            }
            None => {
                warn!(conn = self.conn, "the peer dropped the video stream");
                self.media.direction = Direction::Inactive;
            }
        }
    }
}

impl Handler<StopMedia> for VideoBridge {
    type Result = ();

    fn handle(&mut self, _: StopMedia, ctx: &mut Context<Self>) {
        self.send_report(true);
        ctx.stop();
    }
}
