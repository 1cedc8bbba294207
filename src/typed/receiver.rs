//! The receiving half: a `Stream` of events.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::engine::{Engine, Output};
use crate::typed::{Codec, DefaultCodec, SocketEvent};

/// Events waiting for the receiver. Unbounded: a browser socket cannot be paused, so an
/// application that stops polling keeps every message here.
#[derive(Default)]
pub(crate) struct EventQueue {
    outputs: RefCell<VecDeque<Output>>,
    waker: RefCell<Option<Waker>>,
}

impl EventQueue {
    /// Adds an output and wakes the receiver.
    pub(crate) fn push(&self, output: Output) {
        self.outputs.borrow_mut().push_back(output);
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The stream of [`SocketEvent`]s; it ends after `Closed { will_reconnect: false }`.
pub struct Receiver<In, C = DefaultCodec> {
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
