//! Helpers shared by the integration tests: a server on 127.0.0.1:0 and raw tokio-tungstenite
//! connections that speak `durable.v1` frame by frame; [`native`] has the `NativeClient` ones.
//! (Each test binary uses only some of them.)
#![allow(dead_code)]

pub mod native;

use std::net::SocketAddr;
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{Token, WelcomeStatus};
use durable_ws_reference::{Server, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn server(config: ServerConfig) -> Server {
    Server::bind("127.0.0.1:0", config).await.expect("server starts")
}

/// Opens `ws://addr{path}` (offering `durable.v1` if `durable`) with extra headers; `Err` is
/// the HTTP status of a refused handshake.
pub async fn connect(addr: SocketAddr, path: &str, durable: bool, headers: &[(&str, &str)]) -> Result<Raw, u16> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if durable {
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("durable.v1"));
    }
    for (name, value) in headers {
        request
            .headers_mut()
            .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    match timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request)).await.expect("handshake in time") {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

/// A raw WebSocket to `/echo` (no handshake timeout), offering `durable.v1` if `durable`;
/// returns whether the server selected it.
pub async fn raw_selected(addr: SocketAddr, durable: bool) -> (Raw, bool) {
    let mut request = format!("ws://{addr}/echo").into_client_request().unwrap();
    if durable {
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("durable.v1"));
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.expect("raw connect");
    let selected = response.headers().get("sec-websocket-protocol").is_some_and(|p| p == "durable.v1");
    (ws, selected)
}

/// [`raw_selected`] without the answer.
pub async fn raw(addr: SocketAddr, durable: bool) -> Raw {
    raw_selected(addr, durable).await.0
}

/// A durable connection to `/echo`.
pub async fn durable(addr: SocketAddr) -> Raw {
    connect(addr, "/echo", true, &[]).await.expect("handshake accepted")
}

pub fn encode(frame: Frame<'_>) -> Message {
    let mut out = Vec::new();
    frame.encode(&mut out);
    Message::Binary(out.into())
}

/// Reads the next durable frame and hands it to `check`.
pub async fn next_frame<R>(ws: &mut Raw, check: impl FnOnce(Frame<'_>) -> R) -> R {
    loop {
        match timeout(Duration::from_secs(5), ws.next()).await.expect("frame in time") {
            Some(Ok(Message::Binary(bytes))) => return check(Frame::decode(&bytes).expect("server frames decode")),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

/// Reads until the close frame; returns its code.
pub async fn close_code(ws: &mut Raw) -> u16 {
    loop {
        match timeout(Duration::from_secs(5), ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Sends `Hello` (new or resuming); returns the `Welcome`'s status, token and resume point.
pub async fn hello(ws: &mut Raw, resume: Option<(Token, u64)>) -> (WelcomeStatus, Token, u64) {
    ws.send(encode(Frame::Hello { resume })).await.unwrap();
    next_frame(ws, |frame| match frame {
        Frame::Welcome { status, token, last_received } => (status, token, last_received),
        other => panic!("expected Welcome, got {other:?}"),
    })
    .await
}

/// Reads frames up to the next data frame (skipping acks and pings); returns its sequence
/// number and payload bytes.
pub async fn next_data(ws: &mut Raw) -> (u64, Vec<u8>) {
    loop {
        let data = next_frame(ws, |frame| match frame {
            Frame::Data { seq, payload } => Some((seq, payload.as_bytes().to_vec())),
            _ => None,
        })
        .await;
        if let Some(data) = data {
            return data;
        }
    }
}

/// Sends data frame `seq` and waits for its echo (the echo server numbers its replies like
/// the requests when the client only talks to it over this session).
pub async fn echo(ws: &mut Raw, seq: u64, text: &str) {
    ws.send(encode(Frame::Data { seq, payload: durable_ws_core::PayloadRef::Text(text) })).await.unwrap();
    assert_eq!(next_data(ws).await, (seq, text.as_bytes().to_vec()));
}

/// Starts the real server binary on 127.0.0.1:0 serving the temp dir, with `configure` adding
/// arguments, environment and stderr handling; returns it and the address from its stdout line.
pub async fn spawn_binary(configure: impl FnOnce(&mut tokio::process::Command)) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_durable-ws-server"));
    command
        .args(["--listen", "127.0.0.1:0", "--www"])
        .arg(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    configure(&mut command);
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(10), stdout.next_line()).await.unwrap().unwrap().expect("a listening line");
    let addr = line.rsplit(' ').next().unwrap().parse().unwrap();
    (child, addr)
}

/// Polls `condition` every 10 ms until it holds (5 s at most).
pub async fn wait_until(mut condition: impl FnMut() -> bool) {
    timeout(Duration::from_secs(5), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition in time");
}
