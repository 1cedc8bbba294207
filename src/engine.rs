//! The shared driver: the core [`Client`] wired to a browser socket, a timer and the page's
//! online/visibility signals. Both public APIs (Rust typed, JS) sit on it.
//!
//! Every input (socket event, timer, environment change, user call) is processed while the state
//! is borrowed, then the *pump* drains the client: actions (open/close a socket), frames to
//! transmit, events; and re-arms the timer. What the pump produces for the outside world (events,
//! settled acknowledgement waiters, wakers, URL provider calls) is queued as a [`Delivery`] and
//! handed out only after the borrow ends, in order, so user code called from there may use the
//! socket again without ever re-entering a borrow.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Waker;

use durable_ws_core::{
    Action, Client, ClientConfig, ClientState, Event, LostReason, MessageKind, Millis, Payload, SUBPROTOCOL,
};
use wasm_bindgen::{JsCast, JsValue};

use crate::clock;
use crate::config::{EngineConfig, Resolution, UrlProvider, UrlSource};
use crate::environment::{Environment, EnvironmentEvent};
use crate::error::Error;
use crate::persist::{Persistence, StoreEvent, StoreOpener};
use crate::socket::{Socket, SocketEvent};
use crate::stats::Stats;
use crate::timer::Timer;

/// Called once with the fate of a sent message: `Ok` when acknowledged.
pub(crate) type AckWaiter = Box<dyn FnOnce(Result<(), Error>)>;

/// What the application is told: the core's events without acknowledgements, plus driver errors.
pub(crate) enum Output {
    /// A connection opened on a new session (`durable` false: plain server, no recovery).
    Open {
        /// Whether the server speaks `durable.v1`.
        durable: bool,
    },
    /// A received message, exactly once and in order.
    Message(Payload),
    /// The connection is gone; attempt `attempt` starts in `delay_ms`.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Delay before it.
        delay_ms: Millis,
    },
    /// The session was resumed; `replayed` messages were sent again.
    Resumed {
        /// Messages sent again.
        replayed: u64,
    },
    /// The session could not continue; these messages were never confirmed.
    SessionLost {
        /// Why.
        reason: LostReason,
        /// The unconfirmed messages, in order.
        unconfirmed: Vec<Payload>,
    },
    /// A connection closed.
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
        /// Whether the closing handshake completed.
        was_clean: bool,
        /// Whether a reconnect follows.
        will_reconnect: bool,
    },
    /// Something failed (a connection given up, the URL, storage).
    Error(Error),
    /// A persisted session's messages became safe from a killed browser (durably stored, or
    /// confirmed first): `unstored` messages sent are not yet.
    Stored {
        /// Messages queued and not yet durably stored.
        unstored: u64,
    },
}

/// Work handed out after the state borrow ends.
enum Delivery {
    Output(Output),
    Settle(AckWaiter, Result<(), Error>),
    Wake(Waker),
    ResolveUrl { attempt: u64 },
}

/// An input from the browser.
enum Input {
    Socket { attempt: u64, event: SocketEvent },
    Url { attempt: u64, url: Result<String, String> },
    Timer,
    Environment(EnvironmentEvent),
    Store(StoreEvent),
}

/// A running durable socket. Dropping it ends everything: goodbye if possible, socket closed,
/// listeners and timer removed, no further events.
pub(crate) struct Engine {
    shared: Rc<Shared>,
}

struct Shared {
    state: RefCell<State>,
    inputs: RefCell<VecDeque<Input>>,
    deliveries: RefCell<VecDeque<Delivery>>,
    delivering: Cell<bool>,
    shut_down: Cell<bool>,
    provider: RefCell<Option<UrlProvider>>,
    /// Receives each output and whether a call of the application's into this engine is on the stack.
    sink: Box<dyn Fn(Output, bool)>,
    /// Calls of the application's into this engine on the stack (the constructor, `send`, `close`, …).
    calls: Cell<u32>,
    /// The latest time given to the core.
    last_now: Cell<Millis>,
    me: Weak<Shared>,
}

