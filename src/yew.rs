//! Yew 0.23 integration (feature `yew`): a durable socket as a hook.
//!
//! [`use_durable_socket`] connects after the component's first render and closes the socket when
//! the component unmounts; every socket event re-renders the component.
//!
//! A complete, tested example is `examples/yew-chat` (the README's "Yew" section shows it).

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use ::yew::functional::{hook, use_effect_with, use_force_update, use_mut_ref, UseForceUpdateHandle};
use durable_ws_core::{close_code, ClientState, SendError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::stats::Stats;
use crate::typed::{Codec, DefaultCodec, DurableSocket, Options, SendFuture, Sender, SocketEvent};
use crate::ui_bridge::{forward_events, send_and_notify};

/// What the component renders from, shared by the hook, its handles and the event task.
struct Live<Out, In, C> {
    /// `None` before the first render's effect ran and after unmount.
    sender: Option<Sender<Out, C>>,
    state: ClientState,
    stats: Stats,
    messages: Vec<In>,
    error: Option<Error>,
    /// Bumped on every change: handles of different renders compare unequal.
    version: u64,
    /// Set on unmount: the event task (which runs until the socket closed) stops re-rendering.
    unmounted: bool,
}

impl<Out: Serialize, In, C: Codec> Live<Out, In, C> {
    fn new() -> Self {
        Live {
            sender: None,
            state: ClientState::Connecting,
            stats: Stats::default(),
            messages: Vec::new(),
            error: None,
            version: 0,
            unmounted: false,
        }
    }

    /// Copies the socket's state and counters; whether anything changed.
    fn refresh(&mut self) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        let (state, stats) = (sender.state(), sender.stats());
        let changed = state != self.state || stats != self.stats;
        self.state = state;
        self.stats = stats;
        changed
    }
}

/// Shared state plus the trigger that re-renders the component.
struct Link<Out, In, C> {
    live: Rc<RefCell<Live<Out, In, C>>>,
    rerender: UseForceUpdateHandle,
}

impl<Out, In, C> Clone for Link<Out, In, C> {
    fn clone(&self) -> Self {
        Link { live: self.live.clone(), rerender: self.rerender.clone() }
    }
}

impl<Out: Serialize + 'static, In: DeserializeOwned + 'static, C: Codec + 'static> Link<Out, In, C> {
    /// Applies `change` (plus a refresh of state and counters) and re-renders if anything changed.
    /// The borrow ends before the re-render is requested.
    fn update(&self, change: impl FnOnce(&mut Live<Out, In, C>) -> bool) {
        let rerender = {
            let mut live = self.live.borrow_mut();
            let changed = change(&mut live) | live.refresh();
            if changed {
                live.version += 1;
            }
            changed && !live.unmounted
        };
        if rerender {
            self.rerender.force_update();
        }
    }

    fn connect(&self, options: Options) {
        match DurableSocket::<Out, In, C>::connect(options) {
            Ok(socket) => {
                let (sender, receiver) = socket.split();
                self.update(|live| {
                    live.sender = Some(sender);
                    true
                });
                let link = self.clone();
                forward_events(receiver, move |event| link.on_event(event));
            }
            Err(error) => self.update(|live| {
                live.error = Some(error);
                live.state = ClientState::Closed;
                true
            }),
        }
    }

    fn on_event(&self, event: SocketEvent<In>) {
        self.update(|live| match event {
            SocketEvent::Message(message) => {
                live.messages.push(message);
                true
            }
            SocketEvent::Error(error) => {
                live.error = Some(error);
                true
            }
            _ => false,
        });
    }

    /// Unmount: close (acknowledgements still drain, up to the close timeout, in the background).
    fn shut_down(&self) {
        let sender = {
            let mut live = self.live.borrow_mut();
            live.unmounted = true;
            live.sender.take()
        };
        if let Some(sender) = sender {
            // Already closed (for good, or by the application) is fine.
            let _ = sender.close(close_code::NORMAL, "");
        }
    }
}

/// A durable socket as seen by one render of a component; returned by [`use_durable_socket`].
/// Cheap to clone. Two handles are equal when they show the same version of the socket's state,
/// so a child component that takes one as a property re-renders when it changes.
pub struct UseDurableSocketHandle<Out, In, C = DefaultCodec> {
    link: Link<Out, In, C>,
    version: u64,
}

impl<Out, In, C> Clone for UseDurableSocketHandle<Out, In, C> {
    fn clone(&self) -> Self {
        UseDurableSocketHandle { link: self.link.clone(), version: self.version }
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
        self.link.live.borrow().state
    }

    /// Counters, refreshed after every event and every acknowledgement of a [`send`](Self::send).
    pub fn stats(&self) -> Stats {
        self.link.live.borrow().stats
    }

    /// Every message received, in order (each exactly once). Do not hold it across a `send`.
    pub fn messages(&self) -> Ref<'_, [In]> {
        Ref::map(self.link.live.borrow(), |live| live.messages.as_slice())
    }

    /// The last error event (a connection given up, a bad URL, a message that did not decode).
    pub fn error(&self) -> Option<Error> {
        self.link.live.borrow().error.clone()
    }

    /// Sends `message` (queued while disconnected). The future resolves once the server
    /// acknowledged it; dropping it does not cancel the send. Before the socket started and after
    /// unmount it fails with `SendError::Closed`.
    pub fn send(&self, message: Out) -> SendFuture {
        let link = self.link.clone();
        let sent = {
            let live = self.link.live.borrow();
            live.sender.as_ref().map(|sender| send_and_notify(sender, message, move || link.update(|_| false)))
        };
        match sent {
            Some(future) => {
                self.link.update(|_| false);
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
        let result = self.link.live.borrow().sender.as_ref().map(action);
        self.link.update(|_| false);
        result.unwrap_or(Err(Error::Send(SendError::Closed)))
    }
}

/// Connects with `options` after the first render (messages through the default codec, JSON
/// with the `json` feature); closes the socket when the component unmounts. Later renders
/// ignore `options`.
#[hook]
pub fn use_durable_socket<Out, In>(options: Options) -> UseDurableSocketHandle<Out, In>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
{
    use_durable_socket_with_codec::<Out, In, DefaultCodec>(options)
}

/// [`use_durable_socket`] with the codec `C` (`Json` or `Postcard`, see [`Codec`]).
#[hook]
pub fn use_durable_socket_with_codec<Out, In, C>(options: Options) -> UseDurableSocketHandle<Out, In, C>
where
    Out: Serialize + 'static,
    In: DeserializeOwned + 'static,
    C: Codec + 'static,
{
    let rerender = use_force_update();
    let live = use_mut_ref(Live::<Out, In, C>::new);
    let link = Link { live, rerender };
    {
        let link = link.clone();
        use_effect_with((), move |_| {
            link.connect(options);
            move || link.shut_down()
        });
    }
    let version = link.live.borrow().version;
    UseDurableSocketHandle { link, version }
}
