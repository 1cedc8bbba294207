//! The library as an application uses it: an axum app of its own with durable endpoints, driven
//! by the core's client state machine over real sockets (the testkit's `NativeClient`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use durable_ws_core::{BackoffConfig, ClientConfig, ConnectionError, Event, Payload};
use durable_ws_server::{Durable, EndReason, Identity, Refusal, SendError, Session, SessionId, Unconfirmed};
use durable_ws_testkit::native_client::NativeClient;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::timeout;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Note {
    n: u64,
    text: String,
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });
    addr
}

fn fast() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 50, ..Default::default() },
        ..Default::default()
    }
}

async fn next_event(events: &mut UnboundedReceiver<Event>) -> Event {
    timeout(Duration::from_secs(10), events.recv()).await.expect("event in time").expect("client running")
}

/// The next application message, skipping lifecycle events.
async fn next_message(events: &mut UnboundedReceiver<Event>) -> Payload {
    loop {
        match next_event(events).await {
            Event::Message(payload) => return payload,
            Event::SessionLost { .. } => panic!("session lost"),
            _ => {}
        }
    }
}

fn note(payload: &Payload) -> Note {
    serde_json::from_slice(payload.as_bytes()).unwrap()
}

fn json(value: &Note) -> Payload {
    Payload::Text(serde_json::to_string(value).unwrap())
}

async fn client(addr: SocketAddr, path: &str) -> (NativeClient, UnboundedReceiver<Event>) {
    let (client, mut events) = NativeClient::connect(&format!("ws://{addr}{path}"), fast()).unwrap();
    loop {
        if let Event::Open { durable } = next_event(&mut events).await {
            assert!(durable);
            return (client, events);
        }
    }
}

/// `?user=NAME` as the identity; no user: refused with 4403.
async fn users(mut request: Request, next: Next) -> Response {
    let user = request.uri().query().and_then(|q| q.strip_prefix("user=")).map(str::to_owned);
    match user {
        Some(name) => {
            request.extensions_mut().insert(Identity::named(name));
        }
        None => {
            request.extensions_mut().insert(Refusal::forbidden("who are you?"));
        }
    }
    next.run(request).await
}

