//! The client-role supervisor: a [`Session`] plus the connection lifecycle, connect timeout,
//! reconnect policy, close-code policy and online/offline awareness. A browser driver only opens
//! and closes sockets when told, and feeds back what the socket did.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::backoff::{Backoff, BackoffConfig, SplitMix64};
use crate::close::{close_code, ClosePolicy};
use crate::config::SessionConfig;
use crate::error::{ConnectionError, SendError};
use crate::event::{Event, LostReason};
use crate::payload::{MessageKind, Payload, PayloadRef};
use crate::persist::{Position, StorageError, StoreBatch};
use crate::session::{Session, SessionEvent, SessionStats};
use crate::Millis;

/// Client configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Session settings (buffer bounds, acks, heartbeat).
    pub session: SessionConfig,
    /// Reconnect policy.
    pub backoff: BackoffConfig,
    /// From `Action::Connect` to an open, handshaken connection. Default 10 000 ms.
    pub connect_timeout_ms: Millis,
    /// How long `close` waits for outstanding acknowledgements before it says goodbye. Default 2 000 ms.
    pub close_timeout_ms: Millis,
    /// Close codes from the server that end reconnection.
    pub close_policy: ClosePolicy,
    /// On a 4401 (credentials missing or expired), reconnect once at once instead of stopping:
    /// for drivers whose URL provider fetches fresh credentials on every attempt. A second 4401
    /// before a handshake succeeds stops. Default false.
    pub retry_unauthorized: bool,
    /// Persist the session so that it outlives the driver (a page): the client hands out what to
    /// store ([`Client::poll_store`]), transmits nothing before it is handed out and acknowledges
    /// nothing before it is durably stored ([`Client::stored`]). Default false.
    pub persist: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            session: SessionConfig::default(),
            backoff: BackoffConfig::default(),
            connect_timeout_ms: 10_000,
            close_timeout_ms: 2_000,
            close_policy: ClosePolicy::default(),
            retry_unauthorized: false,
            persist: false,
        }
    }
}

/// What the driver must do to the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a new socket now (resolving the URL provider first), offering `durable.v1`.
    Connect,
    /// Close the current socket with this code and reason, then report `on_close`.
    Close {
        /// Close code (1000 or 3000–4999: browsers refuse others).
        code: u16,
        /// Reason, at most 123 bytes.
        reason: String,
    },
}

/// Where the client is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// A socket is opening or handshaking.
    Connecting,
    /// Open and ready (durable or plain).
    Open,
    /// Waiting before the next attempt, until this time.
    Reconnecting {
        /// When the attempt starts.
        at: Millis,
    },
    /// The browser is offline; an attempt starts when it is back.
    Offline,
    /// `close` was called: draining acknowledgements, then goodbye.
    Closing,
    /// Closed for good.
    Closed,
}

/// Counters of a client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Session counters (sent, acked, pending, replayed, duplicates dropped, RTT).
    pub session: SessionStats,
    /// Connections that were lost and attempted again.
    pub reconnects: u64,
    /// Sessions lost (each reported by `SessionLost`).
    pub sessions_lost: u64,
}

/// The client state machine. Feed it socket happenings and time; after each call drain
/// `poll_transmit` (frames for the open socket), then `poll_action`, then `poll_event`; wake at
/// `poll_timeout`.
///
/// ```
/// use durable_ws_core::{Action, Client, ClientConfig, ClientState, Event, Payload};
/// let mut client = Client::new(ClientConfig::default(), 42, 0, true);
/// assert_eq!(client.poll_action(), Some(Action::Connect));
/// client.send(0, Payload::from("queued while connecting")).unwrap();
/// // The server cannot be reached: the socket closes without a close frame.
/// client.on_close(100, 1006, "", false);
/// assert!(matches!(client.poll_event(), Some(Event::Closed { code: 1006, will_reconnect: true, .. })));
/// assert!(matches!(client.poll_event(), Some(Event::Reconnecting { attempt: 1, .. })));
/// let ClientState::Reconnecting { at } = client.state() else { panic!() };
/// client.handle_timeout(at);
/// assert_eq!(client.poll_action(), Some(Action::Connect));
/// ```
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    session: Session,
    backoff: Backoff,
    rng: SplitMix64,
    state: ClientState,
    online: bool,
    durable: Option<bool>,
    /// The user closed the client (as opposed to giving up): never reconnect.
    closed_by_user: bool,
    /// `close` is waiting for acknowledgements until this deadline, then says goodbye.
    closing: Option<Closing>,
    connect_deadline: Option<Millis>,
    stable_at: Option<Millis>,
    /// The current connection completed its handshake: if the link then breaks (not a close the
    /// server chose), the next attempt starts from the first delay.
    handshaken: bool,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    reconnects: u64,
    sessions_lost: u64,
    /// A 4401 was already retried since the last successful handshake.
    unauthorized_retried: bool,
    /// What a persisted session has still to hand to its driver's storage.
    store: Option<Store>,
}

