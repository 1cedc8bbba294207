//! `GET /chat`: one room; every message a member sends reaches every member (the sender too),
//! in the same order for all, each through its own replayable session. Payloads are relayed
//! exactly as sent: the server adds nothing, not even the sender's identity.

use durable_ws_server::{Payload, Raw, Session};

/// The room every `/chat` session joins.
pub const ROOM: &str = "chat";

/// One member's session.
pub async fn session(mut session: Session<Payload, Payload, Raw>) {
    session.join(ROOM);
    let room = session.room(ROOM);
    while let Some(message) = session.recv().await {
        if let Err(error) = room.send(&message) {
            tracing::debug!(%error, "chat message not relayed");
        }
    }
}
