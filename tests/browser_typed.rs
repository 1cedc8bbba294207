//! The Rust API against the real reference server in a real browser.
//!
//! Needs the server (with `--enable-faults`) at `DURABLE_WS_SERVER` when compiled; see
//! `scripts/test.sh`.
#![cfg(all(target_arch = "wasm32", feature = "json"))]

mod browser_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use browser_support::{admin, echo_url, sleep, until, within, PATIENCE_MS};
use durable_ws::typed::{DurableSocket, Options, SocketEvent};
use durable_ws::{ClientState, ConnectionError, Error, LostReason, Payload, SendError};
use futures::future::{join_all, FutureExt};
use futures::{stream, SinkExt, StreamExt};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

type Socket = DurableSocket<String, String>;

fn connect(options: Options) -> Socket {
    DurableSocket::connect(options).expect("valid options")
}

async fn open(options: Options) -> Socket {
    let mut socket = connect(options);
    until(&mut socket, "open", |e| matches!(e, SocketEvent::Open { durable: true })).await;
    socket
}

fn texts(range: std::ops::Range<usize>, prefix: &str) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Reads until `count` messages arrived; returns them and every other event seen.
async fn messages(socket: &mut Socket, count: usize) -> (Vec<String>, Vec<SocketEvent<String>>) {
    let mut received = Vec::new();
    let mut others = Vec::new();
    if count == 0 {
        return (received, others);
    }
    until(socket, "messages", |event| {
        match event {
            SocketEvent::Message(text) => received.push(text.clone()),
            other => others.push(other.clone()),
        }
        received.len() >= count
    })
    .await;
    (received, others)
}

#[wasm_bindgen_test]
async fn echo_round_trip_resolves_on_ack() {
    let mut socket = open(Options::new(echo_url())).await;
    socket.send("hello".to_owned()).await.expect("acknowledged");
    let (received, _) = messages(&mut socket, 1).await;
    assert_eq!(received, ["hello"]);
    let stats = socket.stats();
    assert_eq!((stats.sent, stats.acked, stats.pending, stats.received), (1, 1, 0, 1));
    assert_eq!(socket.state(), ClientState::Open);
}

#[wasm_bindgen_test]
async fn messages_sent_before_open_arrive_in_order() {
    let mut socket = connect(Options::new(echo_url()));
    let acks: Vec<_> = texts(0..20, "early").into_iter().map(|m| socket.send(m)).collect();
    let (received, others) = messages(&mut socket, 20).await;
    assert_eq!(received, texts(0..20, "early"));
    assert!(matches!(others.first(), Some(SocketEvent::Open { durable: true })), "{others:?}");
    for ack in join_all(acks).await {
        ack.expect("acknowledged");
    }
}

#[wasm_bindgen_test]
async fn server_cut_mid_stream_loses_and_duplicates_nothing() {
    let mut socket =
        open(Options::new(echo_url()).reconnect_delay(Duration::from_millis(50), Duration::from_millis(500))).await;
    let token = socket.session_token_hex().expect("durable session");
    let mut acks: Vec<_> = texts(0..150, "m").into_iter().map(|m| socket.send(m)).collect();
    let (status, body) = admin(&format!("/admin/cut?session={token}")).await;
    assert_eq!(status, 200, "{body}");
    acks.extend(texts(150..300, "m").into_iter().map(|m| socket.send(m)));

    let (received, others) = messages(&mut socket, 300).await;
    assert_eq!(received, texts(0..300, "m"), "every echo exactly once, in order");
    assert!(others.iter().any(|e| matches!(e, SocketEvent::Resumed { .. })), "{others:?}");
    assert!(!others.iter().any(|e| matches!(e, SocketEvent::SessionLost { .. })), "{others:?}");
    for ack in join_all(acks).await {
        ack.expect("acknowledged");
    }
    let stats = socket.stats();
    assert!(stats.reconnects >= 1);
    assert_eq!((stats.sent, stats.acked, stats.pending, stats.received), (300, 300, 0, 300));
}

