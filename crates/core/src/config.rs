//! Session configuration shared by both roles.

use crate::buffer::BufferLimits;
use crate::Millis;

/// Heartbeat: a ping every `interval_ms`; if nothing at all arrives within `timeout_ms` after a
/// ping, the connection is declared dead (half-open link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between pings (at least 1 ms). Default 15 000 ms.
    pub interval_ms: Millis,
    /// How long to wait for any frame after a ping. Default 10 000 ms.
    pub timeout_ms: Millis,
}

impl HeartbeatConfig {
    /// The default interval between pings.
    pub const DEFAULT_INTERVAL_MS: Millis = 15_000;
    /// The default silence after a ping that declares the link dead.
    pub const DEFAULT_TIMEOUT_MS: Millis = 10_000;

    /// When the ping after one at `now` is due (an interval of 0 is taken as 1 ms).
    pub(crate) fn next_ping(&self, now: Millis) -> Millis {
        now.saturating_add(self.interval_ms.max(1))
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval_ms: HeartbeatConfig::DEFAULT_INTERVAL_MS,
            timeout_ms: HeartbeatConfig::DEFAULT_TIMEOUT_MS,
        }
    }
}

/// Configuration of a session, on either side: [`ClientConfig::session`](crate::ClientConfig::session)
/// and the server's [`EndpointConfig::session`](crate::server::EndpointConfig::session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Bounds of the replay buffer (sent, unacknowledged messages plus queued ones).
    pub limits: BufferLimits,
    /// Largest application payload accepted by `send` and from the peer. Default 1 MiB.
    /// A received frame longer than this plus its header is a protocol error (close 1009).
    pub max_message_bytes: usize,
    /// Longest an acknowledgement is held back to coalesce it with later ones. Default 20 ms.
    pub ack_delay_ms: Millis,
    /// An acknowledgement goes out at the latest after this many received messages. Default 32.
    pub ack_every: u32,
    /// Heartbeat, or `None` for none. Default on (15 s / 10 s).
    pub heartbeat: Option<HeartbeatConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: BufferLimits::default(),
            max_message_bytes: 1 << 20,
            ack_delay_ms: 20,
            ack_every: 32,
            heartbeat: Some(HeartbeatConfig::default()),
        }
    }
}
