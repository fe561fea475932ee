//! RTCP (RFC 3550 §6): the compound packets we send every few seconds — a
//! sender report (SR) while we send media, else a receiver report (RR),
//! followed by SDES with our CNAME (§6.1 requires both) — and what we read
//! from the peer's: its sender info (for the LSR/DLSR round trip, §6.4.1),
//! the report block about our stream, and BYE. For video, the keyframe
//! requests of RFC 4585 §6.3.1 (Picture Loss Indication) and RFC 5104
//! §4.3.1 (Full Intra Request), both ways.

use crate::receive_stats::ReceptionReport;

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
/// Payload-specific feedback (RFC 4585 §6.1).
const PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
const CNAME: u8 = 1;

/// Sender info for an SR: wallclock as NTP (seconds since 1900, 32.32 fixed
/// point), the RTP timestamp of the same instant, and the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// A report block plus the round-trip fields the reporter fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub report: ReceptionReport,
    /// Middle 32 bits of the NTP time of the last SR from that source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Writes a compound packet: SR if `sender` is given, else RR; at most one
/// report block; then SDES CNAME.
pub fn write_report(
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let count = u8::from(block.is_some());
    let start = out.len();
    out.push(0x80 | count);
    out.push(if sender.is_some() { SR } else { RR });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        let r = b.report;
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        let lost = (r.cumulative_lost as u32) & 0x00FF_FFFF;
        out.push(r.fraction_lost);
        out.extend_from_slice(&lost.to_be_bytes()[1..]);
        out.extend_from_slice(&r.extended_highest_sequence.to_be_bytes());
        out.extend_from_slice(&r.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
    finish_length(out, start);

    let start = out.len();
    out.extend_from_slice(&[0x81, SDES, 0, 0]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    out.push(CNAME);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    // The item list ends with a null octet, then pads to 32 bits (§6.5).
    out.push(0);
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    finish_length(out, start);
}

/// Our periodic compound (§6.4): an SR if we sent media since the last
/// report (`sent` is the sender's packets, octets and last timestamp;
/// `sent_at_last` its packet count then, updated), else an RR; the block
/// about the peer's stream with the round-trip fields from its last SR
/// (`peer_sr`: the middle NTP bits and when it came); SDES CNAME.
#[allow(clippy::too_many_arguments)]
pub fn write_periodic_report(
    ssrc: u32,
    sent: (u32, u32, u32),
    sent_at_last: &mut u32,
    reception: Option<ReceptionReport>,
    peer_sr: Option<(u32, std::time::Instant)>,
    since_unix_epoch: std::time::Duration,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let (packets, octets, last_timestamp) = sent;
    let sender = (packets != *sent_at_last).then(|| SenderInfo {
        ntp: ntp_time(since_unix_epoch),
        rtp_timestamp: last_timestamp,
        packets,
        octets,
    });
    *sent_at_last = packets;
    let block = reception.map(|report| {
        let (last_sr, delay) = match peer_sr {
            Some((middle, at)) => (middle, (at.elapsed().as_secs_f64() * 65_536.0) as u32),
            None => (0, 0),
        };
        ReportBlock {
            report,
            last_sr,
            delay_since_last_sr: delay,
        }
    });
    write_report(ssrc, sender, block, cname, out);
}

/// Writes a BYE for `ssrc` (§6.6), sent when the call ends.
pub fn write_bye(ssrc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x81, BYE, 0, 1]);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// Appends a Picture Loss Indication about `media_ssrc` (RFC 4585
/// §6.3.1): no FCI, the media sender's SSRC in the header.
pub fn write_pli(ssrc: u32, media_ssrc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x80 | FMT_PLI, PSFB, 0, 2]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
}

/// Appends a Full Intra Request for `media_ssrc` (RFC 5104 §4.3.1): the
/// header's media SSRC is 0, one FCI entry names the sender and carries
/// the request's sequence number (incremented per new request).
pub fn write_fir(ssrc: u32, media_ssrc: u32, sequence: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x80 | FMT_FIR, PSFB, 0, 4]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    out.extend_from_slice(&[sequence, 0, 0, 0]);
}

fn finish_length(out: &mut [u8], start: usize) {
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

/// What a compound packet from the peer told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// The SR's sender SSRC and the middle 32 bits of its NTP time.
    pub sender_report: Option<(u32, u32)>,
    /// The block that reports on our stream (our SSRC).
    pub about_us: Option<ReportBlock>,
    pub bye: bool,
    /// A PLI or FIR asked us for a keyframe.
    pub keyframe_requested: bool,
}

/// Why bytes are not an RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("shorter than an RTCP header")]
    TooShort,
    #[error("RTCP version {0}, not 2")]
    BadVersion(u8),
    #[error("an RTCP packet's length runs past the datagram")]
    Truncated,
    #[error("the first packet of a compound is not SR or RR (RFC 3550 §6.1)")]
    NotAReport,
}

