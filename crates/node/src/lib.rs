//! The server role of durable-ws ([`durable_ws_core::server::Endpoint`]) for JavaScript: the
//! protocol logic of the Node.js package `durable-ws-server`, compiled to wasm with
//! wasm-bindgen (`--target nodejs`). Nothing here does I/O or reads a clock: the TypeScript
//! driver passes the time (ms, monotonic) and fresh random tokens in, and writes the frames out.
//!
//! Sessions and connections are numbers (`f64`, exact up to 2⁵³). Values that JS gets back:
//! - `hello` → `{ ok: true, session, status, created, superseded, foreign }`,
//!   `{ ok: false, code, reason, retry }` (`retry`: the fresh token was in use, draw another);
//! - `handle_message` → `undefined`, or `{ code, reason, notAttached, sessionDropped }`;
//! - `poll_event` → `undefined` (none), a string (text message), a `Uint8Array` (binary
//!   message), a number ≥ 0 (acknowledged up to that seq), or -1 (heartbeat: the link is dead);
//! - `poll_ended` → `undefined`, or `{ session, owner, reason, attached, delivered, unconfirmed, closing }`,
//!   `closing` saying how the attached connection is closed (`{ how: "close" | "await" | "none", code,
//!   reason, waitMs }`, the core's [`server::policy`]);
//! - sends → the sequence number (> 0), or -1 too large, -2 buffer full, -3 session gone.
#![forbid(unsafe_code)]

use std::sync::Arc;

use durable_ws_core::frame::Frame;
use durable_ws_core::server::policy::{self, Closing};
use durable_ws_core::server::{self, metrics, EndReason, EndpointConfig, InputError, Refused, ServerEvent, SessionId};
use durable_ws_core::{
    close_code, BufferLimits, HeartbeatConfig, Payload, PayloadRef, SendError, SessionConfig, Token, WelcomeStatus,
};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

/// Who owns a session: an identity name, or anonymous (`None`: not counted per owner).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Owner(Option<String>);

impl server::Owner for Owner {
    fn has_quota(&self) -> bool {
        self.0.is_some()
    }
}

/// Send results that are not a sequence number.
const TOO_LARGE: f64 = -1.0;
const BUFFER_FULL: f64 = -2.0;
const GONE: f64 = -3.0;

/// The largest byte budget a wasm32 `usize` counts safely (a payload added to it cannot wrap).
const MAX_BUDGET: f64 = (u32::MAX - (64 << 20)) as f64;

/// The server role over an in-memory store of sessions.
#[wasm_bindgen]
pub struct Endpoint {
    inner: server::Endpoint<Owner>,
    /// Scratch for one frame.
    frame: Vec<u8>,
    /// Frames for one `transmit` call.
    batch: Vec<u8>,
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

fn payload_value(payload: &Payload) -> JsValue {
    match payload {
        Payload::Text(text) => JsValue::from_str(text),
        Payload::Binary(bytes) => Uint8Array::from(bytes.as_slice()).into(),
    }
}

fn id(value: f64) -> SessionId {
    SessionId(value as u64)
}

fn millis(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

fn opt(value: Option<u64>) -> f64 {
    value.map_or(-1.0, |v| v as f64)
}

fn status_name(status: WelcomeStatus) -> &'static str {
    match status {
        WelcomeStatus::New => "new",
        WelcomeStatus::Resumed => "resumed",
        WelcomeStatus::LostUnknown => "lost-unknown",
        WelcomeStatus::LostOverflow => "lost-overflow",
        WelcomeStatus::LostRefused => "lost-refused",
    }
}

fn reason_name(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Goodbye => "goodbye",
        EndReason::Closed => "closed",
        EndReason::Expired => "expired",
        EndReason::Overflow => "overflow",
        EndReason::ProtocolErrors => "protocol-errors",
        // Only with shared storage, which the Node.js server does not have.
        EndReason::Moved => "moved",
    }
}

/// A refused session's close reason, and its `reason` in the handshake metric and `limit` in the
/// limit metric (as the Rust server records them).
fn refusal(refused: Refused) -> (&'static str, &'static str, &'static str) {
    use metrics::{handshake, limit};
    match refused {
        Refused::OwnerQuota => ("too many sessions for this identity", handshake::OWNER_LIMIT, limit::OWNER_SESSIONS),
        Refused::Budget => ("server busy: buffer budget spent", handshake::CAPACITY, limit::CAPACITY),
        _ => ("too many sessions", handshake::CAPACITY, limit::CAPACITY),
    }
}

