// sono.js: a phone on the sono gateway, from a web page.
//
// One API over three transports:
//   - "webrtc": the page itself talks and listens. The microphone
//     (getUserMedia) and the call's audio travel over WebRTC (Opus, DTLS-SRTP);
//     the phone is controlled over the REST API and its live events. No token
//     is needed: opening the session (POST /api/v1/webrtc) gives one. As a
//     softphone's, a peer connection lasts a call: when the last call ends it
//     is closed and the microphone released; dial() and accept() open the
//     next (POST /api/v1/webrtc with the session's token). The session, its
//     registration and its events stay.
//   - "rest": the REST API and its live events (Server-Sent Events). The
//     connection's media comes from elsewhere: a Flash or AIR client, ffmpeg,
//     OBS publishing under a stream key. The page needs the connection's id and
//     token (or the stream key as token).
//   - "flash": the invisible flash_phone.swf, which makes the RTMP connection
//     itself, publishes the microphone and plays the call.
//
//   import { SonoPhone } from "/sono.js";
//   const phone = new SonoPhone({ transport: "webrtc" });
//   // or: new SonoPhone({ transport: "rest", connectionId: 7, token });
//   phone.addEventListener("call", (e) => console.log(e.detail.status_code));
//   await phone.connect();
//   await phone.dial("sip:1000@pbx.example.com");
//
// Events (CustomEvent, the info object in `detail`, as the Flash client gets it):
//   "status"        every event, whatever its code
//   "call"          Sono.Call.Status {status_code, sip_code?, reason?}
//   "incoming"      Sono.Call.Incoming {uri, display_name}
//   "registration"  Sono.Registration.Status {registered, uri, expires, ...}
//   "dtmf"          Sono.Call.DTMF {digit}
//   "hold"          Sono.Call.Held {held, by: "client"|"peer"} and
//                   Sono.Call.HoldFailed {held, sip_code, reason}
//   "transfer"      Sono.Call.Transfer {sip_code, reason, done} (our transfer
//                   of the call) and Sono.Call.Referred {target, referred_by,
//                   new_call} (the peer transfers us to new_call)
//   "threeway"      Sono.Call.ThreeWay {calls: [a, b], on}
//   "state"         Sono.Connection.State (the REST transport's first event)
//   "status" only   Sono.Media.Track (WebRTC: the call's audio is playing),
//                   Sono.Media.Closed (its peer connection closed, the call
//                   over), Sono.Media.Failed (ICE or DTLS failed)
//   "closed"        the connection has closed
// Methods return promises; a refused request rejects with a SonoError whose
// `code` is the stable error code (e.g. "Sono.Call.Forbidden").

export const CALL_STATUS = Object.freeze({
  NOT_CONNECTED: 0,
  IN_PROGRESS: 1,
  CONNECTED: 2,
  DISCONNECTING: 3,
  MEDIA: 4,
});

export class SonoError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = "SonoError";
    this.code = code;
    this.sipCode = details.sip_code ?? null;
    this.reason = details.reason ?? null;
    this.status = details.status ?? null;
  }
}

const EVENT_NAMES = {
  "Sono.Call.Status": "call",
  "Sono.Call.Incoming": "incoming",
  "Sono.Registration.Status": "registration",
  "Sono.Call.DTMF": "dtmf",
  "Sono.Call.Held": "hold",
  "Sono.Call.HoldFailed": "hold",
  "Sono.Call.Transfer": "transfer",
  "Sono.Call.Referred": "transfer",
  "Sono.Call.ThreeWay": "threeway",
  "Sono.Connection.State": "state",
  "Sono.Connection.Closed": "closed",
  "Sono.Server.Shutdown": "status",
};

/** The REST API and its event stream. */
class RestTransport {
  constructor(options, emit) {
    this.base = (options.baseUrl ?? "").replace(/\/$/, "");
    this.token = options.token;
    this.connectionId = options.connectionId ?? null;
    this.emit = emit;
    this.source = null;
  }

  async request(method, path, body) {
    const init = {
      method,
      headers: { Authorization: `Bearer ${this.token}` },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`${this.base}/api/v1${path}`, init);
    const json = await response.json().catch(() => ({}));
    if (!response.ok) {
      const e = json.error ?? {};
      throw new SonoError(e.code ?? "http_error", e.message ?? response.statusText, {
        ...e,
        status: response.status,
      });
    }
    return json;
  }