struct State {
    client: Client,
    me: Weak<Shared>,
    fixed_url: Option<String>,
    /// `durable.v1` first, then the extra ones.
    protocols: Vec<String>,
    /// The application's `WebSocket` constructor, if it gave one.
    websocket: Option<js_sys::Function>,
    socket: Option<Socket>,
    /// Bumped for every connect and close, so late events of an old attempt are ignored.
    attempt: u64,
    timer: Timer,
    environment: Option<Environment>,
    /// Waiters in sequence order (sequence numbers only grow within a session).
    acks: VecDeque<(u64, AckWaiter)>,
    wakers: Vec<Waker>,
    scratch: Vec<u8>,
    stopped: bool,
    /// A persisted session: its name, storage and what waits for it to be read back.
    persist: Option<Persist>,
}

/// The stored position of a session that has nothing stored yet.
const NOTHING_STORED: &str = "dws1::0:0:0";

/// A persisted session's driver state.
struct Persist {
    name: String,
    opener: StoreOpener,
    /// The open store.
    store: Option<Persistence>,
    /// Messages not yet safe when last told (`Output::Stored`).
    unstored: u64,
    /// Until the stored session is read back, the client is a stand-in that neither connects nor
    /// stores: sends and a close wait here.
    loading: Option<Loading>,
}

struct Loading {
    /// Each with its number in the stand-in's buffer (which holds them too).
    sends: Vec<(Payload, Option<AckWaiter>, u64)>,
    close: Option<(u16, String)>,
}

impl Engine {
    /// Starts connecting at once (or when the browser is online); `sink` receives the outputs, with
    /// `true` while a call of the application's into the engine (this one included) is on the stack.
    pub(crate) fn start(config: EngineConfig, sink: impl Fn(Output, bool) + 'static) -> Engine {
        let now = clock::now();
        let (fixed_url, provider) = match config.url {
            UrlSource::Fixed(url) => (Some(url), None),
            UrlSource::Provider(provider) => (None, Some(provider)),
        };
        // A provider is asked again before every attempt: a 4401 may be cured by fresh credentials.
        let client_config = ClientConfig { retry_unauthorized: provider.is_some(), ..config.client };
        let mut protocols = vec![SUBPROTOCOL.to_owned()];
        protocols.extend(config.protocols);
        let persist = config.persist.map(|(name, opener)| Persist {
            name,
            opener,
            store: None,
            unstored: 0,
            loading: Some(Loading { sends: Vec::new(), close: None }),
        });
        // A persisted session connects once it is read back: until then a stand-in that stays offline.
        let online = persist.is_none() && Environment::is_online();
        let client = Client::new(client_config, clock::seed(), now, online);
        let shared = Rc::new_cyclic(|me: &Weak<Shared>| {
            let target = me.clone();
            let timer = Timer::new(move || input(&target, Input::Timer));
            let target = me.clone();
            let environment = Environment::watch(move |change| input(&target, Input::Environment(change)));
            Shared {
                state: RefCell::new(State {
                    client,
                    me: me.clone(),
                    fixed_url,
                    protocols,
                    websocket: config.websocket,
                    socket: None,
                    attempt: 0,
                    timer,
                    environment: Some(environment),
                    acks: VecDeque::new(),
                    wakers: Vec::new(),
                    scratch: Vec::new(),
                    stopped: false,
                    persist,
                }),
                inputs: RefCell::new(VecDeque::new()),
                deliveries: RefCell::new(VecDeque::new()),
                delivering: Cell::new(false),
                shut_down: Cell::new(false),
                provider: RefCell::new(provider),
                sink: Box::new(sink),
                calls: Cell::new(0),
                last_now: Cell::new(now),
                me: me.clone(),
            }
        });
        if let Ok(mut state) = shared.state.try_borrow_mut() {
            state.open_store();
        }
        shared.as_call(|| shared.run(Some(now)));
        Engine { shared }
    }

    /// Queues a message; `waiter` (if any) learns whether it was acknowledged.
    pub(crate) fn send(&self, payload: Payload, waiter: Option<AckWaiter>) -> Result<u64, Error> {
        self.shared.update(|state, now| {
            if let Some(persist) = state.persist.as_mut().filter(|persist| persist.loading.is_some()) {
                // The stand-in's own buffer holds them too, so that its bounds apply as they will.
                let seq = state.client.send(now, payload.clone())?;
                if let Some(store) = &persist.store {
                    store.enqueue(&payload);
                }
                if let Some(loading) = &mut persist.loading {
                    loading.sends.push((payload, waiter, seq));
                }
                return Ok(0);
            }
            let seq = state.client.send(now, payload)?;
            if let Some(waiter) = waiter {
                state.acks.push_back((seq, waiter));
            }
            Ok(seq)
        })?
    }

