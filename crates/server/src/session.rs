//! What a session handler works with: [`Session`] (typed `recv` and `send`, rooms, lifecycle),
//! [`SessionHandle`] (a cloneable sender for other tasks) and [`Delivery`] (resolves on the
//! client's acknowledgement).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use durable_ws_core::server::{EndReason, SessionId};
use durable_ws_core::{Payload, WelcomeStatus};
use tokio::sync::{mpsc, watch};

use crate::auth::Identity;
use crate::codec::{CodecError, Decode, Encode, Json};
use crate::durable::{lock, Durable};
use crate::room::Room;

/// A message could not be queued for the client. Nothing was queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session's replay buffer for its client is full (it is not reading, or not
    /// acknowledging): wait for [`Delivery`]s to resolve, or give up on this client.
    #[error("the client's replay buffer is full")]
    Full,
    /// The payload exceeds the message size limit.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The session ended (goodbye, expiry, overflow).
    #[error("the session ended")]
    Ended,
    /// The value could not be encoded.
    #[error(transparent)]
    Encode(CodecError),
}

/// A queued message was not confirmed by the client: the session ended first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session ended ({reason:?}) before the client confirmed message {seq}")]
pub struct Unconfirmed {
    /// The message's sequence number.
    pub seq: u64,
    /// Why the session ended.
    pub reason: EndReason,
}

/// How a session ended, with every message its client never confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct EndInfo {
    /// Why.
    pub reason: EndReason,
    /// `(sequence number, payload)` of each unconfirmed message, in order.
    pub unconfirmed: Vec<(u64, Payload)>,
}

/// The acknowledgement state every [`Delivery`] of a session watches.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub acked: u64,
    pub ended: Option<Arc<EndInfo>>,
}

/// What the connection hands to the session's application.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// Client message `seq`.
    Message(u64, Payload),
    /// Client message `seq`, stored by a node that crashed before recording that its application
    /// had processed it: perhaps delivered before.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Redelivered(u64, Payload),
    Resumed,
    Disconnected,
}

/// What happened to a session, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent<In> {
    /// A message from the client (exactly once, in order).
    Message(In),
    /// A message from the client that may have been delivered before, with its sequence number
    /// (the session's client messages are numbered from 1): with shared storage, the node that
    /// delivered it crashed before recording that its application had processed it. Every
    /// message that comes before it was processed, every one after it is new; an application
    /// that must not process one twice remembers the last `seq` it processed.
    Redelivered {
        /// The message's sequence number.
        seq: u64,
        /// The message.
        message: In,
    },
    /// A message that the codec could not decode (it was delivered: it is not re-sent).
    Undecodable {
        /// The message as received.
        payload: Payload,
        /// Why it could not be decoded.
        error: CodecError,
    },
    /// The client came back on a new connection and the session resumed.
    Resumed,
    /// The connection dropped; the session waits for a resume until its TTL.
    Disconnected,
}

/// Sends to one session from anywhere; cheap to clone. `C` encodes the values sent.
pub struct SessionHandle<C = Json> {
    durable: Durable,
    id: SessionId,
    codec: PhantomData<fn() -> C>,
}

impl<C> Clone for SessionHandle<C> {
    fn clone(&self) -> Self {
        SessionHandle { durable: self.durable.clone(), id: self.id, codec: PhantomData }
    }
}

impl<C> std::fmt::Debug for SessionHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").field("id", &self.id).finish()
    }
}

impl<C> SessionHandle<C> {
    pub(crate) fn new(durable: Durable, id: SessionId) -> Self {
        SessionHandle { durable, id, codec: PhantomData }
    }

    /// The session's id (not a credential).
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The same session with another codec.
    pub fn with_codec<D>(&self) -> SessionHandle<D> {
        SessionHandle::new(self.durable.clone(), self.id)
    }

    /// Queues `value` for the client: it is delivered once, in order, across reconnects. The
    /// [`Delivery`] resolves when the client acknowledged it (awaiting it is optional).
    pub fn send<T>(&self, value: &T) -> Result<Delivery, SendError>
    where
        C: Encode<T>,
    {
        self.send_payload(C::encode(value).map_err(SendError::Encode)?)
    }

