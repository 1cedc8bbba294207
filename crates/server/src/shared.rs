//! Driving sessions kept in Redis (feature `redis`). The core endpoint stays this node's working
//! copy of the sessions it drives; Redis is the truth every node shares:
//! - a resume first *claims* the session in Redis (bumping its generation, which fences the node
//!   that drove it before and kicks that node's connection), restoring it here if needed;
//! - a client message is acknowledged only once stored, and handed to the application after;
//! - an own message is transmitted only once stored (a per-session journal task stores what the
//!   application queued, the client's acknowledgements and the application's progress, in one
//!   step); what the application sent before a crash is therefore either stored or never seen;
//! - rooms have one order in Redis; each node feeds its own members from it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_ws_core::server::{EndReason, Restored, SessionId};
use durable_ws_core::{close_code, Millis, Payload, Token, WelcomeStatus};
use tokio::sync::{mpsc, watch, Notify};

use crate::auth::Identity;
use crate::connection::{NewSession, Spawn};
use crate::durable::{lock, Durable, Slot, State};
use crate::redis::{Claim, Delivered, Key, Notice, Outcome, RedisStore, Snapshot, Sync};
use crate::session::{Incoming, Progress};
use crate::socket::Ending;
use crate::stats::Counters;

/// Most own messages stored in one step.
const BATCH: usize = 256;
/// How long a step waits after Redis failed before it tries again.
const RETRY: Duration = Duration::from_millis(200);

/// This node's side of the Redis store.
pub(crate) struct Shared {
    pub store: RedisStore,
    feeds: Mutex<HashMap<Arc<str>, mpsc::UnboundedSender<FeedOp>>>,
}

impl Shared {
    pub fn new(store: RedisStore) -> Shared {
        Shared { store, feeds: Mutex::new(HashMap::new()) }
    }
}

/// What a session kept in Redis has on the node that drives it.
#[derive(Debug)]
pub(crate) struct Stored {
    pub key: Key,
    /// The ownership generation this node holds.
    pub gen: u64,
    /// Highest client message stored: acknowledgements stop there.
    pub stored_in: u64,
    /// Highest own message stored: transmission stops there.
    pub stored_out: u64,
    synced_ack: u64,
    synced_processed: u64,
    /// Wakes the journal task.
    pub journal: Arc<Notify>,
    /// Room messages appended but not recorded yet: (own seq, room, room seq).
    room_marks: VecDeque<(u64, Arc<str>, u64)>,
    /// Rooms joined (`Some(position)`) or left (`None`), not recorded yet.
    room_changes: Vec<(Arc<str>, Option<u64>)>,
    /// The last room message appended, per room joined.
    cursors: HashMap<Arc<str>, u64>,
}

impl Stored {
    fn new(key: Key, gen: u64, stored_in: u64, stored_out: u64, acked: u64, processed: u64) -> Stored {
        Stored {
            key,
            gen,
            stored_in,
            stored_out,
            synced_ack: acked,
            synced_processed: processed,
            journal: Arc::new(Notify::new()),
            room_marks: VecDeque::new(),
            room_changes: Vec::new(),
            cursors: HashMap::new(),
        }
    }
}

fn shared(durable: &Durable) -> &Shared {
    durable.inner.shared.as_ref().expect("only called with a Redis store")
}

fn unavailable(error: impl std::fmt::Display, durable: &Durable) -> Ending {
    Counters::add(&durable.inner.counters.store_errors, 1);
    tracing::warn!(%error, "session storage unavailable");
    Ending::close(close_code::TRY_AGAIN_LATER, "session storage unavailable")
}

