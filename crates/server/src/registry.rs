//! Every live WebSocket connection, so that faults, session takeovers and shutdown can reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::lock;

/// Identifies one connection for the life of the process.
pub(crate) use durable_ws_core::server::ConnId;

/// What the server tells a connection to do, from outside its own loop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub(crate) enum Control {
    /// Drop the connection abruptly: no close frame (a simulated network cut).
    Cut,
    /// Stop reading and sending for this long (a simulated half-open link).
    Stall(Duration),
    /// Close the connection with this code (shutdown, overflow).
    Close(u16, &'static str),
    /// A goodbye went out or came in: wait for the client's close, then close.
    AwaitClose(crate::socket::AwaitClient),
}

struct Registry {
    next_id: ConnId,
    senders: HashMap<ConnId, mpsc::UnboundedSender<Control>>,
    shutting_down: bool,
}

/// The live connections.
pub(crate) struct Connections {
    inner: Mutex<Registry>,
    count: watch::Sender<usize>,
}

/// A registered connection; dropping it unregisters it.
pub(crate) struct ConnGuard {
    pub id: ConnId,
    pub control: mpsc::UnboundedReceiver<Control>,
    connections: Arc<Connections>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut inner = lock(&self.connections.inner);
        inner.senders.remove(&self.id);
        let len = inner.senders.len();
        drop(inner);
        self.connections.count.send_replace(len);
    }
}

impl Connections {
    pub fn new() -> Self {
        Connections {
            inner: Mutex::new(Registry { next_id: 1, senders: HashMap::new(), shutting_down: false }),
            count: watch::Sender::new(0),
        }
    }

    /// Registers a new connection; `None` once shutdown began (the caller closes with 1012).
    pub fn register(self: &Arc<Self>) -> Option<ConnGuard> {
        let mut inner = lock(&self.inner);
        if inner.shutting_down {
            return None;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        inner.senders.insert(id, tx);
        let len = inner.senders.len();
        drop(inner);
        self.count.send_replace(len);
        Some(ConnGuard { id, control: rx, connections: self.clone() })
    }

    /// Sends `control` to one connection; false if it is gone.
    pub fn send(&self, id: ConnId, control: Control) -> bool {
        lock(&self.inner).senders.get(&id).is_some_and(|tx| tx.send(control).is_ok())
    }

    /// Sends `control` to every connection; returns how many got it.
    pub fn broadcast(&self, control: Control) -> usize {
        let inner = lock(&self.inner);
        inner.senders.values().filter(|tx| tx.send(control.clone()).is_ok()).count()
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        lock(&self.inner).senders.len()
    }

    /// Whether shutdown began.
    pub fn shutting_down(&self) -> bool {
        lock(&self.inner).shutting_down
    }

    /// Refuses new connections and tells every open one to close with 1012.
    pub fn begin_shutdown(&self) {
        lock(&self.inner).shutting_down = true;
        self.broadcast(Control::Close(durable_ws_core::close_code::SERVICE_RESTART, "server restart"));
    }

    /// Waits until every connection is gone, or `grace` has passed.
    pub async fn wait_empty(&self, grace: Duration) {
        let mut count = self.count.subscribe();
        let _ = tokio::time::timeout(grace, count.wait_for(|&n| n == 0)).await;
    }
}
