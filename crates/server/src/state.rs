//! The state every handler and connection shares.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::registry::Connections;
use crate::stats::{Counters, Stats};
use crate::store::SessionStore;

/// Configuration, clock, sessions, connections and counters of one server.
pub(crate) struct Shared {
    pub config: ServerConfig,
    /// The address the server listens on (for the same-host origin check).
    pub listen: SocketAddr,
    pub clock: Clock,
    pub store: SessionStore,
    pub connections: Connections,
    pub counters: Arc<Counters>,
}

impl Shared {
    pub fn new(config: ServerConfig, listen: SocketAddr) -> Arc<Self> {
        let counters = Arc::new(Counters::default());
        let store = SessionStore::new(config.session_config(), config.session_ttl, config.max_sessions, counters.clone());
        Arc::new(Shared { config, listen, clock: Clock::new(), store, connections: Connections::new(), counters })
    }

    pub fn stats(&self) -> Stats {
        Stats::snapshot(&self.counters, self.store.len(), self.connections.len())
    }
}
