//! The mix of a three-way call, sans-I/O: the client and two SIP peers, each
//! hearing the other two and never themselves (an N−1 mix, as conference
//! bridges do it), at 16 kHz in 20 ms frames.
//!
//! The host call's bridge drives it from its 20 ms clock: its own peer's
//! frame comes with each [`ThreeWayMixer::mix`]; the client's audio and the
//! other peer's frames arrive on their own schedules and wait in short
//! queues. A source with nothing queued is silence for that frame, and a
//! queue never holds more than [`MAX_QUEUED`] samples (beyond, the oldest
//! go), so a burst or a stall of one source never delays the others.

use std::collections::VecDeque;

/// The mix's sample rate.
pub const MIX_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at 16 kHz.
pub const MIX_FRAME: usize = 320;
/// The most audio one source may have queued: 120 ms.
pub const MAX_QUEUED: usize = 6 * MIX_FRAME;

/// One frame's three mixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedFrame {
    /// What the host call's peer hears: the client and the guest's peer.
    pub to_host_peer: Vec<i16>,
    /// What the guest call's peer hears: the client and the host's peer.
    pub to_guest_peer: Vec<i16>,
    /// What the client hears: both peers.
    pub to_client: Vec<i16>,
}

#[derive(Debug, Default)]
pub struct ThreeWayMixer {
    client: VecDeque<i16>,
    guest_peer: VecDeque<i16>,
    /// Whether the client's queue has filled to a frame since it last ran
    /// dry: until then its audio waits, so a client sending in bursts is
    /// not heard in shreds.
    client_primed: bool,
    /// Samples dropped from a full queue (clock drift, bursts).
    pub overflowed: u64,
}

impl ThreeWayMixer {
    pub fn new() -> ThreeWayMixer {
        ThreeWayMixer::default()
    }

    /// The client's audio, decoded to 16 kHz.
    pub fn client_pcm(&mut self, pcm: &[i16]) {
        push_bounded(&mut self.client, pcm, &mut self.overflowed);
    }

    /// The guest call's peer, one frame (or any length) at 16 kHz.
    pub fn guest_peer_pcm(&mut self, pcm: &[i16]) {
        push_bounded(&mut self.guest_peer, pcm, &mut self.overflowed);
    }

    /// The host call's peer's next frame (16 kHz, [`MIX_FRAME`] samples;
    /// shorter is padded with silence) and the three mixes it makes.
    pub fn mix(&mut self, host_peer: &[i16]) -> MixedFrame {
        if self.client.len() >= 2 * MIX_FRAME {
            self.client_primed = true;
        }
        let client = if self.client_primed {
            take_frame(&mut self.client)
        } else {
            vec![0; MIX_FRAME]
        };
        if self.client.is_empty() {
            self.client_primed = false;
        }
        let guest = take_frame(&mut self.guest_peer);
        let host: Vec<i16> = (0..MIX_FRAME)
            .map(|i| host_peer.get(i).copied().unwrap_or(0))
            .collect();
        MixedFrame {
            to_host_peer: add(&client, &guest),
            to_guest_peer: add(&client, &host),
            to_client: add(&host, &guest),
        }
    }
}

fn push_bounded(queue: &mut VecDeque<i16>, pcm: &[i16], overflowed: &mut u64) {
    queue.extend(pcm.iter().copied());
    if queue.len() > MAX_QUEUED {
        let excess = queue.len() - MAX_QUEUED;
        queue.drain(..excess);
        *overflowed += excess as u64;
    }
}

/// The next frame of `queue`, silence where it runs short.
fn take_frame(queue: &mut VecDeque<i16>) -> Vec<i16> {
    let n = queue.len().min(MIX_FRAME);
    let mut frame: Vec<i16> = queue.drain(..n).collect();
    frame.resize(MIX_FRAME, 0);
    frame
}

/// Two signals summed, clipped at full scale rather than wrapped.
fn add(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: i16) -> Vec<i16> {
        vec![value; MIX_FRAME]
    }

    #[test]
    fn everyone_hears_the_other_two_and_never_themselves() {
        let mut m = ThreeWayMixer::new();
        m.client_pcm(&frame(100));
        m.client_pcm(&frame(100));
        m.guest_peer_pcm(&frame(20));
        let mixed = m.mix(&frame(3));
        assert_eq!(mixed.to_host_peer, frame(120));
        assert_eq!(mixed.to_guest_peer, frame(103));
        assert_eq!(mixed.to_client, frame(23));
    }

    #[test]
    fn a_silent_source_is_silence_and_sums_clip_instead_of_wrapping() {
        let mut m = ThreeWayMixer::new();
        let mixed = m.mix(&frame(i16::MAX));
        assert_eq!(mixed.to_host_peer, frame(0));
        assert_eq!(mixed.to_client, frame(i16::MAX));
        m.guest_peer_pcm(&frame(i16::MAX));
        assert_eq!(m.mix(&frame(i16::MAX)).to_client, frame(i16::MAX));
        m.guest_peer_pcm(&frame(i16::MIN));
        assert_eq!(m.mix(&frame(i16::MIN)).to_client, frame(i16::MIN));
        // A short frame from the host's peer is padded.
        assert_eq!(m.mix(&[5; 10]).to_guest_peer.len(), MIX_FRAME);
    }

    #[test]
    fn queues_are_bounded_and_the_client_is_heard_once_a_frame_is_buffered() {
        let mut m = ThreeWayMixer::new();
        // Half a frame of client audio waits rather than being played in shreds.
        m.client_pcm(&[7; MIX_FRAME / 2]);
        assert_eq!(m.mix(&frame(0)).to_host_peer, frame(0));
        m.client_pcm(&frame(7));
        m.client_pcm(&frame(7));
        let first = m.mix(&frame(0)).to_host_peer;
        assert_eq!(first, frame(7));
        // A burst beyond the bound loses its oldest samples, counted.
        for _ in 0..20 {
            m.guest_peer_pcm(&frame(1));
        }
        assert_eq!(m.guest_peer.len(), MAX_QUEUED);
        assert_eq!(m.overflowed, (20 * MIX_FRAME - MAX_QUEUED) as u64);
    }
}
