//! A media bridge's part in a three-way call: the client and two SIP peers
//! (two calls of one connection), each hearing the other two.
//!
//! One bridge is the host: the client's audio comes to it (it is the
//! active line), and its 20 ms clock runs the [`ThreeWayMixer`]: its own
//! peer's frame, the guest's peer's latest frame and the client's audio
//! make what each of the three hears. The other bridge is the guest: on
//! its own clock it hands its peer's 20 ms to the host and sends its peer
//! what the host mixed for it. Both bridges live on the connection's
//! arbiter, so these messages never cross threads. Either bridge
//! stopping (its call ended) returns the other to a normal call.

use std::time::Instant;

use actix::prelude::*;
use sono_media::three_way::{ThreeWayMixer, MIX_FRAME};
use tracing::{debug, info};

use super::{ClientAudio, MediaBridge, MediaNotice};

/// The bridge's part, while a three-way call lasts.
pub enum ThreeWayRole {
    Host {
        guest: Addr<MediaBridge>,
        mixer: ThreeWayMixer,
    },
    Guest {
        host: Addr<MediaBridge>,
    },
}

/// Starts (host or guest, with the other bridge) or ends a three-way call.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ThreeWay {
    Host(Addr<MediaBridge>),
    Guest(Addr<MediaBridge>),
    End,
}

/// Guest to host: its peer's next 20 ms at 16 kHz.
#[derive(Message)]
#[rtype(result = "()")]
struct GuestPeerPcm(Vec<i16>);

/// Host to guest: 20 ms of what the guest's peer hears, at 16 kHz.
#[derive(Message)]
#[rtype(result = "()")]
struct MixForGuestPeer(Vec<i16>);

impl MediaBridge {
    /// The clock's turn in a three-way call; false when there is none (the
    /// normal tick then runs).
    pub(super) fn three_way_tick(&mut self, now: Instant) -> bool {
        let mut peer = Vec::with_capacity(MIX_FRAME);
        match &mut self.three_way {
            None => false,
            Some(ThreeWayRole::Guest { host }) => {
                self.downlink.tick_pcm(now, &mut peer);
                host.do_send(GuestPeerPcm(peer));
                true
            }
            Some(ThreeWayRole::Host { guest, mixer }) => {
                self.downlink.tick_pcm(now, &mut peer);
                let mixed = mixer.mix(&peer);
                guest.do_send(MixForGuestPeer(mixed.to_guest_peer));
                self.uplink
                    .mixed_pcm(&mixed.to_host_peer, &mut self.datagrams);
                let mut frames = Vec::new();
                self.downlink
                    .mixed_for_client(&mixed.to_client, &mut frames);
                self.send_down(frames, now);
                true
            }
        }
    }

    /// The client's audio in a three-way call goes to the host's mix;
    /// false when there is none.
    pub(super) fn three_way_client_audio(&mut self, msg: &ClientAudio) -> bool {
        let Some(ThreeWayRole::Host { mixer, .. }) = &mut self.three_way else {
            return self.three_way.is_some();
        };
        let mut pcm = Vec::new();
        match self
            .uplink
            .client_audio_to_pcm(msg.codec, msg.timestamp, &msg.data, &mut pcm)
        {
            Ok(()) => mixer.client_pcm(&pcm),
            Err(e) => debug!(conn = self.conn, error = %e, "client audio dropped from the mix"),
        }
        true
    }

    /// Ends this bridge's part in a three-way call, telling the other one.
    pub(super) fn leave_three_way(&mut self) {
        match self.three_way.take() {
            Some(ThreeWayRole::Host { guest, mixer }) => {
                info!(
                    conn = self.conn,
                    overflowed = mixer.overflowed,
                    "three-way call over (host)"
                );
                guest.do_send(ThreeWay::End);
            }
            Some(ThreeWayRole::Guest { host }) => {
                info!(conn = self.conn, "three-way call over (guest)");
                host.do_send(ThreeWay::End);
            }
            None => {}
        }
    }

    /// Client frames (audio down) with their RTMP timestamps, unless the
    /// client holds the call.
    pub(super) fn send_down(&mut self, frames: Vec<Vec<u8>>, now: Instant) {
        let codec = self.downlink.client_codec();
        let rate = codec.rate_and_frame().map_or(16_000, |(rate, _)| rate);
        for data in frames {
            let samples = codec.samples_in(&data) as u64;
            if !self.held {
                self.to_client.do_send(MediaNotice::AudioDown {
                    timestamp: (self.client_base_ms + self.client_samples * 1000 / u64::from(rate))
                        as u32,
                    codec,
                    data,
                    taken: now,
                });
            }
            // Held, the jitter buffer keeps draining; the client hears nothing.
            self.client_samples += samples;
        }
    }
}

impl Handler<ThreeWay> for MediaBridge {
    type Result = ();

    fn handle(&mut self, msg: ThreeWay, _: &mut Context<Self>) {
        match msg {
            ThreeWay::Host(guest) => {
                info!(conn = self.conn, "three-way call: this call hosts the mix");
                self.three_way = Some(ThreeWayRole::Host {
                    guest,
                    mixer: ThreeWayMixer::new(),
                });
            }
            ThreeWay::Guest(host) => {
                info!(conn = self.conn, "three-way call: this call joins the mix");
                self.three_way = Some(ThreeWayRole::Guest { host });
            }
            // The other side ended it: nothing to tell it back.
            ThreeWay::End => {
                if self.three_way.take().is_some() {
                    info!(
                        conn = self.conn,
                        "three-way call over: back to a normal call"
                    );
                }
            }
        }
    }
}

impl Handler<GuestPeerPcm> for MediaBridge {
    type Result = ();

    fn handle(&mut self, GuestPeerPcm(pcm): GuestPeerPcm, _: &mut Context<Self>) {
        if let Some(ThreeWayRole::Host { mixer, .. }) = &mut self.three_way {
            mixer.guest_peer_pcm(&pcm);
        }
    }
}

impl Handler<MixForGuestPeer> for MediaBridge {
    type Result = ();

    fn handle(&mut self, MixForGuestPeer(pcm): MixForGuestPeer, _: &mut Context<Self>) {
        if matches!(self.three_way, Some(ThreeWayRole::Guest { .. })) {
            self.uplink.mixed_pcm(&pcm, &mut self.datagrams);
            self.send_datagrams();
        }
    }
}
