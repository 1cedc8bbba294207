//! The server's metrics ([`durable_ws_core::server::metrics`]: names, labels and buckets written
//! once, shared with the Node.js server), recorded through the [`metrics`] facade:
//! install any recorder (Prometheus, OpenTelemetry, StatsD…) and call [`describe`]. Without a
//! recorder, recording costs next to nothing. Each counter of [`Stats`](crate::Stats) is recorded
//! here too: both count the same events.

use std::sync::OnceLock;
use std::time::Duration;

use durable_ws_core::server::metrics::{self as m, Kind};
use durable_ws_core::server::{EndReason, Refused};
use durable_ws_core::{close_code, WelcomeStatus};
use tokio::time::Instant;

/// Gives the installed recorder every metric's help text, and shows the series whose labels are
/// known in advance at 0 (a dashboard finds them before the first event; the shared storage's only
/// when `durable` has one); call it once, after installing a recorder. (A Prometheus exporter wants
/// each histogram's buckets too: [`histograms`].)
pub fn describe(durable: &crate::Durable) {
    let shared = durable.node() != crate::durable::LOCAL_NODE;
    for metric in m::ALL {
        match metric.kind {
            Kind::Counter => ::metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => ::metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => ::metrics::describe_histogram!(metric.name, ::metrics::Unit::Seconds, metric.help),
        }
        // (The shared storage's come with it: a server in memory shows none.)
        if metric.labels.is_empty() && metric.kind == Kind::Counter && (shared || !m::STORE_ONLY.contains(metric)) {
            ::metrics::counter!(metric.name).absolute(0);
        }
    }
    for (metric, labels) in m::known_series() {
        let labels: Vec<::metrics::Label> = labels.into_iter().map(|(k, v)| ::metrics::Label::new(k, v)).collect();
        match metric.kind {
            Kind::Gauge => ::metrics::gauge!(metric.name, labels).increment(0.0),
            _ => ::metrics::counter!(metric.name, labels).increment(0),
        }
    }
}

/// Each histogram's name and bucket bounds (for an exporter that takes them per metric).
pub fn histograms() -> impl Iterator<Item = (&'static str, &'static [f64])> {
    m::ALL.iter().filter(|metric| metric.kind == Kind::Histogram).map(|metric| (metric.name, metric.buckets))
}

/// A durable handshake's outcome.
pub(crate) fn handshake(status: WelcomeStatus, foreign: bool) {
    let (outcome, reason) = m::handshake_outcome(status, foreign);
    ::metrics::counter!(m::HANDSHAKES.name, "outcome" => outcome, "reason" => reason).increment(1);
}

/// A refused handshake (`reason`: a [`m::handshake`] value).
pub(crate) fn refused(reason: &'static str) {
    ::metrics::counter!(m::HANDSHAKES.name, "outcome" => m::handshake::REFUSED, "reason" => reason).increment(1);
}

/// The core refused a session: the handshake and the limit it hit.
pub(crate) fn refused_session(refused: &Refused) {
    let (reason, hit) = match refused {
        Refused::OwnerQuota => (m::handshake::OWNER_LIMIT, m::limit::OWNER_SESSIONS),
        _ => (m::handshake::CAPACITY, m::limit::CAPACITY),
    };
    self::refused(reason);
    limit(hit);
}

/// A limit was hit (a [`m::limit`] value).
pub(crate) fn limit(limit: &'static str) {
    ::metrics::counter!(m::LIMITS.name, "limit" => limit).increment(1);
}

/// A session ended.
pub(crate) fn session_ended(reason: EndReason) {
    ::metrics::counter!(m::SESSIONS_ENDED.name, "reason" => m::end_reason(reason)).increment(1);
}