  async connect() {
    if (!this.token) throw new SonoError("missing_token", "the REST transport needs a token");
    if (this.connectionId == null) {
      // A stream key or a token alone: ask which connection it controls.
      const grant = await this.request("GET", "/token");
      if (grant.admin) throw new SonoError("invalid_request", "the admin key needs a connectionId");
      this.connectionId = grant.connection_id;
    }
    const url =
      `${this.base}/api/v1/connections/${this.connectionId}/events` +
      `?access_token=${encodeURIComponent(this.token)}`;
    await new Promise((resolve, reject) => {
      const source = new EventSource(url);
      this.source = source;
      let opened = false;
      for (const code of Object.keys(EVENT_NAMES)) {
        source.addEventListener(code, (e) => {
          let info = {};
          try {
            info = JSON.parse(e.data);
          } catch (_) {
            return;
          }
          if (code === "Sono.Connection.State" && !opened) {
            opened = true;
            resolve();
          }
          this.emit(code, info);
          if (code === "Sono.Connection.Closed") source.close();
        });
      }
      source.onerror = () => {
        if (!opened) {
          source.close();
          // EventSource hides the status: ask the API why.
          this.request("GET", `/connections/${this.connectionId}`).then(
            () => reject(new SonoError("events_failed", "the event stream failed")),
            reject,
          );
        }
      };
    });
    return this.connectionId;
  }

  call(method, args) {
    const id = this.connectionId;
    const post = (path, body) =>
      this.request("POST", `/connections/${id}/${path}`, body).then((r) => r.result);
    // A method about one call names it in the path: /connections/ID/calls/CALL/…
    const on = (call, path) => (call == null ? path : `calls/${call}/${path}`);
    switch (method) {
      case "dial":
        return post("dial", { uri: args[0] });
      case "hangup":
      case "accept":
      case "hold":
      case "unhold":
        return post(on(args[0], method), {});
      case "unregister":
        return post(method, {});
      case "reject":
        return post(on(args[1], "reject"), args[0] ? { code: args[0] } : {});
      case "sendDTMF":
        return post(on(args[1], "dtmf"), { digits: args[0] });
      case "transfer":
        return post(on(args[1], "transfer"), { uri: args[0] });
      case "join":
      case "three_way":
        return post(method, { a: args[0] ?? undefined, b: args[1] ?? undefined });
      case "register":
        return post("register", args[0] ?? {});
      default:
        return Promise.reject(new SonoError("invalid_request", `no method ${method}`));
    }
  }

  state() {
    return this.request("GET", `/connections/${this.connectionId}`);
  }

  close() {
    this.source?.close();
    this.source = null;
  }
}

/**
 * The page's own microphone and speaker over WebRTC (WHIP-like: the SDP offer
 * is POSTed to /api/v1/webrtc, the answer comes back with the session's id
 * and token); the phone itself is driven over REST like any connection.
 */
class WebRtcTransport extends RestTransport {
  constructor(options, emit) {
    super(options, emit);
    // With a connection's token (or stream key), the page's WebRTC audio is
    // attached to that connection; without, it opens a session of its own.
    this.attachTo = options.token ?? null;
    this.token = null;
    this.connectionId = null;
    this.audio = options.audio ?? { echoCancellation: true, noiseSuppression: true };
    // A stream of the page's own (several phones sharing one microphone);
    // the transport then leaves its tracks alone when it closes.
    this.givenStream = options.stream ?? null;
    this.audioElement = options.audioElement ?? null;
    // "g722", "pcmu" or "pcma": offer G.722 or G.711 first (a phone or
    // trunk of that codec then gets the page's audio untouched); Opus
    // otherwise.
    this.codec = options.codec ?? null;
    this.pc = null;
    this.microphone = null;
    this.remoteStream = null;
    this.location = null;
    // The page's calls (ringing or up): the peer connection lasts while
    // there are any. Followed in the events, before the page sees them.
    this.calls = new Set();
    this.opening = null;
    const forward = this.emit;
    this.emit = (code, info) => {
      this.#follow(code, info);
      forward(code, info);
    };
  }

