//! The client-role supervisor: a [`Session`] plus the connection lifecycle, connect timeout,
//! reconnect policy, close-code policy and online/offline awareness. A browser driver only opens
//! and closes sockets when told, and feeds back what the socket did.

use std::collections::VecDeque;

use crate::backoff::{Backoff, BackoffConfig, SplitMix64};
use crate::close::{close_code, ClosePolicy};
use crate::config::SessionConfig;
use crate::error::{ConnectionError, SendError};
use crate::event::{Event, LostReason};
use crate::payload::{MessageKind, Payload, PayloadRef};
use crate::session::{Session, SessionStats};
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            session: SessionConfig::default(),
            backoff: BackoffConfig::default(),
            connect_timeout_ms: 10_000,
            close_timeout_ms: 2_000,
            close_policy: ClosePolicy::default(),
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
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    reconnects: u64,
    sessions_lost: u64,
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
        let mut client = Client {
            session: Session::client(config.session.clone()),
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
            actions: VecDeque::new(),
            events: VecDeque::new(),
            reconnects: 0,
            sessions_lost: 0,
        };
        if online {
            client.start_attempt(now);
        }
        client
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

    /// Queues an application message (see [`Session::send`]); `Err(Closed)` once closed for good.
    pub fn send(&mut self, now: Millis, payload: Payload) -> Result<u64, SendError> {
        if matches!(self.state, ClientState::Closing | ClientState::Closed) {
            return Err(SendError::Closed);
        }
        self.session.send(now, payload)
    }

    /// Whether `send` would accept `len` bytes now.
    pub fn has_room(&self, len: usize) -> bool {
        !matches!(self.state, ClientState::Closing | ClientState::Closed) && self.session.has_room(len)
    }

    /// The user closes the socket for good: waits up to `close_timeout_ms` for outstanding
    /// acknowledgements, says goodbye, closes with `code`/`reason`; whatever stayed unconfirmed
    /// is reported with `SessionLost { reason: Closed }`. Never reconnects afterwards.
    pub fn close(&mut self, now: Millis, code: u16, reason: &str) {
        self.closed_by_user = true;
        match self.state {
            ClientState::Closed | ClientState::Closing => {}
            ClientState::Open if self.durable == Some(true) => {
                self.state = ClientState::Closing;
                self.closing = Some(Closing { code, reason: reason.to_owned(), deadline: now + self.config.close_timeout_ms });
                self.progress_closing(now);
            }
            ClientState::Open | ClientState::Connecting => {
                self.actions.push_back(Action::Close { code, reason: reason.to_owned() });
                self.session.disconnect(now);
                self.finish(code, reason, true);
            }
            ClientState::Reconnecting { .. } | ClientState::Offline => self.finish(code, reason, true),
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

    /// The next message to send on the open socket (see [`Session::poll_transmit`]).
    pub fn poll_transmit(&mut self, now: Millis, buf: &mut Vec<u8>) -> Option<MessageKind> {
        let kind = self.session.poll_transmit(now, buf);
        if kind.is_some() {
            self.absorb(now);
        } else if self.state == ClientState::Closing && self.session.is_ended() {
            let Closing { code, reason, .. } = self.closing.take().expect("closing state has its close");
            self.actions.push_back(Action::Close { code, reason: reason.clone() });
            self.session.disconnect(now);
            self.finish(code, &reason, true);
        }
        kind
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline, if any.
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

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the current (or last) connection is durable; `None` before the first open.
    pub fn is_durable(&self) -> Option<bool> {
        self.durable
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats { session: self.session.stats(), reconnects: self.reconnects, sessions_lost: self.sessions_lost }
    }

    fn start_attempt(&mut self, now: Millis) {
        self.state = ClientState::Connecting;
        self.connect_deadline = Some(now + self.config.connect_timeout_ms);
        self.actions.push_back(Action::Connect);
    }

    /// Moves the session's events into ours, acting on those that concern the connection.
    fn absorb(&mut self, now: Millis) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Dead => {
                    return self.fail(now, ConnectionError::HeartbeatTimeout, close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                }
                Event::Goodbye => {
                    // The server ended the session for good.
                    self.actions.push_back(Action::Close { code: close_code::NORMAL, reason: "goodbye".into() });
                    self.session.disconnect(now);
                    self.closing = None;
                    return self.finish(close_code::NORMAL, "goodbye", true);
                }
                Event::SessionLost { .. } => {
                    self.sessions_lost += 1;
                    self.events.push_back(event);
                }
                other => self.events.push_back(other),
            }
        }
        if self.state == ClientState::Connecting && self.session.is_established() {
            self.state = ClientState::Open;
            self.connect_deadline = None;
            self.stable_at = Some(now + self.config.backoff.stable_after_ms);
        }
        if self.state == ClientState::Closing {
            self.progress_closing(now);
        }
    }

    fn progress_closing(&mut self, now: Millis) {
        let Some(closing) = &self.closing else { return };
        if self.session.stats().pending == 0 || closing.deadline <= now {
            self.session.goodbye();
        }
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
        if let Some(Closing { code, reason, .. }) = self.closing.take() {
            return self.finish(code, &reason, was_clean);
        }
        if self.config.close_policy.is_terminal(code) {
            return self.finish(code, reason, was_clean);
        }
        let Some((attempt, delay_ms)) = self.backoff.next(&mut self.rng) else {
            return self.finish(code, reason, was_clean);
        };
        self.reconnects += 1;
        self.events.push_back(Event::Closed { code, reason: reason.to_owned(), was_clean, will_reconnect: true });
        self.events.push_back(Event::Reconnecting { attempt, delay_ms });
        self.state = if self.online { ClientState::Reconnecting { at: now + delay_ms } } else { ClientState::Offline };
    }

    /// Closed for good: report what stayed unconfirmed, then the close.
    fn finish(&mut self, code: u16, reason: &str, was_clean: bool) {
        self.state = ClientState::Closed;
        self.closing = None;
        self.connect_deadline = None;
        self.stable_at = None;
        let unconfirmed = self.session.take_unconfirmed();
        if !unconfirmed.is_empty() {
            self.sessions_lost += 1;
            self.events.push_back(Event::SessionLost { reason: LostReason::Closed, unconfirmed });
        }
        self.events.push_back(Event::Closed { code, reason: reason.to_owned(), was_clean, will_reconnect: false });
    }
}