fn send_result(result: Result<u64, SendError>) -> f64 {
    match result {
        Ok(seq) => seq as f64,
        Err(SendError::TooLarge { .. }) => TOO_LARGE,
        Err(SendError::BufferFull { .. }) => BUFFER_FULL,
        Err(SendError::Closed) => GONE,
    }
}

fn closing_value(closing: Closing) -> Object {
    let object = Object::new();
    let (how, code, reason, wait_ms) = match closing {
        Closing::Close { code, reason } => ("close", code, reason, 0),
        Closing::AwaitClient { wait_ms, code, reason } => ("await", code, reason, wait_ms),
        Closing::Nothing => ("none", 0, "", 0),
    };
    set(&object, "how", how);
    set(&object, "code", code);
    set(&object, "reason", reason);
    set(&object, "waitMs", wait_ms as f64);
    object
}

/// `text` as a close reason: at most 123 bytes, cut on a character boundary.
#[wasm_bindgen]
pub fn close_reason(text: &str) -> String {
    policy::close_reason(text).to_owned()
}

/// The code an application's refusal closes with (an invalid one becomes 4403).
#[wasm_bindgen]
pub fn refusal_code(code: u16) -> u16 {
    policy::refusal_code(code)
}

/// How long a closing handshake may take before the connection is dropped (ms).
#[wasm_bindgen]
pub fn close_timeout_ms() -> f64 {
    policy::CLOSE_TIMEOUT_MS as f64
}

/// The servers' defaults ([`server::defaults`], the heartbeat's and the buffer's), by the names of
/// the TypeScript options.
#[wasm_bindgen]
pub fn defaults() -> JsValue {
    use server::defaults as d;
    let object = Object::new();
    let heartbeat = HeartbeatConfig::default();
    let buffer = BufferLimits::default();
    for (key, value) in [
        ("sessionTtlMs", d::SESSION_TTL_MS as f64),
        ("maxSessions", d::MAX_SESSIONS as f64),
        ("maxSessionsPerIdentity", d::MAX_SESSIONS_PER_IDENTITY as f64),
        ("maxProtocolErrors", d::MAX_PROTOCOL_ERRORS as f64),
        ("maxBufferedBytes", d::MAX_BUFFERED_BYTES as f64),
        ("maxMessageBytes", d::MAX_MESSAGE_BYTES as f64),
        ("maxBufferMessages", buffer.max_messages as f64),
        ("maxBufferBytes", buffer.max_bytes as f64),
        ("handshakeTimeoutMs", d::HANDSHAKE_TIMEOUT_MS as f64),
        ("shutdownGraceMs", d::SHUTDOWN_GRACE_MS as f64),
        ("maxOutgoingBytes", d::MAX_OUTGOING_BYTES as f64),
        ("sendTimeoutMs", d::SEND_TIMEOUT_MS as f64),
        ("maxMessagesPerSecond", d::MAX_MESSAGES_PER_SECOND as f64),
        ("burst", d::BURST as f64),
        ("heartbeatIntervalMs", heartbeat.interval_ms as f64),
        ("heartbeatTimeoutMs", heartbeat.timeout_ms as f64),
    ] {
        set(&object, key, value);
    }
    object.into()
}

/// One client's read rate ([`server::rate::Bucket`], the Rust server's): `take(now)` for every frame
/// read (pings and pongs too), the milliseconds to pause reading (0: none).
#[wasm_bindgen]
pub struct RateBucket(server::rate::Bucket);

#[wasm_bindgen]
impl RateBucket {
    /// A full bucket: `rate` frames per second, `burst` above it, at `now` (ms).
    #[wasm_bindgen(constructor)]
    pub fn new(rate: u32, burst: u32, now: f64) -> RateBucket {
        RateBucket(server::rate::Bucket::new(rate, burst, now))
    }

    /// Takes a token for a frame read at `now`: how long to pause reading (0: not at all).
    pub fn take(&mut self, now: f64) -> f64 {
        self.0.take(now).map_or(0.0, |wait| wait as f64)
    }
}