#[wasm_bindgen_test]
async fn user_close_never_reconnects() {
    let mut socket =
        open(Options::new(echo_url()).reconnect_delay(Duration::from_millis(10), Duration::from_millis(10))).await;
    socket.send("last".to_owned()).await.expect("acknowledged");
    socket.close(1000, "bye").expect("close");
    let events = until(&mut socket, "close", |e| matches!(e, SocketEvent::Closed { .. })).await;
    match events.last() {
        Some(SocketEvent::Closed { code, will_reconnect, .. }) => {
            assert_eq!(*code, 1000);
            assert!(!will_reconnect);
        }
        other => panic!("{other:?}"),
    }
    assert!(socket.next().await.is_none(), "the stream ends after the final close");
    sleep(300).await;
    assert_eq!(socket.state(), ClientState::Closed);
    assert_eq!(socket.stats().reconnects, 0);
    assert_eq!(socket.send("late".to_owned()).await, Err(Error::Send(SendError::Closed)));
}

#[wasm_bindgen_test]
async fn terminal_close_code_stops_reconnecting() {
    // The server allows 1 MiB payloads and closes with 1009 (terminal by default) beyond that.
    let options = Options::new(echo_url())
        .max_message_bytes(4 << 20)
        .reconnect_delay(Duration::from_millis(10), Duration::from_millis(10));
    let mut socket = open(options).await;
    let too_big = "x".repeat(1 << 20);
    let ack = socket.send(too_big);
    let events = until(&mut socket, "close", |e| matches!(e, SocketEvent::Closed { .. })).await;
    match events.last() {
        Some(SocketEvent::Closed { code, will_reconnect, .. }) => {
            assert_eq!(*code, 1009);
            assert!(!will_reconnect, "1009 is terminal");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ack.await, Err(Error::Unconfirmed(_))));
    let rest: Vec<_> = within(PATIENCE_MS, socket.by_ref().collect::<Vec<_>>()).await.expect("stream ends");
    assert!(!rest.iter().any(|e| matches!(e, SocketEvent::Reconnecting { .. } | SocketEvent::Open { .. })), "{rest:?}");
    assert_eq!(socket.stats().reconnects, 0);
    assert_eq!(socket.state(), ClientState::Closed);
}

#[wasm_bindgen_test]
async fn connect_timeout_gives_up_an_attempt_that_never_opens() {
    // A URL provider that never answers: the attempt can only end by the connect timeout.
    let calls = Rc::new(Cell::new(0));
    let counter = calls.clone();
    let options = Options::with_url_provider(move || {
        counter.set(counter.get() + 1);
        futures::future::pending::<Result<String, String>>()
    })
    .connect_timeout(Duration::from_millis(200))
    .reconnect_delay(Duration::from_millis(10), Duration::from_millis(10))
    .max_attempts(Some(2));
    let mut socket: Socket = connect(options);
    let events =
        until(&mut socket, "final close", |e| matches!(e, SocketEvent::Closed { will_reconnect: false, .. })).await;
    let timeouts = events
        .iter()
        .filter(|e| matches!(e, SocketEvent::Error(Error::Connection(ConnectionError::ConnectTimeout))))
        .count();
    assert!(timeouts >= 2, "{events:?}");
    assert!(calls.get() >= 2, "the provider is asked again for every attempt");
}

#[wasm_bindgen_test]
async fn connect_timeout_against_a_silent_listener() {
    // A TCP listener that accepts and never answers the upgrade (scripts/test.sh starts one).
    let Some(silent) = option_env!("DURABLE_WS_BLACKHOLE") else {
        panic!("DURABLE_WS_BLACKHOLE: the silent listener's ws:// URL")
    };
    let options = Options::new(silent).connect_timeout(Duration::from_millis(300)).max_attempts(Some(1));
    let mut socket: Socket = connect(options);
    let events =
        until(&mut socket, "final close", |e| matches!(e, SocketEvent::Closed { will_reconnect: false, .. })).await;
    assert!(
        events.iter().any(|e| matches!(e, SocketEvent::Error(Error::Connection(ConnectionError::ConnectTimeout)))),
        "{events:?}"
    );
}

#[wasm_bindgen_test]
async fn heartbeat_detects_a_half_open_link() {
    let options = Options::new(echo_url())
        .heartbeat(Duration::from_millis(200), Duration::from_millis(400))
        .reconnect_delay(Duration::from_millis(10), Duration::from_millis(100));
    let mut socket = open(options).await;
    let token = socket.session_token_hex().expect("durable session");
    let (status, body) = admin(&format!("/admin/stall?ms=3000&session={token}")).await;
    assert_eq!(status, 200, "{body}");
    let during = socket.send("during the stall".to_owned());
    let events = until(&mut socket, "heartbeat timeout", |e| {
        matches!(e, SocketEvent::Error(Error::Connection(ConnectionError::HeartbeatTimeout)))
    })
    .await;
    assert!(!events.iter().any(|e| matches!(e, SocketEvent::Message(_))), "{events:?}");
    let (received, others) = messages(&mut socket, 1).await;
    assert_eq!(received, ["during the stall"]);
    assert!(others.iter().any(|e| matches!(e, SocketEvent::Reconnecting { .. })), "{others:?}");
    during.await.expect("acknowledged after the reconnect");
}

