//! `serve`: connection caps (in total, per IP, upgraded WebSockets included), the request head's
//! deadline and size cap, `ConnectInfo`, graceful shutdown — each with a bystander that still
//! gets its answers.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use durable_ws_server::{serve, Durable, ServeLimits, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(5), &mut self.task).await.expect("stops in time").unwrap().unwrap();
    }
}

async fn echo(mut session: Session<String>) {
    while let Some(text) = session.recv().await {
        let _ = session.send(&text);
    }
}

async fn start(limits: ServeLimits) -> Running {
    let durable = Durable::builder().build();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
        .route(
            "/slow",
            get(|| async {
                sleep(Duration::from_millis(400)).await;
                "slow ok"
            }),
        )
        .route("/echo", durable.endpoint(echo));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, limits, async move {
        let _ = stopped.await;
        durable.shutdown().await;
    }));
    Running { addr, stop: Some(stop), task }
}

/// A TCP connection to `addr` from `source` (any address of 127.0.0.0/8 on Linux).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// `GET path` on a new connection from `source`; the whole response.
async fn get_from(source: &str, addr: SocketAddr, path: &str) -> String {
    let mut stream = connect_from(source, addr).await;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.expect("answered in time").unwrap();
    response
}

async fn bystander_ok(source: &str, addr: SocketAddr) {
    let response = get_from(source, addr, "/health").await;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("ok"), "{response}");
}

/// Whether the server closed `stream` within `within` (end of stream or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match timeout(deadline.saturating_duration_since(Instant::now()), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (408, 431): read on to the close
        }
    }
}

fn limits() -> ServeLimits {
    ServeLimits { header_read_timeout: Duration::from_secs(30), ..ServeLimits::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_are_documented() {
    let defaults = ServeLimits::default();
    assert_eq!(defaults.max_connections, 20_000);
    assert_eq!(defaults.max_connections_per_ip, 200);
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_header_bytes, 16 * 1024);
    assert_eq!(defaults.max_headers, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_over_its_cap_is_closed_while_others_are_served() {
    let server = start(ServeLimits { max_connections_per_ip: 3, ..limits() }).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", server.addr).await);
    }
    sleep(Duration::from_millis(100)).await;
    let mut over = connect_from("127.0.0.2", server.addr).await;
    assert!(closed_within(&mut over, Duration::from_secs(2)).await, "the 4th connection from one IP is closed");
    for stream in &mut held {
        assert!(!closed_within(stream, Duration::from_millis(50)).await, "the first three stay open");
    }
    bystander_ok("127.0.0.3", server.addr).await;
    // A closed connection gives its slot back.
    drop(held.pop());
    sleep(Duration::from_millis(100)).await;
    bystander_ok("127.0.0.2", server.addr).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_cap_holds_and_frees_slots_on_close() {
    let server = start(ServeLimits { max_connections: 4, ..limits() }).await;
    let mut held = Vec::new();
    for n in 0..4 {
        held.push(connect_from(&format!("127.0.1.{}", n + 1), server.addr).await);
    }
    sleep(Duration::from_millis(100)).await;
    let mut over = connect_from("127.0.1.9", server.addr).await;
    assert!(closed_within(&mut over, Duration::from_secs(2)).await, "the 5th connection is closed");
    drop(held.pop());
    sleep(Duration::from_millis(100)).await;
    bystander_ok("127.0.1.9", server.addr).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_websockets_keep_their_slot_until_they_close() {
    let server = start(ServeLimits { max_connections_per_ip: 2, ..limits() }).await;
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/echo",
        server.addr
    ))
    .unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "durable.v1".parse().unwrap());
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await.expect("upgraded");
    sleep(Duration::from_millis(100)).await;
    bystander_ok("127.0.0.1", server.addr).await; // the second slot
    let _second = connect_from("127.0.0.1", server.addr).await;
    sleep(Duration::from_millis(100)).await;
    let mut third = connect_from("127.0.0.1", server.addr).await;
    assert!(closed_within(&mut third, Duration::from_secs(2)).await, "the WebSocket still counts after its upgrade");
    drop(ws);
    drop(_second);
    sleep(Duration::from_millis(300)).await;
    bystander_ok("127.0.0.1", server.addr).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_sockets_are_closed_after_the_head_timeout() {
    let server = start(ServeLimits { header_read_timeout: Duration::from_millis(600), ..ServeLimits::default() }).await;
    let started = Instant::now();
    let mut partial = connect_from("127.0.0.2", server.addr).await;
    partial.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut silent = connect_from("127.0.0.2", server.addr).await;
    // A kept-alive connection that sends no second request.
    let mut kept = connect_from("127.0.0.2", server.addr).await;
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 512];
    let n = timeout(Duration::from_secs(2), kept.read(&mut first)).await.unwrap().unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first[..n]));
    // Trickling a byte at a time does not extend the deadline.
    let trickle = tokio::spawn(async move {
        for _ in 0..10 {
            if partial.write_all(b"X").await.is_err() {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        closed_within(&mut partial, Duration::from_secs(3)).await
    });
    bystander_ok("127.0.0.3", server.addr).await;
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "a silent socket is closed");
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await, "an idle keep-alive socket is closed");
    assert!(trickle.await.unwrap(), "a partial head is closed");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(4), "{elapsed:?}");
    bystander_ok("127.0.0.3", server.addr).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_is_refused_with_431() {
    let server = start(limits()).await;
    let mut stream = connect_from("127.0.0.2", server.addr).await;
    let big = "a".repeat(20 * 1024);
    let _ = stream.write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes()).await;
    let mut response = Vec::new();
    let _ = timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await.expect("closed in time");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    // Many small headers: over max_headers.
    let mut stream = connect_from("127.0.0.2", server.addr).await;
    let many: String = (0..150).map(|n| format!("X-{n}: 1\r\n")).collect();
    let _ = stream.write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()).await;
    let mut response = Vec::new();
    let _ = timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await.expect("closed in time");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    // Just under the cap passes.
    let mut stream = connect_from("127.0.0.2", server.addr).await;
    let fits = "a".repeat(15 * 1024);
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {fits}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    timeout(Duration::from_secs(3), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    bystander_ok("127.0.0.3", server.addr).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() {
    let server = start(limits()).await;
    let response = get_from("127.0.0.5", server.addr, "/peer").await;
    assert!(response.split("\r\n\r\n").nth(1).is_some_and(|body| body.starts_with("127.0.0.5:")), "{response}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish_and_stops_accepting() {
    let server = start(limits()).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move { get_from("127.0.0.2", addr, "/slow").await });
    let mut idle = connect_from("127.0.0.3", addr).await;
    sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let response = slow.await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("slow ok"), "{response}");
    assert!(closed_within(&mut idle, Duration::from_secs(1)).await, "idle connections are closed");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
