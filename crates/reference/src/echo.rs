//! `GET /echo`: a durable echo session when the client offers `durable.v1`, a plain echo of
//! text and binary messages otherwise.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use durable_ws_core::{close_code, Payload, SUBPROTOCOL};
use tokio::time::Instant;
use tracing::Instrument;

use crate::socket::READ_BUFFER_BYTES;
use crate::app::{App, SessionHandle};
use crate::connection::run_durable;
use crate::handshake::Admitted;
use crate::keepalive::{Keepalive, Tick};
use crate::socket::{Dropped, Ending, Input, Socket};
use crate::state::Shared;
use crate::stats::Counters;

/// Room for a data frame's header on top of the largest payload (type byte + 10-byte varint).
pub(crate) const FRAME_OVERHEAD: usize = 11;

/// Echoes every message back into the same session.
struct Echo;

impl App for Echo {
    fn on_message(&self, session: &SessionHandle, payload: Payload) {
        // Overflow and gone sessions are handled by the store; nothing else to do here.
        let _ = session.send(payload);
    }
}

/// Upgrades to a WebSocket, selecting `durable.v1` if offered.
pub(crate) async fn handler(admitted: Admitted, ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    let limit = shared.config.max_message_bytes + FRAME_OVERHEAD;
    let ws = ws.max_message_size(limit).max_frame_size(limit).read_buffer_size(READ_BUFFER_BYTES).protocols([SUBPROTOCOL]);
    let durable = ws.selected_protocol().is_some();
    ws.on_upgrade(move |socket| async move {
        if durable {
            run_durable(socket, shared, Arc::new(Echo), admitted, "/echo").await;
        } else {
            plain_echo(socket, shared, admitted).await;
        }
    })
}

/// Sends every text and binary message straight back.
async fn plain_echo(ws: WebSocket, shared: Arc<Shared>, admitted: Admitted) {
    let Some(guard) = shared.connections.register() else {
        return Socket::refuse(ws).await;
    };
    let span = admitted.span(guard.id, "/echo");
    async {
        tracing::info!(durable = false, "connection opened");
        let mut socket = Socket::new(ws, guard);
        let ending = plain_loop(&mut socket, &shared).await;
        socket.end(ending, &shared.counters).await;
    }
    .instrument(span)
    .await
}

async fn plain_loop(socket: &mut Socket<'_>, shared: &Shared) -> Ending {
    let max = shared.config.max_message_bytes;
    let mut keepalive = shared.config.session.heartbeat.map(|config| Keepalive::new(config, Instant::now()));
    loop {
        match socket.next(keepalive.as_ref().map(Keepalive::deadline), None).await {
            Input::Message(message) => {
                let len = match &message {
                    Message::Text(text) => text.len(),
                    Message::Binary(bytes) => bytes.len(),
                    _ => continue,
                };
                if len > max {
                    return Ending::close(close_code::MESSAGE_TOO_BIG, "message too big");
                }
                Counters::add(&shared.counters.messages_in, 1);
                Counters::add(&shared.counters.messages_out, 1);
                socket.send(message);
            }
            Input::Deadline => match keepalive.as_mut().map(|k| k.on_deadline(Instant::now(), socket.last_heard())) {
                Some(Tick::Ping) => socket.send(Message::Ping(Default::default())),
                Some(Tick::Dead) => {
                    Counters::add(&shared.counters.heartbeat_timeouts, 1);
                    return Ending::Drop(Dropped::HeartbeatTimeout);
                }
                Some(Tick::Wait) | None => {}
            },
            Input::Woken => {}
            other => return Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost)),
        }
    }
}
