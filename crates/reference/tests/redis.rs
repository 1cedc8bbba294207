//! Sessions in Redis (issue 11), against a real `redis-server` started on a free loopback port:
//! any node resumes any session and fences the one that drove it, rooms span nodes with one
//! order, tombstones and expiry are shared, a node killed mid-stream loses nothing it
//! acknowledged, and Redis being flushed, stopped or restarted is explicit, never a silent gap.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{close_code, PayloadRef, WelcomeStatus};
use durable_ws_reference::ServerConfig;
use futures_util::SinkExt;
use support::{
    close_code as read_close, connect, echo, encode, hello, next_data, next_frame, server, spawn_binary, Raw,
};

/// A `redis-server` of this test alone, without persistence; killed when dropped.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Redis::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh installs it)");
        let redis = Redis { port, child };
        for _ in 0..200 {
            if redis.cli(&["PING"]).is_some_and(|out| out == "PONG") {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis-cli` output, trimmed; `None` if it failed.
    fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(redis: &Redis) -> ServerConfig {
    ServerConfig { redis: Some(redis.url()), ..ServerConfig::default() }
}

async fn echo_ws(addr: SocketAddr) -> Raw {
    connect(addr, "/echo", true, &[]).await.expect("handshake accepted")
}

#[tokio::test]
async fn any_node_resumes_any_session_and_fences_the_node_that_drove_it() {
    let redis = Redis::start();
    let (a, b) = (server(config(&redis)).await, server(config(&redis)).await);
    let mut first = echo_ws(a.local_addr()).await;
    let (status, token, _) = hello(&mut first, None).await;
    assert_eq!(status, WelcomeStatus::New);
    for seq in 1..=3 {
        echo(&mut first, seq, &seq.to_string()).await;
    }
    let mut second = echo_ws(b.local_addr()).await;
    let (status, resumed, last_received) = hello(&mut second, Some((token, 3))).await;
    assert_eq!((status, resumed, last_received), (WelcomeStatus::Resumed, token, 3));
    assert_eq!(read_close(&mut first).await, close_code::SUPERSEDED, "node A is fenced and closes its connection");
    for seq in 4..=6 {
        echo(&mut second, seq, &seq.to_string()).await;
    }
    // And back to A, which restores it from Redis again.
    drop(second);
    let mut third = echo_ws(a.local_addr()).await;
    assert_eq!(hello(&mut third, Some((token, 6))).await, (WelcomeStatus::Resumed, token, 6));
    echo(&mut third, 7, "7").await;
    assert!(b.stats().sessions_moved >= 1 && a.stats().sessions_moved >= 1);
}

#[tokio::test]
async fn messages_queued_while_detached_are_replayed_by_another_node() {
    let redis = Redis::start();
    let (a, b) = (server(config(&redis)).await, server(config(&redis)).await);
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    // Three messages sent; the echoes are not read before the connection drops.
    for seq in 1..=3 {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text(&seq.to_string()) })).await.unwrap();
    }
    support::wait_until(|| a.stats().messages_out >= 3).await;
    drop(ws);
    let mut ws = echo_ws(b.local_addr()).await;
    let (status, _, last_received) = hello(&mut ws, Some((token, 0))).await;
    assert_eq!((status, last_received), (WelcomeStatus::Resumed, 3));
    for seq in 1..=3 {
        assert_eq!(next_data(&mut ws).await, (seq, seq.to_string().into_bytes()), "replayed by node B");
    }
}

#[tokio::test]
async fn a_room_spans_the_nodes_with_one_order() {
    let redis = Redis::start();
    let (a, b) = (server(config(&redis)).await, server(config(&redis)).await);
    let mut ann = connect(a.local_addr(), "/chat", true, &[]).await.unwrap();
    let mut bob = connect(b.local_addr(), "/chat", true, &[]).await.unwrap();
    hello(&mut ann, None).await;
    hello(&mut bob, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // both joined
    for n in 1..=20u64 {
        let (ws, who) = if n % 2 == 0 { (&mut bob, "bob") } else { (&mut ann, "ann") };
        let text = format!("{who}{n}");
        ws.send(encode(Frame::Data { seq: n.div_ceil(2), payload: PayloadRef::Text(&text) })).await.unwrap();
    }
    let [mut at_ann, mut at_bob] = [Vec::new(), Vec::new()];
    for (ws, seen) in [(&mut ann, &mut at_ann), (&mut bob, &mut at_bob)] {
        for expected in 1..=20u64 {
            let (seq, bytes) = next_data(ws).await;
            assert_eq!(seq, expected, "each member's own numbering, without gaps");
            seen.push(String::from_utf8(bytes).unwrap());
            ws.send(encode(Frame::Ack { seq })).await.unwrap();
        }
    }
    assert_eq!(at_ann, at_bob, "one order on both nodes");
    let mut sorted = at_ann.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "each message once: {at_ann:?}");
}

#[tokio::test]
async fn a_tombstone_is_shared_by_the_nodes() {
    let redis = Redis::start();
    let mut config = config(&redis);
    config.max_protocol_errors = 1;
    let (a, b) = (server(config.clone()).await, server(config).await);
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    ws.send(encode(Frame::Ack { seq: 99 })).await.unwrap();
    assert_eq!(read_close(&mut ws).await, close_code::PROTOCOL_ERROR);
    support::wait_until(|| {
        redis.cli(&["EXISTS", &format!("dws:{{{}}}:t", durable_ws_server::token_to_hex(&token))]).as_deref()
            == Some("1")
    })
    .await;
    let mut ws = echo_ws(b.local_addr()).await;
    let (status, fresh, _) = hello(&mut ws, Some((token, 0))).await;
    assert_eq!(status, WelcomeStatus::LostRefused, "node B learns why from Redis");
    assert_ne!(fresh, token);
}

#[tokio::test]
async fn a_detached_session_expires_in_redis_too() {
    let redis = Redis::start();
    let config = ServerConfig { session_ttl: Duration::from_secs(1), ..config(&redis) };
    let a = server(config.clone()).await;
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    echo(&mut ws, 1, "x").await;
    let key = format!("dws:{{{}}}:s", durable_ws_server::token_to_hex(&token));
    assert_eq!(redis.cli(&["EXISTS", &key]).as_deref(), Some("1"));
    drop(ws);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(redis.cli(&["EXISTS", &key]).as_deref(), Some("0"), "gone after the TTL");
    let b = server(config).await;
    let mut ws = echo_ws(b.local_addr()).await;
    assert_eq!(hello(&mut ws, Some((token, 1))).await.0, WelcomeStatus::LostUnknown);
}

#[tokio::test]
async fn a_flush_is_a_lost_session_never_a_silent_gap() {
    let redis = Redis::start();
    let a = server(config(&redis)).await;
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    echo(&mut ws, 1, "1").await;
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(read_close(&mut ws).await, close_code::SESSION_EXPIRED, "the node notices the new epoch");
    let mut ws = echo_ws(a.local_addr()).await;
    let (status, fresh, _) = hello(&mut ws, Some((token, 1))).await;
    assert_eq!(status, WelcomeStatus::LostUnknown);
    assert_ne!(fresh, token);
    echo(&mut ws, 1, "again").await;
}

#[tokio::test]
async fn without_redis_nothing_is_acknowledged_and_new_sessions_are_refused_until_it_returns() {
    let redis = Redis::start();
    let a = server(config(&redis)).await;
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    echo(&mut ws, 1, "1").await;
    let port = redis.stop();
    ws.send(encode(Frame::Data { seq: 2, payload: PayloadRef::Text("2") })).await.unwrap();
    let close = next_frame_or_close(&mut ws).await;
    assert_eq!(close, Err(close_code::TRY_AGAIN_LATER), "closed without an ack or an echo for 2");
    let mut fresh = echo_ws(a.local_addr()).await;
    fresh.send(encode(Frame::Hello { resume: None })).await.unwrap();
    assert_eq!(read_close(&mut fresh).await, close_code::TRY_AGAIN_LATER, "no new session without storage");
    // Redis is back (empty: it had no persistence): service resumes; the old session is lost.
    let _redis = Redis::start_on(port);
    let mut ws = None;
    for _ in 0..50 {
        let mut attempt = echo_ws(a.local_addr()).await;
        attempt.send(encode(Frame::Hello { resume: Some((token, 1)) })).await.unwrap();
        if let Ok(status) = next_frame_or_close(&mut attempt).await {
            assert_eq!(status, Some(WelcomeStatus::LostUnknown));
            ws = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ws = ws.expect("service back once Redis is");
    echo(&mut ws, 1, "back").await;
}

/// The next frame (`Ok(Some(status))` for a Welcome, `Ok(None)` for another frame) or the close code.
async fn next_frame_or_close(ws: &mut Raw) -> Result<Option<WelcomeStatus>, u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Binary(bytes))) => {
                return Ok(match Frame::decode(&bytes).unwrap() {
                    Frame::Welcome { status, .. } => Some(status),
                    _ => None,
                })
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(0, |f| f.code.into())),
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_node_killed_mid_stream_loses_nothing_it_acknowledged() {
    let redis = Redis::start();
    let url = redis.url();
    let (mut node_a, a) = spawn_binary(|command| {
        command.args(["--redis", &url]);
    })
    .await;
    let b = server(config(&redis)).await;
    let mut ws = echo_ws(a).await;
    let (_, token, _) = hello(&mut ws, None).await;
    let total = 200u64;
    for seq in 1..=total {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text(&seq.to_string()) })).await.unwrap();
    }
    // Read until node A acknowledged something, then kill it without a word.
    let (mut acked, mut echoes) = (0, Vec::new());
    while acked < 50 {
        next_frame(&mut ws, |frame| match frame {
            Frame::Ack { seq } => acked = seq,
            Frame::Data { seq, payload } => echoes.push((seq, payload.as_bytes().to_vec())),
            _ => {}
        })
        .await;
    }
    node_a.start_kill().unwrap();
    node_a.wait().await.unwrap();
    drop(ws);
    let received = echoes.last().map_or(0, |(seq, _)| *seq);
    let mut ws = echo_ws(b.local_addr()).await;
    let (status, _, last_received) = hello(&mut ws, Some((token, received))).await;
    assert_eq!(status, WelcomeStatus::Resumed);
    assert!(last_received >= acked, "everything acknowledged is stored: {last_received} < {acked}");
    for seq in last_received + 1..=total {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text(&seq.to_string()) })).await.unwrap();
    }
    // Every message echoed at least once; any repeat is one node B marked as a redelivery.
    let mut seen = std::collections::BTreeMap::<u64, u32>::new();
    for (_, bytes) in &echoes {
        *seen.entry(String::from_utf8_lossy(bytes).parse().unwrap()).or_default() += 1;
    }
    let mut next = received + 1;
    while seen.len() < total as usize {
        let (seq, bytes) = next_data(&mut ws).await;
        assert_eq!(seq, next, "no gap in what the client receives");
        next += 1;
        *seen.entry(String::from_utf8_lossy(&bytes).parse().unwrap()).or_default() += 1;
        ws.send(encode(Frame::Ack { seq })).await.unwrap();
    }
    let repeats: u64 = seen.values().map(|&n| u64::from(n - 1)).sum();
    assert!(repeats <= b.stats().redelivered, "{repeats} repeats, {} marked redeliveries", b.stats().redelivered);
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_client_that_does_not_keep_up_is_bounded_in_redis_and_learns_it_on_any_node() {
    let redis = Redis::start();
    let mut config = config(&redis);
    config.session.limits = durable_ws_core::BufferLimits { max_messages: 3, max_bytes: 1 << 20 };
    let (a, b) = (server(config.clone()).await, server(config).await);
    let mut ws = echo_ws(a.local_addr()).await;
    let (_, token, _) = hello(&mut ws, None).await;
    let key = format!("dws:{{{}}}:s", durable_ws_server::token_to_hex(&token));
    // Five messages, no acknowledgement of their echoes: the fourth echo does not fit.
    for seq in 1..=5 {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text(&seq.to_string()) })).await.unwrap();
    }
    assert_eq!(read_close(&mut ws).await, close_code::TRY_AGAIN_LATER, "the session is dropped for overflow");
    support::wait_until(|| redis.cli(&["EXISTS", &key]).as_deref() == Some("0")).await;
    let mut ws = echo_ws(b.local_addr()).await;
    assert_eq!(
        hello(&mut ws, Some((token, 0))).await.0,
        WelcomeStatus::LostOverflow,
        "node B learns why from the tombstone"
    );
}
