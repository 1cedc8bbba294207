//! A native driver of the core [`Client`] over tokio-tungstenite, for tests and load
//! generation: the same state machine the browser library runs, with real sockets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use durable_ws_core::{ClientConfig, Event, Payload};
//! use durable_ws_testkit::native_client::NativeClient;
//! let (client, mut events) = NativeClient::connect("ws://127.0.0.1:8080/echo", ClientConfig::default())?;
//! client.send(Payload::from("hello"))?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(echo) = event {
//!         assert_eq!(echo, Payload::from("hello"));
//!         break;
//!     }
//! }
//! client.close(1000, "done");
//! # Ok(()) }
//! ```

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_ws_core::{
    close_code, Action, Client, ClientConfig, ClientState, ClientStats, Event, MessageKind, Payload, PayloadRef,
    SendError, Token, SUBPROTOCOL,
};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::clock::Clock;
use crate::lock;
use crate::writer::write_loop;

/// How long a closing handshake may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Room for a data frame's header on top of the largest payload.
const FRAME_OVERHEAD: usize = 11;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<(Ws, bool), tungstenite::Error>> + Send>>;

/// The client could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NativeClientError {
    /// The URL is not a valid WebSocket URL.
    #[error("invalid WebSocket URL: {0}")]
    Url(#[source] tungstenite::Error),
    /// The OS random generator failed (the reconnect jitter is seeded from it).
    #[error("no randomness for the jitter seed: {0}")]
    Random(#[source] getrandom::Error),
}

struct Shared {
    client: Mutex<Client>,
    wake: Notify,
    clock: Clock,
    /// Set (with the client locked) when the last handle is gone: the driver closes and stops.
    dropped: AtomicBool,
}

/// Ends the client when the last handle is dropped, as dropping a browser `DurableSocket` does.
struct Owner {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.task.is_finished() {
            return;
        }
        {
            let mut client = lock(&self.shared.client);
            client.close(self.shared.clock.now(), close_code::NORMAL, "");
            self.shared.dropped.store(true, Ordering::SeqCst);
        }
        self.shared.wake.notify_one();
    }
}

/// A handle to a running client. Clones share the client. Dropping the last one ends it the way
/// dropping a browser `DurableSocket` does: goodbye if nothing is pending (the server ends the
/// session), then a close with 1000; messages still unconfirmed are given up and no reconnection
/// follows. [`close`](Self::close) waits for acknowledgements first; [`abort`](Self::abort)
/// cuts the connection without a word, as a crashed process or a vanished tab does.
#[derive(Clone)]
pub struct NativeClient {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl NativeClient {
    /// Starts a client for `url` (must run inside a tokio runtime). Events arrive on the
    /// returned receiver; it ends once the client is closed for good.
    pub fn connect(
        url: &str,
        config: ClientConfig,
    ) -> Result<(NativeClient, mpsc::UnboundedReceiver<Event>), NativeClientError> {
        url.into_client_request().map_err(NativeClientError::Url)?;
        let seed = getrandom::u64().map_err(NativeClientError::Random)?;
        let clock = Clock::new();
        let max_message = config.session.max_message_bytes + FRAME_OVERHEAD;
        let client = Client::new(config, seed, clock.now(), true);
        let shared = Arc::new(Shared {
            client: Mutex::new(client),
            wake: Notify::new(),
            clock,
            dropped: AtomicBool::new(false),
        });
        let (events, receiver) = mpsc::unbounded_channel();
        let driver = Driver { shared: shared.clone(), url: url.to_owned(), max_message, events };
        let task = tokio::spawn(driver.run());
        let owner = Arc::new(Owner { shared: shared.clone(), task });
        Ok((NativeClient { shared, _owner: owner }, receiver))
    }

    /// Queues a message (delivered exactly once, in order, across reconnects); returns its
    /// sequence number in the current session.
    pub fn send(&self, payload: Payload) -> Result<u64, SendError> {
        self.with_client(|client, now| client.send(now, payload))
    }

    /// Whether `send` would accept `len` bytes now (backpressure: wait for `Acked` events).
    pub fn has_room(&self, len: usize) -> bool {
        lock(&self.shared.client).has_room(len)
    }

    /// Ends the session politely: waits for outstanding acknowledgements (up to the close
    /// timeout), says goodbye, closes with `code`.
    pub fn close(&self, code: u16, reason: &str) {
        self.with_client(|client, now| client.close(now, code, reason));
    }

    /// Stops the client at once, like a crashed process: the connection is dropped without a
    /// goodbye or a close frame, so the server keeps the session for a resume until it expires.
    /// Every clone stops with it (their calls are accepted and go nowhere); the event receiver ends.
    pub fn abort(&self) {
        self._owner.task.abort();
    }

    /// Reconnects now instead of waiting for the backoff delay.
    pub fn reconnect_now(&self) {
        self.with_client(|client, now| client.reconnect_now(now));
    }

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        lock(&self.shared.client).state()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        lock(&self.shared.client).stats()
    }

