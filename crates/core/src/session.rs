//! One logical session across connections, in the client or the server role.

use crate::config::SessionConfig;
use crate::error::{ProtocolError, ResumeError, SendError};
use crate::event::Event;
use crate::frame::{Token, WelcomeStatus};
use crate::payload::{MessageKind, Payload, PayloadRef};
use crate::Millis;

/// Which end of the session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends `Hello`, receives `Welcome`.
    Client,
    /// Receives `Hello` (decoded by its driver), sends `Welcome`.
    Server,
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Application messages accepted by `send`.
    pub sent: u64,
    /// Of those, confirmed by the peer.
    pub acked: u64,
    /// Held in the replay buffer (sent or queued, not yet confirmed).
    pub pending: u64,
    /// Messages re-sent after resumes.
    pub replayed: u64,
    /// Messages delivered to the application.
    pub received: u64,
    /// Duplicates received and dropped.
    pub duplicates_dropped: u64,
    /// Round-trip time of the last answered ping.
    pub last_rtt_ms: Option<Millis>,
}

/// One session: replay buffer, receive state, acknowledgements, heartbeat.
///
/// Outbound data frames are never queued separately: `poll_transmit` writes control frames first,
/// then the replay buffer from the first message not yet sent on the current connection.
pub struct Session {
    _todo: (),
}

impl Session {
    /// A client session with no server session yet. Call [`connect`](Self::connect) when a
    /// durable connection opens, or [`connect_plain`](Self::connect_plain) for plain mode.
    pub fn client(config: SessionConfig) -> Self {
        let _ = config;
        todo!()
    }

    /// A server session created for a `Hello` that asked for no session, or for one that could
    /// not be resumed (`status` says why). The connection is attached and a `Welcome` queued.
    pub fn server(config: SessionConfig, token: Token, status: WelcomeStatus, now: Millis) -> Self {
        let _ = (config, token, status, now);
        todo!()
    }

    /// Server: attaches a new connection to this existing session for a client whose `Hello`
    /// says it has delivered everything up to `last_received`. Queues `Welcome(Resumed)` and
    /// replays every unacknowledged message after it. On error nothing changes (the driver then
    /// creates a new session with `WelcomeStatus::LostRefused`).
    pub fn resume(&mut self, now: Millis, last_received: u64) -> Result<(), ResumeError> {
        let _ = (now, last_received);
        todo!()
    }

    /// Client: a durable connection opened; queues `Hello` (resuming if a session exists).
    pub fn connect(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Client: a connection opened without the durable subprotocol. No handshake, no acks, no
    /// heartbeat: queued messages go out as raw WebSocket messages in order and count as
    /// confirmed once transmitted. If a durable session existed it is lost (`SessionLost`,
    /// `LostReason::NotDurable`).
    pub fn connect_plain(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// The connection is gone. Frames not yet transmitted are dropped (they are re-created from
    /// the replay buffer on the next connection); the session itself stays.
    pub fn disconnect(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// A binary WebSocket message arrived on a durable connection (`frame`), or in plain mode
    /// any message (`Payload` delivered as is). Errors leave the session resumable; the driver
    /// closes the connection with `err.close_code()`.
    pub fn handle_message(&mut self, now: Millis, message: PayloadRef<'_>) -> Result<(), ProtocolError> {
        let _ = (now, message);
        todo!()
    }

    /// Queues an application message; returns its sequence number. While disconnected it waits
    /// in the replay buffer and goes out after the next handshake.
    pub fn send(&mut self, now: Millis, payload: Payload) -> Result<u64, SendError> {
        let _ = (now, payload);
        todo!()
    }

    /// Whether `send` would accept a payload of `len` bytes now (for backpressure).
    pub fn has_room(&self, len: usize) -> bool {
        let _ = len;
        todo!()
    }

    /// Queues a `Goodbye`: the session ends for good once it is transmitted.
    pub fn goodbye(&mut self) {
        todo!()
    }

    /// Sends a ping now (e.g. when a hidden page becomes visible), restarting the heartbeat.
    pub fn ping(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Writes the next frame to send on the current connection into `buf` (cleared first) and
    /// returns how to send it; `None` when there is nothing (or no connection).
    pub fn poll_transmit(&mut self, now: Millis, buf: &mut Vec<u8>) -> Option<MessageKind> {
        let _ = (now, buf);
        todo!()
    }

    /// The next event for the application or driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called (ack delay, ping, pong
    /// timeout), if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    /// Time has reached a deadline: flushes a delayed ack, sends a ping, or declares the link
    /// dead (`Event::Dead`; the driver closes the connection).
    pub fn handle_timeout(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Removes and returns every unconfirmed message in order (when the driver gives the session
    /// up); numbering starts again with a new session.
    pub fn take_unconfirmed(&mut self) -> Vec<(u64, Payload)> {
        todo!()
    }

    /// The session token, once known.
    pub fn token(&self) -> Option<Token> {
        todo!()
    }

    /// Whether the handshake on the current connection is complete (or plain mode is open).
    pub fn is_established(&self) -> bool {
        todo!()
    }

    /// Whether a `Goodbye` was sent or received: the session is over.
    pub fn is_ended(&self) -> bool {
        todo!()
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        todo!()
    }
}