    /// Closes for good with `code` and `reason` (after draining acknowledgements).
    /// Refuses what browsers refuse (code 1000 or 3000–4999, reason of at most 123 bytes).
    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        crate::error::check_close(code, reason)?;
        self.shared.update(|state, now| match state.loading() {
            Some(loading) => loading.close = Some((code, reason.to_owned())),
            None => state.client.close(now, code, reason),
        })
    }

    /// Reconnects now, skipping the remaining backoff delay.
    pub(crate) fn reconnect_now(&self) -> Result<(), Error> {
        self.shared.update(|state, now| {
            if state.loading().is_none() {
                state.client.reconnect_now(now)
            }
        })
    }

    /// Whether a message of `len` bytes would be accepted now.
    #[cfg_attr(not(feature = "typed"), allow(dead_code))]
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.shared.read(|state| state.client.has_room(len)).unwrap_or(false)
    }

    /// Lifecycle state.
    pub(crate) fn state(&self) -> ClientState {
        self.shared.read(|state| state.client.state()).unwrap_or(ClientState::Closed)
    }

    /// Counters.
    pub(crate) fn stats(&self) -> Stats {
        self.shared
            .read(|state| {
                let mut stats = Stats::from(state.client.stats());
                stats.unstored = state.client.unstored();
                // The stand-in of a session being read back holds its sends, in memory only.
                if let Some(loading) = &state.persist.as_ref().and_then(|p| p.loading.as_ref()) {
                    stats.unstored = loading.sends.len() as u64;
                }
                stats
            })
            .unwrap_or_default()
    }

    /// The current session's token in hex (tests and the demo address the server's fault endpoints with it).
    pub(crate) fn session_token_hex(&self) -> Option<String> {
        Some(self.shared.read(|state| state.client.session_token())??.to_hex())
    }

    /// Wakes `waker` at the next acknowledgement, session loss or close.
    #[cfg_attr(not(feature = "typed"), allow(dead_code))]
    pub(crate) fn wake_on_progress(&self, waker: &Waker) {
        if let Ok(mut state) = self.shared.state.try_borrow_mut() {
            if !state.wakers.iter().any(|w| w.will_wake(waker)) {
                state.wakers.push(waker.clone());
            }
        } else {
            waker.wake_by_ref();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.shut_down.set(true);
        shared.inputs.borrow_mut().clear();
        if let Ok(mut state) = shared.state.try_borrow_mut() {
            state.shut_down(clock::now(), &mut shared.deliveries.borrow_mut());
        }
        // Settle the waiters and wake the wakers; outputs are discarded.
        shared.run(None);
    }
}

/// How far past the last time an event's `timeStamp` may be to be taken as the time (beyond it, or
/// before the last time, the clock is asked).
const PLAUSIBLE_STEP_MS: Millis = 60_000;

/// Feeds `input` to the engine behind `target`, if it still runs.
fn input(target: &Weak<Shared>, input: Input) {
    input_at(target, input, None);
}

/// Feeds `input`, which happened at `at`, to the engine behind `target`, if it still runs.
fn input_at(target: &Weak<Shared>, input: Input, at: Option<Millis>) {
    if let Some(shared) = target.upgrade() {
        shared.input(input, at);
    }
}

impl Shared {
    fn input(&self, input: Input, at: Option<Millis>) {
        if self.shut_down.get() {
            return;
        }
        self.inputs.borrow_mut().push_back(input);
        self.run(at);
    }

    /// `at` (or the clock), never earlier than a time already used: the core's time only advances.
    /// An `at` that is not a plausible next time (an event's `timeStamp` of 0, or on another
    /// scale) is replaced by the clock's.
    fn now(&self, at: Option<Millis>) -> Millis {
        let last = self.last_now.get();
        let now = match at {
            Some(at) if at >= last && at - last < PLAUSIBLE_STEP_MS => at,
            _ => clock::now(),
        }
        .max(last);
        self.last_now.set(now);
        now
    }

    /// Applies a user call, then pumps (at the same time) and delivers.
    fn update<R>(&self, apply: impl FnOnce(&mut State, Millis) -> R) -> Result<R, Error> {
        let (result, now) = {
            let mut state = self.state.try_borrow_mut().map_err(|_| Error::Busy)?;
            // A call from a listener happens at the time of the input being delivered.
            let now = if self.delivering.get() { self.last_now.get() } else { self.now(None) };
            (apply(&mut state, now), now)
        };
        self.as_call(|| self.run(Some(now)));
        Ok(result)
    }

