//! [`Durable`]: the one value that owns the sessions (the core's server-role
//! [`Endpoint`](durable_ws_core::server::Endpoint) in memory), the sweeper, the limits, the rooms
//! and the live connections. Cheap to clone into axum state and into tasks.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use durable_ws_core::server::metrics::direction;
use durable_ws_core::server::policy::{self, Closing};
use durable_ws_core::server::{defaults, EndReason, Ended, Endpoint, EndpointConfig, SessionId};
use durable_ws_core::{BufferLimits, HeartbeatConfig, Payload, SessionConfig};
use tokio::sync::{mpsc, watch, Notify};

use crate::auth::Identity;
use crate::clock::Clock;
use crate::codec::Json;
use crate::registry::{Connections, Control};
use crate::room::Room;
use crate::session::{Progress, SessionHandle};
use crate::socket::AwaitClient;
use crate::stats::{Counters, Stats};

/// Limits and timings of a [`Durable`]; every field has a default chosen for a 2-core box, and
/// a builder method of the same name.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a session without a connection is kept for a resume. Default 120 s.
    pub session_ttl: Duration,
    /// Most sessions held at once (connected or waiting for a resume). Default 10 000.
    pub max_sessions: usize,
    /// Most sessions one named identity may hold at once (the anonymous identity, everyone
    /// without authentication, is bounded by `max_sessions` only). Default 100.
    pub max_sessions_per_identity: usize,
    /// Largest application message, in bytes; larger ones close the connection with 1009.
    /// Default 1 MiB.
    pub max_message_bytes: usize,
    /// Bounds of each session's replay buffer for its client (sent, unacknowledged, plus
    /// queued). Default 10 000 messages, 8 MiB.
    pub buffer: BufferLimits,
    /// Messages from one client waiting for the application; when it is full the server stops
    /// reading that client's connection until the application catches up. Default 64.
    pub inbound_queue: usize,
    /// Server heartbeat (`None`: off). Default a ping every 15 s, dead after 10 s of silence.
    pub heartbeat: Option<HeartbeatConfig>,
    /// How long a new durable connection may take to send its `Hello` (then 1002). Default 10 s.
    pub handshake_timeout: Duration,
    /// How long [`Durable::shutdown`] waits for connections to finish closing. Default 3 s.
    pub shutdown_grace: Duration,
    /// Connections in a row of one session that may end in a protocol error before the
    /// session is dropped (resume: `LostRefused`). Default 3.
    pub max_protocol_errors: u32,
    /// Most payload bytes held in all sessions' replay buffers together (a broadcast counts once
    /// per member). When reached, sends fail with [`SendError::Full`](crate::SendError::Full) and
    /// new sessions are refused with 1013. Default 4 GiB.
    pub max_buffered_bytes: usize,
    /// Most bytes waiting to be written on one connection; when reached, the server stops
    /// producing frames for it and stops reading from it. Default 1 MiB.
    pub max_outgoing_bytes: usize,
    /// A connection whose outgoing queue stays full this long (its client does not read) is
    /// closed with 1013; its session stays resumable. Default 30 s.
    pub send_timeout: Duration,
    /// Messages per second one client may send on average (a token bucket; beyond it the server
    /// reads more slowly: nothing is dropped). Default 10 000.
    pub max_messages_per_second: u32,
    /// Messages one client may send at once above the average rate. Default 10 000.
    pub burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_ttl: Duration::from_millis(defaults::SESSION_TTL_MS),
            max_sessions: defaults::MAX_SESSIONS,
            max_sessions_per_identity: defaults::MAX_SESSIONS_PER_IDENTITY,
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            buffer: BufferLimits::default(),
            inbound_queue: 64,
            heartbeat: Some(HeartbeatConfig::default()),
            handshake_timeout: Duration::from_millis(defaults::HANDSHAKE_TIMEOUT_MS),
            shutdown_grace: Duration::from_millis(defaults::SHUTDOWN_GRACE_MS),
            max_protocol_errors: defaults::MAX_PROTOCOL_ERRORS,
            max_buffered_bytes: defaults::max_buffered_bytes(),
            max_outgoing_bytes: defaults::MAX_OUTGOING_BYTES,
            send_timeout: Duration::from_millis(defaults::SEND_TIMEOUT_MS),
            max_messages_per_second: defaults::MAX_MESSAGES_PER_SECOND,
            burst: defaults::BURST,
        }
    }
}

