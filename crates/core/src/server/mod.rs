//! The server role: which session a `Hello` leads to (new, resumed, or lost and why), the
//! connection attached to each session, protocol-error bounds, quotas, TTL and tombstones — all
//! decided by [`Endpoint`], pure and deterministic, over a [`Store`].
//!
//! A driver accepts a WebSocket, decodes the first frame, and calls [`Endpoint::hello`] with a
//! fresh random token; the [`Accepted`] answer names the session the connection now drives.
//! Then it feeds every received message to [`Endpoint::handle_message`], writes what
//! [`Endpoint::poll_transmit`] produces, hands [`Endpoint::poll_event`]'s messages to the
//! application, waits for [`Endpoint::timeout`] (per session) and [`Endpoint::poll_timeout`]
//! (expiries), and forwards every [`Ended`] session from [`Endpoint::poll_ended`].
//!
//! ```
//! use durable_ws_core::frame::Frame;
//! use durable_ws_core::server::{Endpoint, EndpointConfig, ServerEvent};
//! use durable_ws_core::{PayloadRef, Token, WelcomeStatus};
//! let mut endpoint = Endpoint::<&str>::new(EndpointConfig::default());
//! let accepted = endpoint.hello(0, 1, "ann", None, Token([7; 16])).unwrap();
//! assert_eq!(accepted.status, WelcomeStatus::New);
//! let mut buf = Vec::new();
//! endpoint.poll_transmit(0, accepted.id, 1, &mut buf).unwrap(); // the Welcome
//! let mut data = Vec::new();
//! Frame::Data { seq: 1, payload: PayloadRef::Text("hi") }.encode(&mut data);
//! endpoint.handle_message(0, accepted.id, 1, PayloadRef::Binary(&data)).unwrap();
//! assert_eq!(endpoint.poll_event(accepted.id), Some(ServerEvent::Message("hi".into())));
//! ```

pub mod defaults;
pub mod metrics;
pub mod policy;
pub mod rate;
mod store;

pub use store::{MemoryStore, Record, Store};

use std::collections::VecDeque;
use std::marker::PhantomData;

use crate::config::SessionConfig;
use crate::error::{ProtocolError, ResumeError, SendError};
use crate::frame::{Token, WelcomeStatus};
use crate::payload::{MessageKind, Payload, PayloadRef};
use crate::session::{Session, SessionEvent, SessionStats};
use crate::Millis;

/// Identifies one connection, chosen by the driver (unique for the driver's lifetime).
pub type ConnId = u64;

/// Identifies one session on this endpoint. Not a credential (unlike its [`Token`]): safe to log
/// and to hand to application code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who owns a session: compared on resume (only the owner may resume it) and counted for
/// [`EndpointConfig::max_sessions_per_owner`].
pub trait Owner: Clone + Eq {
    /// Whether this owner's sessions count against the per-owner quota. An owner that stands for
    /// many people (e.g. "anonymous" when there is no authentication) should say no.
    fn has_quota(&self) -> bool {
        true
    }
}

impl Owner for () {}
impl Owner for &str {}
impl Owner for String {}
impl Owner for u64 {}

/// Settings of the server role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Settings of each session.
    pub session: SessionConfig,
    /// How long a session without a connection is kept for a resume. Default 120 000 ms.
    pub ttl_ms: Millis,
    /// Most sessions held at once (attached or waiting for a resume). Default 10 000.
    pub max_sessions: usize,
    /// Most sessions one owner may hold at once (owners whose [`Owner::has_quota`] says so).
    /// Default 100 (as both servers').
    pub max_sessions_per_owner: usize,
    /// Connections in a row of one session that may end with a protocol error (with no message
    /// delivered between them) before the session is dropped. Default 3.
    pub max_protocol_errors: u32,
    /// Most payload bytes held in all replay buffers together (each session counts the
    /// messages it holds, shared or not). When reached, sends fail with `BufferFull` and new
    /// sessions are refused ([`Refused::Budget`]). Default 4 GiB.
    pub max_buffered_bytes: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            session: SessionConfig::default(),
            ttl_ms: defaults::SESSION_TTL_MS,
            max_sessions: defaults::MAX_SESSIONS,
            max_sessions_per_owner: defaults::MAX_SESSIONS_PER_IDENTITY,
            max_protocol_errors: defaults::MAX_PROTOCOL_ERRORS,
            max_buffered_bytes: defaults::max_buffered_bytes(),
        }
    }
}