/// Reads a compound packet, looking for what concerns `our_ssrc`.
pub fn parse(data: &[u8], our_ssrc: u32) -> Result<PeerReport, RtcpError> {
    let mut report = PeerReport::default();
    let mut rest = data;
    let mut first = true;
    if rest.len() < 4 {
        return Err(RtcpError::TooShort);
    }
    while rest.len() >= 4 {
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let count = usize::from(rest[0] & 0x1F);
        let kind = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let packet = rest.get(..len).ok_or(RtcpError::Truncated)?;
        if first && kind != SR && kind != RR {
            return Err(RtcpError::NotAReport);
        }
        first = false;
        match kind {
            SR | RR => {
                let mut blocks_at = 8;
                if kind == SR {
                    let info = packet.get(4..28).ok_or(RtcpError::Truncated)?;
                    let ssrc = u32::from_be_bytes([info[0], info[1], info[2], info[3]]);
                    let middle = u32::from_be_bytes([info[6], info[7], info[8], info[9]]);
                    report.sender_report = Some((ssrc, middle));
                    blocks_at = 28;
                }
                for i in 0..count {
                    let at = blocks_at + 24 * i;
                    let b = packet.get(at..at + 24).ok_or(RtcpError::Truncated)?;
                    let word = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                    if word(0) != our_ssrc {
                        continue;
                    }
                    // 24-bit two's complement, sign-extended.
                    let lost = ((u32::from_be_bytes([0, b[5], b[6], b[7]]) << 8) as i32) >> 8;
                    report.about_us = Some(ReportBlock {
                        report: ReceptionReport {
                            ssrc: word(0),
                            fraction_lost: b[4],
                            cumulative_lost: lost,
                            extended_highest_sequence: word(8),
                            jitter: word(12),
                        },
                        last_sr: word(16),
                        delay_since_last_sr: word(20),
                    });
                }
            }
            BYE => report.bye = true,
            PSFB if count as u8 == FMT_PLI || count as u8 == FMT_FIR => {
                report.keyframe_requested = true
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(report)
}

/// NTP time (RFC 5905: seconds since 1900 in 32.32 fixed point) of a
/// wallclock instant, for the SR.
pub fn ntp_time(since_unix_epoch: std::time::Duration) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let secs = since_unix_epoch.as_secs() + UNIX_TO_NTP;
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_ride_after_a_report_and_are_read_back() {
        for fir in [false, true] {
            let mut out = Vec::new();
            write_report(1, None, None, "sono", &mut out);
            if fir {
                write_fir(1, 0xABCD, 3, &mut out);
            } else {
                write_pli(1, 0xABCD, &mut out);
            }
            let r = parse(&out, 1).unwrap();
            assert!(r.keyframe_requested);
            // The feedback packet's length field matches its size.
            let fb = &out[out.len() - if fir { 20 } else { 12 }..];
            assert_eq!(fb[1], PSFB);
            assert_eq!((usize::from(fb[3]) + 1) * 4, fb.len());
        }
        let mut plain = Vec::new();
        write_report(1, None, None, "sono", &mut plain);
        assert!(!parse(&plain, 1).unwrap().keyframe_requested);
    }

    fn block() -> ReportBlock {
        ReportBlock {
            report: ReceptionReport {
                ssrc: 0xAABB_CCDD,
                fraction_lost: 12,
                cumulative_lost: -3,
                extended_highest_sequence: 70_000,
                jitter: 77,
            },
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65_536,
        }
    }

    #[test]
    fn a_sender_report_with_a_block_reads_back() {
        let mut out = Vec::new();
        let info = SenderInfo {
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 5,
            packets: 6,
            octets: 7,
        };
        write_report(42, Some(info), Some(block()), "sono@127.0.0.1", &mut out);
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[..2], &[0x81, 200]);
        assert_eq!(
            u16::from_be_bytes([out[2], out[3]]),
            12,
            "SR with one block is 13 words"
        );
        let peer = parse(&out, 0xAABB_CCDD).unwrap();
        assert_eq!(peer.sender_report, Some((42, 0x0304_0506)));
        assert_eq!(peer.about_us, Some(block()));
        assert!(!peer.bye);
    }

    #[test]
    fn a_receiver_report_then_bye_reads_back_and_blocks_for_others_are_ignored() {
        let mut out = Vec::new();
        write_report(42, None, Some(block()), "x", &mut out);
        write_bye(42, &mut out);
        let peer = parse(&out, 1).unwrap();
        assert_eq!(peer.about_us, None);
        assert_eq!(peer.sender_report, None);
        assert!(peer.bye);
    }

    #[test]
    fn malformed_compounds_are_refused() {
        assert_eq!(parse(&[0x80, 201, 0], 1), Err(RtcpError::TooShort));
        assert_eq!(parse(&[0x40, 201, 0, 0], 1), Err(RtcpError::BadVersion(1)));
        assert_eq!(
            parse(&[0x80, 201, 0, 9, 0, 0, 0, 0], 1),
            Err(RtcpError::Truncated)
        );
        assert_eq!(
            parse(&[0x81, 203, 0, 1, 0, 0, 0, 1], 1),
            Err(RtcpError::NotAReport)
        );
        // An RR claiming a block it does not carry.
        assert_eq!(
            parse(&[0x81, 201, 0, 1, 0, 0, 0, 1], 1),
            Err(RtcpError::Truncated)
        );
    }

    #[test]
    fn ntp_time_counts_from_1900() {
        let t = ntp_time(std::time::Duration::from_millis(1_500));
        assert_eq!(t >> 32, 2_208_988_801);
        assert_eq!(t & 0xFFFF_FFFF, 1 << 31);
    }
}
