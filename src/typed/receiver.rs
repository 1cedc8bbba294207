//! The receiving half: a `Stream` of events.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Output};
use crate::typed::{Codec, Json, SocketEvent};

/// Events waiting for the receiver. Unbounded while the [`Receiver`] lives (a browser socket
/// cannot be paused: an application that keeps it and stops polling keeps every message here);
/// once it is dropped, events are discarded, so a [`Sender`](super::Sender) kept alone holds none.
#[derive(Default)]
pub(crate) struct EventQueue {
    outputs: RefCell<VecDeque<Output>>,
    waker: RefCell<Option<Waker>>,
    /// The receiver was dropped: nobody will ever read an event.
    unread: Cell<bool>,
}

impl EventQueue {
    /// Adds an output and wakes the receiver (drops it if there is no receiver any more).
    pub(crate) fn push(&self, output: Output) {
        if self.unread.get() {
            return;
        }
        self.outputs.borrow_mut().push_back(output);
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Events waiting to be read.
    pub(crate) fn len(&self) -> usize {
        self.outputs.borrow().len()
    }
}

/// The stream of [`SocketEvent`]s; it ends after `Closed { will_reconnect: false }`.
///
/// Events wait here until they are read. Dropping the receiver while keeping the
/// [`Sender`](super::Sender) discards every event from then on (including those not read yet).
#[must_use = "events wait until the stream is read; drop the receiver to discard them"]
pub struct Receiver<In, C = Json> {
    // Keeps the socket running while events are read.
    _engine: Rc<Engine>,
    queue: Rc<EventQueue>,
    ended: Cell<bool>,
    _types: PhantomData<fn() -> (In, C)>,
}

impl<In, C> Receiver<In, C> {
    pub(crate) fn new(engine: Rc<Engine>, queue: Rc<EventQueue>) -> Self {
        Receiver { _engine: engine, queue, ended: Cell::new(false), _types: PhantomData }
    }
}

impl<In, C> Drop for Receiver<In, C> {
    fn drop(&mut self) {
        self.queue.unread.set(true);
        let unread = std::mem::take(&mut *self.queue.outputs.borrow_mut());
        drop(unread);
        self.queue.waker.borrow_mut().take();
    }
}

impl<In, C> fmt::Debug for Receiver<In, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("queued", &self.queue.len()).field("ended", &self.ended.get()).finish()
    }
}

impl<In: DeserializeOwned, C: Codec> Stream for Receiver<In, C> {
    type Item = SocketEvent<In>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.queue.outputs.borrow_mut().pop_front();
        match next {
            Some(output) => {
                if matches!(output, Output::Closed { will_reconnect: false, .. }) {
                    self.ended.set(true);
                }
                Poll::Ready(Some(SocketEvent::from_output::<C>(output)))
            }
            None if self.ended.get() => Poll::Ready(None),
            None => {
                *self.queue.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
