//! How typed messages become payloads and back.
//!
//! The codec is a type parameter, never chosen by features: `DurableSocket<Out, In>` is
//! `DurableSocket<Out, In, Json>` in every build, so a crate that asks for
//! `DurableSocket<Out, In, Postcard>` keeps speaking postcard when something else in the build
//! enables `json` (Cargo unifies features), and one that relies on the default does not compile
//! unless `json` is on.

use durable_ws_core::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(any(feature = "json", feature = "postcard"))]
use crate::error::CodecError;
use crate::error::Error;

/// Encodes sent values into payloads and decodes received payloads into values. Implement it
/// for a format of your own; report failures with [`Error::Encode`] and [`Error::Decode`]
/// wrapping the format's error in a [`CodecError`](crate::CodecError).
pub trait Codec {
    /// The payload for `value`.
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error>;
    /// The value in `payload`; an error is reported as an `Error` event, never a panic.
    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error>;
}

/// JSON text messages (serde_json); decodes text and binary payloads alike. The default codec
/// of every type with a codec parameter, in every build; it implements [`Codec`] with the
/// `json` feature (without it, name another codec, e.g. `DurableSocket<Out, In, Postcard>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
impl Codec for Json {
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error> {
        serde_json::to_string(value).map(Payload::Text).map_err(|e| Error::Encode(CodecError::new(e)))
    }

    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error> {
        serde_json::from_slice(payload.as_bytes()).map_err(|e| Error::Decode(CodecError::new(e)))
    }
}

/// Compact binary messages (postcard). Both ends must agree on the types.
#[cfg(feature = "postcard")]
#[cfg_attr(docsrs, doc(cfg(feature = "postcard")))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Postcard;

#[cfg(feature = "postcard")]
impl Codec for Postcard {
    fn encode<T: Serialize>(value: &T) -> Result<Payload, Error> {
        postcard::to_allocvec(value).map(Payload::Binary).map_err(|e| Error::Encode(CodecError::new(e)))
    }

    fn decode<T: DeserializeOwned>(payload: &Payload) -> Result<T, Error> {
        postcard::from_bytes(payload.as_bytes()).map_err(|e| Error::Decode(CodecError::new(e)))
    }
}