    /// The current session's token, once the server gave one.
    pub fn session_token(&self) -> Option<Token> {
        lock(&self.shared.client).session_token()
    }

    fn with_client<R>(&self, f: impl FnOnce(&mut Client, durable_ws_core::Millis) -> R) -> R {
        let result = {
            let mut client = lock(&self.shared.client);
            f(&mut client, self.shared.clock.now())
        };
        self.shared.wake.notify_one();
        result
    }
}

/// An open socket: the reading half, and a writer task for the other.
struct Conn {
    stream: SplitStream<Ws>,
    writer: mpsc::UnboundedSender<Message>,
    writer_task: JoinHandle<()>,
}

impl Conn {
    fn new(ws: Ws) -> Self {
        let (sink, stream) = ws.split();
        let (writer, queue) = mpsc::unbounded_channel();
        let writer_task = tokio::spawn(write_loop(sink, queue, |m| matches!(m, Message::Close(_))));
        Conn { stream, writer, writer_task }
    }

    fn send(&self, message: Message) {
        let _ = self.writer.send(message);
    }

    /// Sends a close frame and finishes the closing handshake in the background.
    fn close(self, code: u16, reason: String) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let _ = self.writer.send(Message::Close(Some(frame)));
        self.finish();
    }

    /// Reads on in the background so the closing handshake completes, then drops the socket.
    fn finish(self) {
        let Conn { mut stream, writer, writer_task } = self;
        drop(writer);
        tokio::spawn(async move {
            let _ = timeout(CLOSE_TIMEOUT, async {
                let _ = writer_task.await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        });
    }

    /// Drops the socket without a close frame.
    fn cut(self) {
        self.writer_task.abort();
    }
}

/// What woke the driver.
enum Input {
    Opened(Result<(Box<Ws>, bool), tungstenite::Error>),
    Received(Option<Result<Message, tungstenite::Error>>),
    Deadline,
    Woken,
}

struct Driver {
    shared: Arc<Shared>,
    url: String,
    max_message: usize,
    events: mpsc::UnboundedSender<Event>,
}

impl Driver {
    async fn run(self) {
        let mut conn: Option<Conn> = None;
        let mut connecting: Option<Connecting> = None;
        let mut buf = Vec::new();
        loop {
            let (deadline, closed, dropped) = self.drain(&mut conn, &mut connecting, &mut buf);
            if dropped {
                // The last handle is gone: the goodbye (if any) is sent; close and stop.
                if let Some(conn) = conn.take() {
                    conn.close(close_code::NORMAL, String::new());
                }
                return;
            }
            if closed && connecting.is_none() {
                if let Some(conn) = conn.take() {
                    conn.finish();
                }
                return;
            }
            let input = tokio::select! {
                result = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    Input::Opened(result.map(|(ws, durable)| (Box::new(ws), durable)))
                }
                message = async { conn.as_mut().expect("guarded").stream.next().await }, if conn.is_some() => {
                    Input::Received(message)
                }
                _ = async { match deadline { Some(at) => sleep_until(at.into()).await, None => pending().await } } => {
                    Input::Deadline
                }
                _ = self.shared.wake.notified() => Input::Woken,
            };
            let mut client = lock(&self.shared.client);
            let now = self.shared.clock.now();
            match input {
                Input::Opened(Ok((ws, durable))) => {
                    conn = Some(Conn::new(*ws));
                    client.on_open(now, durable);
                }
                Input::Opened(Err(error)) => {
                    tracing::debug!(%error, "connect failed");
                    client.on_close(now, close_code::ABNORMAL, "", false);
                }
                Input::Received(Some(Ok(message))) => match message {
                    Message::Text(text) => client.on_message(now, PayloadRef::Text(text.as_str())),
                    Message::Binary(bytes) => client.on_message(now, PayloadRef::Binary(&bytes)),
                    Message::Close(frame) => {
                        if let Some(conn) = conn.take() {
                            conn.finish();
                        }
                        let (code, reason) = match frame {
                            Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
                            None => (close_code::NO_STATUS, String::new()),
                        };
                        client.on_close(now, code, &reason, true);
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                },
                Input::Received(Some(Err(_)) | None) => {
                    if let Some(conn) = conn.take() {
                        conn.cut();
                    }
                    client.on_close(now, close_code::ABNORMAL, "", false);
                }
                Input::Deadline => client.handle_timeout(now),
                Input::Woken => {}
            }
        }
    }

    /// Carries out the client's actions and transmissions, forwards its events; returns the
    /// next deadline, whether the client is closed for good and whether its last handle is gone.
    fn drain(
        &self,
        conn: &mut Option<Conn>,
        connecting: &mut Option<Connecting>,
        buf: &mut Vec<u8>,
    ) -> (Option<std::time::Instant>, bool, bool) {
        let mut client = lock(&self.shared.client);
        let now = self.shared.clock.now();
        loop {
            let mut progressed = false;
            while let Some(action) = client.poll_action() {
                progressed = true;
                match action {
                    Action::Connect => {
                        if let Some(old) = conn.take() {
                            old.cut();
                        }
                        *connecting = Some(Box::pin(open(self.url.clone(), self.max_message)));
                    }
                    Action::Close { code, reason } => {
                        *connecting = None;
                        if let Some(old) = conn.take() {
                            old.close(code, reason);
                        }
                    }
                }
            }
            while let Some(kind) = client.poll_transmit(now, buf) {
                progressed = true;
                let bytes = std::mem::take(buf);
                let message = match kind {
                    MessageKind::Binary => Message::Binary(bytes.into()),
                    MessageKind::Text => Message::Text(String::from_utf8_lossy(&bytes).into_owned().into()),
                };
                if let Some(conn) = conn.as_ref() {
                    conn.send(message);
                }
            }
            if !progressed {
                break;
            }
        }
        while let Some(event) = client.poll_event() {
            let _ = self.events.send(event);
        }
        let deadline = client.poll_timeout().map(|at| self.shared.clock.instant(at));
        (deadline, client.state() == ClientState::Closed, self.shared.dropped.load(Ordering::SeqCst))
    }
}

/// Opens a socket offering `durable.v1`. tungstenite fails a handshake in which the server
/// selected none of the offered subprotocols (RFC 6455 lets the client decide), so then it
/// connects again without offering it: that server speaks plain WebSocket.
async fn open(url: String, max_message: usize) -> Result<(Ws, bool), tungstenite::Error> {
    match open_once(&url, true, max_message).await {
        Err(tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ))) => open_once(&url, false, max_message).await,
        other => other,
    }
}

