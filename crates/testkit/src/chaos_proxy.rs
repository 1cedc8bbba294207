//! A TCP proxy that breaks connections on purpose: each connection lives a random lifetime and
//! is then dropped abruptly on both sides (no WebSocket close frame), and data can be delayed
//! per direction so that some is really in flight when a cut happens.
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use durable_ws_testkit::chaos_proxy::{ChaosConfig, ChaosProxy};
//! let config = ChaosConfig { lifetime_ms: Some((50, 400)), latency_ms: 25, seed: None };
//! let proxy = ChaosProxy::start(server, config).await?;
//! let url = format!("ws://{}/echo", proxy.local_addr());
//! # let _ = url; Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_ws_core::SplitMix64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use crate::lock;

/// How the proxy misbehaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosConfig {
    /// Each connection is cut after a uniformly random lifetime in this inclusive range of
    /// milliseconds; `None` never cuts on its own.
    pub lifetime_ms: Option<(u64, u64)>,
    /// Delay added to every chunk of data, in each direction.
    pub latency_ms: u64,
    /// Seed of the lifetime draws; `None` draws one from the OS.
    pub seed: Option<u64>,
}

/// Counters of a proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and forwarded.
    pub connections: u64,
    /// Connections cut (lifetime over, or [`ChaosProxy::cut_all`]).
    pub cuts: u64,
    /// Connections refused while [`blocked`](ChaosProxy::set_blocked).
    pub refused: u64,
}

struct Shared {
    /// Each new connection goes to the next target in turn (a round-robin balancer, no stickiness).
    targets: Vec<SocketAddr>,
    next_target: AtomicUsize,
    config: ChaosConfig,
    rng: Mutex<SplitMix64>,
    connections: AtomicU64,
    cuts: AtomicU64,
    refused: AtomicU64,
    blocked: AtomicBool,
    /// Bumped to cut every live connection.
    cut_generation: watch::Sender<u64>,
    /// While true, no data is forwarded (it piles up inside the proxy).
    stalled: watch::Sender<bool>,
}

/// A running proxy; stops when dropped.
pub struct ChaosProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut_all();
    }
}

impl ChaosProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) forwarding to `target`.
    pub async fn start(target: SocketAddr, config: ChaosConfig) -> io::Result<ChaosProxy> {
        ChaosProxy::bind(SocketAddr::from(([127, 0, 0, 1], 0)), target, config).await
    }

    /// Starts a proxy listening on `listen`, forwarding to `target`.
    pub async fn bind(listen: SocketAddr, target: SocketAddr, config: ChaosConfig) -> io::Result<ChaosProxy> {
        ChaosProxy::bind_many(listen, vec![target], config).await
    }

    /// Starts a proxy listening on `listen` that balances connections over `targets` in turn; a
    /// target that refuses the connection (a node restarting) is skipped for the next one.
    pub async fn bind_many(
        listen: SocketAddr,
        targets: Vec<SocketAddr>,
        config: ChaosConfig,
    ) -> io::Result<ChaosProxy> {
        if targets.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no target"));
        }
        if let Some((min, max)) = config.lifetime_ms {
            if min > max {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "lifetime range: min > max"));
            }
        }
        let seed = match config.seed {
            Some(seed) => seed,
            None => getrandom::u64().map_err(io::Error::other)?,
        };
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            targets,
            next_target: AtomicUsize::new(0),
            config,
            rng: Mutex::new(SplitMix64::new(seed)),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            cut_generation: watch::Sender::new(0),
            stalled: watch::Sender::new(false),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(ChaosProxy { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters right now.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.shared.connections.load(Ordering::Relaxed),
            cuts: self.shared.cuts.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    /// Cuts every live connection now.
    pub fn cut_all(&self) {
        self.shared.cut_generation.send_modify(|generation| *generation += 1);
    }

    /// While blocked, new connections are closed as soon as they are accepted (the server
    /// looks unreachable).
    pub fn set_blocked(&self, blocked: bool) {
        self.shared.blocked.store(blocked, Ordering::SeqCst);
    }

    /// While stalled, nothing is forwarded in either direction: data piles up inside the proxy
    /// (a half-open link). A cut drops whatever piled up.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.send_replace(stalled);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(proxy_connection(client, shared.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "proxy accept failed");
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn proxy_connection(client: TcpStream, shared: Arc<Shared>) {
    if shared.blocked.load(Ordering::SeqCst) {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut cut = shared.cut_generation.subscribe();
    let Some(server) = connect_next(&shared).await else { return };
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let lifetime = shared.config.lifetime_ms.map(|(min, max)| {
        let draw = lock(&shared.rng).next_u64();
        Duration::from_millis(min + draw % (max - min + 1))
    });
    let latency = Duration::from_millis(shared.config.latency_ms);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let forward = async {
        tokio::join!(
            pump(client_read, server_write, latency, shared.stalled.subscribe()),
            pump(server_read, client_write, latency, shared.stalled.subscribe()),
        )
    };
    let cut_now = tokio::select! {
        _ = forward => false,
        _ = async { match lifetime { Some(lifetime) => sleep(lifetime).await, None => std::future::pending().await } } => true,
        _ = cut.changed() => true,
    };
    // Returning drops every half: both peers see the TCP connection end, no close frame.
    if cut_now {
        shared.cuts.fetch_add(1, Ordering::Relaxed);
    }
}

async fn connect_next(shared: &Shared) -> Option<TcpStream> {
    for _ in 0..shared.targets.len() {
        let turn = shared.next_target.fetch_add(1, Ordering::Relaxed);
        if let Ok(server) = TcpStream::connect(shared.targets[turn % shared.targets.len()]).await {
            return Some(server);
        }
    }
    None
}

/// Forwards one direction, each chunk `latency` after it was read.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, latency: Duration, mut stalled: watch::Receiver<bool>) {
    let (queue, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if queue.send((Instant::now() + latency, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            sleep_until(at).await;
            if stalled.wait_for(|stalled| !stalled).await.is_err() || to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
