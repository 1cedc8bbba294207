//! Settings of a [`DurableSocket`](super::DurableSocket), as a builder.

use std::fmt::{self, Display};
use std::future::Future;
use std::ops::RangeInclusive;
use std::time::Duration;

use durable_ws_core::{ClientConfig, HeartbeatConfig, Millis, SUBPROTOCOL};

use crate::config::{url_scheme_ok, EngineConfig, Resolution, UrlSource};
use crate::error::Error;

/// How to connect and when to give up.
///
/// | setting | default |
/// |---|---|
/// | [`reconnect_delay`](Self::reconnect_delay) | 250 ms, growing to 30 s |
/// | [`backoff_factor`](Self::backoff_factor) | 2 |
/// | [`jitter`](Self::jitter) | on (full jitter) |
/// | [`max_attempts`](Self::max_attempts) | unlimited |
/// | [`stable_after`](Self::stable_after) | 5 s up resets the attempt count (as does a link that broke after its handshake) |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s |
/// | [`close_timeout`](Self::close_timeout) | 2 s of draining acknowledgements on `close` |
/// | [`heartbeat`](Self::heartbeat) | ping every 15 s, dead after 10 s of silence |
/// | [`buffer`](Self::buffer) | 10 000 messages, 8 MiB unconfirmed |
/// | [`max_message_bytes`](Self::max_message_bytes) | 1 MiB |
/// | [`terminal_close_codes`](Self::terminal_close_codes) | 1003, 1007–1010, 4400–4499 |
/// | [`protocols`](Self::protocols) | none besides `durable.v1` |
/// | [`message_history`](Self::message_history) | the Leptos and Yew hooks keep the last 1 000 messages |
/// | [`persist`](Self::persist) | not persisted: the session ends with the page |
#[must_use = "options do nothing until passed to `DurableSocket::connect` or a hook"]
pub struct Options {
    url: UrlSource,
    protocols: Vec<String>,
    client: ClientConfig,
    history: usize,
    persist: Option<String>,
}

/// How many received messages the Leptos and Yew hooks keep by default.
pub(crate) const DEFAULT_HISTORY: usize = 1000;

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match &self.url {
            UrlSource::Fixed(url) => url.as_str(),
            UrlSource::Provider(_) => "<url provider>",
        };
        f.debug_struct("Options")
            .field("url", &url)
            .field("protocols", &self.protocols)
            .field("client", &self.client)
            .field("history", &self.history)
            .field("persist", &self.persist)
            .finish()
    }
}

impl Options {
    /// Connect to `url` (`ws://`, `wss://`, `http://` or `https://`).
    pub fn new(url: impl Into<String>) -> Self {
        Self::from_source(UrlSource::Fixed(url.into()))
    }

    /// Ask `provider` for the URL before every attempt (fresh credentials, failover). A provider
    /// error is reported as an `Error` event and counts as a failed attempt.
    pub fn with_url_provider<F, Fut, E>(mut provider: F) -> Self
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = Result<String, E>> + 'static,
        E: Display,
    {
        Self::from_source(UrlSource::Provider(Box::new(move |_| {
            let url = provider();
            Resolution::Pending(Box::pin(async move { url.await.map_err(|e| e.to_string()) }))
        })))
    }

    fn from_source(url: UrlSource) -> Self {
        Options { url, protocols: Vec::new(), client: ClientConfig::default(), history: DEFAULT_HISTORY, persist: None }
    }

    /// Persist the session under `name` (unique within the page's origin) so that it outlives the
    /// page: after a reload, a closed tab, a crashed renderer or a killed browser, the next page
    /// that opens `name` resumes it and sends what the previous one left unconfirmed (see
    /// `docs/PERSISTENCE.md`). One page drives a name at a time; another waits for it.
    pub fn persist(mut self, name: impl Into<String>) -> Self {
        self.persist = Some(name.into());
        self
    }

    /// Subprotocols offered after `durable.v1` (a server without durable-ws may pick one: plain mode).
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Shortest and longest delay between reconnect attempts.
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> Self {
        self.client.backoff.min_delay_ms = millis(min);
        self.client.backoff.max_delay_ms = millis(max);
        self
    }