#[wasm_bindgen_test]
async fn full_buffer_rejects_with_buffer_full() {
    let mut socket = connect(Options::new(echo_url()).buffer(3, 1 << 20));
    let accepted: Vec<_> = texts(0..3, "b").into_iter().map(|m| socket.send(m)).collect();
    let refused = socket.send("one too many".to_owned()).now_or_never();
    assert!(matches!(refused, Some(Err(Error::Send(SendError::BufferFull { .. })))), "{refused:?}");
    let (received, _) = messages(&mut socket, 3).await;
    assert_eq!(received, texts(0..3, "b"));
    for ack in join_all(accepted).await {
        ack.expect("acknowledged");
    }
}

#[wasm_bindgen_test]
async fn sink_waits_for_room_instead_of_failing() {
    let mut socket = connect(Options::new(echo_url()).buffer(4, 1 << 20));
    let mut items = stream::iter(texts(0..60, "s").into_iter().map(Ok));
    within(PATIENCE_MS, socket.send_all(&mut items)).await.expect("send_all finishes").expect("no error");
    assert_eq!(socket.stats().pending, 0, "flushed means confirmed");
    let (received, _) = messages(&mut socket, 60).await;
    assert_eq!(received, texts(0..60, "s"));
}

#[wasm_bindgen_test]
async fn expired_session_reports_every_unconfirmed_message() {
    let options =
        Options::new(echo_url()).no_heartbeat().reconnect_delay(Duration::from_millis(10), Duration::from_millis(100));
    let mut socket = open(options).await;
    let token = socket.session_token_hex().expect("durable session");
    // While the server neither reads nor writes, nothing can be acknowledged.
    let (status, body) = admin(&format!("/admin/stall?ms=20000&session={token}")).await;
    assert_eq!(status, 200, "{body}");
    let unconfirmed = texts(0..3, "u");
    let acks: Vec<_> = unconfirmed.iter().cloned().map(|m| socket.send(m)).collect();
    let (status, body) = admin(&format!("/admin/expire?session={token}")).await;
    assert_eq!(status, 200, "{body}");

    let events = until(&mut socket, "session lost", |e| matches!(e, SocketEvent::SessionLost { .. })).await;
    match events.last() {
        Some(SocketEvent::SessionLost { reason, unconfirmed: lost }) => {
            assert_eq!(*reason, LostReason::Expired);
            let quoted: Vec<Payload> = unconfirmed.iter().map(|m| Payload::Text(format!("\"{m}\""))).collect();
            assert_eq!(lost, &quoted);
        }
        other => panic!("{other:?}"),
    }
    for ack in join_all(acks).await {
        assert_eq!(ack, Err(Error::Unconfirmed(LostReason::Expired)));
    }
    until(&mut socket, "the new session", |e| matches!(e, SocketEvent::Open { durable: true })).await;
    socket.send("fresh".to_owned()).await.expect("the new session works");
    let (received, _) = messages(&mut socket, 1).await;
    assert_eq!(received, ["fresh"]);
}

#[wasm_bindgen_test]
async fn dropping_the_socket_says_goodbye_and_never_reconnects() {
    let url = echo_url();
    let calls = Rc::new(Cell::new(0));
    let counter = calls.clone();
    let options = Options::with_url_provider(move || {
        counter.set(counter.get() + 1);
        futures::future::ready(Ok::<_, String>(url.clone()))
    })
    .reconnect_delay(Duration::from_millis(10), Duration::from_millis(10));
    let mut socket = open(options).await;
    socket.send("bye".to_owned()).await.expect("acknowledged");
    messages(&mut socket, 1).await;
    let token = socket.session_token_hex().expect("durable session");
    drop(socket);
    sleep(500).await;
    assert_eq!(calls.get(), 1, "no reconnection after drop");
    // The goodbye ended the session on the server.
    let (status, body) = admin(&format!("/admin/cut?session={token}")).await;
    assert_eq!(status, 404, "{body}");
}

