//! JavaScript values to payloads and back (see the module docs for the JSON rules).

use durable_ws_core::Payload;
use js_sys::{Uint8Array, JSON};
use wasm_bindgen::prelude::*;

use crate::js::errors::type_error;

#[wasm_bindgen(module = "/src/js/face.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = bytesOf)]
    fn bytes_of(value: &JsValue) -> Result<Option<Uint8Array>, JsValue>;
}

/// The payload for a value given to `send`.
pub(crate) fn encode(value: &JsValue, json: bool) -> Result<Payload, JsValue> {
    if !json {
        if let Some(text) = value.as_string() {
            return Ok(Payload::Text(text));
        }
    }
    if let Some(bytes) = bytes_of(value)? {
        return Ok(Payload::Binary(bytes.to_vec()));
    }
    match JSON::stringify(value)?.as_string() {
        Some(text) => Ok(Payload::Text(text)),
        None => {
            Err(type_error(&["DurableWebSocket.send: the value has no JSON form (undefined, a function or a symbol)"]))
        }
    }
}

/// The value for a received payload; `Err((error, raw text))` when JSON mode cannot parse it.
pub(crate) fn decode(payload: Payload, json: bool) -> Result<JsValue, (JsValue, JsValue)> {
    match payload {
        Payload::Binary(bytes) => Ok(Uint8Array::from(&bytes[..]).buffer().into()),
        Payload::Text(text) if json => JSON::parse(&text).map_err(|error| (error, text.into())),
        Payload::Text(text) => Ok(text.into()),
    }
}

/// Like [`decode`], keeping the raw text when it is not JSON (for `sessionlost`).
pub(crate) fn decode_lenient(payload: Payload, json: bool) -> JsValue {
    decode(payload, json).unwrap_or_else(|(_, raw)| raw)
}