/// A persisted session's bookkeeping between the client and its driver's storage.
#[derive(Debug, Default)]
struct Store {
    next_id: u64,
    /// Stored messages and position are void (the session was lost or closed).
    clear: bool,
    messages: Vec<(u64, Arc<Payload>)>,
    /// The position of the last batch handed out.
    written: Option<Position>,
    /// Batches handed out and not reported stored: what each lets through once it is.
    unstored: VecDeque<Unstored>,
    /// Bumped when the session's numbering or token changes: older batches let nothing through.
    epoch: u64,
    /// Closed for good: nothing more is stored.
    ended: bool,
    /// The newest message handed out in a batch (the driver's fast store has it).
    handed_out: u64,
    /// The newest message in a durably stored batch.
    durable: u64,
    /// A durably stored position names the current session's token: what is handed out may go on
    /// the wire (a browser killed later restores a session the server knows, and `Session` rebases
    /// its numbering if the server got more than storage kept).
    token_stored: bool,
}

#[derive(Debug)]
struct Unstored {
    id: u64,
    epoch: u64,
    last_queued: u64,
    delivered: u64,
    /// Its position names a server session.
    token: bool,
}

#[derive(Clone, Debug)]
struct Closing {
    code: u16,
    reason: String,
    deadline: Millis,
}

impl Client {
    /// A client that wants to connect at once (`poll_action` yields `Connect`). `seed` feeds
    /// the jitter; `online` is the browser's current state.
    pub fn new(config: ClientConfig, seed: u64, now: Millis, online: bool) -> Self {
        let session = if config.persist {
            Session::persisted_client(config.session.clone())
        } else {
            Session::client(config.session.clone())
        };
        let mut client = Client {
            store: config.persist.then(Store::default),
            session,
            backoff: Backoff::new(config.backoff.clone()),
            config,
            rng: SplitMix64::new(seed),
            state: ClientState::Offline,
            online,
            durable: None,
            closed_by_user: false,
            closing: None,
            connect_deadline: None,
            stable_at: None,
            handshaken: false,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            reconnects: 0,
            sessions_lost: 0,
            unauthorized_retried: false,
        };
        if online {
            client.start_attempt(now);
        }
        client
    }

    /// A persisted client whose driver read back a stored session: `position` as
    /// [`StoreBatch::position`] was written ([`Position::encode`]) and the messages stored since
    /// (those up to its `acked` may still be there), in ascending order. The session resumes on the
    /// first connection.
    /// If storage held something unreadable, the client starts a new session, reports the
    /// messages it could read (`SessionLost`, `LostReason::Storage`) and returns why.
    pub fn restore(
        config: ClientConfig,
        seed: u64,
        now: Millis,
        online: bool,
        position: &str,
        messages: Vec<(u64, Payload)>,
    ) -> (Client, Option<StorageError>) {
        let mut client = Client::new(ClientConfig { persist: true, ..config }, seed, now, online);
        match crate::persist::check(position, messages) {
            Ok(restored) => {
                client.session = Session::restored_client(client.config.session.clone(), restored);
                if let Some(store) = &mut client.store {
                    // All of it is durably stored (the driver made it so before restoring).
                    let last = client.session.last_queued();
                    (store.handed_out, store.durable) = (last, last);
                    store.token_stored = client.session.token().is_some();
                }
                (client, None)
            }
            Err((error, readable)) => {
                if let Some(store) = &mut client.store {
                    store.clear = true;
                }
                if !readable.is_empty() {
                    client.sessions_lost += 1;
                    client.events.push_back(Event::SessionLost { reason: LostReason::Storage, unconfirmed: readable });
                }
                (client, Some(error))
            }
        }
    }

    /// A persisted session's next batch to store, if anything changed since the last one. Call it
    /// after every input, before transmitting: nothing it holds goes on the wire before it is handed
    /// out, and its deliveries are acknowledged once [`stored`](Self::stored) reports it durable
    /// (see [`persist`](crate::persist) for the rules).
    pub fn poll_store(&mut self) -> Option<StoreBatch> {
        let store = self.store.as_mut()?;
        let position = (!store.ended).then(|| self.session.position());
        if !store.clear && store.messages.is_empty() && position == store.written {
            return None;
        }
        let id = store.next_id;
        store.next_id += 1;
        store.written = position;
        if let Some(position) = position {
            let last_queued = self.session.last_queued();
            store.unstored.push_back(Unstored {
                id,
                epoch: store.epoch,
                last_queued,
                delivered: position.delivered,
                token: position.token.is_some(),
            });
            store.handed_out = last_queued;
        }
        let batch = StoreBatch {
            id,
            clear: std::mem::take(&mut store.clear),
            messages: std::mem::take(&mut store.messages),
            position,
        };
        self.release_sends();
        Some(batch)
    }

    /// Every batch up to `id` is durably stored: the deliveries they record may be acknowledged,
    /// and once one names the session's token, what was handed out may be transmitted.
    pub fn stored(&mut self, now: Millis, id: u64) {
        let Some(store) = &mut self.store else { return };
        let mut last = None;
        while store.unstored.front().is_some_and(|batch| batch.id <= id) {
            last = store.unstored.pop_front();
        }
        if let Some(batch) = last.filter(|batch| batch.epoch == store.epoch) {
            self.session.allow_ack(now, batch.delivered);
            store.durable = store.durable.max(batch.last_queued);
            store.token_stored |= batch.token;
            self.release_sends();
        }
    }

