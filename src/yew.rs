//! Yew 0.23 integration (feature `yew`): a durable socket as a hook.
//!
//! [`use_durable_socket`] connects after the component's first render and closes the socket when
//! the component unmounts; every socket event re-renders the component.
//!
//! A complete, tested example is `examples/yew-chat` (the README's "Yew" section shows it).

use std::cell::{Cell, Ref, RefCell};
use std::rc::Rc;

use ::yew::functional::{hook, use_effect_with, use_force_update, use_memo, UseForceUpdateHandle};
use durable_ws_core::{close_code, ClientState, SendError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::stats::Stats;
use crate::typed::{Codec, DurableSocket, Json, Options, SendFuture, Sender, SocketEvent};
use crate::ui_bridge::{append_bounded, forward_events, send_and_notify};

/// What the component renders from, shared by the hook, its handles and the event task. Every
/// `RefCell` but `messages` is borrowed only inside this module, never across a call out of it, so
/// no borrow can fail; `messages` is lent to the application, so it is only ever borrowed shared.
struct Live<Out, In, C> {
    /// `None` before the first render's effect ran and after unmount.
    sender: RefCell<Option<Sender<Out, C>>>,
    state: Cell<ClientState>,
    stats: Cell<Stats>,
    error: RefCell<Option<Error>>,
    /// What [`UseDurableSocketHandle::messages`] lends out: the latest `history` messages.
    messages: RefCell<Vec<In>>,
    /// Received, not yet in `messages`: moved there by `messages()` once no loan is left (at
    /// most `history` of them too).
    arrived: RefCell<Vec<In>>,
    /// The `message_history` limit.
    history: usize,
    /// Messages dropped from the front of `messages` (or of `arrived`) so far.
    dropped: Cell<u64>,
    /// Bumped on every change: handles of different renders compare unequal.
    version: Cell<u64>,
    /// Set on unmount: the event task (which runs until the socket closed) stops re-rendering.
    unmounted: Cell<bool>,
}

impl<Out: Serialize, In, C: Codec> Live<Out, In, C> {
    fn new(history: usize) -> Self {
        Live {
            sender: RefCell::new(None),
            state: Cell::new(ClientState::Connecting),
            stats: Cell::new(Stats::default()),
            error: RefCell::new(None),
            messages: RefCell::new(Vec::new()),
            arrived: RefCell::new(Vec::new()),
            history,
            dropped: Cell::new(0),
            version: Cell::new(0),
            unmounted: Cell::new(false),
        }
    }

    /// Copies the socket's state and counters; whether anything changed.
    fn refresh(&self) -> bool {
        let Some((state, stats)) = self.sender.borrow().as_ref().map(|s| (s.state(), s.stats())) else {
            return false;
        };
        let changed = state != self.state.get() || stats != self.stats.get();
        self.state.set(state);
        self.stats.set(stats);
        changed
    }

    /// Moves arrived messages into `messages` unless the application holds a loan of it.
    fn settle_arrivals(&self) {
        if let Ok(mut messages) = self.messages.try_borrow_mut() {
            let arrived = std::mem::take(&mut *self.arrived.borrow_mut());
            self.count_dropped(append_bounded(&mut messages, arrived, self.history));
        }
    }

    /// Keeps a message; `messages` takes it at once unless it is lent out.
    fn arrive(&self, message: In) {
        let dropped = append_bounded(&mut self.arrived.borrow_mut(), [message], self.history);
        self.count_dropped(dropped);
        self.settle_arrivals();
    }

    fn count_dropped(&self, dropped: u64) {
        self.dropped.set(self.dropped.get() + dropped);
    }
}

/// Shared state plus the trigger that re-renders the component.
struct Link<Out, In, C> {
    live: Rc<Live<Out, In, C>>,
    rerender: UseForceUpdateHandle,
}

impl<Out, In, C> Clone for Link<Out, In, C> {
    fn clone(&self) -> Self {
        Link { live: self.live.clone(), rerender: self.rerender.clone() }
    }
}

impl<Out: Serialize + 'static, In: DeserializeOwned + 'static, C: Codec + 'static> Link<Out, In, C> {
    /// Refreshes state and counters after `changed` (something else changed too) and re-renders
    /// if anything did.
    fn update(&self, changed: bool) {
        let live = &self.live;
        if changed | live.refresh() {
            live.version.set(live.version.get() + 1);
            if !live.unmounted.get() {
                self.rerender.force_update();
            }
        }
    }

    fn connect(&self, options: Options) {
        match DurableSocket::<Out, In, C>::connect(options) {
            Ok(socket) => {
                let (sender, receiver) = socket.split();
                *self.live.sender.borrow_mut() = Some(sender);
                self.update(true);
                let link = self.clone();
                forward_events(receiver, move |event| link.on_event(event));
            }
            Err(error) => {
                *self.live.error.borrow_mut() = Some(error);
                self.live.state.set(ClientState::Closed);
                self.update(true);
            }
        }
    }

    fn on_event(&self, event: SocketEvent<In>) {
        let changed = match event {
            SocketEvent::Message(message) => {
                self.live.arrive(message);
                true
            }
            SocketEvent::Error(error) => {
                *self.live.error.borrow_mut() = Some(error);
                true
            }
            _ => false,
        };
        self.update(changed);
    }

    /// Unmount: close (acknowledgements still drain, up to the close timeout, in the background).
    fn shut_down(&self) {
        self.live.unmounted.set(true);
        let sender = self.live.sender.borrow_mut().take();
        if let Some(sender) = sender {
            // Already closed (for good, or by the application) is fine.
            let _ = sender.close(close_code::NORMAL, "");
        }
    }
}

