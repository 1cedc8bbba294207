//! The durable connection driver: the `Hello` handshake, then a loop that feeds the core
//! [`Session`](durable_ws_core::Session) with received messages, deadlines and wake-ups, and
//! after every input drains its frames to the socket and its events to the [`App`].

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use durable_ws_core::frame::Frame;
use durable_ws_core::{close_code, Event, MessageKind, PayloadRef, Token, WelcomeStatus};
use tokio::time::timeout;
use tracing::Instrument;

use crate::app::{App, SessionHandle};
use crate::auth::Identity;
use crate::handshake::Admitted;
use crate::lock;
use crate::socket::{Dropped, Ending, Input, Socket};
use crate::state::Shared;
use crate::stats::Counters;
use crate::store::{Gone, OpenError};

/// Runs one durable connection of `route` to its end. The session outlives it unless the
/// client said goodbye or the session was dropped.
pub(crate) async fn run_durable(ws: WebSocket, shared: Arc<Shared>, app: Arc<dyn App>, admitted: Admitted, route: &'static str) {
    let Some(guard) = shared.connections.register() else {
        return Socket::refuse(ws).await;
    };
    let span = admitted.span(guard.id, route);
    async {
        tracing::info!(durable = true, "connection opened");
        let mut socket = Socket::new(ws, guard);
        let ending = match handshake(&mut socket, &shared).await {
            Ok(resume) => attach_and_drive(&mut socket, &shared, &*app, &admitted.identity, resume).await,
            Err(ending) => ending,
        };
        socket.end(ending, &shared.counters).await;
    }
    .instrument(span)
    .await
}

/// Waits for the first frame, which must be a `Hello`.
async fn handshake(socket: &mut Socket<'_>, shared: &Shared) -> Result<Option<(Token, u64)>, Ending> {
    let input = timeout(shared.config.handshake_timeout, socket.next(None, None)).await;
    let Ok(input) = input else {
        return Err(Ending::close(close_code::PROTOCOL_ERROR, "no hello in time"));
    };
    match input {
        Input::Message(Message::Binary(bytes)) => match Frame::decode(&bytes) {
            Ok(Frame::Hello { resume }) => Ok(resume),
            Ok(_) => Err(Ending::close(close_code::PROTOCOL_ERROR, "first frame must be hello")),
            Err(error) => Err(Ending::Close(close_code::PROTOCOL_ERROR, format!("malformed hello: {error}").into())),
        },
        Input::Message(_) => Err(Ending::close(close_code::PROTOCOL_ERROR, "first frame must be binary hello")),
        other => Err(Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost))),
    }
}

async fn attach_and_drive(
    socket: &mut Socket<'_>,
    shared: &Arc<Shared>,
    app: &dyn App,
    identity: &Identity,
    resume: Option<(Token, u64)>,
) -> Ending {
    let opened = match shared.store.open(resume, identity, socket.id(), shared.clock.now()) {
        Ok(opened) => opened,
        Err(OpenError::Full) => {
            tracing::warn!(max = shared.config.max_sessions, "session refused: too many sessions");
            return Ending::close(close_code::TRY_AGAIN_LATER, "too many sessions");
        }
        Err(OpenError::Random(error)) => {
            tracing::error!(%error, "cannot draw a session token");
            return Ending::close(close_code::INTERNAL_ERROR, "no randomness");
        }
    };
    let session = lock(&opened.entry).id;
    match opened.status {
        WelcomeStatus::New => tracing::info!(session, "session created"),
        WelcomeStatus::Resumed => {
            Counters::add(&shared.counters.resumes, 1);
            tracing::info!(session, "session resumed");
        }
        status => {
            Counters::add(&shared.counters.sessions_lost, 1);
            if opened.foreign {
                tracing::warn!(session, "resume refused: the session belongs to another identity; new session created");
            } else {
                tracing::info!(session, ?status, "resume impossible: session lost; new session created");
            }
        }
    }
    if let Some(old) = opened.superseded {
        shared.connections.send(old, crate::registry::Control::Superseded);
    }
    let handle = SessionHandle::new(opened.entry, shared.clone());
    app.on_open(&handle, opened.status == WelcomeStatus::Resumed);
    let ending = drive(socket, shared, app, &handle).await;
    lock(handle.entry()).detach(socket.id(), shared.clock.now());
    ending
}

