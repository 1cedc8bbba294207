//! TypeScript declarations of the `DurableWebSocket` class (JavaScript, `src/js/face.js`), its
//! options, events and payloads: the package's `durable_ws.d.ts` with the generated `init`
//! declarations. The `DurableWebSocket` interface (listeners, `on…` handlers) merges with the class.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &str = r#"
/** A value as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The URL (`ws:`, `wss:`, `http:` or `https:`), or a function asked before every connection attempt. */
export type DurableWebSocketUrl = string | (() => string | Promise<string>);

/**
 * What `send` accepts: a string (text message), an `ArrayBuffer` or `ArrayBufferView` (binary
 * message), or any other value `JSON.stringify` can encode (text message of its JSON).
 */
export type DurableWebSocketData = string | ArrayBuffer | ArrayBufferView | number | boolean | null | object;

/** A received message: a string (or, with `json: true`, the parsed value) or an `ArrayBuffer`. */
export type DurableWebSocketMessage = JsonValue | ArrayBuffer;

/**
 * What a `sessionlost` event lists for messages sent as `Out`: as received (`DurableWebSocketMessage`) unless `Out`
 * was narrowed; bytes come back as an `ArrayBuffer`.
 */
export type DurableWebSocketUnconfirmed<Out> = DurableWebSocketData extends Out
  ? DurableWebSocketMessage
  : Out extends ArrayBuffer | ArrayBufferView ? ArrayBuffer : Out;

/** The `name` of every error the socket reports (`send` rejections, `error` events). */
export type DurableWebSocketErrorName =
  | "TooLargeError" | "BufferFullError" | "InvalidStateError" | "SessionLostError" | "ConnectTimeoutError"
  | "HeartbeatTimeoutError" | "ProtocolError" | "RefusedError" | "UrlError" | "SyntaxError" | "PersistError" | "Error";

/** An error of the socket: `reason` on a `SessionLostError`, the close `code` on a `RefusedError`. */
export interface DurableWebSocketError extends Error {
  readonly name: DurableWebSocketErrorName;
  readonly reason?: DurableSessionLostReason;
  readonly code?: number;
}

/** Reconnect policy: attempt `n` waits a random time in `[minDelayMs, min(maxDelayMs, minDelayMs·factorⁿ)]`. */
export interface DurableWebSocketReconnectOptions {
  /** Shortest delay. Default 250. */
  minDelayMs?: number;
  /** Longest delay. Default 30000. */
  maxDelayMs?: number;
  /** Growth per failed attempt, at least 1. Default 2. */
  factor?: number;
  /** Full jitter (random delays); off: exactly `min(maxDelayMs, minDelayMs·factorⁿ⁻¹)`. Default true. */
  jitter?: boolean;
  /** Consecutive failed attempts before giving up (a positive integer). Default Infinity. */
  maxAttempts?: number;
  /**
   * A connection up this long resets the attempt count. Default 5000. (A connection whose handshake went through and
   * whose link then broke resets it too, however short it lived: a flaky link stays at the first delay.)
   */
  stableAfterMs?: number;
}

/** Heartbeat: a ping every `intervalMs`; no answer within `timeoutMs` means the link is dead. */
export interface DurableWebSocketHeartbeatOptions {
  /** Default 15000. */
  intervalMs?: number;
  /** Default 10000. */
  timeoutMs?: number;
}

/** Bounds of the replay buffer (sent or queued, not yet acknowledged). */
export interface DurableWebSocketBufferOptions {
  /** Default 10000. */
  maxMessages?: number;
  /** Default 8 MiB. */
  maxBytes?: number;
  /** Largest single message, sent or received. Default 1 MiB. */
  maxMessageBytes?: number;
}

