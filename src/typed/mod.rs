//! The Rust API: [`DurableSocket<Out, In, C>`](DurableSocket), typed through a [`Codec`] `C`.
//!
//! The codec is part of the type and defaults to [`Json`] whatever the features: enabling
//! `postcard` (here or anywhere else in the build) never changes what `DurableSocket<Out, In>`
//! sends. [`Json`] implements [`Codec`] with the `json` feature, `Postcard` exists with the
//! `postcard` feature; any other format is a [`Codec`] of your own.
//!
//! ```no_run
//! # async fn run() -> Result<(), durable_ws::Error> {
//! use durable_ws::typed::{DurableSocket, Options, SocketEvent};
//! use futures::StreamExt;
//!
//! let mut socket: DurableSocket<String, String> = DurableSocket::connect(Options::new("ws://127.0.0.1:8080/echo"))?;
//! socket.send("hello".to_owned()).await?; // resolves once the server acknowledged it
//! while let Some(event) = socket.next().await {
//!     match event {
//!         SocketEvent::Message(text) => println!("{text}"),
//!         SocketEvent::SessionLost { unconfirmed, .. } => println!("{} never confirmed", unconfirmed.len()),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod codec;
mod event;
mod options;
mod receiver;
mod send_future;
mod sender;
mod socket;

#[cfg(feature = "postcard")]
pub use codec::Postcard;
pub use codec::{Codec, Json};
pub use event::SocketEvent;
pub use options::Options;
pub use receiver::Receiver;
pub use send_future::SendFuture;
pub use sender::Sender;
pub use socket::DurableSocket;