/// The servers' metrics ([`metrics::ALL`], the Rust server's names, kinds, help texts, labels and
/// buckets), for the Node.js server's registry: `[{ name, kind, help, labels, buckets, storeOnly }]`
/// (`storeOnly`: recorded only by a server on shared storage, [`metrics::STORE_ONLY`]).
#[wasm_bindgen]
pub fn metrics() -> JsValue {
    let list: Array = metrics::ALL
        .iter()
        .map(|metric| {
            let object = Object::new();
            set(&object, "name", metric.name);
            set(&object, "kind", metric.kind.as_str());
            set(&object, "help", metric.help);
            set(&object, "labels", metric.labels.iter().map(|label| JsValue::from_str(label)).collect::<Array>());
            set(&object, "buckets", metric.buckets.iter().map(|&bound| JsValue::from_f64(bound)).collect::<Array>());
            set(&object, "storeOnly", metrics::STORE_ONLY.contains(metric));
            object
        })
        .collect();
    list.into()
}

/// The series shown at 0 from the start ([`metrics::known_series`]): `[{ name, values }]`, the
/// label values in the metric's label order.
#[wasm_bindgen]
pub fn known_series() -> JsValue {
    let list: Array = metrics::known_series()
        .into_iter()
        .map(|(metric, labels)| {
            let object = Object::new();
            set(&object, "name", metric.name);
            set(&object, "values", labels.iter().map(|(_, value)| JsValue::from_str(value)).collect::<Array>());
            object
        })
        .collect();
    list.into()
}

/// The metrics' label values ([`metrics`](mod@metrics)'s modules, by their constants' names: `handshake`,
/// `limit`, `direction`, `mode`), and, by the names this crate gives JavaScript, the labels the
/// Rust server records for the same events: `ended` (end reason → `reason`), `welcome` and
/// `foreign` (WELCOME status → `[outcome, reason]`, the latter when the session asked for
/// belongs to another identity), `refused` (a refused `hello`'s reason → `[reason, limit]`).
#[wasm_bindgen]
pub fn metric_labels() -> JsValue {
    use metrics::{direction, handshake as h, limit as l, mode};
    let table = |pairs: &[(&str, &str)]| {
        let object = Object::new();
        for &(key, value) in pairs {
            set(&object, key, value);
        }
        object
    };
    let pair = |(a, b): (&str, &str)| -> JsValue { Array::of2(&JsValue::from_str(a), &JsValue::from_str(b)).into() };
    let object = Object::new();
    set(
        &object,
        "handshake",
        table(&[
            ("NEW", h::NEW),
            ("RESUMED", h::RESUMED),
            ("LOST", h::LOST),
            ("REFUSED", h::REFUSED),
            ("NONE", h::NONE),
            ("EXPIRED", h::EXPIRED),
            ("OVERFLOW", h::OVERFLOW),
            ("FOREIGN", h::FOREIGN),
            ("INVALID", h::INVALID),
            ("OWNER_LIMIT", h::OWNER_LIMIT),
            ("CAPACITY", h::CAPACITY),
            ("AUTH", h::AUTH),
            ("ORIGIN", h::ORIGIN),
            ("MALFORMED", h::MALFORMED),
            ("NOT_DURABLE", h::NOT_DURABLE),
        ]),
    );
    set(
        &object,
        "limit",
        table(&[
            ("CONNECTIONS", l::CONNECTIONS),
            ("OWNER_SESSIONS", l::OWNER_SESSIONS),
            ("CAPACITY", l::CAPACITY),
            ("MESSAGE_SIZE", l::MESSAGE_SIZE),
            ("SLOW_CLIENT", l::SLOW_CLIENT),
            ("REPLAY_BUFFER", l::REPLAY_BUFFER),
        ]),
    );
    set(&object, "direction", table(&[("IN", direction::IN), ("OUT", direction::OUT)]));
    set(&object, "mode", table(&[("DURABLE", mode::DURABLE), ("PLAIN", mode::PLAIN)]));
    let ended = Object::new();
    for reason in EndReason::ALL {
        set(&ended, reason_name(reason), metrics::end_reason(reason));
    }
    set(&object, "ended", ended);
    let (welcome, foreign) = (Object::new(), Object::new());
    for status in WelcomeStatus::ALL {
        set(&welcome, status_name(status), pair(metrics::handshake_outcome(status, false)));
        set(&foreign, status_name(status), pair(metrics::handshake_outcome(status, true)));
    }
    set(&object, "welcome", welcome);
    set(&object, "foreign", foreign);
    let refused = Object::new();
    for kind in [Refused::Full, Refused::OwnerQuota, Refused::Budget] {
        let (reason, handshake, limit) = refusal(kind);
        set(&refused, reason, pair((handshake, limit)));
    }
    set(&object, "refused", refused);
    object.into()
}

