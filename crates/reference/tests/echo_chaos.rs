//! The reference server end to end on 127.0.0.1: durable echo through a proxy that keeps
//! cutting connections, plain echo, and the protocol's error paths driven with raw frames.

mod support;

use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{Event, LostReason, Payload, PayloadRef, Token, WelcomeStatus};
use durable_ws_reference::ServerConfig;
use durable_ws_testkit::chaos_proxy::{ChaosConfig, ChaosProxy};
use durable_ws_testkit::native_client::NativeClient;
use futures_util::{SinkExt, StreamExt};
use support::native::{fast_client_with_3s_connect_timeout, next_event, wait_for};
use support::{close_code, encode, next_frame, raw_selected, server, Raw};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Opens a new durable session with raw frames; returns its token.
async fn hello_new(ws: &mut Raw) -> Token {
    ws.send(encode(Frame::Hello { resume: None })).await.unwrap();
    next_frame(ws, |frame| match frame {
        Frame::Welcome { status: WelcomeStatus::New, token, last_received: 0 } => token,
        other => panic!("expected Welcome(New), got {other:?}"),
    })
    .await
}

fn numbered(i: u64) -> Payload {
    if i % 2 == 0 {
        Payload::Text(format!("message {i}"))
    } else {
        let mut bytes = i.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xfe; 23]);
        Payload::Binary(bytes)
    }
}

