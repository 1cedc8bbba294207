//! One server-side WebSocket: a writer task (so reading never waits on writing), the
//! connection's control channel, stalls, and the three ways to end (close, cut, peer gone).

use std::future::pending;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use durable_ws_core::close_code;
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite;

use crate::registry::{ConnGuard, ConnId, Control};
use crate::stats::Counters;
use crate::writer::write_loop;

/// Read buffer per connection. tungstenite's default (128 KiB) is zero-filled before every read:
/// at 10 000 sessions that was half the server's CPU (memset) and 140 KiB of RSS per session.
pub(crate) const READ_BUFFER_BYTES: usize = 8 * 1024;

/// How long a closing handshake may take before the connection is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What woke the connection.
#[derive(Debug)]
pub(crate) enum Input {
    /// A text or binary message (pings and pongs are answered by the WebSocket layer).
    Message(Message),
    /// The deadline passed.
    Deadline,
    /// The wake signal fired.
    Woken,
    /// Drop the connection without a close frame.
    Cut,
    /// Another connection took this one's session.
    Superseded,
    /// Close with this code.
    Close(u16, &'static str),
    /// The peer sent a message over the size limit (close with 1009).
    TooLarge,
    /// The peer closed ([`Dropped::PeerClosed`]), or the connection failed ([`Dropped::Lost`]).
    Ended(Dropped),
}

/// How a connection ends.
#[derive(Debug)]
pub(crate) enum Ending {
    /// Close with this code and reason (sent to the client).
    Close(u16, Utf8Bytes),
    /// Drop without a close frame.
    Drop(Dropped),
}

/// Why a connection is dropped without a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// `/admin/cut`.
    Cut,
    /// Its session was resumed on another connection.
    Superseded,
    /// Its session was forgotten (TTL or `/admin/expire`).
    Expired,
    /// The heartbeat got no answer: a half-open link.
    HeartbeatTimeout,
    /// The peer sent a close frame (with this code), already answered.
    PeerClosed(Option<u16>),
    /// The connection failed or the peer vanished.
    Lost,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Cut => f.write_str("cut by /admin/cut"),
            Dropped::Superseded => f.write_str("superseded: the session resumed on another connection"),
            Dropped::Expired => f.write_str("session expired"),
            Dropped::HeartbeatTimeout => f.write_str("heartbeat timeout: half-open link"),
            Dropped::PeerClosed(Some(code)) => write!(f, "closed by the client with {code}"),
            Dropped::PeerClosed(None) => f.write_str("closed by the client without a code"),
            Dropped::Lost => f.write_str("connection lost"),
        }
    }
}

impl Ending {
    /// A close frame with a fixed reason.
    pub fn close(code: u16, reason: &'static str) -> Ending {
        Ending::Close(code, Utf8Bytes::from_static(reason))
    }

    /// The ending for an input that ends the connection (`None` for the others).
    pub fn of(input: Input) -> Option<Ending> {
        Some(match input {
            Input::Close(code, reason) => Ending::close(code, reason),
            Input::TooLarge => Ending::close(close_code::MESSAGE_TOO_BIG, "message too big"),
            Input::Cut => Ending::Drop(Dropped::Cut),
            Input::Superseded => Ending::Drop(Dropped::Superseded),
            Input::Ended(why) => Ending::Drop(why),
            Input::Message(_) | Input::Deadline | Input::Woken => return None,
        })
    }
}

/// A registered server-side WebSocket.
pub(crate) struct Socket<'a> {
    stream: SplitStream<WebSocket>,
    writer: mpsc::UnboundedSender<Message>,
    /// `None` once the writer finished.
    writer_task: Option<JoinHandle<()>>,
    guard: ConnGuard<'a>,
    stalled_until: Option<Instant>,
    /// When anything (pings and pongs included) last arrived from the peer.
    last_heard: Instant,
}

impl<'a> Socket<'a> {
    pub fn new(ws: WebSocket, guard: ConnGuard<'a>) -> Self {
        let (sink, stream) = ws.split();
        let (writer, queue) = mpsc::unbounded_channel();
        let writer_task = tokio::spawn(write_loop(sink, queue, |m| matches!(m, Message::Close(_))));
        Socket { stream, writer, writer_task: Some(writer_task), guard, stalled_until: None, last_heard: Instant::now() }
    }

    /// Closes a connection that arrived during shutdown, with 1012.
    pub async fn refuse(ws: WebSocket) {
        Socket::reject(ws, close_code::SERVICE_RESTART, "server restart").await;
    }

