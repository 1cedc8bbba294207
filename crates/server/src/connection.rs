//! The durable connection driver: the `Hello` handshake, then a loop that feeds the core
//! endpoint with received messages, deadlines and wake-ups, writes what it produces, and hands
//! the session's messages to its application (waiting when the application is behind).

use std::sync::Arc;

use durable_ws_core::frame::Frame;
use durable_ws_core::server::metrics::direction;
use durable_ws_core::server::{policy, Accepted, InputError, Refused, ServerEvent, SessionId};
use durable_ws_core::{close_code, MessageKind, PayloadRef, Token, WelcomeStatus};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::auth::Identity;
use crate::durable::{lock, Durable, Slot};
use crate::registry::Control;
use crate::session::{Incoming, Progress};
use crate::socket::{Dropped, Ending, Gate, Input, Socket};
use crate::stats::Counters;
use crate::token::random_token;

/// Starts the application of a new session.
pub(crate) type Spawn = Arc<dyn Fn(NewSession) + Send + Sync>;

/// What a session's application starts from.
pub(crate) struct NewSession {
    pub durable: Durable,
    pub id: SessionId,
    pub identity: Identity,
    pub status: WelcomeStatus,
    pub inbound: mpsc::Receiver<Incoming>,
    pub progress: watch::Receiver<Progress>,
    pub processed: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs one durable connection to its end. The session outlives it unless the client said
/// goodbye or the session was dropped.
pub(crate) async fn run(durable: Durable, mut socket: Socket, identity: Identity, spawn: Spawn) {
    let ending = match handshake(&mut socket, &durable).await {
        Ok(resume) => attach_and_drive(&mut socket, &durable, identity, resume, &spawn).await,
        Err(ending) => ending,
    };
    socket.end(ending, &durable.inner.counters).await;
}

/// Waits for the first frame, which must be a `Hello`.
async fn handshake(socket: &mut Socket, durable: &Durable) -> Result<Option<(Token, u64)>, Ending> {
    let hello = read_hello(socket, durable).await;
    if matches!(hello, Err(Ending::Close(..))) {
        crate::metrics::refused(durable_ws_core::server::metrics::handshake::MALFORMED);
    }
    hello
}

async fn read_hello(socket: &mut Socket, durable: &Durable) -> Result<Option<(Token, u64)>, Ending> {
    let input = timeout(durable.inner.config.handshake_timeout, socket.next(None, None, Gate::Open)).await;
    let Ok(input) = input else {
        return Err(Ending::close(close_code::PROTOCOL_ERROR, "no hello in time"));
    };
    match input {
        Input::Message(Message::Binary(bytes)) => match Frame::decode(&bytes) {
            Ok(Frame::Hello { resume }) => Ok(resume),
            Ok(_) => Err(Ending::close(close_code::PROTOCOL_ERROR, "first frame must be hello")),
            Err(error) => Err(Ending::Close(close_code::PROTOCOL_ERROR, format!("malformed hello: {error}").into())),
        },
        Input::Message(_) => Err(Ending::close(close_code::PROTOCOL_ERROR, "first frame must be binary hello")),
        other => Err(Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost))),
    }
}

