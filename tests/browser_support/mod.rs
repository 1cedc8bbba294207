//! Shared helpers of the browser test suites: the reference server's URLs, its fault endpoints,
//! sleeping, and waiting for events with a generous safety timeout (a hang fails, it is not a
//! speed assertion).
#![allow(dead_code)]

use std::fmt::Debug;

use futures::future::{select, Either};
use futures::{Stream, StreamExt};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Safety net for every wait: far above anything a passing run needs.
pub const PATIENCE_MS: u32 = 30_000;

/// `ws://127.0.0.1:PORT` of the reference server (started with `--enable-faults`).
pub fn server() -> &'static str {
    option_env!("DURABLE_WS_SERVER").unwrap_or("ws://127.0.0.1:8080")
}

/// The durable echo endpoint.
pub fn echo_url() -> String {
    format!("{}/echo", server())
}

/// `http://…` of the server.
pub fn http_base() -> String {
    server().replacen("ws://", "http://", 1).replacen("wss://", "https://", 1)
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: u32) -> JsValue;
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// `POST`s to a fault endpoint (`/admin/cut?session=…`); returns the status and body text.
pub async fn admin(path_and_query: &str) -> (u16, String) {
    let fetch = Function::new_with_args(
        "url",
        "return fetch(url, { method: 'POST' }).then(async (r) => [r.status, await r.text()])",
    );
    let url = format!("{}{}", http_base(), path_and_query);
    let promise: Promise = fetch.call1(&JsValue::UNDEFINED, &url.into()).expect("fetch").unchecked_into();
    let answer: Array = JsFuture::from(promise).await.expect("admin request failed").unchecked_into();
    (answer.get(0).as_f64().unwrap_or(0.0) as u16, answer.get(1).as_string().unwrap_or_default())
}

/// `None` if `future` did not finish within `ms`.
pub async fn within<F: std::future::Future>(ms: u32, future: F) -> Option<F::Output> {
    match select(Box::pin(future), Box::pin(sleep(ms))).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

/// Reads events until `done` says so; returns every event read (the last one included).
pub async fn until<E: Debug>(
    events: &mut (impl Stream<Item = E> + Unpin),
    what: &str,
    mut done: impl FnMut(&E) -> bool,
) -> Vec<E> {
    let mut seen = Vec::new();
    loop {
        match within(PATIENCE_MS, events.next()).await {
            None => panic!("timed out waiting for {what}; events so far: {seen:?}"),
            Some(None) => panic!("the event stream ended while waiting for {what}; events so far: {seen:?}"),
            Some(Some(event)) => {
                let stop = done(&event);
                seen.push(event);
                if stop {
                    return seen;
                }
            }
        }
    }
}