/// What a `Hello` led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The session the connection now drives.
    pub id: SessionId,
    /// What the `Welcome` says: `New`, `Resumed`, or why the named session could not be resumed.
    pub status: WelcomeStatus,
    /// A session was created (`status` is not `Resumed`): its application starts now.
    pub created: bool,
    /// The connection that drove the resumed session until now: close it with 4409.
    pub superseded: Option<ConnId>,
    /// The named session exists but belongs to another owner (it was left untouched).
    pub foreign: bool,
}

/// Why a `Hello` got no session. The driver closes the connection with 1013 and sends no
/// `Welcome`: the client keeps its session and retries later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max_sessions` are held and none has expired.
    #[error("too many sessions")]
    Full,
    /// The owner holds `max_sessions_per_owner` sessions.
    #[error("too many sessions for this identity")]
    OwnerQuota,
    /// The server's budget of buffered bytes is spent.
    #[error("the server's buffer budget is spent")]
    Budget,
    /// The fresh token the driver drew is already in use: draw another and call again.
    #[error("token already in use")]
    TokenInUse,
}

/// Why a message from a connection was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The connection no longer drives this session (superseded, or the session ended).
    #[error("connection not attached to the session")]
    NotAttached,
    /// The client broke the protocol: close with `error.close_code()`. If `session_dropped`,
    /// that was one error too many and the session is gone (the next resume gets
    /// `LostRefused`); otherwise it stays resumable.
    #[error("{error}")]
    Protocol {
        /// What was wrong.
        error: ProtocolError,
        /// Whether the session was dropped for it.
        session_dropped: bool,
    },
}

/// What a session tells the server driver.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// A message from the client, delivered exactly once and in order.
    Message(Payload),
    /// The client confirmed every message up to `seq`.
    Acked {
        /// Highest confirmed sequence number.
        seq: u64,
    },
    /// The heartbeat found the link silent: close the connection with 4000 (the session stays).
    Dead,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The client said goodbye.
    Goodbye,
    /// The server application ended it ([`Endpoint::goodbye`]), and the goodbye went out.
    Closed,
    /// Kept without a connection for longer than the TTL, or forgotten on purpose.
    Expired,
    /// A message for the client did not fit its replay buffer (resume: `LostOverflow`).
    Overflow,
    /// Too many connections in a row ended with a protocol error (resume: `LostRefused`).
    ProtocolErrors,
    /// Another server node took the session over (shared storage): it lives on there, so this
    /// endpoint forgets it without a tombstone.
    Moved,
}

impl EndReason {
    /// Every reason.
    pub const ALL: [EndReason; 6] = [
        EndReason::Goodbye,
        EndReason::Closed,
        EndReason::Expired,
        EndReason::Overflow,
        EndReason::ProtocolErrors,
        EndReason::Moved,
    ];
}

/// Where a session's numbering stands ([`Endpoint::sequence`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// Highest client message delivered.
    pub delivered: u64,
    /// Highest own message the client confirmed.
    pub acked: u64,
    /// Highest own message queued.
    pub queued: u64,
    /// Highest own message ever transmitted.
    pub sent: u64,
}

/// A session as shared storage holds it, for [`Endpoint::restore`].
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The client confirmed every message up to this one.
    pub acked: u64,
    /// The messages after `acked`, in order.
    pub unconfirmed: Vec<std::sync::Arc<Payload>>,
    /// Every client message up to this one was received (and stored).
    pub delivered: u64,
}

/// A session that ended, with everything it still held.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended<O> {
    /// The session.
    pub id: SessionId,
    /// Its owner.
    pub owner: O,
    /// Why it ended.
    pub reason: EndReason,
    /// The connection still attached when it ended (close it: 1000 after a goodbye, 4004
    /// when expired, 1013 for overflow, 1002 for protocol errors).
    pub attached: Option<ConnId>,
    /// Messages from the client delivered but not yet taken with `poll_event`, in order.
    pub delivered: Vec<Payload>,
    /// `(sequence number, payload)` of every message the client never confirmed.
    pub unconfirmed: Vec<(u64, Payload)>,
}

