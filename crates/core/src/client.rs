//! The client-role supervisor: a [`Session`] plus the connection lifecycle, connect timeout,
//! reconnect policy, close-code policy and online/offline awareness. A browser driver only opens
//! and closes sockets when told, and feeds back what the socket did.

use crate::backoff::{Backoff, BackoffConfig, SplitMix64};
use crate::close::ClosePolicy;
use crate::config::SessionConfig;
use crate::error::SendError;
use crate::event::Event;
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

/// The client state machine. Feed it socket happenings and time; drain `poll_action`,
/// `poll_transmit` and `poll_event` after each call; wake at `poll_timeout`.
pub struct Client {
    _todo: (Session, Backoff, SplitMix64),
}

impl Client {
    /// A client that wants to connect at once (`poll_action` yields `Connect`). `seed` feeds
    /// the jitter; `online` is the browser's current state.
    pub fn new(config: ClientConfig, seed: u64, now: Millis, online: bool) -> Self {
        let _ = (config, seed, now, online);
        todo!()
    }

    /// The socket opened; `durable` says whether the server selected `durable.v1`.
    pub fn on_open(&mut self, now: Millis, durable: bool) {
        let _ = (now, durable);
        todo!()
    }

    /// The socket delivered a message.
    pub fn on_message(&mut self, now: Millis, message: PayloadRef<'_>) {
        let _ = (now, message);
        todo!()
    }

    /// The socket closed (after an error too). Schedules a reconnect unless the close is
    /// terminal, the client was closed, or the attempt limit is reached.
    pub fn on_close(&mut self, now: Millis, code: u16, reason: &str, was_clean: bool) {
        let _ = (now, code, reason, was_clean);
        todo!()
    }

    /// Queues an application message (see [`Session::send`]); `Err(Closed)` once closed for good.
    pub fn send(&mut self, now: Millis, payload: Payload) -> Result<u64, SendError> {
        let _ = (now, payload);
        todo!()
    }

    /// Whether `send` would accept `len` bytes now.
    pub fn has_room(&self, len: usize) -> bool {
        let _ = len;
        todo!()
    }

    /// The user closes the socket for good: waits up to `close_timeout_ms` for outstanding
    /// acknowledgements, says goodbye, closes with `code`/`reason`; whatever stayed unconfirmed
    /// is reported with `SessionLost { reason: Closed }`. Never reconnects afterwards.
    pub fn close(&mut self, now: Millis, code: u16, reason: &str) {
        let _ = (now, code, reason);
        todo!()
    }

    /// The browser went offline or online. Offline: no attempts are made. Online: an attempt
    /// starts at once if one was pending.
    pub fn set_online(&mut self, now: Millis, online: bool) {
        let _ = (now, online);
        todo!()
    }

    /// The page became visible: ping now to find out quickly whether the link survived.
    pub fn on_visible(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Reconnect now, skipping the remaining delay; also restarts a client that gave up after
    /// the attempt limit (not one the user closed).
    pub fn reconnect_now(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// The next socket action.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }

    /// The next message to send on the open socket (see [`Session::poll_transmit`]).
    pub fn poll_transmit(&mut self, now: Millis, buf: &mut Vec<u8>) -> Option<MessageKind> {
        let _ = (now, buf);
        todo!()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    /// Time has reached a deadline.
    pub fn handle_timeout(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        todo!()
    }

    /// Whether the current (or last) connection is durable; `None` before the first open.
    pub fn is_durable(&self) -> Option<bool> {
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        todo!()
    }
}
