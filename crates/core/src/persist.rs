//! A client session that outlives the page: what a driver must store, in which batches, and how a
//! stored session comes back.
//!
//! The client says what to store ([`Client::poll_store`](crate::Client::poll_store) hands out a
//! [`StoreBatch`]); the driver writes it at once to a fast store that outlives the page (not a
//! killed browser) and reports each batch durably written ([`Client::stored`](crate::Client::stored)).
//! The rules that keep storage and server consistent:
//! - a message goes on the wire once handed out, and only after a durable position names the
//!   session's token (else a killed browser could restore it without the token and send it again
//!   in another session);
//! - a received message is acknowledged once its delivery is durably recorded (so the resume point
//!   a restored session claims is never behind the server's);
//! - a restored session records, until it resumes, which of its messages never went out
//!   ([`Position::unsent_after`]); if the server got more than storage kept (a browser killed
//!   before its last writes were durable), the resume confirms all it holds and numbers on after
//!   the server's, and holds its sends until a position saying so is durable.
//!
//! The next page restores the session ([`Client::restore`](crate::Client::restore)) and resumes.

use std::sync::Arc;

use crate::frame::Token;
use crate::payload::Payload;

/// Where a session stands: stored beside its unconfirmed messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The server session, once a `WELCOME` gave one.
    pub token: Option<Token>,
    /// Own messages go on the wire numbered from `wire_base + 1`.
    pub wire_base: u64,
    /// Every own message up to this number is confirmed; the stored outbox starts after it.
    pub acked: u64,
    /// Every received message up to this number was delivered to the application.
    pub delivered: u64,
    /// A session restored from storage and not yet resumed: its own messages after this number were
    /// queued since and never transmitted (else storage cannot tell which were: after a killed
    /// browser, any may have been).
    pub unsent_after: Option<u64>,
}

/// The format's tag: a stored position without it was written by another version.
const FORMAT: &str = "dws1";

impl Position {
    /// The position as stored: `dws1:<token hex or empty>:<wire_base>:<acked>:<delivered>`, then
    /// `:<unsent_after>` if there is one.
    pub fn encode(&self) -> String {
        // By hand, not `format!`: the browser build carries no formatting machinery.
        let mut out = String::with_capacity(96);
        out.push_str(FORMAT);
        out.push(':');
        if let Some(token) = self.token {
            out.push_str(&token.to_hex());
        }
        for number in
            [Some(self.wire_base), Some(self.acked), Some(self.delivered), self.unsent_after].into_iter().flatten()
        {
            out.push(':');
            push_decimal(&mut out, number);
        }
        out
    }

    /// Reads a stored position back.
    pub fn decode(stored: &str) -> Result<Position, StorageError> {
        let mut fields = stored.split(':');
        if fields.next() != Some(FORMAT) {
            return Err(StorageError::Format);
        }
        let token = match fields.next() {
            Some("") => None,
            Some(hex) => Some(Token::from_hex(hex).ok_or(StorageError::Corrupt("token"))?),
            None => return Err(StorageError::Corrupt("token")),
        };
        let mut number = |what| fields.next().and_then(|n| n.parse::<u64>().ok()).ok_or(StorageError::Corrupt(what));
        let position = Position {
            token,
            wire_base: number("wire base")?,
            acked: number("acked")?,
            delivered: number("delivered")?,
            unsent_after: None,
        };
        let position = match fields.next() {
            None => position,
            Some(n) => Position {
                unsent_after: Some(n.parse().map_err(|_| StorageError::Corrupt("unsent after"))?),
                ..position
            },
        };
        if fields.next().is_some() {
            return Err(StorageError::Corrupt("trailing fields"));
        }
        Ok(position)
    }
}

fn push_decimal(out: &mut String, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// What the driver must write, in one step (a storage transaction), then report with
/// [`Client::stored`](crate::Client::stored) once it is durable.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreBatch {
    /// Names this batch in [`Client::stored`](crate::Client::stored).
    pub id: u64,
    /// Delete every stored message and the position first: the session was lost (and reported) or
    /// closed for good.
    pub clear: bool,
    /// Own messages to add, by sequence number.
    pub messages: Vec<(u64, Arc<Payload>)>,
    /// The position to write; then delete every stored message numbered up to `acked`. `None`:
    /// the client is closed for good and nothing is to be kept.
    pub position: Option<Position>,
}

/// A stored session cannot be read back. The client starts a new session; the messages that could
/// be read are reported (`LostReason::Storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Written by another version of the format.
    #[error("the stored session has an unknown format")]
    Format,
    /// A field could not be read.
    #[error("the stored session is corrupt ({0})")]
    Corrupt(&'static str),
    /// A message is missing between the confirmed ones and the last stored one.
    #[error("the stored session is missing message {0}")]
    Gap(u64),
}

