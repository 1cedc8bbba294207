//! The exported `DurableWebSocket` class.

use std::cell::RefCell;
use std::rc::Rc;

use durable_ws_core::{close_code, ClientState};
use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;

use crate::config::{url_scheme_ok, EngineConfig, Resolution, UrlReply, UrlSource};
use crate::engine::{error_message, Engine};
use crate::js::emitter::{silence, Emitter, Target, EVENT_TYPES};
use crate::js::errors::{js_error, type_error};
use crate::js::{options, payload};

/// A WebSocket that reconnects, resumes its session and never silently loses a message.
#[wasm_bindgen]
pub struct DurableWebSocket {
    engine: Engine,
    target: Target,
    json: bool,
    /// The `on…` handlers, in `EVENT_TYPES` order.
    handlers: RefCell<[Option<JsValue>; 7]>,
}

#[wasm_bindgen]
impl DurableWebSocket {
    /// Starts connecting to `url` (a string, or a function returning a string or a promise of
    /// one, called before every attempt). Throws a `TypeError` for invalid arguments.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "DurableWebSocketUrl")] url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DurableWebSocketOptions")] options: Option<Object>,
    ) -> Result<DurableWebSocket, JsValue> {
        let url = url_source(url)?;
        let parsed = options::parse(&options.map_or(JsValue::UNDEFINED, JsValue::from))?;
        let emitter = Emitter::new(parsed.json);
        let target = emitter.target().clone();
        let config = EngineConfig { client: parsed.client, url, protocols: parsed.protocols };
        let engine = Engine::start(config, move |output, in_call| emitter.emit(output, in_call));
        Ok(DurableWebSocket { engine, target, json: parsed.json, handlers: RefCell::new(Default::default()) })
    }

    /// Sends `data` (queued while disconnected). The promise resolves once the server
    /// acknowledged it and rejects with a `BufferFullError`, `TooLargeError`, `InvalidStateError`
    /// (closed) or, if the session is lost first, a `SessionLostError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn send(&self, #[wasm_bindgen(unchecked_param_type = "DurableWebSocketData")] data: JsValue) -> Promise {
        let payload = match payload::encode(&data, self.json) {
            Ok(payload) => payload,
            Err(error) => return Promise::reject(&error),
        };
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let Some((resolve, reject)) = settle else {
            return promise;
        };
        let waiter = Box::new(move |result| {
            let _ = match result {
                Ok(()) => resolve.call0(&JsValue::UNDEFINED),
                Err(error) => reject.call1(&JsValue::UNDEFINED, &js_error(&error).0),
            };
        });
        match self.engine.send(payload, Some(waiter)) {
            Ok(_) => promise,
            Err(error) => Promise::reject(&js_error(&error).0),
        }
    }

    /// Closes for good: waits up to `closeTimeoutMs` for outstanding acknowledgements, says
    /// goodbye and closes with `code` (1000 or 3000–4999, default 1000) and `reason` (at most
    /// 123 UTF-8 bytes). Messages still unconfirmed are listed by a `sessionlost` event.
    pub fn close(&self, code: Option<f64>, reason: Option<String>) -> Result<(), JsValue> {
        let code = code.unwrap_or(close_code::NORMAL as f64);
        if !(code == 1000.0 || (3000.0..=4999.0).contains(&code)) || code.fract() != 0.0 {
            return Err(type_error(&["DurableWebSocket.close: code must be 1000 or an integer in 3000–4999"]));
        }
        let reason = reason.unwrap_or_default();
        if reason.len() > 123 {
            return Err(type_error(&["DurableWebSocket.close: reason must be at most 123 UTF-8 bytes"]));
        }
        self.engine.close(code as u16, &reason).map_err(|error| js_error(&error).0)
    }

    /// Reconnects now instead of waiting for the backoff delay (also after `maxAttempts`).
    pub fn reconnect(&self) -> Result<(), JsValue> {
        self.engine.reconnect_now().map_err(|error| js_error(&error).0)
    }

    /// `0` connecting (or waiting to reconnect, or offline), `1` open, `2` closing, `3` closed.
    #[wasm_bindgen(getter, js_name = readyState)]
    pub fn ready_state(&self) -> u8 {
        match self.engine.state() {
            ClientState::Connecting | ClientState::Reconnecting { .. } | ClientState::Offline => 0,
            ClientState::Open => 1,
            ClientState::Closing => 2,
            ClientState::Closed => 3,
            _ => 0,
        }
    }

    /// Messages sent or queued and not yet acknowledged.
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> f64 {
        self.engine.stats().pending as f64
    }

    /// The current durable session's token as 32 hex digits, or `undefined` before the first
    /// handshake (and in plain mode). It is a credential: pass it only to tools that need it,
    /// such as the reference server's `/admin` fault endpoints.
    #[wasm_bindgen(getter, js_name = sessionToken)]
    pub fn session_token(&self) -> Option<String> {
        self.engine.session_token_hex()
    }

    /// Counters since the socket was created.
    #[wasm_bindgen(unchecked_return_type = "DurableWebSocketStats")]
    pub fn stats(&self) -> Object {
        let stats = self.engine.stats();
        let rtt = stats.last_rtt_ms.map_or(f64::NAN, |ms| ms as f64);
        let counts = [stats.sent, stats.acked, stats.pending, stats.replayed, stats.received, stats.duplicates];
        let [sent, acked, pending, replayed, received, duplicates] = counts.map(|n| n as f64);
        make_stats(
            sent,
            acked,
            pending,
            replayed,
            received,
            duplicates,
            stats.reconnects as f64,
            stats.sessions_lost as f64,
            rtt,
        )
    }

    /// Registers a listener (as `EventTarget.addEventListener`).
    #[wasm_bindgen(js_name = addEventListener, skip_typescript)]
    pub fn add_event_listener(&self, kind: &str, listener: JsValue, options: JsValue) -> Result<(), JsValue> {
        self.target.add_event_listener(kind, &listener, &options)
    }

    /// Removes a listener (as `EventTarget.removeEventListener`).
    #[wasm_bindgen(js_name = removeEventListener, skip_typescript)]
    pub fn remove_event_listener(&self, kind: &str, listener: JsValue, options: JsValue) -> Result<(), JsValue> {
        self.target.remove_event_listener(kind, &listener, &options)
    }

    fn handler(&self, slot: usize) -> JsValue {
        self.handlers.borrow()[slot].clone().unwrap_or(JsValue::NULL)
    }

    /// Replaces the handler of event type `EVENT_TYPES[slot]`; non-functions clear it (as in the DOM).
    fn set_handler(&self, slot: usize, handler: JsValue) {
        let kind = EVENT_TYPES[slot];
        let mut handlers = self.handlers.borrow_mut();
        if let Some(old) = handlers[slot].take() {
            let _ = self.target.remove_event_listener(kind, &old, &JsValue::UNDEFINED);
        }
        if handler.is_function() {
            let _ = self.target.add_event_listener(kind, &handler, &JsValue::UNDEFINED);
            handlers[slot] = Some(handler);
        }
    }
}