impl Config {
    fn endpoint_config(&self) -> EndpointConfig {
        EndpointConfig {
            session: SessionConfig {
                limits: self.buffer,
                max_message_bytes: self.max_message_bytes,
                heartbeat: self.heartbeat,
                ..SessionConfig::default()
            },
            ttl_ms: self.session_ttl.as_millis().min(u64::MAX as u128) as u64,
            max_sessions: self.max_sessions,
            max_sessions_per_owner: self.max_sessions_per_identity,
            max_protocol_errors: self.max_protocol_errors,
            max_buffered_bytes: self.max_buffered_bytes,
        }
    }
}

/// Builds a [`Durable`]. Every setting has a default ([`Config`]).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Builder {
    config: Config,
    #[cfg(feature = "redis")]
    redis: Option<crate::redis::RedisStore>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$name = value;
                self
            }
        )*
    };
}

impl Builder {
    setters! {
        /// See [`Config::session_ttl`].
        session_ttl: Duration,
        /// See [`Config::max_sessions`].
        max_sessions: usize,
        /// See [`Config::max_sessions_per_identity`].
        max_sessions_per_identity: usize,
        /// See [`Config::max_message_bytes`].
        max_message_bytes: usize,
        /// See [`Config::buffer`].
        buffer: BufferLimits,
        /// See [`Config::inbound_queue`].
        inbound_queue: usize,
        /// See [`Config::heartbeat`].
        heartbeat: Option<HeartbeatConfig>,
        /// See [`Config::handshake_timeout`].
        handshake_timeout: Duration,
        /// See [`Config::shutdown_grace`].
        shutdown_grace: Duration,
        /// See [`Config::max_protocol_errors`].
        max_protocol_errors: u32,
        /// See [`Config::max_buffered_bytes`].
        max_buffered_bytes: usize,
        /// See [`Config::max_outgoing_bytes`].
        max_outgoing_bytes: usize,
        /// See [`Config::send_timeout`].
        send_timeout: Duration,
        /// See [`Config::max_messages_per_second`].
        max_messages_per_second: u32,
        /// See [`Config::burst`].
        burst: u32,
    }

    /// Starts from `config`.
    pub fn from_config(config: Config) -> Self {
        Builder {
            config,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Keeps the sessions in Redis instead of this process's memory: every node built on the
    /// same Redis can resume every session (no sticky sessions), rooms span the nodes, and a node
    /// that stops or crashes loses nothing it acknowledged. See [`crate::redis`].
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, store: crate::redis::RedisStore) -> Self {
        self.redis = Some(store);
        self
    }

    /// The value, with its sweeper task running. Call it inside a Tokio runtime.
    pub fn build(self) -> Durable {
        let mut config = self.config;
        // A buffer must hold at least one message of the largest size.
        config.buffer.max_bytes = config.buffer.max_bytes.max(config.max_message_bytes);
        config.inbound_queue = config.inbound_queue.max(1);
        config.max_outgoing_bytes = config.max_outgoing_bytes.max(1);
        config.max_messages_per_second = config.max_messages_per_second.max(1);
        config.burst = config.burst.max(1);
        let endpoint = Endpoint::new(config.endpoint_config());
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                endpoint,
                slots: HashMap::new(),
                rooms: HashMap::new(),
                identities: HashMap::new(),
                #[cfg(feature = "redis")]
                keys: HashMap::new(),
            }),
            #[cfg(feature = "redis")]
            shared: self.redis.map(crate::shared::Shared::new),
            connections: Arc::new(Connections::new()),
            counters: Counters::default(),
            clock: Clock::new(),
            sweep: Notify::new(),
            config,
        });
        tokio::spawn(sweep_loop(Arc::downgrade(&inner)));
        let durable = Durable { inner };
        #[cfg(feature = "redis")]
        if durable.inner.shared.is_some() {
            crate::shared::start(&durable);
        }
        durable
    }
}

