//! Errors as JavaScript `Error` objects, named after what went wrong.
//!
//! Messages are fixed strings rather than `Display` output: formatting machinery would double
//! the size of the npm build.

use durable_ws_core::{ConnectionError, LostReason, SendError};
use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::error::Error;

/// An `Error` with `name` and `message`.
pub(crate) fn named_error(name: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    error.into()
}

/// A `TypeError` with the concatenated message.
pub(crate) fn type_error(parts: &[&str]) -> JsValue {
    js_sys::TypeError::new(&parts.concat()).into()
}

/// The JS error for a library error, and its message.
pub(crate) fn js_error(error: &Error) -> (JsValue, JsValue) {
    let (name, message) = match error {
        Error::Send(SendError::TooLarge { .. }) => ("TooLargeError", "the message exceeds buffer.maxMessageBytes"),
        Error::Send(SendError::BufferFull { .. }) => {
            ("BufferFullError", "the replay buffer is full: wait for acknowledgements")
        }
        Error::Send(SendError::Closed) => ("InvalidStateError", "the socket is closed"),
        Error::Unconfirmed(reason) => {
            let message = "the session ended before the message was confirmed";
            let error = named_error("SessionLostError", message);
            let _ = Reflect::set(&error, &"reason".into(), &lost_reason(*reason).into());
            return (error, message.into());
        }
        Error::Connection(ConnectionError::ConnectTimeout) => {
            ("ConnectTimeoutError", "the connection did not open within connectTimeoutMs")
        }
        Error::Connection(ConnectionError::HeartbeatTimeout) => {
            ("HeartbeatTimeoutError", "the server stopped answering: the link is dead")
        }
        Error::Connection(ConnectionError::Protocol(_)) => {
            ("ProtocolError", "the server broke the durable.v1 protocol")
        }
        Error::Connection(ConnectionError::Refused { code, reason }) => {
            // 4401 / 4403 / 4409: the server's reason says why (e.g. "credentials expired").
            let message = if reason.is_empty() { "the server refused the connection" } else { reason.as_str() };
            let error = named_error("RefusedError", message);
            let _ = Reflect::set(&error, &"code".into(), &JsValue::from(*code));
            return (error, message.into());
        }
        Error::Url(message) => ("UrlError", message.as_str()),
        Error::InvalidClose(problem) => ("SyntaxError", *problem),
        Error::Encode(_) => ("EncodeError", "the message could not be encoded"),
        Error::Decode(_) => ("DecodeError", "a received message could not be decoded"),
        _ => ("Error", "unexpected internal state"),
    };
    (named_error(name, message), message.into())
}

/// The `reason` string of a `sessionlost` event.
pub(crate) fn lost_reason(reason: LostReason) -> &'static str {
    match reason {
        LostReason::Expired => "expired",
        LostReason::Overflow => "overflow",
        LostReason::Refused => "refused",
        LostReason::NotDurable => "notDurable",
        LostReason::Closed => "closed",
        _ => "unknown",
    }
}
