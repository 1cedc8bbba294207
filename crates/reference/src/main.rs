//! The durable-ws reference server.

use clap::{CommandFactory, Parser};
use durable_ws_reference::cli::Options;
use durable_ws_reference::serve;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    durable_ws_reference::init_logging();
    let options = Options::parse();
    let config = match options.server_config() {
        Ok(config) => config,
        Err(error) => Options::command().error(clap::error::ErrorKind::InvalidValue, error).exit(),
    };
    let listener = match tokio::net::TcpListener::bind(options.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, listen = %options.listen, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(options.listen);
    let auth = if config.authenticator.is_some() { "tokens" } else { "off (anonymous)" };
    tracing::info!(%addr, origins = ?config.origins, auth, faults = config.enable_faults, "listening");
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