    /// Runs `work` as a call of the application's: the outputs it delivers are marked so.
    fn as_call(&self, work: impl FnOnce()) {
        self.calls.set(self.calls.get() + 1);
        work();
        self.calls.set(self.calls.get() - 1);
    }

    fn read<R>(&self, read: impl FnOnce(&State) -> R) -> Option<R> {
        self.state.try_borrow().ok().map(|state| read(&state))
    }

    /// Processes queued inputs, then hands out deliveries one at a time. A delivery may call back
    /// into the engine; that nested call processes its input and leaves delivering to this frame,
    /// so outputs keep their order.
    ///
    /// `now`: the time of the input (e.g. a socket event's `timeStamp`, saving a clock call per
    /// message), else the clock's. After a delivery the state is processed again only for inputs
    /// it queued: a nested call has pumped the state itself.
    fn run(&self, mut now: Option<Millis>) {
        let mut first = true;
        loop {
            if first || !self.inputs.borrow().is_empty() {
                first = false;
                let Ok(mut state) = self.state.try_borrow_mut() else {
                    return; // the frame holding the state drains the inputs before it lets go
                };
                let now = self.now(now.take());
                let mut deliveries = self.deliveries.borrow_mut();
                loop {
                    let next = self.inputs.borrow_mut().pop_front();
                    match next {
                        Some(input) => state.handle(input, now, &mut deliveries),
                        None => break,
                    }
                }
                state.pump(now, &mut deliveries);
            }
            if self.delivering.get() {
                return;
            }
            let next = self.deliveries.borrow_mut().pop_front();
            let Some(delivery) = next else {
                return;
            };
            self.delivering.set(true);
            self.deliver(delivery);
            self.delivering.set(false);
        }
    }

    fn deliver(&self, delivery: Delivery) {
        match delivery {
            Delivery::Output(output) => {
                if !self.shut_down.get() {
                    (self.sink)(output, self.calls.get() > 0)
                }
            }
            Delivery::Settle(waiter, result) => waiter(result),
            Delivery::Wake(waker) => waker.wake(),
            Delivery::ResolveUrl { attempt } => {
                if !self.shut_down.get() {
                    self.resolve_url(attempt)
                }
            }
        }
    }

    /// Runs the URL provider (user code, hence outside the state borrow).
    fn resolve_url(&self, attempt: u64) {
        let resolution = match self.provider.try_borrow_mut() {
            Ok(mut provider) => match provider.as_mut() {
                Some(provider) => provider(UrlReply { target: self.me.clone(), attempt }),
                None => return,
            },
            Err(_) => Resolution::Ready(Err("the URL provider was called while it was running".into())),
        };
        match resolution {
            Resolution::Ready(url) => self.input(Input::Url { attempt, url }, None),
            #[cfg(feature = "js")]
            Resolution::Later => {}
            #[cfg(feature = "typed")]
            Resolution::Pending(future) => {
                let target = self.me.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let url = future.await;
                    input(&target, Input::Url { attempt, url });
                });
            }
        }
    }
}

/// Where a URL provider that answers later sends the URL for one connection attempt.
pub(crate) struct UrlReply {
    target: Weak<Shared>,
    attempt: u64,
}

#[cfg_attr(not(feature = "js"), allow(dead_code))]
impl UrlReply {
    /// The attempt the URL is for; a newer attempt ignores answers for older ones.
    pub(crate) fn attempt(&self) -> u64 {
        self.attempt
    }

    /// Hands the URL (or the provider's error message) to the engine, if it still runs. Counts as
    /// a call of the application's: the JS API answers from inside one of its methods, so the
    /// events this causes wait for a microtask (a listener may then `free()` the socket).
    pub(crate) fn answer(self, url: Result<String, String>) {
        if let Some(shared) = self.target.upgrade() {
            shared.as_call(|| shared.input(Input::Url { attempt: self.attempt, url }, None));
        }
    }
}

