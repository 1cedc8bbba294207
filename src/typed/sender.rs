//! The sending half: `send` futures and a `Sink` with backpressure.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use durable_ws_core::{ClientState, Payload, SendError};
use futures_sink::Sink;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::Error;
use crate::stats::Stats;
use crate::typed::receiver::EventQueue;
use crate::typed::{Codec, Json, SendFuture};

/// Sends `Out` values. As a [`Sink`], `poll_ready` waits while the replay buffer is full,
/// `poll_flush` waits until every message is confirmed, `poll_close` closes the socket.
pub struct Sender<Out, C = Json> {
    engine: Rc<Engine>,
    /// The receiver's queue: only to tell how many events wait in it.
    events: Rc<EventQueue>,
    /// A message accepted by `start_send` that waits for room in the replay buffer.
    parked: Option<Payload>,
    close_requested: bool,
    _types: PhantomData<fn(Out, C)>,
}

impl<Out: Serialize, C: Codec> Sender<Out, C> {
    pub(crate) fn new(engine: Rc<Engine>, events: Rc<EventQueue>) -> Self {
        Sender { engine, events, parked: None, close_requested: false, _types: PhantomData }
    }

    /// Sends `message` now (queued while disconnected); the future resolves when the server
    /// acknowledged it. Fails at once with [`Error::Send`] (`BufferFull`, `TooLarge`, `Closed`)
    /// or [`Error::Encode`]; later with [`Error::Unconfirmed`] if the session is lost first.
    pub fn send(&self, message: Out) -> SendFuture {
        let payload = match C::encode(&message) {
            Ok(payload) => payload,
            Err(error) => return SendFuture::ready(Err(error)),
        };
        let (future, waiter) = SendFuture::pending();
        match self.engine.send(payload, Some(waiter)) {
            Ok(_) => future,
            Err(error) => SendFuture::ready(Err(error)),
        }
    }

    /// Closes for good: waits (up to the close timeout) for outstanding acknowledgements, says
    /// goodbye, closes with `code` (1000 or 3000–4999) and `reason` (at most 123 bytes). Any
    /// other code or a longer reason fails with [`Error::InvalidClose`] and closes nothing, as
    /// the browser's `WebSocket.close` (and the JS API's `close`) would throw.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.engine.close(code, reason)
    }

    /// Reconnects at once instead of waiting for the backoff delay (also after the attempt
    /// limit was reached).
    pub fn reconnect_now(&self) -> Result<(), Error> {
        self.engine.reconnect_now()
    }

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        self.engine.state()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// The session token in hex, once a durable session exists. It is a credential: for tests
    /// and diagnostics that address this session on the server, not for logs.
    #[doc(hidden)]
    pub fn session_token_hex(&self) -> Option<String> {
        self.engine.session_token_hex()
    }

    /// Events received and not read yet (none once the [`Receiver`](super::Receiver) is dropped).
    /// For tests and diagnostics.
    #[doc(hidden)]
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// Sends `payload` if it fits (or can never fit better: the error is the answer), else parks it.
    fn offer(&mut self, payload: Payload) -> Result<(), Error> {
        if self.engine.has_room(payload.len()) || self.engine.stats().pending == 0 {
            self.engine.send(payload, None).map(drop)
        } else {
            self.parked = Some(payload);
            Ok(())
        }
    }

    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(payload) = self.parked.take() {
            self.offer(payload)?;
            if self.parked.is_some() {
                self.engine.wake_on_progress(cx.waker());
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<Out, C> fmt::Debug for Sender<Out, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("state", &self.engine.state())
            .field("stats", &self.engine.stats())
            .field("parked", &self.parked.is_some())
            .finish()
    }
}

impl<Out: Serialize, C: Codec> Sink<Out> for Sender<Out, C> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.poll_parked(cx)?.is_pending() {
            return Poll::Pending;
        }
        if this.engine.state() == ClientState::Closed {
            return Poll::Ready(Err(Error::Send(SendError::Closed)));
        }
        if !this.engine.has_room(0) && this.engine.stats().pending > 0 {
            this.engine.wake_on_progress(cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Out) -> Result<(), Error> {
        let this = self.get_mut();
        let payload = C::encode(&message)?;
        if this.parked.is_some() {
            // `poll_ready` was skipped: refuse rather than reorder or grow without bound.
            return Err(Error::NotReady);
        }
        this.offer(payload)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.poll_parked(cx)?.is_pending() {
            return Poll::Pending;
        }
        if this.engine.stats().pending == 0 || this.engine.state() == ClientState::Closed {
            return Poll::Ready(Ok(()));
        }
        this.engine.wake_on_progress(cx.waker());
        Poll::Pending
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.as_mut().poll_flush(cx)?.is_pending() {
            return Poll::Pending;
        }
        let this = self.get_mut();
        if !this.close_requested {
            this.close_requested = true;
            this.engine.close(durable_ws_core::close_code::NORMAL, "")?;
        }
        if this.engine.state() == ClientState::Closed {
            return Poll::Ready(Ok(()));
        }
        this.engine.wake_on_progress(cx.waker());
        Poll::Pending
    }
}
