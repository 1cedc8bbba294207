//! Leptos 0.8 integration (feature `leptos`): a durable socket as reactive signals.
//!
//! [`use_durable_socket`] connects when the component is created and closes the socket when the
//! component's reactive owner is cleaned up (the component unmounts). The socket is `!Send`: it
//! lives in local (thread-bound) storage, which is fine in the browser's single thread. Outside the
//! browser (server-side rendering) no socket is opened and the state stays `Connecting`.
//!
//! A complete, tested example is `examples/leptos-chat` (the README's "Leptos" section shows it).

use ::leptos::prelude::{
    on_cleanup, signal, signal_local, GetUntracked, LocalStorage, ReadSignal, SetValue, StoredValue, Update,
    UpdateValue, WithValue, WriteSignal,
};
use durable_ws_core::{close_code, ClientState, SendError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::stats::Stats;
use crate::typed::{Codec, DurableSocket, Json, Options, SendFuture, Sender, SocketEvent};
use crate::ui_bridge::{append_bounded, forward_events, send_and_notify};

/// A durable socket seen through signals; returned by [`use_durable_socket`]. `Copy`, so move it
/// into as many closures as needed.
pub struct DurableSocketSignals<Out: 'static, In: 'static, C: 'static = Json> {
    /// Lifecycle state (`Connecting`, `Open`, `Reconnecting`, …).
    pub state: ReadSignal<ClientState>,
    /// The latest messages received, in order (each exactly once): at most
    /// [`Options::message_history`] of them (default 1 000); older ones are dropped first.
    pub messages: ReadSignal<Vec<In>, LocalStorage>,
    /// How many messages were dropped from the front of `messages` so far: the message at
    /// `messages[i]` is the `dropped_messages + i`-th received (from 0), a key that never changes.
    pub dropped_messages: ReadSignal<u64>,
    /// Counters, refreshed after every event and every acknowledgement of a
    /// [`send`](Self::send).
    pub stats: ReadSignal<Stats>,
    /// The last error event (a connection given up, a bad URL, a message that did not decode).
    pub error: ReadSignal<Option<Error>>,
    set_state: WriteSignal<ClientState>,
    set_messages: WriteSignal<Vec<In>, LocalStorage>,
    set_dropped_messages: WriteSignal<u64>,
    history: usize,
    set_stats: WriteSignal<Stats>,
    set_error: WriteSignal<Option<Error>>,
    sender: StoredValue<Option<Sender<Out, C>>, LocalStorage>,
}

impl<Out, In, C> Clone for DurableSocketSignals<Out, In, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Out, In, C> Copy for DurableSocketSignals<Out, In, C> {}

impl<Out, In, C> std::fmt::Debug for DurableSocketSignals<Out, In, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSocketSignals")
            .field("state", &self.state.try_get_untracked())
            .field("stats", &self.stats.try_get_untracked())
            .field("error", &self.error.try_get_untracked().flatten())
            .field("dropped_messages", &self.dropped_messages.try_get_untracked())
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

/// Connects with `options` (messages as JSON: the [`Json`] codec, feature `json`); the socket is
/// closed when the calling component unmounts. Call it inside a component.
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub fn use_durable_socket<Out, In>(options: Options) -> DurableSocketSignals<Out, In>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
{
    use_durable_socket_with_codec::<Out, In, Json>(options)
}

/// `use_durable_socket` with the codec `C` (`Json`, `Postcard` or your own, see [`Codec`]).
pub fn use_durable_socket_with_codec<Out, In, C>(options: Options) -> DurableSocketSignals<Out, In, C>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    let (state, set_state) = signal(ClientState::Connecting);
    let (messages, set_messages) = signal_local(Vec::new());
    let (dropped_messages, set_dropped_messages) = signal(0);
    let (stats, set_stats) = signal(Stats::default());
    let (error, set_error) = signal(None);
    let sender = StoredValue::new_local(None);
    let signals = DurableSocketSignals {
        state,
        messages,
        dropped_messages,
        stats,
        error,
        set_state,
        set_messages,
        set_dropped_messages,
        history: options.history(),
        set_stats,
        set_error,
        sender,
    };
    if cfg!(target_family = "wasm") {
        signals.connect(options);
    }
    on_cleanup(move || signals.shut_down());
    signals
}

impl<Out, In, C> DurableSocketSignals<Out, In, C>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    /// Sends `message` (queued while disconnected). The future resolves once the server
    /// acknowledged it; dropping it does not cancel the send. After unmount it fails with
    /// `SendError::Closed`.
    pub fn send(&self, message: Out) -> SendFuture {
        let this = *self;
        let sent = self.sender.try_with_value(|sender| {
            sender.as_ref().map(|sender| send_and_notify(sender, message, move || this.refresh()))
        });
        match sent.flatten() {
            Some(future) => {
                self.refresh();
                future
            }
            None => SendFuture::ready(Err(Error::Send(SendError::Closed))),
        }
    }

    /// Closes for good (see [`Sender::close`]); unmounting does this with code 1000.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.with_sender(|sender| sender.close(code, reason))
    }

    /// Reconnects at once instead of waiting for the backoff delay.
    pub fn reconnect_now(&self) -> Result<(), Error> {
        self.with_sender(Sender::reconnect_now)
    }

    fn with_sender(&self, action: impl FnOnce(&Sender<Out, C>) -> Result<(), Error>) -> Result<(), Error> {
        let result = self.sender.try_with_value(|sender| sender.as_ref().map(action));
        let result = result.flatten().unwrap_or(Err(Error::Send(SendError::Closed)));
        self.refresh();
        result
    }

    fn connect(self, options: Options) {
        match DurableSocket::<Out, In, C>::connect(options) {
            Ok(socket) => {
                let (sender, receiver) = socket.split();
                self.sender.set_value(Some(sender));
                self.refresh();
                forward_events(receiver, move |event| self.on_event(event));
            }
            Err(error) => {
                self.set_error.try_update(|slot| *slot = Some(error));
                self.set_state.try_update(|state| *state = ClientState::Closed);
            }
        }
    }

    /// Runs after the component is gone too (until the socket closed): every write tolerates
    /// disposed signals.
    fn on_event(self, event: SocketEvent<In>) {
        match event {
            SocketEvent::Message(message) => {
                let history = self.history;
                let dropped = self.set_messages.try_update(|messages| append_bounded(messages, [message], history));
                if let Some(dropped @ 1..) = dropped {
                    self.set_dropped_messages.try_update(|count| *count += dropped);
                }
            }
            SocketEvent::Error(error) => {
                self.set_error.try_update(|slot| *slot = Some(error));
            }
            _ => {}
        }
        self.refresh();
    }

    /// Copies the socket's state and counters into the signals, notifying only on change.
    fn refresh(self) {
        let snapshot = self.sender.try_with_value(|sender| sender.as_ref().map(|s| (s.state(), s.stats())));
        let Some((state, stats)) = snapshot.flatten() else {
            return;
        };
        if self.state.try_get_untracked() != Some(state) {
            self.set_state.try_update(|slot| *slot = state);
        }
        if self.stats.try_get_untracked() != Some(stats) {
            self.set_stats.try_update(|slot| *slot = stats);
        }
    }

    /// Unmount: close (acknowledgements still drain, up to the close timeout, in the background).
    fn shut_down(self) {
        if let Some(sender) = self.sender.try_update_value(Option::take).flatten() {
            // Already closed (for good, or by the application) is fine.
            let _ = sender.close(close_code::NORMAL, "");
        }
    }
}
