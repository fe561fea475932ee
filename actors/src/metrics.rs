//! Process-wide counters, rendered as Prometheus text exposition format 0.0.4 at
//! `/metrics`. Atomics only: the hot path adds without locking.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sono_rtmp::AudioCodec;

/// The `codec` labels of the per-codec client audio counters: the FLV
/// formats' names (`sono_rtmp::AudioCodec::NAMES`, "other" last), then
/// WebRTC's Opus.
const CODEC_LABELS: usize = AudioCodec::NAMES.len() + 1;

fn codec_labels() -> impl Iterator<Item = &'static str> {
    AudioCodec::NAMES.iter().copied().chain(["opus"])
}

/// The index of `name` among the codec labels ("other" for any other name).
pub fn codec_label(name: &str) -> usize {
    codec_labels()
        .position(|l| l == name)
        .or_else(|| codec_labels().position(|l| l == "other"))
        .unwrap_or(0)
}

fn per_codec(v: &[(String, u64)]) -> Vec<(&str, u64)> {
    v.iter().map(|(l, n)| (l.as_str(), *n)).collect()
}

/// Indexes of [`Metrics::audio_paths`].
pub const UP_PASSTHROUGH: usize = 0;
pub const UP_TRANSCODED: usize = 1;
pub const DOWN_PASSTHROUGH: usize = 2;
pub const DOWN_TRANSCODED: usize = 3;

#[derive(Debug, Default)]
pub struct Metrics {
    pub rtmp_connections_accepted: AtomicU64,
    pub rtmp_connections_refused: AtomicU64,
    pub rtmp_connections_active: AtomicU64,
    pub rtmp_connections_closed_on_error: AtomicU64,
    /// Audio messages from RTMP clients, by [`codec_label`].
    pub rtmp_audio: [AtomicU64; CODEC_LABELS],
    /// Client audio messages that could not be decoded, by [`codec_label`].
    pub audio_undecodable: [AtomicU64; CODEC_LABELS],
    /// Video on publishing streams.
    pub rtmp_video_messages: AtomicU64,
    pub rtmp_video_bytes: AtomicU64,
    /// Video access units `[up sent, up dropped, down sent, down dropped]`
    /// (up: client → RTP).
    pub video_frames: [AtomicU64; 4],
    /// Keyframe requests `[sent to the SIP peer, received from it]`.
    pub video_keyframe_requests: [AtomicU64; 2],
    /// Video messages or RTP packets that could not be read
    /// `[from the client, from the SIP peer]`.
    pub video_malformed: [AtomicU64; 2],
    /// Video access units down dropped because the client read too slowly.
    pub video_down_backlogged: AtomicU64,
    /// Audio packets up and frames down, passed through or transcoded:
    /// `[up passthrough, up transcoded, down passthrough, down transcoded]`.
    pub audio_paths: [AtomicU64; 4],
    pub rtmp_bytes_received: AtomicU64,
    pub registrations_implicit: AtomicU64,
    pub sip_messages_received: AtomicU64,
    pub sip_messages_rejected: AtomicU64,
    pub sip_calls_started: AtomicU64,
    pub sip_calls_answered: AtomicU64,
    pub sip_calls_failed: AtomicU64,
    pub sip_calls_active: AtomicU64,
    pub sip_calls_unsettled: AtomicU64,
    pub sip_targets_refused: AtomicU64,
    pub sip_challenges_refused: AtomicU64,
    /// Requests, connects and REST calls over a per-source limit:
    /// `[sip, rtmp, rest]`.
    pub rate_limited: [AtomicU64; 3],
    pub rtp_packets_sent: AtomicU64,
    pub rtp_packets_received: AtomicU64,
    pub rtp_packets_malformed: AtomicU64,
    /// SRTP packets that failed authentication or replay checks.
    pub srtp_packets_refused: AtomicU64,
    pub rtp_packets_foreign: AtomicU64,
    pub rtp_packets_other_ssrc: AtomicU64,
    pub rtp_packets_bad_sequence: AtomicU64,
    pub rtp_packets_lost: AtomicU64,
    pub rtp_packets_late: AtomicU64,
    pub audio_frames_concealed: AtomicU64,
    pub audio_down_dropped: AtomicU64,
    pub media_bridges_active: AtomicU64,
    pub webrtc_sessions_started: AtomicU64,
    pub webrtc_sessions_active: AtomicU64,
    /// Datagrams at a WebRTC port that were not the browser's STUN, DTLS,
    /// SRTP or SRTCP (or did not authenticate).
    pub webrtc_datagrams_dropped: AtomicU64,
    pub registrations_active: AtomicU64,
    /// Calls by phase, indexed by [`CallPhase`].
    pub call_phases: [AtomicU64; CallPhase::ALL.len()],
    /// Time spent on each client message going up (decode, resample, encode).
    pub transcode_up: FrameTimes,
    /// Time spent on each 20 ms frame going down (playout, decode, encode).
    pub transcode_down: FrameTimes,
    /// Up: from a client's audio message read to its RTP packet sent
    /// (transcoding and pacing included).
    pub media_latency_up: Latencies,
    /// Down: from a frame leaving the jitter buffer to its RTMP message
    /// written to the client's socket (decoding, encoding, queueing).
    pub media_latency_down: Latencies,
    /// Video up: from a client's video message read to its RTP packets sent.
    pub video_latency_up: Latencies,
}