/// A durable socket as seen by one render of a component; returned by [`use_durable_socket`].
/// Cheap to clone. Two handles are equal when they show the same version of the socket's state,
/// so a child component that takes one as a property re-renders when it changes.
pub struct UseDurableSocketHandle<Out, In, C = Json> {
    link: Link<Out, In, C>,
    version: u64,
}

impl<Out, In, C> Clone for UseDurableSocketHandle<Out, In, C> {
    fn clone(&self) -> Self {
        UseDurableSocketHandle { link: self.link.clone(), version: self.version }
    }
}

impl<Out, In, C> std::fmt::Debug for UseDurableSocketHandle<Out, In, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let live = &self.link.live;
        f.debug_struct("UseDurableSocketHandle")
            .field("state", &live.state.get())
            .field("stats", &live.stats.get())
            .field("error", &live.error.try_borrow().ok().and_then(|error| error.clone()))
            .field("dropped_messages", &live.dropped.get())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<Out, In, C> PartialEq for UseDurableSocketHandle<Out, In, C> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.link.live, &other.link.live) && self.version == other.version
    }
}

impl<Out, In, C> UseDurableSocketHandle<Out, In, C>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    /// Lifecycle state (`Connecting` until the socket starts after the first render).
    pub fn state(&self) -> ClientState {
        self.link.live.state.get()
    }

    /// Counters, refreshed after every event and every acknowledgement of a [`send`](Self::send).
    pub fn stats(&self) -> Stats {
        self.link.live.stats.get()
    }

    /// The latest messages received, in order (each exactly once): at most
    /// [`Options::message_history`] of them (default 1 000); older ones are dropped first. While
    /// a returned `Ref` is alive, newly received messages wait (they appear in the next render).
    pub fn messages(&self) -> Ref<'_, [In]> {
        self.link.live.settle_arrivals();
        Ref::map(self.link.live.messages.borrow(), Vec::as_slice)
    }

    /// How many messages were dropped from the front of [`messages`](Self::messages) so far:
    /// `messages()[i]` is the `dropped_messages() + i`-th message received (from 0), a key that
    /// never changes.
    pub fn dropped_messages(&self) -> u64 {
        self.link.live.settle_arrivals();
        self.link.live.dropped.get()
    }

    /// The last error event (a connection given up, a bad URL, a message that did not decode).
    pub fn error(&self) -> Option<Error> {
        self.link.live.error.borrow().clone()
    }

    /// Sends `message` (queued while disconnected). The future resolves once the server
    /// acknowledged it; dropping it does not cancel the send. Before the socket started and after
    /// unmount it fails with `SendError::Closed`.
    pub fn send(&self, message: Out) -> SendFuture {
        let link = self.link.clone();
        let sent = {
            let sender = self.link.live.sender.borrow();
            sender.as_ref().map(|sender| send_and_notify(sender, message, move || link.update(false)))
        };
        match sent {
            Some(future) => {
                self.link.update(false);
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
        let result = self.link.live.sender.borrow().as_ref().map(action);
        self.link.update(false);
        result.unwrap_or(Err(Error::Send(SendError::Closed)))
    }
}

/// Connects with `options` after the first render (messages as JSON: the [`Json`] codec,
/// feature `json`); closes the socket when the component unmounts. Later renders ignore
/// `options`.
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[hook]
pub fn use_durable_socket<Out, In>(options: Options) -> UseDurableSocketHandle<Out, In>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
{
    use_durable_socket_with_codec::<Out, In, Json>(options)
}

/// `use_durable_socket` with the codec `C` (`Json`, `Postcard` or your own, see [`Codec`]).
#[hook]
pub fn use_durable_socket_with_codec<Out, In, C>(options: Options) -> UseDurableSocketHandle<Out, In, C>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    let rerender = use_force_update();
    let history = options.history();
    let live = use_memo((), |_| Live::<Out, In, C>::new(history));
    let link = Link { live, rerender };
    {
        let link = link.clone();
        use_effect_with((), move |_| {
            link.connect(options);
            move || link.shut_down()
        });
    }
    let version = link.live.version.get();
    UseDurableSocketHandle { link, version }
}
