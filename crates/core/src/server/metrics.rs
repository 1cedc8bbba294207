//! The servers' metrics, named once: the Rust server records them through the `metrics` facade
//! and the Node.js server (through `crates/node`) into its own registry, both under these names,
//! kinds, labels and buckets, so that one dashboard (`docs/grafana/durable-ws.json`) reads either.
//!
//! Names follow OpenTelemetry's semantic conventions where they exist (`*_active` for up-down
//! counts, `*_duration_seconds` for a histogram of durations, a `_total` counter per event), in
//! Prometheus's form (`durable_ws_` prefix, units in the name).

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in [`Metric::buckets`].
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, kind, help text, label names and (histograms) bucket bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// The full name (`durable_ws_…`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The label names, in order.
    pub labels: &'static [&'static str],
    /// Upper bounds of a histogram's buckets (empty for the others).
    pub buckets: &'static [f64],
}

const fn metric(name: &'static str, kind: Kind, help: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric { name, kind, help, labels, buckets: &[] }
}

/// Buckets for how long a connection lived: 100 ms to a day.
pub const LIFETIME_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0];
/// Buckets for waits and round trips: 1 ms to 30 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Open WebSocket connections; `mode`: `durable` or `plain`.
pub const CONNECTIONS_ACTIVE: Metric =
    metric("durable_ws_connections_active", Kind::Gauge, "Open WebSocket connections.", &["mode"]);
/// How long connections lived; `code`: the close code (1006: dropped without a close frame).
pub const CONNECTION_DURATION: Metric = Metric {
    buckets: LIFETIME_BUCKETS,
    ..metric(
        "durable_ws_connection_duration_seconds",
        Kind::Histogram,
        "How long connections lived, by close code (1006: dropped without a closing handshake).",
        &["code"],
    )
};
/// Sessions held, with a connection or waiting for a resume.
pub const SESSIONS_ACTIVE: Metric =
    metric("durable_ws_sessions_active", Kind::Gauge, "Sessions held (attached, or waiting for a resume).", &[]);
/// Durable handshakes by `outcome` (`new`, `resumed`, `lost`, `refused`) and `reason` (see [`handshake`]).
pub const HANDSHAKES: Metric = metric(
    "durable_ws_handshakes_total",
    Kind::Counter,
    "Handshakes by outcome (new, resumed, lost, refused) and reason.",
    &["outcome", "reason"],
);
/// Application messages; `direction`: `in` (from clients) or `out` (to clients).
pub const MESSAGES: Metric =
    metric("durable_ws_messages_total", Kind::Counter, "Application messages, by direction (in, out).", &["direction"]);
/// Payload bytes of application messages; `direction` as [`MESSAGES`].
pub const MESSAGE_BYTES: Metric = metric(
    "durable_ws_message_bytes_total",
    Kind::Counter,
    "Payload bytes of application messages, by direction (in, out).",
    &["direction"],
);
/// Messages sent again after a resume.
pub const REPLAYED: Metric =
    metric("durable_ws_replayed_messages_total", Kind::Counter, "Messages sent again to a client after a resume.", &[]);
/// Messages a client sent again that the server already had (dropped).
pub const DUPLICATES: Metric = metric(
    "durable_ws_duplicate_messages_total",
    Kind::Counter,
    "Messages a client sent again that the server already had (dropped).",
    &[],
);
/// From a message's first transmission to the client's acknowledgement (sampled: the newest
/// message of each write to the connection, at most 256 waiting per session).
pub const ACK_DELAY: Metric = Metric {
    buckets: LATENCY_BUCKETS,
    ..metric(
        "durable_ws_ack_delay_seconds",
        Kind::Histogram,
        "From a message's first transmission to the client's acknowledgement (sampled: the last message of each write).",
        &[],
    )
};
/// Messages in the replay buffers (queued or sent, not yet acknowledged), all sessions together.
pub const BUFFERED_MESSAGES: Metric = metric(
    "durable_ws_replay_buffer_messages",
    Kind::Gauge,
    "Messages in the sessions' replay buffers (not yet acknowledged by their clients).",
    &[],
);
/// Payload bytes in the replay buffers, all sessions together.
pub const BUFFERED_BYTES: Metric =
    metric("durable_ws_replay_buffer_bytes", Kind::Gauge, "Payload bytes in the sessions' replay buffers.", &[]);
