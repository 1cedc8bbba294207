//! `GET /chat`: one room; every message a member sends is delivered to every member (the
//! sender too), in the same order for all, each member through its own replayable session.
//! Requires `durable.v1`. Payloads are relayed exactly as sent: the server adds nothing, not
//! even the sender's identity (a page that wants names puts them in its own payloads).

use std::sync::{Arc, Mutex};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use durable_ws_core::{close_code, Payload, SUBPROTOCOL};

use crate::socket::READ_BUFFER_BYTES;
use crate::app::{App, OutboundError, SessionHandle};
use crate::connection::run_durable;
use crate::echo::FRAME_OVERHEAD;
use crate::handshake::Admitted;
use crate::lock;
use crate::socket::Socket;
use crate::state::Shared;

/// The members of the room.
#[derive(Default)]
pub(crate) struct Room {
    members: Mutex<Vec<SessionHandle>>,
}

impl App for Room {
    fn on_open(&self, session: &SessionHandle, _resumed: bool) {
        let mut members = lock(&self.members);
        if !members.iter().any(|member| member.token() == session.token()) {
            members.push(session.clone());
        }
    }

    fn on_message(&self, _from: &SessionHandle, payload: Payload) {
        // Holding the room's lock across the broadcast gives every member the same order.
        let mut members = lock(&self.members);
        members.retain(|member| match member.send(payload.clone()) {
            Ok(_) | Err(OutboundError::TooLarge { .. }) => true,
            // Ended, expired, or dropped for overflow (its client gets `LostOverflow`).
            Err(OutboundError::Gone | OutboundError::Overflow) => false,
        });
    }
}

/// Upgrades to a WebSocket; a client that does not offer `durable.v1` is closed with 1008.
pub(crate) async fn handler(
    admitted: Admitted,
    ws: WebSocketUpgrade,
    State(shared): State<Arc<Shared>>,
    room: Arc<Room>,
) -> Response {
    let limit = shared.config.max_message_bytes + FRAME_OVERHEAD;
    let ws = ws.max_message_size(limit).max_frame_size(limit).read_buffer_size(READ_BUFFER_BYTES).protocols([SUBPROTOCOL]);
    let durable = ws.selected_protocol().is_some();
    ws.on_upgrade(move |socket| async move {
        if durable {
            run_durable(socket, shared, room, admitted, "/chat").await;
        } else {
            tracing::info!(peer = admitted.peer.map(tracing::field::display), "/chat connection refused with 1008: durable.v1 not offered");
            Socket::reject(socket, close_code::POLICY_VIOLATION, "chat requires durable.v1").await;
        }
    })
}
