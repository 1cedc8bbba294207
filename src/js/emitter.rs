//! Events for JavaScript listeners, dispatched through a real `EventTarget`, so listener
//! options (`once`, `signal`), `handleEvent` objects and exception reporting behave as in the DOM.
//!
//! Like a `WebSocket`'s, events are never dispatched from inside a call such as `close()` or the
//! constructor: those of a call are queued for a microtask, so a listener added right after the
//! call still gets the event, and no listener ever runs while the socket's own method is on the
//! stack. Events of the browser's own tasks (a message, a timer) are dispatched at once, without
//! a microtask per message, unless earlier events still wait in the queue (order is kept).

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::engine::Output;
use crate::js::errors::{js_error, lost_reason};
use crate::js::payload::{decode, decode_lenient};

#[wasm_bindgen(module = "/src/js/face.js")]
extern "C" {
    /// A plain `EventTarget`.
    #[derive(Clone)]
    pub(crate) type Target;
    #[wasm_bindgen(js_name = newTarget)]
    fn new_target() -> Target;
    /// Events of `target` not dispatched yet never will be.
    pub(crate) fn silence(target: &Target);
    /// Dispatches (`later`: queues) an event of type `kind` with the fields of that type
    /// (`FIELDS`) set to the values (`undefined`: left out).
    fn emit(target: &Target, later: bool, kind: &str, a: &JsValue, b: &JsValue, c: &JsValue, d: &JsValue);
    #[wasm_bindgen(method, catch, js_name = addEventListener)]
    pub(crate) fn add_event_listener(
        this: &Target,
        kind: &str,
        listener: &JsValue,
        options: &JsValue,
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeEventListener)]
    pub(crate) fn remove_event_listener(
        this: &Target,
        kind: &str,
        listener: &JsValue,
        options: &JsValue,
    ) -> Result<(), JsValue>;
}

/// The event types, in the order of the `on…` handler slots.
pub(crate) const EVENT_TYPES: [&str; 7] =
    ["open", "message", "reconnecting", "resumed", "sessionlost", "close", "error"];

/// Turns engine outputs into DOM events.
pub(crate) struct Emitter {
    target: Target,
    json: bool,
}

impl Emitter {
    /// An emitter on a new `EventTarget`; `json` selects JSON decoding of text messages.
    pub(crate) fn new(json: bool) -> Emitter {
        Emitter { target: new_target(), json }
    }

    /// The target listeners are registered on.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Dispatches the event for `output`, or queues it when `in_call` (see the module docs).
    pub(crate) fn emit(&self, output: Output, in_call: bool) {
        let none = JsValue::UNDEFINED;
        let (kind, a, b, c, d): (&str, JsValue, JsValue, JsValue, JsValue) = match output {
            Output::Open { durable } => ("open", durable.into(), none.clone(), none.clone(), none),
            Output::Message(payload) => match decode(payload, self.json) {
                Ok(data) => ("message", data, none.clone(), none.clone(), none),
                Err((error, raw)) => ("error", "a received text message is not JSON".into(), error, raw, none),
            },
            Output::Reconnecting { attempt, delay_ms } => {
                ("reconnecting", attempt.into(), (delay_ms as f64).into(), none.clone(), none)
            }
            Output::Resumed { replayed } => ("resumed", (replayed as f64).into(), none.clone(), none.clone(), none),
            Output::SessionLost { reason, unconfirmed } => {
                let messages: Array = unconfirmed.into_iter().map(|p| decode_lenient(p, self.json)).collect();
                ("sessionlost", lost_reason(reason).into(), messages.into(), none.clone(), none)
            }
            Output::Closed { code, reason, was_clean, will_reconnect } => {
                ("close", code.into(), reason.into(), was_clean.into(), will_reconnect.into())
            }
            Output::Error(error) => {
                let (error, message) = js_error(&error);
                ("error", message, error, none.clone(), none)
            }
        };
        emit(&self.target, in_call, kind, &a, &b, &c, &d);
    }
}
