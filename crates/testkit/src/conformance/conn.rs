//! One raw WebSocket connection driven frame by frame, as a conformance case sees it: every
//! frame sent is chosen by the case (encoded with `durable_ws_core::frame` or written by hand),
//! every message received is decoded and handed back as is.

use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{PayloadRef, Token, WelcomeStatus};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Verdict, SUBPROTOCOL};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrived from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A `Welcome` frame.
    Welcome {
        /// Its status.
        status: WelcomeStatus,
        /// The token of the session in force.
        token: Token,
        /// What the server delivered from this client.
        last_received: u64,
    },
    /// A data frame (`text`: type `03`).
    Data {
        /// Sequence number.
        seq: u64,
        /// Type `03` (text) rather than `04`.
        text: bool,
        /// Payload bytes.
        payload: Vec<u8>,
    },
    /// An `Ack`.
    Ack(u64),
    /// A `Ping`.
    Ping(u64),
    /// A `Pong`.
    Pong(u64),
    /// A `Goodbye`.
    Goodbye,
    /// A frame only a client may send (`Hello`).
    Hello,
    /// A binary message that does not decode.
    Undecodable(String),
    /// A WebSocket text message (never valid on a durable connection).
    Text(String),
    /// A close frame: code (`None`: no code) and reason.
    Close(Option<u16>, String),
    /// The connection ended without a close frame.
    Ended(String),
}

impl Got {
    fn from_binary(bytes: &[u8]) -> Got {
        match Frame::decode(bytes) {
            Ok(Frame::Welcome { status, token, last_received }) => Got::Welcome { status, token, last_received },
            Ok(Frame::Data { seq, payload }) => {
                Got::Data { seq, text: matches!(payload, PayloadRef::Text(_)), payload: payload.as_bytes().to_vec() }
            }
            Ok(Frame::Ack { seq }) => Got::Ack(seq),
            Ok(Frame::Ping { value }) => Got::Ping(value),
            Ok(Frame::Pong { value }) => Got::Pong(value),
            Ok(Frame::Goodbye) => Got::Goodbye,
            Ok(Frame::Hello { .. }) => Got::Hello,
            Err(error) => Got::Undecodable(format!("{error} (bytes {})", hex_prefix(bytes))),
        }
    }

    /// A short description for failure messages (payloads abbreviated).
    pub fn describe(&self) -> String {
        match self {
            Got::Data { seq, text, payload } => {
                let kind = if *text { "text" } else { "binary" };
                format!("DATA {kind} seq {seq} ({} bytes: {})", payload.len(), hex_prefix(payload))
            }
            Got::Close(Some(code), reason) => format!("close {code} {reason:?}"),
            Got::Close(None, _) => "close frame without a code".into(),
            Got::Ended(why) => format!("connection ended without a close frame ({why})"),
            Got::Text(text) => format!("a WebSocket text message {:?}", abbreviate(text)),
            other => format!("{other:?}"),
        }
    }
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 40 {
        return text.to_owned();
    }
    let mut end = 40;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The first bytes of `bytes` in hex.
pub fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut text = shown.join(" ");
    if bytes.len() > 16 {
        text.push_str(" …");
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The server answered the upgrade with this HTTP status.
    Http(u16),
    /// Anything else (refused, TLS, bad URL, a subprotocol that was not offered…).
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Http(status) => write!(f, "the upgrade was refused with HTTP {status}"),
            OpenError::Other(why) => f.write_str(why),
        }
    }
}

/// A raw WebSocket to the server under test.
pub struct Conn {
    ws: Stream,
    /// The subprotocol the server selected, if any.
    pub selected: Option<String>,
    /// How long each expected frame may take.
    step: Duration,
    closed: bool,
}

impl Conn {
    /// Opens `url` offering `protocols` (comma-joined in one `Sec-WebSocket-Protocol` header;
    /// none: no header).
    pub async fn open(url: &str, protocols: &[&str], step: Duration) -> Result<Conn, OpenError> {
        let mut request =
            url.into_client_request().map_err(|error| OpenError::Other(format!("bad URL {url}: {error}")))?;
        if !protocols.is_empty() {
            let value =
                HeaderValue::from_str(&protocols.join(", ")).map_err(|error| OpenError::Other(error.to_string()))?;
            request.headers_mut().insert("sec-websocket-protocol", value);
        }
        // Room for the oversized-message cases' answers and the overflow case's echoes.
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let (ws, response) = match timeout(step, connecting).await {
            Err(_) => return Err(OpenError::Other(format!("no WebSocket handshake within {} ms", step.as_millis()))),
            Ok(Err(WsError::Http(response))) => return Err(OpenError::Http(response.status().as_u16())),
            Ok(Err(error)) => return Err(OpenError::Other(format!("cannot open {url}: {error}"))),
            Ok(Ok(opened)) => opened,
        };
        let selected =
            response.headers().get("sec-websocket-protocol").and_then(|value| value.to_str().ok()).map(str::to_owned);
        Ok(Conn { ws, selected, step, closed: false })
    }