/// Before the endpoint answers a resume: claims the session in Redis and makes this node's copy
/// of it current (restored from Redis, or told why it cannot be resumed).
pub(crate) async fn claim(durable: &Durable, identity: &Identity, token: Token, spawn: &Spawn) -> Result<(), Ending> {
    let key = Key::of(&token);
    let ttl = durable.inner.config.session_ttl;
    let claim = shared(durable).store.claim(&key, identity, ttl).await.map_err(|e| unavailable(e, durable))?;
    let now = durable.inner.clock.now();
    let mut state = lock(&durable.inner.state);
    let local = state.keys.get(&key).copied();
    if let (Some(id), Claim::Taken(snapshot)) = (local, &claim) {
        let stored = state.slots.get_mut(&id).and_then(|slot| slot.stored.as_mut());
        if let Some(stored) = stored.filter(|stored| stored.gen + 1 == snapshot.gen) {
            // Nobody drove it since: this node's copy is current.
            stored.gen = snapshot.gen;
            return Ok(());
        }
    }
    if let Some(id) = local {
        // Another node drove it meanwhile, or Redis no longer has it.
        let reason = if matches!(claim, Claim::Missing) { EndReason::Expired } else { EndReason::Moved };
        state.endpoint.end(now, id, reason);
        durable.settle(&mut state);
    }
    match claim {
        Claim::Taken(snapshot) => restore(durable, &mut state, now, token, key, identity, snapshot, spawn),
        Claim::Tombstone(status) => state.endpoint.remember_dropped(now, token, status),
        Claim::Foreign => state.endpoint.remember_dropped(now, token, WelcomeStatus::LostRefused),
        Claim::Missing => {}
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn restore(
    durable: &Durable,
    state: &mut State,
    now: Millis,
    token: Token,
    key: Key,
    identity: &Identity,
    snapshot: Snapshot,
    spawn: &Spawn,
) {
    let stored_out = snapshot.acked.saturating_add(snapshot.unconfirmed.len() as u64);
    let restored = Restored { acked: snapshot.acked, unconfirmed: snapshot.unconfirmed, delivered: snapshot.stored_in };
    let Some(id) = state.endpoint.restore(now, token, identity.clone(), restored) else { return };
    state.endpoint.set_ack_limit(now, id, snapshot.stored_in);
    state.endpoint.set_send_limit(id, stored_out);
    let (inbound, inbound_rx) = mpsc::channel(durable.inner.config.inbound_queue.max(snapshot.undelivered.len() + 1));
    Counters::add(&durable.inner.counters.redelivered, snapshot.undelivered.len() as u64);
    for (seq, payload) in snapshot.undelivered {
        let _ = inbound.try_send(Incoming::Redelivered(seq, payload));
    }
    let (progress, progress_rx) = watch::channel(Progress { acked: snapshot.acked, ended: None });
    let processed = Arc::new(AtomicU64::new(snapshot.delivered));
    let mut stored =
        Stored::new(key.clone(), snapshot.gen, snapshot.stored_in, stored_out, snapshot.acked, snapshot.delivered);
    let mut rooms = std::collections::HashSet::new();
    for (room, cursor) in &snapshot.rooms {
        stored.cursors.insert(room.clone(), *cursor);
        rooms.insert(room.clone());
    }
    let journal = stored.journal.clone();
    state.slots.insert(
        id,
        Slot {
            inbound,
            progress,
            wake: Arc::new(Notify::new()),
            rooms,
            seen: Default::default(),
            processed: processed.clone(),
            ack_clock: Default::default(),
            stored: Some(stored),
        },
    );
    state.keys.insert(key, id);
    state.identities.entry(identity.clone()).or_default().insert(id);
    for (room, _) in &snapshot.rooms {
        state.rooms.entry(room.clone()).or_default().insert(id);
    }
    tracing::info!(session = %id, "session restored from redis");
    spawn(NewSession {
        durable: durable.clone(),
        id,
        identity: identity.clone(),
        status: WelcomeStatus::Resumed,
        inbound: inbound_rx,
        progress: progress_rx,
        processed,
    });
    for (room, _) in snapshot.rooms {
        feed(durable, &room).send(FeedOp::Restore(id)).ok();
    }
    tokio::spawn(run_journal(durable.clone(), id, journal));
}

/// A session the endpoint just created (under the state lock): nothing goes out or is
/// acknowledged until it is stored.
pub(crate) fn created(state: &mut State, now: Millis, id: SessionId) {
    state.endpoint.set_ack_limit(now, id, 0);
    state.endpoint.set_send_limit(id, 0);
    let Some(record) = state.endpoint.record(id) else { return };
    let key = Key::of(&record.token);
    if let Some(slot) = state.slots.get_mut(&id) {
        slot.stored = Some(Stored::new(key.clone(), 1, 0, 0, 0, 0));
    }
    state.keys.insert(key, id);
}

/// Stores the session just created; its client hears of it only after this.
pub(crate) async fn store_created(durable: &Durable, id: SessionId, identity: &Identity) -> Result<(), Ending> {
    let (key, journal) = {
        let state = lock(&durable.inner.state);
        let Some(stored) = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()) else { return Ok(()) };
        (stored.key.clone(), stored.journal.clone())
    };
    let result = shared(durable).store.create(&key, identity, durable.inner.config.session_ttl).await;
    match result {
        Ok(true) => {
            tokio::spawn(run_journal(durable.clone(), id, journal));
            Ok(())
        }
        failed => {
            let now = durable.inner.clock.now();
            let mut state = lock(&durable.inner.state);
            // Forget it here without touching Redis (it is not ours there).
            state.endpoint.end(now, id, EndReason::Moved);
            durable.settle(&mut state);
            Err(match failed {
                Err(error) => unavailable(error, durable),
                _ => Ending::close(close_code::INTERNAL_ERROR, "session token collision"),
            })
        }
    }
}

/// Stores client messages `first ..` before they are acknowledged.
pub(crate) async fn store_input(
    durable: &Durable,
    id: SessionId,
    first: u64,
    messages: &[Payload],
) -> Result<(), Ending> {
    let last = first + messages.len() as u64 - 1;
    let ttl = durable.inner.config.session_ttl;
    for _ in 0..50 {
        let (key, gen, stored_in) = {
            let state = lock(&durable.inner.state);
            let Some(stored) = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()) else { return Ok(()) };
            (stored.key.clone(), stored.gen, stored.stored_in)
        };
        if last <= stored_in {
            return Ok(());
        }
        let skip = stored_in.saturating_sub(first - 1) as usize;
        let result = shared(durable).store.append_in(&key, gen, ttl, first + skip as u64, &messages[skip..]).await;
        let now = durable.inner.clock.now();
        let mut state = lock(&durable.inner.state);
        match result {
            Ok(Outcome::Done) => {
                if let Some(stored) = state.slots.get_mut(&id).and_then(|slot| slot.stored.as_mut()) {
                    stored.stored_in = stored.stored_in.max(last);
                }
                state.endpoint.set_ack_limit(now, id, last);
                return Ok(());
            }
            Ok(Outcome::Regen) => {
                drop(state);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Outcome::Fenced) => {
                drop(state);
                moved(durable, id);
                return Err(Ending::close(close_code::SUPERSEDED, "session moved to another node"));
            }
            Ok(Outcome::Missing) => {
                state.endpoint.end(now, id, EndReason::Expired);
                durable.settle(&mut state);
                return Err(Ending::close(close_code::SESSION_EXPIRED, "session lost by the storage"));
            }
            Err(error) => {
                // Not stored, so not acknowledged: forget them; the client sends them again.
                state.endpoint.rewind_inbound(id, stored_in);
                return Err(unavailable(error, durable));
            }
        }
    }
    let mut state = lock(&durable.inner.state);
    let stored_in = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()).map_or(first - 1, |s| s.stored_in);
    state.endpoint.rewind_inbound(id, stored_in);
    Err(Ending::close(close_code::TRY_AGAIN_LATER, "session being taken over"))
}