/** Options of `new DurableWebSocket(url, options)`; unknown keys throw a `TypeError`. */
export interface DurableWebSocketOptions {
  reconnect?: DurableWebSocketReconnectOptions;
  /** From starting an attempt to an open, handshaken connection. Default 10000. */
  connectTimeoutMs?: number;
  /** How long `close()` waits for outstanding acknowledgements. Default 2000. */
  closeTimeoutMs?: number;
  /** `false` turns the heartbeat off. */
  heartbeat?: DurableWebSocketHeartbeatOptions | false;
  buffer?: DurableWebSocketBufferOptions;
  /** Subprotocols offered after `durable.v1`. Default []. */
  protocols?: string[];
  /** Close codes (or inclusive `[from, to]` ranges) from the server that stop reconnecting. Default [1003, [1007, 1010], [4400, 4499]]. */
  terminalCloseCodes?: Array<number | [number, number]>;
  /** Every non-binary message is JSON both ways (strings too). Default false. */
  json?: boolean;
  /**
   * Persist the session under this name (1–200 characters, unique within the origin): it outlives the page. After a
   * reload, a closed tab, a crashed renderer or a killed browser, the next page that opens the name resumes it and
   * sends what the previous one left unconfirmed. One page drives a name at a time; another waits for it.
   * Default: not persisted.
   */
  persist?: string;
  /**
   * The `WebSocket` constructor to use where the runtime has none (Node 20: `import { WebSocket } from "ws"`), or
   * instead of the global one. Default: `globalThis.WebSocket`.
   */
  WebSocket?: new (url: string, protocols: string[]) => unknown;
}

/** Counters since the socket was created. */
export interface DurableWebSocketStats {
  sent: number;
  acked: number;
  pending: number;
  replayed: number;
  received: number;
  duplicates: number;
  reconnects: number;
  sessionsLost: number;
  /** With `persist`: messages sent and not yet durably stored. */
  unstored: number;
  lastRttMs: number | null;
}

/** A connection opened on a new session (`durable: false`: the server does not speak durable.v1). */
export interface DurableOpenEvent extends Event { readonly durable: boolean; }
/** A message, delivered exactly once and in order. */
export interface DurableMessageEvent<In = DurableWebSocketMessage> extends Event { readonly data: In; }
/** The connection dropped; attempt `attempt` starts in `delayMs`. */
export interface DurableReconnectingEvent extends Event { readonly attempt: number; readonly delayMs: number; }
/** The session continued on a new connection; `replayed` messages were sent again. */
export interface DurableResumedEvent extends Event { readonly replayed: number; }
/** Why a session could not continue. */
export type DurableSessionLostReason = "expired" | "overflow" | "refused" | "notDurable" | "closed" | "storage";
/**
 * The session could not continue: `unconfirmed` lists, in order, every message never acknowledged. (Some may have
 * reached the server: re-send them with an idempotency key, as README.md shows.)
 */
export interface DurableSessionLostEvent<Unconfirmed = DurableWebSocketMessage> extends Event {
  readonly reason: DurableSessionLostReason;
  readonly unconfirmed: Unconfirmed[];
}
/** A persisted session's messages became safe from a killed browser: all but the last `unstored` messages sent are durably stored or confirmed by the server. */
export interface DurableStoredEvent extends Event { readonly unstored: number; }
/** The count of messages sent and not yet acknowledged changed (at most one event per task): `pending` is the new count. */
export interface DurablePendingEvent extends Event { readonly pending: number; }
/** A connection closed; `willReconnect: false` means for good. */
export interface DurableCloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  readonly willReconnect: boolean;
}
/** Something failed; `error.name` says what (`ConnectTimeoutError`, `HeartbeatTimeoutError`, `ProtocolError`, `RefusedError`, `UrlError`, `PersistError` — the session goes on in memory —, or a `SyntaxError` with the raw text in `data` in JSON mode). */
export interface DurableErrorEvent extends Event {
  readonly error: DurableWebSocketError;
  readonly message: string;
  readonly data?: string;
}

