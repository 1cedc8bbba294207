//! Authentication at the handshake (close 4401 missing, 4403 wrong, after the upgrade so a browser
//! can read it; query parameter, cookie or bearer header), and sessions bound to the identity that created them.

mod support;

use std::sync::Arc;

use durable_ws_core::WelcomeStatus;
use durable_ws_reference::{ServerConfig, TokenAuthenticator};
use support::{close_code, connect, echo, hello, next_data, server, wait_until};

async fn server_with_users() -> durable_ws_reference::Server {
    let auth = TokenAuthenticator::new([("alice", "alice-secret"), ("mallory", "mallory-secret")]).unwrap();
    server(ServerConfig { authenticator: Some(Arc::new(auth)), ..ServerConfig::default() }).await
}

/// A refusal a browser can read: the upgrade is accepted and closed at once with this code.
async fn refused_with(addr: std::net::SocketAddr, path: &str, durable: bool, headers: &[(&str, &str)]) -> u16 {
    let mut ws = connect(addr, path, durable, headers).await.expect("refusals come after the upgrade");
    close_code(&mut ws).await
}

#[tokio::test]
async fn handshakes_without_valid_credentials_are_closed_with_4401_or_4403() {
    let server = server_with_users().await;
    let addr = server.local_addr();
    for path in ["/echo", "/chat"] {
        assert_eq!(refused_with(addr, path, true, &[]).await, 4401, "{path}: no credentials");
        assert_eq!(refused_with(addr, &format!("{path}?access_token=guess"), true, &[]).await, 4403, "{path}");
    }
    assert_eq!(refused_with(addr, "/echo", false, &[]).await, 4401, "plain connections too");
    assert_eq!(refused_with(addr, "/echo", true, &[("cookie", "durable_ws_token=alice-secre")]).await, 4403);
    assert_eq!(refused_with(addr, "/echo", true, &[("authorization", "Bearer nope")]).await, 4403);
    wait_until(|| server.stats().connections == 0).await;
    let stats = server.stats();
    assert_eq!((stats.auth_failures, stats.connections, stats.sessions), (7, 0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_token_in_the_query_a_cookie_or_a_bearer_header_is_accepted() {
    let server = server_with_users().await;
    let addr = server.local_addr();
    let mut by_query = connect(addr, "/echo?access_token=alice-secret", true, &[]).await.expect("query: 101");
    let cookie = [("cookie", "theme=dark; durable_ws_token=alice-secret")];
    let mut by_cookie = connect(addr, "/echo", true, &cookie).await.expect("cookie: 101");
    let mut by_bearer =
        connect(addr, "/echo", true, &[("authorization", "Bearer alice-secret")]).await.expect("bearer: 101");
    for ws in [&mut by_query, &mut by_cookie, &mut by_bearer] {
        assert_eq!(hello(ws, None).await.0, WelcomeStatus::New);
    }
    assert_eq!(server.stats().auth_failures, 0);
}

#[tokio::test]
async fn a_session_can_only_be_resumed_by_the_identity_that_created_it() {
    let server = server_with_users().await;
    let addr = server.local_addr();
    let mut alice = connect(addr, "/echo?access_token=alice-secret", true, &[]).await.unwrap();
    let (_, token, _) = hello(&mut alice, None).await;
    echo(&mut alice, 1, "private").await;

    // Mallory got hold of Alice's session token: she gets a fresh session of her own, and
    // nothing of Alice's (no replay, a new token).
    let mut mallory = connect(addr, "/echo?access_token=mallory-secret", true, &[]).await.unwrap();
    let (status, mallory_token, last_received) = hello(&mut mallory, Some((token, 0))).await;
    assert_eq!((status, last_received), (WelcomeStatus::LostRefused, 0));
    assert_ne!(mallory_token, token);
    echo(&mut mallory, 1, "mallory's own").await;

    // Alice's session is untouched: her connection was not taken over, and after a drop she
    // resumes it; the echoes she had not confirmed (she claims nothing received) are replayed.
    echo(&mut alice, 2, "still mine").await;
    drop(alice);
    let mut alice = connect(addr, "/echo", true, &[("cookie", "durable_ws_token=alice-secret")]).await.unwrap();
    let (status, resumed, last_received) = hello(&mut alice, Some((token, 0))).await;
    assert_eq!((status, resumed, last_received), (WelcomeStatus::Resumed, token, 2));
    assert_eq!(next_data(&mut alice).await, (1, b"private".to_vec()));
    assert_eq!(next_data(&mut alice).await, (2, b"still mine".to_vec()));
    echo(&mut alice, 3, "after the resume").await;
    let stats = server.stats();
    assert_eq!((stats.resumes, stats.sessions_lost, stats.sessions), (1, 1, 2), "{stats:?}");
}