/// Another node drives session `id` now: forget it here, and hand what it queued but did not
/// store yet to the session where it lives.
fn moved(durable: &Durable, id: SessionId) {
    let now = durable.inner.clock.now();
    let mut state = lock(&durable.inner.state);
    let Some(stored) = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()) else { return };
    let (key, from) = (stored.key.clone(), stored.stored_out + 1);
    let to = state.endpoint.sequence(id).map_or(0, |sequence| sequence.queued);
    let unstored: Vec<_> = (from..=to).filter_map(|seq| state.endpoint.queued(id, seq)).collect();
    state.endpoint.end(now, id, EndReason::Moved);
    durable.settle(&mut state);
    drop(state);
    Counters::add(&durable.inner.counters.sessions_moved, 1);
    tracing::info!(session = %id, unstored = unstored.len(), "session moved to another node");
    if !unstored.is_empty() {
        let durable = durable.clone();
        tokio::spawn(async move {
            for payload in unstored {
                deliver_remote(&durable, &key, &payload).await;
            }
        });
    }
}

/// Hands `payload` to session `key`, wherever it is driven (or stores it if nowhere).
async fn deliver_remote(durable: &Durable, key: &Key, payload: &Payload) -> bool {
    let limits = durable.inner.config.buffer;
    loop {
        match shared(durable).store.deliver(key, payload, limits).await {
            Ok(outcome) => return matches!(outcome, Delivered::Forwarded | Delivered::Stored),
            Err(error) => {
                Counters::add(&durable.inner.counters.store_errors, 1);
                tracing::warn!(%error, "cannot hand a message to another node yet");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A session ended here for good (not moved): Redis forgets it too, leaving a tombstone when a
/// resume must learn why.
pub(crate) fn ended(durable: &Durable, state: &mut State, stored: Stored, owner: Identity, reason: EndReason) {
    state.keys.remove(&stored.key);
    if reason == EndReason::Moved {
        return;
    }
    let status = match reason {
        EndReason::Overflow => Some(WelcomeStatus::LostOverflow),
        EndReason::ProtocolErrors => Some(WelcomeStatus::LostRefused),
        _ => None,
    };
    let durable = durable.clone();
    tokio::spawn(async move {
        let ttl = durable.inner.config.session_ttl;
        if let Err(error) = shared(&durable).store.end(&stored.key, stored.gen, &owner, status, ttl).await {
            // Redis expires it after the TTL anyway.
            Counters::add(&durable.inner.counters.store_errors, 1);
            tracing::warn!(%error, "cannot end a session in redis");
        }
    });
}

/// The per-session task that stores what the application queued, what the client acknowledged
/// and what the application processed, and keeps the session alive in Redis.
async fn run_journal(durable: Durable, id: SessionId, journal: Arc<Notify>) {
    let refresh = (durable.inner.config.session_ttl / 3).max(Duration::from_secs(1));
    let mut next_refresh = tokio::time::Instant::now() + refresh;
    let mut failures = 0u32;
    loop {
        match sync_once(&durable, id, false).await {
            Step::Gone => return,
            Step::Stored => {
                failures = 0;
                next_refresh = tokio::time::Instant::now() + refresh;
            }
            Step::Failed => {
                // Redis is away: every session waits longer each time (at most 5 s), not in step.
                failures = failures.saturating_add(1);
                tokio::time::sleep((RETRY * 2u32.saturating_pow(failures.min(5))).min(Duration::from_secs(5))).await;
                continue;
            }
            Step::Idle => {
                tokio::select! {
                    _ = journal.notified() => {}
                    _ = tokio::time::sleep_until(next_refresh) => {
                        if matches!(sync_once(&durable, id, true).await, Step::Gone) {
                            return;
                        }
                        next_refresh = tokio::time::Instant::now() + refresh;
                    }
                }
            }
        }
    }
}

enum Step {
    Stored,
    Idle,
    Failed,
    Gone,
}

async fn sync_once(durable: &Durable, id: SessionId, refresh: bool) -> Step {
    let (key, gen, step) = {
        let mut state = lock(&durable.inner.state);
        let state = &mut *state;
        let Some(sequence) = state.endpoint.sequence(id) else { return Step::Gone };
        let Some(slot) = state.slots.get_mut(&id) else { return Step::Gone };
        let processed = slot.processed.load(Ordering::Relaxed);
        let Some(stored) = slot.stored.as_mut() else { return Step::Gone };
        let first = stored.stored_out + 1;
        let last = sequence.queued.min(stored.stored_out + BATCH as u64);
        let messages: Vec<_> = (first..=last).map_while(|seq| state.endpoint.queued(id, seq)).collect();
        let last = first + messages.len() as u64 - 1;
        let mut rooms = std::mem::take(&mut stored.room_changes);
        while stored.room_marks.front().is_some_and(|(seq, _, _)| *seq <= last) {
            let (_, room, room_seq) = stored.room_marks.pop_front().expect("checked");
            rooms.retain(|(r, _)| *r != room);
            rooms.push((room, Some(room_seq)));
        }
        let quiet = messages.is_empty()
            && rooms.is_empty()
            && sequence.acked == stored.synced_ack
            && processed == stored.synced_processed;
        if quiet && !refresh {
            return Step::Idle;
        }
        let step = Sync { delivered: processed, acked: sequence.acked, first, messages, rooms };
        (stored.key.clone(), stored.gen, step)
    };
    let result = shared(durable).store.sync(&key, gen, durable.inner.config.session_ttl, &step).await;
    let now = durable.inner.clock.now();
    match result {
        Ok(Outcome::Done) => {
            let mut state = lock(&durable.inner.state);
            let last = step.first + step.messages.len() as u64 - 1;
            let Some(slot) = state.slots.get_mut(&id) else { return Step::Gone };
            let Some(stored) = slot.stored.as_mut() else { return Step::Gone };
            stored.stored_out = stored.stored_out.max(last);
            stored.synced_ack = stored.synced_ack.max(step.acked);
            stored.synced_processed = stored.synced_processed.max(step.delivered);
            let limit = stored.stored_out;
            slot.wake.notify_one();
            state.endpoint.set_send_limit(id, limit);
            Step::Stored
        }
        Ok(Outcome::Fenced) => {
            moved(durable, id);
            Step::Gone
        }
        Ok(Outcome::Regen) => {
            // This node's own claim is under way: it updates the generation, or replaces this copy.
            tokio::time::sleep(Duration::from_millis(10)).await;
            Step::Stored
        }
        Ok(Outcome::Missing) => {
            let mut state = lock(&durable.inner.state);
            tracing::warn!(session = %id, "session lost by the storage (expired, evicted or flushed)");
            state.endpoint.end(now, id, EndReason::Expired);
            durable.settle(&mut state);
            Step::Gone
        }
        Err(error) => {
            Counters::add(&durable.inner.counters.store_errors, 1);
            tracing::debug!(session = %id, %error, "cannot store the session's progress yet");
            let mut state = lock(&durable.inner.state);
            if let Some(stored) = state.slots.get_mut(&id).and_then(|slot| slot.stored.as_mut()) {
                // The room changes and the marks taken for this step go again with the next one.
                let mut changes: Vec<_> = step.rooms.into_iter().collect();
                changes.append(&mut stored.room_changes);
                stored.room_changes = changes;
            }
            Step::Failed
        }
    }
}

/// Stores every session's progress now (at shutdown), twice: what the applications queue while
/// the first pass runs goes with the second.
pub(crate) async fn flush(durable: &Durable) {
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ids: Vec<_> = lock(&durable.inner.state).slots.keys().copied().collect();
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let durable = durable.clone();
                tokio::spawn(async move { while let Step::Stored = sync_once(&durable, id, false).await {} })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Sends to every session of a named identity on other nodes; returns at once.
pub(crate) fn send_to_identity_elsewhere(durable: &Durable, name: &str, payload: Payload) {
    let durable = durable.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        let keys = match shared(&durable).store.sessions_of(&name).await {
            Ok(keys) => keys,
            Err(error) => {
                Counters::add(&durable.inner.counters.store_errors, 1);
                tracing::warn!(%error, "cannot list an identity's sessions");
                return;
            }
        };
        for key in keys {
            if lock(&durable.inner.state).keys.contains_key(&key) {
                continue;
            }
            let limits = durable.inner.config.buffer;
            if let Ok(Delivered::Missing) = shared(&durable).store.deliver(&key, &payload, limits).await {
                shared(&durable).store.forget_session_of(&name, &key).await;
            }
        }
    });
}

/// What a room's feed task does, in order.
pub(crate) enum FeedOp {
    /// A local session joins (from the room's current position).
    Join(SessionId),
    /// A session restored here: it catches up from its own position.
    Restore(SessionId),
    Leave(SessionId),
    Publish(Arc<Payload>),
    Message(u64, Payload),
    /// Notices may have been missed: every member catches up.
    Resync,
}

/// The feed of room `name` on this node (started on first use).
pub(crate) fn feed(durable: &Durable, name: &Arc<str>) -> mpsc::UnboundedSender<FeedOp> {
    let mut feeds = lock(&shared(durable).feeds);
    feeds
        .entry(name.clone())
        .or_insert_with(|| {
            let (ops, ops_rx) = mpsc::unbounded_channel();
            tokio::spawn(run_feed(durable.clone(), name.clone(), ops_rx));
            ops
        })
        .clone()
}

/// One room on this node: publishes its sessions' messages (numbered in Redis: one order on
/// every node) and appends each room message to each local member, in that order, once.
async fn run_feed(durable: Durable, room: Arc<str>, mut ops: mpsc::UnboundedReceiver<FeedOp>) {
    let store = shared(&durable).store.clone();
    while let Err(error) = store.subscribe_room(&room).await {
        Counters::add(&durable.inner.counters.store_errors, 1);
        tracing::warn!(%error, %room, "cannot subscribe to a room yet");
        tokio::time::sleep(RETRY).await;
    }
    let history = durable.inner.config.buffer.max_messages;
    let mut members = BTreeSet::new();
    while let Some(op) = ops.recv().await {
        match op {
            FeedOp::Join(id) => {
                let seq = retry(&durable, || store.room_seq(&room)).await;
                let mut state = lock(&durable.inner.state);
                if let Some(slot) = state.slots.get_mut(&id) {
                    if let Some(stored) = slot.stored.as_mut() {
                        if !stored.cursors.contains_key(&room) {
                            stored.cursors.insert(room.clone(), seq);
                            stored.room_changes.push((room.clone(), Some(seq)));
                            stored.journal.notify_one();
                        }
                        members.insert(id);
                    }
                }
            }
            FeedOp::Restore(id) => {
                members.insert(id);
                let upto = retry(&durable, || store.room_seq(&room)).await;
                catch_up(&durable, &store, &room, id, upto).await;
            }
            FeedOp::Leave(id) => {
                members.remove(&id);
                let mut state = lock(&durable.inner.state);
                if let Some(stored) = state.slots.get_mut(&id).and_then(|slot| slot.stored.as_mut()) {
                    stored.cursors.remove(&room);
                    stored.room_changes.push((room.clone(), None));
                    stored.journal.notify_one();
                }
            }
            FeedOp::Publish(payload) => {
                retry(&durable, || store.publish(&room, &payload, history)).await;
            }
            FeedOp::Message(seq, payload) => {
                let payload = Arc::new(payload);
                for id in members.clone() {
                    if !catch_up(&durable, &store, &room, id, seq - 1).await {
                        members.remove(&id);
                        continue;
                    }
                    if !append(&durable, &room, id, seq, payload.clone()) {
                        members.remove(&id);
                    }
                }
            }
            FeedOp::Resync => {
                let upto = retry(&durable, || store.room_seq(&room)).await;
                for id in members.clone() {
                    if !catch_up(&durable, &store, &room, id, upto).await {
                        members.remove(&id);
                    }
                }
            }
        }
    }
}

async fn retry<T, F, Fut>(durable: &Durable, mut step: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::redis::StoreError>>,
{
    loop {
        match step().await {
            Ok(value) => return value,
            Err(error) => {
                Counters::add(&durable.inner.counters.store_errors, 1);
                tracing::warn!(%error, "room step failed; trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Appends the room messages member `id` lacks up to `upto`, from the room's history; false if
/// the member is gone (or dropped: the history no longer holds what it lacks).
async fn catch_up(durable: &Durable, store: &RedisStore, room: &Arc<str>, id: SessionId, upto: u64) -> bool {
    let cursor = {
        let state = lock(&durable.inner.state);
        let Some(stored) = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()) else { return false };
        let Some(&cursor) = stored.cursors.get(room) else { return false };
        cursor
    };
    if cursor >= upto {
        return true;
    }
    let missing = retry(durable, || store.room_range(room, cursor + 1, upto)).await;
    for (seq, payload) in (cursor + 1..).zip(missing) {
        let Some(payload) = payload else {
            tracing::warn!(session = %id, %room, "room history no longer holds what a member lacks: session dropped");
            let now = durable.inner.clock.now();
            let mut state = lock(&durable.inner.state);
            state.endpoint.end(now, id, EndReason::Overflow);
            durable.settle(&mut state);
            return false;
        };
        if !append(durable, room, id, seq, Arc::new(payload)) {
            return false;
        }
    }
    true
}

/// Appends room message `seq` to member `id` if it is the next one it lacks.
fn append(durable: &Durable, room: &Arc<str>, id: SessionId, seq: u64, payload: Arc<Payload>) -> bool {
    let now = durable.inner.clock.now();
    let mut state = lock(&durable.inner.state);
    let Some(cursor) = state.slots.get(&id).and_then(|slot| slot.stored.as_ref()).and_then(|s| s.cursors.get(room))
    else {
        return false;
    };
    if seq != cursor + 1 {
        return true;
    }
    let len = payload.len();
    match state.send(now, id, payload) {
        Ok(own) => {
            if let Some(stored) = state.slots.get_mut(&id).and_then(|slot| slot.stored.as_mut()) {
                stored.cursors.insert(room.clone(), seq);
                stored.room_marks.push_back((own, room.clone(), seq));
            }
            Counters::add(&durable.inner.counters.messages_out, 1);
            crate::metrics::bytes(durable_ws_core::server::metrics::direction::OUT, len);
            true
        }
        Err(crate::SendError::Full) => {
            state.endpoint.end(now, id, EndReason::Overflow);
            durable.settle(&mut state);
            false
        }
        Err(_) => false,
    }
}

/// Reads this node's pub/sub notices and watches Redis's epoch, for as long as `durable` lives.
pub(crate) fn start(durable: &Durable) {
    let Some(mut pushes) = lock(&shared(durable).store.inner.pushes).take() else { return };
    let weak = Arc::downgrade(&durable.inner);
    tokio::spawn(async move {
        while let Some(push) = pushes.recv().await {
            let Some(inner) = weak.upgrade() else { return };
            let durable = Durable { inner };
            if let Some(notice) = Notice::parse(push) {
                handle_notice(&durable, notice).await;
            }
        }
    });
    let weak = Arc::downgrade(&durable.inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(inner) = weak.upgrade() else { return };
            check_epoch(&Durable { inner }).await;
        }
    });
}

async fn handle_notice(durable: &Durable, notice: Notice) {
    match notice {
        Notice::Kick { key, gen } => {
            let stale =
                {
                    let state = lock(&durable.inner.state);
                    state.keys.get(&key).copied().filter(|id| {
                        state.slots.get(id).and_then(|slot| slot.stored.as_ref()).is_some_and(|s| s.gen < gen)
                    })
                };
            if let Some(id) = stale {
                moved(durable, id);
            }
        }
        Notice::Send { key, payload } => {
            let now = durable.inner.clock.now();
            let local = {
                let mut state = lock(&durable.inner.state);
                match state.keys.get(&key).copied() {
                    Some(id) => match state.send(now, id, Arc::new(payload)) {
                        Ok(_) => None,
                        Err(_) => return,
                    },
                    None => Some(payload),
                }
            };
            if let Some(payload) = local {
                // It left this node meanwhile: after it.
                let durable = durable.clone();
                tokio::spawn(async move { deliver_remote(&durable, &key, &payload).await });
            }
        }
        Notice::Room { room, seq, payload } => {
            if let Some(feed) = lock(&shared(durable).feeds).get(&room) {
                let _ = feed.send(FeedOp::Message(seq, payload));
            }
        }
        Notice::Reconnected => {
            tracing::warn!("redis pub/sub reconnected: catching up");
            check_epoch(durable).await;
            for feed in lock(&shared(durable).feeds).values() {
                let _ = feed.send(FeedOp::Resync);
            }
        }
    }
}

/// If Redis lost its data, every session driven here is lost: their clients learn it (4004, then
/// `sessionlost` with what they never had confirmed), never a silent gap.
async fn check_epoch(durable: &Durable) {
    match shared(durable).store.check_epoch().await {
        Ok(true) => {}
        Ok(false) => {
            tracing::error!("redis lost its data (restart without persistence, or flush): every session here is lost");
            let now = durable.inner.clock.now();
            let mut state = lock(&durable.inner.state);
            for id in state.endpoint.ids() {
                state.endpoint.end(now, id, EndReason::Expired);
            }
            durable.settle(&mut state);
        }
        Err(error) => {
            Counters::add(&durable.inner.counters.store_errors, 1);
            // Once a second while Redis is away: the node's one line about it (sessions log at debug).
            tracing::warn!(%error, "redis unavailable");
        }
    }
}
