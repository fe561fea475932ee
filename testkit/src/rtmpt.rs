//! An RTMPT client for tests, doing what Flash Player and ffmpeg's `rtmpt://`
//! do: `/fcs/ident2`, `/open/1`, then `/send` with the bytes to write and
//! `/idle` polls, each with a rising sequence number, and `/close`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http::{request, Response};

const FCS: (&str, &str) = ("Content-Type", "application/x-fcs");

pub struct TunnelClient {
    http: SocketAddr,
    pub session: String,
    seq: u64,
    inbox: Vec<u8>,
    /// The polling interval byte of every answer, in order.
    pub intervals: Vec<u8>,
    closed: bool,
}

impl TunnelClient {
    /// Probes `/fcs/ident2` (sono answers 404, as servers without an edge
    /// do) and opens a session.
    pub fn open(http: SocketAddr) -> io::Result<TunnelClient> {
        let ident = request(http, "POST", "/fcs/ident2", &[FCS], b"\0")?;
        if ident.status != 404 {
            return Err(io::Error::other(format!(
                "/fcs/ident2 answered {}",
                ident.status
            )));
        }
        let open = request(http, "POST", "/open/1", &[FCS], b"\0")?;
        if open.status != 200 {
            return Err(io::Error::other(format!(
                "/open/1 answered {}: {}",
                open.status,
                open.text()
            )));
        }
        Ok(TunnelClient {
            http,
            session: open.text().trim().to_owned(),
            seq: 0,
            inbox: Vec::new(),
            intervals: Vec::new(),
            closed: false,
        })
    }

    /// One request of this session, as it is: for tests of bad sequence numbers.
    pub fn raw(&mut self, verb: &str, seq: u64, body: &[u8]) -> io::Result<Response> {
        let path = format!("/{verb}/{}/{seq}", self.session);
        request(self.http, "POST", &path, &[FCS], body)
    }

    fn exchange(&mut self, verb: &str, body: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.seq += 1;
        let answer = self.raw(verb, self.seq, body)?;
        match answer.status {
            200 => {
                let (interval, data) = answer
                    .body
                    .split_first()
                    .ok_or_else(|| io::Error::other("an RTMPT answer without its interval byte"))?;
                self.intervals.push(*interval);
                self.inbox.extend_from_slice(data);
                Ok(())
            }
            404 => {
                self.closed = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the RTMPT session has closed",
                ))
            }
            s => Err(io::Error::other(format!(
                "/{verb} answered {s}: {}",
                answer.text()
            ))),
        }
    }

    /// One `/idle` poll; what it brings waits for [`Self::read`].
    pub fn poll(&mut self) -> io::Result<()> {
        self.exchange("idle", b"\0")
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.exchange("send", bytes)
    }

    /// Polls until bytes arrive or `timeout`; the pace is a test's (10 ms),
    /// not the interval byte's, so audio down arrives as it is made.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.inbox.is_empty() {
                let n = buf.len().min(self.inbox.len());
                buf[..n].copy_from_slice(&self.inbox[..n]);
                self.inbox.drain(..n);
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.exchange("idle", b"\0")?;
            if self.inbox.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn close(&mut self) -> io::Result<()> {
        let r = self.exchange("close", b"\0");
        self.closed = true;
        r
    }
}
