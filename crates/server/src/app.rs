//! The seam between the durable connection loop and what a route does with messages.
//!
//! A connection hands every received message to its route's [`App`]; the app answers through
//! [`SessionHandle`]s, its own or (for a room) other members'. A send queues the message in
//! that session's replay buffer and wakes whichever connection drives it, so each member keeps
//! its own replayable stream.

use std::sync::Arc;

use durable_ws_core::{Payload, SendError, Token};

use crate::auth::Identity;
use crate::lock;
use crate::state::Shared;
use crate::stats::Counters;
use crate::store::{EntryRef, Gone};

/// What a durable route does with its sessions.
pub trait App: Send + Sync + 'static {
    /// A connection attached to `session`: a new session, or a resumed one (`resumed`).
    fn on_open(&self, session: &SessionHandle, resumed: bool) {
        let _ = (session, resumed);
    }

    /// `session` delivered a message (exactly once, in order).
    fn on_message(&self, session: &SessionHandle, payload: Payload);
}

/// A message could not be queued into a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The session ended (goodbye, expiry, overflow): drop the handle.
    #[error("session is gone")]
    Gone,
    /// The payload exceeds the message size limit.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The session's replay buffer was full: the session is dropped (a resume gets
    /// `LostOverflow`) and its connection closed with 1013.
    #[error("replay buffer overflow: session dropped")]
    Overflow,
}

/// A reference to one session, valid across its connections. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    token: Token,
    entry: EntryRef,
    shared: Arc<Shared>,
}

impl SessionHandle {
    pub(crate) fn new(entry: EntryRef, shared: Arc<Shared>) -> Self {
        let token = lock(&entry).token;
        SessionHandle { token, entry, shared }
    }

    pub(crate) fn entry(&self) -> &EntryRef {
        &self.entry
    }

    /// The session's token (a credential: do not log it).
    pub fn token(&self) -> Token {
        self.token
    }

    /// Who the session belongs to.
    pub fn identity(&self) -> Identity {
        lock(&self.entry).owner.clone()
    }

    /// Whether the session ended.
    pub fn is_gone(&self) -> bool {
        lock(&self.entry).gone.is_some()
    }

    /// Queues `payload` for the client; it is delivered once, in order, across reconnects.
    pub fn send(&self, payload: Payload) -> Result<u64, OutboundError> {
        let now = self.shared.clock.now();
        let mut entry = lock(&self.entry);
        if entry.gone.is_some() {
            return Err(OutboundError::Gone);
        }
        match entry.session.send(now, payload) {
            Ok(seq) => {
                Counters::add(&self.shared.counters.messages_out, 1);
                entry.wake.notify_one();
                Ok(seq)
            }
            Err(SendError::TooLarge { len, max }) => Err(OutboundError::TooLarge { len, max }),
            Err(SendError::Closed) => Err(OutboundError::Gone),
            Err(SendError::BufferFull { .. }) => {
                drop(entry);
                // The connection sees `Gone::Overflow` and closes with 1013.
                self.shared.store.remove(&self.entry, Gone::Overflow);
                Err(OutboundError::Overflow)
            }
        }
    }
}
