//! Plain WebSocket clients (no `durable.v1`): messages as they come, a WebSocket-level
//! heartbeat, the same size limit. Nothing is replayed: a plain client reconnects and queues, but
//! what was on the wire at a cut is lost.

use durable_ws_core::server::metrics::direction;
use durable_ws_core::{close_code, Payload};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::connection::close_reason;
use crate::durable::Durable;
use crate::keepalive::{Keepalive, Tick};
use crate::socket::{Dropped, Ending, Gate, Input, Socket};
use crate::stats::Counters;

/// A plain WebSocket connection, handed to the `plain` handler of
/// [`Durable::endpoint_or_plain`].
pub struct PlainSocket {
    durable: Durable,
    socket: Option<Socket>,
    keepalive: Option<Keepalive>,
    full_since: Option<Instant>,
}

impl std::fmt::Debug for PlainSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSocket").field("open", &self.socket.is_some()).finish()
    }
}

impl PlainSocket {
    pub(crate) fn new(durable: Durable, socket: Socket) -> Self {
        let keepalive = durable.inner.config.heartbeat.map(|config| Keepalive::new(config, Instant::now()));
        PlainSocket { durable, socket: Some(socket), keepalive, full_since: None }
    }

    /// The next text or binary message; `None` once the connection ended (the client closed,
    /// vanished, or broke a limit: the connection is then closed with the right code).
    pub async fn recv(&mut self) -> Option<Payload> {
        let max = self.durable.inner.config.max_message_bytes;
        loop {
            let socket = self.socket.as_mut()?;
            let mut deadline = self.keepalive.as_ref().map(Keepalive::deadline);
            let gate = if socket.has_room() {
                self.full_since = None;
                Gate::Open
            } else {
                // A client that does not read: stop reading it too, and give up after a while.
                let now = Instant::now();
                let give_up = *self.full_since.get_or_insert(now) + self.durable.inner.config.send_timeout;
                if now >= give_up {
                    crate::metrics::limit(durable_ws_core::server::metrics::limit::SLOW_CLIENT);
                    self.end(Ending::close(close_code::TRY_AGAIN_LATER, "client too slow: outgoing queue full")).await;
                    return None;
                }
                deadline = Some(deadline.map_or(give_up, |d| d.min(give_up)));
                Gate::Writable
            };
            let ending = match socket.next(deadline, None, gate).await {
                Input::Message(Message::Text(text)) if text.len() <= max => {
                    Counters::add(&self.durable.inner.counters.messages_in, 1);
                    crate::metrics::bytes(direction::IN, text.len());
                    return Some(Payload::Text(text.as_str().to_owned()));
                }
                Input::Message(Message::Binary(bytes)) if bytes.len() <= max => {
                    Counters::add(&self.durable.inner.counters.messages_in, 1);
                    crate::metrics::bytes(direction::IN, bytes.len());
                    return Some(Payload::Binary(bytes.to_vec()));
                }
                Input::Message(Message::Text(_) | Message::Binary(_)) => {
                    Ending::close(close_code::MESSAGE_TOO_BIG, "message too big")
                }
                Input::Message(_) | Input::Woken => continue,
                Input::Deadline => {
                    match self.keepalive.as_mut().map(|k| k.on_deadline(Instant::now(), socket.last_heard())) {
                        Some(Tick::Ping) => {
                            socket.send(Message::Ping(Default::default()));
                            continue;
                        }
                        Some(Tick::Dead) => {
                            Counters::add(&self.durable.inner.counters.heartbeat_timeouts, 1);
                            Ending::close(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout")
                        }
                        Some(Tick::Wait) | None => continue,
                    }
                }
                other => Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost)),
            };
            self.end(ending).await;
            return None;
        }
    }

    /// Sends a message (dropped if the connection ended).
    pub fn send(&self, payload: Payload) {
        if let Some(socket) = &self.socket {
            Counters::add(&self.durable.inner.counters.messages_out, 1);
            crate::metrics::bytes(direction::OUT, payload.len());
            socket.send(match payload {
                Payload::Text(text) => Message::Text(text.into()),
                Payload::Binary(bytes) => Message::Binary(bytes.into()),
            });
        }
    }

    /// Closes with `code` and `reason` after what was sent.
    pub async fn close(mut self, code: u16, reason: &str) {
        self.end(Ending::Close(code, close_reason(reason))).await;
    }

    async fn end(&mut self, ending: Ending) {
        if let Some(socket) = self.socket.take() {
            socket.end(ending, &self.durable.inner.counters).await;
        }
    }
}