/// Sessions ended, by `reason` (`goodbye`, `closed`, `expired`, `overflow`, `protocol_errors`, `moved`).
pub const SESSIONS_ENDED: Metric = metric(
    "durable_ws_sessions_ended_total",
    Kind::Counter,
    "Sessions ended, by reason (goodbye, closed, expired, overflow, protocol_errors, moved).",
    &["reason"],
);
/// Messages a session still held unconfirmed when it ended.
pub const UNCONFIRMED_AT_END: Metric = metric(
    "durable_ws_unconfirmed_at_end_total",
    Kind::Counter,
    "Messages to clients that were never confirmed when their session ended.",
    &[],
);
/// A limit was hit, by `limit` (see [`limit`]).
pub const LIMITS: Metric = metric(
    "durable_ws_limit_refusals_total",
    Kind::Counter,
    "Refusals and closes because a limit was reached, by limit.",
    &["limit"],
);
/// Connections closed because the heartbeat got no answer.
pub const HEARTBEAT_TIMEOUTS: Metric = metric(
    "durable_ws_heartbeat_timeouts_total",
    Kind::Counter,
    "Connections closed because the heartbeat got no answer (half-open links).",
    &[],
);
/// Connections closed for breaking the protocol.
pub const PROTOCOL_ERRORS: Metric =
    metric("durable_ws_protocol_errors_total", Kind::Counter, "Connections closed for breaking the protocol.", &[]);
/// Client messages handed to the application again after a node crashed (shared storage).
pub const REDELIVERED: Metric = metric(
    "durable_ws_redelivered_messages_total",
    Kind::Counter,
    "Client messages handed to the application again after a node crashed before recording their delivery.",
    &[],
);
/// Round trips to the shared storage (Redis).
pub const STORE_COMMANDS: Metric =
    metric("durable_ws_store_commands_total", Kind::Counter, "Round trips to the shared storage (Redis).", &[]);
/// Failed steps of the shared storage.
pub const STORE_ERRORS: Metric = metric(
    "durable_ws_store_errors_total",
    Kind::Counter,
    "Steps that failed because the shared storage was unavailable.",
    &[],
);
/// Sessions another node took over (this node fenced off).
pub const STORE_FENCED: Metric = metric(
    "durable_ws_store_fenced_total",
    Kind::Counter,
    "Sessions another node took over (this node fenced off).",
    &[],
);
/// How long a round trip to the shared storage took.
pub const STORE_DURATION: Metric = Metric {
    buckets: LATENCY_BUCKETS,
    ..metric(
        "durable_ws_store_duration_seconds",
        Kind::Histogram,
        "How long a round trip to the shared storage (a script or a pipeline) took.",
        &[],
    )
};

/// Every metric, in the order the servers list them.
pub const ALL: &[Metric] = &[
    CONNECTIONS_ACTIVE,
    CONNECTION_DURATION,
    SESSIONS_ACTIVE,
    HANDSHAKES,
    MESSAGES,
    MESSAGE_BYTES,
    REPLAYED,
    DUPLICATES,
    ACK_DELAY,
    BUFFERED_MESSAGES,
    BUFFERED_BYTES,
    SESSIONS_ENDED,
    UNCONFIRMED_AT_END,
    LIMITS,
    HEARTBEAT_TIMEOUTS,
    PROTOCOL_ERRORS,
    REDELIVERED,
    STORE_COMMANDS,
    STORE_ERRORS,
    STORE_FENCED,
    STORE_DURATION,
];

/// The metrics only a server on shared storage records.
pub const STORE_ONLY: &[Metric] = &[REDELIVERED, STORE_COMMANDS, STORE_ERRORS, STORE_FENCED, STORE_DURATION];

/// Label values of [`HANDSHAKES`].
pub mod handshake {
    /// `outcome`: a new session.
    pub const NEW: &str = "new";
    /// `outcome`: a session resumed.
    pub const RESUMED: &str = "resumed";
    /// `outcome`: the client asked to resume a session the server could not continue (a new one
    /// was made); `reason` is the lost reason.
    pub const LOST: &str = "lost";
    /// `outcome`: the handshake was refused; `reason` says why.
    pub const REFUSED: &str = "refused";
    /// `reason` of `new` and `resumed`.
    pub const NONE: &str = "none";
    /// `lost`: the session expired (or was never known).
    pub const EXPIRED: &str = "expired";
    /// `lost`: its replay buffer had overflowed.
    pub const OVERFLOW: &str = "overflow";
    /// `lost`: it belongs to another identity.
    pub const FOREIGN: &str = "foreign";
    /// `lost`: an impossible resume point, or the session was dropped after protocol errors.
    pub const INVALID: &str = "invalid";
    /// `refused`: the identity holds its most sessions.
    pub const OWNER_LIMIT: &str = "owner_limit";
    /// `refused`: the server holds its most sessions, or its buffer budget is spent.
    pub const CAPACITY: &str = "capacity";
    /// `refused`: authentication refused the request.
    pub const AUTH: &str = "auth";
    /// `refused`: its `Origin` is not allowed.
    pub const ORIGIN: &str = "origin";
    /// `refused`: a malformed or missing HELLO.
    pub const MALFORMED: &str = "malformed";
    /// `refused`: the client did not offer `durable.v1` where it is required.
    pub const NOT_DURABLE: &str = "not_durable";
}