/// Answers the `Hello` and registers a new session (starting its application).
fn open(
    durable: &Durable,
    conn: u64,
    identity: &Identity,
    resume: Option<(Token, u64)>,
    spawn: &Spawn,
) -> Result<(Accepted, Arc<Notify>, mpsc::Sender<Incoming>), Ending> {
    let now = durable.inner.clock.now();
    let mut state = lock(&durable.inner.state);
    let accepted = loop {
        let fresh = random_token().map_err(|error| {
            tracing::error!(%error, "cannot draw a session token");
            Ending::close(close_code::INTERNAL_ERROR, "no randomness")
        })?;
        match state.endpoint.hello(now, conn, identity.clone(), resume, fresh) {
            Err(Refused::TokenInUse) => continue,
            Err(refused) => {
                durable.settle(&mut state);
                crate::metrics::refused_session(&refused);
                tracing::warn!(%refused, "session refused");
                let reason = match refused {
                    Refused::OwnerQuota => "too many sessions for this identity",
                    Refused::Budget => "server busy: buffer budget spent",
                    _ => "too many sessions",
                };
                return Err(Ending::close(close_code::TRY_AGAIN_LATER, reason));
            }
            Ok(accepted) => break accepted,
        }
    };
    durable.settle(&mut state);
    let counters = &durable.inner.counters;
    crate::metrics::handshake(accepted.status, accepted.foreign);
    match accepted.status {
        WelcomeStatus::New => tracing::info!(session = %accepted.id, "session created"),
        WelcomeStatus::Resumed => {
            Counters::add(&counters.resumes, 1);
            tracing::info!(session = %accepted.id, "session resumed");
        }
        status => {
            Counters::add(&counters.sessions_lost, 1);
            if accepted.foreign {
                tracing::warn!(session = %accepted.id, "resume refused: the session belongs to another identity; new session created");
            } else {
                tracing::info!(session = %accepted.id, ?status, "resume impossible: session lost; new session created");
            }
        }
    }
    if let Some(old) = accepted.superseded {
        durable
            .inner
            .connections
            .send(old, Control::Close(close_code::SUPERSEDED, "superseded: session resumed on another connection"));
    }
    if accepted.created {
        let (inbound, inbound_rx) = mpsc::channel(durable.inner.config.inbound_queue);
        let (progress, progress_rx) = watch::channel(Progress::default());
        let wake = Arc::new(Notify::new());
        let processed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        state.slots.insert(
            accepted.id,
            Slot {
                inbound: inbound.clone(),
                progress,
                wake: wake.clone(),
                rooms: Default::default(),
                seen: Default::default(),
                ack_clock: Default::default(),
                processed: processed.clone(),
                #[cfg(feature = "redis")]
                stored: None,
            },
        );
        state.identities.entry(identity.clone()).or_default().insert(accepted.id);
        #[cfg(feature = "redis")]
        if durable.inner.shared.is_some() {
            crate::shared::created(&mut state, now, accepted.id);
        }
        drop(state);
        spawn(NewSession {
            durable: durable.clone(),
            id: accepted.id,
            identity: identity.clone(),
            status: accepted.status,
            inbound: inbound_rx,
            progress: progress_rx,
            processed,
        });
        return Ok((accepted, wake, inbound));
    }
    let slot = state.slots.get(&accepted.id).expect("a live session has a slot");
    let _ = slot.inbound.try_send(Incoming::Resumed);
    Ok((accepted, slot.wake.clone(), slot.inbound.clone()))
}

async fn attach_and_drive(
    socket: &mut Socket,
    durable: &Durable,
    identity: Identity,
    resume: Option<(Token, u64)>,
    spawn: &Spawn,
) -> Ending {
    let conn = socket.id();
    #[cfg(feature = "redis")]
    if let (Some(_), Some((token, _))) = (&durable.inner.shared, resume) {
        if let Err(ending) = crate::shared::claim(durable, &identity, token, spawn).await {
            return ending;
        }
    }
    let (accepted, wake, inbound) = match open(durable, conn, &identity, resume, spawn) {
        Ok(opened) => opened,
        Err(ending) => return ending,
    };
    let id = accepted.id;
    #[cfg(feature = "redis")]
    if accepted.created && durable.inner.shared.is_some() {
        if let Err(ending) = crate::shared::store_created(durable, id, &identity).await {
            return ending;
        }
    }
    let ending = drive(socket, durable, id, &wake, &inbound).await;
    let now = durable.inner.clock.now();
    let mut state = lock(&durable.inner.state);
    let was_attached = state.endpoint.record(id).is_some_and(|record| record.attached == Some(conn));
    state.endpoint.detach(now, id, conn);
    durable.settle(&mut state);
    drop(state);
    if was_attached {
        let _ = inbound.try_send(Incoming::Disconnected);
        durable.inner.sweep.notify_one();
    }
    ending
}