/// The server role over a [`Store`] of sessions owned by identities of type `O`.
#[derive(Debug)]
pub struct Endpoint<O, S = MemoryStore<O>> {
    config: EndpointConfig,
    store: S,
    next_id: u64,
    /// Payload bytes held in every session's replay buffer.
    buffered: usize,
    ended: VecDeque<Ended<O>>,
    owner: PhantomData<O>,
}

impl<O: Owner + std::hash::Hash> Endpoint<O, MemoryStore<O>> {
    /// An endpoint keeping its sessions in memory (at most `max_sessions` tombstones).
    pub fn new(config: EndpointConfig) -> Self {
        let store = MemoryStore::new(config.max_sessions);
        Endpoint::with_store(config, store)
    }
}

impl<O: Owner, S: Store<O>> Endpoint<O, S> {
    /// An endpoint over `store`.
    pub fn with_store(config: EndpointConfig, store: S) -> Self {
        Endpoint { config, store, next_id: 1, buffered: 0, ended: VecDeque::new(), owner: PhantomData }
    }

    /// The settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Answers the `Hello` of connection `conn` of `owner`. A resume of a live session of the
    /// same owner from a valid point resumes it (`superseded` names the connection it takes
    /// over); otherwise a new session is created under `fresh_token`, whose status says why the
    /// named one could not be resumed. Another owner's session is never touched.
    pub fn hello(
        &mut self,
        now: Millis,
        conn: ConnId,
        owner: O,
        resume: Option<(Token, u64)>,
        fresh_token: Token,
    ) -> Result<Accepted, Refused> {
        let mut foreign = false;
        let status = match resume {
            None => WelcomeStatus::New,
            Some((token, last_received)) => match self.store.find(&token) {
                Some(id) if self.is_expired(id, now) => {
                    self.end(now, id, EndReason::Expired);
                    WelcomeStatus::LostUnknown
                }
                Some(id) => {
                    let record = self.store.get_mut(id).expect("found above");
                    if record.owner != owner {
                        foreign = true;
                        WelcomeStatus::LostRefused
                    } else {
                        match resumed(&mut record.session, now, last_received) {
                            Ok(freed) => {
                                self.buffered -= freed;
                                let superseded = record.attached.replace(conn);
                                record.detached_at = None;
                                self.store.set_expiry(id, None);
                                return Ok(Accepted {
                                    id,
                                    status: WelcomeStatus::Resumed,
                                    created: false,
                                    superseded,
                                    foreign,
                                });
                            }
                            // Its GOODBYE went out (§5.7): over, although the driver has not polled its end yet.
                            Err(ResumeError::Ended) => {
                                self.end(now, id, EndReason::Closed);
                                WelcomeStatus::LostUnknown
                            }
                            Err(_) => WelcomeStatus::LostRefused,
                        }
                    }
                }
                None => self.store.tombstone(&token, now).unwrap_or(WelcomeStatus::LostUnknown),
            },
        };
        if self.store.len() >= self.config.max_sessions {
            self.handle_timeout(now);
            if self.store.len() >= self.config.max_sessions {
                return Err(Refused::Full);
            }
        }
        if owner.has_quota() && self.store.count_owned_by(&owner) >= self.config.max_sessions_per_owner {
            return Err(Refused::OwnerQuota);
        }
        if self.buffered >= self.config.max_buffered_bytes {
            return Err(Refused::Budget);
        }
        if self.store.find(&fresh_token).is_some() {
            return Err(Refused::TokenInUse);
        }
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let session = Session::server(self.config.session.clone(), fresh_token, status, now);
        self.store.insert(
            id,
            Record { session, token: fresh_token, owner, attached: Some(conn), detached_at: None, protocol_errors: 0 },
        );
        Ok(Accepted { id, status, created: true, superseded: None, foreign })
    }