#[tokio::test]
async fn typed_messages_arrive_once_in_order_and_deliveries_resolve_on_the_ack() {
    let durable = Durable::builder().build();
    let (acked_tx, mut acked) = unbounded_channel();
    let app = Router::new().route(
        "/notes",
        durable.endpoint(move |mut session: Session<Note>| {
            let acked = acked_tx.clone();
            async move {
                while let Some(mut note) = session.recv().await {
                    note.text = note.text.to_uppercase();
                    let delivery = session.send(&note).expect("room in the buffer");
                    let acked = acked.clone();
                    tokio::spawn(async move { acked.send((note.n, delivery.await)).unwrap() });
                }
            }
        }),
    );
    let addr = serve(app).await;
    let (client, mut events) = client(addr, "/notes").await;
    for n in 1..=50 {
        client.send(json(&Note { n, text: format!("note {n}") })).unwrap();
    }
    for n in 1..=50 {
        assert_eq!(note(&next_message(&mut events).await), Note { n, text: format!("NOTE {n}") });
    }
    let mut resolved: Vec<_> = Vec::new();
    for _ in 1..=50 {
        resolved.push(timeout(Duration::from_secs(5), acked.recv()).await.expect("delivery resolves").unwrap());
    }
    resolved.sort_by_key(|(n, _)| *n);
    assert_eq!(resolved, (1..=50).map(|n| (n, Ok(()))).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_undecodable_message_is_reported_and_the_session_goes_on() {
    let durable = Durable::builder().build();
    let app = Router::new().route(
        "/notes",
        durable.endpoint(|mut session: Session<Note>| async move {
            while let Some(event) = session.next().await {
                let reply = match event {
                    durable_ws_server::SessionEvent::Message(note) => note,
                    durable_ws_server::SessionEvent::Undecodable { payload, .. } => {
                        Note { n: 0, text: format!("cannot read {}", String::from_utf8_lossy(payload.as_bytes())) }
                    }
                    _ => continue,
                };
                let _ = session.send(&reply);
            }
        }),
    );
    let addr = serve(app).await;
    let (client, mut events) = client(addr, "/notes").await;
    client.send(Payload::from("not json")).unwrap();
    client.send(json(&Note { n: 1, text: "fine".into() })).unwrap();
    assert_eq!(note(&next_message(&mut events).await).text, "cannot read not json");
    assert_eq!(note(&next_message(&mut events).await), Note { n: 1, text: "fine".into() });
}

#[tokio::test]
async fn a_room_has_one_order_for_every_member_and_takes_messages_from_anywhere() {
    let durable = Durable::builder().build();
    let app = Router::new().route(
        "/room",
        durable.endpoint(|mut session: Session<Note>| async move {
            session.join("r");
            let room = session.room("r");
            while let Some(note) = session.recv().await {
                room.send(&note).unwrap();
            }
        }),
    );
    let addr = serve(app).await;
    let (ann, mut ann_events) = client(addr, "/room").await;
    let (bob, mut bob_events) = client(addr, "/room").await;
    let room = durable.room("r");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(room.members().len(), 2);
    // Three senders at once: two clients and this task (as an HTTP handler or a timer would).
    for n in 0..100 {
        ann.send(json(&Note { n, text: "ann".into() })).unwrap();
        bob.send(json(&Note { n, text: "bob".into() })).unwrap();
        assert_eq!(room.send(&Note { n, text: "server".into() }).unwrap(), 2);
    }
    let mut seen = Vec::new();
    for events in [&mut ann_events, &mut bob_events] {
        let mut got = Vec::new();
        for _ in 0..300 {
            got.push(note(&next_message(events).await));
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "one order for every member");
    for sender in ["ann", "bob", "server"] {
        let ns: Vec<u64> = seen[0].iter().filter(|note| note.text == sender).map(|note| note.n).collect();
        assert_eq!(ns, (0..100).collect::<Vec<_>>(), "{sender}: each once, in its order");
    }
}

#[tokio::test]
async fn identities_come_from_the_apps_middleware_and_refusals_reach_the_client() {
    let durable = Durable::builder().build();
    let (ids_tx, mut ids) = unbounded_channel::<(SessionId, Identity)>();
    let app = Router::new().route(
        "/me",
        durable
            .endpoint(move |session: Session<Note>| {
                let ids: UnboundedSender<_> = ids_tx.clone();
                async move {
                    ids.send((session.id(), session.identity().clone())).unwrap();
                    // The handler returns: the session lives on, reachable by handles.
                }
            })
            .layer(middleware::from_fn(users)),
    );
    let addr = serve(app).await;
    let (_ann1, mut ann1) = client(addr, "/me?user=ann").await;
    let (_ann2, mut ann2) = client(addr, "/me?user=ann").await;
    let (_bob, mut bob) = client(addr, "/me?user=bob").await;
    let mut identities = Vec::new();
    for _ in 0..3 {
        identities.push(timeout(Duration::from_secs(5), ids.recv()).await.unwrap().unwrap().1.to_string());
    }
    identities.sort();
    assert_eq!(identities, ["ann", "ann", "bob"]);
    let ann = Identity::named("ann");
    assert_eq!(durable.sessions_of(&ann).len(), 2);
    assert_eq!(durable.send_to_identity(&ann, &Note { n: 7, text: "for ann".into() }).unwrap(), 2);
    assert_eq!(note(&next_message(&mut ann1).await).n, 7);
    assert_eq!(note(&next_message(&mut ann2).await).n, 7);
    let bob_id = durable.sessions_of(&Identity::named("bob"))[0];
    let _delivery = durable.session(bob_id).send(&Note { n: 8, text: "for bob".into() }).unwrap();
    assert_eq!(note(&next_message(&mut bob).await).n, 8);

    // No user: the WebSocket opens and closes at once with 4403 and its reason; the client stops.
    let (_nobody, mut events) = NativeClient::connect(&format!("ws://{addr}/me"), fast()).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        let done = matches!(event, Event::Closed { will_reconnect: false, .. });
        seen.push(event);
        if done {
            break;
        }
    }
    assert!(
        seen.contains(&Event::Error(ConnectionError::Refused { code: 4403, reason: "who are you?".into() })),
        "{seen:?}"
    );
    assert!(matches!(seen.last(), Some(Event::Closed { code: 4403, .. })), "{seen:?}");
    let after = timeout(Duration::from_millis(300), events.recv()).await;
    assert!(!matches!(after, Ok(Some(_))), "no reconnect after a refusal: {after:?}");
}

#[tokio::test]
async fn a_full_buffer_is_an_explicit_error_and_an_expired_session_reports_what_was_never_confirmed() {
    let durable = Durable::builder()
        .buffer(durable_ws_server::BufferLimits { max_messages: 3, max_bytes: 1 << 20 })
        .session_ttl(Duration::from_millis(200))
        .build();
    let (results_tx, mut results) = unbounded_channel();
    let app = Router::new().route(
        "/push",
        durable.endpoint(move |mut session: Session<Note>| {
            let results = results_tx.clone();
            async move {
                let mut deliveries = Vec::new();
                for n in 0..4 {
                    match session.send(&Note { n, text: "x".into() }) {
                        Ok(delivery) => deliveries.push(delivery),
                        Err(error) => results.send(Err(error)).unwrap(),
                    }
                }
                // The client is gone before confirming anything: each delivery fails, and the
                // session's end lists every message.
                for delivery in deliveries {
                    results.send(Ok(delivery.await)).unwrap();
                }
                while session.recv().await.is_some() {}
                let ended = session.ended().expect("ended");
                results
                    .send(Ok(Err(Unconfirmed { seq: ended.unconfirmed.len() as u64, reason: ended.reason })))
                    .unwrap();
            }
        }),
    );
    let addr = serve(app).await;
    // A raw client that says hello and vanishes without reading or acknowledging.
    let (mut ws, _) = tokio_tungstenite::connect_async({
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/push").into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "durable.v1".parse().unwrap());
        request
    })
    .await
    .unwrap();
    use futures_util::SinkExt;
    let mut hello = Vec::new();
    durable_ws_core::frame::Frame::Hello { resume: None }.encode(&mut hello);
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(hello.into())).await.unwrap();
    let first = timeout(Duration::from_secs(5), results.recv()).await.unwrap().unwrap();
    assert!(matches!(first, Err(SendError::Full)), "the fourth message does not fit: {first:?}");
    drop(ws);
    for seq in 1..=3 {
        let outcome = timeout(Duration::from_secs(5), results.recv()).await.unwrap().unwrap().unwrap();
        assert_eq!(outcome, Err(Unconfirmed { seq, reason: EndReason::Expired }));
    }
    let end = timeout(Duration::from_secs(5), results.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(end, Err(Unconfirmed { seq: 3, reason: EndReason::Expired }), "three unconfirmed at the end");
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1012() {
    let durable = Durable::builder().build();
    let app = Router::new().route(
        "/echo",
        durable.endpoint(|mut session: Session<Note>| async move {
            while let Some(note) = session.recv().await {
                let _ = session.send(&note);
            }
        }),
    );
    let addr = serve(app).await;
    let (_client, mut events) = client(addr, "/echo").await;
    timeout(Duration::from_secs(5), durable.shutdown()).await.expect("shutdown in time");
    loop {
        if let Event::Closed { code, will_reconnect, .. } = next_event(&mut events).await {
            assert_eq!((code, will_reconnect), (1012, true));
            break;
        }
    }
    assert_eq!(durable.stats().connections, 0);
    assert_eq!(durable.stats().sessions, 1, "the session stays resumable");
}

#[tokio::test]
async fn a_connection_waiting_for_a_busy_handler_still_obeys_shutdown() {
    let durable = Durable::builder().inbound_queue(2).build();
    let app = Router::new().route(
        "/busy",
        durable.endpoint(|session: Session<Note>| async move {
            // Holds the session and never reads: the inbox fills, the server stops reading.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(session);
        }),
    );
    let addr = serve(app).await;
    let (client, mut events) = client(addr, "/busy").await;
    for n in 0..10 {
        client.send(json(&Note { n, text: "x".into() })).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    timeout(Duration::from_secs(5), durable.shutdown()).await.expect("shutdown in time");
    loop {
        if let Event::Closed { code, .. } = next_event(&mut events).await {
            assert_eq!(code, 1012, "the blocked connection got the shutdown");
            break;
        }
    }
    assert_eq!(durable.stats().connections, 0);
}