    /// Lets what was handed out go on the wire, once a durable position names the session's token
    /// and (restored) the resume decided the numbering.
    fn release_sends(&mut self) {
        if let Some(store) = self.store.as_ref().filter(|store| store.token_stored) {
            if !self.session.awaiting_resume() {
                self.session.allow_send(store.handed_out);
            }
        }
    }

    /// Storage failed: the session goes on in memory only, nothing waits for storage any more.
    pub fn unpersist(&mut self, now: Millis) {
        self.store = None;
        self.session.unpersist(now);
    }

    /// Own messages queued and not yet stored (0 when not persisted).
    pub fn unstored(&self) -> u64 {
        let Some(store) = &self.store else { return 0 };
        self.session.last_queued().saturating_sub(store.durable.max(self.session.acked()))
    }

    /// The socket opened; `durable` says whether the server selected `durable.v1`.
    pub fn on_open(&mut self, now: Millis, durable: bool) {
        if self.state != ClientState::Connecting {
            return;
        }
        self.durable = Some(durable);
        if durable {
            self.session.connect(now);
        } else {
            self.session.connect_plain(now);
        }
        self.absorb(now);
    }

    /// The socket delivered a message.
    pub fn on_message(&mut self, now: Millis, message: PayloadRef<'_>) {
        if !matches!(self.state, ClientState::Connecting | ClientState::Open | ClientState::Closing) {
            return;
        }
        if let Err(error) = self.session.handle_message(now, message) {
            self.absorb(now);
            self.fail(now, ConnectionError::Protocol(error), close_code::CLIENT_PROTOCOL_ERROR, "protocol error");
            return;
        }
        self.absorb(now);
    }

    /// The socket closed (after an error too). Schedules a reconnect unless the close is
    /// terminal, the client was closed, or the attempt limit is reached.
    pub fn on_close(&mut self, now: Millis, code: u16, reason: &str, was_clean: bool) {
        if !matches!(self.state, ClientState::Connecting | ClientState::Open | ClientState::Closing) {
            return;
        }
        self.connection_lost(now, code, reason, was_clean);
    }

    /// Queues an application message (see the session's `send`); `Err(Closed)` once closed for good.
    pub fn send(&mut self, now: Millis, payload: Payload) -> Result<u64, SendError> {
        if self.closed_by_user || self.state == ClientState::Closed {
            return Err(SendError::Closed);
        }
        let seq = self.session.send(now, payload)?;
        if let (Some(store), Some(payload)) = (&mut self.store, self.session.queued(seq)) {
            store.messages.push((seq, payload.clone()));
        }
        Ok(seq)
    }

    /// Whether `send` would accept `len` bytes now.
    pub fn has_room(&self, len: usize) -> bool {
        !self.closed_by_user && self.state != ClientState::Closed && self.session.has_room(len)
    }

    /// The user closes the socket for good: waits up to `close_timeout_ms` for outstanding
    /// acknowledgements (reconnecting at once if the connection drops meanwhile), says goodbye,
    /// closes with `code`/`reason`; whatever stayed unconfirmed is reported with
    /// `SessionLost { reason: Closed }`. Never reconnects afterwards.
    pub fn close(&mut self, now: Millis, code: u16, reason: &str) {
        self.close_within(now, code, reason, self.config.close_timeout_ms);
    }

    /// The driver goes away for good (a page unloading) with a session that is not persisted:
    /// says goodbye at once, so that the server ends the session now rather than after its
    /// time-to-live, and closes with 1000; whatever is unconfirmed is reported.
    pub fn leave(&mut self, now: Millis) {
        self.close_within(now, close_code::NORMAL, "", 0);
    }

    fn close_within(&mut self, now: Millis, code: u16, reason: &str, timeout_ms: Millis) {
        self.closed_by_user = true;
        match self.state {
            ClientState::Closed | ClientState::Closing => {}
            ClientState::Open if self.durable == Some(true) => {
                self.state = ClientState::Closing;
                self.closing =
                    Some(Closing { code, reason: reason.to_owned(), deadline: now.saturating_add(timeout_ms) });
                self.progress_closing(now);
            }
            ClientState::Open | ClientState::Connecting => {
                self.actions.push_back(Action::Close { code, reason: reason.to_owned() });
                self.session.disconnect(now);
                self.finish(code, reason, true, LostReason::Closed);
            }
            ClientState::Reconnecting { .. } | ClientState::Offline => {
                self.finish(code, reason, true, LostReason::Closed)
            }
        }
    }

    /// The browser went offline or online. Offline: no attempts are made. Online: an attempt
    /// starts at once if one was pending.
    pub fn set_online(&mut self, now: Millis, online: bool) {
        self.online = online;
        match self.state {
            ClientState::Reconnecting { .. } if !online => self.state = ClientState::Offline,
            ClientState::Reconnecting { .. } | ClientState::Offline if online => self.start_attempt(now),
            _ => {}
        }
    }

