//! The Yew hook, rendered in a real component: its `messages` stay bounded.
#![cfg(all(target_arch = "wasm32", feature = "yew", feature = "json"))]
// browser-test-features: yew/csr (the renderer, which the library itself does not need)

mod browser_support;

use std::cell::RefCell;

use browser_support::{echo_url, sleep, within, PATIENCE_MS};
use durable_ws::typed::Options;
use durable_ws::yew::{use_durable_socket, UseDurableSocketHandle};
use durable_ws::ClientState;
use futures::future::join_all;
use wasm_bindgen_test::*;
use yew::prelude::*;

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    /// The handle of the probe's latest render.
    static LATEST: RefCell<Option<UseDurableSocketHandle<String, String>>> = const { RefCell::new(None) };
}

#[function_component]
fn Probe() -> Html {
    let chat = use_durable_socket::<String, String>(Options::new(echo_url()).message_history(3));
    let shown = chat.messages().join(",");
    LATEST.with(|latest| *latest.borrow_mut() = Some(chat));
    html! { <p>{ shown }</p> }
}

fn latest() -> UseDurableSocketHandle<String, String> {
    LATEST.with(|latest| latest.borrow().clone()).expect("rendered")
}

#[wasm_bindgen_test]
async fn messages_keep_only_the_latest_history() {
    let document = web_sys::window().and_then(|window| window.document()).expect("a document");
    let root = document.create_element("div").expect("a div");
    document.body().expect("a body").append_child(&root).expect("appended");
    let app = yew::Renderer::<Probe>::with_root(root.clone()).render();
    let opened = within(PATIENCE_MS, async {
        while LATEST.with(|latest| latest.borrow().is_none()) || latest().state() != ClientState::Open {
            sleep(10).await;
        }
    });
    assert!(opened.await.is_some(), "the socket opened");
    let sent: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for ack in join_all(sent.iter().cloned().map(|m| latest().send(m))).await {
        ack.expect("acknowledged");
    }
    let arrived = within(PATIENCE_MS, async {
        while latest().dropped_messages() + (latest().messages().len() as u64) < 10 {
            sleep(10).await;
        }
    });
    assert!(arrived.await.is_some(), "ten echoes: {:?}", &*latest().messages());
    assert_eq!(&*latest().messages(), ["m7", "m8", "m9"]);
    assert_eq!(latest().dropped_messages(), 7);
    sleep(50).await;
    assert_eq!(root.text_content().as_deref(), Some("m7,m8,m9"), "the last render shows the latest three");
    app.destroy();
    LATEST.with(|latest| latest.borrow_mut().take());
}
