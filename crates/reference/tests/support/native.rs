//! Helpers for tests that drive the server with the `NativeClient` (the core's state machine
//! over tokio-tungstenite).

use std::net::SocketAddr;
use std::time::Duration;

use durable_ws_core::{BackoffConfig, ClientConfig, Event};
use durable_ws_testkit::native_client::NativeClient;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

/// A client config that reconnects quickly (tests, not browsers).
pub fn fast_client() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 50, ..BackoffConfig::default() },
        ..ClientConfig::default()
    }
}

/// [`fast_client`] that also gives up on a connection attempt after 3 s (instead of the
/// default 10 s).
pub fn fast_client_with_3s_connect_timeout() -> ClientConfig {
    ClientConfig { connect_timeout_ms: 3_000, ..fast_client() }
}

/// The next event, within 10 s.
pub async fn next_event(events: &mut UnboundedReceiver<Event>) -> Event {
    timeout(Duration::from_secs(10), events.recv()).await.expect("event in time").expect("client still running")
}

/// Skips events until one matches, failing on a lost session.
pub async fn wait_for(events: &mut UnboundedReceiver<Event>, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let event = next_event(events).await;
        assert!(!matches!(event, Event::SessionLost { .. }), "unexpected {event:?}");
        if wanted(&event) {
            return event;
        }
    }
}

/// A `NativeClient` on `/echo` whose durable session is open.
pub async fn connected(addr: SocketAddr, config: ClientConfig) -> (NativeClient, UnboundedReceiver<Event>) {
    let (client, mut events) = NativeClient::connect(&format!("ws://{addr}/echo"), config).unwrap();
    wait_for(&mut events, |e| matches!(e, Event::Open { durable: true })).await;
    (client, events)
}
