//! The Redis store (feature `redis`): every session lives in Redis, continuously — each message
//! in each direction, each acknowledgement, the resume state — so that any node sharing the
//! Redis can resume any session at any moment, and a node that crashes loses nothing it had
//! acknowledged. Nodes tell each other what concerns them over pub/sub (a session taken over, a
//! message for a session another node drives, a room message).
//!
//! ```no_run
//! # async fn demo() -> Result<(), durable_ws_server::redis::StoreError> {
//! use durable_ws_server::{redis::RedisStore, Durable};
//! let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
//! let durable = Durable::builder().redis(store).build();
//! # let _ = durable; Ok(()) }
//! ```

mod scripts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_ws_core::{Payload, Token, WelcomeStatus};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, Script, Value};
use tokio::sync::mpsc;

use crate::auth::Identity;
use crate::durable::lock;
use crate::token::{random_token, token_to_hex};

/// Redis could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis is unreachable, answered with an error, or did not answer in time.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something this version does not understand.
    #[error("unexpected answer from redis: {0}")]
    Unexpected(String),
}

/// How long a command may take before Redis counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions in Redis, shared by every node connected to it. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("node", &self.inner.node).finish()
    }
}

pub(crate) struct Inner {
    commands: ConnectionManager,
    subscriber: ConnectionManager,
    pub pushes: Mutex<Option<mpsc::UnboundedReceiver<PushInfo>>>,
    /// This process's name among the nodes (random, new at every start).
    pub node: Arc<str>,
    epoch: Mutex<String>,
    /// Commands (each one round trip, pipelined with others) sent so far.
    pub sent: std::sync::atomic::AtomicU64,
    claim: Script,
    create: Script,
    append_in: Script,
    sync: Script,
    end: Script,
    deliver: Script,
    publish: Script,
}

/// A session's key (its hash tag is the token).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key(pub Arc<str>);

impl Key {
    pub fn of(token: &Token) -> Key {
        Key(format!("dws:{{{}}}:s", token_to_hex(token)).into())
    }

    fn tombstone(&self) -> String {
        format!("{}t", &self.0[..self.0.len() - 1])
    }
}

/// What a claim found.
pub(crate) enum Claim {
    /// The session, now driven by this node.
    Taken(Snapshot),
    /// Ended; a resume is answered with this status.
    Tombstone(WelcomeStatus),
    /// Not in Redis: expired, never existed, or lost by Redis.
    Missing,
    /// Another identity's session.
    Foreign,
}

/// A session as Redis holds it.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub gen: u64,
    pub acked: u64,
    pub unconfirmed: Vec<Arc<Payload>>,
    pub stored_in: u64,
    /// The last client message the application processed.
    pub delivered: u64,
    /// Client messages stored but perhaps not handed to the application (`seq`, payload).
    pub undelivered: Vec<(u64, Payload)>,
    /// Rooms joined, with the last room message appended.
    pub rooms: Vec<(Arc<str>, u64)>,
}

/// What a fenced step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// Another node took the session over.
    Fenced,
    /// This node claimed the session again since the step was built: retry with its generation.
    Regen,
    /// Not in Redis any more.
    Missing,
}

/// What a message for a session driven elsewhere became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    Forwarded,
    Stored,
    Full,
    Missing,
}

/// What an owner's sync step carries.
#[derive(Debug, Default)]
pub(crate) struct Sync {
    pub delivered: u64,
    pub acked: u64,
    pub first: u64,
    pub messages: Vec<Arc<Payload>>,
    /// `(room, Some(last appended) | None to leave)`.
    pub rooms: Vec<(Arc<str>, Option<u64>)>,
}

