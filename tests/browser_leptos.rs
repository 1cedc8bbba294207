//! The Leptos hook: its `messages` stay bounded.
#![cfg(all(target_arch = "wasm32", feature = "leptos", feature = "json"))]

mod browser_support;

use browser_support::{echo_url, sleep, within, PATIENCE_MS};
use durable_ws::leptos::use_durable_socket;
use durable_ws::typed::Options;
use durable_ws::{ClientState, Error};
use futures::future::join_all;
use leptos::prelude::{GetUntracked, Owner};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn messages_keep_only_the_latest_history() {
    let owner = Owner::new();
    let chat = owner.with(|| use_durable_socket::<String, String>(Options::new(echo_url()).message_history(3)));
    let sent: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for ack in join_all(sent.iter().cloned().map(|m| chat.send(m))).await {
        ack.expect("acknowledged");
    }
    let arrived = within(PATIENCE_MS, async {
        while chat.dropped_messages.get_untracked() + (chat.messages.get_untracked().len() as u64) < 10 {
            sleep(10).await;
        }
    });
    assert!(arrived.await.is_some(), "ten echoes: {:?}", chat.messages.get_untracked());
    assert_eq!(chat.messages.get_untracked(), ["m7", "m8", "m9"]);
    assert_eq!(chat.dropped_messages.get_untracked(), 7);
    assert_eq!(chat.state.get_untracked(), ClientState::Open);
    owner.cleanup();
}

#[wasm_bindgen_test]
async fn a_history_of_nothing_is_refused() {
    let owner = Owner::new();
    let chat = owner.with(|| use_durable_socket::<String, String>(Options::new(echo_url()).message_history(0)));
    assert!(matches!(chat.error.get_untracked(), Some(Error::InvalidOption { field: "message_history", .. })));
    assert_eq!(chat.state.get_untracked(), ClientState::Closed);
    owner.cleanup();
}
