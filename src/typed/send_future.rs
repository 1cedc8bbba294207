//! The future returned by `send`: resolves when the server acknowledged the message.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::engine::AckWaiter;
use crate::error::Error;

/// Resolves with `Ok` once the server confirmed the message, or with the reason it never will
/// be. Dropping it does not cancel the send.
#[derive(Debug)]
#[must_use = "the message is sent either way; await the future to learn whether the server acknowledged it"]
pub struct SendFuture {
    slot: Rc<RefCell<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    result: Option<Result<(), Error>>,
    waker: Option<Waker>,
}

impl SendFuture {
    /// A pending future and the waiter that settles it.
    pub(crate) fn pending() -> (SendFuture, AckWaiter) {
        let slot = Rc::new(RefCell::new(Slot::default()));
        let settle = slot.clone();
        let waiter: AckWaiter = Box::new(move |result| {
            let waker = {
                let mut slot = settle.borrow_mut();
                slot.result = Some(result);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        (SendFuture { slot }, waiter)
    }

    /// A future already settled with `result`.
    pub(crate) fn ready(result: Result<(), Error>) -> SendFuture {
        SendFuture { slot: Rc::new(RefCell::new(Slot { result: Some(result), waker: None })) }
    }
}

impl Future for SendFuture {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.borrow_mut();
        match slot.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
