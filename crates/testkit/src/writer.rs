//! A task that owns the sending half of a WebSocket, so a connection's reader never waits on
//! its writes (two peers both blocked writing would deadlock).

use futures_util::{Sink, SinkExt};
use tokio::sync::mpsc;

/// Writes queued messages in order, batching whatever is ready into one flush. Returns after a
/// close message (`is_close`), when the queue is closed, or on the first write error.
pub(crate) async fn write_loop<S, M>(mut sink: S, mut queue: mpsc::UnboundedReceiver<M>, is_close: fn(&M) -> bool)
where
    S: Sink<M> + Unpin,
{
    while let Some(message) = queue.recv().await {
        let mut closing = is_close(&message);
        if sink.feed(message).await.is_err() {
            return;
        }
        while !closing {
            let Ok(message) = queue.try_recv() else { break };
            closing = is_close(&message);
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
}