/// The loop: write, hand over, wait for one input, until the connection ends.
async fn drive(
    socket: &mut Socket,
    durable: &Durable,
    id: SessionId,
    wake: &Notify,
    inbound: &mpsc::Sender<Incoming>,
) -> Ending {
    let conn = socket.id();
    let inner = &durable.inner;
    let config = &inner.config;
    let mut buf = Vec::new();
    let mut delivered = Vec::new();
    // Sequence number of the first message in `delivered`.
    let mut first = 0;
    let processed = lock(&inner.state).slots.get(&id).map(|slot| slot.processed.clone());
    // An input read ahead while batching, handled next.
    let mut stashed: Option<Input> = None;
    #[allow(unused_mut)]
    let mut batch: Vec<Message> = Vec::new();
    // Since when the outgoing queue has been full (the client is not reading).
    let mut full_since = None;
    loop {
        let deadline = {
            let now = inner.clock.now();
            let mut state = lock(&inner.state);
            if state.endpoint.record(id).is_some_and(|record| record.attached != Some(conn)) {
                // Resumed elsewhere: its events and deadlines are the new connection's.
                return Ending::close(close_code::SUPERSEDED, "superseded: session resumed on another connection");
            }
            let mut dead = false;
            // A frame counts as sent once it is in the bounded outgoing queue: while that is
            // full, nothing more is produced (the replay buffer keeps it, within its bounds).
            while socket.has_room() {
                let Some(kind) = state.endpoint.poll_transmit(now, id, conn, &mut buf) else { break };
                socket.send(match kind {
                    MessageKind::Binary => Message::Binary(std::mem::take(&mut buf).into()),
                    // A server session is always durable: every frame is binary.
                    MessageKind::Text => Message::Text(String::from_utf8_lossy(&buf).into_owned().into()),
                });
            }
            while let Some(event) = state.endpoint.poll_event(id) {
                match event {
                    ServerEvent::Message(payload) => delivered.push(payload),
                    ServerEvent::Acked { seq } => {
                        if let Some(slot) = state.slots.get_mut(&id) {
                            slot.progress.send_modify(|progress| progress.acked = seq);
                            slot.ack_clock.acked(seq, tokio::time::Instant::now());
                        }
                    }
                    ServerEvent::Dead => dead = true,
                }
            }
            if let Some(sequence) = state.endpoint.sequence(id) {
                first = sequence.delivered + 1 - delivered.len() as u64;
                if let Some(slot) = state.slots.get_mut(&id) {
                    slot.ack_clock.sent(sequence.sent, tokio::time::Instant::now());
                }
            }
            if let (Some(stats), Some(slot)) = (state.endpoint.stats(id), state.slots.get_mut(&id)) {
                Counters::add(&inner.counters.replayed, stats.replayed.saturating_sub(slot.seen.replayed));
                Counters::add(
                    &inner.counters.duplicates_dropped,
                    stats.duplicates_dropped.saturating_sub(slot.seen.duplicates_dropped),
                );
                slot.seen = stats;
            }
            durable.settle(&mut state);
            if dead {
                Counters::add(&inner.counters.heartbeat_timeouts, 1);
                return Ending::close(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout");
            }
            state.endpoint.timeout(id).map(|at| tokio::time::Instant::from(inner.clock.instant(at)))
        };
        if !delivered.is_empty() {
            #[cfg(feature = "redis")]
            if inner.shared.is_some() {
                // Acknowledged (and handed over) only once stored.
                if let Err(ending) = crate::shared::store_input(durable, id, first, &delivered).await {
                    return ending;
                }
            }
            Counters::add(&inner.counters.messages_in, delivered.len() as u64);
            crate::metrics::bytes(direction::IN, delivered.iter().map(durable_ws_core::Payload::len).sum());
            let mut waiting: std::collections::VecDeque<_> = (first..).zip(delivered.drain(..)).collect();
            while !waiting.is_empty() {
                // A full inbox stops reading this client until its application catches up (control
                // messages still end the connection meanwhile); a handler that returned (receiver
                // gone) drops what its client sends.
                tokio::select! {
                    permit = inbound.reserve() => {
                        let (seq, payload) = waiting.pop_front().expect("not empty");
                        match permit {
                            Ok(permit) => permit.send(Incoming::Message(seq, payload)),
                            Err(_) => {
                                if let Some(processed) = &processed {
                                    processed.fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    input = socket.next(None, None, Gate::Paused) => {
                        if let Some(ending) = Ending::of(input) {
                            give_back(durable, id, waiting.into_iter().map(|(_, payload)| payload).collect(), inbound);
                            return ending;
                        }
                    }
                }
            }
            continue;
        }
        let at = tokio::time::Instant::now();
        let (gate, deadline) = if socket.has_room() {
            full_since = None;
            (Gate::Open, deadline)
        } else {
            let since = *full_since.get_or_insert(at);
            let give_up = since + config.send_timeout;
            if at >= give_up {
                crate::metrics::limit(durable_ws_core::server::metrics::limit::SLOW_CLIENT);
                return Ending::close(close_code::TRY_AGAIN_LATER, "client too slow: outgoing queue full");
            }
            // Only the give-up deadline: the session's (a due ack) waits for room to transmit.
            (Gate::Writable, Some(give_up))
        };
        let input = match stashed.take() {
            Some(input) => input,
            None => socket.next(deadline, Some(wake), gate).await,
        };
        let now = inner.clock.now();
        match input {
            Input::Message(message) => {
                #[cfg(feature = "redis")]
                if inner.shared.is_some() && gate == Gate::Open {
                    // Messages that already arrived go into one storage step with this one. (Only
                    // with storage: a close frame read this way would lose its reply.)
                    use futures_util::FutureExt;
                    let mut bytes = message.len();
                    while stashed.is_none() && bytes < BATCH_BYTES && inbound.capacity() > 0 {
                        match socket.next(None, None, Gate::Open).now_or_never() {
                            Some(Input::Message(more)) => {
                                bytes += more.len();
                                batch.push(more);
                            }
                            Some(other) => stashed = Some(other),
                            None => break,
                        }
                    }
                }
                let mut state = lock(&inner.state);
                for message in std::iter::once(message).chain(batch.drain(..)) {
                    let payload = match &message {
                        Message::Binary(bytes) => PayloadRef::Binary(bytes),
                        Message::Text(text) => PayloadRef::Text(text.as_str()),
                        _ => continue,
                    };
                    let result = state.endpoint.handle_message(now, id, conn, payload);
                    durable.settle(&mut state);
                    match result {
                        Ok(()) => {}
                        Err(InputError::NotAttached) => return Ending::Drop(Dropped::Lost),
                        Err(InputError::Protocol { error, session_dropped }) => {
                            // The reason tells the client what it did wrong.
                            let suffix =
                                if session_dropped { "; session dropped after repeated protocol errors" } else { "" };
                            return Ending::Close(error.close_code(), close_reason(&format!("{error}{suffix}")));
                        }
                    }
                }
            }
            Input::Deadline => {
                let mut state = lock(&inner.state);
                state.endpoint.handle_session_timeout(now, id, conn);
            }
            Input::Woken => {}
            other => return Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost)),
        }
    }
}

/// Most bytes of client messages read ahead into one storage step.
#[cfg(feature = "redis")]
const BATCH_BYTES: usize = 256 << 10;

/// Messages taken from the core that this connection could not hand over before it ended: back
/// to the front of the session's queue, for the next connection (nothing lost, order kept); if
/// the session ended meanwhile, straight to its application.
fn give_back(durable: &Durable, id: SessionId, rest: Vec<durable_ws_core::Payload>, inbound: &mpsc::Sender<Incoming>) {
    let refused = lock(&durable.inner.state).endpoint.unpoll_messages(id, rest);
    if let Err(rest) = refused {
        let inbound = inbound.clone();
        tokio::spawn(async move {
            for payload in rest {
                let _ = inbound.send(Incoming::Message(0, payload)).await;
            }
        });
    }
}

/// A close reason that fits its frame ([`policy::close_reason`]).
pub(crate) fn close_reason(text: &str) -> Utf8Bytes {
    policy::close_reason(text).into()
}
