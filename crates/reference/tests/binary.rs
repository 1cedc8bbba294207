//! The `durable-ws-server` binary: `--help` documents every flag with its default, the flags
//! reach the server, `/stats` counts refusals, and the logs say what happened without leaking
//! secrets.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{PayloadRef, WelcomeStatus};
use durable_ws_reference::Stats;
use futures_util::SinkExt;
use support::{close_code, connect, encode, hello};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

const BINARY: &str = env!("CARGO_BIN_EXE_durable-ws-server");

#[test]
fn help_documents_every_flag_with_its_default() {
    let output = std::process::Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let flags = [
        "--listen",
        "--www",
        "--session-ttl-secs",
        "--max-sessions",
        "--max-message-bytes",
        "--max-buffer-messages",
        "--max-buffer-bytes",
        "--heartbeat-interval-ms",
        "--heartbeat-timeout-ms",
        "--handshake-timeout-secs",
        "--allowed-origin",
        "--auth-token",
        "--auth-token-file",
        "--metrics-token",
        "--no-metrics",
        "--enable-faults",
        "--public-host",
        "--max-sessions-per-identity",
        "--inbound-queue",
        "--max-protocol-errors",
        "--max-buffered-bytes",
        "--max-outgoing-bytes",
        "--send-timeout-ms",
        "--max-messages-per-second",
        "--burst",
        "--max-connections",
        "--max-connections-per-ip",
        "--header-read-timeout-ms",
        "--max-header-bytes",
        "--redis",
    ];
    let options: Vec<&str> = help.lines().filter(|line| line.trim_start().starts_with("--")).collect();
    for flag in flags {
        let line = options
            .iter()
            .find(|line| line.trim_start().starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
        assert!(line.contains("[default: "), "{flag} has no default: {line}");
    }
    let documented = options.iter().filter(|line| !line.contains("--help") && !line.contains("--version")).count();
    assert_eq!(documented, flags.len(), "every flag is listed here:\n{help}");
    assert!(help.contains("RUST_LOG"), "{help}");
}

#[test]
fn invalid_options_are_refused_with_a_clear_message() {
    for args in [&["--allowed-origin", "example.com"][..], &["--auth-token", "nosecret"], &["--max-buffer-bytes", "10"]]
    {
        let output = std::process::Command::new(BINARY).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(args[0].trim_start_matches("--").split('-').next().unwrap()), "{args:?}: {stderr}");
    }
}

async fn stats(addr: SocketAddr) -> Stats {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    serde_json::from_str(response.split_once("\r\n\r\n").expect("a complete response").1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_reach_the_server_and_the_logs_tell_the_story() {
    let secret = "s3cret-value-never-logged";
    let (mut child, addr) = support::spawn_binary(|command| {
        command
            .args(["--auth-token", &format!("alice={secret}"), "--allowed-origin", "http://good.example"])
            .args(["--max-buffer-messages", "4", "--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "200"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped());
    })
    .await;
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let token = format!("/echo?access_token={secret}");

    let mut refused = connect(addr, "/echo", true, &[]).await.expect("refused after the upgrade");
    assert_eq!(close_code(&mut refused).await, 4401);
    assert_eq!(connect(addr, &token, true, &[("origin", "http://evil.example")]).await.err(), Some(403));
    // --max-buffer-messages 4: the fifth unacknowledged echo overflows the session.
    let mut ws = connect(addr, &token, true, &[("origin", "http://good.example")]).await.expect("101");
    assert_eq!(hello(&mut ws, None).await.0, WelcomeStatus::New);
    for seq in 1..=5 {
        ws.send(encode(Frame::Data { seq, payload: PayloadRef::Text("x") })).await.unwrap();
    }
    assert_eq!(close_code(&mut ws).await, 1013);
    // Garbage: 1002.
    let mut ws = connect(addr, &token, true, &[]).await.expect("101");
    hello(&mut ws, None).await;
    ws.send(encode(Frame::Ack { seq: 9 })).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1002);
    // --heartbeat-*: a client that goes silent is dropped.
    let mut silent = connect(addr, &token, true, &[]).await.expect("101");
    hello(&mut silent, None).await;
    let stats = timeout(Duration::from_secs(5), async {
        loop {
            let stats = stats(addr).await;
            if stats.heartbeat_timeouts == 1 {
                return stats;
            }
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the silent client is dropped");
    assert_eq!(
        (stats.auth_failures, stats.origin_rejections, stats.sessions_overflowed, stats.protocol_errors),
        (1, 1, 1, 1),
        "{stats:?}"
    );

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap().success());
    let logs = timeout(Duration::from_secs(5), logs).await.unwrap().unwrap();
    println!("{logs}");
    assert!(!logs.contains(secret), "a secret leaked into the logs");
    assert!(!logs.contains('\x1b'), "no colours when stderr is not a terminal");
    for expected in [
        "authentication failed",
        "connection refused code=4401",
        "request refused: origin not allowed",
        "origin=\"http://evil.example\"",
        "connection opened",
        "user=alice",
        "session created",
        "session dropped: replay buffer overflow",
        "connection closed code=1013",
        "connection closed: protocol error code=1002",
        "connection closed code=4000 reason=\"heartbeat timeout\"",
        "shutting down",
    ] {
        assert!(logs.contains(expected), "the logs mention {expected:?}:\n{logs}");
    }
}
