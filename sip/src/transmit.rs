//! What the sans-I/O SIP cores hand to the transport: one datagram and where
//! it goes.

use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}
