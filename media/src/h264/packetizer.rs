//! NAL units to RTP payloads, packetization-mode 1 (RFC 6184 §6.3): a NAL
//! unit that fits goes alone (§5.6) or, with its small neighbours of the
//! same access unit, in one STAP-A (§5.7.1); one over the MTU is cut into
//! FU-A fragments (§5.8). The caller sets the marker on the last payload of
//! an access unit (§5.1), which this tells it.

use super::nal_type;

/// RTP payload bytes per packet: 1200 keeps the datagram (with RTP, UDP,
/// IPv6 and an SRTP tag) under every path MTU one meets on the Internet.
pub const DEFAULT_MTU: usize = 1200;

/// Cuts access units into RTP payloads of at most `mtu` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Packetizer {
    mtu: usize,
}

impl Default for Packetizer {
    fn default() -> Self {
        Packetizer::new(DEFAULT_MTU)
    }
}

impl Packetizer {
    /// `mtu` is the largest payload; at least 3 bytes (an FU-A needs two
    /// of header and one of data).
    pub fn new(mtu: usize) -> Packetizer {
        Packetizer { mtu: mtu.max(3) }
    }

    /// Calls `emit(payload, last)` for each payload of one access unit, in
    /// order; `last` is true on the final one (the RTP marker).
    pub fn packetize<T: AsRef<[u8]>>(&self, nalus: &[T], mut emit: impl FnMut(&[u8], bool)) {
        let nalus: Vec<&[u8]> = nalus
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| !n.is_empty())
            .collect();
        let mut i = 0;
        let mut buf = Vec::with_capacity(self.mtu);
        while i < nalus.len() {
            let nal = nalus[i];
            if nal.len() > self.mtu {
                self.fragment(nal, i + 1 == nalus.len(), &mut buf, &mut emit);
                i += 1;
                continue;
            }
            // How many following NAL units fit with this one in a STAP-A:
            // one byte of STAP-A header, two of size before each.
            let mut size = 1 + 2 + nal.len();
            let mut end = i + 1;
            while end < nalus.len() && size + 2 + nalus[end].len() <= self.mtu {
                size += 2 + nalus[end].len();
                end += 1;
            }
            let last = end == nalus.len();
            if end - i == 1 {
                emit(nal, last);
            } else {
                buf.clear();
                // F is the OR of the parts', NRI their highest (§5.7.1).
                let f = nalus[i..end].iter().fold(0, |f, n| f | (n[0] & 0x80));
                let nri = nalus[i..end].iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                buf.push(f | nri | nal_type::STAP_A);
                for n in &nalus[i..end] {
                    buf.extend_from_slice(&(n.len() as u16).to_be_bytes());
                    buf.extend_from_slice(n);
                }
                emit(&buf, last);
            }
            i = end;
        }
    }

    fn fragment(
        &self,
        nal: &[u8],
        last_nal: bool,
        buf: &mut Vec<u8>,
        emit: &mut impl FnMut(&[u8], bool),
    ) {
        let header = nal[0];
        let indicator = (header & 0xE0) | nal_type::FU_A;
        let body = &nal[1..];
        let room = self.mtu - 2;
        let count = body.len().div_ceil(room);
        for (k, part) in body.chunks(room).enumerate() {
            let start = k == 0;
            let end = k + 1 == count;
            buf.clear();
            buf.push(indicator);
            buf.push((u8::from(start) << 7) | (u8::from(end) << 6) | (header & 0x1F));
            buf.extend_from_slice(part);
            emit(buf, end && last_nal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: Packetizer, nalus: &[Vec<u8>]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        p.packetize(nalus, |b, m| out.push((b.to_vec(), m)));
        out
    }

    #[test]
    fn small_units_share_a_stap_a_and_the_marker_ends_the_access_unit() {
        let sps = vec![0x67, 1, 2];
        let pps = vec![0x68, 3];
        let idr = vec![0x65; 50];
        let out = run(
            Packetizer::new(100),
            &[sps.clone(), pps.clone(), idr.clone()],
        );
        assert_eq!(out.len(), 1);
        let (p, marker) = &out[0];
        assert!(marker);
        assert_eq!(p[0] & 0x1F, nal_type::STAP_A);
        assert_eq!(p[0] & 0x60, 0x60);
        assert_eq!(&p[1..3], &[0, 3]);
        assert_eq!(p.len(), 1 + 2 + 3 + 2 + 2 + 2 + 50);
    }

    #[test]
    fn a_unit_over_the_mtu_becomes_fu_a_fragments() {
        let mut idr = vec![0x65];
        idr.extend((0..250).map(|i| i as u8));
        let out = run(Packetizer::new(100), &[idr.clone()]);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|(p, _)| p.len() <= 100));
        assert_eq!(out[0].0[1], 0x80 | 5);
        assert_eq!(out[1].0[1], 5);
        assert_eq!(out[2].0[1], 0x40 | 5);
        assert_eq!(
            out.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        let rebuilt: Vec<u8> = std::iter::once(0x65)
            .chain(out.iter().flat_map(|(p, _)| p[2..].to_vec()))
            .collect();
        assert_eq!(rebuilt, idr);
    }

    #[test]
    fn a_unit_that_fits_alone_goes_alone() {
        let a = vec![0x41; 80];
        let b = vec![0x41; 80];
        let out = run(Packetizer::new(100), &[a.clone(), b.clone()]);
        assert_eq!(out, vec![(a, false), (b, true)]);
    }
}