#[wasm_bindgen]
impl Endpoint {
    /// An endpoint with these limits (see the TypeScript `ServerOptions` for each one).
    /// `heartbeat_interval_ms` 0 turns the heartbeat off.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(constructor)]
    pub fn new(
        ttl_ms: f64,
        max_sessions: u32,
        max_sessions_per_owner: u32,
        max_protocol_errors: u32,
        max_buffered_bytes: f64,
        max_message_bytes: u32,
        max_buffer_messages: u32,
        max_buffer_bytes: f64,
        heartbeat_interval_ms: f64,
        heartbeat_timeout_ms: f64,
    ) -> Endpoint {
        let max_message_bytes = max_message_bytes as usize;
        let heartbeat = (heartbeat_interval_ms > 0.0).then(|| HeartbeatConfig {
            interval_ms: millis(heartbeat_interval_ms),
            timeout_ms: millis(heartbeat_timeout_ms).max(1),
        });
        let limits = BufferLimits {
            max_messages: (max_buffer_messages as usize).max(1),
            max_bytes: (max_buffer_bytes.min(MAX_BUDGET) as usize).max(max_message_bytes),
        };
        let config = EndpointConfig {
            session: SessionConfig { limits, max_message_bytes, heartbeat, ..SessionConfig::default() },
            ttl_ms: millis(ttl_ms),
            max_sessions: max_sessions as usize,
            max_sessions_per_owner: max_sessions_per_owner as usize,
            max_protocol_errors: max_protocol_errors.max(1),
            max_buffered_bytes: max_buffered_bytes.clamp(0.0, MAX_BUDGET) as usize,
        };
        Endpoint { inner: server::Endpoint::new(config), frame: Vec::new(), batch: Vec::new() }
    }

    /// Answers the first frame of connection `conn` (of identity `owner`, `undefined` for
    /// anonymous), with `fresh` (16 random bytes) as the token of a new session.
    pub fn hello(&mut self, now: f64, conn: f64, owner: Option<String>, first: &[u8], fresh: &[u8]) -> JsValue {
        let result = Object::new();
        let refuse = |code: u16, reason: String, retry: bool| {
            set(&result, "ok", false);
            set(&result, "code", code);
            set(&result, "reason", reason);
            set(&result, "retry", retry);
            result.clone().into()
        };
        let resume = match Frame::decode(first) {
            Ok(Frame::Hello { resume }) => resume,
            Ok(_) => return refuse(close_code::PROTOCOL_ERROR, "first frame must be hello".into(), false),
            Err(error) => return refuse(close_code::PROTOCOL_ERROR, format!("malformed hello: {error}"), false),
        };
        let Ok(fresh) = <[u8; 16]>::try_from(fresh) else {
            return refuse(close_code::INTERNAL_ERROR, "no randomness".into(), false);
        };
        match self.inner.hello(millis(now), conn as u64, Owner(owner), resume, Token(fresh)) {
            Ok(accepted) => {
                set(&result, "ok", true);
                set(&result, "session", accepted.id.0 as f64);
                set(&result, "status", status_name(accepted.status));
                set(&result, "created", accepted.created);
                set(&result, "superseded", opt(accepted.superseded));
                set(&result, "foreign", accepted.foreign);
                result.into()
            }
            Err(Refused::TokenInUse) => refuse(close_code::TRY_AGAIN_LATER, "token in use".into(), true),
            Err(refused) => refuse(close_code::TRY_AGAIN_LATER, refusal(refused).0.into(), false),
        }
    }

    /// A message arrived on connection `conn` of session `session` (`text`: a WebSocket text
    /// message, already checked as UTF-8 by the WebSocket layer).
    pub fn handle_message(&mut self, now: f64, session: f64, conn: f64, data: &[u8], text: bool) -> JsValue {
        let payload = if text {
            match std::str::from_utf8(data) {
                Ok(text) => PayloadRef::Text(text),
                Err(_) => {
                    let error = Object::new();
                    set(&error, "code", close_code::INVALID_PAYLOAD);
                    set(&error, "reason", "invalid UTF-8 in a text message");
                    set(&error, "notAttached", false);
                    set(&error, "sessionDropped", false);
                    return error.into();
                }
            }
        } else {
            PayloadRef::Binary(data)
        };
        match self.inner.handle_message(millis(now), id(session), conn as u64, payload) {
            Ok(()) => JsValue::UNDEFINED,
            Err(InputError::NotAttached) => {
                let error = Object::new();
                set(&error, "code", close_code::PROTOCOL_ERROR);
                set(&error, "reason", "connection not attached to the session");
                set(&error, "notAttached", true);
                set(&error, "sessionDropped", false);
                error.into()
            }
            Err(InputError::Protocol { error, session_dropped }) => {
                let suffix = if session_dropped { "; session dropped after repeated protocol errors" } else { "" };
                let object = Object::new();
                set(&object, "code", error.close_code());
                set(&object, "reason", format!("{error}{suffix}"));
                set(&object, "notAttached", false);
                set(&object, "sessionDropped", session_dropped);
                object.into()
            }
        }
    }