/// Where a client's call stands, as `sono_calls{state}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// An inbound call rings at the client, unanswered.
    Ringing,
    /// Dialled, or answered and not yet confirmed (status 1).
    InProgress,
    /// Status 2.
    Connected,
    /// Status 3.
    Disconnecting,
    /// Status 4: media flows.
    Media,
}

impl CallPhase {
    pub const ALL: [CallPhase; 5] = [
        CallPhase::Ringing,
        CallPhase::InProgress,
        CallPhase::Connected,
        CallPhase::Disconnecting,
        CallPhase::Media,
    ];

    fn label(self) -> &'static str {
        match self {
            CallPhase::Ringing => "ringing",
            CallPhase::InProgress => "in_progress",
            CallPhase::Connected => "connected",
            CallPhase::Disconnecting => "disconnecting",
            CallPhase::Media => "media",
        }
    }
}

/// The bucket bounds of one kind of histogram, in microseconds.
pub trait Bounds {
    const US: &'static [u64];
}

/// Per-frame processing times: a 20 ms frame that takes more than a few
/// milliseconds starves other calls.
#[derive(Debug)]
pub struct FrameTimeBounds;

impl Bounds for FrameTimeBounds {
    const US: &'static [u64] = &[25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
}

/// Added latency: what a frame waits in sono beyond the jitter buffer,
/// against the 20 ms frame clock.
#[derive(Debug)]
pub struct LatencyBounds;

impl Bounds for LatencyBounds {
    const US: &'static [u64] = &[
        100, 250, 500, 1000, 2000, 3000, 5000, 10_000, 20_000, 50_000,
    ];
}

/// A Prometheus histogram of durations, with the bucket bounds `B`.
#[derive(Debug)]
pub struct Histogram<B: Bounds> {
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
    bounds: std::marker::PhantomData<B>,
}

/// Processing time per frame (`sono_transcode_seconds`).
pub type FrameTimes = Histogram<FrameTimeBounds>;
/// Time a frame spends in sono on its way through (`sono_media_latency_seconds`).
pub type Latencies = Histogram<LatencyBounds>;

