//! One client's RTMP connection, server side, without I/O: bytes in, bytes and
//! [`SessionEvent`]s out (RTMP 1.0 §5 and §7; NetConnection and NetStream
//! commands as Flash Media Server answers them).
//!
//! The handshake (plain, and the Flash Player 9 digest variant) is rml_rtmp's;
//! everything after it, chunks and AMF included, is ours. Any violation closes the
//! session for good: [`ServerSession::handle_input`] returns the reason once and
//! [`SessionError::Closed`] after that.

use std::collections::{BTreeMap, VecDeque};

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};

use crate::amf::{AmfValue, DecodeLimits};
use crate::audio::{AudioCodec, AudioTag};
use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits, RawMessage};
use crate::message::{
    command_payload, peer_bandwidth_payload, type_id, u32_payload, user_control,
    user_control_payload, Message, MessageError, ObjectEncoding,
};
use crate::phone::{self, PhoneEvent, PhoneRequest};

/// Chunk streams we write on.
const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
/// Video has a chunk stream of its own, so its messages can be queued
/// behind audio without breaking either's header compression.
const CSID_VIDEO: u32 = 6;

/// What the session may accept and what it announces.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub chunk_limits: ChunkLimits,
    pub amf_limits: DecodeLimits,
    /// The chunk size we write with, announced right after `connect`.
    pub chunk_size: u32,
    /// Window acknowledgement size we announce (and peer bandwidth we ask for).
    pub window_ack_size: u32,
    /// Most NetStreams one connection may create.
    pub max_streams: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_limits: ChunkLimits::default(),
            amf_limits: DecodeLimits::default(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            max_streams: 8,
        }
    }
}

/// Why a session was closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("session already closed")]
    Closed,
}

/// The parameters of the client's `connect` command.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRequest {
    pub app: String,
    pub tc_url: Option<String>,
    pub flash_ver: Option<String>,
    pub object_encoding: ObjectEncoding,
    /// Arguments after the command object (`NetConnection.connect(url, …)`).
    pub arguments: Vec<AmfValue>,
}

/// Something the owner of the session must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Answer with [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`];
    /// no further input is processed until then.
    ConnectRequested(ConnectRequest),
    /// A valid phone API call; answer with [`ServerSession::answer_result`] or
    /// [`ServerSession::answer_error`] when it expects an answer (`transaction_id` > 0).
    Phone {
        transaction_id: f64,
        request: PhoneRequest,
    },
    /// A request of a foreign client API ([`crate::api`]) that is not a
    /// phone request (mod_rtmp's login, logout, log).
    Api {
        transaction_id: f64,
        request: crate::api::ApiRequest,
    },
    Publishing {
        stream_id: u32,
        name: String,
    },
    Playing {
        stream_id: u32,
        name: String,
    },
    /// The stream stopped publishing and playing (closeStream or deleteStream).
    StreamClosed {
        stream_id: u32,
    },
    Audio {
        stream_id: u32,
        timestamp: u32,
        tag: AudioTag,
    },
    /// A video message on a publishing stream: the FLV `VIDEODATA`
    /// (§E.4.3.1; its first byte's low nibble is the codec: 2 Sorenson
    /// H.263, 7 AVC, 12 HEVC…).
    Video {
        stream_id: u32,
        timestamp: u32,
        data: bytes::Bytes,
    },
}

enum State {
    Handshaking(Box<Handshake>),
    AwaitingConnect,
    ConnectPending { transaction_id: f64 },
    Connected,
    Closed,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Handshaking(_) => f.write_str("Handshaking"),
            State::AwaitingConnect => f.write_str("AwaitingConnect"),
            State::ConnectPending { transaction_id } => {
                write!(f, "ConnectPending({transaction_id})")
            }
            State::Connected => f.write_str("Connected"),
            State::Closed => f.write_str("Closed"),
        }
    }
}

#[derive(Debug, Default)]
struct NetStream {
    publishing: Option<String>,
    playing: Option<String>,
    /// `NetStream.receiveAudio(false)` mutes what we send on this stream.
    muted: bool,
}

