//! What the Leptos and Yew integrations share: the task that hands every socket event to the UI,
//! and sends that let the UI refresh once the server acknowledged them.

use std::future::poll_fn;
use std::pin::Pin;

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen_futures::spawn_local;

use crate::typed::{Codec, Receiver, SendFuture, Sender, SocketEvent};

/// Calls `on_event` for every event of `receiver`, from a task on the browser's event loop (never
/// from inside the socket's own processing, so `on_event` may use the socket). The task ends with
/// the stream: after the socket closed for good.
pub(crate) fn forward_events<In, C>(mut receiver: Receiver<In, C>, mut on_event: impl FnMut(SocketEvent<In>) + 'static)
where
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    spawn_local(async move {
        while let Some(event) = poll_fn(|cx| Pin::new(&mut receiver).poll_next(cx)).await {
            on_event(event);
        }
    });
}

/// Sends `message` and calls `on_settled` when the server acknowledged it (or once it is known
/// that it never will), just before the returned future resolves. Acknowledgements are no
/// events, so this is how the UI's counters learn about them.
pub(crate) fn send_and_notify<Out, C>(
    sender: &Sender<Out, C>,
    message: Out,
    on_settled: impl FnOnce() + 'static,
) -> SendFuture
where
    Out: Serialize,
    C: Codec,
{
    let sent = sender.send(message);
    let (future, settle) = SendFuture::pending();
    spawn_local(async move {
        let result = sent.await;
        on_settled();
        settle(result);
    });
    future
}

/// Appends `arrived` to `kept`, then drops the oldest messages beyond `limit`; returns how many
/// were dropped. What keeps a hook's `messages` bounded.
pub(crate) fn append_bounded<T>(kept: &mut Vec<T>, arrived: impl IntoIterator<Item = T>, limit: usize) -> u64 {
    kept.extend(arrived);
    let excess = kept.len().saturating_sub(limit);
    kept.drain(..excess);
    excess as u64
}
