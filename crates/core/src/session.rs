//! One logical session across connections, in the client or the server role.

use std::collections::VecDeque;

use crate::buffer::ReplayBuffer;
use crate::config::SessionConfig;
use crate::error::{ProtocolError, ResumeError, SendError};
use crate::event::LostReason;
use crate::frame::{Frame, FrameType, Token, WelcomeStatus};
use crate::inbound::{Inbound, Receipt};
use crate::payload::{MessageKind, Payload, PayloadRef};
use crate::Millis;

/// Longest header a data frame can have (type byte and a 10-byte varint).
const MAX_DATA_HEADER: usize = 11;

/// Which end of the session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
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

/// One session: replay buffer, receive state, acknowledgements, heartbeat. Internal: drivers use
/// it through the client-role [`Client`](crate::Client) or the server-role
/// [`Endpoint`](crate::server::Endpoint).
///
/// Outbound data frames are never queued separately: `poll_transmit` writes control frames first,
/// then the replay buffer from the first message not yet sent on the current connection.
pub(crate) struct Session {
    role: Role,
    config: SessionConfig,
    token: Option<Token>,
    link: Link,
    out: ReplayBuffer,
    /// Own messages go on the wire numbered from `wire_base + 1` (§5.2: a session numbers from 1),
    /// while `send` and `Acked` keep the numbers the outbox gave: a client whose plain connections
    /// already used some starts its next durable session with a base.
    wire_base: u64,
    /// Next sequence number to transmit on the current connection.
    next_send: u64,
    /// Highest sequence number ever transmitted in this session.
    highest_sent: u64,
    /// Highest sequence number that may be transmitted (the driver stored it somewhere safe first).
    send_limit: u64,
    /// Client with a persisted session: a new session transmits and acknowledges nothing until
    /// the driver stored it (the limits start at 0 instead of `u64::MAX`).
    persisted: bool,
    /// Client: restored from storage and not yet resumed; own messages after this one were queued
    /// since and never sent. Its storage may lag behind what the server got (a browser killed
    /// before its last writes were durable): a resume point beyond what it holds then confirms all
    /// of it, and the numbering goes on after the server's.
    unsent_after: Option<u64>,
    inbound: Inbound,
    control: VecDeque<Control>,
    next_ping: Option<Millis>,
    dead_at: Option<Millis>,
    goodbye: Goodbye,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
}

/// What a session tells the role that drives it ([`Client`](crate::Client) or
/// [`Endpoint`](crate::server::Endpoint)), which turns it into its own role's events.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SessionEvent {
    Open {
        durable: bool,
    },
    Resumed {
        replayed: u64,
        /// The session was restored from storage: this is its first resume.
        restored: bool,
    },
    Message(Payload),
    Acked {
        seq: u64,
    },
    SessionLost {
        reason: LostReason,
        unconfirmed: Vec<(u64, Payload)>,
    },
    /// The peer said goodbye.
    Goodbye,
    /// The heartbeat found the link silent.
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Down,
    /// Client: `Hello` queued or sent, waiting for `Welcome`.
    Handshaking,
    Durable,
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Goodbye {
    None,
    Queued,
    Sent,
    Received,
}

#[derive(Clone, Copy, Debug)]
enum Control {
    Hello(Option<(Token, u64)>),
    Welcome(WelcomeStatus, Token, u64),
    Ping(u64),
    Pong(u64),
}

