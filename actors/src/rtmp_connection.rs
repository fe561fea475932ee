//! `RtmpConnection`: one RTMP client's transport. It owns the TCP (or TLS)
//! byte stream or the RTMPT tunnel, the sans-I/O RTMP session, and the audio
//! between the client and its call's media bridge; the phone itself (calls,
//! registration, events, the rules) is the connection's [`ClientSession`],
//! which this actor starts beside itself and feeds with the client's
//! requests. Any protocol violation, limit or timeout closes this one
//! connection, with the reason logged, without touching any other.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::BytesMut;
use sono_rtmp::chunk::ChunkLimits;
use sono_rtmp::tunnel::{PollInterval, TunnelSequence};
use sono_rtmp::{AmfValue, AudioCodec, PhoneEvent, ServerSession, SessionConfig, SessionEvent};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{BytesCodec, FramedRead};
use tracing::{debug, info, warn};

use crate::client_session::{ClientSession, FromClient, RelayedAudio, SessionIdentity, ToClient};
use crate::client_writer::{ClientWriter, WriterDone};
use crate::control::ClientTransport;
use crate::directory::ConnectionId;
use crate::media_bridge::{ClientAudio, MediaBridge, MediaNotice};
use crate::metrics::Metrics;
use crate::tunnel::{TunnelExchange, TunnelRefusal, TunnelReply};
use crate::Shared;

mod foreign_api;
mod video;
use sono_media::codec::ClientCodec;
use sono_media::g711::Law;

/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(500);
/// How long a closing connection may take to flush before it is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// Unsent bytes beyond which a client is closed: it does not read.
const WRITE_HIGH_WATER: usize = 1 << 20;
/// Unsent bytes beyond which audio down is dropped instead of queued: over
/// TCP about a second of Speex (the kernel's send buffer, `rtmp.send_buffer`,
/// holds more); an RTMPT client fetches only when it polls, so more.
const AUDIO_BACKLOG: usize = 4 * 1024;
const AUDIO_BACKLOG_TUNNEL: usize = 16 * 1024;

/// Where the connection's bytes for the client go.
enum Output {
    /// A TCP or TLS stream.
    Stream(ClientWriter),
    /// An RTMPT session: bytes wait for the client's next poll.
    Tunnel(TunnelState),
}

struct TunnelState {
    id: String,
    pending: Vec<u8>,
    /// Video waits here and goes after `pending` in each reply.
    video_pending: Vec<u8>,
    sequence: TunnelSequence,
    interval: PollInterval,
    last_poll: Instant,
}

pub struct RtmpConnection {
    id: ConnectionId,
    peer: SocketAddr,
    transport: ClientTransport,
    /// The capability token that controls this connection over REST.
    token: String,
    shared: Arc<Shared>,
    /// The phone this connection carries (started in `started`).
    phone: Option<Addr<ClientSession>>,
    session: ServerSession,
    output: Output,
    opened: Instant,
    last_input: Instant,
    last_ping: Instant,
    /// Audio down not sent because the client was not reading.
    audio_down_dropped: u64,
    /// When the oldest call audio in the session's output left the jitter
    /// buffer (the writer measures its latency once it is written).
    audio_taken: Option<Instant>,
    /// Since when the client has left audio down unread.
    stalled_since: Option<Instant>,
    audio_messages: u64,
    closing: bool,
    /// The answered call's media bridge, where the client's audio goes.
    media: Option<Addr<MediaBridge>>,
    /// The stream the client plays (audio down goes there).
    play_stream: Option<u32>,
    /// The key an RTMP tool publishes under; it is also a token for this connection.
    stream_key: Option<String>,
    /// Other connections playing this one's stream key: audio down goes to them too.
    listeners: Vec<(Recipient<RelayedAudio>, u32)>,
    /// RTMP timestamps of audio down restart at 0 on each call; this keeps
    /// them rising on the stream.
    audio_down_offset: u32,
    last_audio_down: u32,
    /// The stream the client publishes on, where `onStatus` errors about
    /// its audio go.
    publish_stream: Option<u32>,
    /// The codec of the client's last audio message.
    published: Option<ClientCodec>,
    /// Codecs the client was already told sono cannot decode (once each).
    refused: Vec<&'static str>,
    video: video::VideoState,
    /// The client's last AAC sequence header (AudioSpecificConfig), and
    /// its timestamp.
    aac_config: Option<(u32, bytes::Bytes)>,
    /// mod_rtmp's session id, the challenge of its login.
    api_session: String,
}

