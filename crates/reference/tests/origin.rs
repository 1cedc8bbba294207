//! RFC 6455 §10.2: the `Origin` of a browser's handshake is checked before the upgrade.

mod support;

use durable_ws_core::WelcomeStatus;
use durable_ws_reference::{OriginPolicy, ServerConfig};
use support::{connect, hello, server};

#[tokio::test]
async fn by_default_only_pages_from_the_listen_host_may_connect() {
    let server = server(ServerConfig::default()).await;
    let addr = server.local_addr();
    for path in ["/echo", "/chat"] {
        assert_eq!(connect(addr, path, true, &[("origin", "http://evil.example")]).await.err(), Some(403), "{path}");
        assert_eq!(connect(addr, path, true, &[("origin", "null")]).await.err(), Some(403), "{path}");
    }
    // A page of another port on the same (loopback) host, one of the server itself, and a
    // non-browser client without an Origin are let through.
    for origin in [Some("http://localhost:3000"), Some(&*format!("http://{addr}")), None] {
        let headers: Vec<_> = origin.map(|o| ("origin", o)).into_iter().collect();
        let mut ws =
            connect(addr, "/echo", true, &headers).await.unwrap_or_else(|status| panic!("{origin:?}: {status}"));
        assert_eq!(hello(&mut ws, None).await.0, WelcomeStatus::New);
    }
    let stats = server.stats();
    assert_eq!((stats.origin_rejections, stats.sessions), (4, 3), "{stats:?}");
}

#[tokio::test]
async fn an_allowlist_admits_exactly_its_origins() {
    let origins = OriginPolicy::from_allowed(&["https://app.example".into()]).unwrap();
    let server = server(ServerConfig { origins, ..ServerConfig::default() }).await;
    let addr = server.local_addr();
    let mut ws = connect(addr, "/echo", true, &[("origin", "https://app.example")]).await.expect("listed origin: 101");
    assert_eq!(hello(&mut ws, None).await.0, WelcomeStatus::New);
    for refused in ["http://app.example", "https://app.example:8443", "https://evil.example", "http://127.0.0.1"] {
        assert_eq!(connect(addr, "/echo", false, &[("origin", refused)]).await.err(), Some(403), "{refused}");
    }
    assert_eq!(server.stats().origin_rejections, 4);
}

#[tokio::test]
async fn a_wildcard_admits_every_origin() {
    let server = server(ServerConfig { origins: OriginPolicy::Any, ..ServerConfig::default() }).await;
    let mut ws =
        connect(server.local_addr(), "/echo", true, &[("origin", "https://anywhere.example")]).await.expect("101");
    assert_eq!(hello(&mut ws, None).await.0, WelcomeStatus::New);
}
