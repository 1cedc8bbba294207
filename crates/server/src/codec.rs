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

/// Encodes values of type `T` into payloads (what a session sends).
pub trait Encode<T>: Send + Sync + 'static {
    /// The payload for `value`.
    fn encode(value: &T) -> Result<Payload, CodecError>;
}

/// Decodes values of type `T` from payloads (what a session receives).
pub trait Decode<T>: Send + Sync + 'static {
    /// The value in `payload`.
    fn decode(payload: &Payload) -> Result<T, CodecError>;
}

/// Both ways: for a type that travels in both directions. A session `Session<In, Out, C>` needs
/// only `C: Decode<In> + Encode<Out>`, so its message types need only the serde half they use.
pub trait Codec<T>: Encode<T> + Decode<T> {}

impl<C: Encode<T> + Decode<T>, T> Codec<T> for C {}

/// JSON text messages (serde_json); decodes text and binary payloads alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl<T: serde::Serialize> Encode<T> for Json {
    fn encode(value: &T) -> Result<Payload, CodecError> {
        serde_json::to_string(value).map(Payload::Text).map_err(CodecError::encode)
    }
}

impl<T: serde::de::DeserializeOwned> Decode<T> for Json {
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
impl<T: serde::Serialize> Encode<T> for Postcard {
    fn encode(value: &T) -> Result<Payload, CodecError> {
        postcard::to_allocvec(value).map(Payload::Binary).map_err(CodecError::encode)
    }
}

#[cfg(feature = "postcard")]
impl<T: serde::de::DeserializeOwned> Decode<T> for Postcard {
    fn decode(payload: &Payload) -> Result<T, CodecError> {
        postcard::from_bytes(payload.as_bytes()).map_err(CodecError::decode)
    }
}

/// Payloads as they are: text stays text, binary stays binary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Encode<Payload> for Raw {
    fn encode(value: &Payload) -> Result<Payload, CodecError> {
        Ok(value.clone())
    }
}

impl Decode<Payload> for Raw {
    fn decode(payload: &Payload) -> Result<Payload, CodecError> {
        Ok(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct OnlyIn {
        n: u32,
    }

    #[derive(serde::Serialize)]
    struct OnlyOut {
        n: u32,
    }

    #[test]
    fn each_direction_needs_only_its_serde_half() {
        let payload = <Json as Encode<OnlyOut>>::encode(&OnlyOut { n: 7 }).unwrap();
        let back: OnlyIn = <Json as Decode<OnlyIn>>::decode(&payload).unwrap();
        assert_eq!(back.n, 7);
    }
}
