//! The Rust API: [`DurableSocket<Out, In>`](DurableSocket), typed through a [`Codec`].
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

#[cfg(not(any(feature = "json", feature = "postcard")))]
compile_error!("the typed API needs a codec: enable the `json` or `postcard` feature");

mod codec;
mod event;
mod options;
mod receiver;
mod send_future;
mod sender;
mod socket;

#[cfg(feature = "json")]
pub use codec::Json;
#[cfg(feature = "postcard")]
pub use codec::Postcard;
pub use codec::{Codec, DefaultCodec};
pub use event::SocketEvent;
pub use options::Options;
pub use receiver::Receiver;
pub use send_future::SendFuture;
pub use sender::Sender;
pub use socket::DurableSocket;
