//! The durable-ws reference server, `durable-ws-server`: a thin program over the
//! `durable-ws-server` library.
//!
//! - `GET /echo`: a durable echo session when the client offers `durable.v1`, a plain echo
//!   otherwise ([`echo`]).
//! - `GET /chat`: one room broadcasting every message to every member, durable only ([`chat`]).
//! - `GET /stats`: counters as JSON ([`Stats`]).
//! - `POST /admin/cut|stall|expire`: fault injection, only with [`ServerConfig::enable_faults`].
//! - `/`: static files of [`ServerConfig::www`].
//!
//! `docs/SERVER.md` documents every flag and route.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod admin;
pub mod chat;
pub mod cli;
mod config;
pub mod echo;
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

/// Logs to stderr: `RUST_LOG` filters (default `info`), colours only on a terminal.
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
/// (service restart: clients reconnect and resume) and returns.
pub async fn serve(listener: TcpListener, config: ServerConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let listen = listener.local_addr()?;
    let durable = Builder::from_config(config.durable_config()).build();
    serve_with(listener, durable, &config, listen, shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    durable: Durable,
    config: &ServerConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Small frames (acks, pongs) right after data would otherwise wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = router(&durable, config, listen).into_make_service_with_connect_info::<SocketAddr>();
    let for_signal = durable.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
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
        Server::start(TcpListener::bind(addr).await?, config)
    }

    /// Starts serving on `listener`.
    pub fn start(listener: TcpListener, config: ServerConfig) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let durable = Builder::from_config(config.durable_config()).build();
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