#[wasm_bindgen(module = "/src/js/face.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeStats)]
    #[allow(clippy::too_many_arguments)]
    fn make_stats(
        sent: f64,
        acked: f64,
        pending: f64,
        replayed: f64,
        received: f64,
        duplicates: f64,
        reconnects: f64,
        sessions_lost: f64,
        last_rtt_ms: f64,
    ) -> Object;
}

impl Drop for DurableWebSocket {
    /// `free()`: no event is dispatched after it, not even those already queued; the engine
    /// then says goodbye and releases the socket, timer and listeners.
    fn drop(&mut self) {
        silence(&self.target);
    }
}

/// `on…` property pairs, typed in the TypeScript section.
macro_rules! handler_properties {
    ($($slot:literal: $get:ident, $set:ident;)*) => {
        #[wasm_bindgen]
        impl DurableWebSocket {
            $(
                #[doc(hidden)]
                #[wasm_bindgen(getter, skip_typescript)]
                pub fn $get(&self) -> JsValue {
                    self.handler($slot)
                }

                #[doc(hidden)]
                #[wasm_bindgen(setter, skip_typescript)]
                pub fn $set(&self, handler: JsValue) {
                    self.set_handler($slot, handler)
                }
            )*
        }
    };
}

handler_properties! {
    0: onopen, set_onopen;
    1: onmessage, set_onmessage;
    2: onreconnecting, set_onreconnecting;
    3: onresumed, set_onresumed;
    4: onsessionlost, set_onsessionlost;
    5: onclose, set_onclose;
    6: onerror, set_onerror;
}

/// The URL argument: a string, or a function asked before every attempt.
fn url_source(url: JsValue) -> Result<UrlSource, JsValue> {
    if let Some(url) = url.as_string() {
        if !url_scheme_ok(&url) {
            return Err(type_error(&["DurableWebSocket: url must be absolute (ws://, wss://, http:// or https://)"]));
        }
        return Ok(UrlSource::Fixed(url));
    }
    let Some(provider) = url.dyn_ref::<Function>().cloned() else {
        return Err(type_error(&[
            "DurableWebSocket: url must be a string or a function returning one (or a promise of one)",
        ]));
    };
    let pending: Rc<RefCell<Option<UrlReply>>> = Rc::default();
    let waiting = pending.clone();
    let answer = UrlAnswer(Closure::new(move |attempt: f64, url: JsValue, failed: bool| {
        let mut waiting = waiting.borrow_mut();
        if waiting.as_ref().is_some_and(|reply| reply.attempt() as f64 == attempt) {
            if let Some(reply) = waiting.take() {
                drop(waiting);
                reply.answer(url_of(url, failed));
            }
        }
    }));
    Ok(UrlSource::Provider(Box::new(move |reply: UrlReply| {
        let attempt = reply.attempt() as f64;
        match ask_url(&provider, attempt, answer.0.as_ref()) {
            Ok(url) if url.is_undefined() => {
                *pending.borrow_mut() = Some(reply);
                Resolution::Later
            }
            Ok(url) => Resolution::Ready(url_of(url, false)),
            Err(exception) => Resolution::Ready(url_of(exception, true)),
        }
    })))
}

/// What a URL provider gave: a string, or an exception (`failed`) or something else.
fn url_of(value: JsValue, failed: bool) -> Result<String, String> {
    match value.as_string() {
        Some(url) if !failed => Ok(url),
        _ if failed => Err(error_message(&value)),
        _ => Err("the url function did not give a string".into()),
    }
}

#[wasm_bindgen(module = "/src/js/face.js")]
extern "C" {
    /// Calls `provider`: its URL, or `undefined` when it gave a promise, whose outcome goes to
    /// `answer(attempt, value, failed)` (a non-string value as `null`).
    #[wasm_bindgen(catch, js_name = askUrl)]
    fn ask_url(provider: &Function, attempt: f64, answer: &JsValue) -> Result<JsValue, JsValue>;
    /// `answer` is about to be freed: promises settling later no longer call it.
    #[wasm_bindgen(js_name = dropAnswer)]
    fn drop_answer(answer: &JsValue);
}

/// The callback a URL provider's promise answers through; the provider owns it.
struct UrlAnswer(Closure<dyn FnMut(f64, JsValue, bool)>);

impl Drop for UrlAnswer {
    fn drop(&mut self) {
        drop_answer(self.0.as_ref());
    }
}
