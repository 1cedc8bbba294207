//! Hostile clients at the byte level, for `tests/hostile.rs` and the `hostile` measuring binary
//! of the testkit (which includes this file by path): a WebSocket handshake and frames written
//! by hand over a `TcpStream` (optionally with a tiny receive buffer, so a client that does not
//! read pushes back on the server at once instead of parking megabytes in the kernel), a
//! bystander durable session that measures its echo round trip, and the server process's
//! memory and descriptors from `/proc`.
//!
//! Depends on std, tokio and durable-ws-core only.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use durable_ws_core::frame::Frame;
use durable_ws_core::{PayloadRef, Token, WelcomeStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// WebSocket opcodes (RFC 6455 §5.2).
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A receive buffer small enough that a client that does not read stops the server's writes
/// after a few KiB (Linux doubles it and rounds it up to its minimum).
pub const TINY_WINDOW: u32 = 4096;

/// How a handshake went wrong.
#[derive(Debug)]
pub enum OpenError {
    /// TCP or the head failed.
    Io(io::Error),
    /// The server answered with another status line.
    Status(String),
}

/// One frame from the server.
#[derive(Debug)]
pub enum Read {
    Frame {
        opcode: u8,
        payload: Vec<u8>,
    },
    /// The server closed TCP (EOF).
    Eof,
    /// The connection failed (reset).
    Error(io::ErrorKind),
    /// Nothing within the wait.
    Timeout,
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// TCP closed or reset without a close frame.
    Dropped,
    /// Still open after the wait.
    Open,
}

/// A client WebSocket written by hand.
pub struct RawWs {
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

/// Connects a TCP socket, with a receive buffer of `recv_buffer` bytes if given.
pub async fn tcp(addr: SocketAddr, recv_buffer: Option<u32>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The upgrade request for `path` (offering `durable.v1` if `durable`), with extra headers.
pub fn upgrade_request(addr: SocketAddr, path: &str, durable: bool, headers: &[(&str, &str)]) -> String {
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if durable {
        head.push_str("Sec-WebSocket-Protocol: durable.v1\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

impl RawWs {
    /// Opens `ws://addr{path}`; `recv_buffer` caps the client's TCP window.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        durable: bool,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> Result<RawWs, OpenError> {
        let mut tcp = tcp(addr, recv_buffer).await.map_err(OpenError::Io)?;
        tcp.write_all(upgrade_request(addr, path, durable, headers).as_bytes()).await.map_err(OpenError::Io)?;
        let mut buf = Vec::new();
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = timeout(Duration::from_secs(10), tcp.read(&mut chunk))
                .await
                .map_err(|_| OpenError::Io(io::ErrorKind::TimedOut.into()))?
                .map_err(OpenError::Io)?;
            if n == 0 {
                return Err(OpenError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.lines().next().unwrap_or_default().to_string();
        if !status.starts_with("HTTP/1.1 101") {
            return Err(OpenError::Status(status));
        }
        buf.drain(..end);
        Ok(RawWs { tcp, buf })
    }

    /// [`open`](Self::open) that must succeed.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        durable: bool,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> RawWs {
        match RawWs::open(addr, path, durable, headers, recv_buffer).await {
            Ok(ws) => ws,
            Err(error) => panic!("upgrade of {path} failed: {error:?}"),
        }
    }

    /// Writes `bytes`; `false` if it could not within `within` (the server stopped reading) or
    /// the connection failed.
    pub async fn write(&mut self, bytes: &[u8], within: Duration) -> bool {
        matches!(timeout(within, self.tcp.write_all(bytes)).await, Ok(Ok(())))
    }

    /// Sends `Hello` for a new session and reads the `Welcome`; `Err` is how the connection
    /// ended instead (e.g. 1013 before any welcome).
    pub async fn hello(&mut self) -> Result<(WelcomeStatus, Token), Ended> {
        self.hello_resume(None).await
    }

    /// Sends `Hello` (resuming `(token, last received)` if given) and reads the `Welcome`.
    pub async fn hello_resume(&mut self, resume: Option<(Token, u64)>) -> Result<(WelcomeStatus, Token), Ended> {
        self.write(&durable_frame(Frame::Hello { resume }), Duration::from_secs(5)).await;
        loop {
            match self.read_frame(Duration::from_secs(10)).await {
                Read::Frame { opcode: BINARY, payload } => match Frame::decode(&payload) {
                    Ok(Frame::Welcome { status, token, .. }) => return Ok((status, token)),
                    other => panic!("expected Welcome, got {other:?}"),
                },
                Read::Frame { opcode: CLOSE, payload } => return Err(close_of(&payload)),
                Read::Frame { .. } => {}
                Read::Timeout => return Err(Ended::Open),
                Read::Eof | Read::Error(_) => return Err(Ended::Dropped),
            }
        }
    }

    /// Reads the next server frame (unmasked), waiting at most `within`.
    pub async fn read_frame(&mut self, within: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Read::Frame { opcode, payload };
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) => return Read::Eof,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(error)) => return Read::Error(error.kind()),
            }
        }
    }

    /// Reads (and discards) everything until the close frame or the end of TCP, at most
    /// `within` in all.
    pub async fn until_closed(&mut self, within: Duration) -> Ended {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left).await {
                Read::Frame { opcode: CLOSE, payload } => return close_of(&payload),
                Read::Frame { .. } => {}
                Read::Eof | Read::Error(_) => return Ended::Dropped,
                Read::Timeout => return Ended::Open,
            }
        }
    }
}

