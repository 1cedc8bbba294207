//! The library's errors.

use durable_ws_core::{ConnectionError, LostReason, SendError};
use thiserror::Error;

/// What can go wrong with a durable socket.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The message was not accepted (too large, buffer full, socket closed); nothing was queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The message was accepted but never confirmed: the session ended for `reason`. It is
    /// listed in the `SessionLost` event.
    #[error("message not confirmed: the session ended ({0:?})")]
    Unconfirmed(LostReason),
    /// A connection was given up (connect timeout, heartbeat timeout, protocol error).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The URL (or the URL provider) failed; the attempt counts as a failed connection.
    #[error("cannot open a socket: {0}")]
    Url(String),
    /// An option is out of range; `field` names it.
    #[error("invalid option `{field}`: {problem}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A message could not be encoded by the codec.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// A received message could not be decoded by the codec (reported, then skipped).
    #[error("cannot decode a received message: {0}")]
    Decode(String),
    /// `Sink::start_send` was called while the previous message still waits for room.
    #[error("start_send called without a successful poll_ready")]
    NotReady,
    /// The socket was used from inside its own event processing (a bug in the caller's executor).
    #[error("the socket is busy processing an event")]
    Busy,
}