    /// The page became visible: ping now to find out quickly whether the link survived (or,
    /// while waiting to reconnect, try at once).
    pub fn on_visible(&mut self, now: Millis) {
        match self.state {
            ClientState::Open => {
                self.session.ping(now);
            }
            ClientState::Reconnecting { .. } if self.online => self.start_attempt(now),
            _ => {}
        }
    }

    /// Reconnect now, skipping the remaining delay; also restarts a client that gave up after
    /// the attempt limit or a terminal close code (not one the user closed).
    pub fn reconnect_now(&mut self, now: Millis) {
        match self.state {
            ClientState::Reconnecting { .. } | ClientState::Offline => self.start_attempt(now),
            ClientState::Closed if !self.closed_by_user => {
                if let Some(store) = &mut self.store {
                    // Going on: the new session is stored again (else nothing would go out).
                    store.ended = false;
                }
                self.backoff.reset();
                self.start_attempt(now);
            }
            _ => {}
        }
    }

    /// The next socket action.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next message to send on the open socket (see the session's `poll_transmit`).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Millis, buf: &mut Vec<u8>) -> Option<MessageKind> {
        let kind = self.session.poll_transmit(now, buf);
        if kind.is_some() {
            self.absorb(now);
        } else if self.state == ClientState::Closing && self.session.is_ended() {
            self.close_now(now, true);
        }
        kind
    }

    /// The next application event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        let reconnect_at = match self.state {
            ClientState::Reconnecting { at } => Some(at),
            _ => None,
        };
        let closing = self.closing.as_ref().map(|c| c.deadline);
        [self.session.poll_timeout(), self.connect_deadline, self.stable_at, reconnect_at, closing]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time has reached a deadline.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.state == ClientState::Connecting && self.closing.as_ref().is_some_and(|c| c.deadline <= now) {
            // `close` reconnected to collect acknowledgements and ran out of time.
            return self.close_now(now, false);
        }
        match self.state {
            ClientState::Reconnecting { at } if at <= now => return self.start_attempt(now),
            ClientState::Connecting if self.connect_deadline.is_some_and(|at| at <= now) => {
                return self.fail(now, ConnectionError::ConnectTimeout, close_code::CONNECT_TIMEOUT, "connect timeout");
            }
            _ => {}
        }
        if self.stable_at.is_some_and(|at| at <= now) {
            self.stable_at = None;
            self.backoff.reset();
        }
        self.session.handle_timeout(now);
        self.absorb(now);
        if self.state == ClientState::Closing {
            self.progress_closing(now);
        }
    }

    /// The configuration the client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the current (or last) connection is durable; `None` before the first open.
    pub fn is_durable(&self) -> Option<bool> {
        self.durable
    }

    /// The token of the current durable session, once the server assigned one. It is a
    /// credential: show it only to tools that need it (e.g. a demo's "cut this session" button).
    pub fn session_token(&self) -> Option<crate::Token> {
        self.session.token()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats { session: self.session.stats(), reconnects: self.reconnects, sessions_lost: self.sessions_lost }
    }

    fn start_attempt(&mut self, now: Millis) {
        self.state = ClientState::Connecting;
        self.connect_deadline = Some(now.saturating_add(self.config.connect_timeout_ms));
        self.actions.push_back(Action::Connect);
    }

    /// Moves the session's events into ours, acting on those that concern the connection.
    fn absorb(&mut self, now: Millis) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Dead => {
                    return self.fail(
                        now,
                        ConnectionError::HeartbeatTimeout,
                        close_code::HEARTBEAT_TIMEOUT,
                        "heartbeat timeout",
                    );
                }
                SessionEvent::Goodbye => {
                    // The server ended the session for good.
                    self.actions.push_back(Action::Close { code: close_code::NORMAL, reason: "goodbye".into() });
                    self.session.disconnect(now);
                    self.closing = None;
                    return self.finish(close_code::NORMAL, "goodbye", true, LostReason::Closed);
                }
                SessionEvent::SessionLost { reason, unconfirmed } => {
                    self.void_store(false);
                    self.sessions_lost += 1;
                    self.events.push_back(Event::SessionLost { reason, unconfirmed });
                }
                SessionEvent::Open { durable } => {
                    if let (true, Some(store)) = (durable, &mut self.store) {
                        // A new session: nothing of it goes out before a position naming it is
                        // stored, else a browser killed meanwhile restores its messages without the
                        // token and sends them again in another session. Older batches name none.
                        store.epoch += 1;
                        store.token_stored = false;
                        self.session.gate();
                    }
                    self.events.push_back(Event::Open { durable });
                }
                SessionEvent::Resumed { replayed, restored } => {
                    if let (true, Some(store)) = (restored, &mut self.store) {
                        // The resume decided how own numbers go on: nothing more goes out before a
                        // position saying so is durable, else a browser killed meanwhile restores
                        // the old numbering and sends again what the server already has.
                        store.epoch += 1;
                        store.token_stored = false;
                        // Acknowledgements stay as they are: what the HELLO claimed was confirmed.
                        self.session.hold_sends();
                    }
                    self.events.push_back(Event::Resumed { replayed });
                }
                SessionEvent::Message(payload) => self.events.push_back(Event::Message(payload)),
                SessionEvent::Acked { seq } => self.events.push_back(Event::Acked { seq }),
            }
        }
        if self.state == ClientState::Connecting && self.session.is_established() {
            self.unauthorized_retried = false;
            self.state = if self.closing.is_some() { ClientState::Closing } else { ClientState::Open };
            self.connect_deadline = None;
            self.stable_at = Some(now.saturating_add(self.config.backoff.stable_after_ms));
            self.handshaken = true;
        }
        if self.state == ClientState::Closing {
            self.progress_closing(now);
        }
    }

    fn progress_closing(&mut self, now: Millis) {
        let Some(closing) = &self.closing else { return };
        if self.durable == Some(false) {
            // `close` reconnected and found a plain server: the session was lost with it (reported), and
            // a plain connection has no acknowledgement to wait for and no GOODBYE to say.
            return self.close_now(now, true);
        }
        if self.session.stats().pending == 0 || closing.deadline <= now {
            self.session.goodbye();
        }
    }

    /// Ends `close`: closes the socket with the user's code and reason, closed for good.
    fn close_now(&mut self, now: Millis, was_clean: bool) {
        let Some(Closing { code, reason, .. }) = self.closing.take() else { return };
        self.actions.push_back(Action::Close { code, reason: reason.clone() });
        self.session.disconnect(now);
        self.finish(code, &reason, was_clean, LostReason::Closed);
    }

    /// Gives the connection up: tells why, closes the socket, goes on as after a close.
    fn fail(&mut self, now: Millis, error: ConnectionError, code: u16, reason: &str) {
        self.events.push_back(Event::Error(error));
        self.actions.push_back(Action::Close { code, reason: reason.to_owned() });
        self.connection_lost(now, code, reason, false);
    }

    fn connection_lost(&mut self, now: Millis, code: u16, reason: &str, was_clean: bool) {
        self.session.disconnect(now);
        self.connect_deadline = None;
        self.stable_at = None;
        // The server took the handshake, then the link broke: progress, however short-lived the
        // connections (a flaky link). A server that refuses or fails handshakes, or closes
        // connections itself, still makes the delays grow.
        let link_broke_after_progress = std::mem::take(&mut self.handshaken) && !was_clean;
        if let Some(closing) = &self.closing {
            if closing.deadline > now && self.session.token().is_some() {
                // Still waiting for acknowledgements: fetch them on a new connection.
                return self.start_attempt(now);
            }
            let Closing { code, reason, .. } = self.closing.take().expect("checked above");
            return self.finish(code, &reason, was_clean, LostReason::Closed);
        }
        let refused = matches!(code, close_code::UNAUTHORIZED | close_code::FORBIDDEN | close_code::SUPERSEDED);
        if refused {
            self.events.push_back(Event::Error(ConnectionError::Refused { code, reason: reason.to_owned() }));
            if code == close_code::UNAUTHORIZED && self.config.retry_unauthorized && !self.unauthorized_retried {
                // Fresh credentials may fix it: one attempt at once, then a second 4401 is final.
                self.unauthorized_retried = true;
                self.reconnects += 1;
                self.events.push_back(Event::Closed {
                    code,
                    reason: reason.to_owned(),
                    was_clean,
                    will_reconnect: true,
                });
                self.events.push_back(Event::Reconnecting { attempt: 1, delay_ms: 0 });
                return self.start_attempt(now);
            }
        }
        if self.config.close_policy.is_terminal(code) {
            let lost = if refused { LostReason::Refused } else { LostReason::Closed };
            return self.finish(code, reason, was_clean, lost);
        }
        if link_broke_after_progress {
            self.backoff.reset();
        }
        let Some((attempt, delay_ms)) = self.backoff.next(&mut self.rng) else {
            return self.finish(code, reason, was_clean, LostReason::Closed);
        };
        self.reconnects += 1;
        self.events.push_back(Event::Closed { code, reason: reason.to_owned(), was_clean, will_reconnect: true });
        self.events.push_back(Event::Reconnecting { attempt, delay_ms });
        self.state = if self.online {
            ClientState::Reconnecting { at: now.saturating_add(delay_ms) }
        } else {
            ClientState::Offline
        };
    }

    /// The stored session is void: the session was lost (numbering starts again) or, `ended`,
    /// closed for good (nothing more is stored).
    fn void_store(&mut self, ended: bool) {
        if let Some(store) = &mut self.store {
            store.clear = true;
            store.messages.clear();
            store.epoch += 1;
            store.ended |= ended;
            // The numbering starts again.
            (store.handed_out, store.durable, store.token_stored) = (0, 0, false);
        }
    }

    /// Closed for good: report what stayed unconfirmed (as lost for `lost`), then the close.
    fn finish(&mut self, code: u16, reason: &str, was_clean: bool, lost: LostReason) {
        self.state = ClientState::Closed;
        self.closing = None;
        self.connect_deadline = None;
        self.stable_at = None;
        self.handshaken = false;
        let unconfirmed = self.session.take_unconfirmed();
        self.void_store(true);
        if !unconfirmed.is_empty() {
            self.sessions_lost += 1;
            self.events.push_back(Event::SessionLost { reason: lost, unconfirmed });
        }
        self.events.push_back(Event::Closed { code, reason: reason.to_owned(), was_clean, will_reconnect: false });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, Token, WelcomeStatus};
    use crate::{LostReason, Payload};

    const TOKEN: Token = Token([9; 16]);

    fn config() -> ClientConfig {
        ClientConfig {
            backoff: BackoffConfig { jitter: false, min_delay_ms: 100, max_delay_ms: 1_000, ..Default::default() },
            ..Default::default()
        }
    }

    fn frame(f: Frame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(&mut out);
        out
    }

    fn events(client: &mut Client) -> Vec<Event> {
        std::iter::from_fn(|| client.poll_event()).collect()
    }

    fn transmitted(client: &mut Client, now: Millis) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        std::iter::from_fn(|| client.poll_transmit(now, &mut buf).map(|_| buf.clone())).collect()
    }

    /// A client with an open durable session.
    fn open_client(config: ClientConfig) -> Client {
        let mut client = Client::new(config, 1, 0, true);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        client.on_open(10, true);
        assert_eq!(transmitted(&mut client, 10), [frame(Frame::Hello { resume: None })]);
        let welcome = frame(Frame::Welcome { status: WelcomeStatus::New, token: TOKEN, last_received: 0 });
        client.on_message(20, PayloadRef::Binary(&welcome));
        assert_eq!(events(&mut client), [Event::Open { durable: true }]);
        assert_eq!(client.state(), ClientState::Open);
        client
    }

    #[test]
    fn terminal_close_codes_stop_reconnection_and_report_the_unconfirmed() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        transmitted(&mut client, 30);
        client.on_close(40, 4403, "forbidden", true);
        assert_eq!(
            events(&mut client),
            [
                Event::Error(ConnectionError::Refused { code: 4403, reason: "forbidden".into() }),
                Event::SessionLost { reason: LostReason::Refused, unconfirmed: vec![(1, Payload::from("a"))] },
                Event::Closed { code: 4403, reason: "forbidden".into(), was_clean: true, will_reconnect: false },
            ]
        );
        assert_eq!(client.state(), ClientState::Closed);
        assert_eq!(client.poll_action(), None);
        assert_eq!(client.send(50, Payload::from("b")), Err(SendError::Closed));

        // A terminal code that is no refusal.
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        client.on_close(40, 1008, "policy", true);
        let evs = events(&mut client);
        assert_eq!(
            evs[0],
            Event::SessionLost { reason: LostReason::Closed, unconfirmed: vec![(1, Payload::from("a"))] }
        );
    }

    #[test]
    fn unauthorized_retries_once_at_once_with_fresh_credentials_then_stops() {
        let refused = |client: &mut Client, now| {
            client.on_open(now, true);
            transmitted(client, now);
            client.on_close(now, 4401, "credentials expired", true);
            events(client)
        };
        let mut plain = Client::new(config(), 1, 0, true);
        assert_eq!(plain.poll_action(), Some(Action::Connect));
        let evs = refused(&mut plain, 10);
        assert!(matches!(evs.last(), Some(Event::Closed { code: 4401, will_reconnect: false, .. })), "{evs:?}");

        let mut client = Client::new(ClientConfig { retry_unauthorized: true, ..config() }, 1, 0, true);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        let evs = refused(&mut client, 10);
        assert_eq!(evs[0], Event::Error(ConnectionError::Refused { code: 4401, reason: "credentials expired".into() }));
        assert_eq!(evs.last(), Some(&Event::Reconnecting { attempt: 1, delay_ms: 0 }));
        assert_eq!(client.poll_action(), Some(Action::Connect), "at once: the URL provider runs again");
        let evs = refused(&mut client, 20);
        assert!(
            matches!(evs.last(), Some(Event::Closed { code: 4401, will_reconnect: false, .. })),
            "a second 4401 is final: {evs:?}"
        );
    }

    #[test]
    fn going_away_and_restart_codes_reconnect_with_growing_delays() {
        let mut client = open_client(config());
        for (attempt, code, delay) in [(1, 1001, 100), (2, 1012, 200), (3, 1006, 400)] {
            client.on_close(100, code, "", false);
            let evs = events(&mut client);
            assert_eq!(evs[1], Event::Reconnecting { attempt, delay_ms: delay });
            assert_eq!(client.state(), ClientState::Reconnecting { at: 100 + delay });
            assert_eq!(client.poll_timeout(), Some(100 + delay));
            client.handle_timeout(100 + delay);
            assert_eq!(client.poll_action(), Some(Action::Connect));
        }
        assert_eq!(client.stats().reconnects, 3);
    }

    #[test]
    fn a_link_that_breaks_after_a_handshake_resets_the_backoff_and_nothing_else_does() {
        let mut client = open_client(config());
        let attempt = |client: &mut Client| match events(client).last() {
            Some(&Event::Reconnecting { attempt, .. }) => attempt,
            other => panic!("{other:?}"),
        };
        let connect = |client: &mut Client, now| {
            client.handle_timeout(now);
            assert_eq!(client.poll_action(), Some(Action::Connect));
            client.on_open(now, true);
            transmitted(client, now);
        };
        let resume = |client: &mut Client, now| {
            connect(client, now);
            let welcome = frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 0 });
            client.on_message(now, PayloadRef::Binary(&welcome));
            assert_eq!(client.state(), ClientState::Open);
        };
        // A flaky link: every connection is cut within a second, each after its handshake.
        let mut now = 100;
        for _ in 0..5 {
            client.on_close(now, 1006, "", false);
            assert_eq!(attempt(&mut client), 1, "the first delay again: the last handshake went through");
            now += 1_000;
            resume(&mut client, now);
            now += 100;
        }
        // Connections cut before their handshake count as failures.
        client.on_close(now, 1006, "", false);
        for expected in 1..=3 {
            assert_eq!(attempt(&mut client), expected);
            now += 10_000;
            connect(&mut client, now);
            client.on_close(now, 1006, "", false);
        }
        assert_eq!(attempt(&mut client), 4);
        // A server that takes the handshake, then closes the connection itself: no progress.
        now += 10_000;
        resume(&mut client, now);
        client.on_close(now + 40, 1011, "internal error", true);
        assert_eq!(attempt(&mut client), 5, "closed by the server, not broken");
    }

    #[test]
    fn user_close_drains_acks_then_says_goodbye_and_never_reconnects() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        assert_eq!(transmitted(&mut client, 30).len(), 1);
        client.close(40, 1000, "bye");
        assert_eq!(client.state(), ClientState::Closing);
        assert!(transmitted(&mut client, 40).is_empty(), "goodbye waits for the ack");
        client.on_message(50, PayloadRef::Binary(&frame(Frame::Ack { seq: 1 })));
        assert_eq!(transmitted(&mut client, 50), [frame(Frame::Goodbye)]);
        assert_eq!(client.poll_action(), Some(Action::Close { code: 1000, reason: "bye".into() }));
        assert_eq!(
            events(&mut client),
            [
                Event::Acked { seq: 1 },
                Event::Closed { code: 1000, reason: "bye".into(), was_clean: true, will_reconnect: false }
            ]
        );
        client.on_close(60, 1000, "bye", true);
        client.reconnect_now(70);
        assert_eq!((client.poll_action(), client.state()), (None, ClientState::Closed));
    }

    #[test]
    fn close_gives_up_waiting_for_acks_at_the_close_timeout() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        transmitted(&mut client, 30);
        client.close(40, 1000, "");
        assert_eq!(client.poll_timeout(), Some(40 + 2_000));
        client.handle_timeout(2_040);
        assert_eq!(transmitted(&mut client, 2_040), [frame(Frame::Goodbye)]);
        assert!(matches!(client.poll_action(), Some(Action::Close { code: 1000, .. })));
        let evs = events(&mut client);
        assert_eq!(
            evs[0],
            Event::SessionLost { reason: LostReason::Closed, unconfirmed: vec![(1, Payload::from("a"))] }
        );
    }

    #[test]
    fn close_reconnects_to_collect_acks_when_the_link_drops() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        transmitted(&mut client, 30);
        client.close(40, 1000, "bye");
        client.on_close(50, 1006, "", false);
        assert_eq!(client.poll_action(), Some(Action::Connect), "reconnects at once, no backoff");
        assert_eq!(client.send(55, Payload::from("late")), Err(SendError::Closed));
        client.on_open(60, true);
        assert_eq!(transmitted(&mut client, 60), [frame(Frame::Hello { resume: Some((TOKEN, 0)) })]);
        let welcome = frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 1 });
        client.on_message(70, PayloadRef::Binary(&welcome));
        assert_eq!(transmitted(&mut client, 70), [frame(Frame::Goodbye)]);
        assert_eq!(client.poll_action(), Some(Action::Close { code: 1000, reason: "bye".into() }));
        let evs = events(&mut client);
        assert!(evs.iter().all(|e| !matches!(e, Event::SessionLost { .. })), "{evs:?}");
        assert!(matches!(evs.last(), Some(Event::Closed { code: 1000, will_reconnect: false, .. })));
    }

    #[test]
    fn close_gives_up_reconnecting_at_the_close_timeout() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        transmitted(&mut client, 30);
        client.close(40, 1000, "bye");
        client.on_close(50, 1006, "", false);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        assert_eq!(client.poll_timeout(), Some(2_040));
        client.handle_timeout(2_040);
        assert!(matches!(client.poll_action(), Some(Action::Close { code: 1000, .. })));
        let evs = events(&mut client);
        assert_eq!(
            evs[0],
            Event::SessionLost { reason: LostReason::Closed, unconfirmed: vec![(1, Payload::from("a"))] }
        );
        assert_eq!(client.state(), ClientState::Closed);
    }

    #[test]
    fn connect_timeout_closes_and_retries() {
        let mut client = Client::new(config(), 1, 0, true);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        assert_eq!(client.poll_timeout(), Some(10_000));
        client.handle_timeout(10_000);
        assert_eq!(client.poll_action(), Some(Action::Close { code: 4008, reason: "connect timeout".into() }));
        let evs = events(&mut client);
        assert_eq!(evs[0], Event::Error(ConnectionError::ConnectTimeout));
        assert!(matches!(evs[1], Event::Closed { code: 4008, will_reconnect: true, .. }));
        assert_eq!(client.state(), ClientState::Reconnecting { at: 10_100 });
    }

    #[test]
    fn attempt_limit_gives_up_and_reconnect_now_restarts() {
        let mut c = config();
        c.backoff.max_attempts = Some(1);
        let mut client = Client::new(c, 1, 0, true);
        client.poll_action();
        client.on_close(5, 1006, "", false);
        client.handle_timeout(105);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        client.on_close(110, 1006, "", false);
        assert_eq!(client.state(), ClientState::Closed);
        assert!(matches!(events(&mut client).last(), Some(Event::Closed { will_reconnect: false, .. })));
        client.reconnect_now(200);
        assert_eq!(client.poll_action(), Some(Action::Connect));
    }

    #[test]
    fn offline_waits_and_online_connects_at_once() {
        let mut client = Client::new(config(), 1, 0, false);
        assert_eq!((client.poll_action(), client.state()), (None, ClientState::Offline));
        client.set_online(50, true);
        assert_eq!(client.poll_action(), Some(Action::Connect));
        client.on_close(60, 1006, "", false);
        client.set_online(70, false);
        assert_eq!(client.state(), ClientState::Offline);
        assert_eq!(client.poll_timeout(), None, "no attempt while offline");
        client.set_online(80, true);
        assert_eq!(client.poll_action(), Some(Action::Connect));
    }

    #[test]
    fn a_stable_connection_resets_the_backoff() {
        let mut client = open_client(config());
        client.on_close(30, 1006, "", false);
        client.handle_timeout(130);
        client.poll_action();
        client.on_open(140, true);
        transmitted(&mut client, 140);
        let welcome = frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 0 });
        client.on_message(150, PayloadRef::Binary(&welcome));
        assert!(events(&mut client).contains(&Event::Resumed { replayed: 0 }));
        client.handle_timeout(150 + 5_000);
        client.on_close(6_000, 1006, "", false);
        assert!(events(&mut client).contains(&Event::Reconnecting { attempt: 1, delay_ms: 100 }));
    }

    #[test]
    fn plain_mode_sends_raw_messages_and_loses_a_durable_session_explicitly() {
        let mut client = open_client(config());
        client.send(30, Payload::from("a")).unwrap();
        client.on_close(40, 1006, "", false);
        client.handle_timeout(140);
        client.poll_action();
        events(&mut client);
        client.on_open(150, false);
        assert_eq!(
            events(&mut client),
            [
                Event::SessionLost { reason: LostReason::NotDurable, unconfirmed: vec![(1, Payload::from("a"))] },
                Event::Open { durable: false }
            ]
        );
        client.send(160, Payload::from("b")).unwrap();
        let mut buf = Vec::new();
        assert_eq!(client.poll_transmit(160, &mut buf), Some(MessageKind::Text));
        assert_eq!(buf, b"b");
        client.on_message(170, PayloadRef::Text("raw"));
        assert!(events(&mut client).contains(&Event::Message(Payload::from("raw"))));
        assert_eq!(client.is_durable(), Some(false));
    }

    #[test]
    fn protocol_errors_close_with_4002_and_keep_the_session() {
        let mut client = open_client(config());
        client.on_message(30, PayloadRef::Binary(&[0x42]));
        assert_eq!(client.poll_action(), Some(Action::Close { code: 4002, reason: "protocol error".into() }));
        assert!(matches!(events(&mut client)[0], Event::Error(ConnectionError::Protocol(_))));
        client.handle_timeout(130);
        client.poll_action();
        client.on_open(140, true);
        assert_eq!(transmitted(&mut client, 140), [frame(Frame::Hello { resume: Some((TOKEN, 0)) })]);
    }

    #[test]
    fn the_heartbeat_declares_a_silent_link_dead() {
        let mut client = open_client(config());
        assert_eq!(client.poll_timeout(), Some(20 + 5_000), "stable-after first");
        client.handle_timeout(5_020);
        assert_eq!(client.poll_timeout(), Some(20 + 15_000));
        client.handle_timeout(15_020);
        assert!(matches!(&transmitted(&mut client, 15_020)[..], [ping] if ping[0] == 0x06));
        assert_eq!(client.poll_timeout(), Some(25_020));
        client.handle_timeout(25_020);
        assert_eq!(client.poll_action(), Some(Action::Close { code: 4000, reason: "heartbeat timeout".into() }));
        assert_eq!(events(&mut client)[0], Event::Error(ConnectionError::HeartbeatTimeout));
    }
}
