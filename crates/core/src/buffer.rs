//! The replay buffer: messages sent (or queued) and not yet acknowledged, bounded by count and bytes.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::SendError;
use crate::payload::Payload;

/// Bounds of a [`ReplayBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLimits {
    /// Most messages held at once. Default 10 000.
    pub max_messages: usize,
    /// Most payload bytes held at once. Default 8 MiB.
    pub max_bytes: usize,
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits { max_messages: 10_000, max_bytes: 8 << 20 }
    }
}

/// The highest sequence number a message can get: numbering that reached it (only a restored session
/// with corrupt numbers can) takes no more messages, so that `seq + 1` never overflows.
pub(crate) const MAX_SEQ: u64 = u64::MAX - 1;

/// Unacknowledged messages in sequence order. Append and acknowledge are O(1) amortised; the
/// sequence numbers held are always `first_seq() ..= last_seq()` without gaps. Payloads are
/// shared ([`push_shared`](Self::push_shared)): one broadcast to many buffers is one copy.
#[derive(Clone, Debug)]
pub struct ReplayBuffer {
    entries: VecDeque<Arc<Payload>>,
    /// Sequence number of `entries[0]` (or of the next push when empty).
    first_seq: u64,
    bytes: usize,
    limits: BufferLimits,
}

impl ReplayBuffer {
    /// An empty buffer whose first message will be number 1.
    pub fn new(limits: BufferLimits) -> Self {
        ReplayBuffer { entries: VecDeque::new(), first_seq: 1, bytes: 0, limits }
    }

    /// An empty buffer whose first message will be number `first_seq` (restored from storage).
    pub fn starting_at(limits: BufferLimits, first_seq: u64) -> Self {
        ReplayBuffer { entries: VecDeque::new(), first_seq: first_seq.max(1), bytes: 0, limits }
    }

    /// Appends a message whatever the bounds (restoring what storage already accepted).
    pub fn push_unbounded(&mut self, payload: Arc<Payload>) -> u64 {
        self.bytes += payload.len();
        self.entries.push_back(payload);
        self.last_seq()
    }

    /// The shared payload of message `seq`, if held.
    pub fn get_shared(&self, seq: u64) -> Option<&Arc<Payload>> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get(index)
    }

    /// Whether a payload of `len` bytes fits now.
    pub fn has_room(&self, len: usize) -> bool {
        self.entries.len() < self.limits.max_messages
            && self.bytes.saturating_add(len) <= self.limits.max_bytes
            && self.last_seq() < MAX_SEQ
    }

    /// Appends a message and returns its sequence number, or `BufferFull` (nothing appended).
    ///
    /// ```
    /// use durable_ws_core::{BufferLimits, ReplayBuffer, Payload};
    /// let mut buf = ReplayBuffer::new(BufferLimits { max_messages: 2, max_bytes: 100 });
    /// assert_eq!(buf.push(Payload::from("a")), Ok(1));
    /// assert_eq!(buf.push(Payload::from("b")), Ok(2));
    /// assert!(buf.push(Payload::from("c")).is_err());
    /// assert_eq!(buf.ack(1), 1);
    /// assert_eq!(buf.push(Payload::from("c")), Ok(3));
    /// ```
    pub fn push(&mut self, payload: Payload) -> Result<u64, SendError> {
        self.push_shared(Arc::new(payload))
    }

    /// Like [`push`](Self::push), for a payload shared with other buffers.
    pub fn push_shared(&mut self, payload: Arc<Payload>) -> Result<u64, SendError> {
        if !self.has_room(payload.len()) {
            return Err(SendError::BufferFull { messages: self.entries.len(), bytes: self.bytes });
        }
        self.bytes += payload.len();
        self.entries.push_back(payload);
        Ok(self.last_seq())
    }

    /// Frees every message with a sequence number `<= up_to`; returns how many were freed.
    pub fn ack(&mut self, up_to: u64) -> usize {
        let mut freed = 0;
        while self.first_seq <= up_to {
            let Some(p) = self.entries.pop_front() else { break };
            self.bytes -= p.len();
            self.first_seq += 1;
            freed += 1;
        }
        freed
    }

    /// The message with sequence number `seq`, if held.
    pub fn get(&self, seq: u64) -> Option<&Payload> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get(index).map(|p| &**p)
    }

    /// Sequence number of the oldest held message (of the next push when empty).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Sequence number of the newest message ever pushed (0 before the first).
    pub fn last_seq(&self) -> u64 {
        (self.first_seq - 1) + self.entries.len() as u64
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The configured bounds.
    pub fn limits(&self) -> BufferLimits {
        self.limits
    }

    /// Removes and returns every held message in order; numbering continues after them.
    pub fn drain(&mut self) -> Vec<(u64, Payload)> {
        let first = self.first_seq;
        self.first_seq += self.entries.len() as u64;
        self.bytes = 0;
        self.entries.drain(..).zip(first..).map(|(p, seq)| (seq, Arc::unwrap_or_clone(p))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Payload {
        Payload::from(s)
    }

    #[test]
    fn bounded_by_bytes() {
        let mut buf = ReplayBuffer::new(BufferLimits { max_messages: 100, max_bytes: 5 });
        assert_eq!(buf.push(text("abc")), Ok(1));
        assert_eq!(buf.push(text("xyz")), Err(SendError::BufferFull { messages: 1, bytes: 3 }));
        assert_eq!(buf.push(text("xy")), Ok(2));
        assert_eq!(buf.bytes(), 5);
        assert_eq!(buf.ack(2), 2);
        assert_eq!(buf.bytes(), 0);
        assert!(buf.is_empty());
        assert_eq!(buf.push(text("12345")), Ok(3));
    }

    #[test]
    fn ack_is_cumulative_and_idempotent() {
        let mut buf = ReplayBuffer::new(BufferLimits::default());
        for i in 0..10 {
            buf.push(text(&i.to_string())).unwrap();
        }
        assert_eq!(buf.ack(4), 4);
        assert_eq!(buf.ack(4), 0);
        assert_eq!(buf.ack(2), 0);
        assert_eq!(buf.first_seq(), 5);
        assert_eq!(buf.get(5), Some(&text("4")));
        assert_eq!(buf.get(4), None);
        assert_eq!(buf.get(11), None);
        assert_eq!(buf.ack(u64::MAX), 6);
        assert_eq!(buf.last_seq(), 10);
        assert_eq!(buf.push(text("x")), Ok(11));
    }

    #[test]
    fn drain_returns_everything_unconfirmed_in_order() {
        let mut buf = ReplayBuffer::new(BufferLimits::default());
        for s in ["a", "b", "c"] {
            buf.push(text(s)).unwrap();
        }
        buf.ack(1);
        assert_eq!(buf.drain(), vec![(2, text("b")), (3, text("c"))]);
        assert_eq!((buf.len(), buf.bytes()), (0, 0));
        assert_eq!(buf.push(text("d")), Ok(4));
    }
}
