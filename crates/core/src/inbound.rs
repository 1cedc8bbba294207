//! Receive side: in-order delivery, duplicate drop, acknowledgement scheduling.

use crate::error::ProtocolError;
use crate::Millis;

/// What to do with a received data frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Receipt {
    /// The next message in order: deliver it.
    Deliver,
    /// Already delivered: drop it.
    Duplicate,
}

/// Tracks the highest sequence number delivered and when to acknowledge it.
#[derive(Clone, Debug)]
pub(crate) struct Inbound {
    delivered: u64,
    /// Highest number that may be acknowledged (the driver stored it somewhere safe first).
    limit: u64,
    /// Highest number the peer has been told about on this connection.
    told: u64,
    unacked: u32,
    due: Option<Millis>,
    delay_ms: Millis,
    every: u32,
}

impl Inbound {
    pub(crate) fn new(delay_ms: Millis, every: u32) -> Self {
        Inbound { delivered: 0, limit: u64::MAX, told: 0, unacked: 0, due: None, delay_ms, every: every.max(1) }
    }

    /// Highest sequence number delivered to the application.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Highest sequence number the peer may be told about: delivered, and within the limit.
    pub(crate) fn confirmed(&self) -> u64 {
        self.delivered.min(self.limit)
    }

    /// Highest number that may be acknowledged.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Starts numbering after `delivered` (a session restored from storage).
    pub(crate) fn restore(&mut self, delivered: u64) {
        self.delivered = delivered;
        self.told = delivered;
    }

    /// Acknowledges nothing beyond `limit` until it is raised; raising it makes the
    /// acknowledgement due at once.
    pub(crate) fn set_limit(&mut self, now: Millis, limit: u64) {
        self.limit = limit;
        if self.confirmed() > self.told {
            self.due = Some(now);
        }
    }

    /// Forgets deliveries after `to` (the driver could not store them): the peer sends them again.
    pub(crate) fn rewind(&mut self, to: u64) {
        if to < self.delivered {
            self.delivered = to;
            self.told = self.told.min(to);
        }
    }

    /// A new connection whose handshake already told the peer everything confirmed so far.
    pub(crate) fn on_connect(&mut self) {
        self.told = self.confirmed();
        self.unacked = 0;
        self.due = None;
    }

    /// Forgets everything: a new session starts numbering from 1.
    pub(crate) fn reset(&mut self) {
        *self = Inbound::new(self.delay_ms, self.every);
    }

    pub(crate) fn receive(&mut self, now: Millis, seq: u64) -> Result<Receipt, ProtocolError> {
        // Compared without `delivered + 1`: a restored position may be the last number there is.
        let receipt = if seq <= self.delivered {
            // The peer did not see our acknowledgement: tell it again.
            self.told = self.told.min(seq.saturating_sub(1));
            Receipt::Duplicate
        } else if seq - self.delivered == 1 {
            self.delivered = seq;
            Receipt::Deliver
        } else {
            return Err(ProtocolError::SequenceGap { expected: self.delivered + 1, got: seq });
        };
        self.unacked = self.unacked.saturating_add(1);
        if self.unacked >= self.every {
            self.due = Some(now);
        } else if self.due.is_none() {
            self.due = Some(now.saturating_add(self.delay_ms));
        }
        Ok(receipt)
    }

    /// The acknowledgement to send now, if one is due.
    pub(crate) fn take_ack(&mut self, now: Millis) -> Option<u64> {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                self.unacked = 0;
                if self.confirmed() > self.told {
                    self.told = self.confirmed();
                    return Some(self.told);
                }
                None
            }
            _ => None,
        }
    }

    /// When an acknowledgement falls due.
    pub(crate) fn deadline(&self) -> Option<Millis> {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_coalesced_by_delay_and_count() {
        let mut inbound = Inbound::new(20, 3);
        assert_eq!(inbound.receive(0, 1), Ok(Receipt::Deliver));
        assert_eq!(inbound.deadline(), Some(20));
        assert_eq!(inbound.take_ack(19), None);
        assert_eq!(inbound.receive(5, 2), Ok(Receipt::Deliver));
        assert_eq!(inbound.deadline(), Some(20), "the first message's deadline holds");
        assert_eq!(inbound.receive(6, 3), Ok(Receipt::Deliver));
        assert_eq!(inbound.deadline(), Some(6), "the third message makes it due at once");
        assert_eq!(inbound.take_ack(6), Some(3));
        assert_eq!(inbound.deadline(), None);
    }

    #[test]
    fn nothing_beyond_the_limit_is_acknowledged_until_it_is_raised() {
        let mut inbound = Inbound::new(20, 1);
        inbound.set_limit(0, 0);
        inbound.receive(0, 1).unwrap();
        inbound.receive(0, 2).unwrap();
        assert_eq!(inbound.take_ack(0), None, "not stored yet");
        assert_eq!(inbound.confirmed(), 0);
        inbound.set_limit(5, 1);
        assert_eq!(inbound.deadline(), Some(5), "due once the limit rises");
        assert_eq!(inbound.take_ack(5), Some(1));
        inbound.rewind(1);
        assert_eq!(inbound.receive(6, 2), Ok(Receipt::Deliver), "a rewound message is delivered again");
        inbound.set_limit(7, u64::MAX);
        assert_eq!(inbound.take_ack(7), Some(2));
    }

    #[test]
    fn duplicates_are_dropped_and_acknowledged_again() {
        let mut inbound = Inbound::new(20, 32);
        inbound.receive(0, 1).unwrap();
        inbound.receive(0, 2).unwrap();
        assert_eq!(inbound.take_ack(20), Some(2));
        assert_eq!(inbound.receive(30, 2), Ok(Receipt::Duplicate));
        assert_eq!(inbound.take_ack(50), Some(2));
        assert_eq!(inbound.delivered(), 2);
    }

    #[test]
    fn a_gap_is_a_protocol_error() {
        let mut inbound = Inbound::new(20, 32);
        inbound.receive(0, 1).unwrap();
        assert_eq!(inbound.receive(0, 3), Err(ProtocolError::SequenceGap { expected: 2, got: 3 }));
        assert_eq!(inbound.delivered(), 1);
    }
}