    /// The next frames to write on connection `conn` of session `session`, at most about
    /// `max_bytes` of them: each as a 4-byte little-endian length and the frame; `undefined`
    /// when there is nothing to write.
    pub fn transmit(&mut self, now: f64, session: f64, conn: f64, max_bytes: f64) -> Option<Vec<u8>> {
        let now = millis(now);
        let (session, conn) = (id(session), conn as u64);
        self.batch.clear();
        while (self.batch.len() as f64) < max_bytes {
            if self.inner.poll_transmit(now, session, conn, &mut self.frame).is_none() {
                break;
            }
            self.batch.extend_from_slice(&(self.frame.len() as u32).to_le_bytes());
            self.batch.extend_from_slice(&self.frame);
        }
        (!self.batch.is_empty()).then(|| self.batch.clone())
    }

    /// The next event of session `session` (see the crate documentation for its encoding).
    pub fn poll_event(&mut self, session: f64) -> JsValue {
        match self.inner.poll_event(id(session)) {
            None => JsValue::UNDEFINED,
            Some(ServerEvent::Message(payload)) => payload_value(&payload),
            Some(ServerEvent::Acked { seq }) => JsValue::from_f64(seq as f64),
            Some(ServerEvent::Dead) => JsValue::from_f64(-1.0),
        }
    }

    /// When `handle_session_timeout` is next due for `session` (-1: not while detached or idle).
    pub fn timeout(&self, session: f64) -> f64 {
        opt(self.inner.timeout(id(session)))
    }

    /// Time reached `session`'s deadline, on connection `conn`.
    pub fn handle_session_timeout(&mut self, now: f64, session: f64, conn: f64) {
        self.inner.handle_session_timeout(millis(now), id(session), conn as u64);
    }

    /// Queues a text message for `session`'s client.
    pub fn send_text(&mut self, now: f64, session: f64, text: String) -> f64 {
        send_result(self.inner.send(millis(now), id(session), Payload::Text(text)))
    }

    /// Queues a binary message for `session`'s client.
    pub fn send_binary(&mut self, now: f64, session: f64, bytes: Vec<u8>) -> f64 {
        send_result(self.inner.send(millis(now), id(session), Payload::Binary(bytes)))
    }

    /// Sends one text message to every session of `sessions`, in that order, with one copy in
    /// memory (see `broadcast`).
    pub fn broadcast_text(&mut self, now: f64, sessions: &[f64], text: String, evict_full: bool) -> Option<Vec<f64>> {
        self.broadcast(millis(now), sessions, Payload::Text(text), evict_full)
    }

    /// Like `broadcast_text`, for bytes.
    pub fn broadcast_binary(
        &mut self,
        now: f64,
        sessions: &[f64],
        bytes: Vec<u8>,
        evict_full: bool,
    ) -> Option<Vec<f64>> {
        self.broadcast(millis(now), sessions, Payload::Binary(bytes), evict_full)
    }

    /// Whether `send` would take `len` bytes for `session` now.
    pub fn has_room(&self, session: f64, len: f64) -> bool {
        self.inner.has_room(id(session), len as usize)
    }

    /// Payload bytes held in all replay buffers together.
    pub fn buffered_bytes(&self) -> f64 {
        self.inner.buffered_bytes() as f64
    }

    /// Messages held in all replay buffers together (sent or queued, not yet acknowledged).
    pub fn buffered_messages(&self) -> f64 {
        self.inner.ids().into_iter().filter_map(|id| self.inner.stats(id)).map(|stats| stats.pending as f64).sum()
    }

    /// The newest of `session`'s own messages ever transmitted (0 before the first; -1: no such
    /// session).
    pub fn highest_sent(&self, session: f64) -> f64 {
        opt(self.inner.sequence(id(session)).map(|sequence| sequence.sent))
    }

