// Type declarations of sono.js.

export declare const CALL_STATUS: Readonly<{
  NOT_CONNECTED: 0;
  IN_PROGRESS: 1;
  CONNECTED: 2;
  DISCONNECTING: 3;
  MEDIA: 4;
}>;

export type CallStatusCode = 0 | 1 | 2 | 3 | 4;

/** The info object of an event, as the Flash client gets it with onStatus. */
export interface StatusInfo {
  level: "status";
  code: string;
  connection?: number;
  /** The call an event is about (its id within the connection). */
  call?: number;
  [key: string]: unknown;
}

export interface CallStatusInfo extends StatusInfo {
  status_code: CallStatusCode;
  sip_code?: number;
  reason?: string;
}

export interface IncomingCallInfo extends StatusInfo {
  uri: string;
  display_name: string | null;
}

export interface RegistrationInfo extends StatusInfo {
  registered: boolean;
  uri: string;
  expires: number;
  sip_code?: number;
  reason?: string;
}

export interface DtmfInfo extends StatusInfo {
  digit: string;
}

export interface HoldInfo extends StatusInfo {
  /** Sono.Call.Held: the call's state now; Sono.Call.HoldFailed: what was asked. */
  held: boolean;
  /** Sono.Call.Held: whose hold it is. */
  by?: "client" | "peer";
  sip_code?: number;
  reason?: string;
}

export interface ConnectionState {
  id: number;
  transport: "rtmp" | "rtmps" | "rtmpt" | "webrtc";
  peer?: string;
  connected: boolean;
  app?: string | null;
  implicit_uri?: string | null;
  registration?: { uri: string; registered: boolean } | null;
  call?: {
    direction: "outbound" | "inbound";
    remote_uri: string;
    status: CallStatusCode | null;
    age_seconds: number;
  } | null;
  stream_key?: string | null;
  age_seconds?: number;
}

export interface RegisterOptions {
  user?: string;
  domain?: string;
  auth_user?: string;
  password?: string;
  display_name?: string;
}

export interface SonoPhoneOptions {
  /** "webrtc": the page talks and listens itself; "rest": media from another
   * client; "flash": the invisible Flash phone. */
  transport?: "rest" | "webrtc" | "flash";
  /** sono's HTTP address; "" (the default) is the page's own origin. */
  baseUrl?: string;
  /** REST: the connection's id (optional with a token: asked for). */
  connectionId?: number;
  /** REST: the connection's token, or the stream key it publishes under.
   * WebRTC: a connection to attach the page's audio to (optional). */
  token?: string;
  /** WebRTC: getUserMedia audio constraints (default: echo cancellation and
   * noise suppression on). */
  audio?: MediaTrackConstraints | boolean;
  /** WebRTC: a microphone stream of the page's own instead (left running
   * when the phone closes). */
  stream?: MediaStream;
  /** WebRTC: where the call is played (default: a new Audio()). */
  audioElement?: HTMLAudioElement;
  /** WebRTC: G.722 or G.711 instead of Opus (offered first; sono answers
   * with it): a phone of the same codec gets the page's audio untouched. */
  codec?: "g722" | "pcmu" | "pcma";
  /** Flash: rtmp://, rtmpt:// or rtmps:// URL of sono's application. */
  rtmpUrl?: string;
  swfUrl?: string;
  container?: HTMLElement;
}

export declare class SonoError extends Error {
  readonly code: string;
  readonly sipCode: number | null;
  readonly reason: string | null;
  readonly status: number | null;
}

/** Sono.Call.Transfer (our transfer's progress) or Sono.Call.Referred (the peer transfers us). */
export interface TransferInfo extends StatusInfo {
  sip_code?: number;
  reason?: string;
  done?: boolean;
  target?: string;
  referred_by?: string | null;
  new_call?: number;
}

/** Sono.Call.ThreeWay: calls a and b are (on) or are no longer a three-way call. */
export interface ThreeWayInfo extends StatusInfo {
  calls: [number, number];
  on: boolean;
}

export interface SonoPhoneEventMap {
  status: CustomEvent<StatusInfo>;
  call: CustomEvent<CallStatusInfo>;
  incoming: CustomEvent<IncomingCallInfo>;
  registration: CustomEvent<RegistrationInfo>;
  dtmf: CustomEvent<DtmfInfo>;
  hold: CustomEvent<HoldInfo>;
  transfer: CustomEvent<TransferInfo>;
  threeway: CustomEvent<ThreeWayInfo>;
  state: CustomEvent<ConnectionState>;
  closed: CustomEvent<StatusInfo>;
}

export declare class SonoPhone extends EventTarget {
  constructor(options?: SonoPhoneOptions);
  readonly transportName: "rest" | "webrtc" | "flash";
  readonly connectionId: number | null;
  readonly token: string | null;
  /** WebRTC: the microphone's stream, the call's, and the peer connection.
   * A peer connection lasts a call: null between calls (the microphone is
   * released); dial() and accept() open the next ("status" events
   * Sono.Media.Opened, Sono.Media.Track, Sono.Media.Closed). */
  readonly localStream: MediaStream | null;
  readonly remoteStream: MediaStream | null;
  readonly peerConnection: RTCPeerConnection | null;
  callStatus: CallStatusCode;
  incoming: IncomingCallInfo | null;
  connect(): Promise<number>;
  dial(uri: string): Promise<unknown>;
  /** `call`: the call's id (dial's answer and events carry it); default: the active call. */
  hangup(call?: number): Promise<unknown>;
  /** Default: the ringing call; the active call is held first. */
  accept(call?: number): Promise<unknown>;
  /** Holds the answered call (re-INVITE, a=sendonly). */
  hold(call?: number): Promise<unknown>;
  /** Resumes a held call (default: the one held last) and makes it active. */
  unhold(call?: number): Promise<unknown>;
  reject(code?: number, call?: number): Promise<unknown>;
  sendDTMF(digits: string, call?: number): Promise<unknown>;
  /** Blind transfer of the call's peer to `uri` (REFER); the call ends when it succeeds. */
  transfer(uri: string, call?: number): Promise<unknown>;
  /** Attended transfer: a's peer is put through to b's (REFER with Replaces). */
  join(a?: number, b?: number): Promise<unknown>;
  /** Three-way call: the client and both calls' peers hear each other. */
  threeWay(a?: number, b?: number): Promise<unknown>;
  register(options?: RegisterOptions): Promise<{ uri: string; expires?: number; token: string }>;
  unregister(): Promise<unknown>;
  state(): Promise<ConnectionState>;
  close(): void;
  addEventListener<K extends keyof SonoPhoneEventMap>(
    type: K,
    listener: (event: SonoPhoneEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}