/// The server half of durable-ws: sessions that outlive connections, rooms, and handles that
/// reach any session from anywhere. Clone it freely (it is an `Arc`).
///
/// ```no_run
/// # async fn demo() {
/// use durable_ws_server::{Durable, Session};
/// async fn echo(mut session: Session<serde_json::Value>) {
///     while let Some(message) = session.recv().await {
///         let _ = session.send(&message);
///     }
/// }
/// let durable = Durable::builder().build();
/// let app: axum::Router = axum::Router::new().route("/echo", durable.endpoint(echo));
/// # }
/// ```
#[derive(Clone)]
pub struct Durable {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

pub(crate) struct Inner {
    pub config: Config,
    pub state: Mutex<State>,
    pub connections: Arc<Connections>,
    pub counters: Counters,
    pub clock: Clock,
    /// Wakes the sweeper when a session is detached (its expiry may now be the earliest).
    pub sweep: Notify,
    #[cfg(feature = "redis")]
    pub shared: Option<crate::shared::Shared>,
}

/// Everything behind the one lock: the core endpoint and what the driver keeps per session.
pub(crate) struct State {
    pub endpoint: Endpoint<Identity>,
    pub slots: HashMap<SessionId, Slot>,
    /// Members of each room, in a fixed order.
    pub rooms: HashMap<Arc<str>, BTreeSet<SessionId>>,
    pub identities: HashMap<Identity, HashSet<SessionId>>,
    /// Sessions driven here, by their key in Redis.
    #[cfg(feature = "redis")]
    pub keys: HashMap<crate::redis::Key, SessionId>,
}

/// What the driver keeps for one live session.
pub(crate) struct Slot {
    /// Messages for the session's application (bounded: backpressure on the client).
    pub inbound: mpsc::Sender<crate::session::Incoming>,
    /// Acknowledged sequence number, and how the session ended.
    pub progress: watch::Sender<Progress>,
    /// Wakes the connection driving the session (something was queued from elsewhere).
    pub wake: Arc<Notify>,
    pub rooms: HashSet<Arc<str>>,
    /// The session's counters already added to the server-wide ones.
    pub seen: durable_ws_core::SessionStats,
    /// The last client message the application finished with.
    pub processed: Arc<std::sync::atomic::AtomicU64>,
    /// When its messages went out, for the acknowledgement delay.
    pub ack_clock: crate::metrics::AckClock,
    #[cfg(feature = "redis")]
    pub stored: Option<crate::shared::Stored>,
}

/// [`Durable::node`] of a server without shared storage.
pub(crate) const LOCAL_NODE: &str = "local";

/// Locks a mutex, ignoring poisoning: no code here panics while holding a lock on purpose, and
/// the protected state stays consistent between statements.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Durable {
    /// A builder with the default [`Config`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The room `name` (created by the first `join`), with the JSON codec.
    pub fn room(&self, name: &str) -> Room<Json> {
        Room::new(self.clone(), name.into())
    }

    /// A handle on session `id` (it may have ended: sends then fail with `Ended`).
    pub fn session(&self, id: SessionId) -> SessionHandle<Json> {
        SessionHandle::new(self.clone(), id)
    }

    /// The live sessions of `identity`.
    pub fn sessions_of(&self, identity: &Identity) -> Vec<SessionId> {
        let state = lock(&self.inner.state);
        let mut ids: Vec<_> =
            state.identities.get(identity).map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        ids.sort();
        ids
    }