    /// Growth of the delay per failed attempt (at least 1).
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.client.backoff.factor = factor;
        self
    }

    /// Full jitter on (random delay up to the exponential bound) or off (exact bound).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.client.backoff.jitter = jitter;
        self
    }

    /// Consecutive failed attempts before giving up (`None`: never).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.client.backoff.max_attempts = attempts;
        self
    }

    /// How long a connection must stay up to reset the attempt count. A connection whose handshake
    /// went through and whose link then broke (not a close the server chose) resets it too.
    pub fn stable_after(mut self, duration: Duration) -> Self {
        self.client.backoff.stable_after_ms = millis(duration);
        self
    }

    /// Longest wait from starting an attempt to a handshaken connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.client.connect_timeout_ms = millis(timeout);
        self
    }

    /// Longest wait for outstanding acknowledgements when closing.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.client.close_timeout_ms = millis(timeout);
        self
    }

    /// Ping every `interval`; a link silent for `timeout` after a ping is dead (reconnect).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.client.session.heartbeat =
            Some(HeartbeatConfig { interval_ms: millis(interval), timeout_ms: millis(timeout) });
        self
    }

    /// No heartbeat: a half-open link is only noticed when the browser notices it.
    pub fn no_heartbeat(mut self) -> Self {
        self.client.session.heartbeat = None;
        self
    }

    /// Bounds of the replay buffer (unconfirmed messages); beyond them `send` fails with
    /// `BufferFull` and the `Sink` waits.
    pub fn buffer(mut self, max_messages: usize, max_bytes: usize) -> Self {
        self.client.session.limits.max_messages = max_messages;
        self.client.session.limits.max_bytes = max_bytes;
        self
    }

    /// Largest message sent or accepted from the server.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.client.session.max_message_bytes = bytes;
        self
    }

    /// Close codes from the server that stop reconnection (replaces the default list).
    pub fn terminal_close_codes(mut self, codes: impl IntoIterator<Item = RangeInclusive<u16>>) -> Self {
        self.client.close_policy.terminal = codes.into_iter().map(|r| (*r.start(), *r.end())).collect();
        self
    }

    /// How many of the latest received messages the Leptos and Yew hooks keep in `messages`
    /// (at least 1; default 1 000). Older ones are dropped first and counted by the hooks'
    /// `dropped_messages`, so a long-lived component's memory stays bounded. The
    /// [`DurableSocket`](super::DurableSocket) itself ignores it: it keeps no messages.
    pub fn message_history(mut self, limit: usize) -> Self {
        self.history = limit;
        self
    }

    /// The `message_history` limit.
    #[cfg_attr(not(any(feature = "leptos", feature = "yew")), allow(dead_code))]
    pub(crate) fn history(&self) -> usize {
        self.history
    }

    /// Checks the settings and hands them to the engine.
    pub(crate) fn into_config(self) -> Result<EngineConfig, Error> {
        let invalid = |field, problem| Err(Error::InvalidOption { field, problem });
        if let UrlSource::Fixed(url) = &self.url {
            if !url_scheme_ok(url) {
                return invalid("url", "must be absolute: ws://, wss://, http:// or https://");
            }
        }
        for (i, protocol) in self.protocols.iter().enumerate() {
            if let Some(problem) = protocol_problem(protocol, &self.protocols[..i]) {
                return invalid("protocols", problem);
            }
        }
        let client = &self.client;
        let backoff = &client.backoff;
        if backoff.min_delay_ms > backoff.max_delay_ms {
            return invalid("reconnect_delay", "min must not exceed max");
        }
        if !(backoff.factor >= 1.0 && backoff.factor.is_finite()) {
            return invalid("backoff_factor", "must be a finite number of at least 1");
        }
        if backoff.max_attempts == Some(0) {
            return invalid("max_attempts", "must be at least 1 (or None for unlimited)");
        }
        if client.connect_timeout_ms == 0 {
            return invalid("connect_timeout", "must be positive");
        }
        if let Some(heartbeat) = client.session.heartbeat {
            if heartbeat.interval_ms == 0 || heartbeat.timeout_ms == 0 {
                return invalid("heartbeat", "interval and timeout must be positive");
            }
        }
        if client.session.limits.max_messages == 0 || client.session.limits.max_bytes == 0 {
            return invalid("buffer", "both bounds must be positive");
        }
        if client.session.max_message_bytes == 0 {
            return invalid("max_message_bytes", "must be positive");
        }
        if self.history == 0 {
            return invalid("message_history", "must be at least 1");
        }
        if client.close_policy.terminal.iter().any(|&(lo, hi)| lo > hi) {
            return invalid("terminal_close_codes", "each range must be ascending");
        }
        if self.persist.as_ref().is_some_and(|name| name.is_empty() || name.len() > MAX_PERSIST_NAME) {
            return invalid("persist", "the name must have 1 to 200 bytes");
        }
        let persist = self.persist.map(|name| (name, crate::persist::module_opener()));
        Ok(EngineConfig { client: self.client, url: self.url, protocols: self.protocols, persist, websocket: None })
    }
}

/// The longest name of a persisted session.
pub(crate) const MAX_PERSIST_NAME: usize = 200;

fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
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
