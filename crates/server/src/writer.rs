//! A task that owns the sending half of a WebSocket, so a connection's reader never waits on
//! its writes (two peers both blocked writing would deadlock), and the [`Backlog`] that bounds
//! what waits for it.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, Notify};

/// Bytes queued for the writer and not yet taken by the WebSocket (whose own write buffer
/// applies backpressure: it waits for the socket once it holds 128 KiB).
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    /// Fires whenever the writer took something.
    pub progress: Notify,
}

impl Backlog {
    pub fn add(&self, len: usize) {
        self.bytes.fetch_add(len, Ordering::Relaxed);
    }

    fn taken(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        self.progress.notify_one();
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Writes queued messages in order, batching whatever is ready into one flush. Returns after a
/// close message (`is_close`), when the queue is closed, or on the first write error.
pub(crate) async fn write_loop<S, M>(
    mut sink: S,
    mut queue: mpsc::UnboundedReceiver<M>,
    backlog: std::sync::Arc<Backlog>,
    len: fn(&M) -> usize,
    is_close: fn(&M) -> bool,
) where
    S: Sink<M> + Unpin,
{
    while let Some(message) = queue.recv().await {
        let mut closing = is_close(&message);
        let n = len(&message);
        if sink.feed(message).await.is_err() {
            return;
        }
        backlog.taken(n);
        while !closing {
            let Ok(message) = queue.try_recv() else { break };
            closing = is_close(&message);
            let n = len(&message);
            if sink.feed(message).await.is_err() {
                return;
            }
            backlog.taken(n);
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
}