/// Payload bytes of application messages (`direction`: a [`m::direction`] value). The hot paths'
/// handles are looked up once, at the first event (a recorder installed later is not seen by them:
/// install it before serving).
pub(crate) fn bytes(direction: &'static str, bytes: usize) {
    static IN: OnceLock<::metrics::Counter> = OnceLock::new();
    static OUT: OnceLock<::metrics::Counter> = OnceLock::new();
    let handle = if direction == m::direction::IN { &IN } else { &OUT };
    handle.get_or_init(|| ::metrics::counter!(m::MESSAGE_BYTES.name, "direction" => direction)).increment(bytes as u64);
}

/// The sessions held and their replay buffers.
pub(crate) fn sessions(held: usize, buffered_messages: u64, buffered_bytes: usize) {
    ::metrics::gauge!(m::SESSIONS_ACTIVE.name).set(held as f64);
    ::metrics::gauge!(m::BUFFERED_MESSAGES.name).set(buffered_messages as f64);
    ::metrics::gauge!(m::BUFFERED_BYTES.name).set(buffered_bytes as f64);
}

/// A round trip to the shared storage, and how long it took.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn store_round_trip(took: Duration) {
    ::metrics::counter!(m::STORE_COMMANDS.name).increment(1);
    ::metrics::histogram!(m::STORE_DURATION.name).record(took.as_secs_f64());
}

/// One open connection: counted in [`m::CONNECTIONS_ACTIVE`] from [`Connection::count_as`] until
/// it is dropped, when its lifetime goes into [`m::CONNECTION_DURATION`] under its close code.
#[derive(Debug)]
pub(crate) struct Connection {
    opened: Instant,
    mode: Option<&'static str>,
    code: u16,
}

impl Connection {
    pub fn new() -> Connection {
        Connection { opened: Instant::now(), mode: None, code: close_code::ABNORMAL }
    }

    /// Counts the connection as open in `mode` (a [`m::mode`] value).
    pub fn count_as(&mut self, mode: &'static str) {
        if self.mode.is_none() {
            ::metrics::gauge!(m::CONNECTIONS_ACTIVE.name, "mode" => mode).increment(1.0);
            self.mode = Some(mode);
        }
    }

    /// The close code it ended with (`ABNORMAL` until one is known).
    pub fn closed_with(&mut self, code: u16) {
        self.code = code;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(mode) = self.mode else { return };
        ::metrics::gauge!(m::CONNECTIONS_ACTIVE.name, "mode" => mode).decrement(1.0);
        let code = self.code.to_string();
        ::metrics::histogram!(m::CONNECTION_DURATION.name, "code" => code).record(self.opened.elapsed().as_secs_f64());
    }
}

/// When a session's own messages were first transmitted (a sample per transmission: the highest
/// sequence number sent then), until the client's acknowledgement covers them.
#[derive(Debug, Default)]
pub(crate) struct AckClock {
    sent: std::collections::VecDeque<(u64, Instant)>,
    /// The highest sequence number sampled (an acknowledged one is never sampled again).
    highest: u64,
}

impl AckClock {
    /// Most samples waiting for an acknowledgement; beyond, the oldest go unmeasured.
    const MAX: usize = 256;

    /// Own messages up to `seq` are on the wire now (if beyond what was sent before).
    pub fn sent(&mut self, seq: u64, now: Instant) {
        if seq > self.highest {
            self.highest = seq;
            if self.sent.len() == Self::MAX {
                self.sent.pop_front();
            }
            self.sent.push_back((seq, now));
        }
    }

    /// The client confirmed everything up to `seq`.
    pub fn acked(&mut self, seq: u64, now: Instant) {
        while let Some(&(sent, at)) = self.sent.front() {
            if sent > seq {
                break;
            }
            self.sent.pop_front();
            static ACK_DELAY: OnceLock<::metrics::Histogram> = OnceLock::new();
            ACK_DELAY
                .get_or_init(|| ::metrics::histogram!(m::ACK_DELAY.name))
                .record(now.saturating_duration_since(at).as_secs_f64());
        }
    }
}