    /// Queues a payload as it is.
    pub fn send_payload(&self, payload: Payload) -> Result<Delivery, SendError> {
        let progress = {
            let state = lock(&self.durable.inner.state);
            state.slots.get(&self.id).map(|slot| slot.progress.subscribe())
        };
        let progress = progress.ok_or(SendError::Ended)?;
        let seq = self.durable.send_payload(self.id, payload)?;
        Ok(Delivery { seq, progress, wait: None })
    }

    /// Ends the session: a goodbye goes out after everything queued, then the client stops.
    pub fn end(&self) {
        let now = self.durable.inner.clock.now();
        let mut state = lock(&self.durable.inner.state);
        state.endpoint.goodbye(now, self.id);
        if let Some(slot) = state.slots.get(&self.id) {
            slot.wake.notify_one();
        }
        self.durable.settle(&mut state);
    }

    /// Drops the session because its client cannot keep up (e.g. after [`SendError::Full`]):
    /// its connection closes with 1013 and the client's resume gets `LostOverflow`, with every
    /// message it never confirmed. Never a silent gap.
    pub fn evict(&self) {
        let now = self.durable.inner.clock.now();
        let mut state = lock(&self.durable.inner.state);
        state.endpoint.end(now, self.id, EndReason::Overflow);
        self.durable.settle(&mut state);
    }

    /// Whether the session is still live.
    pub fn is_live(&self) -> bool {
        lock(&self.durable.inner.state).slots.contains_key(&self.id)
    }
}

type AckWait = Pin<Box<dyn Future<Output = Result<(), Unconfirmed>> + Send>>;

/// Resolves when the client acknowledged the message, or fails with [`Unconfirmed`] if the
/// session ended first (the message is then among the session's unconfirmed ones).
#[must_use = "a Delivery does nothing unless awaited (the message is queued either way)"]
pub struct Delivery {
    seq: u64,
    progress: watch::Receiver<Progress>,
    wait: Option<AckWait>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("seq", &self.seq).finish()
    }
}

impl Delivery {
    /// The message's sequence number in its session.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Future for Delivery {
    type Output = Result<(), Unconfirmed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        if self.wait.is_none() {
            let mut progress = self.progress.clone();
            self.wait = Some(Box::pin(async move {
                let outcome = progress.wait_for(|p| p.acked >= seq || p.ended.is_some()).await;
                match outcome {
                    Ok(p) if p.acked >= seq => Ok(()),
                    Ok(p) => {
                        Err(Unconfirmed { seq, reason: p.ended.as_ref().map_or(EndReason::Expired, |e| e.reason) })
                    }
                    // The session's state is gone without an end: treat as expired.
                    Err(_) => Err(Unconfirmed { seq, reason: EndReason::Expired }),
                }
            }));
        }
        self.wait.as_mut().expect("set above").as_mut().poll(cx)
    }
}

/// One session, as its handler sees it: created when a client starts a session (or its old one
/// could not be resumed), it lives across reconnects until the client says goodbye or the
/// session expires. `In` is what the client sends, `Out` what the server sends, `C` the codec
/// ([`Json`] by default; [`Raw`](crate::Raw) with `Payload` for bytes as they are).
///
/// When the handler returns, the session lives on (rooms and handles still reach it); messages
/// the client sends after that are acknowledged and dropped.
pub struct Session<In, Out = In, C = Json> {
    handle: SessionHandle<C>,
    identity: Identity,
    status: WelcomeStatus,
    inbound: mpsc::Receiver<Incoming>,
    progress: watch::Receiver<Progress>,
    /// The last client message the application finished with (it asked for the next one).
    processed: Arc<std::sync::atomic::AtomicU64>,
    /// The last client message handed over.
    taken: u64,
    types: PhantomData<fn(Out) -> In>,
}