impl RtmpConnection {
    /// Starts the actor for an accepted TCP or TLS stream, on the current arbiter.
    pub fn start<S>(
        stream: S,
        peer: SocketAddr,
        transport: ClientTransport,
        shared: Arc<Shared>,
    ) -> Addr<RtmpConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        RtmpConnection::create(move |ctx| {
            ctx.add_stream(FramedRead::with_capacity(
                read,
                BytesCodec::new(),
                16 * 1024,
            ));
            let writer = ClientWriter::spawn(write, ctx.address().recipient(), shared.clone());
            RtmpConnection::new(peer, transport, shared, Output::Stream(writer))
        })
    }

    /// Starts the actor for an RTMPT session on `arbiter`; the HTTP side feeds
    /// it with [`TunnelExchange`]s.
    pub fn start_tunnel(
        arbiter: &actix::dev::ArbiterHandle,
        session_id: String,
        peer: SocketAddr,
        shared: Arc<Shared>,
    ) -> Addr<RtmpConnection> {
        RtmpConnection::start_in_arbiter(arbiter, move |_| {
            let tunnel = TunnelState {
                id: session_id,
                pending: Vec::new(),
                video_pending: Vec::new(),
                sequence: TunnelSequence::default(),
                interval: PollInterval::default(),
                last_poll: Instant::now(),
            };
            RtmpConnection::new(peer, ClientTransport::Rtmpt, shared, Output::Tunnel(tunnel))
        })
    }

    fn new(
        peer: SocketAddr,
        transport: ClientTransport,
        shared: Arc<Shared>,
        output: Output,
    ) -> RtmpConnection {
        let id = shared.directory.next_connection_id();
        let r = &shared.settings.rtmp;
        let config = SessionConfig {
            chunk_limits: ChunkLimits {
                max_chunk_size: r.max_chunk_size,
                max_message_size: r.max_message_size,
                max_chunk_streams: r.max_chunk_streams,
            },
            amf_limits: Default::default(),
            chunk_size: r.chunk_size,
            window_ack_size: r.window_ack_size,
            max_streams: r.max_streams,
        };
        let now = Instant::now();
        RtmpConnection {
            id,
            peer,
            transport,
            token: crate::cluster::new_secret(&shared.settings.cluster.node_id),
            phone: None,
            session: ServerSession::new(config),
            output,
            opened: now,
            last_input: now,
            last_ping: now,
            audio_messages: 0,
            closing: false,
            media: None,
            play_stream: None,
            stream_key: None,
            listeners: Vec::new(),
            audio_down_dropped: 0,
            audio_taken: None,
            stalled_since: None,
            audio_down_offset: 0,
            last_audio_down: 0,
            publish_stream: None,
            published: None,
            refused: Vec::new(),
            video: video::VideoState::default(),
            aac_config: None,
            api_session: crate::cluster::new_secret(""),
            shared,
        }
    }

    fn flush(&mut self) {
        let video = self.session.take_video_output();
        if !video.is_empty() {
            match &mut self.output {
                Output::Stream(writer) => writer.write_video(video),
                Output::Tunnel(t) => t.video_pending.extend_from_slice(&video),
            }
        }
        if !self.session.has_output() {
            return;
        }
        let bytes = self.session.take_output();
        let audio_taken = self.audio_taken.take();
        match &mut self.output {
            Output::Stream(writer) => writer.write(bytes, audio_taken),
            Output::Tunnel(t) => t.pending.extend_from_slice(&bytes),
        }
    }

    /// Whether audio down should be dropped rather than queued: the client
    /// is not reading what it was sent.
    fn audio_backlogged(&self) -> bool {
        let backlog = match &self.output {
            Output::Stream(_) => AUDIO_BACKLOG,
            Output::Tunnel(_) => AUDIO_BACKLOG_TUNNEL,
        };
        self.unsent() > backlog
    }

    /// Bytes for the client it has not taken yet.
    fn unsent(&self) -> usize {
        match &self.output {
            Output::Stream(w) => w.unsent(),
            Output::Tunnel(t) => t.pending.len(),
        }
    }

    /// Sends one audio message down, unless the client is not reading;
    /// false if it was dropped.
    fn send_audio_down(&mut self, stream: u32, at: u32, codec: AudioCodec, data: &[u8]) -> bool {
        if self.audio_backlogged() {
            self.audio_down_dropped += 1;
            Metrics::add(&self.shared.metrics.audio_down_dropped, 1);
            return false;
        }
        self.session.send_audio(stream, at, codec, data);
        true
    }

    /// Tells the phone something, if it is still there.
    fn tell_phone(&self, msg: FromClient) {
        if let Some(phone) = &self.phone {
            phone.do_send(msg);
        }
    }

    /// Flushes what is queued, then closes; the reason goes to the log.
    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, is_error: bool) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.tell_phone(FromClient::Closing);
        if is_error {
            Metrics::add(&self.shared.metrics.rtmp_connections_closed_on_error, 1);
            warn!(conn = self.id, peer = %self.peer, %reason, "closing RTMP connection");
        } else {
            info!(conn = self.id, peer = %self.peer, %reason, "closing RTMP connection");
        }
        self.flush();
        // A tunnel client gets until the next polls to fetch the last bytes.
        if let Output::Stream(writer) = &mut self.output {
            writer.close();
        }
        ctx.run_later(CLOSE_FLUSH, |_, ctx| ctx.stop());
    }

    /// Bytes from the client, from its stream or its tunnel.
    fn input(&mut self, ctx: &mut Context<Self>, data: &[u8]) {
        self.last_input = Instant::now();
        let before = self.session.bytes_received();
        let result = self.session.handle_input(data);
        let received = self.session.bytes_received() - before;
        Metrics::add(&self.shared.metrics.rtmp_bytes_received, received);
        self.handle_events(ctx);
        match result {
            Ok(()) => self.flush(),
            Err(e) => self.close(ctx, &e.to_string(), true),
        }
        if self.session.is_closed() && !self.closing {
            self.close(ctx, "session closed", false);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let r = &self.shared.settings.rtmp;
        let now = Instant::now();
        if let Output::Tunnel(t) = &self.output {
            let timeout = self.shared.settings.rtmpt.session_timeout;
            if now.duration_since(t.last_poll) > timeout {
                // Nobody is left to read what we would flush.
                self.closing = true;
                info!(conn = self.id, peer = %self.peer, "RTMPT session expired: the client stopped polling");
                ctx.stop();
                return;
            }
            if t.pending.len() + t.video_pending.len() > WRITE_HIGH_WATER {
                self.close(ctx, "the RTMPT client does not poll for its data", true);
                return;
            }
        }
        // A client that reads nothing: its audio down is being dropped; it is
        // closed once that has lasted rtmp.idle_timeout, or its backlog is huge.
        if self.audio_backlogged() {
            let since = *self.stalled_since.get_or_insert(now);
            let unsent = self.unsent();
            if now.duration_since(since) > r.idle_timeout || unsent > WRITE_HIGH_WATER {
                let reason = format!(
                    "the client has read nothing for {} s ({} KiB waiting, {} audio messages down dropped)",
                    now.duration_since(since).as_secs(),
                    unsent / 1024,
                    self.audio_down_dropped
                );
                self.close(ctx, &reason, true);
                return;
            }
        } else {
            self.stalled_since = None;
        }
        if !self.session.handshake_done() {
            if now.duration_since(self.opened) > r.handshake_timeout {
                self.close(ctx, "handshake not finished in time", true);
            }
            return;
        }
        if now.duration_since(self.last_input) > r.idle_timeout {
            self.close(ctx, "idle timeout: the client sent nothing", true);
            return;
        }
        if self.session.is_connected() && now.duration_since(self.last_ping) >= r.ping_interval {
            self.last_ping = now;
            let t = now.duration_since(self.opened).as_millis() as u32;
            self.session.send_ping(t);
            self.flush();
        }
    }

    fn handle_events(&mut self, ctx: &mut Context<Self>) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::ConnectRequested(req) => {
                    let apps = &self.shared.settings.rtmp.apps;
                    // siprtmp's `sip/<aor>` is application `sip`.
                    let first = req.app.split('/').next().unwrap_or_default();
                    if !apps.is_empty() && !apps.iter().any(|a| *a == req.app || a == first) {
                        self.session.reject_connect("unknown application");
                        self.close(
                            ctx,
                            &format!("connect to unknown application {:?}", req.app),
                            true,
                        );
                        return;
                    }
                    info!(conn = self.id, peer = %self.peer, transport = ?self.transport, app = %req.app,
                          flash_ver = req.flash_ver.as_deref().unwrap_or(""),
                          encoding = ?req.object_encoding, "RTMP client connected");
                    let extra = vec![
                        ("connection_id".to_owned(), AmfValue::Number(self.id as f64)),
                        ("token".to_owned(), AmfValue::from(self.token.as_str())),
                    ];
                    self.choose_api(&req);
                    if let Err(e) = self.session.accept_connect(extra) {
                        self.close(ctx, &e.to_string(), true);
                        return;
                    }
                    self.tell_phone(FromClient::Connected {
                        app: req.app.clone(),
                    });
                    self.api_connected(ctx, &req);
                }
                SessionEvent::Phone {
                    transaction_id,
                    request,
                } => self.tell_phone(FromClient::Phone {
                    txn: transaction_id,
                    request,
                }),
                SessionEvent::Api {
                    transaction_id,
                    request,
                } => self.api_request(transaction_id, request),
                SessionEvent::Publishing { stream_id, name } => {
                    debug!(conn = self.id, stream_id, %name, "client publishes");
                    self.publish_stream = Some(stream_id);
                    if is_stream_key(&name) && self.stream_key.as_deref() != Some(name.as_str()) {
                        if !self.shared.directory.claim_stream_key(&name, self.id) {
                            self.close(ctx, "the stream key is in use by another connection", true);
                            return;
                        }
                        if let Some(old) = self.stream_key.replace(name) {
                            self.shared.directory.release_stream_key(&old, self.id);
                        }
                        self.tell_phone(FromClient::StreamKey(true));
                        info!(conn = self.id, "publishing under a stream key: REST may control this connection with it");
                    }
                }
                SessionEvent::Playing { stream_id, name } => {
                    debug!(conn = self.id, stream_id, %name, "client plays");
                    // `KEY?codec=pcmu`: a player that wants G.711 rather than Speex.
                    let (key, query) = name.split_once('?').unwrap_or((name.as_str(), ""));
                    let codec = match player_codec(query) {
                        Ok(codec) => codec,
                        Err(asked) => {
                            warn!(conn = self.id, %asked, "a player asked for a codec sono does not send down; it gets Speex");
                            None
                        }
                    };
                    let holder = is_stream_key(key)
                        .then(|| self.shared.directory.stream_key(key))
                        .flatten()
                        .filter(|holder| *holder != self.id)
                        .and_then(|holder| self.shared.directory.connection(holder));
                    match holder {
                        // Another connection's call audio, e.g. ffmpeg playing
                        // what its publishing twin's call sends down.
                        Some(publisher) => {
                            info!(conn = self.id, "plays the call audio of the connection publishing under this stream key");
                            publisher.do_send(FromClient::Listen {
                                listener: ctx.address().recipient(),
                                stream_id,
                                codec,
                            })
                        }
                        None => self.play_stream = Some(stream_id),
                    }
                }
                SessionEvent::StreamClosed { stream_id } => {
                    debug!(conn = self.id, stream_id, "client closed a stream");
                    if self.play_stream == Some(stream_id) {
                        self.play_stream = None;
                    }
                }
                SessionEvent::Audio {
                    stream_id,
                    tag,
                    timestamp,
                } => {
                    self.audio_messages += 1;
                    self.shared.metrics.audio_message(tag.codec);
                    let Some(codec) = client_codec(tag.codec) else {
                        let AudioCodec::Other { format } = tag.codec else {
                            continue;
                        };
                        self.shared.metrics.undecodable("other");
                        self.refuse_audio(
                            stream_id,
                            "other",
                            &format!("FLV sound format {format} is not one sono decodes (Speex, Nellymoser, G.711, AAC, MP3, ADPCM and linear PCM are)"),
                        );
                        continue;
                    };
                    if codec == ClientCodec::Aac && tag.data.first() == Some(&0) {
                        self.aac_config = Some((timestamp, tag.data.clone()));
                    }
                    if self.published != Some(codec) {
                        self.published = Some(codec);
                        self.tell_phone(FromClient::Publishes(codec));
                    }
                    if let Some(media) = &self.media {
                        media.do_send(ClientAudio {
                            codec,
                            timestamp,
                            data: tag.data,
                            received: Instant::now(),
                        });
                    }
                }
                SessionEvent::Video {
                    stream_id,
                    timestamp,
                    data,
                } => self.client_video(stream_id, timestamp, data),
            }
        }
    }

    /// Tells the client, once per codec, that sono cannot decode the audio
    /// it publishes (`onStatus` error on its publishing stream); the call
    /// goes on with silence up.
    fn refuse_audio(&mut self, stream_id: u32, codec: &'static str, reason: &str) {
        if self.refused.contains(&codec) {
            return;
        }
        self.refused.push(codec);
        warn!(conn = self.id, codec, %reason, "client audio cannot be decoded; the call goes on with silence up");
        self.session.stream_error(
            stream_id,
            "NetStream.Audio.Undecodable",
            &format!("{codec}: {reason}"),
        );
        self.flush();
    }
}

