//! `/chat`: every member gets every message once, in one order shared by all members, even
//! when one member's connection keeps being cut.

mod support;

use std::sync::Arc;
use std::time::Duration;

use durable_ws_core::{Event, Payload};
use durable_ws_reference::{Server, ServerConfig, TokenAuthenticator};
use durable_ws_testkit::chaos_proxy::{ChaosConfig, ChaosProxy};
use durable_ws_testkit::native_client::NativeClient;
use futures_util::StreamExt;
use support::native::{fast_client, next_event};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

/// Collects `count` chat messages, failing on a lost session.
async fn collect(events: &mut UnboundedReceiver<Event>, count: usize) -> Vec<String> {
    let mut received = Vec::new();
    while received.len() < count {
        match next_event(events).await {
            Event::Message(Payload::Text(text)) => received.push(text),
            event @ Event::SessionLost { .. } => panic!("unexpected {event:?}"),
            _ => {}
        }
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_gets_every_message_in_the_same_order_despite_cuts() {
    const EACH: usize = 300;
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let chaos = ChaosConfig { lifetime_ms: Some((50, 300)), latency_ms: 5, seed: None };
    let proxy = ChaosProxy::start(server.local_addr(), chaos).await.unwrap();
    let (alice, mut alice_events) =
        NativeClient::connect(&format!("ws://{}/chat", server.local_addr()), fast_client()).unwrap();
    let (bob, mut bob_events) =
        NativeClient::connect(&format!("ws://{}/chat", proxy.local_addr()), fast_client()).unwrap();
    for events in [&mut alice_events, &mut bob_events] {
        loop {
            if let Event::Open { durable } = next_event(events).await {
                assert!(durable);
                break;
            }
        }
    }

    let sending = tokio::spawn(async move {
        for i in 0..EACH {
            alice.send(Payload::Text(format!("alice {i}"))).unwrap();
            bob.send(Payload::Text(format!("bob {i}"))).unwrap();
            sleep(Duration::from_millis(5)).await;
        }
        (alice, bob)
    });
    let (seen_by_alice, seen_by_bob) = timeout(Duration::from_secs(18), async {
        tokio::join!(collect(&mut alice_events, 2 * EACH), collect(&mut bob_events, 2 * EACH))
    })
    .await
    .expect("every message reaches both members");
    let _clients = sending.await.unwrap();

    assert_eq!(seen_by_alice, seen_by_bob, "one order for every member");
    for name in ["alice", "bob"] {
        let own: Vec<_> = seen_by_alice.iter().filter(|m| m.starts_with(name)).cloned().collect();
        let expected: Vec<_> = (0..EACH).map(|i| format!("{name} {i}")).collect();
        assert_eq!(own, expected, "{name}'s messages once each, in order");
    }
    assert!(proxy.stats().cuts >= 3, "bob's link was cut ({:?})", proxy.stats());
}

#[tokio::test]
async fn chat_without_the_subprotocol_is_refused_with_1008() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/chat", server.local_addr())).await.unwrap();
    let close = timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_auth_members_get_payloads_exactly_as_sent() {
    let auth = TokenAuthenticator::new([("alice", "alice-secret"), ("bob", "bob-secret")]).unwrap();
    let server =
        Server::bind("127.0.0.1:0", ServerConfig { authenticator: Some(Arc::new(auth)), ..ServerConfig::default() })
            .await
            .unwrap();
    let url = |secret: &str| format!("ws://{}/chat?access_token={secret}", server.local_addr());
    let (alice, mut alice_events) = NativeClient::connect(&url("alice-secret"), fast_client()).unwrap();
    let (bob, mut bob_events) = NativeClient::connect(&url("bob-secret"), fast_client()).unwrap();
    for events in [&mut alice_events, &mut bob_events] {
        assert_eq!(next_event(events).await, Event::Open { durable: true });
    }

    // The server adds nothing (no sender name): what the demo sends is what every member gets.
    let sent = [
        Payload::Text(r#"{"from":"a made-up name","text":"hi"}"#.into()),
        Payload::Binary(vec![0, 159, 146, 150, 255]),
        Payload::Text("plain words, ünïcödé".into()),
    ];
    // One at a time, so the order is known: each payload reaches both members before the next.
    let senders = [&alice, &bob, &alice];
    let (mut seen_by_alice, mut seen_by_bob) = (Vec::new(), Vec::new());
    for (sender, payload) in senders.into_iter().zip(&sent) {
        sender.send(payload.clone()).unwrap();
        seen_by_alice.push(next_message(&mut alice_events).await);
        seen_by_bob.push(next_message(&mut bob_events).await);
    }
    assert_eq!(seen_by_alice, sent, "same payloads, same kinds, same order");
    assert_eq!(seen_by_bob, sent);
    let stats = server.stats();
    assert_eq!((stats.auth_failures, stats.sessions), (0, 2), "{stats:?}");
}

/// The next chat message, failing on a lost session or a close.
async fn next_message(events: &mut UnboundedReceiver<Event>) -> Payload {
    loop {
        match next_event(events).await {
            Event::Message(payload) => return payload,
            event @ (Event::SessionLost { .. } | Event::Closed { .. }) => panic!("unexpected {event:?}"),
            _ => {}
        }
    }
}