impl State {
    fn handle(&mut self, input: Input, now: Millis, out: &mut VecDeque<Delivery>) {
        if self.stopped {
            return;
        }
        match input {
            Input::Socket { attempt, event } if attempt == self.attempt => match event {
                SocketEvent::Open { protocol } => self.client.on_open(now, protocol == SUBPROTOCOL),
                SocketEvent::Message(payload) => self.client.on_message(now, payload.as_ref()),
                SocketEvent::Close { code, reason, was_clean } => {
                    self.socket = None;
                    self.client.on_close(now, code, &reason, was_clean);
                }
            },
            Input::Url { attempt, url } if attempt == self.attempt && self.socket.is_none() => match url {
                Ok(url) => self.open(&url, now, out),
                Err(message) => self.attempt_failed(now, Error::Url(message), out),
            },
            Input::Socket { .. } | Input::Url { .. } => {} // from an attempt given up already
            Input::Timer => {
                self.timer.fired();
                self.client.handle_timeout(now);
            }
            Input::Store(event) => self.on_store(event, now, out),
            // The stand-in of a persisted session waiting to be read back neither connects nor pings.
            Input::Environment(_) if self.loading().is_some() => {}
            Input::Environment(EnvironmentEvent::Online(online)) => self.client.set_online(now, online),
            Input::Environment(EnvironmentEvent::Visible) => self.client.on_visible(now),
            Input::Environment(EnvironmentEvent::PageHide { for_good }) => self.page_hidden(for_good, now),
            Input::Environment(EnvironmentEvent::PageShow) => self.page_shown(now),
        }
    }

    /// The persisted session's stand-in, while its stored session is being read back.
    fn loading(&mut self) -> Option<&mut Loading> {
        self.persist.as_mut()?.loading.as_mut()
    }

    /// Opens the persisted session's storage (at start, and when the page comes back from the
    /// back/forward cache); it reports through `Input::Store`.
    fn open_store(&mut self) {
        let Some(persist) = &mut self.persist else { return };
        let target = self.me.clone();
        persist.store =
            Some(Persistence::open(&persist.name, &persist.opener, move |event| input(&target, Input::Store(event))));
    }

    fn on_store(&mut self, event: StoreEvent, now: Millis, out: &mut VecDeque<Delivery>) {
        match event {
            StoreEvent::Loaded { position, messages, adopted } => self.restore(position, messages, adopted, now, out),
            StoreEvent::Stored(id) => self.client.stored(now, id),
            StoreEvent::Failed(message) => {
                out.push_back(Delivery::Output(Output::Error(Error::Persist(message))));
                let loading = self.persist.take().and_then(|persist| persist.loading);
                self.client.unpersist(now);
                if let Some(loading) = loading {
                    // Nothing could be read: the stand-in, which holds the sends, goes on as a session in
                    // memory only.
                    self.client.set_online(now, Environment::is_online());
                    let waiting = loading.sends.into_iter().filter_map(|(_, waiter, seq)| Some((seq, waiter?)));
                    self.acks.extend(waiting);
                    if let Some((code, reason)) = loading.close {
                        self.client.close(now, code, &reason);
                    }
                }
            }
        }
    }

    /// The stored session is read back: a client restored from it takes over from the stand-in,
    /// with what the application did meanwhile.
    fn restore(
        &mut self,
        position: Option<String>,
        messages: Vec<(u64, Payload)>,
        adopted: usize,
        now: Millis,
        out: &mut VecDeque<Delivery>,
    ) {
        let Some(loading) = self.persist.as_mut().and_then(|persist| persist.loading.take()) else { return };
        // Nothing stored reads as a new session's position; stored messages without one are reported.
        let fresh = if messages.is_empty() { NOTHING_STORED } else { "" };
        let config = ClientConfig { persist: true, ..self.client.config().clone() };
        let position = position.as_deref().unwrap_or(fresh);
        let (client, error) = Client::restore(config, clock::seed(), now, Environment::is_online(), position, messages);
        self.client = client;
        if let Some(error) = error {
            out.push_back(Delivery::Output(Output::Error(Error::Persist(error.describe().to_owned()))));
        }
        self.replay_loading(loading, adopted, now, out);
    }

    /// What the application did while the stored session was being read back, done now; the first
    /// `adopted` sends another page took over and sent (their outcome is that page's to know).
    fn replay_loading(&mut self, loading: Loading, adopted: usize, now: Millis, out: &mut VecDeque<Delivery>) {
        let mut sends = loading.sends.into_iter();
        for (_, waiter, _) in sends.by_ref().take(adopted) {
            if let Some(waiter) = waiter {
                let error = Error::Persist("sent by the page that took the session over".into());
                out.push_back(Delivery::Settle(waiter, Err(error)));
            }
        }
        for (payload, waiter, _) in sends {
            match self.client.send(now, payload) {
                Ok(seq) => {
                    if let Some(waiter) = waiter {
                        self.acks.push_back((seq, waiter));
                    }
                }
                Err(error) => {
                    if let Some(waiter) = waiter {
                        out.push_back(Delivery::Settle(waiter, Err(error.into())));
                    }
                }
            }
        }
        if let Some((code, reason)) = loading.close {
            self.client.close(now, code, &reason);
        }
    }