/// The media codec of an FLV sound format; `None` for one sono does not
/// decode.
fn client_codec(codec: AudioCodec) -> Option<ClientCodec> {
    Some(match codec {
        AudioCodec::Speex => ClientCodec::SpeexWb,
        AudioCodec::Nellymoser { rate } => ClientCodec::Nellymoser { rate },
        AudioCodec::Pcmu => ClientCodec::G711(Law::Mu),
        AudioCodec::Pcma => ClientCodec::G711(Law::A),
        AudioCodec::Pcm {
            rate,
            stereo,
            sixteen_bit,
        } => ClientCodec::Pcm {
            rate,
            stereo,
            sixteen_bit,
        },
        AudioCodec::Adpcm { rate, stereo } => ClientCodec::Adpcm { rate, stereo },
        AudioCodec::Mp3 => ClientCodec::Mp3,
        AudioCodec::Aac => ClientCodec::Aac,
        AudioCodec::Other { .. } => return None,
    })
}

/// The codec a player's query (`codec=pcmu`) asks for: `Ok(None)` when it
/// asks for none, `Err` with what it asked for when sono cannot send that.
fn player_codec(query: &str) -> Result<Option<ClientCodec>, String> {
    let Some(asked) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("codec="))
    else {
        return Ok(None);
    };
    match asked.to_ascii_lowercase().as_str() {
        "speex" => Ok(Some(ClientCodec::SpeexWb)),
        "pcmu" => Ok(Some(ClientCodec::G711(Law::Mu))),
        "pcma" => Ok(Some(ClientCodec::G711(Law::A))),
        _ => Err(asked.to_owned()),
    }
}

