//! Error types of the core, one enum per kind of failure.

use thiserror::Error;

/// Why a received frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message had no bytes at all.
    #[error("empty frame")]
    Empty,
    /// The message ended inside a header field.
    #[error("truncated frame header")]
    Truncated,
    /// The first byte is not a known frame type.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownFrameType(u8),
    /// A `Hello` carried flag bits this version does not define.
    #[error("unknown hello flags 0x{0:02x}")]
    UnknownFlags(u8),
    /// A `Welcome` carried an unknown status.
    #[error("unknown welcome status {0}")]
    UnknownWelcomeStatus(u8),
    /// A varint does not fit 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// A varint was not in its shortest form.
    #[error("varint not in shortest form")]
    VarintNotMinimal,
    /// A data frame had sequence number 0 (they start at 1).
    #[error("data frame with sequence number 0")]
    ZeroSequence,
    /// A text data frame's payload is not UTF-8.
    #[error("text payload is not valid UTF-8")]
    InvalidUtf8,
    /// Bytes were left after a frame that has no payload.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// A peer broke the protocol; the connection is closed (1002, or 4002 from a browser) and the
/// session stays resumable where that is safe.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame could not be decoded.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// A well-formed frame that is not allowed in this role or state (e.g. `Data` before the handshake).
    #[error("unexpected {0:?} frame")]
    Unexpected(crate::frame::FrameType),
    /// A data frame skipped sequence numbers (a gap can never be filled later: links are ordered).
    #[error("sequence gap: expected {expected}, got {got}")]
    SequenceGap {
        /// The next sequence number this side can deliver.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// The peer acknowledged a sequence number this side never sent.
    #[error("ack of {acked} from the future (last sent {last_sent})")]
    AckFromFuture {
        /// The acknowledged number.
        acked: u64,
        /// The highest number sent in this session.
        last_sent: u64,
    },
    /// A `Welcome` claimed the server received more than this client ever sent.
    #[error("resume point {claimed} from the future (last sent {last_sent})")]
    ResumeFromFuture {
        /// What the peer claims to have received.
        claimed: u64,
        /// The highest number sent in this session.
        last_sent: u64,
    },
    /// A `Welcome` resumed from a point before what the server had already acknowledged.
    #[error("resume point {claimed} is behind the acknowledged {acked}")]
    ResumeBehindAck {
        /// What the peer claims to have received.
        claimed: u64,
        /// What it had already acknowledged.
        acked: u64,
    },
    /// A text WebSocket message arrived on a durable connection (all frames are binary).
    #[error("text message on a durable connection")]
    TextInDurableMode,
    /// A frame larger than the configured maximum (close code 1009).
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Frame length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code a server sends for this error: 1009 for oversized frames, 1007 for a text
    /// payload that is not UTF-8, 1002 otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::TooLarge { .. } => crate::close_code::MESSAGE_TOO_BIG,
            ProtocolError::Decode(DecodeError::InvalidUtf8) => crate::close_code::INVALID_PAYLOAD,
            _ => crate::close_code::PROTOCOL_ERROR,
        }
    }
}

/// A server cannot resume a session from the point a client's `Hello` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The client claims to have received messages this session never sent.
    #[error("client claims {claimed} but only {last_sent} were sent")]
    FromFuture {
        /// What the client claims to have received.
        claimed: u64,
        /// The highest number sent in this session.
        last_sent: u64,
    },
    /// The client claims less than it already acknowledged (those messages are freed).
    #[error("client claims {claimed} but already acknowledged {acked}")]
    BehindAck {
        /// What the client claims to have received.
        claimed: u64,
        /// What it had already acknowledged.
        acked: u64,
    },
    /// The session's GOODBYE went out: it is over (§5.7), even if its end was not processed yet.
    #[error("the session ended")]
    Ended,
}

/// An application message was not accepted. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// The payload is larger than `max_message_bytes`.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The replay buffer is full (count or bytes; or, after a corrupt restore, the sequence numbers
    /// are used up); wait for acknowledgements (backpressure).
    #[error("replay buffer full ({messages} messages, {bytes} bytes unconfirmed)")]
    BufferFull {
        /// Messages held.
        messages: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// The socket was closed for good (by the user, a terminal close code or the attempt limit).
    #[error("socket closed")]
    Closed,
}

/// Why a connection was given up by the client (reported as `Event::Error`, then `Event::Closed`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The socket did not open and complete the handshake within the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// No frame arrived within the heartbeat timeout after a ping: the link is half-open.
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    /// The server refused the connection: 4401 (credentials missing or expired), 4403
    /// (credentials invalid or not allowed) or 4409 (the session was resumed elsewhere).
    #[error("refused by the server ({code}): {reason}")]
    Refused {
        /// The close code.
        code: u16,
        /// The server's reason.
        reason: String,
    },
}