    /// A message arrived on connection `conn`, which drives session `id`.
    pub fn handle_message(
        &mut self,
        now: Millis,
        id: SessionId,
        conn: ConnId,
        message: PayloadRef<'_>,
    ) -> Result<(), InputError> {
        let max_errors = self.config.max_protocol_errors;
        let record = self.attached_mut(id, conn).ok_or(InputError::NotAttached)?;
        let received = record.session.stats().received;
        let held = record.session.buffered_bytes();
        let result = record.session.handle_message(now, message);
        let freed = held - record.session.buffered_bytes();
        self.buffered -= freed;
        let record = self.store.get_mut(id).expect("attached above");
        match result {
            Ok(()) => {
                if record.session.stats().received > received {
                    record.protocol_errors = 0;
                }
                if record.session.is_ended() {
                    // The client's GOODBYE, or a message after ours went out.
                    let reason =
                        if record.session.peer_said_goodbye() { EndReason::Goodbye } else { EndReason::Closed };
                    self.end(now, id, reason);
                }
                Ok(())
            }
            Err(error) => {
                record.protocol_errors += 1;
                let session_dropped = record.protocol_errors >= max_errors;
                if session_dropped {
                    self.end(now, id, EndReason::ProtocolErrors);
                }
                Err(InputError::Protocol { error, session_dropped })
            }
        }
    }

    /// The next frame to write on connection `conn` of session `id` (into `buf`, cleared first).
    pub fn poll_transmit(
        &mut self,
        now: Millis,
        id: SessionId,
        conn: ConnId,
        buf: &mut Vec<u8>,
    ) -> Option<MessageKind> {
        let record = self.attached_mut(id, conn)?;
        let kind = record.session.poll_transmit(now, buf);
        if kind.is_none() && record.session.is_ended() {
            self.end(now, id, EndReason::Closed);
        }
        kind
    }

    /// The next event of session `id`.
    pub fn poll_event(&mut self, id: SessionId) -> Option<ServerEvent> {
        let record = self.store.get_mut(id)?;
        loop {
            return Some(match record.session.poll_event()? {
                SessionEvent::Message(payload) => ServerEvent::Message(payload),
                SessionEvent::Acked { seq } => ServerEvent::Acked { seq },
                SessionEvent::Dead => ServerEvent::Dead,
                // The client role's events (and Goodbye, handled by `handle_message`).
                _ => continue,
            });
        }
    }

    /// Gives back messages taken with [`poll_event`](Self::poll_event) that the driver could not
    /// hand to the application (its connection ended meanwhile): they come out of `poll_event`
    /// first, in their order, for whichever connection drives the session next. `Err` returns them
    /// if the session is gone.
    pub fn unpoll_messages(&mut self, id: SessionId, messages: Vec<Payload>) -> Result<(), Vec<Payload>> {
        match self.store.get_mut(id) {
            Some(record) => {
                record.session.unpoll_messages(messages);
                Ok(())
            }
            None => Err(messages),
        }
    }

    /// When [`handle_session_timeout`](Self::handle_session_timeout) is next due for session
    /// `id` (ack delay, heartbeat), while a connection drives it.
    pub fn timeout(&self, id: SessionId) -> Option<Millis> {
        let record = self.store.get(id)?;
        record.attached?;
        record.session.poll_timeout()
    }

    /// Time reached session `id`'s deadline, on connection `conn`.
    pub fn handle_session_timeout(&mut self, now: Millis, id: SessionId, conn: ConnId) {
        if let Some(record) = self.attached_mut(id, conn) {
            record.session.handle_timeout(now);
        }
    }

    /// Queues a message for session `id`'s client; returns its sequence number. A full replay
    /// buffer is `BufferFull` (nothing queued; see [`end`](Self::end) with `Overflow` for
    /// dropping a session that cannot keep up).
    pub fn send(&mut self, now: Millis, id: SessionId, payload: Payload) -> Result<u64, SendError> {
        self.send_shared(now, id, std::sync::Arc::new(payload))
    }