async fn open_once(url: &str, offer_durable: bool, max_message: usize) -> Result<(Ws, bool), tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if offer_durable {
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .read_buffer_size(8 * 1024);
    let (ws, response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let durable =
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).is_some_and(|p| p.as_bytes() == SUBPROTOCOL.as_bytes());
    Ok((ws, durable))
}

impl std::fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let client = lock(&self.shared.client);
        f.debug_struct("NativeClient").field("state", &client.state()).field("stats", &client.stats()).finish()
    }
}

#[cfg(test)]
mod tests {
    use durable_ws_core::frame::{Frame, Token, WelcomeStatus};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

    use super::*;

    /// A server that selects `durable.v1` and welcomes the client to a new session; returns its
    /// side of the connection once the client reported `Open`.
    async fn welcomed() -> (NativeClient, mpsc::UnboundedReceiver<Event>, WebSocketStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/echo", listener.local_addr().unwrap());
        let (client, mut events) = NativeClient::connect(&url, ClientConfig::default()).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = tokio_tungstenite::accept_hdr_async(tcp, select_durable).await.unwrap();
        let hello = server.next().await.unwrap().unwrap().into_data();
        assert!(matches!(Frame::decode(&hello), Ok(Frame::Hello { resume: None })));
        let mut welcome = Vec::new();
        Frame::Welcome { status: WelcomeStatus::New, token: Token([7; 16]), last_received: 0 }.encode(&mut welcome);
        futures_util::SinkExt::send(&mut server, Message::Binary(welcome.into())).await.unwrap();
        while !matches!(events.recv().await, Some(Event::Open { durable: true })) {}
        (client, events, server)
    }

    /// Selects `durable.v1` (the signature is tungstenite's callback's).
    #[allow(clippy::result_large_err)]
    fn select_durable(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
        Ok(response)
    }

    /// What the server reads until the connection ends: `Goodbye` frames and close codes.
    async fn rest(mut server: WebSocketStream<TcpStream>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(Some(message)) = timeout(Duration::from_secs(5), server.next()).await {
            match message {
                Ok(Message::Binary(bytes)) => match Frame::decode(&bytes) {
                    Ok(Frame::Goodbye) => seen.push("goodbye".to_owned()),
                    other => seen.push(format!("{other:?}")),
                },
                Ok(Message::Close(frame)) => seen.push(format!("close {:?}", frame.map(|f| u16::from(f.code)))),
                Ok(_) => {}
                Err(error) => {
                    seen.push(format!("error {error}"));
                    break;
                }
            }
        }
        seen
    }

    #[tokio::test]
    async fn dropping_the_last_handle_says_goodbye_and_closes_with_1000() {
        let (client, mut events, server) = welcomed().await;
        let clone = client.clone();
        drop(client);
        assert!(lock(&clone.shared.client).state() != ClientState::Closed, "a clone keeps it running");
        drop(clone);
        assert_eq!(rest(server).await, ["goodbye", "close Some(1000)"]);
        while events.recv().await.is_some() {} // the driver stopped: the channel ends
    }

    #[tokio::test]
    async fn abort_cuts_without_a_goodbye_or_a_close_frame() {
        let (client, mut events, server) = welcomed().await;
        client.abort();
        let seen = rest(server).await;
        assert!(seen.iter().all(|s| s.starts_with("error")), "nothing but the cut: {seen:?}");
        while events.recv().await.is_some() {}
        drop(client);
    }
}