impl StorageError {
    /// What went wrong, without numbers (for drivers that carry no formatting machinery).
    pub fn describe(&self) -> &'static str {
        match self {
            StorageError::Format => "the stored session has an unknown format",
            StorageError::Corrupt(_) => "the stored session is corrupt",
            StorageError::Gap(_) => "the stored session is missing a message",
        }
    }
}

/// A stored session checked: the position and the unconfirmed payloads from `acked + 1`, in order.
pub(crate) struct Restored {
    pub(crate) position: Position,
    pub(crate) unconfirmed: Vec<Arc<Payload>>,
}

/// Checks what storage held (messages in ascending order): those at or below `acked` are dropped
/// (confirmed, not yet deleted), the rest must follow `acked` without a gap. On error, the readable
/// messages.
pub(crate) fn check(
    position: &str,
    mut messages: Vec<(u64, Payload)>,
) -> Result<Restored, (StorageError, Vec<(u64, Payload)>)> {
    let position = match Position::decode(position) {
        Ok(position) => position,
        Err(error) => return Err((error, messages)),
    };
    messages.retain(|(seq, _)| *seq > position.acked);
    // Deliveries are counted within a server session: without one, none.
    if position.token.is_none() && position.delivered != 0 {
        return Err((StorageError::Corrupt("delivered"), messages));
    }
    let last = position.acked.checked_add(messages.len() as u64).filter(|&last| last <= crate::buffer::MAX_SEQ);
    if last.is_none() {
        return Err((StorageError::Corrupt("sequence numbers"), messages));
    }
    // The wire numbers of confirmed messages are not negative: a base "below zero" (wrapped) comes
    // from a rebase after the server got more than storage kept, one beyond `acked` from corruption.
    if (position.acked.wrapping_sub(position.wire_base) as i64) < 0 {
        return Err((StorageError::Corrupt("wire base"), messages));
    }
    if let Some(gap) = messages.iter().zip(position.acked + 1..).find(|((seq, _), expected)| seq != expected) {
        let missing = gap.1;
        return Err((StorageError::Gap(missing), messages));
    }
    Ok(Restored { position, unconfirmed: messages.into_iter().map(|(_, payload)| Arc::new(payload)).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_as_written() {
        for position in [
            Position::default(),
            Position {
                token: Some(Token([0xab; 16])),
                wire_base: 3,
                acked: u64::MAX,
                delivered: 7,
                unsent_after: None,
            },
            Position { token: Some(Token([1; 16])), wire_base: 0, acked: 4, delivered: 0, unsent_after: Some(6) },
        ] {
            assert_eq!(Position::decode(&position.encode()), Ok(position));
        }
        assert_eq!(Position::default().encode(), "dws1::0:0:0");
    }

    #[test]
    fn a_foreign_or_damaged_position_is_refused() {
        assert_eq!(Position::decode("dws0::0:0:0"), Err(StorageError::Format));
        assert_eq!(Position::decode(""), Err(StorageError::Format));
        assert_eq!(Position::decode("dws1:zz:0:0:0"), Err(StorageError::Corrupt("token")));
        assert_eq!(Position::decode("dws1::0:-1:0"), Err(StorageError::Corrupt("acked")));
        assert_eq!(Position::decode("dws1::0:0"), Err(StorageError::Corrupt("delivered")));
        assert_eq!(Position::decode("dws1::0:0:0:x"), Err(StorageError::Corrupt("unsent after")));
        assert_eq!(Position::decode("dws1::0:0:0:0:0"), Err(StorageError::Corrupt("trailing fields")));
        let hex = "é".repeat(16);
        assert_eq!(Position::decode(&format!("dws1:{hex}:0:0:0")), Err(StorageError::Corrupt("token")));
    }

    #[test]
    fn stored_messages_must_follow_the_confirmed_ones() {
        let text = |s: &str| Payload::from(s);
        let ok = check("dws1::0:2:0", vec![(1, text("a")), (3, text("c")), (4, text("d"))]).ok().unwrap();
        assert_eq!(ok.unconfirmed, vec![Arc::new(text("c")), Arc::new(text("d"))], "1 was confirmed");
        let (error, readable) = check("dws1::0:2:0", vec![(3, text("c")), (5, text("e"))]).err().unwrap();
        assert_eq!((error, readable), (StorageError::Gap(4), vec![(3, text("c")), (5, text("e"))]));
        let (error, readable) = check("garbage", vec![(1, text("a"))]).err().unwrap();
        assert_eq!((error, readable.len()), (StorageError::Format, 1));
        let max = crate::buffer::MAX_SEQ;
        assert!(check(&format!("dws1::0:{max}:0"), vec![(max + 1, text("x"))]).is_err());
    }
}