fn number_of(payload: &Payload) -> u64 {
    match payload {
        Payload::Text(text) => text.strip_prefix("message ").and_then(|n| n.parse().ok()).expect("numbered text"),
        Payload::Binary(bytes) => u64::from_be_bytes(bytes[..8].try_into().expect("numbered binary")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_echo_survives_a_proxy_that_keeps_cutting() {
    const COUNT: u64 = 3000;
    let server = server(ServerConfig::default()).await;
    let chaos = ChaosConfig { lifetime_ms: Some((50, 300)), latency_ms: 5, seed: None };
    let proxy = ChaosProxy::start(server.local_addr(), chaos).await.unwrap();
    let (client, mut events) =
        NativeClient::connect(&format!("ws://{}/echo", proxy.local_addr()), fast_client_with_3s_connect_timeout())
            .unwrap();

    let sender = client.clone();
    let sending = tokio::spawn(async move {
        for i in 0..COUNT {
            let payload = numbered(i);
            while !sender.has_room(payload.len()) {
                sleep(Duration::from_millis(5)).await;
            }
            sender.send(payload).expect("send accepted");
            if i % 2 == 1 {
                sleep(Duration::from_millis(3)).await;
            }
        }
    });

    let mut next = 0;
    let (mut opens, mut resumes, mut acked) = (0, 0, 0);
    let received = timeout(Duration::from_secs(18), async {
        // Every echo, and the server's acknowledgement of every message (so that the close
        // below has nothing left to hand back, even if a cut interrupts it).
        while next < COUNT || acked < COUNT {
            match next_event(&mut events).await {
                Event::Acked { seq } => acked = seq,
                Event::Message(payload) => {
                    assert_eq!(number_of(&payload), next, "echoes arrive exactly once and in order");
                    assert_eq!(payload, numbered(next), "echo is byte-identical, same kind");
                    next += 1;
                }
                Event::Open { durable } => {
                    assert!(durable, "the echo server speaks durable.v1");
                    opens += 1;
                }
                Event::Resumed { .. } => resumes += 1,
                event @ (Event::SessionLost { .. } | Event::Error(_)) => panic!("unexpected {event:?}"),
                _ => {}
            }
        }
    })
    .await;
    sending.await.unwrap();
    let cuts = proxy.stats().cuts;
    assert!(
        received.is_ok(),
        "{next} of {COUNT} echoes arrived, {acked} acknowledged (cuts {cuts}, resumes {resumes})"
    );
    assert_eq!(opens, 1, "one session from start to end");
    assert!(resumes >= 1, "at least one resume");
    assert!(cuts > 10, "the proxy cut only {cuts} connections");
    let stats = server.stats();
    assert_eq!(stats.messages_in, COUNT, "the server delivered each message once: {stats:?}");
    assert!(stats.resumes >= 1);

    client.close(1000, "done");
    let closed = wait_for(&mut events, |event| matches!(event, Event::Closed { will_reconnect: false, .. })).await;
    assert!(matches!(closed, Event::Closed { code: 1000, .. }), "{closed:?}");
    println!("cuts {cuts}, resumes {resumes}, server {stats:?}");
}

#[tokio::test]
async fn plain_echo_without_the_subprotocol() {
    let server = server(ServerConfig::default()).await;
    let (mut ws, durable) = raw_selected(server.local_addr(), false).await;
    assert!(!durable, "no subprotocol offered, none selected");
    ws.send(Message::Text("hello".into())).await.unwrap();
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    let echo = timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echo, Message::Text("hello".into()));
    let echo = timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echo, Message::Binary(vec![1, 2, 3].into()));
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn resume_with_an_unknown_token_gets_lost_unknown() {
    let server = server(ServerConfig::default()).await;
    let (mut ws, durable) = raw_selected(server.local_addr(), true).await;
    assert!(durable);
    let unknown = Token([7; 16]);
    ws.send(encode(Frame::Hello { resume: Some((unknown, 5)) })).await.unwrap();
    next_frame(&mut ws, |frame| match frame {
        Frame::Welcome { status: WelcomeStatus::LostUnknown, token, last_received: 0 } => {
            assert_ne!(token, unknown, "a fresh session gets a fresh token");
        }
        other => panic!("expected Welcome(LostUnknown), got {other:?}"),
    })
    .await;
    assert_eq!(server.stats().sessions_lost, 1);
}

#[tokio::test]
async fn resume_replays_unacknowledged_echoes_and_supersedes_the_old_connection() {
    let server = server(ServerConfig::default()).await;
    let (mut first, _) = raw_selected(server.local_addr(), true).await;
    let token = hello_new(&mut first).await;
    for seq in 1..=3 {
        let text = format!("m{seq}");
        first.send(encode(Frame::Data { seq, payload: PayloadRef::Text(&text) })).await.unwrap();
    }
    // Echoes 1..=3 come back (interleaved with the server's acks); we never acknowledge them.
    let mut echoed = 0;
    while echoed < 3 {
        next_frame(&mut first, |frame| match frame {
            Frame::Data { seq, payload } => {
                echoed += 1;
                assert_eq!((seq, payload), (echoed, PayloadRef::Text(&format!("m{echoed}"))));
            }
            Frame::Ack { .. } => {}
            other => panic!("unexpected {other:?}"),
        })
        .await;
    }
    // Resume on a second connection while the first is still open: it takes the session over,
    // having delivered echo 1 only.
    let (mut second, _) = raw_selected(server.local_addr(), true).await;
    second.send(encode(Frame::Hello { resume: Some((token, 1)) })).await.unwrap();
    next_frame(&mut second, |frame| {
        assert_eq!(frame, Frame::Welcome { status: WelcomeStatus::Resumed, token, last_received: 3 });
    })
    .await;
    for expected in 2..=3 {
        next_frame(&mut second, |frame| {
            let text = format!("m{expected}");
            assert_eq!(frame, Frame::Data { seq: expected, payload: PayloadRef::Text(&text) });
        })
        .await;
    }
    // The old connection is closed with 4409 (superseded).
    let old = timeout(Duration::from_secs(5), async {
        loop {
            match first.next().await {
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("old connection ends");
    match old {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4409, "{frame:?}"),
        other => panic!("superseded connection should be closed with 4409, got {other:?}"),
    }
    let stats = server.stats();
    assert_eq!((stats.resumes, stats.replayed, stats.sessions), (1, 2, 1), "{stats:?}");
}

#[tokio::test]
async fn a_bad_first_frame_closes_with_1002() {
    let server = server(ServerConfig::default()).await;
    let firsts = [
        Message::Binary(vec![0xff, 0x00].into()), // not a frame type
        Message::Binary(vec![0x01].into()),       // truncated hello
        encode(Frame::Ack { seq: 1 }),            // a frame, but not hello
        Message::Text("hello".into()),            // text on a durable connection
    ];
    for first in firsts {
        let (mut ws, durable) = raw_selected(server.local_addr(), true).await;
        assert!(durable);
        ws.send(first.clone()).await.unwrap();
        assert_eq!(close_code(&mut ws).await, 1002, "first message {first:?}");
    }
    assert_eq!(server.stats().sessions, 0);
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let server = server(ServerConfig { max_message_bytes: 1024, ..ServerConfig::default() }).await;

    let (mut plain, _) = raw_selected(server.local_addr(), false).await;
    plain.send(Message::Text("x".repeat(1024).into())).await.unwrap();
    let echo = timeout(Duration::from_secs(5), plain.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echo.len(), 1024, "a message at the limit is fine");
    plain.send(Message::Text("x".repeat(4096).into())).await.unwrap();
    assert_eq!(close_code(&mut plain).await, 1009);

    let (mut durable, _) = raw_selected(server.local_addr(), true).await;
    hello_new(&mut durable).await;
    let at_limit = vec![1u8; 1024];
    durable.send(encode(Frame::Data { seq: 1, payload: PayloadRef::Binary(&at_limit) })).await.unwrap();
    let echoed = loop {
        let frame = next_frame(&mut durable, |frame| match frame {
            Frame::Data { seq: 1, payload } => Some(payload.as_bytes().len()),
            _ => None,
        });
        if let Some(len) = frame.await {
            break len;
        }
    };
    assert_eq!(echoed, 1024);
    let just_over = vec![2u8; 1025];
    durable.send(encode(Frame::Data { seq: 2, payload: PayloadRef::Binary(&just_over) })).await.unwrap();
    assert_eq!(close_code(&mut durable).await, 1009, "one byte over the limit");

    let (mut durable, _) = raw_selected(server.local_addr(), true).await;
    hello_new(&mut durable).await;
    let too_big = vec![2u8; 4096];
    durable.send(encode(Frame::Data { seq: 1, payload: PayloadRef::Binary(&too_big) })).await.unwrap();
    assert_eq!(close_code(&mut durable).await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_reports_exactly_the_unconfirmed_messages() {
    let ttl = Duration::from_millis(300);
    let server = server(ServerConfig { session_ttl: ttl, ..ServerConfig::default() }).await;
    let proxy = ChaosProxy::start(server.local_addr(), ChaosConfig::default()).await.unwrap();
    let (client, mut events) =
        NativeClient::connect(&format!("ws://{}/echo", proxy.local_addr()), fast_client_with_3s_connect_timeout())
            .unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Open { durable: true })).await;

    // Confirmed: acknowledged by the server (and echoed).
    client.send(Payload::from("confirmed")).unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Acked { seq: 1 })).await;
    // Sent into a stalled link: they reach the proxy, never the server.
    proxy.set_stalled(true);
    client.send(Payload::from("in flight 2")).unwrap();
    client.send(Payload::Binary(vec![3; 3])).unwrap();
    sleep(Duration::from_millis(100)).await;
    // The link dies; the server is unreachable for longer than the session TTL.
    proxy.set_blocked(true);
    proxy.cut_all();
    wait_for(&mut events, |e| matches!(e, Event::Closed { will_reconnect: true, .. })).await;
    client.send(Payload::from("queued 4")).unwrap();
    proxy.set_stalled(false);
    sleep(ttl * 3).await;
    proxy.set_blocked(false);
    client.reconnect_now();

    let lost = loop {
        match next_event(&mut events).await {
            event @ Event::SessionLost { .. } => break event,
            Event::Message(payload) => assert_eq!(payload, Payload::from("confirmed")),
            _ => {}
        }
    };
    let expected =
        vec![(2, Payload::from("in flight 2")), (3, Payload::Binary(vec![3; 3])), (4, Payload::from("queued 4"))];
    assert_eq!(lost, Event::SessionLost { reason: LostReason::Expired, unconfirmed: expected });
    assert_eq!(next_event(&mut events).await, Event::Open { durable: true }, "a new session follows");
    let stats = server.stats();
    assert!(stats.sessions_expired >= 1 && stats.sessions_lost == 1, "{stats:?}");

    // The new session works, numbered from 1.
    assert_eq!(client.send(Payload::from("after")).unwrap(), 1);
    wait_for(&mut events, |e| matches!(e, Event::Message(p) if *p == Payload::from("after"))).await;
}

#[tokio::test]
async fn replay_buffer_overflow_closes_with_1013_and_the_resume_gets_lost_overflow() {
    let session = durable_ws_core::SessionConfig {
        limits: durable_ws_core::BufferLimits { max_messages: 4, max_bytes: 1 << 20 },
        ..durable_ws_core::SessionConfig::default()
    };
    let server = server(ServerConfig { session, ..ServerConfig::default() }).await;
    let (mut ws, _) = raw_selected(server.local_addr(), true).await;
    let token = hello_new(&mut ws).await;
    // Five messages echoed into a session whose client never acknowledges: the fifth echo
    // does not fit.
    for seq in 1..=5 {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text("x") })).await.unwrap();
    }
    assert_eq!(close_code(&mut ws).await, 1013);
    let (mut again, _) = raw_selected(server.local_addr(), true).await;
    again.send(encode(Frame::Hello { resume: Some((token, 4)) })).await.unwrap();
    next_frame(&mut again, |frame| {
        assert!(matches!(frame, Frame::Welcome { status: WelcomeStatus::LostOverflow, .. }), "{frame:?}");
    })
    .await;
    assert_eq!(server.stats().sessions_overflowed, 1);
}

