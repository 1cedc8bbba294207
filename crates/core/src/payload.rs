//! Application payloads: text or bytes, exactly as the application sent them.

/// An owned application message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text message (sent as a WebSocket text message in plain mode).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Payload {
    /// The payload's bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(s) => s.as_bytes(),
            Payload::Binary(b) => b,
        }
    }

    /// Length in bytes; what the replay buffer's byte bound counts.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrows the payload.
    pub fn as_ref(&self) -> PayloadRef<'_> {
        match self {
            Payload::Text(s) => PayloadRef::Text(s),
            Payload::Binary(b) => PayloadRef::Binary(b),
        }
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Payload::Binary(b)
    }
}

/// A borrowed application message, as decoded from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadRef<'a> {
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Binary(&'a [u8]),
}

impl<'a> PayloadRef<'a> {
    /// The payload's bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            PayloadRef::Text(s) => s.as_bytes(),
            PayloadRef::Binary(b) => b,
        }
    }

    /// Copies the payload into an owned one.
    pub fn to_owned(&self) -> Payload {
        match *self {
            PayloadRef::Text(s) => Payload::Text(s.to_owned()),
            PayloadRef::Binary(b) => Payload::Binary(b.to_vec()),
        }
    }
}

/// How a WebSocket message goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
}
