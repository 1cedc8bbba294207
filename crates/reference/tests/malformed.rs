//! Malformed protocol frames in the middle of a session close that connection with 1002 (and a
//! reason saying what was wrong); the session stays resumable, the server does not panic, and
//! other sessions are not disturbed.

mod support;

use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{Event, Payload, PayloadRef, Token, WelcomeStatus};
use durable_ws_reference::ServerConfig;
use durable_ws_testkit::native_client::NativeClient;
use futures_util::{SinkExt, StreamExt};
use support::native::{fast_client, next_event};
use support::{durable, echo, encode, hello, server};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// One kind of garbage, given the next sequence number the server expects.
type Garbage = fn(u64) -> Message;

fn binary(bytes: &[u8]) -> Message {
    Message::Binary(bytes.to_vec().into())
}

const GARBAGE: &[(&str, Garbage, &str)] = &[
    ("unknown frame type", |_| binary(&[0x42, 0x01]), "unknown frame type 0x42"),
    ("truncated varint", |_| binary(&[0x03, 0x80]), "truncated"),
    ("empty message", |_| binary(&[]), "empty frame"),
    (
        "sequence gap",
        |next| encode(Frame::Data { seq: next + 5, payload: PayloadRef::Text("skipped ahead") }),
        "sequence gap",
    ),
    ("sequence number 0", |_| binary(&[0x03, 0x00, b'x']), "sequence number 0"),
    ("ack from the future", |_| encode(Frame::Ack { seq: 1_000 }), "from the future"),
    ("text frame in durable mode", |_| Message::Text("hello".into()), "text message"),
    ("invalid UTF-8 in a text data frame", |next| binary(&[0x03, next as u8, 0xff, 0xfe]), "UTF-8"),
    ("non-minimal varint", |_| binary(&[0x05, 0x81, 0x00]), "shortest form"),
    (
        "varint over 64 bits",
        |_| binary(&[0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        "overflows",
    ),
    ("trailing bytes after an ack", |_| binary(&[0x05, 0x01, 0x00]), "trailing"),
    ("hello in the middle of a session", |_| encode(Frame::Hello { resume: None }), "unexpected"),
    (
        "welcome from a client",
        |_| encode(Frame::Welcome { status: WelcomeStatus::New, token: Token([1; 16]), last_received: 0 }),
        "unexpected",
    ),
];

/// Reads until the close frame; returns its code and reason.
async fn close_frame(ws: &mut support::Raw) -> (u16, String) {
    loop {
        match timeout(Duration::from_secs(5), ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), frame.reason.to_string()),
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_its_connection_with_1002_and_the_session_resumes() {
    let server = server(ServerConfig::default()).await;
    let addr = server.local_addr();

    // The bystander: a durable client exchanging messages all along.
    let (bystander, mut events) = NativeClient::connect(&format!("ws://{addr}/echo"), fast_client()).unwrap();
    assert_eq!(next_event(&mut events).await, Event::Open { durable: true });
    let mut bystander_round = 0;

    let mut ws = durable(addr).await;
    let (_, token, _) = hello(&mut ws, None).await;
    let mut next = 1;
    for (kind, garbage, reason) in GARBAGE {
        echo(&mut ws, next, &format!("before {kind}")).await;
        next += 1;
        ws.send(garbage(next)).await.unwrap();
        let (code, got_reason) = close_frame(&mut ws).await;
        let expected = if *reason == "UTF-8" { 1007 } else { 1002 };
        assert_eq!(code, expected, "{kind}");
        assert!(got_reason.contains(reason), "{kind}: reason {got_reason:?} should mention {reason:?}");

        // Meanwhile the other session goes on as if nothing happened.
        bystander_round += 1;
        let text = format!("bystander {bystander_round}");
        bystander.send(Payload::Text(text.clone())).unwrap();
        loop {
            match next_event(&mut events).await {
                Event::Message(echoed) => break assert_eq!(echoed, Payload::Text(text)),
                Event::Acked { .. } => {}
                other => panic!("the bystander saw {other:?} after {kind}"),
            }
        }

        // The broken connection's session resumes where it was: every echo was received.
        ws = durable(addr).await;
        assert_eq!(
            hello(&mut ws, Some((token, next - 1))).await,
            (WelcomeStatus::Resumed, token, next - 1),
            "after {kind}"
        );
    }
    echo(&mut ws, next, "after all that").await;
    let stats = server.stats();
    let kinds = GARBAGE.len() as u64;
    assert_eq!((stats.protocol_errors, stats.resumes, stats.sessions), (kinds, kinds, 2), "{stats:?}");
}