    /// The application ends `session`: a goodbye after what is queued.
    pub fn goodbye(&mut self, now: f64, session: f64) {
        self.inner.goodbye(millis(now), id(session));
    }

    /// Connection `conn` is gone; if it drove `session`, the session waits for a resume.
    pub fn detach(&mut self, now: f64, session: f64, conn: f64) {
        self.inner.detach(millis(now), id(session), conn as u64);
    }

    /// Ends `session` for `reason` ("expired", "overflow", "closed"); false if not held.
    pub fn end(&mut self, now: f64, session: f64, reason: &str) -> bool {
        let reason = match reason {
            "overflow" => EndReason::Overflow,
            "closed" => EndReason::Closed,
            _ => EndReason::Expired,
        };
        self.inner.end(millis(now), id(session), reason)
    }

    /// The next session that ended (see the crate documentation).
    pub fn poll_ended(&mut self) -> JsValue {
        let Some(ended) = self.inner.poll_ended() else { return JsValue::UNDEFINED };
        let object = Object::new();
        set(&object, "session", ended.id.0 as f64);
        set(&object, "owner", ended.owner.0.map_or(JsValue::NULL, |name| JsValue::from_str(&name)));
        set(&object, "reason", reason_name(ended.reason));
        set(&object, "attached", opt(ended.attached));
        let delivered: Array = ended.delivered.iter().map(payload_value).collect();
        set(&object, "delivered", delivered);
        let unconfirmed: Array = ended
            .unconfirmed
            .iter()
            .map(|(seq, payload)| -> JsValue {
                Array::of2(&JsValue::from_f64(*seq as f64), &payload_value(payload)).into()
            })
            .collect();
        set(&object, "unconfirmed", unconfirmed);
        set(&object, "closing", closing_value(policy::on_session_end(ended.reason)));
        object.into()
    }

    /// When `handle_timeout` is next due (-1: nothing to expire).
    pub fn poll_timeout(&self) -> f64 {
        opt(self.inner.poll_timeout())
    }

    /// Expires sessions detached for longer than the TTL, and old tombstones.
    pub fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(millis(now));
    }

    /// Sessions held.
    pub fn len(&self) -> u32 {
        self.inner.len() as u32
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The connection attached to `session` (-1: none, or no such session).
    pub fn attached(&self, session: f64) -> f64 {
        opt(self.inner.record(id(session)).and_then(|record| record.attached))
    }

    /// `session`'s token as 32 hex digits (a credential: for fault endpoints, never logs).
    pub fn token_hex(&self, session: f64) -> Option<String> {
        self.inner.record(id(session)).map(|record| record.token.to_hex())
    }

    /// The session holding the token `hex` (32 hex digits); -1 if none.
    pub fn find(&self, hex: &str) -> f64 {
        Token::from_hex(hex).and_then(|token| self.inner.find(&token)).map_or(-1.0, |id| id.0 as f64)
    }

    /// `session`'s counters: `[sent, acked, pending, replayed, received, duplicatesDropped]`.
    pub fn stats(&self, session: f64) -> Option<Vec<f64>> {
        self.inner.stats(id(session)).map(|s| {
            vec![
                s.sent as f64,
                s.acked as f64,
                s.pending as f64,
                s.replayed as f64,
                s.received as f64,
                s.duplicates_dropped as f64,
            ]
        })
    }
}

impl Endpoint {
    /// One payload for many sessions, as the Rust server's rooms do: the server's budget is all
    /// or nothing (`None`: nothing sent), and a member whose own buffer is full is ended for
    /// overflow when `evict_full` (its client learns it as `sessionlost`), never silently
    /// skipped. Returns each member's result.
    fn broadcast(&mut self, now: u64, sessions: &[f64], payload: Payload, evict_full: bool) -> Option<Vec<f64>> {
        let max = self.inner.config().session.max_message_bytes;
        if payload.len() > max {
            return Some(vec![TOO_LARGE; sessions.len()]);
        }
        let needed = payload.len().saturating_mul(sessions.len());
        if self.inner.buffered_bytes().saturating_add(needed) > self.inner.config().max_buffered_bytes {
            return None;
        }
        let payload = Arc::new(payload);
        let results = sessions
            .iter()
            .map(|&session| {
                let result = send_result(self.inner.send_shared(now, id(session), payload.clone()));
                if result == BUFFER_FULL && evict_full {
                    self.inner.end(now, id(session), EndReason::Overflow);
                }
                result
            })
            .collect();
        Some(results)
    }
}