/// The loop: drain, then wait for one input, until the connection ends.
async fn drive(socket: &mut Socket<'_>, shared: &Shared, app: &dyn App, handle: &SessionHandle) -> Ending {
    let id = socket.id();
    let wake = lock(handle.entry()).wake.clone();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    loop {
        let deadline = {
            let mut entry = lock(handle.entry());
            if entry.attached != Some(id) {
                return Ending::Drop(Dropped::Superseded);
            }
            match entry.gone {
                Some(Gone::Overflow) => return Ending::close(close_code::TRY_AGAIN_LATER, "replay buffer overflow"),
                Some(Gone::Expired) => return Ending::Drop(Dropped::Expired),
                Some(Gone::Ended) => return Ending::close(close_code::NORMAL, "goodbye"),
                None => {}
            }
            let now = shared.clock.now();
            while let Some(kind) = entry.session.poll_transmit(now, &mut buf) {
                socket.send(match kind {
                    MessageKind::Binary => Message::Binary(std::mem::take(&mut buf).into()),
                    // A server session is always durable: every frame is binary.
                    MessageKind::Text => Message::Text(String::from_utf8_lossy(&buf).into_owned().into()),
                });
            }
            events.extend(std::iter::from_fn(|| entry.session.poll_event()));
            let stats = entry.session.stats();
            Counters::add(&shared.counters.replayed, stats.replayed.saturating_sub(entry.seen.replayed));
            Counters::add(&shared.counters.duplicates_dropped, stats.duplicates_dropped.saturating_sub(entry.seen.duplicates_dropped));
            entry.seen = stats;
            entry.session.poll_timeout().map(|at| shared.clock.instant(at).into())
        };
        if !events.is_empty() {
            for event in events.drain(..) {
                match event {
                    Event::Message(payload) => {
                        Counters::add(&shared.counters.messages_in, 1);
                        app.on_message(handle, payload);
                    }
                    Event::Goodbye => {
                        shared.store.remove(handle.entry(), Gone::Ended);
                    }
                    Event::Dead => {
                        Counters::add(&shared.counters.heartbeat_timeouts, 1);
                        return Ending::Drop(Dropped::HeartbeatTimeout);
                    }
                    _ => {}
                }
            }
            // The app may have queued replies: drain again before waiting.
            continue;
        }
        match socket.next(deadline, Some(&wake)).await {
            Input::Message(message) => {
                let mut entry = lock(handle.entry());
                if entry.attached != Some(id) {
                    return Ending::Drop(Dropped::Superseded);
                }
                let payload = match &message {
                    Message::Binary(bytes) if data_payload_len(bytes) > shared.config.max_message_bytes => {
                        return Ending::close(close_code::MESSAGE_TOO_BIG, "message too big");
                    }
                    Message::Binary(bytes) => PayloadRef::Binary(bytes),
                    Message::Text(text) => PayloadRef::Text(text.as_str()),
                    _ => continue,
                };
                if let Err(error) = entry.session.handle_message(shared.clock.now(), payload) {
                    // The reason tells the client what it did wrong (the session stays resumable).
                    return Ending::Close(error.close_code(), close_reason(&error.to_string()));
                }
            }
            Input::Deadline => {
                let mut entry = lock(handle.entry());
                if entry.attached != Some(id) {
                    return Ending::Drop(Dropped::Superseded);
                }
                entry.session.handle_timeout(shared.clock.now());
            }
            Input::Woken => {}
            other => return Ending::of(other).unwrap_or(Ending::Drop(Dropped::Lost)),
        }
    }
}

/// The payload length of a data frame (0 for anything else). The core bounds whole frames
/// (payload limit plus the longest header), so a payload a few bytes over the limit would be
/// delivered and its echo then refused by `send`: the exact limit is enforced here.
fn data_payload_len(bytes: &[u8]) -> usize {
    match Frame::decode(bytes) {
        Ok(Frame::Data { payload, .. }) => payload.as_bytes().len(),
        _ => 0,
    }
}

/// A close reason fits 123 bytes (RFC 6455 §5.5: control frames carry at most 125).
fn close_reason(text: &str) -> Utf8Bytes {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}
