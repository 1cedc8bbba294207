//! Events for JavaScript listeners, dispatched through a real `EventTarget`, so listener
//! options (`once`, `signal`), `handleEvent` objects and exception reporting behave as in the DOM.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::engine::Output;
use crate::js::errors::{js_error, lost_reason};
use crate::js::payload::{decode, decode_lenient};

#[wasm_bindgen(inline_js = r#"
export function newTarget() { return new EventTarget(); }
export function emit(target, type, props) { target.dispatchEvent(Object.assign(new Event(type), props)); }
"#)]
extern "C" {
    /// A plain `EventTarget`.
    #[derive(Clone)]
    pub(crate) type Target;
    #[wasm_bindgen(js_name = newTarget)]
    fn new_target() -> Target;
    fn emit(target: &Target, kind: &str, props: &Object);
    #[wasm_bindgen(method, catch, js_name = addEventListener)]
    pub(crate) fn add_event_listener(this: &Target, kind: &str, listener: &JsValue, options: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeEventListener)]
    pub(crate) fn remove_event_listener(
        this: &Target,
        kind: &str,
        listener: &JsValue,
        options: &JsValue,
    ) -> Result<(), JsValue>;
}

/// The event types, in the order of the `on…` handler slots.
pub(crate) const EVENT_TYPES: [&str; 7] = ["open", "message", "reconnecting", "resumed", "sessionlost", "close", "error"];

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

    /// Dispatches the event for `output`.
    pub(crate) fn emit(&self, output: Output) {
        match output {
            Output::Open { durable } => self.dispatch("open", &[("durable", durable.into())]),
            Output::Message(payload) => match decode(payload, self.json) {
                Ok(data) => self.dispatch("message", &[("data", data)]),
                Err((error, raw)) => self.dispatch(
                    "error",
                    &[("message", "a received text message is not JSON".into()), ("error", error), ("data", raw)],
                ),
            },
            Output::Reconnecting { attempt, delay_ms } => {
                self.dispatch("reconnecting", &[("attempt", attempt.into()), ("delayMs", (delay_ms as f64).into())])
            }
            Output::Resumed { replayed } => self.dispatch("resumed", &[("replayed", (replayed as f64).into())]),
            Output::SessionLost { reason, unconfirmed } => {
                let messages: Array = unconfirmed.into_iter().map(|p| decode_lenient(p, self.json)).collect();
                self.dispatch("sessionlost", &[("reason", lost_reason(reason).into()), ("unconfirmed", messages.into())])
            }
            Output::Closed { code, reason, was_clean, will_reconnect } => self.dispatch(
                "close",
                &[
                    ("code", code.into()),
                    ("reason", reason.into()),
                    ("wasClean", was_clean.into()),
                    ("willReconnect", will_reconnect.into()),
                ],
            ),
            Output::Error(error) => {
                let error = js_error(&error);
                let message = Reflect::get(&error, &"message".into()).unwrap_or(JsValue::UNDEFINED);
                self.dispatch("error", &[("message", message), ("error", error)])
            }
        }
    }

    fn dispatch(&self, kind: &str, props: &[(&str, JsValue)]) {
        let object = Object::new();
        for (key, value) in props {
            let _ = Reflect::set(&object, &JsValue::from_str(key), value);
        }
        emit(&self.target, kind, &object);
    }
}
