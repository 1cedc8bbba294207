//! durable-ws: a browser WebSocket that reconnects, resumes and never silently loses a message.
//!
//! Every message gets a sequence number and stays in a bounded replay buffer until the server
//! acknowledges it. When the connection drops, the socket reconnects with exponential backoff and
//! jitter, resumes the session (`durable.v1`, see `docs/PROTOCOL.md`) and re-sends only what the
//! server did not receive; received messages are delivered exactly once and in order. If the
//! server cannot resume, a `SessionLost` event lists every unconfirmed message.
//!
//! Two APIs share one engine:
//! - `typed` (features `json`, the default, or `postcard`): `DurableSocket<Out, In, C>`, a
//!   `Sink` of `Out` and a `Stream` of `SocketEvent<In>`, for Rust/wasm applications. The codec
//!   `C` is part of the type (default `Json` in every build), never chosen by features.
//! - `js` (feature `js`, the npm package): the `DurableWebSocket` class, a drop-in for
//!   `WebSocket` with `EventTarget`-style events and promise-returning `send`.
//! - `leptos` and `yew` (features of the same names): `use_durable_socket`, the socket as the
//!   framework's reactive state, closed when the component unmounts.
//!
//! Everything runs on the browser's event loop: nothing is `Send`; use `spawn_local`.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "js", feature = "typed"))]
mod clock;
#[cfg(any(feature = "js", feature = "typed"))]
mod config;
#[cfg(any(feature = "js", feature = "typed"))]
mod engine;
#[cfg(any(feature = "js", feature = "typed"))]
mod environment;
mod error;
#[cfg(feature = "js")]
#[cfg_attr(docsrs, doc(cfg(feature = "js")))]
pub mod js;
#[cfg(feature = "leptos")]
#[cfg_attr(docsrs, doc(cfg(feature = "leptos")))]
pub mod leptos;
#[cfg(any(feature = "js", feature = "typed"))]
mod persist;
#[cfg(any(feature = "js", feature = "typed"))]
mod socket;
mod stats;
#[cfg(any(feature = "js", feature = "typed"))]
mod timer;
#[cfg(feature = "typed")]
#[cfg_attr(docsrs, doc(cfg(feature = "typed")))]
pub mod typed;
#[cfg(any(feature = "leptos", feature = "yew"))]
mod ui_bridge;
#[cfg(feature = "yew")]
#[cfg_attr(docsrs, doc(cfg(feature = "yew")))]
pub mod yew;

pub use durable_ws_core::{close_code, ClientState, ConnectionError, LostReason, Payload, SendError};
pub use error::{CodecError, Error};
pub use stats::Stats;
