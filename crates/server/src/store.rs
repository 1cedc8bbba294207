//! The in-memory session store: sessions by token, their TTL once detached, and tombstones of
//! sessions dropped for overflow.
//!
//! Lock order: the map lock is never held while an entry is locked (nor the other way round),
//! so a connection, the sweeper and the admin endpoints can never deadlock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use durable_ws_core::{Millis, Session, SessionConfig, SessionStats, Token, WelcomeStatus};
use tokio::sync::Notify;

use crate::auth::Identity;
use crate::lock;
use crate::registry::ConnId;
use crate::stats::Counters;
use crate::token::random_token;

/// Why a session left the store while a connection may still be using it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Its replay buffer overflowed: close its connection with 1013.
    Overflow,
    /// Forgotten (TTL or `/admin/expire`): drop its connection.
    Expired,
    /// The client said goodbye.
    Ended,
}

/// One session and who is attached to it.
pub(crate) struct Entry {
    pub session: Session,
    pub token: Token,
    /// A number for logs (the token is a credential and is never logged).
    pub id: u64,
    /// Who created the session: the only identity allowed to resume it.
    pub owner: Identity,
    /// The connection currently driving the session.
    pub attached: Option<ConnId>,
    /// When the last connection left (`None` while attached).
    pub detached_at: Option<Instant>,
    /// Set once the session left the store; whoever still holds it must let go.
    pub gone: Option<Gone>,
    /// Wakes the attached connection when something was queued from outside its loop.
    pub wake: Arc<Notify>,
    /// Session counters already added to the server-wide ones.
    pub seen: SessionStats,
}

pub(crate) type EntryRef = Arc<Mutex<Entry>>;

impl Entry {
    fn expired(&self, at: Instant, ttl: Duration) -> bool {
        self.attached.is_none() && self.detached_at.is_some_and(|since| at.duration_since(since) >= ttl)
    }

    /// Detaches connection `conn` if it is still the attached one.
    pub fn detach(&mut self, conn: ConnId, now: Millis) {
        if self.attached == Some(conn) {
            self.session.disconnect(now);
            self.attached = None;
            self.detached_at = Some(Instant::now());
        }
    }
}

/// The session a `Hello` led to.
pub(crate) struct Opened {
    pub entry: EntryRef,
    pub status: WelcomeStatus,
    /// The connection that was attached to a resumed session before (to be kicked out).
    pub superseded: Option<ConnId>,
    /// The requested session exists but belongs to another identity (status `LostRefused`).
    pub foreign: bool,
}

/// Why no session could be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// `max_sessions` are held and none has expired.
    #[error("too many sessions")]
    Full,
    /// The OS random generator failed.
    #[error("no randomness for a token: {0}")]
    Random(getrandom::Error),
}

/// Every session of the server.
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<Token, EntryRef>>,
    overflowed: Mutex<HashMap<Token, Instant>>,
    next_id: AtomicU64,
    ttl: Duration,
    max_sessions: usize,
    config: SessionConfig,
    counters: Arc<Counters>,
}

