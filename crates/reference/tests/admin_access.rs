//! `/admin/*` sits behind the WebSockets' checks: the origin policy (a page it refuses gets 403,
//! a DNS-rebinding page included), then the access tokens when there are any (401 without one,
//! 403 with a wrong one). An allowed page may read the answer; `/stats` stays readable by all.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use durable_ws_reference::{Server, ServerConfig, TokenAuthenticator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// `method path` with extra headers; returns the status and the head in lowercase.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or(format!("Host: {addr}\r\n"), |_| String::new());
    let request = format!("{method} {path} HTTP/1.1\r\n{host}{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let head = response.split_once("\r\n\r\n").expect("a complete response").0.to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_follows_the_origin_policy() {
    let server =
        Server::bind("127.0.0.1:0", ServerConfig { enable_faults: true, ..ServerConfig::default() }).await.unwrap();
    let addr = server.local_addr();
    let cut = "/admin/cut?session=all";
    // Non-browser clients (no Origin) and loopback pages of any port: allowed.
    assert_eq!(http(addr, "POST", cut, &[]).await.0, 200);
    let (status, head) = http(addr, "POST", cut, &[("Origin", "http://localhost:3000")]).await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: http://localhost:3000"), "{head}");
    assert!(head.contains("vary: origin"), "{head}");
    let (status, head) = http(addr, "POST", cut, &[("Origin", &format!("http://{addr}"))]).await;
    assert_eq!(status, 200, "{head}");
    // Another site, and a DNS-rebinding page whose Host matches its Origin: refused before the handler.
    for (origin, host) in [
        ("http://evil.example", addr.to_string()),
        ("http://rebind.example", format!("rebind.example:{}", addr.port())),
    ] {
        let (status, head) = http(addr, "POST", cut, &[("Origin", origin), ("Host", &host)]).await;
        assert_eq!(status, 403, "{origin}: {head}");
        assert!(!head.contains("access-control-allow-origin"), "{origin}: {head}");
    }
    assert_eq!(server.stats().origin_rejections, 2);
    // /stats: readable from any page.
    let (status, head) = http(addr, "GET", "/stats", &[("Origin", "http://evil.example")]).await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_access_tokens_admin_needs_one() {
    let authenticator = TokenAuthenticator::new([("alice", "admin-secret")]).unwrap();
    let config = ServerConfig {
        enable_faults: true,
        authenticator: Some(std::sync::Arc::new(authenticator)),
        ..ServerConfig::default()
    };
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr();
    let page = ("Origin", "http://127.0.0.1:9999");
    let (status, head) = http(addr, "POST", "/admin/expire?session=all", &[page]).await;
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://127.0.0.1:9999"),
        "the page can read the refusal: {head}"
    );
    assert_eq!(http(addr, "POST", "/admin/expire?session=all&access_token=wrong", &[page]).await.0, 403);
    assert_eq!(http(addr, "POST", "/admin/stall?ms=1", &[("Authorization", "Bearer wrong")]).await.0, 403);
    for credentials in
        [&[("Authorization", "Bearer admin-secret")][..], &[("Cookie", "durable_ws_token=admin-secret"), page]]
    {
        assert_eq!(http(addr, "POST", "/admin/cut?session=all", credentials).await.0, 200, "{credentials:?}");
    }
    assert_eq!(http(addr, "POST", "/admin/cut?session=all&access_token=admin-secret", &[page]).await.0, 200);
    // A valid token from a refused page is still refused: the origin check comes first.
    assert_eq!(
        http(addr, "POST", "/admin/cut?session=all&access_token=admin-secret", &[("Origin", "http://evil.example")])
            .await
            .0,
        403
    );
    // /stats stays open (counters only).
    assert_eq!(http(addr, "GET", "/stats", &[]).await.0, 200);
    server.shutdown().await.unwrap();
}
