//! The servers' defaults, written once: the core's [`EndpointConfig`](super::EndpointConfig), the
//! Rust server's `Config`, the reference binary's flags and the Node.js server (through
//! `crates/node`) all read them. (The heartbeat's and the replay buffer's are shared with the
//! client: [`HeartbeatConfig`](crate::HeartbeatConfig), [`BufferLimits`](crate::BufferLimits).)

use crate::Millis;

/// How long a session without a connection is kept for a resume.
pub const SESSION_TTL_MS: Millis = 120_000;
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 10_000;
/// Most sessions one identity holds at once.
pub const MAX_SESSIONS_PER_IDENTITY: usize = 100;
/// Protocol errors in a row after which a session is dropped.
pub const MAX_PROTOCOL_ERRORS: u32 = 3;
/// Most payload bytes all sessions' buffers hold together (a `u64`: more than a 32-bit `usize`
/// holds; see [`max_buffered_bytes`]).
pub const MAX_BUFFERED_BYTES: u64 = 4 << 30;
/// The largest message accepted.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// How long a new connection may take to send its HELLO.
pub const HANDSHAKE_TIMEOUT_MS: Millis = 10_000;
/// How long a shutdown waits for the connections' close handshakes.
pub const SHUTDOWN_GRACE_MS: Millis = 3_000;
/// Most bytes queued for one connection's socket.
pub const MAX_OUTGOING_BYTES: usize = 1 << 20;
/// How long a connection's outgoing queue may stay full before it is closed (1013).
pub const SEND_TIMEOUT_MS: Millis = 30_000;
/// Messages per second one client may send on average.
pub const MAX_MESSAGES_PER_SECOND: u32 = 10_000;
/// Messages one client may send at once above the average.
pub const BURST: u32 = 10_000;

/// [`MAX_BUFFERED_BYTES`] as this platform counts bytes (at most `usize::MAX`).
pub fn max_buffered_bytes() -> usize {
    usize::try_from(MAX_BUFFERED_BYTES).unwrap_or(usize::MAX)
}
