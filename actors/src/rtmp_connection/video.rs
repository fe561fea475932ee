//! The RTMP connection's side of video calls: what the client publishes
//! goes to the call's bridge (H.264), or is refused once with a
//! `NetStream.Video.Unsupported` status (Sorenson H.263, HEVC and the rest
//! have no SIP counterpart sono passes through: the audio goes on); what
//! the bridge sends down goes to the client's play stream, in a lane of
//! its own behind audio, and is dropped until the next keyframe when the
//! client reads too slowly (`video.client_backlog`).

use std::time::Instant;

use sono_media::h264::flv_video::{self, AvcConfig};
use tracing::{debug, info};

use super::{Output, RtmpConnection};
use crate::client_session::FromClient;
use crate::metrics::Metrics;
use crate::video_bridge::{ClientVideo, VideoResync};

/// How the connection stands with video.
#[derive(Debug, Default)]
pub(super) struct VideoState {
    /// Messages the client published (any codec).
    pub messages: u64,
    /// The client's last AVC sequence header (the FLV message) and its
    /// timestamp: each new call's bridge gets it first.
    pub avc_config: Option<(u32, bytes::Bytes)>,
    /// The phone knows the client publishes H.264.
    told: bool,
    /// The client was told its video codec is not carried.
    refused: bool,
    /// Video down timestamps start at the audio down clock of the moment
    /// the call's first picture came, so the two stay together.
    down_offset: Option<u32>,
    /// Video down is being dropped until the next keyframe.
    down_waiting_for_key: bool,
    pub down_dropped: u64,
}

impl RtmpConnection {
    /// A video message on the client's publishing stream.
    pub(super) fn client_video(&mut self, stream_id: u32, timestamp: u32, data: bytes::Bytes) {
        self.video.messages += 1;
        Metrics::add(&self.shared.metrics.rtmp_video_messages, 1);
        Metrics::add(&self.shared.metrics.rtmp_video_bytes, data.len() as u64);
        let codec = flv_video::codec_id(&data).unwrap_or(0);
        if codec != flv_video::CODEC_AVC {
            self.refuse_video(stream_id, codec);
            return;
        }
        if data.get(1) == Some(&0) {
            match AvcConfig::parse(data.get(5..).unwrap_or_default()) {
                Ok(config) => {
                    debug!(conn = self.id, profile_level_id = %config.profile_level_id(), "the client's AVC sequence header");
                    self.video.avc_config = Some((timestamp, data.clone()));
                    self.video.told = true;
                    self.tell_phone(FromClient::PublishesVideo(Some(config)));
                }
                Err(e) => {
                    Metrics::add(&self.shared.metrics.video_malformed[0], 1);
                    debug!(conn = self.id, error = %e, "malformed AVC sequence header dropped");
                    return;
                }
            }
        } else if !self.video.told {
            self.video.told = true;
            self.tell_phone(FromClient::PublishesVideo(None));
        }
        if let Some(media) = &self.media {
            media.do_send(ClientVideo {
                timestamp,
                data,
                received: Instant::now(),
            });
        }
    }

    /// Tells the client once that its video codec is not carried.
    fn refuse_video(&mut self, stream_id: u32, codec: u8) {
        if std::mem::replace(&mut self.video.refused, true) {
            return;
        }
        let name = match codec {
            2 => "Sorenson H.263",
            3 => "Screen video",
            4 => "On2 VP6",
            5 => "On2 VP6 with alpha",
            6 => "Screen video 2",
            12 => "HEVC",
            _ => "this codec",
        };
        info!(
            conn = self.id,
            codec, "the client publishes video sono does not carry; its audio goes on"
        );
        self.session.stream_error(
            stream_id,
            "NetStream.Video.Unsupported",
            &format!("{name} video (FLV codec {codec}) is not carried to SIP: publish H.264 (Flash Player 11+ H264VideoStreamSettings); the audio goes on"),
        );
        self.flush();
    }

    /// A new call's media: its bridge gets the client's sequence header
    /// first, and video down starts afresh.
    pub(super) fn video_call_starts(&mut self) {
        self.video.down_offset = None;
        self.video.down_waiting_for_key = false;
        if let (Some(media), Some((timestamp, config))) = (&self.media, &self.video.avc_config) {
            media.do_send(ClientVideo {
                timestamp: *timestamp,
                data: config.clone(),
                received: Instant::now(),
            });
        }
    }

    /// Video from the call for the client's play stream.
    pub(super) fn video_down(&mut self, timestamp: u32, data: Vec<u8>, keyframe: bool) {
        let Some(stream) = self.play_stream else {
            return;
        };
        let offset = *self.video.down_offset.get_or_insert(self.last_audio_down);
        let at = offset.wrapping_add(timestamp);
        let sequence_header = data.get(1) == Some(&0);
        if !sequence_header {
            let queued = self.unsent() + self.video_unsent();
            if queued > self.shared.settings.video.client_backlog {
                self.video.down_dropped += 1;
                Metrics::add(&self.shared.metrics.video_down_backlogged, 1);
                if !std::mem::replace(&mut self.video.down_waiting_for_key, true) {
                    debug!(
                        conn = self.id,
                        queued,
                        "the client reads too slowly: video down dropped until the next keyframe"
                    );
                    if let Some(media) = &self.media {
                        media.do_send(VideoResync);
                    }
                }
                return;
            }
            if self.video.down_waiting_for_key && !keyframe {
                self.video.down_dropped += 1;
                return;
            }
            self.video.down_waiting_for_key = false;
        }
        self.session.send_video(stream, at, &data);
    }

    /// Video bytes queued for the client and not yet written.
    pub(super) fn video_unsent(&self) -> usize {
        match &self.output {
            Output::Stream(w) => w.video_unsent(),
            Output::Tunnel(t) => t.video_pending.len(),
        }
    }
}