impl RedisStore {
    /// Connects to the Redis at `url` (e.g. `redis://127.0.0.1:6379/`): one connection for
    /// commands (pipelined), one for pub/sub; both reconnect by themselves.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let mut info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)?;
        let redis_settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
        info = info.set_redis_settings(redis_settings);
        let client = redis::Client::open(info)?;
        let settings = || {
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500))
        };
        let commands = ConnectionManager::new_with_config(client.clone(), settings()).await?;
        let (push, pushes) = mpsc::unbounded_channel();
        let mut subscriber =
            ConnectionManager::new_with_config(client, settings().set_push_sender(push).set_automatic_resubscription())
                .await?;
        let node: Arc<str> = token_to_hex(&random_token().map_err(|e| StoreError::Unexpected(e.to_string()))?).into();
        subscriber.subscribe(format!("dws:n:{node}")).await?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                commands,
                subscriber,
                pushes: Mutex::new(Some(pushes)),
                node,
                epoch: Mutex::new(String::new()),
                sent: std::sync::atomic::AtomicU64::new(0),
                claim: Script::new(scripts::CLAIM),
                create: Script::new(scripts::CREATE),
                append_in: Script::new(&scripts::append_in()),
                sync: Script::new(&scripts::sync()),
                end: Script::new(scripts::END),
                deliver: Script::new(scripts::DELIVER),
                publish: Script::new(scripts::PUBLISH),
            }),
        };
        // Loaded once here: a first use by many sessions at once would otherwise fail with NOSCRIPT for each.
        let inner = &store.inner;
        for script in
            [&inner.claim, &inner.create, &inner.append_in, &inner.sync, &inner.end, &inner.deliver, &inner.publish]
        {
            script.prepare_invoke().load_async(&mut store.con()).await?;
        }
        store.check_epoch().await?;
        Ok(store)
    }

    /// Whether Redis answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING").query_async::<()>(&mut self.con()).await?;
        Ok(())
    }

    /// This node's name (random per process).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    fn con(&self) -> Timed {
        self.inner.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Timed(self.inner.commands.clone())
    }

    /// Whether Redis still holds the data this node has seen (its epoch, set once by the first
    /// node): `false` means Redis lost everything (a restart without persistence, a flush), so
    /// every session this node drives is lost. Adopts the new epoch.
    pub(crate) async fn check_epoch(&self) -> Result<bool, StoreError> {
        let fresh = token_to_hex(&random_token().map_err(|e| StoreError::Unexpected(e.to_string()))?);
        let mut con = self.con();
        let (_, epoch): (Value, String) = redis::pipe()
            .cmd("SET")
            .arg("dws:epoch")
            .arg(&fresh)
            .arg("NX")
            .cmd("GET")
            .arg("dws:epoch")
            .query_async(&mut con)
            .await?;
        let mut known = lock(&self.inner.epoch);
        let same = known.is_empty() || *known == epoch;
        *known = epoch;
        Ok(same)
    }

    pub(crate) async fn claim(&self, key: &Key, owner: &Identity, ttl: Duration) -> Result<Claim, StoreError> {
        let reply: Vec<Value> = self
            .inner
            .claim
            .key(&*key.0)
            .key(key.tombstone())
            .arg(&*self.inner.node)
            .arg(owner_name(owner))
            .arg(millis(ttl))
            .invoke_async(&mut self.con())
            .await?;
        let kind = reply.first().map(text).unwrap_or_default();
        match kind.as_str() {
            "missing" => Ok(Claim::Missing),
            "foreign" => Ok(Claim::Foreign),
            "tomb" => Ok(Claim::Tombstone(match reply.get(1).map(text).as_deref() {
                Some("overflow") => WelcomeStatus::LostOverflow,
                Some("refused") => WelcomeStatus::LostRefused,
                _ => WelcomeStatus::LostUnknown,
            })),
            "ok" => {
                let gen = reply.get(1).map(number).unwrap_or(0);
                let fields = match reply.get(2) {
                    Some(Value::Array(fields)) => fields.as_slice(),
                    _ => &[],
                };
                Ok(Claim::Taken(snapshot(gen, fields)))
            }
            other => Err(StoreError::Unexpected(format!("claim: {other}"))),
        }
    }

    /// Stores a new session driven by this node (generation 1).
    pub(crate) async fn create(&self, key: &Key, owner: &Identity, ttl: Duration) -> Result<bool, StoreError> {
        let reply: String = self
            .inner
            .create
            .key(&*key.0)
            .arg(&*self.inner.node)
            .arg(owner_name(owner))
            .arg(millis(ttl))
            .invoke_async(&mut self.con())
            .await?;
        if let Some(name) = owner.name() {
            let _: Result<(), _> =
                redis::cmd("SADD").arg(identity_key(name)).arg(&*key.0).query_async(&mut self.con()).await;
        }
        Ok(reply == "ok")
    }

    pub(crate) async fn append_in(
        &self,
        key: &Key,
        gen: u64,
        ttl: Duration,
        first: u64,
        messages: &[Payload],
    ) -> Result<Outcome, StoreError> {
        let mut invocation = self.inner.append_in.key(&*key.0);
        invocation.arg(&*self.inner.node).arg(gen).arg(millis(ttl)).arg(first);
        for message in messages {
            invocation.arg(encode(message));
        }
        outcome(invocation.invoke_async(&mut self.con()).await?)
    }

    pub(crate) async fn sync(&self, key: &Key, gen: u64, ttl: Duration, step: &Sync) -> Result<Outcome, StoreError> {
        let mut invocation = self.inner.sync.key(&*key.0);
        invocation
            .arg(&*self.inner.node)
            .arg(gen)
            .arg(millis(ttl))
            .arg(step.delivered)
            .arg(step.acked)
            .arg(step.first)
            .arg(step.rooms.len());
        for (room, seq) in &step.rooms {
            invocation.arg(&**room);
            match seq {
                Some(seq) => invocation.arg(*seq),
                None => invocation.arg("-"),
            };
        }
        for message in &step.messages {
            invocation.arg(encode(message));
        }
        outcome(invocation.invoke_async(&mut self.con()).await?)
    }

    /// Ends a session this node drives, leaving a tombstone when `status` says why a resume
    /// must be refused.
    pub(crate) async fn end(
        &self,
        key: &Key,
        gen: u64,
        owner: &Identity,
        status: Option<WelcomeStatus>,
        ttl: Duration,
    ) -> Result<Outcome, StoreError> {
        let status = match status {
            Some(WelcomeStatus::LostOverflow) => "overflow",
            Some(WelcomeStatus::LostRefused) => "refused",
            _ => "",
        };
        let reply = self
            .inner
            .end
            .key(&*key.0)
            .key(key.tombstone())
            .arg(&*self.inner.node)
            .arg(gen)
            .arg(status)
            .arg(millis(ttl))
            .invoke_async(&mut self.con())
            .await?;
        if let Some(name) = owner.name() {
            self.forget_session_of(name, key).await;
        }
        outcome(reply)
    }

    pub(crate) async fn deliver(
        &self,
        key: &Key,
        payload: &Payload,
        limits: durable_ws_core::BufferLimits,
    ) -> Result<Delivered, StoreError> {
        let reply: String = self
            .inner
            .deliver
            .key(&*key.0)
            .arg(encode(payload))
            .arg(limits.max_messages)
            .arg(limits.max_bytes)
            .invoke_async(&mut self.con())
            .await?;
        Ok(match reply.as_str() {
            "forwarded" => Delivered::Forwarded,
            "stored" => Delivered::Stored,
            "full" => Delivered::Full,
            _ => Delivered::Missing,
        })
    }

    /// The sessions of a named identity, on every node.
    pub(crate) async fn sessions_of(&self, name: &str) -> Result<Vec<Key>, StoreError> {
        let keys: Vec<String> = redis::cmd("SMEMBERS").arg(identity_key(name)).query_async(&mut self.con()).await?;
        Ok(keys.into_iter().map(|key| Key(key.into())).collect())
    }

    pub(crate) async fn forget_session_of(&self, name: &str, key: &Key) {
        let _: Result<(), _> =
            redis::cmd("SREM").arg(identity_key(name)).arg(&*key.0).query_async(&mut self.con()).await;
    }

    /// Numbers and stores a room message, and announces it to every node.
    pub(crate) async fn publish(&self, room: &str, payload: &Payload, history: usize) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .publish
            .key(room_key(room))
            .arg(encode(payload))
            .arg(history)
            .arg(room)
            .invoke_async(&mut self.con())
            .await?)
    }

    /// The number of room `room`'s last message (0 for none).
    pub(crate) async fn room_seq(&self, room: &str) -> Result<u64, StoreError> {
        let seq: Option<u64> = redis::cmd("HGET").arg(room_key(room)).arg("seq").query_async(&mut self.con()).await?;
        Ok(seq.unwrap_or(0))
    }

    /// Room messages `from ..= to` (`None` where the history no longer holds one).
    pub(crate) async fn room_range(&self, room: &str, from: u64, to: u64) -> Result<Vec<Option<Payload>>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(room_key(room));
        for seq in from..=to {
            cmd.arg(format!("l:{seq}"));
        }
        let values: Vec<Option<Vec<u8>>> = cmd.query_async(&mut self.con()).await?;
        Ok(values.into_iter().map(|value| value.and_then(|bytes| decode(&bytes))).collect())
    }

    pub(crate) async fn subscribe_room(&self, room: &str) -> Result<(), StoreError> {
        let mut subscriber = self.inner.subscriber.clone();
        Ok(subscriber.subscribe(format!("dws:rc:{room}")).await?)
    }
}

