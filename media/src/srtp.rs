//! SRTP and SRTCP (RFC 3711) for one call's RTP session, keyed by SDES
//! (RFC 4568): a context per direction, our master key for what we send and
//! the peer's for what we receive, in the suite offer and answer settled
//! (AES_CM_128_HMAC_SHA1_80 or _32, RFC 4568 §6.2). The ciphers, the key
//! derivation, the rollover counter and replay protection are webrtc-rs'
//! sans-I/O `rtc-srtp` on ring; this file only holds the two contexts and
//! says what went wrong in words a log can carry. Packets in, packets out.

use std::sync::Arc;

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Master key (16 bytes) and salt (14 bytes), as SDES carries them.
pub const MASTER_KEY_AND_SALT: usize = 30;
const MASTER_KEY: usize = 16;
/// Packets a replayed or reordered one may trail by and still be taken.
const REPLAY_WINDOW: usize = 128;

/// The SDES suites sono speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("SRTP: no crypto provider: {0}")]
    Provider(String),
    #[error("SRTP: cannot key the context: {0}")]
    Keying(String),
    /// A packet that failed authentication, was replayed, or is too short:
    /// dropped and counted, never fatal to the call.
    #[error("SRTP: packet refused: {0}")]
    Refused(String),
}

/// Both directions of one SRTP session.
pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
}

impl SrtpSession {
    pub fn new(
        suite: SrtpSuite,
        local: &[u8; MASTER_KEY_AND_SALT],
        remote: &[u8; MASTER_KEY_AND_SALT],
    ) -> Result<SrtpSession, SrtpError> {
        let provider: Arc<dyn rtc_crypto::RTCCryptoProvider> =
            rtc_crypto::default_provider().map_err(|e| SrtpError::Provider(e.to_string()))?;
        let profile = match suite {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        };
        let context = |key: &[u8; MASTER_KEY_AND_SALT], replay: bool| {
            let (master, salt) = key.split_at(MASTER_KEY);
            Context::new(
                master,
                salt,
                profile,
                replay.then(|| srtp_replay_protection(REPLAY_WINDOW)),
                replay.then(|| srtcp_replay_protection(REPLAY_WINDOW)),
                provider.crypto(),
            )
            .map_err(|e| SrtpError::Keying(e.to_string()))
        };
        Ok(SrtpSession {
            outbound: context(local, false)?,
            inbound: context(remote, true)?,
        })
    }

    /// An RTP packet of ours, encrypted and authenticated.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }

    /// A received SRTP packet, authenticated and decrypted.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }

    /// An RTCP compound packet of ours, as SRTCP.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }

    /// A received SRTCP packet, authenticated and decrypted.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&160u32.wrapping_mul(u32::from(seq)).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
        let a = [1u8; MASTER_KEY_AND_SALT];
        let b = [2u8; MASTER_KEY_AND_SALT];
        (
            SrtpSession::new(suite, &a, &b).unwrap(),
            SrtpSession::new(suite, &b, &a).unwrap(),
        )
    }

    #[test]
    fn packets_round_trip_with_the_suites_tag_length_and_a_hidden_payload() {
        for (suite, tag) in [
            (SrtpSuite::AesCm128HmacSha1_80, 10),
            (SrtpSuite::AesCm128HmacSha1_32, 4),
        ] {
            let (mut us, mut them) = pair(suite);
            let plain = rtp(7, &[0x55; 160]);
            let secret = us.protect_rtp(&plain).unwrap();
            assert_eq!(secret.len(), plain.len() + tag);
            assert_eq!(secret[..12], plain[..12], "the header stays in the clear");
            assert_ne!(secret[12..172], plain[12..], "the payload is encrypted");
            assert_eq!(them.unprotect_rtp(&secret).unwrap(), plain);
        }
    }

    #[test]
    fn tampered_replayed_and_wrongly_keyed_packets_are_refused() {
        let (mut us, mut them) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let secret = us.protect_rtp(&rtp(1, &[9; 20])).unwrap();
        let mut tampered = secret.clone();
        tampered[14] ^= 1;
        assert!(matches!(
            them.unprotect_rtp(&tampered),
            Err(SrtpError::Refused(_))
        ));
        assert!(them.unprotect_rtp(&secret).is_ok());
        assert!(them.unprotect_rtp(&secret).is_err(), "a replay is refused");
        // Our own packets do not decrypt with our inbound (the peer's) key.
        let mine = us.protect_rtp(&rtp(2, &[9; 20])).unwrap();
        assert!(us.unprotect_rtp(&mine).is_err());
        // Too short to carry a tag: refused, no panic.
        assert!(them.unprotect_rtp(&[0x80, 0, 0, 1]).is_err());
    }

    #[test]
    fn rtcp_round_trips_as_srtcp() {
        let (mut us, mut them) = pair(SrtpSuite::AesCm128HmacSha1_32);
        // A receiver report with no blocks: V=2, RC=0, PT=201, length 1.
        let rr = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let secret = us.protect_rtcp(&rr).unwrap();
        // SRTCP always carries the index and an 80-bit tag (RFC 3711 §3.4).
        assert!(secret.len() >= rr.len() + 4);
        assert_eq!(them.unprotect_rtcp(&secret).unwrap(), rr);
    }
}
