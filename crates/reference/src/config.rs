//! Settings of the reference server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use durable_ws_core::SessionConfig;
use durable_ws_server::{Authenticator, Config, OriginPolicy};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            www: None,
            session_ttl: Duration::from_secs(120),
            max_sessions: 10_000,
            max_message_bytes: 1 << 20,
            origins: OriginPolicy::SameHost,
            authenticator: None,
            enable_faults: false,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(3),
            session: SessionConfig::default(),
            max_buffered_bytes: Config::default().max_buffered_bytes,
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
            ..Config::default()
        }
    }
}