    /// Sends `message` (JSON) to every live session of `identity`; returns how many took it.
    /// With a Redis store, the sessions other nodes drive get it too, in the background (the
    /// count is this node's).
    pub fn send_to_identity<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        identity: &Identity,
        message: &T,
    ) -> Result<usize, crate::SendError> {
        let payload = <Json as crate::Encode<T>>::encode(message).map_err(crate::SendError::Encode)?;
        #[cfg(feature = "redis")]
        if let (Some(_), Some(name)) = (&self.inner.shared, identity.name()) {
            crate::shared::send_to_identity_elsewhere(self, name, payload.clone());
        }
        Ok(self.sessions_of(identity).into_iter().filter(|id| self.send_payload(*id, payload.clone()).is_ok()).count())
    }

    /// Counters and sizes right now.
    pub fn stats(&self) -> Stats {
        let sessions = lock(&self.inner.state).endpoint.len();
        #[allow(unused_mut)]
        let mut stats = Stats::snapshot(&self.inner.counters, sessions, self.inner.connections.len());
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.shared {
            stats.store_commands = shared.store.inner.sent.load(std::sync::atomic::Ordering::Relaxed);
        }
        stats
    }

    /// Sets the gauges of the sessions held and their replay buffers now (the server sets them every
    /// second; an exporter may call this before a scrape).
    pub fn record_gauges(&self) {
        lock(&self.inner.state).record_gauges();
    }

    /// Whether the server takes new connections: not once [`shutdown`](Self::shutdown) began, nor
    /// while its shared storage does not answer (within a second).
    pub async fn ready(&self) -> bool {
        if self.inner.connections.shutting_down() {
            return false;
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.shared {
            return matches!(tokio::time::timeout(Duration::from_secs(1), shared.store.ping()).await, Ok(Ok(())));
        }
        true
    }

    /// The name of this server node in logs and traces: its name in the shared storage, else `local`.
    pub fn node(&self) -> &str {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.inner.shared {
            return shared.store.node();
        }
        LOCAL_NODE
    }

    /// Graceful shutdown: refuses new connections, closes every open one with 1012 (clients
    /// reconnect; sessions stay resumable while this process lives) and waits up to
    /// [`Config::shutdown_grace`] for them to finish closing.
    pub async fn shutdown(&self) {
        self.inner.connections.begin_shutdown();
        self.inner.connections.wait_empty(self.inner.config.shutdown_grace).await;
        #[cfg(feature = "redis")]
        if self.inner.shared.is_some() {
            crate::shared::flush(self).await;
        }
    }

    /// Queues `payload` into session `id` and wakes its connection.
    pub(crate) fn send_payload(&self, id: SessionId, payload: Payload) -> Result<u64, crate::SendError> {
        let now = self.inner.clock.now();
        let mut state = lock(&self.inner.state);
        let len = payload.len();
        let seq = state.send(now, id, Arc::new(payload))?;
        Counters::add(&self.inner.counters.messages_out, 1);
        crate::metrics::bytes(direction::OUT, len);
        Ok(seq)
    }

    /// Forwards every ended session: its application learns why, its rooms forget it, and the
    /// connection still attached is told how to close.
    pub(crate) fn settle(&self, state: &mut State) {
        while let Some(ended) = state.endpoint.poll_ended() {
            self.ended(state, ended);
        }
    }

    fn ended(&self, state: &mut State, ended: Ended<Identity>) {
        let counters = &self.inner.counters;
        crate::metrics::session_ended(ended.reason);
        if ended.reason != EndReason::Moved {
            Counters::add(&counters.unconfirmed_at_end, ended.unconfirmed.len() as u64);
        }
        match ended.reason {
            EndReason::Goodbye => tracing::info!(session = %ended.id, "session ended: the client said goodbye"),
            EndReason::Closed => tracing::info!(session = %ended.id, "session ended by the application"),
            EndReason::Expired => {
                Counters::add(&counters.sessions_expired, 1);
                tracing::info!(session = %ended.id, unconfirmed = ended.unconfirmed.len(), "session expired");
            }
            EndReason::Overflow => {
                Counters::add(&counters.sessions_overflowed, 1);
                tracing::warn!(session = %ended.id, "session dropped: replay buffer overflow (its client gets lost/overflow)");
            }
            EndReason::ProtocolErrors => {
                tracing::warn!(session = %ended.id, "session dropped after repeated protocol errors (its client gets lost/refused)");
            }
            EndReason::Moved => tracing::info!(session = %ended.id, "session taken over by another node"),
        }
        if let Some(conn) = ended.attached {
            let control = match policy::on_session_end(ended.reason) {
                Closing::Close { code, reason } => Some(Control::Close(code, reason)),
                Closing::AwaitClient { wait_ms, code, reason } => {
                    Some(Control::AwaitClose(AwaitClient { wait_ms, code, reason }))
                }
                Closing::Nothing => None,
            };
            if let Some(control) = control {
                self.inner.connections.send(conn, control);
            }
        }
        if let Some(slot) = state.slots.remove(&ended.id) {
            #[cfg(feature = "redis")]
            let mut slot = slot;
            #[cfg(feature = "redis")]
            if let Some(stored) = slot.stored.take() {
                crate::shared::ended(self, state, stored, ended.owner.clone(), ended.reason);
            }
            if !ended.delivered.is_empty() {
                // Delivered (acknowledged) but not yet handed over: the application still gets
                // them, in order, before its `recv` ends.
                let inbound = slot.inbound.clone();
                tokio::spawn(async move {
                    for payload in ended.delivered {
                        let _ = inbound.send(crate::session::Incoming::Message(0, payload)).await;
                    }
                });
            }
            for room in &slot.rooms {
                if let Some(members) = state.rooms.get_mut(room) {
                    members.remove(&ended.id);
                    if members.is_empty() {
                        state.rooms.remove(room);
                    }
                }
            }
            slot.progress.send_modify(|progress| {
                progress.ended =
                    Some(Arc::new(crate::session::EndInfo { reason: ended.reason, unconfirmed: ended.unconfirmed }));
            });
        }
        if let Some(ids) = state.identities.get_mut(&ended.owner) {
            ids.remove(&ended.id);
            if ids.is_empty() {
                state.identities.remove(&ended.owner);
            }
        }
    }

    /// Ends session `id` now (e.g. an operator's expire): its client's next resume gets
    /// `LostUnknown`. False if it was not live.
    pub fn expire(&self, id: SessionId) -> bool {
        let now = self.inner.clock.now();
        let mut state = lock(&self.inner.state);
        let ended = state.endpoint.end(now, id, EndReason::Expired);
        self.settle(&mut state);
        ended
    }

    /// Every live session.
    pub fn session_ids(&self) -> Vec<SessionId> {
        let mut ids = lock(&self.inner.state).endpoint.ids();
        ids.sort();
        ids
    }

    /// The session holding `token` (the client's credential), if live.
    pub fn find_token(&self, token: &durable_ws_core::Token) -> Option<SessionId> {
        lock(&self.inner.state).endpoint.find(token)
    }

    /// Fault injection for tests: drops session `id`'s connection abruptly (no close frame), or
    /// every connection (`None`). Returns how many were cut.
    #[cfg(feature = "faults")]
    #[cfg_attr(docsrs, doc(cfg(feature = "faults")))]
    pub fn cut(&self, id: Option<SessionId>) -> usize {
        let n = self.control(id, Control::Cut);
        Counters::add(&self.inner.counters.cuts, n as u64);
        n
    }

    /// Fault injection for tests: session `id`'s connection (or every connection) stops reading
    /// and writing for `duration` (a half-open link). Returns how many were stalled.
    #[cfg(feature = "faults")]
    #[cfg_attr(docsrs, doc(cfg(feature = "faults")))]
    pub fn stall(&self, id: Option<SessionId>, duration: Duration) -> usize {
        self.control(id, Control::Stall(duration))
    }

    #[cfg(feature = "faults")]
    fn control(&self, id: Option<SessionId>, control: Control) -> usize {
        match id {
            None => self.inner.connections.broadcast(control),
            Some(id) => {
                let attached = lock(&self.inner.state).endpoint.record(id).and_then(|record| record.attached);
                attached.is_some_and(|conn| self.inner.connections.send(conn, control)) as usize
            }
        }
    }
}

