//! The library's errors.

use std::fmt;
use std::sync::Arc;

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
    /// The URL (or the URL provider) failed; the attempt counts as a failed connection. The
    /// browser's exception (or the provider's error) as text: neither is `Send`.
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
    /// `close` was given a code or reason the browser refuses (the same rule as the JS API's
    /// `close`): the code must be 1000 or in 3000–4999, the reason at most 123 UTF-8 bytes.
    /// Nothing was closed.
    #[error("invalid close: {0}")]
    InvalidClose(&'static str),
    /// A message could not be encoded by the codec; the codec's error is the source.
    #[error("cannot encode the message")]
    Encode(#[source] CodecError),
    /// A received message could not be decoded by the codec (reported, then skipped); the
    /// codec's error is the source.
    #[error("cannot decode a received message")]
    Decode(#[source] CodecError),
    /// `Sink::start_send` was called while the previous message still waits for room.
    #[error("start_send called without a successful poll_ready")]
    NotReady,
    /// A persisted session's storage cannot be used (unavailable, blocked, full, corrupt, or taken
    /// over by another page): the session goes on in memory only. The storage's own message.
    #[error("the session is not persisted: {0}")]
    Persist(String),
    /// The socket was used from inside its own event processing (a bug in the caller's executor).
    #[error("the socket is busy processing an event")]
    Busy,
}

/// The error of a [`Codec`](crate::typed::Codec) (serde_json's, postcard's, …), shared so that
/// [`Error`](enum@Error) stays `Clone`. It displays as the codec's error, whose sources are its sources;
/// [`get_ref`](Self::get_ref) gives it for downcasting. Two are equal when they display alike.
#[derive(Clone)]
pub struct CodecError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl CodecError {
    /// Wraps a codec's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        CodecError(Arc::new(error))
    }

    /// The codec's error (`downcast_ref::<serde_json::Error>()`, …).
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for CodecError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for CodecError {}

/// Checks a close code and reason as browsers do (`WebSocket.close` throws otherwise).
#[cfg(any(feature = "js", feature = "typed"))]
pub(crate) fn check_close(code: u16, reason: &str) -> Result<(), Error> {
    if !(code == 1000 || (3000..=4999).contains(&code)) {
        return Err(Error::InvalidClose("the code must be 1000 or in 3000–4999"));
    }
    if reason.len() > 123 {
        return Err(Error::InvalidClose("the reason must be at most 123 UTF-8 bytes"));
    }
    Ok(())
}
