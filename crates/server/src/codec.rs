//! How typed messages become payloads and back: the same encodings as the browser library's
//! typed API (JSON text messages; postcard binary messages), and [`Raw`] for payloads as they are.

use durable_ws_core::Payload;

/// A message could not be encoded or decoded; `source` says why.
#[derive(Debug, thiserror::Error)]
#[error("{kind} failed")]
pub struct CodecError {
    kind: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl CodecError {
    /// An encoding failure.
    pub fn encode(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CodecError { kind: "encoding", source: source.into() }
    }

    /// A decoding failure.
    pub fn decode(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CodecError { kind: "decoding", source: source.into() }
    }
}

/// Encodes values of type `T` into payloads and decodes them back.
pub trait Codec<T>: Send + Sync + 'static {
    /// The payload for `value`.
    fn encode(value: &T) -> Result<Payload, CodecError>;
    /// The value in `payload`.
    fn decode(payload: &Payload) -> Result<T, CodecError>;
}

/// JSON text messages (serde_json); decodes text and binary payloads alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Json {
    fn encode(value: &T) -> Result<Payload, CodecError> {
        serde_json::to_string(value).map(Payload::Text).map_err(CodecError::encode)
    }

    fn decode(payload: &Payload) -> Result<T, CodecError> {
        serde_json::from_slice(payload.as_bytes()).map_err(CodecError::decode)
    }
}

/// Compact binary messages (postcard). Both ends must agree on the types.
#[cfg(feature = "postcard")]
#[cfg_attr(docsrs, doc(cfg(feature = "postcard")))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

#[cfg(feature = "postcard")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Postcard {
    fn encode(value: &T) -> Result<Payload, CodecError> {
        postcard::to_allocvec(value).map(Payload::Binary).map_err(CodecError::encode)
    }

    fn decode(payload: &Payload) -> Result<T, CodecError> {
        postcard::from_bytes(payload.as_bytes()).map_err(CodecError::decode)
    }
}

/// Payloads as they are: text stays text, binary stays binary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Codec<Payload> for Raw {
    fn encode(value: &Payload) -> Result<Payload, CodecError> {
        Ok(value.clone())
    }

    fn decode(payload: &Payload) -> Result<Payload, CodecError> {
        Ok(payload.clone())
    }
}
