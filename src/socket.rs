//! One browser `WebSocket` connection and the callbacks it owns.
//!
//! The four handlers are `Closure`s owned by [`Socket`]; dropping it detaches them from the
//! `WebSocket` before they are freed, so the browser can never call a destroyed closure.
//! Handlers only forward a [`SocketEvent`]; the engine queues it, so no event re-enters a borrow.

use std::rc::Rc;

use durable_ws_core::{Millis, Payload};
use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

/// Something the socket did.
pub(crate) enum SocketEvent {
    /// The connection opened; `protocol` is the subprotocol the server selected ("" for none).
    Open {
        /// Selected subprotocol.
        protocol: String,
    },
    /// A message arrived.
    Message(Payload),
    /// The connection closed (browsers fire this after `error` too).
    Close {
        /// Close code (1006 for a dropped connection).
        code: u16,
        /// Close reason.
        reason: String,
        /// Whether the closing handshake completed.
        was_clean: bool,
    },
}

/// An open or opening `WebSocket` with its handlers.
pub(crate) struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    /// Made by a constructor of the application's (e.g. `ws` in Node), which may keep a view of the bytes given to
    /// `send` beyond the call: it gets a copy, never a view of the wasm memory.
    foreign: bool,
}

impl Socket {
    /// Opens a socket to `url` offering `protocols` (in order), with `constructor` if given (else the
    /// global `WebSocket`); `on_event` receives what it does and when (the event's `timeStamp`, on the
    /// `clock` scale). Fails with the browser's exception (a `SyntaxError` for a bad URL or protocol).
    pub(crate) fn open(
        url: &str,
        protocols: &[String],
        constructor: Option<&js_sys::Function>,
        on_event: impl Fn(SocketEvent, Millis) + 'static,
    ) -> Result<Socket, JsValue> {
        let offered: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
        let ws: WebSocket = match constructor {
            Some(constructor) => {
                js_sys::Reflect::construct(constructor, &Array::of2(&url.into(), &offered))?.unchecked_into()
            }
            None => WebSocket::new_with_str_sequence(url, &offered)?,
        };
        ws.set_binary_type(BinaryType::Arraybuffer);

        let on_event: Rc<dyn Fn(SocketEvent, Millis)> = Rc::new(on_event);
        let handler = on_event.clone();
        let socket = ws.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            handler(SocketEvent::Open { protocol: socket.protocol() }, at(&e))
        });
        let handler = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(payload) = payload_of(&e.data()) {
                handler(SocketEvent::Message(payload), at(&e))
            }
        });
        let handler = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            handler(SocketEvent::Close { code: e.code(), reason: e.reason(), was_clean: e.was_clean() }, at(&e))
        });
        // `error` carries no information and is always followed by `close`.
        let on_error = Closure::<dyn FnMut(Event)>::new(|_: Event| {});

        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
            foreign: constructor.is_some(),
        })
    }

    /// Sends a binary message. Errors (socket not open) are ignored: the session replays.
    pub(crate) fn send_binary(&self, bytes: &[u8]) {
        let _ = if self.foreign {
            self.ws.send_with_array_buffer_view(&Uint8Array::from(bytes))
        } else {
            self.ws.send_with_u8_array(bytes)
        };
    }

    /// Sends a text message (plain mode only).
    pub(crate) fn send_text(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
    }

    /// Detaches the handlers, then closes with `code` and `reason`; no event is reported.
    pub(crate) fn close(self, code: u16, reason: &str) {
        let ws = self.ws.clone();
        drop(self);
        // Fails only for codes browsers refuse; the core only asks for 1000 and 3000–4999.
        if ws.close_with_code_and_reason(code, reason).is_err() {
            let _ = ws.close();
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
    }
}

/// When `event` happened: its `timeStamp` (the `performance.now()` scale, as `clock::now`).
fn at(event: &Event) -> Millis {
    event.time_stamp() as Millis
}

/// A message's data as a payload: text stays text, an `ArrayBuffer` becomes bytes.
fn payload_of(data: &JsValue) -> Option<Payload> {
    if let Some(text) = data.as_string() {
        return Some(Payload::Text(text));
    }
    data.dyn_ref::<ArrayBuffer>().map(|buffer| Payload::Binary(Uint8Array::new(buffer).to_vec()))
}
