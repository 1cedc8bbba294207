//! How typed messages become payloads and back.

use durable_ws_core::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

/// Encodes sent values into payloads and decodes received payloads into values.
pub trait Codec {
    /// The payload for `value`.
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error>;
    /// The value in `payload`; an error is reported as an `Error` event, never a panic.
    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error>;
}

/// JSON text messages (serde_json); decodes text and binary payloads alike.
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error> {
        serde_json::to_string(value).map(Payload::Text).map_err(|e| Error::Encode(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error> {
        serde_json::from_slice(payload.as_bytes()).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// Compact binary messages (postcard). Both ends must agree on the types.
#[cfg(feature = "postcard")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

#[cfg(feature = "postcard")]
impl Codec for Postcard {
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error> {
        postcard::to_allocvec(value).map(Payload::Binary).map_err(|e| Error::Encode(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error> {
        postcard::from_bytes(payload.as_bytes()).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// `Json` when the `json` feature is on, else `Postcard`.
#[cfg(feature = "json")]
pub type DefaultCodec = Json;

/// `Json` when the `json` feature is on, else `Postcard`.
#[cfg(all(feature = "postcard", not(feature = "json")))]
pub type DefaultCodec = Postcard;
