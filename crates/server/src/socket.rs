//! One server-side WebSocket: a writer task (so reading never waits on writing), the
//! connection's control channel, stalls, and the three ways to end (close, cut, peer gone).

use std::future::pending;
use std::time::Duration;

use durable_ws_core::close_code;
use durable_ws_core::server::policy;
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError as WsProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::upgrade::Ws;

use crate::rate::Bucket;
use crate::registry::{ConnGuard, ConnId, Control};
use crate::stats::Counters;
use crate::writer::{write_loop, Backlog};

/// How long a closing handshake may take before the connection is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(policy::CLOSE_TIMEOUT_MS);

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
    /// Close with this code.
    Close(u16, &'static str),
    /// The peer sent a message over the size limit (close with 1009).
    TooLarge,
    /// The peer broke the WebSocket protocol (close with 1002, or 1007 for bad UTF-8).
    Broken(u16, &'static str),
    /// A goodbye went out or came in: wait this long for the client's close frame, then close.
    AwaitClose(AwaitClient),
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
    /// Wait (briefly) for the peer's close frame, then close.
    AwaitClose(AwaitClient),
}

/// [`policy::Closing::AwaitClient`]: how long to wait for the client's close, and the close after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AwaitClient {
    pub wait_ms: durable_ws_core::Millis,
    pub code: u16,
    pub reason: &'static str,
}

/// Why a connection is dropped without a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// `/admin/cut`.
    Cut,
    /// The peer sent a close frame (with this code), already answered.
    PeerClosed(Option<u16>),
    /// The connection failed or the peer vanished.
    Lost,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Cut => f.write_str("cut by /admin/cut"),
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
            Input::Broken(code, reason) => Ending::close(code, reason),
            Input::AwaitClose(then) => Ending::AwaitClose(then),
            Input::Cut => Ending::Drop(Dropped::Cut),
            Input::Ended(why) => Ending::Drop(why),
            Input::Message(_) | Input::Deadline | Input::Woken => return None,
        })
    }
}

/// When the connection may read the next message from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Now.
    Open,
    /// Not before this instant (the peer's rate limit).
    Until(Instant),
    /// Once the writer made progress (the outgoing queue is full).
    Writable,
    /// Not at all: only control messages (the application's inbox is full).
    Paused,
}

/// A registered server-side WebSocket.
pub(crate) struct Socket {
    stream: SplitStream<Ws>,
    writer: mpsc::UnboundedSender<Message>,
    backlog: std::sync::Arc<Backlog>,
    max_outgoing: usize,
    /// How fast the peer's frames are read (pings and pongs included).
    bucket: Bucket,
    /// `None` once the writer finished.
    writer_task: Option<JoinHandle<()>>,
    guard: ConnGuard,
    stalled_until: Option<Instant>,
    /// When anything (pings and pongs included) last arrived from the peer.
    last_heard: Instant,
    /// Counted open until dropped, then its lifetime by close code.
    metric: crate::metrics::Connection,
}

impl Socket {
    /// Wraps `ws`; at most `max_outgoing` bytes wait for the writer (see [`has_room`](Self::has_room)).
    pub fn new(ws: Ws, guard: ConnGuard, max_outgoing: usize, bucket: Bucket) -> Self {
        let (sink, stream) = ws.split();
        let (writer, queue) = mpsc::unbounded_channel();
        let backlog = std::sync::Arc::new(Backlog::default());
        let writer_task =
            tokio::spawn(write_loop(sink, queue, backlog.clone(), message_len, |m| matches!(m, Message::Close(_))));
        Socket {
            stream,
            writer,
            backlog,
            max_outgoing,
            bucket,
            writer_task: Some(writer_task),
            guard,
            stalled_until: None,
            last_heard: Instant::now(),
            metric: crate::metrics::Connection::new(),
        }
    }

    /// Whether the outgoing queue has room: callers stop producing (and reading) when not.
    pub fn has_room(&self) -> bool {
        self.backlog.bytes() < self.max_outgoing
    }

