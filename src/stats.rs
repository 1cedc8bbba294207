//! Counters of a durable socket.

use durable_ws_core::{ClientStats, Millis};

/// Counters since the socket was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages accepted by `send`.
    pub sent: u64,
    /// Of those, confirmed by the server.
    pub acked: u64,
    /// Sent or queued, not yet confirmed (held in the replay buffer).
    pub pending: u64,
    /// Messages sent again after a resume.
    pub replayed: u64,
    /// Messages delivered to the application.
    pub received: u64,
    /// Duplicates received and dropped.
    pub duplicates: u64,
    /// Connections lost and attempted again.
    pub reconnects: u64,
    /// Sessions the server could not resume.
    pub sessions_lost: u64,
    /// Round-trip time of the last answered heartbeat ping.
    pub last_rtt_ms: Option<Millis>,
    /// A persisted session's messages sent and not yet durably stored (they would not survive the
    /// browser being killed); 0 without `persist`.
    pub unstored: u64,
}

impl From<ClientStats> for Stats {
    fn from(stats: ClientStats) -> Self {
        let session = stats.session;
        Stats {
            sent: session.sent,
            acked: session.acked,
            pending: session.pending,
            replayed: session.replayed,
            received: session.received,
            duplicates: session.duplicates_dropped,
            reconnects: stats.reconnects,
            sessions_lost: stats.sessions_lost,
            last_rtt_ms: session.last_rtt_ms,
            unstored: 0,
        }
    }
}