  #follow(code, info) {
    if (code === "Sono.Call.Incoming" && info.call != null) this.calls.add(info.call);
    if (code !== "Sono.Call.Status" || info.call == null) return;
    if (info.status_code !== CALL_STATUS.NOT_CONNECTED) {
      this.calls.add(info.call);
      return;
    }
    this.calls.delete(info.call);
    if (this.calls.size === 0 && this.pc) this.#teardown("Sono.Media.Closed");
  }

  /** Puts `codec` ("g722", "pcmu", "pcma") first in the offer; sono answers with the first it speaks. */
  #prefer(transceiver, codec) {
    const mime = `audio/${codec}`.toLowerCase();
    const codecs = RTCRtpReceiver.getCapabilities?.("audio")?.codecs ?? [];
    const first = codecs.filter((c) => c.mimeType.toLowerCase() === mime);
    if (!first.length || !transceiver.setCodecPreferences) {
      throw new SonoError("invalid_request", `this browser cannot prefer ${codec}`);
    }
    transceiver.setCodecPreferences([...first, ...codecs.filter((c) => c.mimeType.toLowerCase() !== mime)]);
  }

  async connect() {
    await this.#openMedia();
    return super.connect();
  }

  /** dial() and accept() first open the next peer connection, if the last
   *  has closed, and wait for its ICE and DTLS: the call's first words are
   *  not lost. */
  call(method, args) {
    if ((method === "dial" || method === "accept") && !this.pc) {
      this.opening ??= this.#openMedia()
        .then(() => connected(this.pc, 10000))
        .finally(() => (this.opening = null));
      return this.opening.then(() => super.call(method, args));
    }
    return super.call(method, args);
  }

  /** A microphone, a peer connection, and its offer answered by sono: a
   *  new session's, or with a token the next of this session (or media
   *  for the connection the token is of). */
  async #openMedia() {
    if (!this.givenStream && !navigator.mediaDevices?.getUserMedia) {
      throw new SonoError("no_microphone", "this page cannot use a microphone (it needs https or localhost)");
    }
    this.microphone =
      this.givenStream ?? (await navigator.mediaDevices.getUserMedia({ audio: this.audio }));
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    for (const track of this.microphone.getAudioTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [this.microphone] });
      if (this.codec) this.#prefer(transceiver, this.codec);
    }
    pc.ontrack = (e) => {
      this.remoteStream = e.streams[0] ?? new MediaStream([e.track]);
      const el = this.audioElement ?? (this.audioElement = new Audio());
      el.autoplay = true;
      el.srcObject = this.remoteStream;
      el.play?.().catch(() => {});
      this.emit("Sono.Media.Track", { level: "status", code: "Sono.Media.Track" });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") {
        this.emit("Sono.Media.Failed", { level: "error", code: "Sono.Media.Failed" });
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    // sono is ICE-lite: it answers the browser's checks at its one host
    // candidate, so the offer needs none of the browser's candidates.
    const headers = { "Content-Type": "application/sdp" };
    const token = this.token ?? this.attachTo;
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(`${this.base}/api/v1/webrtc`, {
      method: "POST",
      headers,
      body: pc.localDescription.sdp,
    });
    if (!response.ok) {
      const json = await response.json().catch(() => ({}));
      const e = json.error ?? {};
      this.#teardown();
      throw new SonoError(e.code ?? "http_error", e.message ?? response.statusText, {
        ...e,
        status: response.status,
      });
    }
    if (!this.token) {
      this.token = response.headers.get("Sono-Token");
      this.connectionId = Number(response.headers.get("Sono-Connection-Id"));
      this.location = response.headers.get("Location");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    this.emit("Sono.Media.Opened", { level: "status", code: "Sono.Media.Opened" });
  }

  /** Closes the peer connection and releases the microphone; `code`, if
   *  given, tells the page. */
  #teardown(code) {
    if (!this.pc) return;
    this.pc.close();
    this.pc = null;
    if (!this.givenStream) for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = null;
    this.remoteStream = null;
    if (code) this.emit(code, { level: "status", code });
  }

  close() {
    if (this.location && this.token) {
      // keepalive: the DELETE still goes out when the page is being closed.
      fetch(`${this.base}${this.location}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${this.token}` },
        keepalive: true,
      }).catch(() => {});
      this.location = null;
    }
    this.#teardown();
    super.close();
  }
}

