//! The durable-ws reference server, `durable-ws-server`: a thin program over the
//! `durable-ws-server` library.
//!
//! - `GET /echo`: a durable echo session when the client offers `durable.v1`, a plain echo
//!   otherwise ([`echo`]).
//! - `GET /chat`: one room broadcasting every message to every member, durable only ([`chat`]).
//! - `GET /stats`: counters as JSON ([`Stats`]); `GET /metrics`: the metrics in the Prometheus
//!   text format (both to loopback clients and `--metrics-token` only); `GET /healthz`,
//!   `GET /readyz`.
//! - `POST /admin/cut|stall|expire`: fault injection, only with [`ServerConfig::enable_faults`],
//!   behind the same origin check and access tokens as the WebSockets.
//! - `/`: static files of [`ServerConfig::www`].
//!
//! It listens with the library's [`serve`](durable_ws_server::serve) under
//! [`ServerConfig::limits`] (connection caps, request-head deadline and size).
//!
//! `docs/SERVER.md` documents every flag and route.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
pub mod chat;
pub mod cli;
mod config;
pub mod echo;
mod monitoring;
mod routes;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use durable_ws_server::{Builder, Durable};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::ServerConfig;
pub use durable_ws_server::{token_from_hex, token_to_hex, Authenticator, OriginPolicy, Stats, TokenAuthenticator};
pub use routes::router;

/// Targets whose debug and trace lines dump frames, headers or buffers (payloads, tokens in a
/// query string, a cookie or an `Authorization` header): held at `info` whatever `RUST_LOG` says.
const QUIET_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "http",
    "tower_http",
    "tower",
    "axum",
    "mio",
    "tokio",
];

/// Logs to stderr: `RUST_LOG` filters (default `info`), colours only on a terminal. Whatever it
/// says, the `QUIET_TARGETS` (and their modules) never log below `info`, so tokens and
/// payloads stay out of the logs at every level.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let quiet = tracing_subscriber::filter::filter_fn(|meta| {
        !(*meta.level() > tracing::Level::INFO && is_quiet(meta.target()))
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(env)
        .with_filter(quiet);
    tracing_subscriber::registry().with(layer).init();
}

/// Whether `target` is one of the [`QUIET_TARGETS`] or a module of one.
fn is_quiet(target: &str) -> bool {
    QUIET_TARGETS
        .iter()
        .any(|quiet| target.strip_prefix(quiet).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

/// Serves on `listener` until `shutdown` completes, then closes every WebSocket with 1012
/// (service restart: clients reconnect and resume) and returns.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listen = listener.local_addr()?;
    let durable = build(&config).await?;
    serve_with(listener, durable, &config, listen, shutdown).await
}

/// The library value for `config`: sessions in memory, or in Redis with `config.redis`.
async fn build(config: &ServerConfig) -> io::Result<Durable> {
    let builder = Builder::from_config(config.durable_config());
    let Some(url) = &config.redis else { return Ok(builder.build()) };
    let store = durable_ws_server::redis::RedisStore::connect(url).await.map_err(io::Error::other)?;
    tracing::info!(node = store.node(), "sessions kept in redis");
    Ok(builder.redis(store).build())
}

async fn serve_with(
    listener: TcpListener,
    durable: Durable,
    config: &ServerConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(&durable, config, listen);
    let for_signal = durable.clone();
    // The library's listener: connection caps, request-head deadline and size, TCP_NODELAY.
    let result = durable_ws_server::serve(listener, app, config.limits.clone(), async move {
        shutdown.await;
        for_signal.shutdown().await;
    })
    .await;
    durable.shutdown().await;
    result
}

/// A server running on its own task, for tests.
pub struct Server {
    addr: SocketAddr,
    durable: Durable,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and starts serving.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let durable = build(&config).await?;
        Server::start_with(listener, durable, config)
    }

    /// Starts serving on `listener`, with the sessions in memory (`config.redis` is ignored:
    /// connecting to Redis takes [`bind`](Self::bind)).
    pub fn start(listener: TcpListener, config: ServerConfig) -> io::Result<Server> {
        let durable = Builder::from_config(config.durable_config()).build();
        Server::start_with(listener, durable, config)
    }

    fn start_with(listener: TcpListener, durable: Durable, config: ServerConfig) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let for_task = durable.clone();
        let task = tokio::spawn(async move {
            serve_with(listener, for_task, &config, addr, async {
                let _ = rx.await;
            })
            .await
        });
        Ok(Server { addr, durable, shutdown: Some(tx), task })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The library value behind the server.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// The counters right now.
    pub fn stats(&self) -> Stats {
        self.durable.stats()
    }

    /// Closes every connection with 1012 and stops.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_dumping_targets_are_quiet() {
        for target in
            ["tungstenite", "tungstenite::protocol", "hyper::proto::h1::io", "tokio_tungstenite", "hyper_util::server"]
        {
            assert!(super::is_quiet(target), "{target}");
        }
        for target in ["durable_ws_server::connection", "durable_ws_reference", "hyperx", "tokio_util_like"] {
            assert!(!super::is_quiet(target), "{target}");
        }
    }
}
