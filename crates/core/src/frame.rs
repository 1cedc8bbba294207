//! The wire format of `durable.v1` (see `docs/PROTOCOL.md`).
//!
//! Every frame is one binary WebSocket message: a one-byte frame type, a few
//! header fields (LEB128 varints, a fixed 16-byte token), then for data frames
//! the payload, untouched, up to the end of the message. The payload is never
//! re-encoded: a receiver reads the header and slices the rest.

use crate::error::DecodeError;
use crate::payload::PayloadRef;

/// The subprotocol a client offers and a durable server selects.
pub const SUBPROTOCOL: &str = "durable.v1";

/// Length in bytes of a session token.
pub const TOKEN_LEN: usize = 16;

/// A session token: 128 bits chosen by the server from a CSPRNG.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl Token {
    /// Its text form: 32 lowercase hex digits (for URLs and storage; it is a credential, so never
    /// for logs). Written by hand: the browser build carries no formatting machinery.
    ///
    /// ```
    /// use durable_ws_core::Token;
    /// let token = Token([0xab; 16]);
    /// assert_eq!(token.to_hex(), "ab".repeat(16));
    /// assert_eq!(Token::from_hex(&token.to_hex()), Some(token));
    /// assert_eq!(Token::from_hex("ab"), None);
    /// ```
    pub fn to_hex(&self) -> String {
        self.0
            .iter()
            .flat_map(|b| [b >> 4, b & 15])
            .map(|digit| char::from_digit(digit.into(), 16).unwrap_or('0'))
            .collect()
    }

    /// Reads 32 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Token> {
        let bytes = text.as_bytes();
        if bytes.len() != 2 * TOKEN_LEN {
            return None;
        }
        let mut token = [0; TOKEN_LEN];
        for (byte, pair) in token.iter_mut().zip(bytes.chunks_exact(2)) {
            let digit = |b: u8| (b as char).to_digit(16);
            *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(Token(token))
    }
}

impl core::fmt::Debug for Token {
    // Tokens are credentials: never print them whole.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Token({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// The frame type, the first byte of every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// Client → server, first frame on every connection.
    Hello = 0x01,
    /// Server → client, answer to `Hello`.
    Welcome = 0x02,
    /// Application message whose payload is UTF-8 text.
    DataText = 0x03,
    /// Application message whose payload is bytes.
    DataBinary = 0x04,
    /// Cumulative acknowledgement.
    Ack = 0x05,
    /// Heartbeat request.
    Ping = 0x06,
    /// Heartbeat answer, echoing the ping's value.
    Pong = 0x07,
    /// Ends the session for good.
    Goodbye = 0x08,
}

impl FrameType {
    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x01 => Self::Hello,
            0x02 => Self::Welcome,
            0x03 => Self::DataText,
            0x04 => Self::DataBinary,
            0x05 => Self::Ack,
            0x06 => Self::Ping,
            0x07 => Self::Pong,
            0x08 => Self::Goodbye,
            other => return Err(DecodeError::UnknownFrameType(other)),
        })
    }
}

/// What the server made of a client's `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WelcomeStatus {
    /// A new session; the client asked for none.
    New = 0,
    /// The requested session was resumed.
    Resumed = 1,
    /// The requested session is unknown or expired; this is a new one.
    LostUnknown = 2,
    /// The requested session was dropped because its server-side replay buffer overflowed.
    LostOverflow = 3,
    /// The requested session may not be resumed by this client (other identity, or an
    /// impossible resume point); this is a new one.
    LostRefused = 4,
}

impl WelcomeStatus {
    /// Every status, in wire order.
    pub const ALL: [WelcomeStatus; 5] = [
        WelcomeStatus::New,
        WelcomeStatus::Resumed,
        WelcomeStatus::LostUnknown,
        WelcomeStatus::LostOverflow,
        WelcomeStatus::LostRefused,
    ];

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Self::New,
            1 => Self::Resumed,
            2 => Self::LostUnknown,
            3 => Self::LostOverflow,
            4 => Self::LostRefused,
            other => return Err(DecodeError::UnknownWelcomeStatus(other)),
        })
    }

    /// Whether this status tells a client that asked to resume that its session is gone.
    pub fn is_lost(self) -> bool {
        matches!(self, Self::LostUnknown | Self::LostOverflow | Self::LostRefused)
    }
}