/// Label values of [`LIMITS`].
pub mod limit {
    /// The server's connection cap.
    pub const CONNECTIONS: &str = "connections";
    /// An identity's most sessions.
    pub const OWNER_SESSIONS: &str = "owner_sessions";
    /// The server's most sessions or buffer budget.
    pub const CAPACITY: &str = "capacity";
    /// A message larger than the largest accepted (1009).
    pub const MESSAGE_SIZE: &str = "message_size";
    /// A client that did not read fast enough (1013).
    pub const SLOW_CLIENT: &str = "slow_client";
    /// A session whose replay buffer overflowed.
    pub const REPLAY_BUFFER: &str = "replay_buffer";
}

/// Label values of [`CONNECTIONS_ACTIVE`].
pub mod mode {
    /// A `durable.v1` connection.
    pub const DURABLE: &str = "durable";
    /// A plain WebSocket (no `durable.v1`).
    pub const PLAIN: &str = "plain";
}

/// The `reason` of [`SESSIONS_ENDED`] for `reason`.
pub fn end_reason(reason: super::EndReason) -> &'static str {
    use super::EndReason;
    match reason {
        EndReason::Goodbye => "goodbye",
        EndReason::Closed => "closed",
        EndReason::Expired => "expired",
        EndReason::Overflow => "overflow",
        EndReason::ProtocolErrors => "protocol_errors",
        EndReason::Moved => "moved",
    }
}

/// The `outcome` and `reason` of [`HANDSHAKES`] for a session opened with `status` (`foreign`: the
/// session asked for belongs to another identity).
pub fn handshake_outcome(status: crate::WelcomeStatus, foreign: bool) -> (&'static str, &'static str) {
    use crate::WelcomeStatus;
    match status {
        WelcomeStatus::New => (handshake::NEW, handshake::NONE),
        WelcomeStatus::Resumed => (handshake::RESUMED, handshake::NONE),
        WelcomeStatus::LostUnknown => (handshake::LOST, handshake::EXPIRED),
        WelcomeStatus::LostOverflow => (handshake::LOST, handshake::OVERFLOW),
        WelcomeStatus::LostRefused if foreign => (handshake::LOST, handshake::FOREIGN),
        WelcomeStatus::LostRefused => (handshake::LOST, handshake::INVALID),
    }
}

/// Every series of a labelled counter or gauge whose label values are known in advance, as
/// (metric, labels): the servers show them at 0 from the start, so that a dashboard's queries find
/// them before the first event (histograms and their `code` label come as they happen).
pub fn known_series() -> Vec<(Metric, Vec<(&'static str, &'static str)>)> {
    use handshake as h;
    let mut series = Vec::new();
    for m in [mode::DURABLE, mode::PLAIN] {
        series.push((CONNECTIONS_ACTIVE, vec![("mode", m)]));
    }
    let outcomes = [(h::NEW, h::NONE), (h::RESUMED, h::NONE)]
        .into_iter()
        .chain([h::EXPIRED, h::OVERFLOW, h::FOREIGN, h::INVALID].map(|reason| (h::LOST, reason)))
        .chain(
            [h::OWNER_LIMIT, h::CAPACITY, h::AUTH, h::ORIGIN, h::MALFORMED, h::NOT_DURABLE].map(|r| (h::REFUSED, r)),
        );
    for (outcome, reason) in outcomes {
        series.push((HANDSHAKES, vec![("outcome", outcome), ("reason", reason)]));
    }
    for d in [direction::IN, direction::OUT] {
        series.push((MESSAGES, vec![("direction", d)]));
        series.push((MESSAGE_BYTES, vec![("direction", d)]));
    }
    for reason in super::EndReason::ALL {
        series.push((SESSIONS_ENDED, vec![("reason", end_reason(reason))]));
    }
    use limit as l;
    for hit in [l::CONNECTIONS, l::OWNER_SESSIONS, l::CAPACITY, l::MESSAGE_SIZE, l::SLOW_CLIENT, l::REPLAY_BUFFER] {
        series.push((LIMITS, vec![("limit", hit)]));
    }
    series
}

/// Label values of [`MESSAGES`] and [`MESSAGE_BYTES`].
pub mod direction {
    /// From clients.
    pub const IN: &str = "in";
    /// To clients.
    pub const OUT: &str = "out";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_well_formed() {
        let mut names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a name is used twice");
        for m in ALL {
            assert!(m.name.starts_with("durable_ws_"), "{}", m.name);
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Histogram,
                !m.buckets.is_empty(),
                "{}: histograms, and only they, have buckets",
                m.name
            );
            assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}: buckets ascend", m.name);
        }
        assert!(STORE_ONLY.iter().all(|m| ALL.contains(m)));
        for (metric, labels) in known_series() {
            let names: Vec<_> = labels.iter().map(|(name, _)| *name).collect();
            assert_eq!(names, metric.labels, "{}: known series name its labels, in order", metric.name);
            assert_ne!(metric.kind, Kind::Histogram);
        }
    }
}
