//! Rooms: named sets of sessions with one order of messages for all members.

use std::marker::PhantomData;
use std::sync::Arc;

use durable_ws_core::server::{EndReason, SessionId};
use durable_ws_core::Payload;

use crate::codec::{Encode, Json};
use crate::durable::{lock, Durable};
use crate::session::SendError;
use crate::stats::Counters;

/// A room, reachable from anywhere (a handler, an HTTP route, a background task). Every message
/// sent to it reaches every member in the same order (one lock orders them), each member
/// through its own replayable session. A member whose client cannot keep up (its replay buffer
/// is full) is dropped from the server (its client learns it: `sessionlost`, reason
/// `overflow`), never silently skipped. `C` encodes the values sent ([`Json`] by default).
pub struct Room<C = Json> {
    durable: Durable,
    name: Arc<str>,
    codec: PhantomData<fn() -> C>,
}

impl<C> Clone for Room<C> {
    fn clone(&self) -> Self {
        Room { durable: self.durable.clone(), name: self.name.clone(), codec: PhantomData }
    }
}

impl<C> std::fmt::Debug for Room<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("name", &self.name).finish()
    }
}

impl<C> Room<C> {
    pub(crate) fn new(durable: Durable, name: Arc<str>) -> Self {
        Room { durable, name, codec: PhantomData }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same room with another codec.
    pub fn with_codec<D>(&self) -> Room<D> {
        Room::new(self.durable.clone(), self.name.clone())
    }

    /// Adds session `id` (no effect if it ended or is a member).
    pub fn join(&self, id: SessionId) {
        let mut state = lock(&self.durable.inner.state);
        let state = &mut *state;
        let Some(slot) = state.slots.get_mut(&id) else { return };
        slot.rooms.insert(self.name.clone());
        state.rooms.entry(self.name.clone()).or_default().insert(id);
        #[cfg(feature = "redis")]
        if self.durable.inner.shared.is_some() {
            let _ = crate::shared::feed(&self.durable, &self.name).send(crate::shared::FeedOp::Join(id));
        }
    }

    /// Removes session `id`.
    pub fn leave(&self, id: SessionId) {
        let mut state = lock(&self.durable.inner.state);
        if let Some(slot) = state.slots.get_mut(&id) {
            slot.rooms.remove(&self.name);
        }
        if let Some(members) = state.rooms.get_mut(&self.name) {
            members.remove(&id);
            if members.is_empty() {
                state.rooms.remove(&self.name);
            }
        }
        #[cfg(feature = "redis")]
        if self.durable.inner.shared.is_some() {
            let _ = crate::shared::feed(&self.durable, &self.name).send(crate::shared::FeedOp::Leave(id));
        }
    }

    /// The members, in the room's order.
    pub fn members(&self) -> Vec<SessionId> {
        lock(&self.durable.inner.state).rooms.get(&self.name).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// Sends `value` to every member; returns how many took it.
    pub fn send<T>(&self, value: &T) -> Result<usize, SendError>
    where
        C: Encode<T>,
    {
        self.send_payload(C::encode(value).map_err(SendError::Encode)?)
    }

    /// Sends a payload as it is to every member; returns how many took it.
    pub fn send_payload(&self, payload: Payload) -> Result<usize, SendError> {
        let max = self.durable.inner.config.max_message_bytes;
        if payload.len() > max {
            return Err(SendError::TooLarge { len: payload.len(), max });
        }
        let now = self.durable.inner.clock.now();
        // One copy, shared by every member's replay buffer.
        let payload = Arc::new(payload);
        #[cfg(feature = "redis")]
        if self.durable.inner.shared.is_some() {
            // Numbered in Redis (one order on every node); each node appends it to its members.
            let _ = crate::shared::feed(&self.durable, &self.name).send(crate::shared::FeedOp::Publish(payload));
            return Ok(self.members().len());
        }
        let mut state = lock(&self.durable.inner.state);
        let members: Vec<SessionId> =
            state.rooms.get(&self.name).map(|m| m.iter().copied().collect()).unwrap_or_default();
        // The server's budget is all or nothing: members are dropped only for their own buffers.
        let needed = payload.len().saturating_mul(members.len());
        if state.endpoint.buffered_bytes().saturating_add(needed) > self.durable.inner.config.max_buffered_bytes {
            return Err(SendError::Full);
        }
        let mut reached = 0;
        for id in members {
            match state.send(now, id, payload.clone()) {
                Ok(_) => reached += 1,
                Err(SendError::Full) => {
                    state.endpoint.end(now, id, EndReason::Overflow);
                }
                Err(_) => {}
            }
        }
        self.durable.settle(&mut state);
        Counters::add(&self.durable.inner.counters.messages_out, reached as u64);
        crate::metrics::bytes(durable_ws_core::server::metrics::direction::OUT, payload.len() * reached);
        Ok(reached)
    }
}
