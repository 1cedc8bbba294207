//! The postcard codec, built with `postcard` as the only codec feature: the codec is the type's,
//! never the features'.
#![cfg(all(target_arch = "wasm32", feature = "postcard"))]

mod browser_support;

use browser_support::{echo_url, until};
use durable_ws::typed::{Codec, DurableSocket, Json, Options, Postcard, SocketEvent};
use serde::{Deserialize, Serialize};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    sensor: u16,
    values: Vec<i32>,
}

/// Compiles only if `DurableSocket<Out, In>` means JSON in this build too, which has no `json`
/// feature: the default never switches to postcard (and so never back to JSON when another
/// crate in the build enables `json`).
#[allow(dead_code)]
fn the_default_codec_is_json_whatever_the_features(socket: DurableSocket<u8, u8>) -> DurableSocket<u8, u8, Json> {
    socket
}

#[wasm_bindgen_test]
async fn postcard_messages_travel_as_binary_and_come_back() {
    let mut socket: DurableSocket<Reading, Reading, Postcard> =
        DurableSocket::connect(Options::new(echo_url())).expect("valid options");
    let reading = Reading { sensor: 7, values: vec![-1, 0, 65_536] };
    socket.send(reading.clone()).await.expect("acknowledged");
    let events = until(&mut socket, "the echo", |e| matches!(e, SocketEvent::Message(_))).await;
    assert_eq!(events.last(), Some(&SocketEvent::Message(reading.clone())));
    assert!(matches!(Postcard::encode(&reading), Ok(durable_ws::Payload::Binary(_))));
}
