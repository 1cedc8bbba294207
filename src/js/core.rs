//! [`Core`]: one socket's engine, driven by the JavaScript class in `src/js/face.js`.
//!
//! Outputs go to the class's [`Sink`] as a kind and numbers, with a string or bytes; the kinds,
//! error codes and reason codes below are the indices of the tables at the top of `face.js`.

use std::cell::RefCell;
use std::rc::Rc;

use durable_ws_core::{ClientState, ConnectionError, LostReason, Payload, SendError};
use wasm_bindgen::prelude::*;

use crate::config::{EngineConfig, Resolution, UrlReply, UrlSource};
use crate::engine::{Engine, Output};
use crate::error::Error;
use crate::js::options::client_config;

// Output kinds: `face.js` `TYPES` for the first seven.
const OPEN: u32 = 0;
const MESSAGE: u32 = 1;
const RECONNECTING: u32 = 2;
const RESUMED: u32 = 3;
const SESSION_LOST: u32 = 4;
const CLOSE: u32 = 5;
const ERROR: u32 = 6;
/// One unconfirmed message of the `SESSION_LOST` that follows.
const UNCONFIRMED: u32 = 7;
/// A `send`'s outcome: its id, and an error code (0: acknowledged).
const SETTLE: u32 = 8;
/// The URL function is to be asked for the attempt given (answered through [`Core::url`]).
const ASK_URL: u32 = 9;
/// A persisted session's storage committed: the messages not yet stored.
const STORED: u32 = 10;
/// Added to a kind while a call of the application's is on the stack: the event waits for a microtask.
const LATER: u32 = 16;

#[wasm_bindgen]
extern "C" {
    /// Where a [`Core`] sends its outputs (an object of `face.js`).
    pub type Sink;
    /// An output: `kind`, up to three numbers and a string.
    #[wasm_bindgen(method, js_name = t)]
    fn text(this: &Sink, kind: u32, a: f64, b: f64, c: f64, text: &str);
    /// An output carrying bytes (a view into the wasm memory, valid during the call).
    #[wasm_bindgen(method, js_name = b)]
    fn bytes(this: &Sink, kind: u32, bytes: &[u8]);
}

/// One socket's engine. Not a public API: the `DurableWebSocket` class of `face.js` is.
#[wasm_bindgen(skip_typescript)]
pub struct Core {
    engine: Engine,
    sink: Rc<Sink>,
    /// The attempt waiting for the URL function's answer.
    asking: Rc<RefCell<Option<UrlReply>>>,
}

#[wasm_bindgen]
impl Core {
    /// Starts connecting to `url`, or, without one, to what the URL function gives before each
    /// attempt. `numbers`: see `client_config`; `protocols`: comma-separated tokens; `persist`:
    /// the persisted session's name, with `open_store` the `openStore` of `src/store.js`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        sink: Sink,
        url: Option<String>,
        numbers: &[f64],
        protocols: &str,
        persist: Option<String>,
        open_store: Option<js_sys::Function>,
        websocket: Option<js_sys::Function>,
    ) -> Result<Core, String> {
        let client = client_config(numbers)?;
        let sink = Rc::new(sink);
        let asking: Rc<RefCell<Option<UrlReply>>> = Rc::default();
        let url = match url {
            Some(url) => UrlSource::Fixed(url),
            None => {
                let (sink, asking) = (sink.clone(), asking.clone());
                UrlSource::Provider(Box::new(move |reply: UrlReply| {
                    let attempt = reply.attempt() as f64;
                    *asking.borrow_mut() = Some(reply);
                    sink.text(ASK_URL, attempt, 0.0, 0.0, "");
                    Resolution::Later
                }))
            }
        };
        let protocols = protocols.split(',').filter(|p| !p.is_empty()).map(String::from).collect();
        let out = sink.clone();
        let persist = persist.zip(open_store).map(|(name, open)| (name, crate::persist::function_opener(open)));
        let config = EngineConfig { client, url, protocols, persist, websocket };
        let engine = Engine::start(config, move |output, later| emit(&out, output, later));
        Ok(Core { engine, sink, asking })
    }

    /// The URL function's answer for `attempt`: the URL, or why there is none.
    pub fn url(&self, attempt: f64, url: Option<String>, problem: Option<String>) {
        let mut asking = self.asking.borrow_mut();
        if asking.as_ref().is_some_and(|reply| reply.attempt() as f64 == attempt) {
            if let Some(reply) = asking.take() {
                drop(asking);
                reply.answer(url.ok_or_else(|| problem.unwrap_or_default()));
            }
        }
    }

    /// Sends a text message; its outcome comes as `SETTLE` with `id`. An error code if refused now.
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&self, id: f64, text: String) -> u32 {
        self.send(id, Payload::Text(text))
    }

    /// Sends a binary message, like [`send_text`](Self::send_text).
    #[wasm_bindgen(js_name = sendBytes)]
    pub fn send_bytes(&self, id: f64, bytes: Vec<u8>) -> u32 {
        self.send(id, Payload::Binary(bytes))
    }

    /// Closes for good with a code and reason the class has checked; an error code if not possible.
    pub fn close(&self, code: u16, reason: &str) -> u32 {
        self.engine.close(code, reason).err().map_or(0, |error| describe(&error).0)
    }

    /// Reconnects now; an error code if not possible.
    pub fn reconnect(&self) -> u32 {
        self.engine.reconnect_now().err().map_or(0, |error| describe(&error).0)
    }

    /// `0` connecting (or waiting to reconnect, or offline), `1` open, `2` closing, `3` closed.
    #[wasm_bindgen(js_name = readyState)]
    pub fn ready_state(&self) -> u8 {
        match self.engine.state() {
            ClientState::Open => 1,
            ClientState::Closing => 2,
            ClientState::Closed => 3,
            _ => 0,
        }
    }

    /// Messages sent or queued and not yet acknowledged.
    pub fn pending(&self) -> f64 {
        self.engine.stats().pending as f64
    }

    /// A persisted session's messages sent and not yet durably stored.
    pub fn unstored(&self) -> f64 {
        self.engine.stats().unstored as f64
    }

    /// The session token as 32 hex digits, once there is one.
    pub fn token(&self) -> Option<String> {
        self.engine.session_token_hex()
    }

    /// The counters in the order of `DurableWebSocketStats`, then the round trip (`NaN` before
    /// the first).
    pub fn stats(&self) -> Vec<f64> {
        let s = self.engine.stats();
        let counts = [
            s.sent,
            s.acked,
            s.pending,
            s.replayed,
            s.received,
            s.duplicates,
            s.reconnects,
            s.sessions_lost,
            s.unstored,
        ];
        let mut numbers: Vec<f64> = counts.iter().map(|&n| n as f64).collect();
        numbers.push(s.last_rtt_ms.map_or(f64::NAN, |ms| ms as f64));
        numbers
    }
}

