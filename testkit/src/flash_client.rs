//! A Flash-like RTMP client for tests: the Flash Player 9 handshake, `connect`
//! with AMF0 or AMF3 object encoding, `NetConnection.call` with a responder
//! (type 20, or type 17 with AMF3 arguments as Flash writes them), NetStreams,
//! audio in and out, `onStatus` events collected, pings answered.
//!
//! It uses sono-rtmp's chunk layer and AMF codecs; the third-party clients in the
//! end-to-end tests (ffmpeg, librtmp) keep those honest.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use sono_rtmp::amf::{amf0, amf3, AmfValue, DecodeLimits};
use sono_rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
use sono_rtmp::message::{command_payload, type_id, user_control, user_control_payload, Message};
use sono_rtmp::ObjectEncoding;

use crate::flv::{read_flv_audio, FlvAudioTag};
use crate::rtmpt::TunnelClient;

/// How the client's bytes travel: a TCP connection, or an RTMPT tunnel.
enum Wire {
    Tcp(TcpStream),
    Tunnel(TunnelClient),
}

impl Wire {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.write_all(bytes),
            Wire::Tunnel(t) => t.write_all(bytes),
        }
    }

    /// Reads what arrives within `timeout` (TimedOut if nothing).
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => {
                s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
                s.read(buf)
            }
            Wire::Tunnel(t) => t.read(buf, timeout),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// The answer to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `_result`: the values after the transaction id (command object, then results).
    Result(Vec<AmfValue>),
    /// `_error`: the info object.
    Error(AmfValue),
}

impl Reply {
    /// The `code` of an `_error`'s info object.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(info) => info.get("code").and_then(AmfValue::as_str),
            Reply::Result(_) => None,
        }
    }

    /// The first value after the command object of a `_result`.
    pub fn value(&self) -> Option<&AmfValue> {
        match self {
            Reply::Result(v) => v.get(1),
            Reply::Error(_) => None,
        }
    }
}

pub struct FlashClient {
    wire: Wire,
    /// `rtmp://HOST:PORT` or `rtmpt://HOST:PORT`, for tcUrl.
    base_url: String,
    encoder: ChunkEncoder,
    decoder: ChunkDecoder,
    encoding: ObjectEncoding,
    next_txn: f64,
    replies: Vec<(f64, Reply)>,
    /// Info objects of `onStatus` on stream 0, in order.
    pub events: Vec<AmfValue>,
    /// `(stream id, info)` of `onStatus` on NetStreams.
    pub stream_events: Vec<(u32, AmfValue)>,
    /// `(stream id, timestamp, body with FLV header)` of audio the server sent.
    pub audio: Vec<(u32, u32, Vec<u8>)>,
    /// `(stream id, timestamp, FLV VIDEODATA)` of video the server sent.
    pub video: Vec<(u32, u32, Vec<u8>)>,
    /// The info object of the `connect` result.
    pub connect_info: AmfValue,
    /// Other methods the server called on the client (mod_rtmp's and
    /// siprtmp's callbacks): name and arguments, in order.
    pub invokes: Vec<(String, Vec<AmfValue>)>,
    closed: bool,
    started: Instant,
}