impl<In, Out, C> std::fmt::Debug for Session<In, Out, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.handle.id)
            .field("identity", &self.identity)
            .field("status", &self.status)
            .finish()
    }
}

impl<In, Out, C> Session<In, Out, C> {
    pub(crate) fn new(
        durable: Durable,
        id: SessionId,
        identity: Identity,
        status: WelcomeStatus,
        inbound: mpsc::Receiver<Incoming>,
        progress: watch::Receiver<Progress>,
        processed: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Session {
            handle: SessionHandle::new(durable, id),
            identity,
            status,
            inbound,
            progress,
            processed,
            taken: 0,
            types: PhantomData,
        }
    }

    /// The session's id (not a credential: safe to log and to store).
    pub fn id(&self) -> SessionId {
        self.handle.id
    }

    /// Who the session belongs to (from the request's [`Identity`] extension; anonymous when
    /// the app sets none). Only this identity can resume it.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// How the session started: `New`, or the `Lost*` status of the session the client asked to
    /// resume (its client got `sessionlost` for that one).
    pub fn started_as(&self) -> WelcomeStatus {
        self.status
    }

    /// A cloneable sender for this session, for other tasks.
    pub fn handle(&self) -> SessionHandle<C> {
        self.handle.clone()
    }

    /// Joins room `name` (created if needed).
    pub fn join(&self, name: &str) {
        self.room(name).join(self.handle.id);
    }

    /// Leaves room `name`.
    pub fn leave(&self, name: &str) {
        self.room(name).leave(self.handle.id);
    }

    /// Room `name`, with this session's codec.
    pub fn room(&self, name: &str) -> Room<C> {
        Room::new(self.handle.durable.clone(), name.into())
    }

    /// Ends the session with a goodbye (see [`SessionHandle::end`]).
    pub fn end(&self) {
        self.handle.end();
    }

    /// How the session ended, once it did (after `recv` returned `None`).
    pub fn ended(&self) -> Option<Arc<EndInfo>> {
        self.progress.borrow().ended.clone()
    }

    /// Queues `value` for the client (see [`SessionHandle::send`]).
    pub fn send(&self, value: &Out) -> Result<Delivery, SendError>
    where
        C: Encode<Out>,
    {
        self.handle.send(value)
    }

    /// The next event: a message, a resume, a disconnect; `None` once the session ended
    /// (then [`ended`](Self::ended) says why).
    pub async fn next(&mut self) -> Option<SessionEvent<In>>
    where
        C: Decode<In>,
    {
        // Asking for the next message means the application is done with the previous one (what it
        // sent meanwhile is queued): shared storage records it, and a crash after that does not
        // deliver it again.
        self.processed.fetch_max(self.taken, std::sync::atomic::Ordering::Relaxed);
        Some(match self.inbound.recv().await? {
            Incoming::Message(seq, payload) => {
                self.taken = seq;
                match C::decode(&payload) {
                    Ok(message) => SessionEvent::Message(message),
                    Err(error) => SessionEvent::Undecodable { payload, error },
                }
            }
            Incoming::Redelivered(seq, payload) => {
                self.taken = seq;
                match C::decode(&payload) {
                    Ok(message) => SessionEvent::Redelivered { seq, message },
                    Err(error) => SessionEvent::Undecodable { payload, error },
                }
            }
            Incoming::Resumed => SessionEvent::Resumed,
            Incoming::Disconnected => SessionEvent::Disconnected,
        })
    }

    /// The next message from the client, exactly once and in order; `None` once the session
    /// ended. Messages the codec cannot decode are logged and skipped (see [`next`](Self::next)).
    pub async fn recv(&mut self) -> Option<In>
    where
        C: Decode<In>,
    {
        loop {
            match self.next().await? {
                SessionEvent::Message(message) | SessionEvent::Redelivered { message, .. } => return Some(message),
                SessionEvent::Undecodable { error, .. } => {
                    tracing::warn!(session = %self.handle.id, %error, "message skipped: cannot decode it");
                }
                SessionEvent::Resumed | SessionEvent::Disconnected => {}
            }
        }
    }
}