/// The FLV sound format audio down goes in; `None` for a codec no FLV
/// sound format carries (Opus, G.722) or that sono does not encode.
fn flv_codec(codec: ClientCodec) -> Option<AudioCodec> {
    match codec {
        ClientCodec::SpeexWb => Some(AudioCodec::Speex),
        ClientCodec::Nellymoser { rate } => Some(AudioCodec::Nellymoser { rate }),
        ClientCodec::G711(Law::Mu) => Some(AudioCodec::Pcmu),
        ClientCodec::G711(Law::A) => Some(AudioCodec::Pcma),
        ClientCodec::Opus
        | ClientCodec::G722
        | ClientCodec::Pcm { .. }
        | ClientCodec::Adpcm { .. }
        | ClientCodec::Mp3
        | ClientCodec::Aac => None,
    }
}

impl Actor for RtmpConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The listener already counted this connection as active.
        self.phone = Some(ClientSession::start(
            SessionIdentity {
                id: self.id,
                token: self.token.clone(),
                peer: self.peer,
                transport: self.transport,
                // Speex for Flash; a Nellymoser publisher may switch it.
                client_codec: ClientCodec::SpeexWb,
            },
            self.shared.clone(),
            ctx.address().recipient(),
            ctx.address().recipient(),
        ));
        debug!(conn = self.id, peer = %self.peer, "RTMP connection accepted");
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // The phone goes with its transport: its call and bindings end.
        self.tell_phone(FromClient::Gone);
        if let Some(key) = &self.stream_key {
            self.shared.directory.release_stream_key(key, self.id);
        }
        if let Output::Tunnel(t) = &self.output {
            self.shared.tunnels.remove(&t.id);
        }
        self.shared
            .metrics
            .rtmp_connections_active
            .fetch_sub(1, Ordering::AcqRel);
        info!(conn = self.id, peer = %self.peer, transport = ?self.transport, audio_messages = self.audio_messages, video_messages = self.video.messages, video_down_dropped = self.video.down_dropped,
              audio_down_dropped = self.audio_down_dropped, bytes_received = self.session.bytes_received(), "RTMP connection closed");
    }
}