/// The server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    state: State,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    output: Vec<u8>,
    video_output: Vec<u8>,
    events: VecDeque<SessionEvent>,
    encoding: ObjectEncoding,
    streams: BTreeMap<u32, NetStream>,
    next_stream_id: u32,
    bytes_received: u64,
    bytes_acknowledged: u64,
    peer_window: Option<u32>,
    /// The client API this connection speaks (sono's unless set).
    api: crate::api::ApiAdapter,
}

impl ServerSession {
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            config,
            state: State::Handshaking(Box::new(Handshake::new(PeerType::Server))),
            decoder: ChunkDecoder::new(config.chunk_limits),
            encoder: ChunkEncoder::default(),
            output: Vec::with_capacity(4096),
            video_output: Vec::new(),
            events: VecDeque::new(),
            encoding: ObjectEncoding::Amf0,
            streams: BTreeMap::new(),
            next_stream_id: 1,
            bytes_received: 0,
            bytes_acknowledged: 0,
            peer_window: None,
            api: crate::api::ApiAdapter::default(),
        }
    }

    /// Feeds bytes received from the client.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        let result = self.input(data);
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    fn input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        match &mut self.state {
            State::Closed => return Err(SessionError::Closed),
            State::Handshaking(handshake) => {
                let result = handshake
                    .process_bytes(data)
                    .map_err(|e| SessionError::Handshake(e.to_string()))?;
                match result {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        self.output.extend_from_slice(&response_bytes);
                        return Ok(());
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        self.output.extend_from_slice(&response_bytes);
                        self.state = State::AwaitingConnect;
                        self.received(&remaining_bytes);
                    }
                }
            }
            _ => self.received(data),
        }
        self.process()?;
        self.acknowledge();
        Ok(())
    }

    fn received(&mut self, data: &[u8]) {
        self.decoder.push(data);
        self.bytes_received += data.len() as u64;
    }

    /// Acknowledgement (§5.4.3): the total received so far, once per peer window.
    fn acknowledge(&mut self) {
        if let Some(window) = self.peer_window {
            if self.bytes_received - self.bytes_acknowledged >= u64::from(window) {
                self.bytes_acknowledged = self.bytes_received;
                let total = self.bytes_received as u32; // wraps, as the spec's sequence number does
                self.write(
                    CSID_CONTROL,
                    0,
                    type_id::ACKNOWLEDGEMENT,
                    0,
                    &u32_payload(total),
                );
            }
        }
    }

    fn process(&mut self) -> Result<(), SessionError> {
        while !matches!(self.state, State::ConnectPending { .. }) {
            let Some(raw) = self.decoder.next_message()? else {
                break;
            };
            self.handle_message(&raw)?;
        }
        Ok(())
    }

    fn handle_message(&mut self, raw: &RawMessage) -> Result<(), SessionError> {
        match Message::parse(raw, self.config.amf_limits)? {
            Message::SetChunkSize(size) => self.decoder.set_chunk_size(size)?,
            Message::Abort { chunk_stream_id } => self.decoder.abort(chunk_stream_id),
            Message::WindowAckSize(size) => self.peer_window = (size > 0).then_some(size),
            Message::UserControl { event, data } => {
                if event == user_control::PING_REQUEST && data.len() >= 4 {
                    let t = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    let p = user_control_payload(user_control::PING_RESPONSE, t);
                    self.write(CSID_CONTROL, 0, type_id::USER_CONTROL, 0, &p);
                }
            }
            Message::Audio(payload) => self.handle_audio(raw, &payload)?,
            Message::Video(payload) => {
                let publishing = self
                    .streams
                    .get(&raw.message_stream_id)
                    .is_some_and(|s| s.publishing.is_some());
                if publishing && !payload.is_empty() {
                    self.events.push_back(SessionEvent::Video {
                        stream_id: raw.message_stream_id,
                        timestamp: raw.timestamp,
                        data: payload,
                    });
                }
            }
            Message::Command { values, .. } => {
                self.handle_command(raw.message_stream_id, values)?
            }
            // Acknowledgements, bandwidth hints, metadata (@setDataFrame),
            // shared objects and aggregates carry nothing a phone needs.
            Message::Acknowledgement(_)
            | Message::SetPeerBandwidth { .. }
            | Message::Data(_)
            | Message::Unsupported(_) => {}
        }
        Ok(())
    }

    fn handle_audio(
        &mut self,
        raw: &RawMessage,
        payload: &bytes::Bytes,
    ) -> Result<(), SessionError> {
        if !matches!(self.state, State::Connected) {
            return Err(SessionError::Protocol("audio before connect".into()));
        }
        let publishing = self
            .streams
            .get(&raw.message_stream_id)
            .is_some_and(|s| s.publishing.is_some());
        // Audio on a stream that is not publishing has nowhere to go.
        if let (true, Some(tag)) = (publishing, AudioTag::parse(payload)) {
            self.events.push_back(SessionEvent::Audio {
                stream_id: raw.message_stream_id,
                timestamp: raw.timestamp,
                tag,
            });
        }
        Ok(())
    }

    fn handle_command(
        &mut self,
        stream_id: u32,
        values: Vec<AmfValue>,
    ) -> Result<(), SessionError> {
        let mut values = values.into_iter();
        let (Some(AmfValue::String(name)), Some(AmfValue::Number(txn))) =
            (values.next(), values.next())
        else {
            return Err(SessionError::Protocol(
                "command without a name and a transaction id".into(),
            ));
        };
        let command_object = values.next().unwrap_or(AmfValue::Null);
        let args: Vec<AmfValue> = values.collect();
        match (&self.state, name.as_str()) {
            (State::AwaitingConnect, "connect") => self.handle_connect(txn, &command_object, args),
            (State::AwaitingConnect, _) => {
                Err(SessionError::Protocol(format!("{name:?} before connect")))
            }
            (_, "connect") => Err(SessionError::Protocol(
                "connect on a connected session".into(),
            )),
            _ => self.handle_connected_command(stream_id, &name, txn, args),
        }
    }

    fn handle_connect(
        &mut self,
        txn: f64,
        command_object: &AmfValue,
        arguments: Vec<AmfValue>,
    ) -> Result<(), SessionError> {
        if command_object.properties().is_none() {
            return Err(SessionError::Protocol(
                "connect without a command object".into(),
            ));
        }
        let text = |k: &str| {
            command_object
                .get(k)
                .and_then(AmfValue::as_str)
                .map(str::to_owned)
        };
        let object_encoding = match command_object
            .get("objectEncoding")
            .and_then(AmfValue::as_number)
        {
            Some(3.0) => ObjectEncoding::Amf3,
            _ => ObjectEncoding::Amf0,
        };
        self.encoding = object_encoding;
        self.state = State::ConnectPending {
            transaction_id: txn,
        };
        self.events
            .push_back(SessionEvent::ConnectRequested(ConnectRequest {
                app: text("app").unwrap_or_default(),
                tc_url: text("tcUrl"),
                flash_ver: text("flashVer"),
                object_encoding,
                arguments,
            }));
        Ok(())
    }

    fn handle_connected_command(
        &mut self,
        stream_id: u32,
        name: &str,
        txn: f64,
        args: Vec<AmfValue>,
    ) -> Result<(), SessionError> {
        let first_str = || {
            args.first()
                .and_then(AmfValue::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match name {
            "createStream" => {
                if self.streams.len() >= self.config.max_streams {
                    self.answer_error(txn, phone::code::METHOD_NOT_FOUND, "too many streams");
                } else {
                    let id = self.next_stream_id;
                    self.next_stream_id += 1;
                    self.streams.insert(id, NetStream::default());
                    self.answer_result(txn, AmfValue::Number(f64::from(id)));
                }
            }
            "publish" => {
                let name = first_str();
                self.stream(stream_id, "publish")?.publishing = Some(name.clone());
                self.stream_status(stream_id, "NetStream.Publish.Start", &name);
                self.events
                    .push_back(SessionEvent::Publishing { stream_id, name });
            }
            "play" => {
                let name = first_str();
                self.stream(stream_id, "play")?.playing = Some(name.clone());
                let p = user_control_payload(user_control::STREAM_BEGIN, stream_id);
                self.write(CSID_CONTROL, 0, type_id::USER_CONTROL, 0, &p);
                self.stream_status(stream_id, "NetStream.Play.Reset", &name);
                self.stream_status(stream_id, "NetStream.Play.Start", &name);
                self.events
                    .push_back(SessionEvent::Playing { stream_id, name });
            }
            "closeStream" => self.close_stream(stream_id, false),
            "deleteStream" => {
                let id = args.first().and_then(AmfValue::as_number).unwrap_or(0.0);
                if id >= 1.0 && id <= f64::from(u32::MAX) {
                    self.close_stream(id as u32, true);
                }
            }
            "receiveAudio" => {
                let on = !matches!(args.first(), Some(AmfValue::Boolean(false)));
                self.stream(stream_id, "receiveAudio")?.muted = !on;
            }
            "receiveVideo" => {}
            // Sent by ffmpeg, OBS and FMLE around publishing; FMS answers them.
            "releaseStream" | "FCPublish" | "FCUnpublish" | "FCSubscribe" | "getStreamLength"
            | "_checkbw" => self.answer_result(txn, AmfValue::Undefined),
            // Answers to calls we never make, and bandwidth-check callbacks.
            "_result" | "_error" | "onStatus" | "onBWDone" | "onBWCheck" => {}
            _ => match self.api.parse(name, &args) {
                Some(Ok(crate::api::ApiRequest::Phone(request))) => {
                    self.events.push_back(SessionEvent::Phone {
                        transaction_id: txn,
                        request,
                    })
                }
                Some(Ok(request)) => self.events.push_back(SessionEvent::Api {
                    transaction_id: txn,
                    request,
                }),
                Some(Err(e)) => self.answer_error(txn, e.code, &e.description),
                None => self.answer_error(
                    txn,
                    phone::code::METHOD_NOT_FOUND,
                    &format!("Method not found ({name})."),
                ),
            },
        }
        Ok(())
    }

    fn stream(&mut self, stream_id: u32, command: &str) -> Result<&mut NetStream, SessionError> {
        self.streams.get_mut(&stream_id).ok_or_else(|| {
            SessionError::Protocol(format!(
                "{command} on stream {stream_id}, which was never created"
            ))
        })
    }

    fn close_stream(&mut self, stream_id: u32, delete: bool) {
        let active = match self.streams.get_mut(&stream_id) {
            Some(s) => {
                let active = s.publishing.take().is_some() | s.playing.take().is_some();
                if delete {
                    self.streams.remove(&stream_id);
                }
                active
            }
            None => false,
        };
        if active {
            self.events
                .push_back(SessionEvent::StreamClosed { stream_id });
        }
    }

    fn stream_status(&mut self, stream_id: u32, code: &str, name: &str) {
        let info = AmfValue::object([
            ("level", AmfValue::from("status")),
            ("code", code.into()),
            ("description", format!("{code} {name}").into()),
            ("details", name.into()),
        ]);
        self.command(stream_id, "onStatus", 0.0, AmfValue::Null, info);
    }

    /// `onStatus` with level `error` on a stream (e.g. audio the server
    /// cannot decode: `NetStream.Audio.Undecodable`).
    pub fn stream_error(&mut self, stream_id: u32, code: &str, description: &str) {
        let info = AmfValue::object([
            ("level", AmfValue::from("error")),
            ("code", code.into()),
            ("description", description.into()),
        ]);
        self.command(stream_id, "onStatus", 0.0, AmfValue::Null, info);
    }

    /// Accepts the pending `connect`; `extra` goes into the result's info object.
    pub fn accept_connect(&mut self, extra: Vec<(String, AmfValue)>) -> Result<(), SessionError> {
        let State::ConnectPending { transaction_id } = self.state else {
            return Err(SessionError::Protocol("no connect to accept".into()));
        };
        let window = self.config.window_ack_size;
        self.write(
            CSID_CONTROL,
            0,
            type_id::WINDOW_ACK_SIZE,
            0,
            &u32_payload(window),
        );
        self.write(
            CSID_CONTROL,
            0,
            type_id::SET_PEER_BANDWIDTH,
            0,
            &peer_bandwidth_payload(window, 2),
        );
        let size = self.config.chunk_size;
        self.write(
            CSID_CONTROL,
            0,
            type_id::SET_CHUNK_SIZE,
            0,
            &u32_payload(size),
        );
        self.encoder.set_chunk_size(size);
        let p = user_control_payload(user_control::STREAM_BEGIN, 0);
        self.write(CSID_CONTROL, 0, type_id::USER_CONTROL, 0, &p);

        let properties = AmfValue::object([
            ("fmsVer", AmfValue::from("FMS/3,5,7,7009")),
            ("capabilities", AmfValue::Number(31.0)),
            ("mode", AmfValue::Number(1.0)),
        ]);
        let mut info = vec![
            ("level".to_owned(), AmfValue::from("status")),
            ("code".to_owned(), "NetConnection.Connect.Success".into()),
            ("description".to_owned(), "Connection succeeded.".into()),
            (
                "objectEncoding".to_owned(),
                AmfValue::Number(self.encoding.number()),
            ),
        ];
        info.extend(extra);
        // The connect request itself is always AMF0; so is its answer.
        let values = [
            AmfValue::from("_result"),
            AmfValue::Number(transaction_id),
            properties,
            AmfValue::Object(info),
        ];
        let payload = command_payload(ObjectEncoding::Amf0, &values);
        self.write(CSID_COMMAND, 0, type_id::COMMAND_AMF0, 0, &payload);
        self.state = State::Connected;
        let result = self.process().map(|()| self.acknowledge());
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// Refuses the pending `connect`; the session is closed afterwards.
    pub fn reject_connect(&mut self, description: &str) {
        if let State::ConnectPending { transaction_id } = self.state {
            let info = AmfValue::object([
                ("level", AmfValue::from("error")),
                ("code", "NetConnection.Connect.Rejected".into()),
                ("description", description.into()),
            ]);
            let values = [
                AmfValue::from("_error"),
                AmfValue::Number(transaction_id),
                AmfValue::Null,
                info,
            ];
            let payload = command_payload(ObjectEncoding::Amf0, &values);
            self.write(CSID_COMMAND, 0, type_id::COMMAND_AMF0, 0, &payload);
        }
        self.state = State::Closed;
    }

    /// `_result(txn, null, value)`; nothing when the caller wants no answer (txn 0).
    pub fn answer_result(&mut self, transaction_id: f64, value: AmfValue) {
        if transaction_id > 0.0 {
            self.command(0, "_result", transaction_id, AmfValue::Null, value);
        }
    }

    /// `_error(txn, null, {level: "error", code, description})`.
    pub fn answer_error(&mut self, transaction_id: f64, code: &str, description: &str) {
        self.answer_error_with(transaction_id, code, description, None, None);
    }

    /// `_error` that a SIP response caused: the info object also carries
    /// `sip_code` and `reason`.
    pub fn answer_error_with(
        &mut self,
        transaction_id: f64,
        code: &str,
        description: &str,
        sip_code: Option<u16>,
        reason: Option<&str>,
    ) {
        if transaction_id > 0.0 {
            let mut fields = vec![
                ("level", AmfValue::from("error")),
                ("code", code.into()),
                ("description", description.into()),
            ];
            if let Some(c) = sip_code {
                fields.push(("sip_code", AmfValue::Number(f64::from(c))));
            }
            if let Some(r) = reason {
                fields.push(("reason", r.into()));
            }
            let info = AmfValue::object(fields);
            self.command(0, "_error", transaction_id, AmfValue::Null, info);
        }
    }

    /// Speaks `api` from now on (set before accepting the connect).
    pub fn set_api(&mut self, api: crate::api::ApiAdapter) {
        self.api = api;
    }

    pub fn api(&self) -> &crate::api::ApiAdapter {
        &self.api
    }

    /// What a foreign API's client is told once connected (mod_rtmp's
    /// `connected(session)`).
    pub fn api_connected(&mut self, session_id: &str) {
        let invokes = self.api.connected(session_id);
        self.send_invokes(invokes);
    }

    /// The answer to mod_rtmp's `login` (`onLogin`).
    pub fn login_result(&mut self, user: &str, domain: &str, ok: bool) {
        let invokes = self.api.login_result(user, domain, ok);
        self.send_invokes(invokes);
    }

    /// The answer to mod_rtmp's `logout` (`onLogout`).
    pub fn logout_result(&mut self) {
        let invokes = self.api.logout_result();
        self.send_invokes(invokes);
    }

    /// An event about call `call`: `onStatus(0, null, info)` on stream 0
    /// in sono's API, the API's own callbacks in a foreign one.
    pub fn send_event(&mut self, event: &PhoneEvent, call: Option<crate::phone::CallId>) {
        if self.api.api() == crate::api::ClientApi::Sono {
            self.command(0, "onStatus", 0.0, AmfValue::Null, event.info_on(call));
            return;
        }
        let invokes = self.api.render(event, call);
        self.send_invokes(invokes);
    }

    /// Calls methods of the client (`name(args…)` on its NetConnection).
    fn send_invokes(&mut self, invokes: Vec<crate::api::Invoke>) {
        for invoke in invokes {
            let mut values = vec![
                AmfValue::from(invoke.name),
                AmfValue::Number(0.0),
                AmfValue::Null,
            ];
            values.extend(invoke.args);
            let payload = command_payload(self.encoding, &values);
            let t = match self.encoding {
                ObjectEncoding::Amf0 => type_id::COMMAND_AMF0,
                ObjectEncoding::Amf3 => type_id::COMMAND_AMF3,
            };
            self.write(CSID_COMMAND, 0, t, 0, &payload);
        }
    }

    /// Sends audio on a stream the client plays; false if it plays nothing there.
    pub fn send_audio(
        &mut self,
        stream_id: u32,
        timestamp: u32,
        codec: AudioCodec,
        data: &[u8],
    ) -> bool {
        let playing = self
            .streams
            .get(&stream_id)
            .is_some_and(|s| s.playing.is_some() && !s.muted);
        if playing && matches!(self.state, State::Connected) {
            let mut payload = Vec::with_capacity(data.len() + 1);
            payload.push(codec.header());
            payload.extend_from_slice(data);
            self.write(CSID_AUDIO, timestamp, type_id::AUDIO, stream_id, &payload);
        }
        playing
    }

    /// Sends an FLV video message on a stream the client plays, into the
    /// video output ([`Self::take_video_output`]); false if it plays
    /// nothing there.
    pub fn send_video(&mut self, stream_id: u32, timestamp: u32, data: &[u8]) -> bool {
        let playing = self
            .streams
            .get(&stream_id)
            .is_some_and(|s| s.playing.is_some() && !s.muted);
        if playing && matches!(self.state, State::Connected) {
            self.encoder.encode(
                CSID_VIDEO,
                timestamp,
                type_id::VIDEO,
                stream_id,
                data,
                &mut self.video_output,
            );
        }
        playing
    }

    /// Video bytes for the client, kept apart from the rest so the owner
    /// can send audio and commands first.
    pub fn take_video_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.video_output)
    }

    /// A ping request (§7.1.7, event 6); Flash answers it, which keeps an idle
    /// but live client from timing out.
    pub fn send_ping(&mut self, timestamp: u32) {
        if matches!(self.state, State::Connected) {
            let p = user_control_payload(user_control::PING_REQUEST, timestamp);
            self.write(CSID_CONTROL, 0, type_id::USER_CONTROL, 0, &p);
        }
    }

    /// Bytes to send to the client, handed over once.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether bytes wait in [`Self::take_output`].
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the RTMP handshake is over (the idle timeout starts then).
    pub fn handshake_done(&self) -> bool {
        !matches!(self.state, State::Handshaking(_))
    }

    pub fn object_encoding(&self) -> ObjectEncoding {
        self.encoding
    }

    /// Total bytes received after the handshake.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    fn command(&mut self, stream_id: u32, name: &str, txn: f64, object: AmfValue, info: AmfValue) {
        let values = [AmfValue::from(name), AmfValue::Number(txn), object, info];
        let payload = command_payload(self.encoding, &values);
        let t = match self.encoding {
            ObjectEncoding::Amf0 => type_id::COMMAND_AMF0,
            ObjectEncoding::Amf3 => type_id::COMMAND_AMF3,
        };
        self.write(CSID_COMMAND, 0, t, stream_id, &payload);
    }

    fn write(&mut self, csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
        self.encoder.encode(
            csid,
            timestamp,
            type_id,
            stream_id,
            payload,
            &mut self.output,
        );
    }
}
