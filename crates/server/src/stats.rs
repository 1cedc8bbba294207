//! Server-wide counters, served as JSON at `GET /stats`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Monotonic counters, updated by connections and the session store.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub replayed: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub resumes: AtomicU64,
    pub sessions_lost: AtomicU64,
    pub sessions_expired: AtomicU64,
    pub sessions_overflowed: AtomicU64,
    pub cuts: AtomicU64,
    pub origin_rejections: AtomicU64,
    pub auth_failures: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub unconfirmed_at_end: AtomicU64,
    pub store_errors: AtomicU64,
    pub sessions_moved: AtomicU64,
    pub redelivered: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
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
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
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