/** The events of a `DurableWebSocket<In, Out>`. */
export interface DurableWebSocketEventMap<In = DurableWebSocketMessage, Out = DurableWebSocketData> {
  open: DurableOpenEvent;
  message: DurableMessageEvent<In>;
  reconnecting: DurableReconnectingEvent;
  resumed: DurableResumedEvent;
  sessionlost: DurableSessionLostEvent<DurableWebSocketUnconfirmed<Out>>;
  close: DurableCloseEvent;
  error: DurableErrorEvent;
  stored: DurableStoredEvent;
  pending: DurablePendingEvent;
}

export interface DurableWebSocket<In = DurableWebSocketMessage, Out extends DurableWebSocketData = DurableWebSocketData> {
  addEventListener<K extends keyof DurableWebSocketEventMap<In, Out>>(
    type: K,
    listener: (event: DurableWebSocketEventMap<In, Out>[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof DurableWebSocketEventMap<In, Out>>(
    type: K,
    listener: (event: DurableWebSocketEventMap<In, Out>[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
  onopen: ((event: DurableOpenEvent) => unknown) | null;
  onmessage: ((event: DurableMessageEvent<In>) => unknown) | null;
  onreconnecting: ((event: DurableReconnectingEvent) => unknown) | null;
  onresumed: ((event: DurableResumedEvent) => unknown) | null;
  onsessionlost: ((event: DurableSessionLostEvent<DurableWebSocketUnconfirmed<Out>>) => unknown) | null;
  onclose: ((event: DurableCloseEvent) => unknown) | null;
  onerror: ((event: DurableErrorEvent) => unknown) | null;
  onstored: ((event: DurableStoredEvent) => unknown) | null;
  onpending: ((event: DurablePendingEvent) => unknown) | null;
}
/**
 * A WebSocket that reconnects, resumes its session and never silently loses a message. `In` types what arrives
 * (`event.data`; with `json: true`, the parsed value as your protocol defines it), `Out` what `send` takes: types
 * only, nothing is checked at run time.
 */
export class DurableWebSocket<In = DurableWebSocketMessage, Out extends DurableWebSocketData = DurableWebSocketData> {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Closes for good: waits up to `closeTimeoutMs` for outstanding acknowledgements, says
     * goodbye and closes with `code` (1000 or 3000–4999, default 1000) and `reason` (at most
     * 123 UTF-8 bytes). Messages still unconfirmed are listed by a `sessionlost` event.
     */
    close(code?: number | null, reason?: string | null): void;
    /**
     * Starts connecting to `url` (a string, or a function returning a string or a promise of
     * one, called before every attempt). Throws a `TypeError` for invalid arguments.
     */
    constructor(url: DurableWebSocketUrl, options?: DurableWebSocketOptions | null);
    /**
     * Reconnects now instead of waiting for the backoff delay (also after `maxAttempts`).
     */
    reconnect(): void;
    /**
     * Sends `data` (queued while disconnected). The promise resolves once the server
     * acknowledged it and rejects with a `BufferFullError`, `TooLargeError`, `InvalidStateError`
     * (closed) or, if the session is lost first, a `SessionLostError`.
     */
    send(data: Out): Promise<void>;
    /**
     * Counters since the socket was created.
     */
    stats(): DurableWebSocketStats;
    /**
     * Messages sent or queued and not yet acknowledged.
     */
    readonly pending: number;
    /**
     * With `persist`: messages sent and not yet durably stored (0 without).
     */
    readonly unstored: number;
    /**
     * `0` connecting (or waiting to reconnect, or offline), `1` open, `2` closing, `3` closed.
     */
    readonly readyState: number;
    /**
     * The current durable session's token as 32 hex digits, or `undefined` before the first
     * handshake (and in plain mode). It is a credential: pass it only to tools that need it,
     * such as the reference server's `/admin` fault endpoints.
     */
    readonly sessionToken: string | undefined;
}
"#;
