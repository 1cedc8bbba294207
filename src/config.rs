//! What the engine needs to start: the client configuration, where the URL comes from and the
//! subprotocols to offer besides `durable.v1`.

#[cfg(feature = "typed")]
use std::future::Future;
#[cfg(feature = "typed")]
use std::pin::Pin;

use durable_ws_core::ClientConfig;

pub(crate) use crate::engine::UrlReply;

/// A URL being resolved asynchronously; `Err` holds the provider's message.
#[cfg(feature = "typed")]
pub(crate) type UrlFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// What a URL provider returned.
pub(crate) enum Resolution {
    /// The URL is known now.
    Ready(Result<String, String>),
    /// The URL will be known when the future completes.
    #[cfg(feature = "typed")]
    Pending(UrlFuture),
    /// The provider answers through the [`UrlReply`] it was given (the JS API resolves its
    /// promises in JavaScript: no Rust futures in the npm build).
    #[cfg(feature = "js")]
    Later,
}

/// A function asked for the URL before every connection attempt.
pub(crate) type UrlProvider = Box<dyn FnMut(UrlReply) -> Resolution>;

/// Where each connection attempt gets its URL.
pub(crate) enum UrlSource {
    /// Always the same URL.
    Fixed(String),
    /// Asked again before every attempt (fresh tokens, failover).
    Provider(UrlProvider),
}

/// Everything the engine starts from.
pub(crate) struct EngineConfig {
    /// Client state machine settings.
    pub(crate) client: ClientConfig,
    /// The URL.
    pub(crate) url: UrlSource,
    /// Subprotocols offered after `durable.v1`.
    pub(crate) protocols: Vec<String>,
    /// The name of a persisted session and how to open its storage.
    pub(crate) persist: Option<(String, crate::persist::StoreOpener)>,
    /// The `WebSocket` constructor to use instead of the global one (the JS API's `WebSocket` option).
    pub(crate) websocket: Option<js_sys::Function>,
}

/// Whether `url` is absolute with a scheme `new WebSocket` accepts (the JS API checks it in `face.js`).
#[cfg(feature = "typed")]
pub(crate) fn url_scheme_ok(url: &str) -> bool {
    ["ws://", "wss://", "http://", "https://"].iter().any(|scheme| {
        url.len() >= scheme.len() && url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    })
}
