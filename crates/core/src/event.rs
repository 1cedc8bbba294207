//! What the core tells its driver's application.

use crate::error::ConnectionError;
use crate::payload::Payload;
use crate::Millis;

/// Why a session could not be continued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// The server did not know the session (expired after its TTL, or the server restarted).
    Expired,
    /// The server dropped the session because its replay buffer for this client overflowed.
    Overflow,
    /// The server refused the resume (other identity, or an impossible resume point), or refused
    /// the connection for good (4401 unauthorized, 4403 forbidden, 4409 superseded: terminal close
    /// codes).
    Refused,
    /// The server no longer speaks the durable protocol (plain mode), so nothing can be resumed.
    NotDurable,
    /// The client stopped for good (user close, terminal close code, attempt limit) with
    /// messages still unconfirmed.
    Closed,
    /// A persisted session could not be read back from storage (corrupt, or written by another
    /// format version): the messages that could be read are listed.
    Storage,
}

/// What a [`Client`](crate::Client) tells its application. (The server role has its own:
/// [`ServerEvent`](crate::server::ServerEvent).)
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A connection is open and ready. `durable` is false in plain mode (no recovery).
    /// Not emitted when an existing session was resumed: see `Resumed`.
    Open {
        /// Whether the server speaks `durable.v1`.
        durable: bool,
    },
    /// The session was resumed on a new connection; `replayed` of our messages were re-sent.
    Resumed {
        /// How many unacknowledged messages were sent again.
        replayed: u64,
    },
    /// An application message, delivered exactly once and in order.
    Message(Payload),
    /// Every message this side sent with a sequence number up to `seq` is confirmed delivered
    /// (in plain mode: handed to the socket; there is no confirmation).
    Acked {
        /// Highest confirmed sequence number.
        seq: u64,
    },
    /// The connection is gone; the next attempt starts after `delay_ms`.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Delay before the attempt.
        delay_ms: Millis,
    },
    /// The session cannot continue. `unconfirmed` holds, in order, every message this side sent
    /// (or queued) that the peer never confirmed: nothing is lost silently.
    SessionLost {
        /// Why.
        reason: LostReason,
        /// `(sequence number, payload)` of each unconfirmed message.
        unconfirmed: Vec<(u64, Payload)>,
    },
    /// A connection closed. `will_reconnect` false means the socket is closed for good.
    Closed {
        /// Close code (1006 when the connection dropped without a close frame).
        code: u16,
        /// Close reason.
        reason: String,
        /// Whether the closing handshake completed.
        was_clean: bool,
        /// Whether a reconnect follows.
        will_reconnect: bool,
    },
    /// Why a connection was given up or refused (precedes `Closed`).
    Error(ConnectionError),
}
