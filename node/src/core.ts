// The protocol core: crates/node (the Rust `durable_ws_core::server::Endpoint`) compiled to wasm, loaded through
// its wasm-bindgen glue (`--target nodejs`). Everything about durable.v1 is decided there; this package only
// drives it (sockets, timers, randomness, application callbacks).
import type { Endpoint as WasmEndpoint, RateBucket as WasmRateBucket } from "../wasm/durable_ws_node";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const glue = require("../wasm/durable_ws_node.js") as {
  Endpoint: typeof WasmEndpoint;
  RateBucket: typeof WasmRateBucket;
  close_reason(text: string): string;
  close_timeout_ms(): number;
  refusal_code(code: number): number;
  defaults(): Defaults;
  metrics(): MetricSpec[];
  metric_labels(): MetricLabels;
  known_series(): { name: string; values: string[] }[];
};

/** The servers' defaults, the core's (`server::defaults`): the Rust server has the same. */
export interface Defaults {
  sessionTtlMs: number;
  maxSessions: number;
  maxSessionsPerIdentity: number;
  maxProtocolErrors: number;
  maxBufferedBytes: number;
  maxMessageBytes: number;
  maxBufferMessages: number;
  maxBufferBytes: number;
  handshakeTimeoutMs: number;
  shutdownGraceMs: number;
  maxOutgoingBytes: number;
  sendTimeoutMs: number;
  maxMessagesPerSecond: number;
  burst: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}
export const DEFAULTS: Readonly<Defaults> = Object.freeze(glue.defaults());

/** One metric of the servers (`durable_ws_core::server::metrics::ALL`): the Rust server records the same. */
export interface MetricSpec {
  /** The full name (`durable_ws_…`). */
  name: string;
  kind: "counter" | "gauge" | "histogram";
  /** The `# HELP` text. */
  help: string;
  /** The label names, in order. */
  labels: string[];
  /** Upper bounds of a histogram's buckets (empty for the others). */
  buckets: number[];
  /** Recorded only by a server on shared storage (`STORE_ONLY`): not by this one. */
  storeOnly: boolean;
}

/** The metrics' label values (the core's `metrics::{handshake, limit, direction, mode}`), and how this package's names map to them. */
export interface MetricLabels {
  handshake: Record<"NEW" | "RESUMED" | "LOST" | "REFUSED" | "NONE" | "EXPIRED" | "OVERFLOW" | "FOREIGN" | "INVALID" | "OWNER_LIMIT" | "CAPACITY" | "AUTH" | "ORIGIN" | "MALFORMED" | "NOT_DURABLE", string>;
  limit: Record<"CONNECTIONS" | "OWNER_SESSIONS" | "CAPACITY" | "MESSAGE_SIZE" | "SLOW_CLIENT" | "REPLAY_BUFFER", string>;
  direction: Record<"IN" | "OUT", string>;
  mode: Record<"DURABLE" | "PLAIN", string>;
  /** An end reason → the `reason` of `durable_ws_sessions_ended_total`. */
  ended: Record<string, string>;
  /** A WELCOME status → `[outcome, reason]` of `durable_ws_handshakes_total`; `foreign`: when the session asked for is another identity's. */
  welcome: Record<string, [string, string]>;
  foreign: Record<string, [string, string]>;
  /** A refused HELLO's close reason → `[reason of the handshake, limit]`. */
  refused: Record<string, [string, string]>;
}

/** The metrics table of the core (names, kinds, help texts, labels, buckets). */
export const METRIC_SPECS: readonly MetricSpec[] = Object.freeze(glue.metrics());
/** The metrics' label values, from the core. */
export const METRIC_LABELS: Readonly<MetricLabels> = Object.freeze(glue.metric_labels());
/** The labelled series shown at 0 from the start (their label values are known in advance), from the core. */
export const KNOWN_SERIES: readonly { name: string; values: string[] }[] = Object.freeze(glue.known_series());

/** One client's read rate: the core's token bucket (`server::rate`), as the Rust server's. */
export type RateBucket = WasmRateBucket;
export const RateBucket = glue.RateBucket;

export type CoreEndpoint = WasmEndpoint;
export const CoreEndpoint = glue.Endpoint;

/** `text` as a close reason: at most 123 bytes, cut on a character boundary (the core's policy). */
export const closeReason = (text: string): string => glue.close_reason(text);
/** The code an application's refusal closes with: an invalid one becomes 4403 (the core's policy). */
export const refusalCode = (code: number): number => glue.refusal_code(Number.isInteger(code) && code >= 0 && code <= 65535 ? code : 0);
/** How long a closing handshake may take before the connection is dropped (the core's policy). */
export const CLOSE_TIMEOUT_MS = glue.close_timeout_ms();

/** How the connection of a session that ended is closed (the core's policy, `server::policy::Closing`). */
export interface CoreClosing {
  /** `close`: now, with `code`/`reason`; `await`: wait `waitMs` for the client's close, then close; `none`. */
  how: "close" | "await" | "none";
  code: number;
  reason: string;
  waitMs: number;
}

/** What `hello` answers. */
export type CoreHello =
  | { ok: true; session: number; status: WelcomeStatusName; created: boolean; superseded: number; foreign: boolean }
  | { ok: false; code: number; reason: string; retry: boolean };

/** What `handle_message` answers when the message was not taken. */
export interface CoreInputError {
  code: number;
  reason: string;
  notAttached: boolean;
  sessionDropped: boolean;
}

/** A session that ended, as `poll_ended` gives it. */
export interface CoreEnded {
  session: number;
  owner: string | null;
  reason: EndReason;
  attached: number;
  delivered: Array<string | Uint8Array>;
  unconfirmed: Array<[number, string | Uint8Array]>;
  closing: CoreClosing;
}

/** How a session started (the WELCOME status): `new`, or why the session its client asked for was lost. */
export type WelcomeStatusName = "new" | "resumed" | "lost-unknown" | "lost-overflow" | "lost-refused";

/**
 * Why a session ended: the client said goodbye; the server ended it (`session.end()`); it waited longer than the
 * TTL for its client (or was expired on purpose); its client could not keep up (replay buffer overflow, or
 * `session.evict()`); its connections kept breaking the protocol.
 */
export type EndReason = "goodbye" | "closed" | "expired" | "overflow" | "protocol-errors";

/** Monotonic milliseconds, the core's clock. */
export const now = (): number => Math.floor(performance.now());