/** Resolves once `pc` is connected (ICE and DTLS up), within `ms`. */
function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    if (!pc) return reject(new SonoError("media_failed", "no peer connection"));
    const done = (error) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      if (error) reject(new SonoError("media_failed", error));
      else resolve();
    };
    const check = () => {
      if (pc.connectionState === "connected") done();
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        done(`the peer connection ${pc.connectionState}`);
      }
    };
    const timer = setTimeout(() => done(`the peer connection did not connect within ${ms} ms`), ms);
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

let flashInstances = 0;

/** The invisible flash_phone.swf, reached through ExternalInterface. */
class FlashTransport {
  constructor(options, emit) {
    this.emit = emit;
    this.rtmpUrl = options.rtmpUrl;
    this.swfUrl = options.swfUrl ?? `${(options.baseUrl ?? "").replace(/\/$/, "")}/flash_phone.swf`;
    this.container = options.container ?? document.body;
    this.pending = new Map();
    this.callback = `__sonoFlash${++flashInstances}`;
    this.object = null;
    this.connectionId = null;
    this.token = null;
  }

  onFlashEvent(event) {
    switch (event.type) {
      case "ready":
        this.ready?.();
        break;
      case "netStatus": {
        const info = event.info ?? {};
        if (info.code === "NetConnection.Connect.Success") {
          this.connectionId = info.connection_id ?? null;
          this.token = info.token ?? null;
          this.connected?.resolve(this.connectionId);
        } else if (/^NetConnection\.Connect\.(Failed|Rejected)$/.test(info.code)) {
          this.connected?.reject(new SonoError(info.code, info.description ?? info.code));
        } else if (info.code === "NetConnection.Connect.Closed") {
          this.emit("Sono.Connection.Closed", { level: "status", code: "Sono.Connection.Closed" });
        }
        if (info.code?.startsWith("Sono.")) this.emit(info.code, info);
        break;
      }
      case "result":
      case "error": {
        const waiter = this.pending.get(event.id);
        if (!waiter) break;
        this.pending.delete(event.id);
        if (event.type === "result") waiter.resolve(event.value ?? null);
        else {
          const info = event.info ?? {};
          waiter.reject(new SonoError(info.code ?? "error", info.description ?? "", info));
        }
        break;
      }
    }
  }

  async connect() {
    if (!this.rtmpUrl) throw new SonoError("invalid_request", "the Flash transport needs rtmpUrl");
    window[this.callback] = (event) => {
      // Flash calls in synchronously; let it return before we act.
      setTimeout(() => this.onFlashEvent(event), 0);
    };
    const ready = new Promise((resolve) => (this.ready = resolve));
    const object = document.createElement("object");
    object.type = "application/x-shockwave-flash";
    object.data = this.swfUrl;
    object.width = "1";
    object.height = "1";
    object.style.position = "absolute";
    object.style.left = "-10px";
    for (const [name, value] of [
      ["movie", this.swfUrl],
      ["allowScriptAccess", "always"],
      ["flashvars", `callback=${this.callback}`],
    ]) {
      const p = document.createElement("param");
      p.name = name;
      p.value = value;
      object.appendChild(p);
    }
    this.container.appendChild(object);
    this.object = object;
    await ready;
    const connected = new Promise((resolve, reject) => (this.connected = { resolve, reject }));
    this.object.connect(this.rtmpUrl);
    return connected;
  }