impl<B: Bounds> Default for Histogram<B> {
    fn default() -> Self {
        Histogram {
            buckets: (0..=B::US.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            bounds: std::marker::PhantomData,
        }
    }
}

impl<B: Bounds> Histogram<B> {
    pub fn observe(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let i = B::US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(B::US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, s: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = B::US
                .get(i)
                .map_or("+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(s, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(s, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(s, "{name}_count{{{labels}}} {}", self.count());
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A call moved from one phase to another (`None`: no call).
    pub fn call_phase(&self, from: Option<CallPhase>, to: Option<CallPhase>) {
        if from == to {
            return;
        }
        if let Some(p) = from {
            self.call_phases[p as usize].fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(p) = to {
            self.call_phases[p as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn audio_message(&self, codec: AudioCodec) {
        Self::add(&self.rtmp_audio[codec_label(codec.name())], 1);
    }

    /// A client audio message of `codec` (a [`codec_label`] name) that
    /// could not be decoded.
    pub fn undecodable(&self, codec: &str) {
        Self::add(&self.audio_undecodable[codec_label(codec)], 1);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let labelled = |counters: &[AtomicU64], skip: &str| -> Vec<(String, u64)> {
            codec_labels()
                .zip(counters)
                .filter(|(l, _)| *l != skip)
                .map(|(l, c)| (format!("{{codec=\"{l}\"}}"), get(c)))
                .collect()
        };
        // RTMP carries no Opus.
        let rtmp_audio = labelled(&self.rtmp_audio, "opus");
        let undecodable = labelled(&self.audio_undecodable, "");

        let mut s = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        metric(
            "sono_rtmp_connections_accepted_total",
            "counter",
            "RTMP connections accepted.",
            &[("", get(&self.rtmp_connections_accepted))],
        );
        metric(
            "sono_rtmp_connections_refused_total",
            "counter",
            "RTMP connections refused because rtmp.max_connections was reached.",
            &[("", get(&self.rtmp_connections_refused))],
        );
        metric(
            "sono_rtmp_connections",
            "gauge",
            "RTMP connections open now.",
            &[("", get(&self.rtmp_connections_active))],
        );
        metric(
            "sono_webrtc_sessions_started_total",
            "counter",
            "WebRTC sessions whose SDP offer was answered.",
            &[("", get(&self.webrtc_sessions_started))],
        );
        metric(
            "sono_webrtc_sessions",
            "gauge",
            "WebRTC sessions open now.",
            &[("", get(&self.webrtc_sessions_active))],
        );
        metric(
            "sono_webrtc_datagrams_dropped_total",
            "counter",
            "Datagrams at WebRTC ports that were not the browser's (or did not authenticate).",
            &[("", get(&self.webrtc_datagrams_dropped))],
        );
        metric(
            "sono_rtmp_connections_closed_on_error_total",
            "counter",
            "RTMP connections closed because the client broke the protocol or a limit.",
            &[("", get(&self.rtmp_connections_closed_on_error))],
        );
        metric(
            "sono_rtmp_audio_messages_received_total",
            "counter",
            "Audio messages received from RTMP clients on publishing streams.",
            &per_codec(&rtmp_audio),
        );
        metric(
            "sono_audio_undecodable_total",
            "counter",
            "Client audio messages sono could not decode (unknown format, AAC without its sequence header, corrupt frames), by codec.",
            &per_codec(&undecodable),
        );
        metric(
            "sono_rtmp_video_messages_received_total",
            "counter",
            "Video messages on publishing streams (H.264 goes to a video call's peer, the rest is dropped).",
            &[("", get(&self.rtmp_video_messages))],
        );
        metric(
            "sono_rtmp_video_bytes_received_total",
            "counter",
            "Bytes of those video messages.",
            &[("", get(&self.rtmp_video_bytes))],
        );
        metric(
            "sono_video_frames_total",
            "counter",
            "H.264 access units of video calls, by direction (up: client to SIP) and outcome (dropped: waiting for a keyframe after a loss, a malformed message or the bitrate cap).",
            &[
                ("{direction=\"up\",outcome=\"sent\"}", get(&self.video_frames[0])),
                ("{direction=\"up\",outcome=\"dropped\"}", get(&self.video_frames[1])),
                ("{direction=\"down\",outcome=\"sent\"}", get(&self.video_frames[2])),
                ("{direction=\"down\",outcome=\"dropped\"}", get(&self.video_frames[3])),
            ],
        );
        metric(
            "sono_video_keyframe_requests_total",
            "counter",
            "Keyframe requests (RTCP PLI/FIR or SIP INFO) sent to SIP peers, and received from them.",
            &[
                ("{direction=\"sent\"}", get(&self.video_keyframe_requests[0])),
                ("{direction=\"received\"}", get(&self.video_keyframe_requests[1])),
            ],
        );
        metric(
            "sono_video_malformed_total",
            "counter",
            "Video that could not be read: FLV messages from clients, H.264 RTP packets from SIP peers.",
            &[
                ("{source=\"client\"}", get(&self.video_malformed[0])),
                ("{source=\"rtp\"}", get(&self.video_malformed[1])),
            ],
        );
        metric(
            "sono_video_down_backlogged_total",
            "counter",
            "Video access units down dropped (until the next keyframe) because the client read too slowly; its audio goes first.",
            &[("", get(&self.video_down_backlogged))],
        );
        metric(
            "sono_rate_limited_total",
            "counter",
            "SIP requests no dialog owns, RTMP connects and REST calls refused by a per-source limit ([limits]).",
            &[
                ("{limit=\"sip\"}", get(&self.rate_limited[0])),
                ("{limit=\"rtmp\"}", get(&self.rate_limited[1])),
                ("{limit=\"rest\"}", get(&self.rate_limited[2])),
            ],
        );
        metric(
            "sono_audio_frames_total",
            "counter",
            "Audio up (RTP packets sent) and down (frames to the client), passed through untouched or transcoded.",
            &[
                ("{direction=\"up\",path=\"passthrough\"}", get(&self.audio_paths[UP_PASSTHROUGH])),
                ("{direction=\"up\",path=\"transcoded\"}", get(&self.audio_paths[UP_TRANSCODED])),
                ("{direction=\"down\",path=\"passthrough\"}", get(&self.audio_paths[DOWN_PASSTHROUGH])),
                ("{direction=\"down\",path=\"transcoded\"}", get(&self.audio_paths[DOWN_TRANSCODED])),
            ],
        );
        metric(
            "sono_rtmp_received_bytes_total",
            "counter",
            "Bytes received from RTMP clients after the handshake.",
            &[("", get(&self.rtmp_bytes_received))],
        );
        metric(
            "sono_registrations_implicit_total",
            "counter",
            "Implicit URIs given to clients that called register without arguments.",
            &[("", get(&self.registrations_implicit))],
        );
        metric(
            "sono_sip_messages_received_total",
            "counter",
            "SIP messages received on the SIP transport.",
            &[("", get(&self.sip_messages_received))],
        );
        metric(
            "sono_sip_messages_rejected_total",
            "counter",
            "Received SIP messages refused as malformed (answered 400/416/505 or dropped).",
            &[("", get(&self.sip_messages_rejected))],
        );
        metric(
            "sono_sip_calls_started_total",
            "counter",
            "Outbound calls whose INVITE was sent.",
            &[("", get(&self.sip_calls_started))],
        );
        metric(
            "sono_sip_calls_answered_total",
            "counter",
            "Outbound calls answered with a 2xx.",
            &[("", get(&self.sip_calls_answered))],
        );
        metric(
            "sono_sip_calls_failed_total",
            "counter",
            "Outbound calls that ended without an answer (4xx-6xx, timeout, transport error, cancel).",
            &[("", get(&self.sip_calls_failed))],
        );
        metric(
            "sono_sip_targets_refused_total",
            "counter",
            "Calls ended (or refused) because the peer's Contact or Record-Route pointed outside the dial plan; nothing was sent there.",
            &[("", get(&self.sip_targets_refused))],
        );
        metric(
            "sono_sip_challenges_refused_total",
            "counter",
            "401/407 challenges our credentials did not answer (realm not in sip.auth_realms, or not from the outbound proxy or a configured registrar).",
            &[("", get(&self.sip_challenges_refused))],
        );
        metric(
            "sono_sip_calls",
            "gauge",
            "Calls in progress now (dialling, ringing or answered, not yet ended).",
            &[("", get(&self.sip_calls_active))],
        );
        metric(
            "sono_sip_calls_unsettled",
            "gauge",
            "Calls over for their client whose BYE or CANCEL still awaits the peer's answer.",
            &[("", get(&self.sip_calls_unsettled))],
        );
        metric(
            "sono_registrations",
            "gauge",
            "Bindings at registrars held (or being set up or removed) now.",
            &[("", get(&self.registrations_active))],
        );
        metric(
            "sono_media_bridges",
            "gauge",
            "Calls whose media flows now.",
            &[("", get(&self.media_bridges_active))],
        );
        metric(
            "sono_rtp_packets_sent_total",
            "counter",
            "RTP packets sent to SIP peers (audio and telephone events).",
            &[("", get(&self.rtp_packets_sent))],
        );
        metric(
            "sono_rtp_packets_received_total",
            "counter",
            "RTP packets received from SIP peers, by what became of them.",
            &[
                ("{outcome=\"accepted\"}", get(&self.rtp_packets_received)),
                ("{outcome=\"malformed\"}", get(&self.rtp_packets_malformed)),
                (
                    "{outcome=\"srtp_refused\"}",
                    get(&self.srtp_packets_refused),
                ),
                (
                    "{outcome=\"foreign_source\"}",
                    get(&self.rtp_packets_foreign),
                ),
                (
                    "{outcome=\"other_ssrc\"}",
                    get(&self.rtp_packets_other_ssrc),
                ),
                (
                    "{outcome=\"bad_sequence\"}",
                    get(&self.rtp_packets_bad_sequence),
                ),
            ],
        );
        metric(
            "sono_audio_down_dropped_total",
            "counter",
            "Audio messages down not sent because the client was not reading what it had been sent (a slow or stalled reader).",
            &[("", get(&self.audio_down_dropped))],
        );
        metric(
            "sono_rtp_packets_lost_total",
            "counter",
            "RTP packets missing at their playout time (ended calls).",
            &[("", get(&self.rtp_packets_lost))],
        );
        metric(
            "sono_rtp_packets_late_total",
            "counter",
            "RTP packets that arrived after their playout time (ended calls).",
            &[("", get(&self.rtp_packets_late))],
        );
        metric(
            "sono_audio_frames_concealed_total",
            "counter",
            "Audio frames the loss concealment made up (ended calls).",
            &[("", get(&self.audio_frames_concealed))],
        );
        let phases: Vec<(String, u64)> = CallPhase::ALL
            .iter()
            .map(|p| {
                (
                    format!("{{state=\"{}\"}}", p.label()),
                    get(&self.call_phases[*p as usize]),
                )
            })
            .collect();
        let phases: Vec<(&str, u64)> = phases.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(
            "sono_calls",
            "gauge",
            "Clients' calls now, by state (ringing: inbound, unanswered).",
            &phases,
        );
        let name = "sono_transcode_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time to process one client message up, or one 20 ms frame down.\n# TYPE {name} histogram"
        );
        self.transcode_up.render(&mut s, name, "direction=\"up\"");
        self.transcode_down
            .render(&mut s, name, "direction=\"down\"");
        let name = "sono_media_latency_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time audio spends in sono, jitter buffer excluded: up, a client message read to its RTP sent; down, a frame out of the jitter buffer to its RTMP message written to the client.\n# TYPE {name} histogram"
        );
        self.media_latency_up
            .render(&mut s, name, "direction=\"up\"");
        self.media_latency_down
            .render(&mut s, name, "direction=\"down\"");
        let name = "sono_video_latency_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time video spends in sono up: a client's video message read to its last RTP packet sent.\n# TYPE {name} histogram"
        );
        self.video_latency_up
            .render(&mut s, name, "direction=\"up\"");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_times_render_as_a_cumulative_histogram() {
        let m = Metrics::default();
        m.transcode_up.observe(Duration::from_micros(20));
        m.transcode_up.observe(Duration::from_micros(300));
        m.transcode_up.observe(Duration::from_millis(50));
        let text = m.render();
        for line in [
            "sono_transcode_seconds_bucket{direction=\"up\",le=\"0.000025\"} 1",
            "sono_transcode_seconds_bucket{direction=\"up\",le=\"0.00025\"} 1",
            "sono_transcode_seconds_bucket{direction=\"up\",le=\"0.0005\"} 2",
            "sono_transcode_seconds_bucket{direction=\"up\",le=\"0.01\"} 2",
            "sono_transcode_seconds_bucket{direction=\"up\",le=\"+Inf\"} 3",
            "sono_transcode_seconds_count{direction=\"up\"} 3",
            "sono_transcode_seconds_count{direction=\"down\"} 0",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(text.contains("sono_transcode_seconds_sum{direction=\"up\"} 0.05032"));
    }

    #[test]
    fn calls_move_between_phases() {
        let m = Metrics::default();
        m.call_phase(None, Some(CallPhase::InProgress));
        m.call_phase(None, Some(CallPhase::Ringing));
        m.call_phase(Some(CallPhase::InProgress), Some(CallPhase::Media));
        m.call_phase(Some(CallPhase::Media), Some(CallPhase::Media));
        let text = m.render();
        for line in [
            "sono_calls{state=\"ringing\"} 1",
            "sono_calls{state=\"in_progress\"} 0",
            "sono_calls{state=\"media\"} 1",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        m.call_phase(Some(CallPhase::Media), None);
        assert!(m.render().contains("sono_calls{state=\"media\"} 0"));
    }
}