    /// Like [`send`](Self::send), for a payload shared with other sessions (a broadcast: one
    /// copy in memory). Also `BufferFull` when the server's budget
    /// ([`EndpointConfig::max_buffered_bytes`]) would be exceeded.
    pub fn send_shared(
        &mut self,
        now: Millis,
        id: SessionId,
        payload: std::sync::Arc<Payload>,
    ) -> Result<u64, SendError> {
        let len = payload.len();
        let over_budget = self.buffered.saturating_add(len) > self.config.max_buffered_bytes;
        let record = self.store.get_mut(id).ok_or(SendError::Closed)?;
        if over_budget && !record.session.is_ended() && len <= self.config.session.max_message_bytes {
            let stats = record.session.stats();
            return Err(SendError::BufferFull {
                messages: stats.pending as usize,
                bytes: record.session.buffered_bytes(),
            });
        }
        let seq = record.session.send_shared(now, payload)?;
        self.buffered += len;
        Ok(seq)
    }

    /// Payload bytes held in all replay buffers together.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Whether `send` would accept `len` bytes for session `id` now.
    pub fn has_room(&self, id: SessionId, len: usize) -> bool {
        self.store.get(id).is_some_and(|record| record.session.has_room(len))
    }

    /// The server application ends session `id`: a `Goodbye` goes out after what is queued, and
    /// the session ends ([`EndReason::Closed`]) once it is written. Without a connection it
    /// ends at once.
    pub fn goodbye(&mut self, now: Millis, id: SessionId) {
        let Some(record) = self.store.get_mut(id) else { return };
        if record.attached.is_none() {
            self.end(now, id, EndReason::Closed);
        } else {
            record.session.goodbye();
        }
    }

    /// Connection `conn` is gone; if it drove session `id`, the session waits for a resume until
    /// the TTL.
    pub fn detach(&mut self, now: Millis, id: SessionId, conn: ConnId) {
        let ttl = self.config.ttl_ms;
        if let Some(record) = self.attached_mut(id, conn) {
            // A goodbye went out on this connection: the session is over, not waiting.
            let said_goodbye = record.session.is_ended();
            record.session.disconnect(now);
            record.attached = None;
            record.detached_at = Some(now);
            self.store.set_expiry(id, Some(now.saturating_add(ttl)));
            if said_goodbye {
                self.end(now, id, EndReason::Closed);
            }
        }
    }

    /// Ends session `id` for `reason` (queued for [`poll_ended`](Self::poll_ended)); false if
    /// it was not held. Overflow and protocol errors leave a tombstone for the TTL, so a resume
    /// learns why.
    pub fn end(&mut self, now: Millis, id: SessionId, reason: EndReason) -> bool {
        let Some(mut record) = self.store.remove(id) else { return false };
        let tombstone = match reason {
            EndReason::Overflow => Some(WelcomeStatus::LostOverflow),
            EndReason::ProtocolErrors => Some(WelcomeStatus::LostRefused),
            EndReason::Goodbye | EndReason::Closed | EndReason::Expired | EndReason::Moved => None,
        };
        if let Some(status) = tombstone {
            self.store.add_tombstone(record.token, status, now.saturating_add(self.config.ttl_ms));
        }
        let mut delivered = Vec::new();
        while let Some(event) = record.session.poll_event() {
            if let SessionEvent::Message(payload) = event {
                delivered.push(payload);
            }
        }
        self.buffered -= record.session.buffered_bytes();
        let unconfirmed = record.session.take_unconfirmed();
        self.ended.push_back(Ended {
            id,
            owner: record.owner,
            reason,
            attached: record.attached,
            delivered,
            unconfirmed,
        });
        true
    }

    /// Adds a session restored from shared storage (see the session's `restored` for its arguments),
    /// detached and waiting for the resume of its client; `None` if `token` is held already, or
    /// if the stored numbers leave no room to go on (corrupt storage: the resume gets
    /// `LostUnknown`).
    pub fn restore(&mut self, now: Millis, token: Token, owner: O, restored: Restored) -> Option<SessionId> {
        if self.store.find(&token).is_some() {
            return None;
        }
        let session = Session::restored(
            self.config.session.clone(),
            token,
            restored.acked,
            restored.unconfirmed,
            restored.delivered,
        )?;
        self.buffered += session.buffered_bytes();
        let id = SessionId(self.next_id);
        self.next_id += 1;
        self.store
            .insert(id, Record { session, token, owner, attached: None, detached_at: Some(now), protocol_errors: 0 });
        self.store.set_expiry(id, Some(now.saturating_add(self.config.ttl_ms)));
        Some(id)
    }