/// A decoded frame, borrowing its payload from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Client → server. `resume` names the session to resume and the highest
    /// sequence number the client has delivered from the server.
    Hello {
        /// `(token, last_received)` when resuming, `None` for a new session.
        resume: Option<(Token, u64)>,
    },
    /// Server → client.
    Welcome {
        /// What happened to the requested session.
        status: WelcomeStatus,
        /// The token of the session now in force.
        token: Token,
        /// The highest sequence number the server has received from this client
        /// in this session (0 for a new session).
        last_received: u64,
    },
    /// An application message. Sequence numbers start at 1 per direction.
    Data {
        /// Sequence number of this message.
        seq: u64,
        /// The message itself.
        payload: PayloadRef<'a>,
    },
    /// Everything up to and including `seq` has been delivered.
    Ack {
        /// Highest sequence number delivered.
        seq: u64,
    },
    /// Heartbeat request; the peer answers with a `Pong` carrying `value`.
    Ping {
        /// Opaque to the receiver (the sender's clock, for RTT).
        value: u64,
    },
    /// Heartbeat answer.
    Pong {
        /// The value of the ping answered.
        value: u64,
    },
    /// The sender ends the session for good; no resume will follow.
    Goodbye,
}

impl<'a> Frame<'a> {
    /// The frame's type byte.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello { .. } => FrameType::Hello,
            Frame::Welcome { .. } => FrameType::Welcome,
            Frame::Data { payload: PayloadRef::Text(_), .. } => FrameType::DataText,
            Frame::Data { payload: PayloadRef::Binary(_), .. } => FrameType::DataBinary,
            Frame::Ack { .. } => FrameType::Ack,
            Frame::Ping { .. } => FrameType::Ping,
            Frame::Pong { .. } => FrameType::Pong,
            Frame::Goodbye => FrameType::Goodbye,
        }
    }

    /// Decodes one frame. Never panics; every malformed input is a typed error.
    ///
    /// ```
    /// use durable_ws_core::frame::Frame;
    /// use durable_ws_core::PayloadRef;
    /// let frame = Frame::decode(&[0x03, 0x07, b'h', b'i']).unwrap();
    /// assert_eq!(frame, Frame::Data { seq: 7, payload: PayloadRef::Text("hi") });
    /// ```
    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        let (&first, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let mut r = Reader { rest };
        let frame = match FrameType::from_byte(first)? {
            FrameType::Hello => {
                let flags = r.byte()?;
                let resume = match flags {
                    0 => None,
                    1 => Some((r.token()?, r.varint()?)),
                    other => return Err(DecodeError::UnknownFlags(other)),
                };
                Frame::Hello { resume }
            }
            FrameType::Welcome => Frame::Welcome {
                status: WelcomeStatus::from_byte(r.byte()?)?,
                token: r.token()?,
                last_received: r.varint()?,
            },
            kind @ (FrameType::DataText | FrameType::DataBinary) => {
                let seq = r.varint()?;
                if seq == 0 {
                    return Err(DecodeError::ZeroSequence);
                }
                let rest = core::mem::take(&mut r.rest);
                let payload = if kind == FrameType::DataText {
                    PayloadRef::Text(core::str::from_utf8(rest).map_err(|_| DecodeError::InvalidUtf8)?)
                } else {
                    PayloadRef::Binary(rest)
                };
                Frame::Data { seq, payload }
            }
            FrameType::Ack => Frame::Ack { seq: r.varint()? },
            FrameType::Ping => Frame::Ping { value: r.varint()? },
            FrameType::Pong => Frame::Pong { value: r.varint()? },
            FrameType::Goodbye => Frame::Goodbye,
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::TrailingBytes(r.rest.len()));
        }
        Ok(frame)
    }

    /// Appends the encoded frame to `out`.
    ///
    /// ```
    /// use durable_ws_core::frame::Frame;
    /// let mut out = Vec::new();
    /// Frame::Ack { seq: 300 }.encode(&mut out);
    /// assert_eq!(out, [0x05, 0xac, 0x02]);
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.frame_type() as u8);
        match *self {
            Frame::Hello { resume: None } => out.push(0),
            Frame::Hello { resume: Some((token, last_received)) } => {
                out.push(1);
                out.extend_from_slice(&token.0);
                put_varint(out, last_received);
            }
            Frame::Welcome { status, token, last_received } => {
                out.push(status as u8);
                out.extend_from_slice(&token.0);
                put_varint(out, last_received);
            }
            Frame::Data { seq, payload } => {
                put_varint(out, seq);
                out.extend_from_slice(payload.as_bytes());
            }
            Frame::Ack { seq: v } | Frame::Ping { value: v } | Frame::Pong { value: v } => put_varint(out, v),
            Frame::Goodbye => {}
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes, shortest form).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded length of a data frame's header (type byte and sequence number).
pub fn data_header_len(seq: u64) -> usize {
    1 + varint_len(seq)
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn token(&mut self) -> Result<Token, DecodeError> {
        if self.rest.len() < TOKEN_LEN {
            return Err(DecodeError::Truncated);
        }
        let (token, rest) = self.rest.split_at(TOKEN_LEN);
        self.rest = rest;
        let mut t = [0; TOKEN_LEN];
        t.copy_from_slice(token);
        Ok(Token(t))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 0x01 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::VarintNotMinimal);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Token = Token([0xab; TOKEN_LEN]);

    fn roundtrip(frame: Frame<'_>) {
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(Frame::decode(&out), Ok(frame));
    }

    #[test]
    fn every_frame_roundtrips() {
        roundtrip(Frame::Hello { resume: None });
        roundtrip(Frame::Hello { resume: Some((T, 0)) });
        roundtrip(Frame::Hello { resume: Some((T, u64::MAX)) });
        for status in WelcomeStatus::ALL {
            roundtrip(Frame::Welcome { status, token: T, last_received: 42 });
        }
        roundtrip(Frame::Data { seq: 1, payload: PayloadRef::Text("") });
        roundtrip(Frame::Data { seq: 1 << 40, payload: PayloadRef::Text("héllo") });
        roundtrip(Frame::Data { seq: 127, payload: PayloadRef::Binary(&[0, 1, 2, 255]) });
        roundtrip(Frame::Ack { seq: 0 });
        roundtrip(Frame::Ping { value: 12345 });
        roundtrip(Frame::Pong { value: 12345 });
        roundtrip(Frame::Goodbye);
    }

    #[test]
    fn byte_level_examples_match_the_spec() {
        let mut out = Vec::new();
        Frame::Data { seq: 1, payload: PayloadRef::Text("hi") }.encode(&mut out);
        assert_eq!(out, [0x03, 0x01, b'h', b'i']);
        out.clear();
        Frame::Hello { resume: None }.encode(&mut out);
        assert_eq!(out, [0x01, 0x00]);
        out.clear();
        Frame::Hello { resume: Some((Token([0x11; 16]), 200)) }.encode(&mut out);
        let mut expected = vec![0x01, 0x01];
        expected.extend([0x11; 16]);
        expected.extend([0xc8, 0x01]);
        assert_eq!(out, expected);
        out.clear();
        Frame::Goodbye.encode(&mut out);
        assert_eq!(out, [0x08]);
    }

    #[test]
    fn malformed_input_gives_typed_errors() {
        assert_eq!(Frame::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Frame::decode(&[0x09]), Err(DecodeError::UnknownFrameType(0x09)));
        assert_eq!(Frame::decode(&[0x00]), Err(DecodeError::UnknownFrameType(0x00)));
        assert_eq!(Frame::decode(&[0x05]), Err(DecodeError::Truncated));
        assert_eq!(Frame::decode(&[0x05, 0x80]), Err(DecodeError::Truncated));
        assert_eq!(Frame::decode(&[0x05, 0x80, 0x00]), Err(DecodeError::VarintNotMinimal));
        assert_eq!(Frame::decode(&[0x05, 0x01, 0x00]), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(Frame::decode(&[0x08, 0x00]), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(Frame::decode(&[0x03, 0x00]), Err(DecodeError::ZeroSequence));
        assert_eq!(Frame::decode(&[0x03, 0x01, 0xff]), Err(DecodeError::InvalidUtf8));
        assert_eq!(Frame::decode(&[0x01, 0x02]), Err(DecodeError::UnknownFlags(2)));
        assert_eq!(Frame::decode(&[0x01, 0x01, 0x00]), Err(DecodeError::Truncated));
        assert_eq!(Frame::decode(&[0x02, 0x09]), Err(DecodeError::UnknownWelcomeStatus(9)));
        let eleven = [0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Frame::decode(&eleven), Err(DecodeError::VarintOverflow));
        let too_big = [0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Frame::decode(&too_big), Err(DecodeError::VarintOverflow));
        let max = [0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Frame::decode(&max), Ok(Frame::Ack { seq: u64::MAX }));
    }

    #[test]
    fn header_len_matches_encoding() {
        for seq in [1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            Frame::Data { seq, payload: PayloadRef::Binary(&[]) }.encode(&mut out);
            assert_eq!(out.len(), data_header_len(seq), "seq {seq}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Frame::decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_plausible_headers(
            kind in 0u8..10, rest in proptest::collection::vec(any::<u8>(), 0..40)
        ) {
            let mut bytes = vec![kind];
            bytes.extend(rest);
            if let Ok(frame) = Frame::decode(&bytes) {
                // Whatever decodes re-encodes to exactly the same bytes (one encoding per frame).
                let mut out = Vec::new();
                frame.encode(&mut out);
                prop_assert_eq!(out, bytes);
            }
        }

        #[test]
        fn varints_roundtrip(v in any::<u64>()) {
            let mut out = vec![0x05];
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), 1 + varint_len(v));
            prop_assert_eq!(Frame::decode(&out), Ok(Frame::Ack { seq: v }));
        }
    }
}
