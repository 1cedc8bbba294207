//! Tokens and payloads never reach the logs, at any level: the binary runs with
//! `RUST_LOG=trace` (where tungstenite and hyper would dump frames and headers), carries a
//! durable session, a plain echo and an `/admin` call, and its stderr holds none of the access
//! token, the session token or the payloads.

mod support;

use std::process::Stdio;
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::PayloadRef;
use durable_ws_reference::token_to_hex;
use futures_util::{SinkExt, StreamExt};
use support::{connect, encode, hello, next_data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_token_and_no_payload() {
    let secret = "Tok3n-ZQXJ-never-in-logs";
    let durable_payload = "PAYLOAD-durable-KWVB-4711";
    let plain_payload = "PAYLOAD-plain-MHNR-0815";
    let (mut child, addr) = support::spawn_binary(|command| {
        command
            .args(["--auth-token", &format!("alice={secret}"), "--enable-faults"])
            .env("RUST_LOG", "trace")
            .stderr(Stdio::piped());
    })
    .await;
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    });

    // A durable session: the token in the query, a message and its echo, then a resume.
    let path = format!("/echo?access_token={secret}");
    let mut ws = connect(addr, &path, true, &[]).await.expect("101");
    let (_, session_token, _) = hello(&mut ws, None).await;
    ws.send(encode(Frame::Data { seq: 1, payload: PayloadRef::Text(durable_payload) })).await.unwrap();
    assert_eq!(next_data(&mut ws).await, (1, durable_payload.as_bytes().to_vec()));
    drop(ws);
    let bearer = format!("Bearer {secret}");
    let mut ws = connect(addr, "/echo", true, &[("authorization", &bearer)]).await.expect("101");
    hello(&mut ws, Some((session_token, 1))).await;
    ws.send(encode(Frame::Goodbye)).await.unwrap();
    ws.close(None).await.unwrap();
    drop(ws);

    // A plain echo, the token in a cookie.
    let cookie = format!("durable_ws_token={secret}");
    let mut plain = connect(addr, "/echo", false, &[("cookie", &cookie)]).await.expect("101");
    plain.send(Message::text(plain_payload)).await.unwrap();
    let echoed = timeout(Duration::from_secs(5), plain.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echoed, Message::text(plain_payload));
    drop(plain);

    // /admin with the token, and a wrong one.
    for token in [secret, "wrong-Tok3n-RTYU"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("POST /admin/cut?session=all&access_token={token} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.unwrap().unwrap();
        assert!(response.starts_with(if token == secret { "HTTP/1.1 200" } else { "HTTP/1.1 403" }), "{response}");
    }

    // A request cut short: the server logs it at debug (so debug lines do reach stderr).
    let mut cut = TcpStream::connect(addr).await.unwrap();
    cut.write_all(format!("GET /stats?access_token={secret} HT").as_bytes()).await.unwrap();
    drop(cut);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap().success());
    let logs = timeout(Duration::from_secs(5), logs).await.unwrap().unwrap();
    assert!(logs.contains("DEBUG"), "debug logging is on:\n{logs}");
    // The frame-dumping stacks stay at info.
    for line in logs.lines().filter(|line| line.contains(" DEBUG ") || line.contains(" TRACE ")) {
        for quiet in [" tungstenite", " tokio_tungstenite", " hyper", " hyper_util"] {
            assert!(!line.contains(&format!("{quiet}:")) && !line.contains(&format!("{quiet}::")), "{line}");
        }
    }
    assert!(logs.contains("connection opened"), "{logs}");
    let session_hex = token_to_hex(&session_token);
    for (leak, what) in [
        (secret, "the access token"),
        ("wrong-Tok3n-RTYU", "a refused token"),
        (durable_payload, "a durable payload"),
        (plain_payload, "a plain payload"),
        (session_hex.as_str(), "the session token"),
    ] {
        if let Some(line) = logs.lines().find(|line| line.contains(leak)) {
            panic!("{what} is in the logs: {line}");
        }
    }
}