    /// Opens a durable connection: `durable.v1` offered and selected.
    pub async fn durable(url: &str, step: Duration) -> Result<Conn, Verdict> {
        let conn = Conn::open(url, &[SUBPROTOCOL], step).await.map_err(|error| Verdict::Fail(error.to_string()))?;
        if conn.selected.as_deref() != Some(SUBPROTOCOL) {
            return Err(Verdict::Fail(format!("the server selected {:?}, not {SUBPROTOCOL}", conn.selected)));
        }
        Ok(conn)
    }

    /// The per-frame time bound.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Frame<'_>) -> Result<(), Verdict> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        self.send_message(Message::Binary(out.into())).await
    }

    /// Sends one binary message of exactly these bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), Verdict> {
        self.send_message(Message::Binary(bytes.to_vec().into())).await
    }

    /// Sends a WebSocket text message whose payload is these bytes, UTF-8 or not.
    pub async fn send_raw_text(&mut self, bytes: &[u8]) -> Result<(), Verdict> {
        let frame = WsFrame::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        self.send_message(Message::Frame(frame)).await
    }

    /// Sends any WebSocket message.
    pub async fn send_message(&mut self, message: Message) -> Result<(), Verdict> {
        match timeout(self.step, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Verdict::Fail(format!("cannot send: {error}"))),
            Err(_) => Err(Verdict::Fail(format!("sending took longer than {} ms", self.step.as_millis()))),
        }
    }

    /// Sends a data frame.
    pub async fn send_data(&mut self, seq: u64, payload: PayloadRef<'_>) -> Result<(), Verdict> {
        self.send(Frame::Data { seq, payload }).await
    }

    /// The next message within `within` (`None`: nothing arrived). WebSocket pings and pongs
    /// are skipped (tungstenite answers pings as it reads).
    pub async fn next_within(&mut self, within: Duration) -> Option<Got> {
        if self.closed {
            return Some(Got::Ended("already ended".into()));
        }
        let deadline = Instant::now() + within;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(message) => message,
            };
            let got = match message {
                Some(Ok(Message::Binary(bytes))) => Got::from_binary(&bytes),
                Some(Ok(Message::Text(text))) => Got::Text(text.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    // Let tungstenite answer the close and see the end of the stream.
                    let _ =
                        timeout(Duration::from_millis(500), async { while let Some(Ok(_)) = self.ws.next().await {} })
                            .await;
                    match frame {
                        Some(frame) => Got::Close(Some(frame.code.into()), frame.reason.to_string()),
                        None => Got::Close(None, String::new()),
                    }
                }
                Some(Err(error)) => {
                    self.closed = true;
                    Got::Ended(error.to_string())
                }
                None => {
                    self.closed = true;
                    Got::Ended("end of stream".into())
                }
            };
            return Some(got);
        }
    }

    /// The next message within the step bound; a timeout is a failure naming `waiting_for`.
    pub async fn next(&mut self, waiting_for: &str) -> Result<Got, Verdict> {
        let step = self.step;
        self.next_within(step).await.ok_or_else(|| {
            Verdict::Fail(format!("nothing arrived within {} ms while waiting for {waiting_for}", step.as_millis()))
        })
    }

    /// Sends `Hello` and reads the `Welcome` (it must be the first frame).
    pub async fn hello(&mut self, resume: Option<(Token, u64)>) -> Result<(WelcomeStatus, Token, u64), Verdict> {
        self.send(Frame::Hello { resume }).await?;
        match self.next("WELCOME").await? {
            Got::Welcome { status, token, last_received } => Ok((status, token, last_received)),
            other => Err(Verdict::Fail(format!("expected WELCOME as the first frame, got {}", other.describe()))),
        }
    }

    /// Opens a new session: `Welcome(New, token, 0)`; returns the token.
    pub async fn hello_new(&mut self) -> Result<Token, Verdict> {
        match self.hello(None).await? {
            (WelcomeStatus::New, token, 0) => Ok(token),
            (status, _, last) => Err(Verdict::Fail(format!(
                "HELLO without a token: expected WELCOME New with last_received 0, got {status:?} with {last}"
            ))),
        }
    }

    /// Resumes `token`; fails unless the answer is `Welcome(Resumed, token, expect_last)`.
    pub async fn resume(&mut self, token: Token, last_received: u64, expect_last: u64) -> Result<(), Verdict> {
        match self.hello(Some((token, last_received))).await? {
            (WelcomeStatus::Resumed, got, last) if got == token && last == expect_last => Ok(()),
            (WelcomeStatus::Resumed, got, last) if got == token => Err(Verdict::Fail(format!(
                "resume: WELCOME Resumed says the server delivered {last}, expected {expect_last}"
            ))),
            (WelcomeStatus::Resumed, _, _) => {
                Err(Verdict::Fail("resume: WELCOME Resumed carries another token".into()))
            }
            (status, _, _) => Err(Verdict::Fail(format!(
                "resume (last_received {last_received}) got WELCOME {status:?}, expected Resumed"
            ))),
        }
    }

    /// Reads until a data frame (answering pings, skipping acks and pongs).
    pub async fn next_data(&mut self) -> Result<(u64, bool, Vec<u8>), Verdict> {
        loop {
            match self.next("a DATA frame").await? {
                Got::Data { seq, text, payload } => return Ok((seq, text, payload)),
                Got::Ack(_) | Got::Pong(_) => {}
                Got::Ping(value) => self.send(Frame::Pong { value }).await?,
                other => return Err(Verdict::Fail(format!("expected a DATA frame, got {}", other.describe()))),
            }
        }
    }

    /// Sends data `seq` and expects its echo as server data `echo_seq`, same kind, same bytes.
    pub async fn echo(&mut self, seq: u64, echo_seq: u64, payload: PayloadRef<'_>) -> Result<(), Verdict> {
        self.send_data(seq, payload).await?;
        let (got_seq, text, bytes) = self.next_data().await?;
        let sent_text = matches!(payload, PayloadRef::Text(_));
        if (got_seq, text, bytes.as_slice()) != (echo_seq, sent_text, payload.as_bytes()) {
            return Err(Verdict::Fail(format!(
                "echo of DATA seq {seq}: expected {}, got {}",
                Got::Data { seq: echo_seq, text: sent_text, payload: payload.as_bytes().to_vec() }.describe(),
                Got::Data { seq: got_seq, text, payload: bytes }.describe()
            )));
        }
        Ok(())
    }

    /// [`echo`](Self::echo) of a short text, server numbering like the client's.
    pub async fn echo_text(&mut self, seq: u64, text: &str) -> Result<(), Verdict> {
        self.echo(seq, seq, PayloadRef::Text(text)).await
    }

    /// Reads until the close frame (skipping data, acks, pongs; answering nothing); returns
    /// its code and reason. A connection that ends without one, or a timeout, is a failure.
    pub async fn expect_close_within(&mut self, within: Duration) -> Result<(u16, String), Verdict> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                None => {
                    return Err(Verdict::Fail(format!(
                        "the server did not close the connection within {} ms",
                        within.as_millis()
                    )))
                }
                Some(Got::Close(Some(code), reason)) => return Ok((code, reason)),
                Some(Got::Close(None, _)) => {
                    return Err(Verdict::Fail("the server closed without a close code".into()))
                }
                Some(Got::Ended(why)) => {
                    return Err(Verdict::Fail(format!("the connection was dropped without a close frame ({why})")));
                }
                Some(_) => {}
            }
        }
    }

    /// [`expect_close_within`](Self::expect_close_within) the step bound.
    pub async fn expect_close(&mut self) -> Result<(u16, String), Verdict> {
        let step = self.step;
        self.expect_close_within(step).await
    }

    /// Expects a close with `code`; returns the reason.
    pub async fn expect_close_code(&mut self, code: u16, what: &str) -> Result<String, Verdict> {
        let (got, reason) = self.expect_close().await?;
        if got != code {
            return Err(Verdict::Fail(format!("{what}: expected close {code}, got close {got} {reason:?}")));
        }
        Ok(reason)
    }

    /// Everything that arrives within `window` (answering pings), until the connection ends.
    pub async fn collect(&mut self, window: Duration) -> Result<Vec<Got>, Verdict> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                None => return Ok(got),
                Some(Got::Ping(value)) => {
                    self.send(Frame::Pong { value }).await?;
                    got.push(Got::Ping(value));
                }
                Some(end @ (Got::Close(..) | Got::Ended(_))) => {
                    got.push(end);
                    return Ok(got);
                }
                Some(other) => got.push(other),
            }
        }
    }

    /// Closes with `code` and waits (briefly) for the server's answer.
    pub async fn close(mut self, code: u16) {
        if self.closed {
            return;
        }
        let frame =
            tokio_tungstenite::tungstenite::protocol::CloseFrame { code: code.into(), reason: "conformance".into() };
        let _ = timeout(Duration::from_millis(500), async {
            if self.ws.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        })
        .await;
    }

    /// Whether the connection has ended (close frame or error seen).
    pub fn is_ended(&self) -> bool {
        self.closed
    }
}