impl Session {
    fn new(role: Role, config: SessionConfig) -> Self {
        Session {
            role,
            out: ReplayBuffer::new(config.limits),
            inbound: Inbound::new(config.ack_delay_ms, config.ack_every),
            config,
            token: None,
            link: Link::Down,
            wire_base: 0,
            next_send: 1,
            highest_sent: 0,
            send_limit: u64::MAX,
            persisted: false,
            unsent_after: None,
            control: VecDeque::new(),
            next_ping: None,
            dead_at: None,
            goodbye: Goodbye::None,
            events: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    /// A client session with no server session yet. Call [`connect`](Self::connect) when a
    /// durable connection opens, or [`connect_plain`](Self::connect_plain) for plain mode.
    pub fn client(config: SessionConfig) -> Self {
        Session::new(Role::Client, config)
    }

    /// A server session created for a `Hello` that asked for no session, or for one that could
    /// not be resumed (`status` says why). The connection is attached and a `Welcome` queued.
    pub fn server(config: SessionConfig, token: Token, status: WelcomeStatus, now: Millis) -> Self {
        let mut session = Session::new(Role::Server, config);
        session.token = Some(token);
        session.control.push_back(Control::Welcome(status, token, 0));
        session.establish(now);
        session
    }

    /// A server session restored from storage, without a connection: the client has confirmed
    /// every message up to `acked`, `unconfirmed` are the next ones (any of them may have been
    /// transmitted), and every client message up to `delivered` was delivered. Resume it with
    /// [`resume`](Self::resume). `None` if these numbers leave no room to go on (`u64::MAX`).
    pub fn restored(
        config: SessionConfig,
        token: Token,
        acked: u64,
        unconfirmed: Vec<std::sync::Arc<Payload>>,
        delivered: u64,
    ) -> Option<Self> {
        // Numbers that could not go on (corrupt storage): the session cannot be continued.
        let last = acked.checked_add(unconfirmed.len() as u64)?;
        if last > crate::buffer::MAX_SEQ {
            return None;
        }
        let mut session = Session::new(Role::Server, config);
        session.token = Some(token);
        session.out = ReplayBuffer::starting_at(session.config.limits, acked + 1);
        for payload in unconfirmed {
            session.out.push_unbounded(payload);
        }
        session.highest_sent = session.out.last_seq();
        session.next_send = session.highest_sent + 1;
        session.inbound.restore(delivered);
        Some(session)
    }

    /// A client session that is persisted: nothing is transmitted or acknowledged before
    /// [`set_stored`](Self::set_stored) says it is stored.
    pub fn persisted_client(config: SessionConfig) -> Self {
        let mut session = Session::new(Role::Client, config);
        session.persisted = true;
        session.gate();
        session
    }

    /// A persisted client session read back from storage, where all of it is stored: `unconfirmed`
    /// are the own messages after `position.acked` (any may have been transmitted).
    pub(crate) fn restored_client(config: SessionConfig, restored: crate::persist::Restored) -> Self {
        let crate::persist::Restored { position, unconfirmed } = restored;
        let mut session = Session::persisted_client(config);
        session.token = position.token;
        session.wire_base = position.wire_base;
        session.out = ReplayBuffer::starting_at(session.config.limits, position.acked + 1);
        for payload in unconfirmed {
            session.out.push_unbounded(payload);
        }
        // Any stored message may have been transmitted (a browser killed before its position was
        // durable), but those queued by a restored page that never resumed were not.
        let last = session.out.last_seq();
        let sent = position.unsent_after.map_or(last, |unsent| unsent.clamp(position.acked, last));
        session.highest_sent = if session.token.is_some() { sent } else { position.acked };
        session.next_send = session.out.first_seq();
        session.send_limit = session.highest_sent;
        session.unsent_after = session.token.is_some().then_some(session.highest_sent);
        session.inbound.restore(position.delivered);
        session.inbound.set_limit(0, position.delivered);
        session
    }

    /// Client with a persisted session: own messages up to `last_queued` may be transmitted.
    pub fn allow_send(&mut self, last_queued: u64) {
        self.send_limit = self.send_limit.max(last_queued);
    }

    /// Client with a persisted session: deliveries up to `delivered` are durably recorded and may
    /// be acknowledged.
    pub fn allow_ack(&mut self, now: Millis, delivered: u64) {
        self.inbound.set_limit(now, self.inbound.limit().max(delivered));
    }

    /// Client: the session is no longer persisted (storage failed): nothing waits for it any more.
    pub fn unpersist(&mut self, now: Millis) {
        self.persisted = false;
        self.send_limit = u64::MAX;
        self.inbound.set_limit(now, u64::MAX);
    }

    /// Where the session stands, as a persisted session stores it.
    pub fn position(&self) -> crate::persist::Position {
        crate::persist::Position {
            token: self.token,
            wire_base: self.wire_base,
            acked: self.acked(),
            delivered: self.inbound.delivered(),
            unsent_after: self.unsent_after,
        }
    }

    /// Restored from storage and not resumed yet: nothing beyond what storage held may go out (the
    /// server's resume point decides how own numbers go on).
    pub fn awaiting_resume(&self) -> bool {
        self.unsent_after.is_some()
    }

    /// A persisted session's own messages wait until [`allow_send`](Self::allow_send).
    pub fn hold_sends(&mut self) {
        self.send_limit = 0;
    }

    /// A persisted session's new numbering (or new token): nothing is stored yet.
    pub fn gate(&mut self) {
        self.send_limit = 0;
        self.inbound.set_limit(0, 0);
    }

    /// Server: attaches a new connection to this existing session for a client whose `Hello`
    /// says it has delivered everything up to `last_received`. Queues `Welcome(Resumed)` and
    /// replays every unacknowledged message after it. On error nothing changes (the driver then
    /// creates a new session with `WelcomeStatus::LostRefused`).
    pub fn resume(&mut self, now: Millis, last_received: u64) -> Result<(), ResumeError> {
        if self.is_ended() {
            return Err(ResumeError::Ended);
        }
        let Some(local) = self.sent_from_wire(last_received) else {
            return Err(ResumeError::FromFuture { claimed: last_received, last_sent: self.wire(self.highest_sent) });
        };
        let acked = self.out.first_seq() - 1;
        if local < acked {
            return Err(ResumeError::BehindAck { claimed: last_received, acked: self.wire(acked) });
        }
        self.detach();
        self.confirm(local);
        self.rewind(local);
        let token = self.token.expect("a server session always has a token");
        self.control.push_back(Control::Welcome(WelcomeStatus::Resumed, token, self.inbound.confirmed()));
        self.establish(now);
        Ok(())
    }

    /// Client: a durable connection opened; queues `Hello` (resuming if a session exists).
    pub fn connect(&mut self, now: Millis) {
        let _ = now;
        self.detach();
        // Claims only what the peer may be told: a persisted session's next page knows no more.
        self.control.push_back(Control::Hello(self.token.map(|t| (t, self.inbound.confirmed()))));
        self.link = Link::Handshaking;
    }

    /// Client: a connection opened without the durable subprotocol. No handshake, no acks, no
    /// heartbeat: queued messages go out as raw WebSocket messages in order and count as
    /// confirmed once transmitted. If a durable session existed it is lost (`SessionLost`,
    /// `LostReason::NotDurable`).
    pub fn connect_plain(&mut self, now: Millis) {
        let _ = now;
        self.detach();
        if self.token.is_some() {
            self.lose(LostReason::NotDurable);
        }
        self.next_send = self.out.first_seq();
        self.link = Link::Plain;
        self.events.push_back(SessionEvent::Open { durable: false });
    }

    /// The connection is gone. Frames not yet transmitted are dropped (they are re-created from
    /// the replay buffer on the next connection); the session itself stays.
    pub fn disconnect(&mut self, now: Millis) {
        let _ = now;
        self.detach();
    }

    /// A binary WebSocket message arrived on a durable connection (`frame`), or in plain mode
    /// any message (`Payload` delivered as is). Errors leave the session resumable, but for a
    /// `Welcome(Resumed)` the client cannot accept (§5.5); the driver closes the connection with
    /// `err.close_code()`.
    pub fn handle_message(&mut self, now: Millis, message: PayloadRef<'_>) -> Result<(), ProtocolError> {
        match self.link {
            Link::Down => return Ok(()),
            Link::Plain => {
                self.stats.received += 1;
                self.events.push_back(SessionEvent::Message(message.to_owned()));
                return Ok(());
            }
            Link::Handshaking | Link::Durable => {}
        }
        let PayloadRef::Binary(bytes) = message else {
            return Err(ProtocolError::TextInDurableMode);
        };
        let max = self.config.max_message_bytes + MAX_DATA_HEADER;
        if bytes.len() > max {
            return Err(ProtocolError::TooLarge { len: bytes.len(), max });
        }
        let frame = Frame::decode(bytes)?;
        self.dead_at = None;
        match (frame, self.link) {
            (Frame::Welcome { status, token, last_received }, Link::Handshaking) if self.role == Role::Client => {
                self.welcome(now, status, token, last_received)
            }
            (Frame::Data { seq, payload }, Link::Durable) => {
                let len = payload.as_bytes().len();
                if len > self.config.max_message_bytes {
                    return Err(ProtocolError::TooLarge { len, max: self.config.max_message_bytes });
                }
                match self.inbound.receive(now, seq)? {
                    Receipt::Deliver => {
                        self.stats.received += 1;
                        self.events.push_back(SessionEvent::Message(payload.to_owned()));
                    }
                    Receipt::Duplicate => self.stats.duplicates_dropped += 1,
                }
                Ok(())
            }
            (Frame::Ack { seq }, Link::Durable) => {
                let Some(local) = self.sent_from_wire(seq) else {
                    return Err(ProtocolError::AckFromFuture { acked: seq, last_sent: self.wire(self.highest_sent) });
                };
                self.confirm(local);
                Ok(())
            }
            (Frame::Ping { value }, Link::Durable) => {
                // Only the latest ping needs an answer: a peer cannot grow the queue.
                self.control.retain(|c| !matches!(c, Control::Pong(_)));
                self.control.push_back(Control::Pong(value));
                Ok(())
            }
            (Frame::Pong { value }, Link::Durable) => {
                if value <= now {
                    self.stats.last_rtt_ms = Some(now - value);
                }
                Ok(())
            }
            (Frame::Goodbye, Link::Durable) => {
                self.goodbye = Goodbye::Received;
                self.events.push_back(SessionEvent::Goodbye);
                Ok(())
            }
            (frame, _) => Err(ProtocolError::Unexpected(frame.frame_type())),
        }
    }

    /// Queues an application message; returns its sequence number. While disconnected it waits
    /// in the replay buffer and goes out after the next handshake.
    pub fn send(&mut self, now: Millis, payload: Payload) -> Result<u64, SendError> {
        self.send_shared(now, std::sync::Arc::new(payload))
    }

    /// Like [`send`](Self::send), for a payload shared with other sessions (a broadcast).
    pub fn send_shared(&mut self, now: Millis, payload: std::sync::Arc<Payload>) -> Result<u64, SendError> {
        let _ = now;
        if self.is_ended() {
            return Err(SendError::Closed);
        }
        if payload.len() > self.config.max_message_bytes {
            return Err(SendError::TooLarge { len: payload.len(), max: self.config.max_message_bytes });
        }
        if !self.wire_room() {
            return Err(SendError::BufferFull { messages: self.out.len(), bytes: self.out.bytes() });
        }
        let seq = self.out.push_shared(payload)?;
        self.stats.sent += 1;
        Ok(seq)
    }

    /// Payload bytes held in the replay buffer.
    pub fn buffered_bytes(&self) -> usize {
        self.out.bytes()
    }

    /// Whether `send` would accept a payload of `len` bytes now (for backpressure).
    pub fn has_room(&self, len: usize) -> bool {
        len <= self.config.max_message_bytes && self.out.has_room(len) && self.wire_room()
    }

    /// Whether the next own message still has a wire number (a rebased session's wire numbers run
    /// ahead of its own).
    fn wire_room(&self) -> bool {
        self.wire(self.out.last_seq()) < crate::buffer::MAX_SEQ
    }

    /// Queues a `Goodbye`: the session ends for good once it is transmitted.
    pub fn goodbye(&mut self) {
        if self.goodbye == Goodbye::None {
            self.goodbye = Goodbye::Queued;
        }
    }

    /// Sends a ping now (e.g. when a hidden page becomes visible), restarting the heartbeat.
    pub fn ping(&mut self, now: Millis) {
        if self.link != Link::Durable {
            return;
        }
        self.control.push_back(Control::Ping(now));
        if let Some(heartbeat) = self.config.heartbeat {
            self.next_ping = Some(heartbeat.next_ping(now));
            self.dead_at.get_or_insert(now.saturating_add(heartbeat.timeout_ms));
        }
    }

    /// Writes the next frame to send on the current connection into `buf` (cleared first) and
    /// returns how to send it; `None` when there is nothing (or no connection).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Millis, buf: &mut Vec<u8>) -> Option<MessageKind> {
        buf.clear();
        match self.link {
            Link::Down => None,
            Link::Plain => self.transmit_plain(buf),
            Link::Handshaking | Link::Durable => {
                if let Some(control) = self.control.pop_front() {
                    control.frame().encode(buf);
                    return Some(MessageKind::Binary);
                }
                if self.link == Link::Handshaking {
                    return None;
                }
                if let Some(seq) = self.inbound.take_ack(now) {
                    Frame::Ack { seq }.encode(buf);
                    return Some(MessageKind::Binary);
                }
                if let Some(payload) = self.out.get(self.next_send).filter(|_| self.next_send <= self.send_limit) {
                    Frame::Data { seq: self.wire(self.next_send), payload: payload.as_ref() }.encode(buf);
                    self.highest_sent = self.highest_sent.max(self.next_send);
                    self.next_send += 1;
                    return Some(MessageKind::Binary);
                }
                if self.goodbye == Goodbye::Queued {
                    self.goodbye = Goodbye::Sent;
                    Frame::Goodbye.encode(buf);
                    return Some(MessageKind::Binary);
                }
                None
            }
        }
    }

    fn transmit_plain(&mut self, buf: &mut Vec<u8>) -> Option<MessageKind> {
        let seq = self.next_send;
        let payload = self.out.get(seq)?;
        buf.extend_from_slice(payload.as_bytes());
        let kind = match payload {
            Payload::Text(_) => MessageKind::Text,
            Payload::Binary(_) => MessageKind::Binary,
        };
        self.next_send += 1;
        self.highest_sent = seq;
        // Plain mode has no acknowledgements: handing the message to the socket is all there is.
        self.confirm(seq);
        Some(kind)
    }

    /// Server with external storage: acknowledges no client message beyond `limit` (the highest
    /// one stored) until it is raised; `u64::MAX` (the default) lifts the limit.
    pub fn set_ack_limit(&mut self, now: Millis, limit: u64) {
        self.inbound.set_limit(now, limit);
    }

    /// Server with external storage: forgets client messages delivered after `to` (they could
    /// not be stored, so they were not acknowledged); the client sends them again.
    pub fn rewind_inbound(&mut self, to: u64) {
        self.inbound.rewind(to);
    }

    /// Server with external storage: transmits no message beyond `limit` (the highest one
    /// stored) until it is raised; `u64::MAX` (the default) lifts the limit.
    pub fn set_send_limit(&mut self, limit: u64) {
        self.send_limit = limit;
    }

    /// Highest client message sequence number delivered.
    pub fn delivered(&self) -> u64 {
        self.inbound.delivered()
    }

    /// Highest own message sequence number the peer confirmed.
    pub fn acked(&self) -> u64 {
        self.out.first_seq() - 1
    }

    /// Sequence number of the newest message queued (0 before the first).
    pub fn last_queued(&self) -> u64 {
        self.out.last_seq()
    }

    /// Sequence number of the newest message ever transmitted (0 before the first).
    pub fn highest_sent(&self) -> u64 {
        self.highest_sent
    }

    /// The payload of own unconfirmed message `seq`.
    pub fn queued(&self, seq: u64) -> Option<&std::sync::Arc<Payload>> {
        self.out.get_shared(seq)
    }

    /// Puts delivered messages back at the front of the event queue, in their order (a driver
    /// that took them could not hand them over).
    pub(crate) fn unpoll_messages(&mut self, messages: Vec<Payload>) {
        for payload in messages.into_iter().rev() {
            self.events.push_front(SessionEvent::Message(payload));
        }
    }

    /// The next event for the application or driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called (ack delay, ping, pong
    /// timeout), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.link != Link::Durable {
            return None;
        }
        [self.inbound.deadline(), self.next_ping, self.dead_at].into_iter().flatten().min()
    }

    /// Time has reached a deadline: flushes a delayed ack, sends a ping, or declares the link
    /// dead (`SessionEvent::Dead`; the driver closes the connection).
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.link != Link::Durable {
            return;
        }
        if self.dead_at.is_some_and(|at| at <= now) {
            self.dead_at = None;
            self.next_ping = None;
            self.events.push_back(SessionEvent::Dead);
            return;
        }
        if self.next_ping.is_some_and(|at| at <= now) {
            self.ping(now);
        }
    }

    /// Removes and returns every unconfirmed message in order (when the driver gives the session
    /// up), and forgets the session: the next connection starts a new one, numbered from 1.
    pub fn take_unconfirmed(&mut self) -> Vec<(u64, Payload)> {
        let unconfirmed = self.out.drain();
        self.reset();
        unconfirmed
    }

    /// The session token, once known.
    pub fn token(&self) -> Option<Token> {
        self.token
    }

    /// Whether the handshake on the current connection is complete (or plain mode is open).
    pub fn is_established(&self) -> bool {
        matches!(self.link, Link::Durable | Link::Plain)
    }

    /// Whether a `Goodbye` was sent or received: the session is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.goodbye, Goodbye::Sent | Goodbye::Received)
    }

    /// Whether the peer said goodbye (rather than this side).
    pub fn peer_said_goodbye(&self) -> bool {
        self.goodbye == Goodbye::Received
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats { pending: self.out.len() as u64, ..self.stats }
    }

    fn welcome(
        &mut self,
        now: Millis,
        status: WelcomeStatus,
        token: Token,
        last_received: u64,
    ) -> Result<(), ProtocolError> {
        let asked = self.token;
        if status == WelcomeStatus::Resumed {
            let accepted = self.accept_resume(asked, token, last_received);
            if accepted.is_err() && asked.is_some() {
                // The server would answer the same way again: the session cannot go on (§5.5).
                self.lose(LostReason::Refused);
            }
            let last_received = accepted?;
            let replayed = self.rewind(last_received);
            self.establish(now);
            let restored = self.unsent_after.take().is_some();
            self.events.push_back(SessionEvent::Resumed { replayed, restored });
            return Ok(());
        }
        self.unsent_after = None;
        if asked.is_some() {
            self.lose(match status {
                WelcomeStatus::LostOverflow => LostReason::Overflow,
                WelcomeStatus::LostRefused => LostReason::Refused,
                _ => LostReason::Expired,
            });
        }
        self.token = Some(token);
        // A new session numbers from 1 (§5.2), also after plain connections used some numbers.
        self.wire_base = self.out.first_seq() - 1;
        self.highest_sent = self.wire_base;
        self.next_send = self.out.first_seq();
        self.establish(now);
        self.events.push_back(SessionEvent::Open { durable: true });
        Ok(())
    }

    /// Client: checks a `Welcome(Resumed)` (§5.5) and frees what it confirms; returns its
    /// `last_received` in own numbering.
    fn accept_resume(&mut self, asked: Option<Token>, token: Token, last_received: u64) -> Result<u64, ProtocolError> {
        if asked != Some(token) {
            return Err(ProtocolError::Unexpected(FrameType::Welcome));
        }
        let restored = self.unsent_after.is_some();
        let Some(local) = self.sent_from_wire(last_received) else {
            // Room on the wire for what is queued after it, too.
            let queued = self.out.last_seq() - self.highest_sent;
            let room = last_received.checked_add(queued).is_some_and(|last| last < crate::buffer::MAX_SEQ);
            if restored && last_received > self.wire(self.highest_sent) && room {
                // The server got everything storage kept and more: all of it is confirmed, and own
                // numbers go on after the server's (the wire base wraps below zero if need be).
                let last = self.highest_sent;
                self.confirm(last);
                self.wire_base = last.wrapping_sub(last_received);
                return Ok(last);
            }
            return Err(ProtocolError::ResumeFromFuture {
                claimed: last_received,
                last_sent: self.wire(self.highest_sent),
            });
        };
        let acked = self.out.first_seq() - 1;
        if local < acked {
            return Err(ProtocolError::ResumeBehindAck { claimed: last_received, acked: self.wire(acked) });
        }
        self.confirm(local);
        Ok(local)
    }

    /// An own sequence number as the wire carries it. (Wrapping: a persisted session rebased after
    /// the server got more than its storage kept has a base "below zero".)
    fn wire(&self, local: u64) -> u64 {
        local.wrapping_sub(self.wire_base)
    }

    /// The own message a number from the peer (an ACK, a resume point) names, if it was transmitted:
    /// both the number and the message are at most the highest transmitted.
    fn sent_from_wire(&self, seq: u64) -> Option<u64> {
        let local = seq.wrapping_add(self.wire_base);
        (local <= self.highest_sent && seq <= self.wire(self.highest_sent)).then_some(local)
    }

    /// Frees what the peer confirmed, reporting it.
    fn confirm(&mut self, seq: u64) {
        let freed = self.out.ack(seq);
        // A peer may confirm what this connection has not re-sent yet (right after a resume).
        self.next_send = self.next_send.max(self.out.first_seq());
        if freed > 0 {
            self.stats.acked += freed as u64;
            self.events.push_back(SessionEvent::Acked { seq });
        }
    }

    /// Re-sends everything after `last_received` on the new connection; returns how many.
    fn rewind(&mut self, last_received: u64) -> u64 {
        self.next_send = last_received + 1;
        let replayed = self.highest_sent - last_received;
        self.stats.replayed += replayed;
        replayed
    }

    fn establish(&mut self, now: Millis) {
        self.link = Link::Durable;
        self.inbound.on_connect();
        self.dead_at = None;
        self.next_ping = self.config.heartbeat.map(|h| h.next_ping(now));
    }

    fn detach(&mut self) {
        self.link = Link::Down;
        self.control.clear();
        self.inbound.on_connect();
        self.next_ping = None;
        self.dead_at = None;
    }

    /// The session cannot go on: report every unconfirmed message and start afresh.
    fn lose(&mut self, reason: LostReason) {
        let unconfirmed = self.take_unconfirmed();
        self.events.push_back(SessionEvent::SessionLost { reason, unconfirmed });
    }

    fn reset(&mut self) {
        self.out = ReplayBuffer::new(self.config.limits);
        self.inbound.reset();
        self.token = None;
        self.wire_base = 0;
        self.unsent_after = None;
        self.next_send = 1;
        self.highest_sent = 0;
        self.send_limit = u64::MAX;
        if self.persisted {
            self.gate();
        }
        self.goodbye = Goodbye::None;
    }
}