impl State {
    /// Sets the gauges of the sessions held and their replay buffers (the sweeper does, every second at least).
    pub fn record_gauges(&self) {
        let buffered = self.slots.keys().filter_map(|&id| self.endpoint.stats(id)).map(|stats| stats.pending).sum();
        crate::metrics::sessions(self.endpoint.len(), buffered, self.endpoint.buffered_bytes());
    }

    /// Queues a message for session `id`; a full buffer is `Full` (nothing queued).
    pub fn send(
        &mut self,
        now: durable_ws_core::Millis,
        id: SessionId,
        payload: Arc<Payload>,
    ) -> Result<u64, crate::SendError> {
        match self.endpoint.send_shared(now, id, payload) {
            Ok(seq) => {
                if let Some(slot) = self.slots.get(&id) {
                    slot.wake.notify_one();
                    #[cfg(feature = "redis")]
                    if let Some(stored) = &slot.stored {
                        stored.journal.notify_one();
                    }
                }
                Ok(seq)
            }
            Err(durable_ws_core::SendError::TooLarge { len, max }) => Err(crate::SendError::TooLarge { len, max }),
            Err(durable_ws_core::SendError::BufferFull { .. }) => Err(crate::SendError::Full),
            Err(durable_ws_core::SendError::Closed) => Err(crate::SendError::Ended),
        }
    }
}

/// Expires sessions at their deadlines; ends when the last `Durable` is dropped.
async fn sweep_loop(inner: Weak<Inner>) {
    loop {
        let (wait, notified) = {
            let Some(inner) = inner.upgrade() else { return };
            let durable = Durable { inner };
            let now = durable.inner.clock.now();
            let next = {
                let mut state = lock(&durable.inner.state);
                state.endpoint.handle_timeout(now);
                durable.settle(&mut state);
                state.record_gauges();
                state.endpoint.poll_timeout()
            };
            // Sleep until the next expiry, but wake up now and then to notice being dropped.
            let wait = next
                .map_or(Duration::from_secs(1), |at| Duration::from_millis(at.saturating_sub(now)))
                .min(Duration::from_secs(1));
            let inner = durable.inner.clone();
            (wait, async move { inner.sweep.notified().await })
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notified => {}
        }
    }
}
