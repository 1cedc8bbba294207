//! Serving an axum app on a TCP listener with the bounds a public server needs against hostile
//! clients (what `axum::serve` leaves out): a cap on connections in total and per client IP, a
//! deadline and a size cap on each HTTP request head (slowloris, idle keep-alive sockets, huge
//! headers), accept errors (`EMFILE`) without a busy loop, `TCP_NODELAY`, graceful shutdown.
//!
//! Every TCP connection counts against the caps — plain HTTP, plain WebSocket and durable
//! alike — from its accept until it closes: an upgraded WebSocket keeps its slot as long as its
//! socket lives, because the slot is held by the socket itself.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The bounds [`serve`] holds every connection to. The defaults suit a 2-core machine with a
/// few GiB to spare for connections: 20 000 sockets with their buffers (a few KiB each idle, at
/// most [`max_header_bytes`](Self::max_header_bytes) plus a WebSocket's buffers busy) fit easily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most TCP connections open at once (HTTP, WebSocket, durable; idle keep-alive sockets
    /// too). A connection accepted beyond it is closed at once, without a response. Keep it
    /// below the process's file descriptor limit (`ulimit -n`). Default 20 000.
    pub max_connections: usize,
    /// Most TCP connections open at once from one client IP address (IPv4-mapped IPv6
    /// addresses count as their IPv4 address; other IPv6 addresses each on their own). Beyond
    /// it, closed at once like above. Clients behind one NAT or proxy share it. Default 200.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a complete HTTP request head, counted from the
    /// accept (or from the end of the previous response, for a kept-alive connection): a
    /// slowloris client, or an idle keep-alive socket that sends no request, is closed after
    /// it. Not applied to WebSockets once upgraded (the durable endpoint has its own
    /// handshake timeout and heartbeat). Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest HTTP request head (request line and headers), in bytes; a larger one is
    /// answered `431 Request Header Fields Too Large` and the connection closed. It is also the
    /// connection's read buffer (at least 8 KiB). Default 16 KiB (nginx allows 4 × 8 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in one request (more: 431). Default 100.
    pub max_headers: usize,
    /// After the shutdown future completes: how long in-flight HTTP requests may take to
    /// finish before their connections are dropped. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 20_000,
            max_connections_per_ip: 200,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops accepting,
/// lets in-flight HTTP requests finish (at most [`ServeLimits::shutdown_timeout`]) and returns.
/// WebSockets are not waited for: make `shutdown` call [`Durable::shutdown`](crate::Durable::shutdown)
/// (every durable connection is closed with 1012, the clients resume elsewhere).
///
/// Like `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`:
/// handlers can extract `ConnectInfo<SocketAddr>` (the durable endpoint logs it), HTTP/1.1 with
/// upgrades, `TCP_NODELAY` on every socket. Accept errors (out of file descriptors, …) are
/// retried after a pause that grows to 1 s, logged once per burst; over-cap refusals likewise.
///
/// ```no_run
/// # async fn run(app: axum::Router, durable: durable_ws_server::Durable) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// durable_ws_server::serve(listener, app, durable_ws_server::ServeLimits::default(), async move {
///     let _ = tokio::signal::ctrl_c().await;
///     durable.shutdown().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8 * 1024))
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_ip);
    // Each connection task holds a receiver: `closed()` on the sender waits for them all.
    let (stop, stopped) = watch::channel(false);
    let mut refused = Burst::new();
    let mut failed = Burst::new();
    let mut pause = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                pause = Duration::ZERO;
                accepted
            }
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: the next accept fails at once too; wait for
                // connections to close instead of spinning.
                pause = (pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                failed.hit(|suppressed| tracing::error!(%error, pause_ms = pause.as_millis() as u64, suppressed, "accept failed; pausing"));
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let Some(slot) = slots.take(peer.ip()) else {
            crate::metrics::limit(durable_ws_core::server::metrics::limit::CONNECTIONS);
            refused.hit(|suppressed| {
                tracing::warn!(peer = %peer, open = slots.open(), suppressed, "connection refused: too many connections (in total or from this IP)")
            });
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(Counted { io: tcp, _slot: slot });
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                Ok::<_, Infallible>(
                    tower_service::Service::call(&mut app, request.map(Body::new))
                        .await
                        .unwrap_or_else(|never| match never {}),
                )
            }
        });
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { drop(stopped.wait_for(|stop| *stop).await) } => {
                    // Finish the request in flight (if any), then close; idle ones close now.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(peer = %peer, %error, "http connection ended");
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    if tokio::time::timeout(limits.shutdown_timeout, stop.closed()).await.is_err() {
        tracing::warn!(open = stop.receiver_count(), "shutdown: http connections still busy, dropped");
    }
    Ok(())
}

/// Errors of one connection (it was reset before we accepted it): accept the next at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Logs the first of a burst of like events, then at most one line a second with the count of
/// the ones not logged.
struct Burst {
    last: Option<Instant>,
    suppressed: u64,
}

impl Burst {
    fn new() -> Burst {
        Burst { last: None, suppressed: 0 }
    }

    fn hit(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// The connection counts, in total and per IP.
#[derive(Clone)]
struct Slots(Arc<Mutex<Counts>>);

struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    max_total: usize,
    max_per_ip: usize,
}

impl Slots {
    fn new(max_total: usize, max_per_ip: usize) -> Slots {
        Slots(Arc::new(Mutex::new(Counts { total: 0, per_ip: HashMap::new(), max_total, max_per_ip })))
    }

    fn open(&self) -> usize {
        crate::lock(&self.0).total
    }

    /// A slot for a connection from `ip`, if both caps allow one.
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut counts = crate::lock(&self.0);
        if counts.total >= counts.max_total {
            return None;
        }
        let max_per_ip = counts.max_per_ip;
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= max_per_ip {
            return None;
        }
        *from_ip += 1;
        counts.total += 1;
        Some(Slot { slots: self.clone(), ip })
    }
}

/// One open connection; dropping it frees the slot.
struct Slot {
    slots: Slots,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = crate::lock(&self.slots.0);
        counts.total -= 1;
        if let Some(from_ip) = counts.per_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A socket holding its slot: the slot goes with the socket, also when hyper hands it to a
/// WebSocket on upgrade.
struct Counted {
    io: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_in_total_and_per_ip_and_free_on_drop() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = slots.take(a).unwrap();
        let _second = slots.take(mapped).expect("same IP, second slot");
        assert!(slots.take(a).is_none(), "per-IP cap (mapped IPv6 counts as IPv4)");
        let _third = slots.take(b).unwrap();
        assert!(slots.take("192.0.2.3".parse().unwrap()).is_none(), "total cap");
        drop(first);
        assert_eq!(slots.open(), 2);
        assert!(slots.take(a).is_some());
        assert_eq!(crate::lock(&slots.0).per_ip.len(), 2, "{:?}", crate::lock(&slots.0).per_ip);
    }

    #[test]
    fn bursts_log_once_then_once_a_second() {
        let mut burst = Burst::new();
        let mut logged = Vec::new();
        for _ in 0..5 {
            burst.hit(|suppressed| logged.push(suppressed));
        }
        assert_eq!(logged, vec![0]);
        burst.last = Some(Instant::now() - Duration::from_secs(2));
        burst.hit(|suppressed| logged.push(suppressed));
        assert_eq!(logged, vec![0, 4]);
    }
}
