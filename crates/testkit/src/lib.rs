//! Test kit of durable-ws, for this repository's tests, benchmarks and anyone checking a
//! `durable.v1` server: [`native_client`] (the core `Client` over tokio-tungstenite),
//! [`chaos_proxy`] (a TCP proxy that cuts connections and delays data), [`conformance`] (the
//! `durable.v1` conformance suite, for any server), and the binaries `chaos-proxy`, `loadgen`
//! and `durable-ws-conformance`. None of it is needed to embed the server.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod writer;

pub mod chaos_proxy;
pub mod conformance;
pub mod native_client;

pub use clock::Clock;

use std::sync::{Mutex, MutexGuard};

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

/// Locks a mutex, ignoring poisoning (no code here panics while holding a lock).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