impl std::fmt::Debug for Session {
    /// State and counters; never the token (a credential) nor payloads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("link", &self.link)
            .field("has_token", &self.token.is_some())
            .field("wire_base", &self.wire_base)
            .field("next_send", &self.next_send)
            .field("highest_sent", &self.highest_sent)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Control {
    fn frame(self) -> Frame<'static> {
        match self {
            Control::Hello(resume) => Frame::Hello { resume },
            Control::Welcome(status, token, last_received) => Frame::Welcome { status, token, last_received },
            Control::Ping(value) => Frame::Ping { value },
            Control::Pong(value) => Frame::Pong { value },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: Token = Token([5; 16]);

    fn frame(f: Frame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(&mut out);
        out
    }

    fn drain(session: &mut Session, now: Millis) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        std::iter::from_fn(|| session.poll_transmit(now, &mut buf).map(|_| buf.clone())).collect()
    }

    fn server_with_sent(n: u64) -> Session {
        let mut s = Session::server(SessionConfig::default(), TOKEN, WelcomeStatus::New, 0);
        for i in 0..n {
            s.send(0, Payload::from(i.to_string())).unwrap();
        }
        drain(&mut s, 0);
        s
    }

    #[test]
    fn server_resume_replays_exactly_what_the_client_lacks() {
        let mut s = server_with_sent(5);
        s.disconnect(10);
        s.resume(20, 3).unwrap();
        let sent = drain(&mut s, 20);
        assert_eq!(sent[0], frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 0 }));
        assert_eq!(
            sent[1..],
            [
                frame(Frame::Data { seq: 4, payload: PayloadRef::Text("3") }),
                frame(Frame::Data { seq: 5, payload: PayloadRef::Text("4") }),
            ]
        );
        assert_eq!(s.stats().replayed, 2);
        assert_eq!(s.stats().pending, 2);
    }

    #[test]
    fn impossible_resume_points_are_refused_without_changing_anything() {
        let mut s = server_with_sent(5);
        s.handle_message(1, PayloadRef::Binary(&frame(Frame::Ack { seq: 2 }))).unwrap();
        s.disconnect(10);
        assert_eq!(s.resume(20, 6), Err(ResumeError::FromFuture { claimed: 6, last_sent: 5 }));
        assert_eq!(s.resume(20, 1), Err(ResumeError::BehindAck { claimed: 1, acked: 2 }));
        assert!(!s.is_established());
        assert_eq!(s.stats().pending, 3);
    }

    #[test]
    fn bad_frames_are_typed_protocol_errors() {
        let mut s = server_with_sent(2);
        assert_eq!(s.handle_message(0, PayloadRef::Text("hi")), Err(ProtocolError::TextInDurableMode));
        assert_eq!(
            s.handle_message(0, PayloadRef::Binary(&frame(Frame::Ack { seq: 3 }))),
            Err(ProtocolError::AckFromFuture { acked: 3, last_sent: 2 })
        );
        assert_eq!(
            s.handle_message(0, PayloadRef::Binary(&frame(Frame::Hello { resume: None }))),
            Err(ProtocolError::Unexpected(FrameType::Hello))
        );
        assert_eq!(
            s.handle_message(0, PayloadRef::Binary(&[0x04, 0x02])),
            Err(ProtocolError::SequenceGap { expected: 1, got: 2 })
        );
        let big = vec![0u8; (1 << 20) + 12];
        assert!(matches!(s.handle_message(0, PayloadRef::Binary(&big)), Err(ProtocolError::TooLarge { .. })));
        let mut just_over = vec![0x04, 0x01];
        just_over.resize(2 + (1 << 20) + 1, 0);
        assert_eq!(
            s.handle_message(0, PayloadRef::Binary(&just_over)),
            Err(ProtocolError::TooLarge { len: (1 << 20) + 1, max: 1 << 20 })
        );
        assert_eq!(
            s.handle_message(0, PayloadRef::Binary(&[0x42])),
            Err(ProtocolError::Decode(crate::DecodeError::UnknownFrameType(0x42)))
        );
        // None of it broke the session.
        s.handle_message(0, PayloadRef::Binary(&frame(Frame::Data { seq: 1, payload: PayloadRef::Text("ok") })))
            .unwrap();
        assert_eq!(s.poll_event(), Some(SessionEvent::Message(Payload::from("ok"))));
    }

    #[test]
    fn oversized_and_overflowing_sends_are_refused() {
        let config = SessionConfig {
            limits: crate::BufferLimits { max_messages: 2, max_bytes: 100 },
            max_message_bytes: 10,
            ..Default::default()
        };
        let mut s = Session::client(config);
        assert_eq!(s.send(0, Payload::from("x".repeat(11))), Err(SendError::TooLarge { len: 11, max: 10 }));
        s.send(0, Payload::from("a")).unwrap();
        s.send(0, Payload::from("b")).unwrap();
        assert!(!s.has_room(1));
        assert_eq!(s.send(0, Payload::from("c")), Err(SendError::BufferFull { messages: 2, bytes: 2 }));
    }

    #[test]
    fn pings_are_answered_and_pongs_measure_the_round_trip() {
        let mut s = server_with_sent(0);
        s.handle_message(0, PayloadRef::Binary(&frame(Frame::Ping { value: 7 }))).unwrap();
        s.handle_message(0, PayloadRef::Binary(&frame(Frame::Ping { value: 8 }))).unwrap();
        assert_eq!(drain(&mut s, 0), [frame(Frame::Pong { value: 8 })], "only the latest ping is answered");
        s.ping(100);
        assert_eq!(drain(&mut s, 100), [frame(Frame::Ping { value: 100 })]);
        s.handle_message(130, PayloadRef::Binary(&frame(Frame::Pong { value: 100 }))).unwrap();
        assert_eq!(s.stats().last_rtt_ms, Some(30));
    }

    #[test]
    fn goodbye_ends_the_session_after_pending_data() {
        let mut s = server_with_sent(0);
        s.send(0, Payload::from("last")).unwrap();
        s.goodbye();
        let sent = drain(&mut s, 0);
        assert_eq!(sent.last(), Some(&frame(Frame::Goodbye)));
        assert!(s.is_ended());
        assert_eq!(s.send(0, Payload::from("more")), Err(SendError::Closed));
        let mut peer = server_with_sent(0);
        peer.handle_message(0, PayloadRef::Binary(&frame(Frame::Goodbye))).unwrap();
        assert_eq!(peer.poll_event(), Some(SessionEvent::Goodbye));
        assert!(peer.is_ended());
    }
}