  call(method, args) {
    if (!this.object) return Promise.reject(new SonoError("not_connected", "connect first"));
    const flashArgs =
      method === "register" && args[0]
        ? [args[0].user, args[0].domain, args[0].auth_user, args[0].password, args[0].display_name]
        : args;
    const id = this.object[method](...flashArgs);
    if (!id) return Promise.reject(new SonoError("not_connected", "the Flash phone is not connected"));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  async state() {
    return { id: this.connectionId, transport: "rtmp", connected: this.connectionId != null };
  }

  close() {
    this.object?.close?.();
    this.object?.remove();
    this.object = null;
    delete window[this.callback];
  }
}

/** A phone on one sono connection. */
export class SonoPhone extends EventTarget {
  /**
   * @param {object} options
   *   transport: "rest" (default), "webrtc" or "flash";
   *   baseUrl: sono's HTTP address ("" for the page's own origin);
   *   WebRTC: optionally token (a connection's token or stream key: the
   *     page's audio is attached to that connection), audio (getUserMedia
   *     constraints) or stream (a
   *     MediaStream of the page's, e.g. one microphone for several phones),
   *     audioElement (where the call is played; a new Audio() otherwise),
   *     and codec ("g722", "pcmu" or "pcma": G.722 or G.711 rather than
   *     Opus, for a phone or trunk of that codec, which then gets the
   *     page's audio untouched);
   *   REST: connectionId and token (or a stream key as token);
   *   Flash: rtmpUrl (rtmp:// or rtmpt://), optionally swfUrl and container.
   */
  constructor(options = {}) {
    super();
    const emit = (code, info) => this.#dispatch(code, info);
    this.transportName = options.transport ?? "rest";
    const transports = { flash: FlashTransport, webrtc: WebRtcTransport, rest: RestTransport };
    const Transport = transports[this.transportName];
    if (!Transport) throw new SonoError("invalid_request", `no transport ${this.transportName}`);
    this.transport = new Transport(options, emit);
    this.callStatus = CALL_STATUS.NOT_CONNECTED;
    this.incoming = null;
  }

  #dispatch(code, info) {
    if (code === "Sono.Call.Status") {
      this.callStatus = info.status_code;
      if (info.status_code === CALL_STATUS.NOT_CONNECTED) this.incoming = null;
    }
    if (code === "Sono.Call.Incoming") this.incoming = info;
    this.dispatchEvent(new CustomEvent("status", { detail: { code, ...info } }));
    const name = EVENT_NAMES[code];
    if (name && name !== "status") this.dispatchEvent(new CustomEvent(name, { detail: info }));
  }

  /** Connects (Flash) or attaches to the connection (REST); resolves to its id. */
  connect() {
    return this.transport.connect();
  }

  get connectionId() {
    return this.transport.connectionId;
  }

  /** The token controlling this connection (known once connected). */
  get token() {
    return this.transport.token;
  }

  /** WebRTC: the microphone's stream and the call's (for level meters). */
  get localStream() {
    return this.transport.microphone ?? null;
  }
  get remoteStream() {
    return this.transport.remoteStream ?? null;
  }
  /** WebRTC: the RTCPeerConnection (for statistics). */
  get peerConnection() {
    return this.transport.pc ?? null;
  }

  dial(uri) {
    return this.transport.call("dial", [uri]);
  }
  /** Every call method takes the call's id last (dial's answer and every
   *  event carry it as `call`); without it: the active call (accept and
   *  reject: the ringing one; unhold: the one held last). */
  hangup(call) {
    return this.transport.call("hangup", call == null ? [] : [call]);
  }
  accept(call) {
    return this.transport.call("accept", call == null ? [] : [call]);
  }
  /** Holds the answered call (re-INVITE, a=sendonly); Sono.Call.Held follows. */
  hold(call) {
    return this.transport.call("hold", call == null ? [] : [call]);
  }
  /** Takes the call off hold, and makes it the active one (the active call is held). */
  unhold(call) {
    return this.transport.call("unhold", call == null ? [] : [call]);
  }
  reject(code, call) {
    return this.transport.call("reject", call == null ? [code] : [code ?? null, call]);
  }
  sendDTMF(digits, call) {
    return this.transport.call("sendDTMF", call == null ? [digits] : [digits, call]);
  }
  /** Blind transfer: the call's peer is asked (REFER) to call `uri`; the
   *  call ends once it has. "transfer" events tell how it goes. */
  transfer(uri, call) {
    return this.transport.call("transfer", call == null ? [uri] : [uri, call]);
  }
  /** Attended transfer: call a's peer is put through to call b's (REFER
   *  with Replaces); both calls end. Default: the active call and the other. */
  join(a, b) {
    return this.transport.call("join", [a ?? null, b ?? null]);
  }
  /** Three-way call: the client and the peers of calls a and b hear each
   *  other (a becomes active). Default: the active call and the other. */
  threeWay(a, b) {
    return this.transport.call("three_way", [a ?? null, b ?? null]);
  }
  /** register() for the implicit URI; register({user, domain, auth_user, password, display_name}). */
  register(options) {
    return this.transport.call("register", [options]);
  }
  unregister() {
    return this.transport.call("unregister", []);
  }
  state() {
    return this.transport.state();
  }
  close() {
    this.transport.close();
  }
}
