//! The JavaScript API (feature `js`, the npm package): the `DurableWebSocket` class.
//!
//! ```ts
//! import init, { DurableWebSocket } from "durable-ws";
//! await init();
//! const ws = new DurableWebSocket("ws://127.0.0.1:8080/echo", { json: true });
//! ws.addEventListener("message", (e) => console.log(e.data));
//! await ws.send({ any: "JSON value" }); // resolves once the server acknowledged it
//! ws.close(1000, "bye");
//! ```
//!
//! The class is JavaScript (`src/js/face.js`: option checks, the `EventTarget`, event and error
//! objects, payload encoding); this module is what it drives: the engine behind [`Core`], a
//! handful of exports taking and giving numbers and strings. Size is the reason: every
//! `#[wasm_bindgen]` method with JS values in its signature costs marshalling code in the wasm
//! and a wrapper in the glue, which the browser's own objects and `JSON` make unnecessary.
//!
//! Payloads: a string is sent as a text message, an `ArrayBuffer` or any `ArrayBufferView`
//! (`Uint8Array`, `DataView`, …) as a binary message, and any other value as the text of
//! `JSON.stringify(value)`. Received text messages are strings and binary ones `ArrayBuffer`s.
//!
//! JSON mode (`{ json: true }`, both ends must agree): *every* non-binary value is sent as JSON
//! text (strings too, quoted) and every received text message is `JSON.parse`d, so whatever was
//! sent arrives as the same value. A text message that is not JSON is reported as an `error`
//! event carrying the raw text in `data` (never dropped silently).

mod core;
mod options;
mod types;

pub use self::core::{Core, Sink};
