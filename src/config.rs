//! What the engine needs to start: the client configuration, where the URL comes from and the
//! subprotocols to offer besides `durable.v1`.

use std::future::Future;
use std::pin::Pin;

use durable_ws_core::{ClientConfig, SUBPROTOCOL};

/// A URL being resolved asynchronously; `Err` holds the provider's message.
pub(crate) type UrlFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// What a URL provider returned.
pub(crate) enum Resolution {
    /// The URL is known now.
    Ready(Result<String, String>),
    /// The URL will be known later.
    Pending(UrlFuture),
}

/// Where each connection attempt gets its URL.
pub(crate) enum UrlSource {
    /// Always the same URL.
    Fixed(String),
    /// Asked again before every attempt (fresh tokens, failover).
    Provider(Box<dyn FnMut() -> Resolution>),
}

/// Everything the engine starts from.
pub(crate) struct EngineConfig {
    /// Client state machine settings.
    pub(crate) client: ClientConfig,
    /// The URL.
    pub(crate) url: UrlSource,
    /// Subprotocols offered after `durable.v1`.
    pub(crate) protocols: Vec<String>,
}

/// Why an extra subprotocol cannot be offered, if it cannot.
pub(crate) fn protocol_problem(protocol: &str, earlier: &[String]) -> Option<&'static str> {
    // RFC 6455 §4.1: a token of visible ASCII without separators, each offered once.
    const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={}";
    if protocol.is_empty() || !protocol.bytes().all(|b| (0x21..0x7f).contains(&b) && !SEPARATORS.contains(&b)) {
        Some("each protocol must be a non-empty token of visible ASCII without separators")
    } else if protocol == SUBPROTOCOL || earlier.iter().any(|p| p == protocol) {
        Some("each protocol may be offered once (durable.v1 is always offered)")
    } else {
        None
    }
}

/// Whether `url` is absolute with a scheme `new WebSocket` accepts.
pub(crate) fn url_scheme_ok(url: &str) -> bool {
    ["ws://", "wss://", "http://", "https://"]
        .iter()
        .any(|scheme| url.len() >= scheme.len() && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes()))
}