    /// Closes an unregistered connection at once, waiting briefly for the peer's answer.
    pub async fn reject(mut ws: WebSocket, code: u16, reason: &'static str) {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(CLOSE_TIMEOUT, async {
            if ws.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(_)) = ws.recv().await {}
            }
        })
        .await;
    }

    /// The connection's id in the registry.
    pub fn id(&self) -> ConnId {
        self.guard.id
    }

    /// When anything last arrived from the peer.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Queues a message for the writer task.
    pub fn send(&self, message: Message) {
        let _ = self.writer.send(message);
    }

    /// Waits for the next input. While stalled, only control messages are seen: nothing is
    /// read, no deadline fires, nothing is written by the caller.
    pub async fn next(&mut self, deadline: Option<Instant>, wake: Option<&Notify>) -> Input {
        let Socket { stream, writer_task, guard, stalled_until, last_heard, .. } = self;
        loop {
            let control = if let Some(until) = *stalled_until {
                tokio::select! {
                    biased;
                    control = guard.control.recv() => control,
                    _ = sleep_until(until) => {
                        *stalled_until = None;
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    biased;
                    control = guard.control.recv() => control,
                    _ = async {
                        match writer_task.as_mut() {
                            Some(task) => { let _ = task.await; }
                            None => pending().await,
                        }
                    } => {
                        *writer_task = None;
                        return Input::Ended(Dropped::Lost);
                    }
                    message = stream.next() => return match message {
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            *last_heard = Instant::now();
                            continue;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // Reading on lets the WebSocket layer send its close reply.
                            let _ = timeout(CLOSE_TIMEOUT, drain(stream)).await;
                            Input::Ended(Dropped::PeerClosed(frame.map(|frame| frame.code)))
                        }
                        Some(Ok(message)) => {
                            *last_heard = Instant::now();
                            Input::Message(message)
                        }
                        Some(Err(error)) if is_too_large(&error) => Input::TooLarge,
                        Some(Err(_)) | None => Input::Ended(Dropped::Lost),
                    },
                    _ = async { match deadline { Some(at) => sleep_until(at).await, None => pending().await } } => {
                        return Input::Deadline;
                    }
                    _ = async { match wake { Some(wake) => wake.notified().await, None => pending().await } } => {
                        return Input::Woken;
                    }
                }
            };
            match control {
                Some(Control::Cut) => return Input::Cut,
                Some(Control::Superseded) => return Input::Superseded,
                Some(Control::Close(code, reason)) => return Input::Close(code, reason),
                Some(Control::Stall(duration)) => *stalled_until = Some(Instant::now() + duration),
                // The registry outlives every guard: unreachable, but harmless.
                None => return Input::Ended(Dropped::Lost),
            }
        }
    }

    /// Ends the connection as `ending` says, and logs how (protocol errors are counted).
    pub async fn end(self, ending: Ending, counters: &Counters) {
        match ending {
            Ending::Close(code, reason) => {
                if matches!(code, close_code::PROTOCOL_ERROR | close_code::MESSAGE_TOO_BIG) {
                    Counters::add(&counters.protocol_errors, 1);
                    tracing::warn!(code, reason = reason.as_str(), "connection closed: protocol error");
                } else {
                    tracing::info!(code, reason = reason.as_str(), "connection closed");
                }
                self.close(code, reason).await;
            }
            Ending::Drop(why) => {
                tracing::info!(%why, "connection ended");
                self.cut();
            }
        }
    }

    /// Sends a close frame after everything queued, waits (briefly) for the peer's answer,
    /// then drops the connection.
    async fn close(self, code: u16, reason: Utf8Bytes) {
        let Socket { mut stream, writer, writer_task, guard, .. } = self;
        let _ = writer.send(Message::Close(Some(CloseFrame { code, reason })));
        drop(writer);
        let _ = timeout(CLOSE_TIMEOUT, async {
            if let Some(task) = writer_task {
                let _ = task.await;
            }
            drain(&mut stream).await;
        })
        .await;
        drop(guard);
    }

    /// Drops the connection abruptly: no close frame, whatever is queued is lost.
    fn cut(self) {
        if let Some(task) = &self.writer_task {
            task.abort();
        }
    }
}

async fn drain(stream: &mut SplitStream<WebSocket>) {
    while let Some(Ok(_)) = stream.next().await {}
}

fn is_too_large(error: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        error.source().and_then(|source| source.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { .. }))
    )
}
