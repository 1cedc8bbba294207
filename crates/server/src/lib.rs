//! Reference server of durable-ws: the `durable.v1` resume protocol over axum.
//!
//! - `GET /echo`: a durable echo session when the client offers `durable.v1`, a plain echo
//!   otherwise.
//! - `GET /chat`: one room broadcasting every message to every member (durable only).
//! - `GET /stats`: counters as JSON ([`Stats`]).
//! - `POST /admin/cut|stall|expire`: fault injection, only with [`ServerConfig::enable_faults`].
//! - `/`: static files of [`ServerConfig::www`].
//!
//! Every WebSocket handshake is checked before the upgrade (RFC 6455 §10): its `Origin`
//! against [`ServerConfig::origins`] (403), then its credentials by
//! [`ServerConfig::authenticator`] (401/403; see [`TokenAuthenticator`]). A session belongs to
//! the [`Identity`] that created it; another identity's resume gets `LostRefused`. Malformed
//! frames close the connection with 1002 (oversized ones with 1009) and leave the session
//! resumable; silent (half-open) connections are found by the heartbeat and dropped.
//!
//! Sessions live in memory; a session whose connection dropped is kept for
//! [`ServerConfig::session_ttl`] so the client can resume it. Also here, for tests and load
//! generation: `durable_ws_testkit::native_client` and `chaos_proxy`
//! (a TCP proxy that cuts connections and delays data).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
mod app;
mod auth;
mod chat;
mod clock;
mod config;
mod connection;
mod echo;
mod handshake;
mod keepalive;
mod origin;
mod registry;
mod routes;
mod socket;
mod state;
mod stats;
mod store;
mod token;
mod writer;

pub mod cli;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use app::{App, OutboundError, SessionHandle};
pub use auth::{request_token, AuthError, Authenticator, Identity, TokenAuthenticator, TokenError, TOKEN_COOKIE, TOKEN_QUERY_PARAMETER};
pub use clock::Clock;
pub use config::ServerConfig;
pub use origin::{InvalidOrigin, OriginPolicy};
pub use stats::Stats;
pub use token::{token_from_hex, token_to_hex};

use state::Shared;

/// Logs to stderr for the binaries: `RUST_LOG` filters (default `info`), colours only on a terminal.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Serves on `listener` until `shutdown` completes, then closes every WebSocket with 1012
/// (service restart: clients reconnect and resume elsewhere) and returns.
pub async fn serve(listener: TcpListener, config: ServerConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let listen = listener.local_addr()?;
    serve_shared(listener, Shared::new(config, listen), shutdown).await
}

async fn serve_shared(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let sweeper = tokio::spawn(sweep_loop(shared.clone()));
    let for_signal = shared.clone();
    let signal = async move {
        shutdown.await;
        for_signal.connections.begin_shutdown();
    };
    // Small frames (acks, pongs) right after data would otherwise wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, routes::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal)
        .await;
    shared.connections.begin_shutdown();
    shared.connections.wait_empty(shared.config.shutdown_grace).await;
    sweeper.abort();
    result
}

async fn sweep_loop(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.store.sweep_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let expired = shared.store.sweep();
        if expired > 0 {
            tracing::debug!(expired, "sessions expired");
        }
    }
}

/// A server running on its own task, for tests and embedding.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and starts serving.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        Server::start(TcpListener::bind(addr).await?, config)
    }

    /// Starts serving on `listener`.
    pub fn start(listener: TcpListener, config: ServerConfig) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let shared = Shared::new(config, addr);
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve_shared(listener, shared.clone(), async {
            let _ = rx.await;
        }));
        Ok(Server { addr, shared, shutdown: Some(tx), task })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters right now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Closes every connection with 1012 and stops.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.map_err(io::Error::other)?
    }
}

/// Locks a mutex, ignoring poisoning: no code here panics while holding a lock on purpose, and
/// the protected state stays consistent between statements.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