fn close_of(payload: &[u8]) -> Ended {
    if payload.len() < 2 {
        return Ended::Close(1005, String::new());
    }
    Ended::Close(u16::from_be_bytes([payload[0], payload[1]]), String::from_utf8_lossy(&payload[2..]).into_owned())
}

/// A whole frame at the start of `buf`: `(opcode, payload, bytes used)`.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let key = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        at += 4;
        Some([buf[at - 4], buf[at - 3], buf[at - 2], buf[at - 1]])
    } else {
        None
    };
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(key) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Some((opcode, payload, at + len))
}

/// A frame with its first byte given as is (FIN, RSV1-3, opcode), masked with the all-zero key
/// (legal, and it spares masking megabytes) when `masked`.
pub fn raw_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(first);
    let mask = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask | n as u8),
        n if n <= 0xffff => {
            out.push(mask | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(payload);
    out
}

/// A final, masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(0x80 | opcode, payload, true)
}

/// A `durable.v1` frame in a binary WebSocket frame.
pub fn durable_frame(frame: Frame<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    frame.encode(&mut bytes);
    client_frame(BINARY, &bytes)
}

/// A durable binary DATA frame of `len` bytes.
pub fn data_frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    durable_frame(Frame::Data { seq, payload: PayloadRef::Binary(payload) })
}

/// A durable session on `/echo` that reads and acknowledges: the server's health, seen from a
/// well-behaved client.
/// (Or a plain one, whose health does not depend on the server's replay-buffer budget.)
pub struct Bystander {
    ws: RawWs,
    durable: bool,
    next: u64,
    pub round_trips: Vec<Duration>,
}

impl Bystander {
    /// A durable session on `/echo`.
    pub async fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Bystander {
        let mut ws = RawWs::connect(addr, "/echo", true, headers, None).await;
        ws.hello().await.expect("the bystander gets a session");
        Bystander { ws, durable: true, next: 1, round_trips: Vec::new() }
    }

    /// A plain WebSocket on `/echo`.
    pub async fn open_plain(addr: SocketAddr, headers: &[(&str, &str)]) -> Bystander {
        let ws = RawWs::connect(addr, "/echo", false, headers, None).await;
        Bystander { ws, durable: false, next: 1, round_trips: Vec::new() }
    }

    /// One echo, answering pings and acknowledging; `None` if none came back within `within`.
    pub async fn round_trip(&mut self, within: Duration) -> Option<Duration> {
        let seq = self.next;
        self.next += 1;
        let text = format!("bystander {seq}");
        let start = Instant::now();
        let frame = if self.durable {
            durable_frame(Frame::Data { seq, payload: PayloadRef::Text(&text) })
        } else {
            client_frame(TEXT, text.as_bytes())
        };
        if !self.ws.write(&frame, within).await {
            return None;
        }
        loop {
            let left = within.saturating_sub(start.elapsed());
            match self.ws.read_frame(left).await {
                Read::Frame { opcode: TEXT, payload } if !self.durable => {
                    assert_eq!(payload, text.as_bytes(), "the bystander's echo");
                    let took = start.elapsed();
                    self.round_trips.push(took);
                    return Some(took);
                }
                Read::Frame { opcode: BINARY, payload } => match Frame::decode(&payload).ok()? {
                    Frame::Data { seq: got, payload } if got == seq => {
                        assert_eq!(payload.as_bytes(), text.as_bytes(), "the bystander's echo");
                        let took = start.elapsed();
                        self.ws.write(&durable_frame(Frame::Ack { seq }), within).await;
                        self.round_trips.push(took);
                        return Some(took);
                    }
                    Frame::Ping { value } => {
                        self.ws.write(&durable_frame(Frame::Pong { value }), within).await;
                    }
                    _ => {}
                },
                Read::Frame { opcode: PING, payload } => {
                    self.ws.write(&client_frame(PONG, &payload), within).await;
                }
                Read::Frame { .. } => {}
                _ => return None,
            }
        }
    }

    /// Round trips one after another, `pause` apart, until `stop` fires; returns the bystander.
    pub async fn keep_echoing(
        mut self,
        pause: Duration,
        within: Duration,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) -> (Bystander, usize) {
        let mut failures = 0;
        loop {
            if self.round_trip(within).await.is_none() {
                failures += 1;
            }
            tokio::select! {
                _ = &mut stop => return (self, failures),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// `(p50, p99, max)` of the round trips so far.
    pub fn percentiles(&self) -> (Duration, Duration, Duration) {
        percentiles(&self.round_trips)
    }
}

/// `(p50, p99, max)` of `samples` (zeros when empty).
pub fn percentiles(samples: &[Duration]) -> (Duration, Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), *sorted.last().unwrap())
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Open file descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|dir| dir.count()).unwrap_or(0)
}

/// Reads `GET /stats` and returns the value of a numeric field.
pub async fn stat(addr: SocketAddr, field: &str) -> u64 {
    let mut tcp = tcp(addr, None).await.expect("stats connect");
    tcp.write_all(format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    timeout(Duration::from_secs(5), tcp.read_to_string(&mut body)).await.expect("stats in time").unwrap();
    let key = format!("\"{field}\":");
    let at = body.find(&key).unwrap_or_else(|| panic!("no {field} in {body}")) + key.len();
    body[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

pub const MIB: u64 = 1 << 20;
