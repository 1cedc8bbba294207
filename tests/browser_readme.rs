//! The Rust example of README.md, compiled and run against the real reference server
//! (scripts/check-readme-examples.mjs checks that the README shows exactly the region below).
#![cfg(all(target_arch = "wasm32", feature = "json"))]

mod browser_support;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// #region readme
use durable_ws::typed::{DurableSocket, Options, SocketEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Chat {
    from: String,
    text: String,
}

/// Sends one message to an echo endpoint and returns what comes back.
async fn say_hello(url: &str) -> Result<Chat, durable_ws::Error> {
    let socket = DurableSocket::<Chat, Chat>::connect(Options::new(url))?;
    // Resolves once the server acknowledged the message; it survives reconnects meanwhile.
    socket.send(Chat { from: "ann".into(), text: "hello".into() }).await?;
    let (_sender, mut events) = socket.split();
    while let Some(event) = events.next().await {
        match event {
            SocketEvent::Message(chat) => return Ok(chat),
            // `unconfirmed` lists every message the server never confirmed: nothing goes silently.
            SocketEvent::SessionLost { reason, .. } => return Err(durable_ws::Error::Unconfirmed(reason)),
            _ => {} // Open, Reconnecting, Resumed, Closed, Error
        }
    }
    Err(durable_ws::SendError::Closed.into())
}
// #endregion readme

#[wasm_bindgen_test]
async fn the_readme_example_round_trips_a_typed_message() {
    let echoed = say_hello(&browser_support::echo_url()).await.expect("echoed");
    assert_eq!(echoed, Chat { from: "ann".into(), text: "hello".into() });
}