#[tokio::test]
async fn goodbye_ends_the_session_and_the_client_closes_with_its_own_code() {
    let server = server(ServerConfig::default()).await;
    let (mut ws, _) = raw_selected(server.local_addr(), true).await;
    let token = hello_new(&mut ws).await;
    ws.send(encode(Frame::Goodbye)).await.unwrap();
    // The server does not close first (PROTOCOL §5.7): within a second nothing but our close.
    let early = timeout(Duration::from_millis(500), ws.next()).await;
    assert!(early.is_err(), "the server closed first: {early:?}");
    assert_eq!(server.stats().sessions, 0);
    ws.send(Message::Close(Some(CloseFrame { code: CloseCode::from(4321), reason: "app done".into() }))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4321, "the server answers the client's close (RFC 6455: echoing its code)");
    let (mut again, _) = raw_selected(server.local_addr(), true).await;
    again.send(encode(Frame::Hello { resume: Some((token, 0)) })).await.unwrap();
    next_frame(&mut again, |frame| {
        assert!(matches!(frame, Frame::Welcome { status: WelcomeStatus::LostUnknown, .. }), "{frame:?}");
    })
    .await;
}

#[tokio::test]
async fn a_full_server_refuses_new_sessions_with_1013() {
    let server = server(ServerConfig { max_sessions: 1, ..ServerConfig::default() }).await;
    let (mut first, _) = raw_selected(server.local_addr(), true).await;
    hello_new(&mut first).await;
    let (mut second, _) = raw_selected(server.local_addr(), true).await;
    second.send(encode(Frame::Hello { resume: None })).await.unwrap();
    assert_eq!(close_code(&mut second).await, 1013);
}