impl StreamHandler<Result<BytesMut, io::Error>> for RtmpConnection {
    fn handle(&mut self, item: Result<BytesMut, io::Error>, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        let data = match item {
            Ok(data) => data,
            Err(e) => {
                self.close(ctx, &format!("read error: {e}"), true);
                return;
            }
        };
        self.input(ctx, &data);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.closing {
            debug!(conn = self.id, "client closed the connection");
            self.closing = true;
            ctx.stop();
        }
    }
}

impl Handler<WriterDone> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, WriterDone(error): WriterDone, ctx: &mut Self::Context) {
        if let Some(e) = error {
            if !self.closing {
                self.closing = true;
                info!(conn = self.id, peer = %self.peer, error = %e, "the client is gone (write failed)");
            }
        }
        ctx.stop();
    }
}

impl Handler<MediaNotice> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, notice: MediaNotice, _: &mut Self::Context) {
        if self.closing {
            return;
        }
        match notice {
            MediaNotice::AudioDown {
                timestamp,
                codec,
                data,
                taken,
            } => {
                let at = self.audio_down_offset.wrapping_add(timestamp);
                self.last_audio_down = at.wrapping_add(20);
                // An RTMP call never asks for a codec FLV cannot carry.
                let Some(codec) = flv_codec(codec) else {
                    return;
                };
                if !self.listeners.is_empty() {
                    self.listeners.retain(|(l, _)| l.connected());
                    for (listener, stream) in &self.listeners {
                        listener.do_send(RelayedAudio {
                            stream_id: *stream,
                            timestamp: at,
                            codec,
                            data: data.clone(),
                        });
                    }
                }
                if let Some(stream) = self.play_stream {
                    if self.send_audio_down(stream, at, codec, &data) {
                        self.audio_taken.get_or_insert(taken);
                    }
                }
            }
            MediaNotice::Dtmf(digit) => {
                self.tell_phone(FromClient::Event(PhoneEvent::Dtmf { digit }))
            }
            MediaNotice::VideoDown {
                timestamp,
                data,
                keyframe,
            } => self.video_down(timestamp, data, keyframe),
            MediaNotice::Undecodable { codec, reason } => {
                if let Some(stream) = self.publish_stream {
                    self.refuse_audio(stream, codec, &reason);
                }
            }
        }
        self.flush();
    }
}