impl FlashClient {
    /// Connects and does the handshake only.
    pub fn handshake(addr: SocketAddr) -> io::Result<FlashClient> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_nodelay(true)?;
        FlashClient::handshake_over(Wire::Tcp(stream), format!("rtmp://{addr}"))
    }

    /// Handshake and `connect` from a chosen source address (a loopback
    /// one such as 127.0.0.7, so a proxy in between has a client to name).
    pub fn connect_from(
        source: std::net::IpAddr,
        addr: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
    ) -> io::Result<FlashClient> {
        FlashClient::connect_socket(addr, app, encoding, |socket| {
            socket.bind(&SocketAddr::new(source, 0).into())
        })
    }

    /// Handshake and `connect` over a socket `prepare`d before it connects.
    fn connect_socket(
        addr: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
        prepare: impl FnOnce(&socket2::Socket) -> io::Result<()>,
    ) -> io::Result<FlashClient> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        prepare(&socket)?;
        socket.connect_timeout(&addr.into(), TIMEOUT)?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        let c = FlashClient::handshake_over(Wire::Tcp(stream), format!("rtmp://{addr}"))?;
        c.finish_connect(app, encoding)
    }

    /// Connects, sends `preamble` (a PROXY protocol header, as a balancer
    /// would), then does the handshake and `connect`.
    pub fn connect_after(
        addr: SocketAddr,
        preamble: &[u8],
        app: &str,
        encoding: ObjectEncoding,
    ) -> io::Result<FlashClient> {
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_nodelay(true)?;
        io::Write::write_all(&mut stream, preamble)?;
        let c = FlashClient::handshake_over(Wire::Tcp(stream), format!("rtmp://{addr}"))?;
        c.finish_connect(app, encoding)
    }

    /// Opens an RTMPT session on sono's HTTP side and does the handshake in it.
    pub fn handshake_tunnel(http: SocketAddr) -> io::Result<FlashClient> {
        let tunnel = TunnelClient::open(http)?;
        FlashClient::handshake_over(Wire::Tunnel(tunnel), format!("rtmpt://{http}"))
    }

    /// Handshake and `connect` through an RTMPT tunnel.
    pub fn connect_tunnel(
        http: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
    ) -> io::Result<FlashClient> {
        let c = FlashClient::handshake_tunnel(http)?;
        c.finish_connect(app, encoding)
    }

    /// The RTMPT session, if the client tunnels.
    pub fn tunnel(&mut self) -> Option<&mut TunnelClient> {
        match &mut self.wire {
            Wire::Tunnel(t) => Some(t),
            Wire::Tcp(_) => None,
        }
    }

    /// The capability token `connect` answered with.
    pub fn token(&self) -> String {
        self.connect_info
            .get("token")
            .and_then(AmfValue::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The connection id `connect` answered with.
    pub fn connection_id(&self) -> u64 {
        self.connect_info
            .get("connection_id")
            .and_then(AmfValue::as_number)
            .unwrap_or(0.0) as u64
    }

    fn handshake_over(mut stream: Wire, base_url: String) -> io::Result<FlashClient> {
        let mut hs = Handshake::new(PeerType::Client);
        let c0c1 = hs.generate_outbound_p0_and_p1().map_err(io::Error::other)?;
        stream.write_all(&c0c1)?;
        let mut buf = [0u8; 4096];
        let leftover = loop {
            let n = stream.read(&mut buf, TIMEOUT)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during handshake",
                ));
            }
            match hs.process_bytes(&buf[..n]).map_err(io::Error::other)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    stream.write_all(&response_bytes)?
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    stream.write_all(&response_bytes)?;
                    break remaining_bytes;
                }
            }
        };
        let mut decoder = ChunkDecoder::new(ChunkLimits::default());
        decoder.push(&leftover);
        Ok(FlashClient {
            wire: stream,
            base_url,
            encoder: ChunkEncoder::default(),
            decoder,
            encoding: ObjectEncoding::Amf0,
            next_txn: 2.0,
            replies: Vec::new(),
            events: Vec::new(),
            stream_events: Vec::new(),
            audio: Vec::new(),
            video: Vec::new(),
            connect_info: AmfValue::Null,
            invokes: Vec::new(),
            closed: false,
            started: Instant::now(),
        })
    }

    /// As [`FlashClient::connect`], with the socket's receive buffer set
    /// to `bytes` before it connects (so the TCP window is small from the
    /// start): a client that stops reading backs up at once.
    pub fn connect_with_receive_buffer(
        addr: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
        bytes: usize,
    ) -> io::Result<FlashClient> {
        FlashClient::connect_socket(addr, app, encoding, |socket| {
            socket.set_recv_buffer_size(bytes)
        })
    }

    /// Publishes `tags` at real-time pace, in a loop, for `duration`, and
    /// reads nothing meanwhile: a client that has stopped reading its
    /// socket but still talks. Returns how many messages were sent.
    pub fn publish_without_reading(
        &mut self,
        stream: u32,
        tags: &[FlvAudioTag],
        duration: Duration,
    ) -> io::Result<usize> {
        let start = Instant::now();
        let mut sent = 0usize;
        let mut at = 0u32;
        while start.elapsed() < duration && !tags.is_empty() {
            let tag = &tags[sent % tags.len()];
            let due = start + Duration::from_millis(u64::from(at));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.send_audio(stream, at, &tag.data)?;
            sent += 1;
            at += 20;
        }
        Ok(sent)
    }

    /// Handshake and `NetConnection.connect("rtmp://…/app")` with the given encoding.
    pub fn connect(
        addr: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
    ) -> io::Result<FlashClient> {
        let c = FlashClient::handshake(addr)?;
        c.finish_connect(app, encoding)
    }

    fn finish_connect(self, app: &str, encoding: ObjectEncoding) -> io::Result<FlashClient> {
        let mut c = self;
        match c.send_connect(app, encoding)? {
            Reply::Result(v) => {
                c.connect_info = v.get(1).cloned().unwrap_or(AmfValue::Null);
                c.encoding = encoding;
                Ok(c)
            }
            Reply::Error(info) => Err(io::Error::other(format!("connect refused: {info:?}"))),
        }
    }

    /// Sends `connect` (always AMF0, like Flash) and waits for its answer.
    pub fn send_connect(&mut self, app: &str, encoding: ObjectEncoding) -> io::Result<Reply> {
        self.send_connect_args(app, encoding, Vec::new())
    }

    fn send_connect_args(
        &mut self,
        app: &str,
        encoding: ObjectEncoding,
        args: Vec<AmfValue>,
    ) -> io::Result<Reply> {
        let object = AmfValue::object([
            ("app", AmfValue::from(app)),
            ("flashVer", "WIN 11,2,202,235".into()),
            ("tcUrl", format!("{}/{app}", self.base_url).into()),
            ("fpad", AmfValue::Boolean(false)),
            ("capabilities", AmfValue::Number(239.0)),
            ("audioCodecs", AmfValue::Number(3575.0)),
            ("videoCodecs", AmfValue::Number(252.0)),
            ("objectEncoding", AmfValue::Number(encoding.number())),
        ]);
        let mut values = vec!["connect".into(), 1.0.into(), object];
        values.extend(args);
        let payload = command_payload(ObjectEncoding::Amf0, &values);
        self.send_message(3, 0, type_id::COMMAND_AMF0, 0, &payload)?;
        self.wait_reply(1.0)
    }

    /// `NetConnection.call(name, responder, args…)`, waiting for the answer.
    pub fn call(&mut self, name: &str, args: Vec<AmfValue>) -> io::Result<Reply> {
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.send_command(0, name, txn, args)?;
        self.wait_reply(txn)
    }

    /// `NetConnection.call` without waiting: the transaction id, for [`Self::reply`].
    pub fn send_call(&mut self, name: &str, args: Vec<AmfValue>) -> io::Result<f64> {
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.send_command(0, name, txn, args)?;
        Ok(txn)
    }

    /// The answer to `txn` if it has arrived (read with [`Self::pump`] or [`Self::wait_for`]).
    pub fn reply(&mut self, txn: f64) -> Option<Reply> {
        let i = self.replies.iter().position(|(t, _)| *t == txn)?;
        Some(self.replies.remove(i).1)
    }

    /// Whether the answer to `txn` has arrived, without taking it.
    pub fn has_reply(&self, txn: f64) -> bool {
        self.replies.iter().any(|(t, _)| *t == txn)
    }

    /// Reads until `done` holds or `timeout` passes; returns whether it held.
    pub fn wait_for(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            match self.read_until(deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return done(self),
                Err(_) => return done(self),
            }
        }
    }

    /// `register()` without arguments; the implicit user sono gave
    /// (`sono-…`, the user part of the answer's `uri`).
    pub fn register_implicit(&mut self) -> io::Result<String> {
        let reply = self.call("register", vec![])?;
        let Reply::Result(values) = &reply else {
            return Err(io::Error::other(format!("register: {reply:?}")));
        };
        let uri = values
            .last()
            .and_then(|v| v.get("uri"))
            .and_then(AmfValue::as_str)
            .unwrap_or_default();
        Ok(uri
            .strip_prefix("sip:")
            .and_then(|u| u.split('@').next())
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits for a `Sono.Registration.Status` saying `uri` is registered.
    pub fn wait_registered(&mut self, uri: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |c| {
            c.events.iter().any(|e| {
                e.get("code").and_then(AmfValue::as_str) == Some("Sono.Registration.Status")
                    && e.get("uri").and_then(AmfValue::as_str) == Some(uri)
                    && matches!(e.get("registered"), Some(AmfValue::Boolean(true)))
            })
        })
    }

    /// Whether a `Sono.Call.Status` with `status` has come.
    pub fn has_call_status(&self, status: u8) -> bool {
        self.call_statuses().iter().any(|(s, _, _)| *s == status)
    }

    /// Waits for a `Sono.Call.Status` with `status`.
    pub fn wait_call_status(&mut self, status: u8, timeout: Duration) -> bool {
        self.wait_for(timeout, |c| c.has_call_status(status))
    }

    /// Every `Sono.Call.Status` so far as `(status_code, sip_code, reason)`.
    pub fn call_statuses(&self) -> Vec<(u8, Option<u16>, Option<String>)> {
        self.events
            .iter()
            .filter(|e| e.get("code").and_then(AmfValue::as_str) == Some("Sono.Call.Status"))
            .map(|e| {
                (
                    e.get("status_code")
                        .and_then(AmfValue::as_number)
                        .unwrap_or(-1.0) as u8,
                    e.get("sip_code")
                        .and_then(AmfValue::as_number)
                        .map(|c| c as u16),
                    e.get("reason")
                        .and_then(AmfValue::as_str)
                        .map(str::to_owned),
                )
            })
            .collect()
    }

    /// Just the status codes of [`Self::call_statuses`].
    pub fn call_status_codes(&self) -> Vec<(u8, Option<u16>)> {
        self.call_statuses()
            .into_iter()
            .map(|(s, c, _)| (s, c))
            .collect()
    }

    /// Sends a command on a stream without waiting (transaction id 0, as NetStream does).
    pub fn send_command(
        &mut self,
        stream: u32,
        name: &str,
        txn: f64,
        args: Vec<AmfValue>,
    ) -> io::Result<()> {
        let (t, payload) = match self.encoding {
            ObjectEncoding::Amf0 => {
                let mut v = vec![AmfValue::from(name), AmfValue::Number(txn), AmfValue::Null];
                v.extend(args);
                (
                    type_id::COMMAND_AMF0,
                    command_payload(ObjectEncoding::Amf0, &v),
                )
            }
            ObjectEncoding::Amf3 => {
                // Flash: format byte 0, name and transaction id in AMF0, each further
                // value behind the AVM+ marker in AMF3.
                let mut p = vec![0u8];
                amf0::encode_all(&[AmfValue::from(name), AmfValue::Number(txn)], &mut p);
                for v in std::iter::once(AmfValue::Null).chain(args) {
                    p.push(0x11);
                    amf3::encode(&v, &mut p);
                }
                (type_id::COMMAND_AMF3, p)
            }
        };
        self.send_message(3, 0, t, stream, &payload)
    }

    pub fn create_stream(&mut self) -> io::Result<u32> {
        match self.call("createStream", vec![])? {
            Reply::Result(v) => v
                .get(1)
                .and_then(AmfValue::as_number)
                .map(|n| n as u32)
                .ok_or_else(|| io::Error::other("createStream answered no id")),
            Reply::Error(e) => Err(io::Error::other(format!("createStream failed: {e:?}"))),
        }
    }

    /// `NetStream.publish(name)`, waiting for NetStream.Publish.Start.
    pub fn publish(&mut self, stream: u32, name: &str) -> io::Result<()> {
        self.send_command(stream, "publish", 0.0, vec![name.into(), "live".into()])?;
        self.wait_stream_event(stream, "NetStream.Publish.Start")
    }

    /// `NetStream.play(name)`, waiting for NetStream.Play.Start.
    pub fn play(&mut self, stream: u32, name: &str) -> io::Result<()> {
        self.send_command(stream, "play", 0.0, vec![name.into()])?;
        self.wait_stream_event(stream, "NetStream.Play.Start")
    }

    /// One audio message; `data` starts with the FLV audio header byte.
    /// Sends one FLV video message (VIDEODATA) on a publishing stream.
    pub fn send_video(&mut self, stream: u32, timestamp: u32, data: &[u8]) -> io::Result<()> {
        self.send_message(6, timestamp, type_id::VIDEO, stream, data)
    }

    pub fn send_audio(&mut self, stream: u32, timestamp: u32, data: &[u8]) -> io::Result<()> {
        self.send_message(4, timestamp, type_id::AUDIO, stream, data)
    }

    /// Publishes the audio tags of an FLV file, at real-time pace if asked;
    /// returns how many audio messages were sent.
    pub fn publish_flv(&mut self, stream: u32, path: &Path, realtime: bool) -> io::Result<usize> {
        let tags = read_flv_audio(path)?;
        self.publish_tags(stream, &tags, realtime)
    }

    /// Publishes a WAV file as Flash does with its microphone: Speex wideband,
    /// one 20 ms frame per message, header 0xB2, at real-time pace. ffmpeg's
    /// libspeex does the encoding (sono's own codecs are not used on this side).
    /// Returns how many audio messages were sent.
    pub fn publish_wav_as_speex(&mut self, stream: u32, wav: &Path) -> io::Result<usize> {
        let tags = flash_speex_tags(wav)?;
        self.publish_tags(stream, &tags, true)
    }

    fn publish_tags(
        &mut self,
        stream: u32,
        tags: &[FlvAudioTag],
        realtime: bool,
    ) -> io::Result<usize> {
        let start = Instant::now();
        for tag in tags {
            if realtime {
                let due = start + Duration::from_millis(u64::from(tag.timestamp));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    // Keep reading meanwhile, as Flash does, so pings are answered.
                    self.pump(wait.min(Duration::from_millis(20)))?;
                    if let Some(rest) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(rest);
                    }
                }
            }
            self.send_audio(stream, tag.timestamp, &tag.data)?;
        }
        Ok(tags.len())
    }

    /// Sends bytes as they are, for malformed-input tests.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.write_all(bytes)
    }

    /// Encodes one message into chunks and sends it.
    pub fn send_message(
        &mut self,
        csid: u32,
        ts: u32,
        t: u8,
        stream: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut wire = Vec::with_capacity(payload.len() + 32);
        self.encoder.encode(csid, ts, t, stream, payload, &mut wire);
        self.wire.write_all(&wire)
    }

    /// Announces a chunk size and writes with it from now on.
    pub fn set_chunk_size(&mut self, size: u32) -> io::Result<()> {
        self.send_message(2, 0, type_id::SET_CHUNK_SIZE, 0, &size.to_be_bytes())?;
        self.encoder.set_chunk_size(size);
        Ok(())
    }

    /// Waits for the answer to transaction `txn`.
    pub fn wait_reply(&mut self, txn: f64) -> io::Result<Reply> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.replies.iter().position(|(t, _)| *t == txn) {
                return Ok(self.replies.remove(i).1);
            }
            self.read_until(deadline)?;
        }
    }

    /// Waits for an `onStatus` event on stream 0 with this code.
    pub fn wait_event(&mut self, code: &str, timeout: Duration) -> io::Result<AmfValue> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            if let Some(e) = self.events[seen..]
                .iter()
                .find(|e| e.get("code").and_then(AmfValue::as_str) == Some(code))
            {
                return Ok(e.clone());
            }
            seen = self.events.len();
            self.read_until(deadline)?;
        }
    }

    fn wait_stream_event(&mut self, stream: u32, code: &str) -> io::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.stream_events.iter().any(|(s, e)| {
                *s == stream && e.get("code").and_then(AmfValue::as_str) == Some(code)
            }) {
                return Ok(());
            }
            self.read_until(deadline)?;
        }
    }

    /// Reads and handles whatever arrives within `timeout`.
    pub fn pump(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.read_until(deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// True if the server closes the connection within `timeout` (anything it
    /// sends before closing is read and handled).
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.read_until(deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
            if self.closed {
                return true;
            }
        }
        self.closed
    }

    fn read_until(&mut self, deadline: Instant) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by sono",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out waiting for sono",
            ));
        }
        let mut buf = [0u8; 16 * 1024];
        let n = match self.wire.read(&mut buf, left) {
            Ok(0) => {
                self.closed = true;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by sono",
                ));
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for sono",
                ))
            }
            Err(e) => {
                self.closed = true;
                return Err(e);
            }
        };
        self.decoder.push(&buf[..n]);
        while let Some(raw) = self.decoder.next_message().map_err(io::Error::other)? {
            let msg = parse_lenient(&raw)?;
            match msg {
                Message::SetChunkSize(n) => {
                    self.decoder.set_chunk_size(n).map_err(io::Error::other)?
                }
                Message::UserControl { event, data }
                    if event == user_control::PING_REQUEST && data.len() >= 4 =>
                {
                    let t = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    let p = user_control_payload(user_control::PING_RESPONSE, t);
                    self.send_message(2, 0, type_id::USER_CONTROL, 0, &p)?;
                }
                Message::Audio(p) => {
                    self.audio
                        .push((raw.message_stream_id, raw.timestamp, p.to_vec()))
                }
                Message::Video(p) => {
                    self.video
                        .push((raw.message_stream_id, raw.timestamp, p.to_vec()))
                }
                Message::Command { values, .. } => self.on_command(raw.message_stream_id, values),
                _ => {}
            }
        }
        Ok(())
    }

    fn on_command(&mut self, stream: u32, values: Vec<AmfValue>) {
        let name = values
            .first()
            .and_then(AmfValue::as_str)
            .unwrap_or_default()
            .to_owned();
        let txn = values.get(1).and_then(AmfValue::as_number).unwrap_or(0.0);
        let rest: Vec<AmfValue> = values.into_iter().skip(2).collect();
        match name.as_str() {
            "_result" => self.replies.push((txn, Reply::Result(rest))),
            "_error" => self.replies.push((
                txn,
                Reply::Error(rest.get(1).cloned().unwrap_or(AmfValue::Null)),
            )),
            "onStatus" => {
                let info = rest.get(1).cloned().unwrap_or(AmfValue::Null);
                if stream == 0 {
                    self.events.push(info);
                } else {
                    self.stream_events.push((stream, info));
                }
            }
            _ => {
                // name, 0, null, args…
                self.invokes
                    .push((name, rest.into_iter().skip(1).collect()));
            }
        }
    }

    /// The arguments of the first call of `name` the server made on the
    /// client, waiting up to `timeout` for it.
    pub fn wait_invoke(&mut self, name: &str, timeout: Duration) -> Option<Vec<AmfValue>> {
        let find = |c: &Self| {
            c.invokes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.clone())
        };
        self.wait_for(timeout, |c| find(c).is_some());
        find(self)
    }

    /// The arguments of every call of `name` the server made so far.
    pub fn invoked(&self, name: &str) -> Vec<Vec<AmfValue>> {
        self.invokes
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Handshake and `connect` to `app` with arguments after the command
    /// object (`NetConnection.connect(url, args…)`, siprtmp's login).
    pub fn connect_with_args(
        addr: SocketAddr,
        app: &str,
        encoding: ObjectEncoding,
        args: Vec<AmfValue>,
    ) -> io::Result<FlashClient> {
        let mut c = FlashClient::handshake(addr)?;
        match c.send_connect_args(app, encoding, args)? {
            Reply::Result(v) => {
                c.connect_info = v.get(1).cloned().unwrap_or(AmfValue::Null);
                c.encoding = encoding;
                Ok(c)
            }
            Reply::Error(info) => Err(io::Error::other(format!("connect refused: {info:?}"))),
        }
    }

    /// Hands over the TCP connection and its chunk layers (with the chunk
    /// sizes and header state agreed so far), for load tools that drive many
    /// clients from one thread. `None` for a tunnelled client.
    pub fn into_tcp_parts(self) -> Option<(TcpStream, ChunkEncoder, ChunkDecoder)> {
        match self.wire {
            Wire::Tcp(stream) => Some((stream, self.encoder, self.decoder)),
            Wire::Tunnel(_) => None,
        }
    }

    /// Milliseconds since the client connected, for audio timestamps.
    pub fn elapsed_ms(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }
}

