//! RFC 6455 §10.4-style resource limits over time: idle and half-open connections are found by
//! the server's heartbeat and dropped, durable sessions staying resumable.

mod support;

use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{ClientConfig, Event, HeartbeatConfig, PayloadRef, SessionConfig, WelcomeStatus};
use durable_ws_reference::{Server, ServerConfig, Stats};
use durable_ws_testkit::native_client::NativeClient;
use futures_util::{SinkExt, StreamExt};
use support::{connect, durable, encode, hello, next_data, server};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

/// A server pinging every 100 ms and giving up 200 ms after an unanswered ping.
async fn pinging_server() -> Server {
    let session = SessionConfig {
        heartbeat: Some(HeartbeatConfig { interval_ms: 100, timeout_ms: 200 }),
        ..SessionConfig::default()
    };
    server(ServerConfig { session, ..ServerConfig::default() }).await
}

/// Waits (up to 5 s, far beyond interval + timeout) until the stats satisfy `done`.
async fn until(server: &Server, done: impl Fn(&Stats) -> bool) -> Stats {
    timeout(Duration::from_secs(5), async {
        loop {
            let stats = server.stats();
            if done(&stats) {
                return stats;
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("stats never got there: {:?}", server.stats()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_durable_client_is_dropped_and_its_session_stays_resumable() {
    let server = pinging_server().await;
    let addr = server.local_addr();
    // A well-behaved client (the core answers pings) on the same server.
    let no_heartbeat = ClientConfig {
        session: SessionConfig { heartbeat: None, ..SessionConfig::default() },
        ..ClientConfig::default()
    };
    let (_alive, mut alive_events) = NativeClient::connect(&format!("ws://{addr}/echo"), no_heartbeat).unwrap();
    let opened = timeout(Duration::from_secs(5), alive_events.recv()).await.unwrap();
    assert_eq!(opened, Some(Event::Open { durable: true }));

    // The half-open one: sends a message, then never reads (nor answers a ping) again.
    let mut silent = durable(addr).await;
    let (_, token, _) = hello(&mut silent, None).await;
    silent.send(encode(Frame::Data { seq: 1, payload: PayloadRef::Text("before the silence") })).await.unwrap();
    // (The counter goes up just before the connection is unregistered: wait for both.)
    let stats = until(&server, |s| s.heartbeat_timeouts >= 1 && s.connections <= 1).await;
    assert_eq!(
        (stats.heartbeat_timeouts, stats.connections, stats.sessions),
        (1, 1, 2),
        "only the silent client was dropped: {stats:?}"
    );
    // Closed with 4000 (best effort: a half-open link rarely carries it).
    let ended = timeout(Duration::from_secs(5), async {
        loop {
            match silent.next().await {
                Some(Ok(Message::Binary(_) | Message::Ping(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the connection ends");
    match ended {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4000, "{frame:?}"),
        other => panic!("expected close 4000, got {other:?}"),
    }

    // The session is intact: the echo the client never read is replayed after the resume.
    let mut back = durable(addr).await;
    assert_eq!(hello(&mut back, Some((token, 0))).await, (WelcomeStatus::Resumed, token, 1));
    assert_eq!(next_data(&mut back).await, (1, b"before the silence".to_vec()));

    // The well-behaved client went through many heartbeats and is still connected.
    while let Ok(event) = alive_events.try_recv() {
        assert!(!matches!(event, Event::Closed { .. }), "{event:?}");
    }
    assert_eq!(server.stats().heartbeat_timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_connections_get_websocket_pings_and_a_silent_one_is_dropped() {
    let server = pinging_server().await;
    let addr = server.local_addr();
    let mut silent = connect(addr, "/echo", false, &[]).await.unwrap();
    silent.send(Message::Text("hi".into())).await.unwrap();
    assert_eq!(silent.next().await.unwrap().unwrap(), Message::Text("hi".into()));

    // A reading client answers the pings (tungstenite replies with pongs as it reads), and
    // goes on reading all along.
    let mut reading = connect(addr, "/echo", false, &[]).await.unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                message = reading.next() => match message {
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    other => panic!("expected pings, got {other:?}"),
                },
            }
        }
        reading.send(Message::Text("still here".into())).await.unwrap();
        loop {
            match timeout(Duration::from_secs(5), reading.next()).await.unwrap().unwrap().unwrap() {
                Message::Ping(_) => pings += 1,
                echo => break assert_eq!(echo, Message::Text("still here".into())),
            }
        }
        pings
    });
    let stats = until(&server, |s| s.heartbeat_timeouts >= 1 && s.connections <= 1).await;
    assert_eq!((stats.heartbeat_timeouts, stats.connections), (1, 1), "only the silent one was dropped: {stats:?}");
    stop.send(()).unwrap();
    let pings = reader.await.unwrap();
    assert!(pings >= 1, "the server pinged the plain connection");
    assert_eq!(server.stats().heartbeat_timeouts, 1);
    drop(silent);
}