/// A pub/sub message for this node.
#[derive(Debug)]
pub(crate) enum Notice {
    /// Another node took session `key` over with generation `gen`.
    Kick { key: Key, gen: u64 },
    /// A message for session `key`, which this node drives.
    Send { key: Key, payload: Payload },
    /// Room message `seq`.
    Room { room: Arc<str>, seq: u64, payload: Payload },
    /// The pub/sub connection dropped: notices may have been missed.
    Reconnected,
}

impl Notice {
    pub(crate) fn parse(push: PushInfo) -> Option<Notice> {
        match push.kind {
            redis::PushKind::Disconnection => return Some(Notice::Reconnected),
            redis::PushKind::Message => {}
            _ => return None,
        }
        let channel = text(push.data.first()?);
        let Value::BulkString(body) = push.data.get(1)? else { return None };
        if let Some(room) = channel.strip_prefix("dws:rc:") {
            let split = body.iter().position(|&b| b == b'\n')?;
            let seq = std::str::from_utf8(&body[..split]).ok()?.parse().ok()?;
            return Some(Notice::Room { room: room.into(), seq, payload: decode(&body[split + 1..])? });
        }
        let mut parts = body.splitn(3, |&b| b == b'\n');
        let kind = parts.next()?;
        let key = Key(std::str::from_utf8(parts.next()?).ok()?.into());
        let rest = parts.next()?;
        match kind {
            b"kick" => Some(Notice::Kick { key, gen: std::str::from_utf8(rest).ok()?.parse().ok()? }),
            b"send" => Some(Notice::Send { key, payload: decode(rest)? }),
            _ => None,
        }
    }
}

