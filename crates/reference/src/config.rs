//! Settings of the reference server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use durable_ws_core::SessionConfig;
use durable_ws_server::{Authenticator, Config, OriginPolicy, ServeLimits};

/// Everything the server can be configured with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Directory served as static files at `/` (`None`: no static files).
    pub www: Option<PathBuf>,
    /// How long a session without a connection is kept for a resume.
    pub session_ttl: Duration,
    /// Most sessions held at once (connected or waiting for a resume).
    pub max_sessions: usize,
    /// Largest application message accepted (larger ones close the connection with 1009).
    pub max_message_bytes: usize,
    /// Pages allowed to open WebSockets (checked at the handshake; others get 403).
    pub origins: OriginPolicy,
    /// Who may connect, decided at the handshake (401/403 otherwise); `None`: everyone, as the
    /// anonymous identity. A session can only be resumed by the identity that created it.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Serve the fault-injection endpoints under `/admin/`.
    pub enable_faults: bool,
    /// How long a new durable connection may take to send its `Hello`.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for connections to finish their closing handshakes.
    pub shutdown_grace: Duration,
    /// Settings of each server-side session (its `max_message_bytes` is overridden by
    /// [`max_message_bytes`](Self::max_message_bytes)).
    pub session: SessionConfig,
    /// Most payload bytes held in all sessions' replay buffers together (then sends fail and new
    /// sessions are refused with 1013); the library's [`Config::max_buffered_bytes`].
    pub max_buffered_bytes: usize,
    /// Most sessions one (named) identity may hold at once; the library's
    /// [`Config::max_sessions_per_identity`].
    pub max_sessions_per_identity: usize,
    /// Messages from one client waiting for its handler before the server stops reading it; the
    /// library's [`Config::inbound_queue`].
    pub inbound_queue: usize,
    /// Connections in a row of one session that may end in a protocol error before the session
    /// is dropped; the library's [`Config::max_protocol_errors`].
    pub max_protocol_errors: u32,
    /// Most bytes waiting to be written on one connection; the library's
    /// [`Config::max_outgoing_bytes`].
    pub max_outgoing_bytes: usize,
    /// A connection whose outgoing queue stays full this long is closed (1013); the library's
    /// [`Config::send_timeout`].
    pub send_timeout: Duration,
    /// Messages per second one client may send on average (then it is read more slowly); the
    /// library's [`Config::max_messages_per_second`].
    pub max_messages_per_second: u32,
    /// Messages one client may send at once above that rate; the library's [`Config::burst`].
    pub burst: u32,
    /// Connection caps and HTTP request-head bounds of the listener ([`ServeLimits`]).
    pub limits: ServeLimits,
    /// The Redis keeping the sessions (`None`: this process's memory).
    pub redis: Option<String>,
    /// A bearer token that opens `/stats` and `/metrics` to clients beyond loopback (`None`:
    /// loopback only).
    pub metrics_token: Option<String>,
    /// Record metrics and serve `/metrics` (off: no recorder is installed, `/metrics` is 404).
    pub metrics: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let library = Config::default();
        ServerConfig {
            www: None,
            session_ttl: library.session_ttl,
            max_sessions: library.max_sessions,
            max_message_bytes: library.max_message_bytes,
            origins: OriginPolicy::SameHost,
            authenticator: None,
            enable_faults: false,
            handshake_timeout: library.handshake_timeout,
            shutdown_grace: library.shutdown_grace,
            session: SessionConfig::default(),
            max_buffered_bytes: library.max_buffered_bytes,
            max_sessions_per_identity: library.max_sessions_per_identity,
            inbound_queue: library.inbound_queue,
            max_protocol_errors: library.max_protocol_errors,
            max_outgoing_bytes: library.max_outgoing_bytes,
            send_timeout: library.send_timeout,
            max_messages_per_second: library.max_messages_per_second,
            burst: library.burst,
            limits: ServeLimits::default(),
            redis: None,
            metrics_token: None,
            metrics: true,
        }
    }
}

impl ServerConfig {
    /// The library settings these describe.
    pub fn durable_config(&self) -> Config {
        Config {
            session_ttl: self.session_ttl,
            max_sessions: self.max_sessions,
            max_message_bytes: self.max_message_bytes,
            buffer: self.session.limits,
            heartbeat: self.session.heartbeat,
            handshake_timeout: self.handshake_timeout,
            shutdown_grace: self.shutdown_grace,
            max_buffered_bytes: self.max_buffered_bytes,
            max_sessions_per_identity: self.max_sessions_per_identity,
            inbound_queue: self.inbound_queue,
            max_protocol_errors: self.max_protocol_errors,
            max_outgoing_bytes: self.max_outgoing_bytes,
            send_timeout: self.send_timeout,
            max_messages_per_second: self.max_messages_per_second,
            burst: self.burst,
        }
    }
}