/// Parses a message from the server. SEMS' gateway (the seed, whose bundled
/// librtmp ends an AMF0 command with one object-end marker too many) is
/// measured with this client, so a command that fails only because of a
/// stray trailing `00 00 09` is read without it, as Flash Player does.
fn parse_lenient(raw: &sono_rtmp::chunk::RawMessage) -> io::Result<Message> {
    match Message::parse(raw, DecodeLimits::default()) {
        Ok(m) => Ok(m),
        Err(e) if raw.payload.ends_with(&[0, 0, 9]) => {
            let mut trimmed = raw.clone();
            trimmed.payload = raw.payload.slice(..raw.payload.len() - 3);
            Message::parse(&trimmed, DecodeLimits::default()).map_err(|_| io::Error::other(e))
        }
        Err(e) => Err(io::Error::other(e)),
    }
}

/// A WAV file as Flash's microphone sends it: Speex wideband, one 20 ms
/// frame per tag, header byte 0xB2. ffmpeg's libspeex does the encoding
/// (sono's own codecs are not used on this side).
pub fn flash_speex_tags(wav: &Path) -> io::Result<Vec<FlvAudioTag>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let flv = std::env::temp_dir().join(format!(
        "sono-testkit-{}-{}.flv",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args([
            "-ac",
            "1",
            "-ar",
            "16000",
            "-c:a",
            "libspeex",
            "-frames_per_packet",
            "1",
        ])
        .args(["-f", "flv"])
        .arg(&flv)
        .status()?;
    if !status.success() {
        return Err(io::Error::other("ffmpeg could not encode the WAV as Speex"));
    }
    let mut tags = read_flv_audio(&flv)?;
    let _ = std::fs::remove_file(&flv);
    for tag in &mut tags {
        if let Some(h) = tag.data.first_mut() {
            *h = 0xB2; // Flash's header for Speex; ffmpeg writes 0xB6
        }
    }
    Ok(tags)
}