#[wasm_bindgen_test]
async fn a_sender_kept_without_its_receiver_holds_no_events() {
    let socket = connect(Options::new(echo_url()));
    let (sender, receiver) = socket.split();
    sender.send("before".to_owned()).await.expect("acknowledged");
    while sender.stats().received < 1 {
        sleep(10).await;
    }
    assert!(sender.queued_events() >= 2, "Open and the echo wait for the receiver");
    drop(receiver);
    assert_eq!(sender.queued_events(), 0, "dropping the receiver discards what it did not read");
    for ack in join_all(texts(0..50, "unread").into_iter().map(|m| sender.send(m))).await {
        ack.expect("acknowledged");
    }
    while sender.stats().received < 51 {
        sleep(10).await;
    }
    assert_eq!(sender.queued_events(), 0, "nobody reads them: none is kept");
    assert_eq!(sender.state(), ClientState::Open, "the socket runs on for the sender");
}

#[wasm_bindgen_test]
async fn close_refuses_what_the_browser_refuses_and_stays_open() {
    let mut socket = open(Options::new(echo_url())).await;
    for code in [0, 999, 1001, 1006, 2999, 5000] {
        assert!(matches!(socket.close(code, ""), Err(Error::InvalidClose(_))), "code {code}");
    }
    assert!(matches!(socket.close(1000, &"x".repeat(124)), Err(Error::InvalidClose(_))));
    assert_eq!(socket.state(), ClientState::Open, "a refused close closes nothing");
    socket.send("still open".to_owned()).await.expect("acknowledged");
    socket.close(4321, &"é".repeat(61)).expect("4321 and 122 bytes are fine");
    let events = until(&mut socket, "close", |e| matches!(e, SocketEvent::Closed { .. })).await;
    assert!(matches!(events.last(), Some(SocketEvent::Closed { code: 4321, will_reconnect: false, .. })), "{events:?}");
}

#[wasm_bindgen_test]
async fn a_decode_error_keeps_the_codecs_error_as_its_source() {
    let mut socket: DurableSocket<String, u32> = DurableSocket::connect(Options::new(echo_url())).expect("valid");
    socket.send("not a number".to_owned()).await.expect("acknowledged");
    let events = until(&mut socket, "decode error", |e| matches!(e, SocketEvent::Error(_))).await;
    let Some(SocketEvent::Error(error @ Error::Decode(codec_error))) = events.last() else { panic!("{events:?}") };
    let source = std::error::Error::source(error).expect("a source");
    assert_eq!(source.to_string(), codec_error.to_string());
    assert!(codec_error.to_string().contains("expected u32"), "serde_json's own message: {codec_error}");
}

/// A session persisted under a name outlives its socket as it outlives a page: the next socket of
/// the name (here after a drop, in a page after a reload) resumes it and sends what was left.
#[wasm_bindgen_test]
async fn a_persisted_session_outlives_its_socket() {
    let name = format!("typed-{}", js_sys::Math::random());
    let options = |url: &str| {
        Options::new(url).persist(&name).reconnect_delay(Duration::from_millis(10), Duration::from_millis(50))
    };
    // Nothing answers there: the messages stay unconfirmed, and stored.
    let mut first = connect(options("ws://127.0.0.1:9/echo"));
    let sends: Vec<_> = texts(0..3, "left ").into_iter().map(|text| first.send(text)).collect();
    until(&mut first, "stored", |e| matches!(e, SocketEvent::Stored { unstored: 0 })).await;
    assert_eq!((first.stats().pending, first.stats().unstored), (3, 0));
    drop(first);
    for send in sends {
        assert!(send.await.is_err(), "the first socket's sends do not settle as acknowledged");
    }

    let mut second = connect(options(&echo_url()));
    second.send("new".to_owned()).await.expect("acknowledged");
    let (received, _) = messages(&mut second, 4).await;
    assert_eq!(received, [texts(0..3, "left "), vec!["new".to_owned()]].concat(), "the stored ones first, once each");
    second.close(1000, "done").unwrap();
    until(&mut second, "closed", |e| matches!(e, SocketEvent::Closed { will_reconnect: false, .. })).await;

    // Closed for good: the name starts afresh.
    let mut third = open(options(&echo_url())).await;
    third.send("fresh".to_owned()).await.expect("acknowledged");
    let (received, _) = messages(&mut third, 1).await;
    assert_eq!(received, ["fresh"]);
}
