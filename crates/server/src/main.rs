//! The durable-ws reference server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use durable_ws_server::{serve, ServerConfig};
use tracing_subscriber::EnvFilter;

/// Reference server of durable-ws: `/echo` (durable.v1 or plain), `/stats`, static files.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of static files served at `/`.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// How long a disconnected session is kept for a resume, in seconds.
    #[arg(long, default_value_t = 120)]
    session_ttl_secs: u64,
    /// Most sessions held at once.
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    /// Largest message accepted, in bytes (larger ones close the connection with 1009).
    #[arg(long, default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// Serve the fault-injection endpoints under /admin (never in production).
    #[arg(long)]
    enable_faults: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = ServerConfig {
        www: Some(args.www),
        session_ttl: Duration::from_secs(args.session_ttl_secs),
        max_sessions: args.max_sessions,
        max_message_bytes: args.max_message_bytes,
        enable_faults: args.enable_faults,
        ..ServerConfig::default()
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, listen = %args.listen, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(%addr, faults = config.enable_faults, "listening");
    // A stable line on stdout, so scripts and tests that asked for port 0 learn the port.
    println!("durable-ws-server listening on {addr}");
    match serve(listener, config, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: closing connections with 1012");
}