impl Handler<RelayedAudio> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, msg: RelayedAudio, _: &mut Self::Context) {
        if self.closing {
            return;
        }
        let _ = self.send_audio_down(msg.stream_id, msg.timestamp, msg.codec, &msg.data);
        self.flush();
    }
}

impl Handler<TunnelExchange> for RtmpConnection {
    type Result = Result<TunnelReply, TunnelRefusal>;

    fn handle(&mut self, msg: TunnelExchange, ctx: &mut Self::Context) -> Self::Result {
        let Output::Tunnel(t) = &mut self.output else {
            return Err(TunnelRefusal::Closed);
        };
        t.sequence
            .accept(msg.seq)
            .map_err(TunnelRefusal::Sequence)?;
        t.last_poll = Instant::now();
        let sent = !msg.data.is_empty();
        if sent && !self.closing {
            self.input(ctx, &msg.data);
        }
        if msg.close && !self.closing {
            debug!(conn = self.id, "the RTMPT client closed its session");
            self.closing = true;
            ctx.stop();
        }
        let Output::Tunnel(t) = &mut self.output else {
            return Err(TunnelRefusal::Closed);
        };
        let mut data = std::mem::take(&mut t.pending);
        data.append(&mut t.video_pending);
        if data.is_empty() && self.closing && !msg.close {
            return Err(TunnelRefusal::Closed);
        }
        let interval = t.interval.next(sent || !data.is_empty());
        Ok(TunnelReply { interval, data })
    }
}

