//! Process-wide counters, rendered as Prometheus text exposition format 0.0.4 at
//! `/metrics`. Atomics only: the hot path adds without locking.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use sono_rtmp::AudioCodec;

#[derive(Debug, Default)]
pub struct Metrics {
    pub rtmp_connections_accepted: AtomicU64,
    pub rtmp_connections_refused: AtomicU64,
    pub rtmp_connections_active: AtomicU64,
    pub rtmp_connections_closed_on_error: AtomicU64,
    pub rtmp_audio_speex: AtomicU64,
    pub rtmp_audio_nellymoser: AtomicU64,
    pub rtmp_audio_other: AtomicU64,
    pub rtmp_bytes_received: AtomicU64,
    pub registrations_implicit: AtomicU64,
    pub sip_messages_received: AtomicU64,
    pub sip_messages_rejected: AtomicU64,
    pub sip_calls_started: AtomicU64,
    pub sip_calls_answered: AtomicU64,
    pub sip_calls_failed: AtomicU64,
    pub sip_calls_active: AtomicU64,
    pub rtp_packets_sent: AtomicU64,
    pub rtp_packets_received: AtomicU64,
    pub rtp_packets_malformed: AtomicU64,
    pub rtp_packets_foreign: AtomicU64,
    pub rtp_packets_lost: AtomicU64,
    pub rtp_packets_late: AtomicU64,
    pub audio_frames_concealed: AtomicU64,
    pub media_bridges_active: AtomicU64,
    pub registrations_active: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn audio_message(&self, codec: AudioCodec) {
        let c = match codec {
            AudioCodec::Speex => &self.rtmp_audio_speex,
            AudioCodec::Nellymoser { .. } => &self.rtmp_audio_nellymoser,
            AudioCodec::Other { .. } => &self.rtmp_audio_other,
        };
        Self::add(c, 1);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
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
            "sono_rtmp_connections_closed_on_error_total",
            "counter",
            "RTMP connections closed because the client broke the protocol or a limit.",
            &[("", get(&self.rtmp_connections_closed_on_error))],
        );
        metric(
            "sono_rtmp_audio_messages_received_total",
            "counter",
            "Audio messages received from RTMP clients on publishing streams.",
            &[
                ("{codec=\"speex\"}", get(&self.rtmp_audio_speex)),
                ("{codec=\"nellymoser\"}", get(&self.rtmp_audio_nellymoser)),
                ("{codec=\"other\"}", get(&self.rtmp_audio_other)),
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
            "sono_sip_calls",
            "gauge",
            "Calls in progress now (dialling, ringing or answered, not yet ended).",
            &[("", get(&self.sip_calls_active))],
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
                    "{outcome=\"foreign_source\"}",
                    get(&self.rtp_packets_foreign),
                ),
            ],
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
        s
    }
}