impl Core {
    fn send(&self, id: f64, payload: Payload) -> u32 {
        let sink = self.sink.clone();
        let settle = Box::new(move |result: Result<(), Error>| {
            let (code, extra, text) = match &result {
                Ok(()) => (0, 0.0, ""),
                Err(error) => describe(error),
            };
            sink.text(SETTLE, id, code as f64, extra, text);
        });
        match self.engine.send(payload, Some(settle)) {
            Ok(_) => 0,
            Err(error) => describe(&error).0,
        }
    }
}

fn emit(sink: &Sink, output: Output, later: bool) {
    let later = if later { LATER } else { 0 };
    let payload = |kind: u32, payload: Payload| match payload {
        Payload::Text(text) => sink.text(kind | later, 0.0, 0.0, 0.0, &text),
        Payload::Binary(bytes) => sink.bytes(kind | later, &bytes),
    };
    match output {
        Output::Open { durable } => sink.text(OPEN | later, f64::from(u8::from(durable)), 0.0, 0.0, ""),
        Output::Message(message) => payload(MESSAGE, message),
        Output::Reconnecting { attempt, delay_ms } => {
            sink.text(RECONNECTING | later, attempt.into(), delay_ms as f64, 0.0, "")
        }
        Output::Resumed { replayed } => sink.text(RESUMED | later, replayed as f64, 0.0, 0.0, ""),
        Output::SessionLost { reason, unconfirmed } => {
            for message in unconfirmed {
                payload(UNCONFIRMED, message);
            }
            sink.text(SESSION_LOST | later, lost_reason(reason), 0.0, 0.0, "");
        }
        Output::Closed { code, reason, was_clean, will_reconnect } => {
            let flags = u8::from(was_clean) | u8::from(will_reconnect) << 1;
            sink.text(CLOSE | later, code.into(), flags.into(), 0.0, &reason)
        }
        Output::Error(error) => {
            let (code, extra, text) = describe(&error);
            sink.text(ERROR | later, code as f64, extra, 0.0, text)
        }
        Output::Stored { unstored } => sink.text(STORED | later, unstored as f64, 0.0, 0.0, ""),
    }
}

/// An error as `face.js` `ERRORS` index, a number (a lost reason, a close code) and a message
/// (empty: the table's).
fn describe(error: &Error) -> (u32, f64, &str) {
    match error {
        Error::Send(SendError::TooLarge { .. }) => (1, 0.0, ""),
        Error::Send(SendError::BufferFull { .. }) => (2, 0.0, ""),
        Error::Send(SendError::Closed) => (3, 0.0, ""),
        Error::Unconfirmed(reason) => (4, lost_reason(*reason), ""),
        Error::Connection(ConnectionError::ConnectTimeout) => (5, 0.0, ""),
        Error::Connection(ConnectionError::HeartbeatTimeout) => (6, 0.0, ""),
        Error::Connection(ConnectionError::Protocol(_)) => (7, 0.0, ""),
        // 4401 / 4403 / 4409: the server's reason says why (e.g. "credentials expired").
        Error::Connection(ConnectionError::Refused { code, reason }) => (8, (*code).into(), reason),
        Error::Url(message) => (9, 0.0, message),
        Error::InvalidClose(problem) => (10, 0.0, problem),
        Error::Persist(message) => (12, 0.0, message),
        _ => (11, 0.0, ""),
    }
}

/// `face.js` `LOST` index.
fn lost_reason(reason: LostReason) -> f64 {
    match reason {
        LostReason::Expired => 0.0,
        LostReason::Overflow => 1.0,
        LostReason::Refused => 2.0,
        LostReason::NotDurable => 3.0,
        LostReason::Closed => 4.0,
        LostReason::Storage => 5.0,
        _ => 6.0,
    }
}