    /// Closes an unregistered connection at once, waiting briefly for the peer's answer.
    pub async fn reject(mut ws: Ws, code: u16, reason: Utf8Bytes) {
        use futures_util::SinkExt;
        let frame = CloseFrame { code: CloseCode::from(code), reason };
        let _ = timeout(CLOSE_TIMEOUT, async {
            if ws.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
        .await;
    }

    /// The connection's id in the registry.
    pub fn id(&self) -> ConnId {
        self.guard.id
    }

    /// Counts the connection as open in `mode` (`durable` or `plain`) in the metrics.
    pub fn count_as(&mut self, mode: &'static str) {
        self.metric.count_as(mode);
    }

    /// When anything last arrived from the peer.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Queues a message for the writer task (callers check [`has_room`](Self::has_room) first).
    pub fn send(&self, message: Message) {
        self.backlog.add(message_len(&message));
        let _ = self.writer.send(message);
    }

    /// Waits for the next input. While stalled, only control messages are seen: nothing is
    /// read, no deadline fires, nothing is written by the caller.
    pub async fn next(&mut self, deadline: Option<Instant>, wake: Option<&Notify>, gate: Gate) -> Input {
        let Socket { stream, writer_task, guard, stalled_until, last_heard, backlog, bucket, .. } = self;
        let requested = gate;
        loop {
            // Over its rate, the peer is read later (nothing is dropped).
            let gate = match (requested, bucket.ready_at(Instant::now())) {
                (Gate::Open, Some(at)) => Gate::Until(at),
                (gate, _) => gate,
            };
            let reading = gate == Gate::Open;
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
                    _ = async {
                        match gate {
                            Gate::Until(at) => sleep_until(at).await,
                            Gate::Writable => backlog.progress.notified().await,
                            Gate::Open | Gate::Paused => pending().await,
                        }
                    } => {
                        if requested == Gate::Open {
                            continue; // the rate limit's wait is over: read now
                        }
                        return Input::Woken;
                    }
                    message = stream.next(), if reading => return match bucket.took(message) {
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            *last_heard = Instant::now();
                            continue;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // Reading on lets the WebSocket layer send its close reply.
                            let _ = timeout(CLOSE_TIMEOUT, drain(stream)).await;
                            Input::Ended(Dropped::PeerClosed(frame.map(|frame| u16::from(frame.code))))
                        }
                        Some(Ok(Message::Frame(_))) => continue,
                        Some(Ok(message)) => {
                            *last_heard = Instant::now();
                            Input::Message(message)
                        }
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => Input::TooLarge,
                        Some(Err(WsError::Utf8(_))) => Input::Broken(close_code::INVALID_PAYLOAD, "invalid UTF-8 in a text message"),
                        // The peer vanished mid-stream (a cut link): dropped, not a protocol error.
                        Some(Err(WsError::Protocol(WsProtocolError::ResetWithoutClosingHandshake))) => Input::Ended(Dropped::Lost),
                        Some(Err(WsError::Protocol(error))) => Input::Broken(close_code::PROTOCOL_ERROR, ws_protocol_reason(&error)),
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
                Some(Control::AwaitClose(then)) => return Input::AwaitClose(then),
                Some(Control::Close(code, reason)) => return Input::Close(code, reason),
                Some(Control::Stall(duration)) => *stalled_until = Some(Instant::now() + duration),
                // The registry outlives every guard: unreachable, but harmless.
                None => return Input::Ended(Dropped::Lost),
            }
        }
    }

    /// Ends the connection as `ending` says, and logs how (protocol errors are counted).
    pub async fn end(mut self, ending: Ending, counters: &Counters) {
        self.metric.closed_with(match &ending {
            Ending::Close(code, _) => *code,
            Ending::AwaitClose(then) => then.code,
            Ending::Drop(Dropped::PeerClosed(Some(code))) => *code,
            Ending::Drop(_) => close_code::ABNORMAL,
        });
        match ending {
            Ending::Close(code, reason) => {
                if matches!(
                    code,
                    close_code::PROTOCOL_ERROR | close_code::MESSAGE_TOO_BIG | close_code::INVALID_PAYLOAD
                ) {
                    Counters::add(&counters.protocol_errors, 1);
                    if code == close_code::MESSAGE_TOO_BIG {
                        crate::metrics::limit(durable_ws_core::server::metrics::limit::MESSAGE_SIZE);
                    }
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
            Ending::AwaitClose(then) => {
                // After a goodbye the client closes with its application's code (PROTOCOL §5.7).
                let mut socket = self;
                let peer_closed = timeout(Duration::from_millis(then.wait_ms), async {
                    loop {
                        match socket.stream.next().await {
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                            Some(Ok(_)) => {}
                        }
                    }
                })
                .await
                .is_ok();
                tracing::info!(peer_closed, "connection ended after goodbye");
                socket.close(then.code, Utf8Bytes::from_static(then.reason)).await;
            }
        }
    }

    /// Sends a close frame after everything queued, waits (briefly) for the peer's answer,
    /// then drops the connection.
    async fn close(mut self, code: u16, reason: Utf8Bytes) {
        let _ = self.writer.send(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason })));
        let mut task = self.writer_task.take();
        let stream = &mut self.stream;
        let _ = timeout(CLOSE_TIMEOUT, async {
            if let Some(task) = task.as_mut() {
                let _ = task.await;
            }
            if !drain(stream).await {
                // The read side failed (e.g. an oversized message is still arriving): keep the
                // connection until the close timeout, so the peer can read the close frame
                // instead of a reset.
                pending::<()>().await;
            }
        })
        .await;
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Drops the connection abruptly: no close frame, whatever is queued is lost.
    fn cut(self) {}
}

impl Drop for Socket {
    /// Whatever path ends the connection, its writer task ends with it.
    fn drop(&mut self) {
        if let Some(task) = self.writer_task.take() {
            task.abort();
        }
    }
}

fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) | Message::Frame(_) => 0,
    }
}

/// Reads until the peer's close (true) or a read error (false).
async fn drain(stream: &mut SplitStream<Ws>) -> bool {
    loop {
        match stream.next().await {
            Some(Ok(_)) => {}
            None => return true,
            Some(Err(_)) => return false,
        }
    }
}

/// A short reason for a WebSocket-level protocol error (the peer sees it in the close frame).
fn ws_protocol_reason(error: &WsProtocolError) -> &'static str {
    match error {
        WsProtocolError::UnmaskedFrameFromClient => "websocket: unmasked frame from a client",
        WsProtocolError::NonZeroReservedBits => "websocket: reserved bits set",
        WsProtocolError::UnknownControlFrameType(_) | WsProtocolError::UnknownDataFrameType(_) => {
            "websocket: unknown opcode"
        }
        WsProtocolError::FragmentedControlFrame | WsProtocolError::ControlFrameTooBig => "websocket: bad control frame",
        _ => "websocket protocol error",
    }
}
