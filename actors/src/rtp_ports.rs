//! RTP port allocation from `media.rtp_port_min..=rtp_port_max`: an even port
//! for RTP and the odd one above it for RTCP (RFC 3550 §11), both bound at
//! once so the port announced in SDP is really ours. A video call takes a
//! second pair for its H.264 stream.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use rand::Rng;

/// The bound RTP and RTCP sockets of one call.
#[derive(Debug)]
pub struct RtpPorts {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// A video call's own pair.
    pub video: Option<Box<RtpPorts>>,
}

impl RtpPorts {
    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map_or(0, |a| a.port())
    }

    /// The video pair's RTP port, if this call has one.
    pub fn video_port(&self) -> Option<u16> {
        self.video.as_ref().map(|v| v.port())
    }

    /// Adds a second pair for the call's video.
    pub fn add_video(&mut self, address: IpAddr, min: u16, max: u16) -> io::Result<()> {
        self.video = Some(Box::new(RtpPorts::allocate(address, min, max)?));
        Ok(())
    }

    /// Binds a free even/odd pair, trying random pairs and then scanning, so a
    /// busy range is still used to the last pair.
    pub fn allocate(address: IpAddr, min: u16, max: u16) -> io::Result<RtpPorts> {
        let first = min.div_ceil(2) * 2;
        let pairs = u32::from(max.saturating_sub(first)).div_ceil(2);
        if pairs == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty RTP port range",
            ));
        }
        let mut rng = rand::thread_rng();
        let start = rng.gen_range(0..pairs);
        for i in 0..pairs {
            let port = first + (((start + i) % pairs) * 2) as u16;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(address, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(address, port + 1)) else {
                continue;
            };
            rtp.set_nonblocking(true)?;
            rtcp.set_nonblocking(true)?;
            return Ok(RtpPorts {
                rtp,
                rtcp,
                video: None,
            });
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {min}-{max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_distinct_until_the_range_is_full() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let a = RtpPorts::allocate(lo, 41000, 41005).unwrap();
        let b = RtpPorts::allocate(lo, 41000, 41005).unwrap();
        assert_eq!(a.port() % 2, 0);
        assert_ne!(a.port(), b.port());
        assert!((41000..=41004).contains(&a.port()));
        // 41000/41001, 41002/41003 and 41004/41005: a fourth pair does not exist.
        let c = RtpPorts::allocate(lo, 41000, 41005).unwrap();
        assert!(RtpPorts::allocate(lo, 41000, 41005).is_err());
        drop((a, b, c));
    }
}
