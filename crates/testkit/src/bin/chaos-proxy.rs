//! A TCP proxy that cuts connections after a random lifetime and delays data, for trying
//! durable-ws against a bad network by hand.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use durable_ws_testkit::chaos_proxy::{ChaosConfig, ChaosProxy};

/// Forwards TCP connections to a target, cutting each after a random lifetime.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Where to forward connections; repeated, each new connection goes to the next one in turn
    /// (round robin, no stickiness).
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: Vec<SocketAddr>,
    /// Shortest connection lifetime, in milliseconds.
    #[arg(long, default_value_t = 50)]
    min_lifetime_ms: u64,
    /// Longest connection lifetime, in milliseconds.
    #[arg(long, default_value_t = 400)]
    max_lifetime_ms: u64,
    /// Never cut connections (latency only).
    #[arg(long)]
    no_cuts: bool,
    /// One-way delay added in each direction, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the lifetime draws (random if absent).
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    durable_ws_testkit::init_logging();
    let args = Args::parse();
    let config = ChaosConfig {
        lifetime_ms: (!args.no_cuts).then_some((args.min_lifetime_ms, args.max_lifetime_ms)),
        latency_ms: args.latency_ms,
        seed: args.seed,
    };
    let proxy = match ChaosProxy::bind_many(args.listen, args.target.clone(), config).await {
        Ok(proxy) => proxy,
        Err(error) => {
            tracing::error!(%error, "cannot start the proxy");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(listen = %proxy.local_addr(), targets = ?args.target, "proxying");
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = report.tick() => {
                let stats = proxy.stats();
                tracing::info!(connections = stats.connections, cuts = stats.cuts, "stats");
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
