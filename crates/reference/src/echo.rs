//! `GET /echo`: every message back into the same session, exactly once, in order; a plain
//! echo for clients that do not offer `durable.v1`.

use durable_ws_server::{Payload, PlainSocket, Raw, SendError, Session};

/// One durable echo session (it lives across the client's reconnects).
pub async fn session(mut session: Session<Payload, Payload, Raw>) {
    while let Some(message) = session.recv().await {
        match session.send(&message) {
            Ok(_) => {}
            // A client that neither reads nor acknowledges: it learns it as `sessionlost`.
            Err(SendError::Full) => session.handle().evict(),
            Err(error) => tracing::debug!(%error, "echo not sent"),
        }
    }
}

/// One plain connection (no recovery).
pub async fn plain(mut socket: PlainSocket) {
    while let Some(message) = socket.recv().await {
        socket.send(message);
    }
}