    /// `pagehide`: the page unloads (`for_good`) or enters the back/forward cache.
    fn page_hidden(&mut self, for_good: bool, now: Millis) {
        match &mut self.persist {
            // Going for good: everything is stored, the next page resumes. This one takes no more messages (it
            // could not use them; the next page gets them from the stored position) and lets the name go.
            Some(_) if for_good => {
                self.persist = None;
                if let Some(socket) = self.socket.take() {
                    socket.close(1000, "");
                }
                self.timer.disarm();
                self.stopped = true;
            }
            // Entering the back/forward cache, the name stays held: Chromium keeps such a page eligible (the
            // lifecycle suite checks it), and nothing sent between `pagehide` and the freeze goes unstored.
            Some(_) => {}
            // Nothing outlives the page: end the session now rather than at the server's time-to-live.
            None if for_good => self.client.leave(now),
            None => {}
        }
    }

    /// `pageshow` from the back/forward cache: reconnect at once (the session's name stayed held).
    fn page_shown(&mut self, now: Millis) {
        self.client.reconnect_now(now);
        self.client.on_visible(now);
    }

    /// Drains the client until it has nothing more to say, then re-arms the timer.
    fn pump(&mut self, now: Millis, out: &mut VecDeque<Delivery>) {
        if self.stopped {
            return;
        }
        loop {
            // A persisted session's messages go on the wire once handed to storage: store first.
            let mut progressed = self.write_store();
            while let Some(action) = self.client.poll_action() {
                progressed = true;
                self.act(action, now, out);
            }
            self.transmit(now);
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                self.on_event(event, out);
            }
            if !progressed {
                break;
            }
        }
        // Messages became safe (durably stored, or confirmed by the server first): say so.
        let unstored = self.client.unstored();
        if let Some(persist) = &mut self.persist {
            if unstored < persist.unstored {
                out.push_back(Delivery::Output(Output::Stored { unstored }));
            }
            persist.unstored = unstored;
        }
        if self.persist.is_some() && self.client.state() == ClientState::Closed {
            // Ended for good (its storage cleared): the name is free for the next socket.
            self.persist = None;
        }
        match self.client.poll_timeout() {
            Some(deadline) => self.timer.arm(deadline, now),
            None => self.timer.disarm(),
        }
    }

    /// Hands a persisted session's batches to its storage; whether there were any. While a stored
    /// session is read back, the client is replaced when it is: nothing of it is written.
    fn write_store(&mut self) -> bool {
        let store = self.persist.as_ref().filter(|persist| persist.loading.is_none()).and_then(|p| p.store.as_ref());
        let Some(store) = store else { return false };
        let mut wrote = false;
        while let Some(batch) = self.client.poll_store() {
            store.write(batch);
            wrote = true;
        }
        wrote
    }

    fn transmit(&mut self, now: Millis) {
        while let Some(kind) = self.client.poll_transmit(now, &mut self.scratch) {
            let Some(socket) = &self.socket else { continue };
            match kind {
                MessageKind::Binary => socket.send_binary(&self.scratch),
                MessageKind::Text => socket.send_text(std::str::from_utf8(&self.scratch).unwrap_or_default()),
            }
        }
    }

    fn act(&mut self, action: Action, now: Millis, out: &mut VecDeque<Delivery>) {
        self.attempt += 1;
        if let Some(old) = self.socket.take() {
            let (code, reason) = match &action {
                Action::Close { code, reason } => (*code, reason.as_str()),
                Action::Connect => (1000, ""),
            };
            old.close(code, reason);
        }
        if action == Action::Connect {
            match self.fixed_url.clone() {
                Some(url) => self.open(&url, now, out),
                None => out.push_back(Delivery::ResolveUrl { attempt: self.attempt }),
            }
        }
    }

    fn open(&mut self, url: &str, now: Millis, out: &mut VecDeque<Delivery>) {
        let target = self.me.clone();
        let attempt = self.attempt;
        let opened = Socket::open(url, &self.protocols, self.websocket.as_ref(), move |event, at| {
            input_at(&target, Input::Socket { attempt, event }, Some(at))
        });
        match opened {
            Ok(socket) => self.socket = Some(socket),
            Err(exception) => {
                let error = Error::Url(error_message(&exception));
                if self.fixed_url.is_some() {
                    // The same URL would fail the same way forever.
                    out.push_back(Delivery::Output(Output::Error(error)));
                    self.client.close(now, 1000, "invalid url");
                } else {
                    self.attempt_failed(now, error, out);
                }
            }
        }
    }

    /// A connection attempt failed before a socket existed.
    fn attempt_failed(&mut self, now: Millis, error: Error, out: &mut VecDeque<Delivery>) {
        out.push_back(Delivery::Output(Output::Error(error)));
        self.client.on_close(now, 1006, "", false);
    }

    fn on_event(&mut self, event: Event, out: &mut VecDeque<Delivery>) {
        let output = match event {
            Event::Acked { seq } => {
                while self.acks.front().is_some_and(|(waiting, _)| *waiting <= seq) {
                    if let Some((_, waiter)) = self.acks.pop_front() {
                        out.push_back(Delivery::Settle(waiter, Ok(())));
                    }
                }
                self.wake_all(out);
                return;
            }
            Event::SessionLost { reason, unconfirmed } => {
                self.fail_waiters(reason, out);
                Output::SessionLost {
                    reason,
                    unconfirmed: unconfirmed.into_iter().map(|(_, payload)| payload).collect(),
                }
            }
            Event::Closed { code, reason, was_clean, will_reconnect } => {
                if !will_reconnect {
                    self.fail_waiters(LostReason::Closed, out);
                }
                self.wake_all(out);
                Output::Closed { code, reason, was_clean, will_reconnect }
            }
            Event::Open { durable } => Output::Open { durable },
            Event::Resumed { replayed } => Output::Resumed { replayed },
            Event::Message(payload) => Output::Message(payload),
            Event::Reconnecting { attempt, delay_ms } => Output::Reconnecting { attempt, delay_ms },
            Event::Error(error) => Output::Error(Error::Connection(error)),
            _ => return, // events of a newer core this driver does not know
        };
        out.push_back(Delivery::Output(output));
    }

    fn fail_waiters(&mut self, reason: LostReason, out: &mut VecDeque<Delivery>) {
        for (_, waiter) in std::mem::take(&mut self.acks) {
            out.push_back(Delivery::Settle(waiter, Err(Error::Unconfirmed(reason))));
        }
        self.wake_all(out);
    }

    fn wake_all(&mut self, out: &mut VecDeque<Delivery>) {
        for waker in std::mem::take(&mut self.wakers) {
            out.push_back(Delivery::Wake(waker));
        }
    }

    /// The last handle is gone: goodbye if the client can say it now, then release everything.
    fn shut_down(&mut self, now: Millis, out: &mut VecDeque<Delivery>) {
        if self.stopped {
            return;
        }
        self.write_store();
        if let Some(persist) = self.persist.take() {
            // The session outlives this socket: everything is stored (the next page, or the next socket of
            // this name, resumes it); its promises end here.
            for (_, waiter) in std::mem::take(&mut self.acks) {
                out.push_back(Delivery::Settle(waiter, Err(Error::Send(durable_ws_core::SendError::Closed))));
            }
            let waiting =
                persist.loading.into_iter().flat_map(|loading| loading.sends).filter_map(|(_, waiter, _)| waiter);
            for waiter in waiting {
                out.push_back(Delivery::Settle(waiter, Err(Error::Send(durable_ws_core::SendError::Closed))));
            }
            self.wake_all(out);
        } else {
            self.client.close(now, 1000, "");
        }
        self.transmit(now);
        while self.client.poll_action().is_some() {}
        while let Some(event) = self.client.poll_event() {
            self.on_event(event, out);
        }
        self.fail_waiters(LostReason::Closed, out);
        self.stopped = true;
        if let Some(socket) = self.socket.take() {
            socket.close(1000, "");
        }
        self.timer.disarm();
        self.environment = None;
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.close(1000, "");
        }
    }
}

/// The message of a JS exception.
pub(crate) fn error_message(exception: &JsValue) -> String {
    if let Some(error) = exception.dyn_ref::<js_sys::Error>() {
        return error.message().into();
    }
    exception.as_string().unwrap_or_else(|| "unknown error".into())
}