    /// With shared storage: a resume of `token` is answered with `status` for the TTL (shared
    /// storage holds a tombstone, or another owner's session), unless the session is held here.
    pub fn remember_dropped(&mut self, now: Millis, token: Token, status: WelcomeStatus) {
        self.store.add_tombstone(token, status, now.saturating_add(self.config.ttl_ms));
    }

    /// With shared storage: session `id` acknowledges no client message beyond `limit` until it
    /// is raised (see the session's `set_ack_limit`).
    pub fn set_ack_limit(&mut self, now: Millis, id: SessionId, limit: u64) {
        if let Some(record) = self.store.get_mut(id) {
            record.session.set_ack_limit(now, limit);
        }
    }

    /// With shared storage: session `id` forgets client messages delivered after `to`, which
    /// could not be stored; its client sends them again.
    pub fn rewind_inbound(&mut self, id: SessionId, to: u64) {
        if let Some(record) = self.store.get_mut(id) {
            record.session.rewind_inbound(to);
        }
    }

    /// With shared storage: session `id` transmits no message beyond `limit` until it is raised.
    pub fn set_send_limit(&mut self, id: SessionId, limit: u64) {
        if let Some(record) = self.store.get_mut(id) {
            record.session.set_send_limit(limit);
        }
    }

    /// Session `id`'s sequence numbers: `(client messages delivered, own messages the client
    /// confirmed, own messages queued)`, each the highest so far.
    pub fn sequence(&self, id: SessionId) -> Option<Sequence> {
        let session = &self.store.get(id)?.session;
        Some(Sequence {
            delivered: session.delivered(),
            acked: session.acked(),
            queued: session.last_queued(),
            sent: session.highest_sent(),
        })
    }

    /// The payload of session `id`'s own unconfirmed message `seq`.
    pub fn queued(&self, id: SessionId, seq: u64) -> Option<std::sync::Arc<Payload>> {
        self.store.get(id)?.session.queued(seq).cloned()
    }

    /// The next session that ended.
    pub fn poll_ended(&mut self) -> Option<Ended<O>> {
        self.ended.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (the earliest expiry).
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.store.next_expiry().map(|(at, _)| at)
    }

    /// Expires every session detached for longer than the TTL, and old tombstones.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some((at, id)) = self.store.next_expiry() {
            if at > now {
                break;
            }
            if !self.end(now, id, EndReason::Expired) {
                self.store.set_expiry(id, None);
            }
        }
        self.store.prune_tombstones(now);
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Every session id held.
    pub fn ids(&self) -> Vec<SessionId> {
        self.store.ids()
    }

    /// Session `id`'s record (owner, token, attached connection).
    pub fn record(&self, id: SessionId) -> Option<&Record<O>> {
        self.store.get(id)
    }

    /// The session holding `token`.
    pub fn find(&self, token: &Token) -> Option<SessionId> {
        self.store.find(token)
    }

    /// Session `id`'s counters.
    pub fn stats(&self, id: SessionId) -> Option<SessionStats> {
        self.store.get(id).map(|record| record.session.stats())
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn attached_mut(&mut self, id: SessionId, conn: ConnId) -> Option<&mut Record<O>> {
        self.store.get_mut(id).filter(|record| record.attached == Some(conn))
    }

    fn is_expired(&self, id: SessionId, now: Millis) -> bool {
        self.store.get(id).is_some_and(|record| {
            record.attached.is_none()
                && record.detached_at.is_some_and(|at| now.saturating_sub(at) >= self.config.ttl_ms)
        })
    }
}

/// Resumes `session` from `last_received`; returns the bytes the resume point acknowledged.
fn resumed(session: &mut Session, now: Millis, last_received: u64) -> Result<usize, ResumeError> {
    let held = session.buffered_bytes();
    session.resume(now, last_received)?;
    Ok(held - session.buffered_bytes())
}

#[cfg(test)]
mod tests;
