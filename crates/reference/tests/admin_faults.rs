//! Phase 2: the fault-injection endpoints, `/stats`, and shutdown closing every connection
//! with 1012 (in process and as the real binary receiving SIGTERM).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{
    ClientConfig, Event, HeartbeatConfig, LostReason, Payload, PayloadRef, SessionConfig, WelcomeStatus,
};
use durable_ws_reference::{token_to_hex, Server, ServerConfig, Stats};
use futures_util::{SinkExt, StreamExt};
use support::native::{connected, fast_client, next_event, wait_for};
use support::{close_code, encode, raw, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn server_with_faults() -> Server {
    server(ServerConfig { enable_faults: true, ..ServerConfig::default() }).await
}

/// A minimal HTTP/1.1 request; returns status, raw head and body.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

async fn affected(addr: SocketAddr, path: &str) -> u64 {
    let (status, head, body) = http(addr, "POST", path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(!head.contains("access-control-allow-origin: *"), "{path} is not open to every origin: {head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["affected"].as_u64().expect("affected count")
}

#[tokio::test]
async fn admin_endpoints_exist_only_with_faults_enabled() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let (status, _, _) = http(server.local_addr(), "POST", "/admin/cut?session=all").await;
    assert_eq!(status, 404);
    let faulty = server_with_faults().await;
    assert_eq!(http(faulty.local_addr(), "POST", "/admin/cut").await.0, 400, "session is required");
    assert_eq!(http(faulty.local_addr(), "POST", "/admin/cut?session=xyz").await.0, 400);
    assert_eq!(http(faulty.local_addr(), "POST", &format!("/admin/cut?session={}", "ab".repeat(16))).await.0, 404);
    assert_eq!(http(faulty.local_addr(), "POST", "/admin/stall").await.0, 400, "ms is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_drops_connections_without_a_close_frame_and_the_client_resumes() {
    let server = server_with_faults().await;
    let addr = server.local_addr();
    let (first, mut first_events) = connected(addr, fast_client()).await;
    let (_second, mut second_events) = connected(addr, fast_client()).await;

    // One session by token: only its connection is cut.
    let token = token_to_hex(&first.session_token().expect("token after open"));
    assert_eq!(affected(addr, &format!("/admin/cut?session={token}")).await, 1);
    let closed = wait_for(&mut first_events, |e| matches!(e, Event::Closed { .. })).await;
    assert!(matches!(closed, Event::Closed { code: 1006, was_clean: false, will_reconnect: true, .. }), "{closed:?}");
    wait_for(&mut first_events, |e| matches!(e, Event::Resumed { .. })).await;

    // Everything: both clients are cut, both resume, and messages still get through.
    assert_eq!(affected(addr, "/admin/cut?session=all").await, 2);
    for events in [&mut first_events, &mut second_events] {
        wait_for(events, |e| matches!(e, Event::Closed { code: 1006, .. })).await;
        wait_for(events, |e| matches!(e, Event::Resumed { .. })).await;
    }
    first.send(Payload::from("still here")).unwrap();
    wait_for(&mut first_events, |e| matches!(e, Event::Message(p) if *p == Payload::from("still here"))).await;
    let stats = server.stats();
    assert_eq!((stats.cuts, stats.resumes), (3, 3), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_looks_half_open_so_the_heartbeat_reconnects_and_resumes() {
    let server = server_with_faults().await;
    let addr = server.local_addr();
    let config = ClientConfig {
        session: SessionConfig {
            heartbeat: Some(HeartbeatConfig { interval_ms: 100, timeout_ms: 200 }),
            ..SessionConfig::default()
        },
        ..fast_client()
    };
    let (client, mut events) = connected(addr, config).await;
    assert_eq!(affected(addr, "/admin/stall?ms=5000").await, 1);
    client.send(Payload::from("during the stall")).unwrap();
    // Nothing comes back, so the heartbeat declares the link dead; the new connection resumes
    // the session (taking it over from the stalled one) and the message is echoed once.
    let error = wait_for(&mut events, |e| matches!(e, Event::Error(_))).await;
    assert!(format!("{error:?}").contains("HeartbeatTimeout"), "{error:?}");
    wait_for(&mut events, |e| matches!(e, Event::Resumed { .. })).await;
    wait_for(&mut events, |e| matches!(e, Event::Message(p) if *p == Payload::from("during the stall"))).await;
    assert_eq!(server.stats().messages_in, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_forgets_sessions_so_the_resume_is_lost_unknown() {
    let server = server_with_faults().await;
    let addr = server.local_addr();
    let (client, mut events) = connected(addr, fast_client()).await;
    let old_token = client.session_token().unwrap();
    assert_eq!(affected(addr, "/admin/expire?session=all").await, 1);
    let lost = loop {
        match next_event(&mut events).await {
            event @ Event::SessionLost { .. } => break event,
            Event::Resumed { .. } => panic!("an expired session cannot resume"),
            _ => {}
        }
    };
    assert_eq!(lost, Event::SessionLost { reason: LostReason::Expired, unconfirmed: vec![] });
    assert_eq!(next_event(&mut events).await, Event::Open { durable: true });
    assert_ne!(client.session_token(), Some(old_token));
    let stats = server.stats();
    assert_eq!((stats.sessions_expired, stats.sessions_lost, stats.sessions), (1, 1, 1), "{stats:?}");
}

#[tokio::test]
async fn stats_are_json_with_every_counter() {
    let server = server_with_faults().await;
    let addr = server.local_addr();
    let mut ws = raw(addr, true).await;
    ws.send(encode(Frame::Hello { resume: None })).await.unwrap();
    ws.send(encode(Frame::Data { seq: 1, payload: PayloadRef::Text("one") })).await.unwrap();
    loop {
        let Some(Ok(Message::Binary(bytes))) = ws.next().await else { panic!("echo expected") };
        match Frame::decode(&bytes).unwrap() {
            Frame::Welcome { status, .. } => assert_eq!(status, WelcomeStatus::New),
            Frame::Data { seq: 1, payload } => {
                assert_eq!(payload, PayloadRef::Text("one"));
                break;
            }
            _ => {}
        }
    }
    let (status, head, body) = http(addr, "GET", "/stats").await;
    assert_eq!(status, 200);
    assert!(head.contains("application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    for key in [
        "sessions",
        "connections",
        "messages_in",
        "messages_out",
        "replayed",
        "duplicates_dropped",
        "resumes",
        "sessions_lost",
        "origin_rejections",
        "auth_failures",
        "heartbeat_timeouts",
        "protocol_errors",
    ] {
        assert!(json[key].is_u64(), "stats has {key}: {body}");
    }
    let stats: Stats = serde_json::from_str(&body).unwrap();
    assert_eq!((stats.sessions, stats.connections, stats.messages_in, stats.messages_out), (1, 1, 1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_with_1012() {
    let server = server_with_faults().await;
    let addr = server.local_addr();
    let mut durable = raw(addr, true).await;
    durable.send(encode(Frame::Hello { resume: None })).await.unwrap();
    let mut plain = raw(addr, false).await;
    plain.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(plain.next().await.unwrap().unwrap(), Message::Text("ping".into()));
    let (_client, mut events) = connected(addr, fast_client()).await;

    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(close_code(&mut durable).await, 1012);
    assert_eq!(close_code(&mut plain).await, 1012);
    let closed = wait_for(&mut events, |e| matches!(e, Event::Closed { .. })).await;
    assert!(matches!(closed, Event::Closed { code: 1012, was_clean: true, will_reconnect: true, .. }), "{closed:?}");
    timeout(Duration::from_secs(10), shutdown).await.expect("shutdown completes").unwrap().unwrap();
}

#[tokio::test]
async fn the_binary_closes_connections_with_1012_on_sigterm() {
    let (mut child, addr) = support::spawn_binary(|_| {}).await;
    let mut durable = raw(addr, true).await;
    durable.send(encode(Frame::Hello { resume: None })).await.unwrap();
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    assert_eq!(close_code(&mut durable).await, 1012);
    let status = timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}