impl Handler<ToClient> for RtmpConnection {
    type Result = ();

    fn handle(&mut self, msg: ToClient, ctx: &mut Self::Context) {
        if self.closing {
            return;
        }
        match msg {
            ToClient::Answer(txn, Ok(value)) => self.session.answer_result(txn, value),
            ToClient::Answer(txn, Err(f)) => self.session.answer_error_with(
                txn,
                f.code,
                &f.description,
                f.sip_code,
                f.reason.as_deref(),
            ),
            ToClient::Event { event, call } => {
                if self.session.is_connected() {
                    self.session.send_event(&event, call);
                }
            }
            ToClient::Media(bridge) => {
                if let Some(bridge) = &bridge {
                    self.audio_down_offset = self.last_audio_down;
                    // A tool sends AAC's sequence header once, when it starts
                    // publishing, which is before any call: each call's
                    // decoder gets it first.
                    if let Some((timestamp, config)) = &self.aac_config {
                        bridge.do_send(ClientAudio {
                            codec: ClientCodec::Aac,
                            timestamp: *timestamp,
                            data: config.clone(),
                            received: Instant::now(),
                        });
                    }
                }
                let starts = bridge.is_some();
                self.media = bridge;
                if starts {
                    self.video_call_starts();
                }
            }
            ToClient::Listen {
                listener,
                stream_id,
            } => {
                debug!(
                    conn = self.id,
                    "another connection plays this one's stream key"
                );
                // A client that plays again replaces its earlier stream.
                self.listeners
                    .retain(|(l, _)| *l != listener && l.connected());
                self.listeners.push((listener, stream_id));
            }
            ToClient::Close { reason, is_error } => self.close(ctx, &reason, is_error),
        }
        self.flush();
    }
}

/// A publish or play name an RTMP tool uses as its stream key: long and
/// random enough to be a capability (the page that made it controls the
/// connection with it).
pub fn is_stream_key(name: &str) -> bool {
    (MIN_STREAM_KEY_LEN..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Shortest stream key: 22 characters of base64url carry 128 bits.
pub const MIN_STREAM_KEY_LEN: usize = 22;
