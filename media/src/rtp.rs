//! RTP packets (RFC 3550 §5.1): the fixed header, CSRCs, the header
//! extension (§5.3.1) and padding are read; packets are written with
//! version 2, no padding and no extension. Reading borrows the payload.

use std::fmt;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    TooShort,
    BadVersion(u8),
    /// CSRCs, the extension or the padding run past the end.
    Truncated,
    BadPadding,
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort => f.write_str("shorter than the 12-byte RTP header"),
            RtpError::BadVersion(v) => write!(f, "RTP version {v}, not 2"),
            RtpError::Truncated => f.write_str("CSRC list or header extension past the end"),
            RtpError::BadPadding => f.write_str("padding length larger than the payload"),
        }
    }
}

impl std::error::Error for RtpError {}

/// A packet read from the wire; the payload borrows the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    pub fn parse(data: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::TooShort);
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let csrc_count = data[0] & 0x0F;
        let mut start = 12 + 4 * usize::from(csrc_count);
        if data.len() < start {
            return Err(RtpError::Truncated);
        }
        if extension {
            let header = data.get(start..start + 4).ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
            start += 4 + 4 * words;
            if data.len() < start {
                return Err(RtpError::Truncated);
            }
        }
        let mut end = data.len();
        if padding {
            let pad = usize::from(data[end - 1]);
            if pad == 0 || pad > end - start {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7F,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            csrc_count,
            payload: &data[start..end],
        })
    }

    /// Writes the packet (version 2, no padding, no extension, no CSRCs).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(12 + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_packet_reads_back() {
        let p = RtpPacket {
            marker: true,
            payload_type: 0,
            sequence: 65_535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
            csrc_count: 0,
            payload: &[1, 2, 3],
        };
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(&out[..2], &[0x80, 0x80]);
        assert_eq!(RtpPacket::parse(&out), Ok(p));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        // V=2 P=1 X=1 CC=1, PT 8, seq 7, ts 160, ssrc 9, one CSRC,
        // a one-word extension, payload AA BB, then 2 bytes of padding.
        let mut d = vec![0xB1, 0x08, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        d.extend_from_slice(&[0, 0, 0, 5]);
        d.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
        d.extend_from_slice(&[0xAA, 0xBB, 0, 2]);
        let p = RtpPacket::parse(&d).unwrap();
        assert_eq!(p.payload, &[0xAA, 0xBB]);
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (8, 7, 160, 9)
        );
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::TooShort));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        assert_eq!(RtpPacket::parse(&[0x8F; 20]), Err(RtpError::Truncated));
        let mut pad = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding));
        pad[12] = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding));
        let ext = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 9];
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::Truncated));
    }
}