fn owner_name(owner: &Identity) -> String {
    match owner.name() {
        Some(name) => format!("={name}"),
        None => "~".into(),
    }
}

fn identity_key(name: &str) -> String {
    format!("dws:u:{{{name}}}")
}

fn room_key(room: &str) -> String {
    format!("dws:r:{{{room}}}")
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().clamp(1, u64::MAX as u128) as u64
}

/// A payload in Redis: one byte of kind (`b` binary, `t` text), then the bytes.
fn encode(payload: &Payload) -> Vec<u8> {
    let (kind, bytes) = match payload {
        Payload::Binary(bytes) => (b'b', bytes.as_ref()),
        Payload::Text(text) => (b't', text.as_bytes()),
    };
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(kind);
    out.extend_from_slice(bytes);
    out
}

fn decode(bytes: &[u8]) -> Option<Payload> {
    match bytes.split_first()? {
        (b'b', rest) => Some(Payload::from(rest.to_vec())),
        (b't', rest) => Some(Payload::from(String::from_utf8(rest.to_vec()).ok()?)),
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Int(n) => n.to_string(),
        _ => String::new(),
    }
}

fn number(value: &Value) -> u64 {
    text(value).parse().unwrap_or(0)
}

fn outcome(reply: String) -> Result<Outcome, StoreError> {
    match reply.as_str() {
        "ok" => Ok(Outcome::Done),
        "fenced" => Ok(Outcome::Fenced),
        "regen" => Ok(Outcome::Regen),
        "missing" => Ok(Outcome::Missing),
        other => Err(StoreError::Unexpected(other.into())),
    }
}

fn snapshot(gen: u64, fields: &[Value]) -> Snapshot {
    let mut snapshot = Snapshot { gen, ..Snapshot::default() };
    let (mut out, mut delivered) = (0, 0);
    let mut outs = std::collections::BTreeMap::new();
    let mut ins = std::collections::BTreeMap::new();
    for pair in fields.chunks_exact(2) {
        let name = text(&pair[0]);
        let raw = match &pair[1] {
            Value::BulkString(bytes) => bytes.as_slice(),
            _ => &[],
        };
        match name.as_str() {
            "out" => out = number(&pair[1]),
            "ack" => snapshot.acked = number(&pair[1]),
            "in" => snapshot.stored_in = number(&pair[1]),
            "dlv" => delivered = number(&pair[1]),
            _ => {
                if let Some(seq) = name.strip_prefix("o:").and_then(|n| n.parse::<u64>().ok()) {
                    outs.insert(seq, raw.to_vec());
                } else if let Some(seq) = name.strip_prefix("i:").and_then(|n| n.parse::<u64>().ok()) {
                    ins.insert(seq, raw.to_vec());
                } else if let Some(room) = name.strip_prefix("r:") {
                    snapshot.rooms.push((room.into(), number(&pair[1])));
                }
            }
        }
    }
    // Contiguous by construction; a hole would be storage corruption: stop before it.
    for seq in snapshot.acked + 1..=out {
        match outs.remove(&seq).as_deref().and_then(decode) {
            Some(payload) => snapshot.unconfirmed.push(Arc::new(payload)),
            None => break,
        }
    }
    snapshot.delivered = delivered;
    for seq in delivered + 1..=snapshot.stored_in {
        if let Some(payload) = ins.remove(&seq).as_deref().and_then(decode) {
            snapshot.undelivered.push((seq, payload));
        }
    }
    snapshot
}

/// The command connection, each round trip counted and timed in the metrics.
struct Timed(ConnectionManager);

impl redis::aio::ConnectionLike for Timed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let reply = self.0.req_packed_command(cmd).await;
            crate::metrics::store_round_trip(started.elapsed());
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let reply = self.0.req_packed_commands(pipeline, offset, count).await;
            crate::metrics::store_round_trip(started.elapsed());
            reply
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