impl SessionStore {
    pub fn new(config: SessionConfig, ttl: Duration, max_sessions: usize, counters: Arc<Counters>) -> Self {
        SessionStore {
            sessions: Mutex::new(HashMap::new()),
            overflowed: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            ttl,
            max_sessions,
            config,
            counters,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The session with this token, if held.
    pub fn get(&self, token: &Token) -> Option<EntryRef> {
        lock(&self.sessions).get(token).cloned()
    }

    /// Every session held.
    pub fn all(&self) -> Vec<EntryRef> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Answers a `Hello` from connection `conn` of `identity`: resumes the named session if
    /// possible, otherwise creates a new one whose status says why the old one is gone. A
    /// session of another identity is left untouched (`LostRefused`).
    pub fn open(&self, resume: Option<(Token, u64)>, identity: &Identity, conn: ConnId, now: Millis) -> Result<Opened, OpenError> {
        let mut foreign = false;
        let status = match resume {
            None => WelcomeStatus::New,
            Some((token, last_received)) => match self.get(&token) {
                Some(entry) => {
                    let mut e = lock(&entry);
                    if e.gone.is_some() || e.expired(Instant::now(), self.ttl) {
                        WelcomeStatus::LostUnknown
                    } else if e.owner != *identity {
                        foreign = true;
                        WelcomeStatus::LostRefused
                    } else if e.session.resume(now, last_received).is_ok() {
                        let superseded = e.attached.replace(conn);
                        e.detached_at = None;
                        drop(e);
                        return Ok(Opened { entry, status: WelcomeStatus::Resumed, superseded, foreign });
                    } else {
                        WelcomeStatus::LostRefused
                    }
                }
                None if self.was_overflowed(&token) => WelcomeStatus::LostOverflow,
                None => WelcomeStatus::LostUnknown,
            },
        };
        if self.len() >= self.max_sessions {
            self.sweep();
            if self.len() >= self.max_sessions {
                return Err(OpenError::Full);
            }
        }
        let mut sessions = lock(&self.sessions);
        let token = loop {
            let token = random_token().map_err(OpenError::Random)?;
            if !sessions.contains_key(&token) {
                break token;
            }
        };
        let entry = Arc::new(Mutex::new(Entry {
            session: Session::server(self.config.clone(), token, status, now),
            token,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            owner: identity.clone(),
            attached: Some(conn),
            detached_at: None,
            gone: None,
            wake: Arc::new(Notify::new()),
            seen: SessionStats::default(),
        }));
        sessions.insert(token, entry.clone());
        Ok(Opened { entry, status, superseded: None, foreign })
    }

    /// Takes the session out of the store for `reason` and wakes its connection (which then
    /// sees it gone). False if it had already left.
    pub fn remove(&self, entry: &EntryRef, reason: Gone) -> bool {
        self.remove_if(entry, reason, |_| true)
    }

    /// Like [`remove`](Self::remove), if `condition` holds under the entry's lock.
    fn remove_if(&self, entry: &EntryRef, reason: Gone, condition: impl FnOnce(&Entry) -> bool) -> bool {
        let (token, session) = {
            let mut e = lock(entry);
            if e.gone.is_some() || !condition(&e) {
                return false;
            }
            e.gone = Some(reason);
            e.wake.notify_one();
            (e.token, e.id)
        };
        {
            let mut sessions = lock(&self.sessions);
            if sessions.get(&token).is_some_and(|held| Arc::ptr_eq(held, entry)) {
                sessions.remove(&token);
            }
        }
        match reason {
            Gone::Overflow => {
                tracing::warn!(session, "session dropped: replay buffer overflow (its client gets lost/overflow)");
                Counters::add(&self.counters.sessions_overflowed, 1);
                let mut overflowed = lock(&self.overflowed);
                // Tombstones are a courtesy (LostOverflow instead of LostUnknown): bounded.
                if overflowed.len() < self.max_sessions {
                    overflowed.insert(token, Instant::now());
                }
            }
            Gone::Expired => {
                tracing::info!(session, "session expired");
                Counters::add(&self.counters.sessions_expired, 1);
            }
            Gone::Ended => tracing::info!(session, "session ended: the client said goodbye"),
        }
        true
    }

    /// Forgets every session detached for longer than the TTL, and old tombstones.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut expired = 0;
        for entry in self.all() {
            if self.remove_if(&entry, Gone::Expired, |e| e.expired(now, self.ttl)) {
                expired += 1;
            }
        }
        lock(&self.overflowed).retain(|_, at| now.duration_since(*at) < self.ttl);
        expired
    }

    fn was_overflowed(&self, token: &Token) -> bool {
        lock(&self.overflowed).get(token).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// How often the sweeper should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}
