//! Server-wide counters, served as JSON at `GET /stats`; each is also a metric
//! ([`crate::metrics`]), so `/stats` and `/metrics` count the same events.

use std::sync::atomic::{AtomicU64, Ordering};

use ::metrics::Label;
use durable_ws_core::server::metrics::{self as m, direction, handshake, limit};
use serde::Serialize;

/// A counter of `/stats` that is also a metric (a counter of [`m::ALL`] with fixed labels). Its
/// recorder handle is looked up at the first event (the recorder is installed by then) and kept.
#[derive(Debug)]
pub(crate) struct Tally {
    value: AtomicU64,
    metric: Option<(&'static str, &'static [Label])>,
    handle: std::sync::OnceLock<::metrics::Counter>,
}

impl Tally {
    const fn metric(metric: m::Metric, labels: &'static [Label]) -> Tally {
        Tally { value: AtomicU64::new(0), metric: Some((metric.name, labels)), handle: std::sync::OnceLock::new() }
    }

    /// Counted for `/stats` only (a fault injected by a test).
    const fn stats_only() -> Tally {
        Tally { value: AtomicU64::new(0), metric: None, handle: std::sync::OnceLock::new() }
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

const fn label(key: &'static str, value: &'static str) -> Label {
    Label::from_static_parts(key, value)
}

/// Monotonic counters, updated by connections and the session store.
#[derive(Debug)]
pub(crate) struct Counters {
    pub messages_in: Tally,
    pub messages_out: Tally,
    pub replayed: Tally,
    pub duplicates_dropped: Tally,
    pub resumes: Tally,
    pub sessions_lost: Tally,
    pub sessions_expired: Tally,
    pub sessions_overflowed: Tally,
    pub cuts: Tally,
    pub origin_rejections: Tally,
    pub auth_failures: Tally,
    pub heartbeat_timeouts: Tally,
    pub protocol_errors: Tally,
    pub unconfirmed_at_end: Tally,
    pub store_errors: Tally,
    pub sessions_moved: Tally,
    pub redelivered: Tally,
}

impl Default for Counters {
    fn default() -> Self {
        const IN: &[Label] = &[label("direction", direction::IN)];
        const OUT: &[Label] = &[label("direction", direction::OUT)];
        const ORIGIN: &[Label] = &[label("outcome", handshake::REFUSED), label("reason", handshake::ORIGIN)];
        const AUTH: &[Label] = &[label("outcome", handshake::REFUSED), label("reason", handshake::AUTH)];
        const OVERFLOW: &[Label] = &[label("limit", limit::REPLAY_BUFFER)];
        Counters {
            messages_in: Tally::metric(m::MESSAGES, IN),
            messages_out: Tally::metric(m::MESSAGES, OUT),
            replayed: Tally::metric(m::REPLAYED, &[]),
            duplicates_dropped: Tally::metric(m::DUPLICATES, &[]),
            // Recorded with every other outcome (`crate::metrics::handshake`).
            resumes: Tally::stats_only(),
            // Recorded with the lost reason where it happens (`crate::metrics::handshake`).
            sessions_lost: Tally::stats_only(),
            // Recorded with every other end reason (`crate::metrics::session_ended`).
            sessions_expired: Tally::stats_only(),
            sessions_overflowed: Tally::metric(m::LIMITS, OVERFLOW),
            cuts: Tally::stats_only(),
            origin_rejections: Tally::metric(m::HANDSHAKES, ORIGIN),
            auth_failures: Tally::metric(m::HANDSHAKES, AUTH),
            heartbeat_timeouts: Tally::metric(m::HEARTBEAT_TIMEOUTS, &[]),
            protocol_errors: Tally::metric(m::PROTOCOL_ERRORS, &[]),
            unconfirmed_at_end: Tally::metric(m::UNCONFIRMED_AT_END, &[]),
            store_errors: Tally::metric(m::STORE_ERRORS, &[]),
            sessions_moved: Tally::metric(m::STORE_FENCED, &[]),
            redelivered: Tally::metric(m::REDELIVERED, &[]),
        }
    }
}

impl Counters {
    pub fn add(tally: &Tally, n: u64) {
        if n > 0 {
            tally.value.fetch_add(n, Ordering::Relaxed);
            if let Some((name, labels)) = tally.metric {
                tally.handle.get_or_init(|| ::metrics::counter!(name, labels.iter())).increment(n);
            }
        }
    }
}

/// A snapshot of the server's state and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Sessions held (connected or waiting for a resume).
    pub sessions: u64,
    /// Open WebSocket connections (durable and plain).
    pub connections: u64,
    /// Application messages received.
    pub messages_in: u64,
    /// Application messages sent (queued into sessions, or echoed in plain mode).
    pub messages_out: u64,
    /// Messages re-sent after resumes.
    pub replayed: u64,
    /// Duplicate messages received and dropped.
    pub duplicates_dropped: u64,
    /// Sessions resumed on a new connection.
    pub resumes: u64,
    /// Resume requests that could not be honoured (unknown, overflowed or refused session).
    pub sessions_lost: u64,
    /// Sessions forgotten after their TTL (or by `/admin/expire`).
    pub sessions_expired: u64,
    /// Sessions dropped because their replay buffer overflowed.
    pub sessions_overflowed: u64,
    /// Connections dropped abruptly by `/admin/cut`.
    pub cuts: u64,
    /// WebSocket handshakes refused (403) because of their `Origin`.
    pub origin_rejections: u64,
    /// WebSocket handshakes refused (401 or 403) by authentication.
    pub auth_failures: u64,
    /// Connections dropped because the heartbeat got no answer (half-open links).
    pub heartbeat_timeouts: u64,
    /// Connections closed for breaking the protocol (1002, or 1009 for oversized messages).
    pub protocol_errors: u64,
    /// Commands sent to the shared storage (Redis), each one round trip (pipelined); 0 in memory.
    #[serde(default)]
    pub store_commands: u64,
    /// Steps that failed because the shared storage was unavailable.
    #[serde(default)]
    pub store_errors: u64,
    /// Sessions another node took over (shared storage).
    #[serde(default)]
    pub sessions_moved: u64,
    /// Own messages a session still held unconfirmed when it ended (the application learns them from
    /// `Session::ended` and its `Delivery`s; its client never confirmed them).
    #[serde(default)]
    pub unconfirmed_at_end: u64,
    /// Client messages handed to the application again after a node crashed before recording their delivery (marked as possible redeliveries).
    #[serde(default)]
    pub redelivered: u64,
}

impl Stats {
    pub(crate) fn snapshot(counters: &Counters, sessions: usize, connections: usize) -> Stats {
        let get = Tally::get;
        Stats {
            sessions: sessions as u64,
            connections: connections as u64,
            messages_in: get(&counters.messages_in),
            messages_out: get(&counters.messages_out),
            replayed: get(&counters.replayed),
            duplicates_dropped: get(&counters.duplicates_dropped),
            resumes: get(&counters.resumes),
            sessions_lost: get(&counters.sessions_lost),
            sessions_expired: get(&counters.sessions_expired),
            sessions_overflowed: get(&counters.sessions_overflowed),
            cuts: get(&counters.cuts),
            origin_rejections: get(&counters.origin_rejections),
            auth_failures: get(&counters.auth_failures),
            heartbeat_timeouts: get(&counters.heartbeat_timeouts),
            protocol_errors: get(&counters.protocol_errors),
            unconfirmed_at_end: get(&counters.unconfirmed_at_end),
            store_commands: 0,
            store_errors: get(&counters.store_errors),
            sessions_moved: get(&counters.sessions_moved),
            redelivered: get(&counters.redelivered),
        }
    }
}
