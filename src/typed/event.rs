//! What a [`DurableSocket`](super::DurableSocket) reports.

use std::time::Duration;

use durable_ws_core::{LostReason, Payload};

use crate::engine::Output;
use crate::error::Error;
use crate::typed::Codec;

/// An event of a durable socket, in the order things happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SocketEvent<In> {
    /// A connection opened on a new session. `durable` is false when the server does not speak
    /// `durable.v1` (plain WebSocket: nothing is recovered after a drop).
    Open {
        /// Whether the server speaks `durable.v1`.
        durable: bool,
    },
    /// A message, delivered exactly once and in order.
    Message(In),
    /// The connection dropped; attempt `attempt` starts after `delay`.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Backoff delay before it.
        delay: Duration,
    },
    /// The session continued on a new connection; `replayed` messages were sent again.
    Resumed {
        /// Messages sent again.
        replayed: u64,
    },
    /// The server could not continue the session (or the socket stopped for good): these
    /// messages, in order, were never confirmed. Their `send` futures fail with
    /// [`Error::Unconfirmed`]. A new session follows (`Open`) unless the socket is closed.
    SessionLost {
        /// Why.
        reason: LostReason,
        /// The unconfirmed messages as encoded by the codec (decode them with `C::decode`).
        unconfirmed: Vec<Payload>,
    },
    /// A connection closed; `will_reconnect` false means for good (the stream ends after it).
    Closed {
        /// Close code (1006: dropped without a close frame).
        code: u16,
        /// Close reason.
        reason: String,
        /// Whether the closing handshake completed.
        was_clean: bool,
        /// Whether a reconnect follows.
        will_reconnect: bool,
    },
    /// Something failed: a connection given up, the URL, a message that did not decode, or the
    /// storage of a persisted session ([`Error::Persist`]: it goes on in memory).
    Error(Error),
    /// A persisted session's messages became safe from a killed browser: all but the last
    /// `unstored` messages sent are durably stored or confirmed by the server (the rest would not
    /// survive the browser being killed).
    Stored {
        /// Messages sent and neither durably stored nor confirmed.
        unstored: u64,
    },
}

impl<In: serde::de::DeserializeOwned> SocketEvent<In> {
    pub(crate) fn from_output<C: Codec>(output: Output) -> Self {
        match output {
            Output::Open { durable } => SocketEvent::Open { durable },
            Output::Message(payload) => match C::decode(&payload) {
                Ok(message) => SocketEvent::Message(message),
                Err(error) => SocketEvent::Error(error),
            },
            Output::Reconnecting { attempt, delay_ms } => {
                SocketEvent::Reconnecting { attempt, delay: Duration::from_millis(delay_ms) }
            }
            Output::Resumed { replayed } => SocketEvent::Resumed { replayed },
            Output::SessionLost { reason, unconfirmed } => SocketEvent::SessionLost { reason, unconfirmed },
            Output::Closed { code, reason, was_clean, will_reconnect } => {
                SocketEvent::Closed { code, reason, was_clean, will_reconnect }
            }
            Output::Error(error) => SocketEvent::Error(error),
            Output::Stored { unstored } => SocketEvent::Stored { unstored },
        }
    }
}
