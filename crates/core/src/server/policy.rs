//! How a server closes connections: the rules both servers carry out (the Rust one in
//! `crates/server`, the Node.js one through `crates/node`), written once.

use crate::close_code;
use crate::Millis;

use super::EndReason;

/// How long a closing handshake may take before the connection is dropped.
pub const CLOSE_TIMEOUT_MS: Millis = 1_000;

/// How long a server waits for the client's close after a goodbye (PROTOCOL.md §5.7) before it
/// closes the connection itself.
pub const GOODBYE_CLOSE_WAIT_MS: Millis = 5_000;

/// The longest close reason in bytes (RFC 6455 §5.5: a control frame carries at most 125, two of
/// them the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// What a server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Close it now with `code` and `reason`.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
    /// A goodbye went out or came in: the client closes (with its application's code); if it has
    /// not within `wait_ms`, close with `code` and `reason`.
    AwaitClient {
        /// How long to wait for the client's close.
        wait_ms: Millis,
        /// The close code if it does not close.
        code: u16,
        /// The close reason if it does not close.
        reason: &'static str,
    },
    /// Nothing more: the connection is already closing (with the error that ended the session).
    Nothing,
}

/// How the connection attached to a session that ended for `reason` is closed.
pub fn on_session_end(reason: EndReason) -> Closing {
    let close = |code, reason| Closing::Close { code, reason };
    match reason {
        // A goodbye either way: the client closes.
        EndReason::Goodbye | EndReason::Closed => {
            Closing::AwaitClient { wait_ms: GOODBYE_CLOSE_WAIT_MS, code: close_code::NORMAL, reason: "goodbye" }
        }
        EndReason::Expired => close(close_code::SESSION_EXPIRED, "session expired"),
        EndReason::Overflow => close(close_code::TRY_AGAIN_LATER, "replay buffer overflow"),
        EndReason::Moved => close(close_code::SUPERSEDED, "session moved to another node"),
        EndReason::ProtocolErrors => Closing::Nothing,
    }
}

/// The code an application's refusal closes with: its own if a server may send it (1000, 1003,
/// 1007–1014 or 3000–4999), else 4403 (forbidden: the client stops, as the application meant).
///
/// ```
/// use durable_ws_core::server::policy::refusal_code;
/// assert_eq!(refusal_code(4401), 4401);
/// assert_eq!(refusal_code(1006), 4403); // reserved: never sent on the wire
/// assert_eq!(refusal_code(7), 4403);
/// ```
pub fn refusal_code(code: u16) -> u16 {
    match code {
        1000 | 1003 | 1007..=1014 | 3000..=4999 => code,
        _ => close_code::FORBIDDEN,
    }
}

/// `text` as a close reason: its longest prefix of at most [`MAX_CLOSE_REASON_BYTES`] bytes that
/// ends on a character boundary.
///
/// ```
/// use durable_ws_core::server::policy::close_reason;
/// assert_eq!(close_reason("goodbye"), "goodbye");
/// let long = format!("{}é", "a".repeat(122)); // 124 bytes: the é would be cut in half
/// assert_eq!(close_reason(&long), "a".repeat(122));
/// ```
pub fn close_reason(text: &str) -> &str {
    let mut end = text.len().min(MAX_CLOSE_REASON_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_reason_closes_as_the_table_says() {
        let table = [
            (EndReason::Goodbye, Closing::AwaitClient { wait_ms: 5_000, code: 1000, reason: "goodbye" }),
            (EndReason::Closed, Closing::AwaitClient { wait_ms: 5_000, code: 1000, reason: "goodbye" }),
            (EndReason::Expired, Closing::Close { code: 4004, reason: "session expired" }),
            (EndReason::Overflow, Closing::Close { code: 1013, reason: "replay buffer overflow" }),
            (EndReason::Moved, Closing::Close { code: 4409, reason: "session moved to another node" }),
            (EndReason::ProtocolErrors, Closing::Nothing),
        ];
        for (reason, closing) in table {
            assert_eq!(on_session_end(reason), closing, "{reason:?}");
        }
    }

    #[test]
    fn close_reasons_fit_and_end_on_a_character() {
        for text in ["", "goodbye", &"a".repeat(200), &"é".repeat(100), &format!("{}😀x", "a".repeat(120))] {
            let reason = close_reason(text);
            assert!(reason.len() <= MAX_CLOSE_REASON_BYTES, "{reason:?}");
            assert!(text.starts_with(reason));
            let next = text[reason.len()..].chars().next().map_or(0, char::len_utf8);
            assert!(
                reason.len() == text.len() || reason.len() + next > MAX_CLOSE_REASON_BYTES,
                "the longest that fits"
            );
        }
    }
}
