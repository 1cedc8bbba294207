//! The storage seam of the server role: where sessions, their expiry deadlines and the tombstones
//! of dropped sessions live. [`MemoryStore`] keeps them in this process.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::frame::{Token, WelcomeStatus};
use crate::session::Session;
use crate::Millis;

use super::{ConnId, SessionId};

/// One session as the server keeps it.
#[derive(Debug)]
pub struct Record<O> {
    pub(crate) session: Session,
    /// The session's token (a credential).
    pub token: Token,
    /// Who created the session: the only owner allowed to resume it.
    pub owner: O,
    /// The connection driving the session, if any.
    pub attached: Option<ConnId>,
    /// When the last connection left (`None` while attached).
    pub detached_at: Option<Millis>,
    /// Connections in a row that ended with a protocol error, with no message delivered between.
    pub(crate) protocol_errors: u32,
}

/// Where an [`Endpoint`](super::Endpoint) keeps its sessions. Every method is a plain, bounded
/// data-structure operation; the decisions are the endpoint's.
pub trait Store<O> {
    /// The session `id`.
    fn get(&self, id: SessionId) -> Option<&Record<O>>;
    /// The session `id`, to change it.
    fn get_mut(&mut self, id: SessionId) -> Option<&mut Record<O>>;
    /// The session holding `token`.
    fn find(&self, token: &Token) -> Option<SessionId>;
    /// Adds a session (its token is not held yet).
    fn insert(&mut self, id: SessionId, record: Record<O>);
    /// Takes a session out, with its expiry deadline.
    fn remove(&mut self, id: SessionId) -> Option<Record<O>>;
    /// Sessions held.
    fn len(&self) -> usize;
    /// Whether no session is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every session id held, in no particular order.
    fn ids(&self) -> Vec<SessionId>;
    /// Sessions held by `owner`.
    fn count_owned_by(&self, owner: &O) -> usize;
    /// Sets (or clears) when session `id` expires.
    fn set_expiry(&mut self, id: SessionId, at: Option<Millis>);
    /// The earliest expiry deadline.
    fn next_expiry(&self) -> Option<(Millis, SessionId)>;
    /// Remembers until `until` that `token`'s session was dropped, and how a resume is answered.
    fn add_tombstone(&mut self, token: Token, status: WelcomeStatus, until: Millis);
    /// How a resume of `token` is answered, if it was dropped recently.
    fn tombstone(&self, token: &Token, now: Millis) -> Option<WelcomeStatus>;
    /// Forgets tombstones older than `now`.
    fn prune_tombstones(&mut self, now: Millis);
}

/// Sessions in this process's memory: hash maps, an ordered set of expiry deadlines, and a
/// bounded list of tombstones. Every operation is O(log n) or better (no scans).
#[derive(Debug)]
pub struct MemoryStore<O> {
    records: HashMap<SessionId, Record<O>>,
    tokens: HashMap<Token, SessionId>,
    owners: HashMap<O, usize>,
    expiries: BTreeSet<(Millis, SessionId)>,
    expiry_of: HashMap<SessionId, Millis>,
    tombstones: HashMap<Token, (WelcomeStatus, Millis)>,
    tombstone_order: VecDeque<(Millis, Token)>,
    max_tombstones: usize,
}

impl<O> MemoryStore<O> {
    /// An empty store keeping at most `max_tombstones` tombstones (the oldest go first).
    pub fn new(max_tombstones: usize) -> Self {
        MemoryStore {
            records: HashMap::new(),
            tokens: HashMap::new(),
            owners: HashMap::new(),
            expiries: BTreeSet::new(),
            expiry_of: HashMap::new(),
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
            max_tombstones,
        }
    }
}

impl<O> Default for MemoryStore<O> {
    fn default() -> Self {
        MemoryStore::new(10_000)
    }
}

impl<O: Clone + Eq + std::hash::Hash> Store<O> for MemoryStore<O> {
    fn get(&self, id: SessionId) -> Option<&Record<O>> {
        self.records.get(&id)
    }

    fn get_mut(&mut self, id: SessionId) -> Option<&mut Record<O>> {
        self.records.get_mut(&id)
    }

    fn find(&self, token: &Token) -> Option<SessionId> {
        self.tokens.get(token).copied()
    }

    fn insert(&mut self, id: SessionId, record: Record<O>) {
        self.tokens.insert(record.token, id);
        *self.owners.entry(record.owner.clone()).or_default() += 1;
        self.records.insert(id, record);
    }

    fn remove(&mut self, id: SessionId) -> Option<Record<O>> {
        let record = self.records.remove(&id)?;
        self.tokens.remove(&record.token);
        if let Some(count) = self.owners.get_mut(&record.owner) {
            *count -= 1;
            if *count == 0 {
                self.owners.remove(&record.owner);
            }
        }
        self.set_expiry(id, None);
        Some(record)
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn ids(&self) -> Vec<SessionId> {
        self.records.keys().copied().collect()
    }

    fn count_owned_by(&self, owner: &O) -> usize {
        self.owners.get(owner).copied().unwrap_or(0)
    }

    fn set_expiry(&mut self, id: SessionId, at: Option<Millis>) {
        if let Some(old) = self.expiry_of.remove(&id) {
            self.expiries.remove(&(old, id));
        }
        if let Some(at) = at {
            self.expiry_of.insert(id, at);
            self.expiries.insert((at, id));
        }
    }

    fn next_expiry(&self) -> Option<(Millis, SessionId)> {
        self.expiries.first().copied()
    }

    fn add_tombstone(&mut self, token: Token, status: WelcomeStatus, until: Millis) {
        if self.max_tombstones == 0 {
            return;
        }
        while self.tombstone_order.len() >= self.max_tombstones {
            if let Some((_, oldest)) = self.tombstone_order.pop_front() {
                self.tombstones.remove(&oldest);
            }
        }
        self.tombstones.insert(token, (status, until));
        self.tombstone_order.push_back((until, token));
    }

    fn tombstone(&self, token: &Token, now: Millis) -> Option<WelcomeStatus> {
        self.tombstones.get(token).filter(|(_, until)| *until > now).map(|(status, _)| *status)
    }

    fn prune_tombstones(&mut self, now: Millis) {
        while self.tombstone_order.front().is_some_and(|(until, _)| *until <= now) {
            if let Some((_, token)) = self.tombstone_order.pop_front() {
                self.tombstones.remove(&token);
            }
        }
    }
}
