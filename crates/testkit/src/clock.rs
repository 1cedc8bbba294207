//! The monotonic clock the core's `Millis` are measured on.

use std::time::{Duration, Instant};

use durable_ws_core::Millis;

/// Milliseconds since the clock was created; one clock per process part (server, client) so
/// every session shares the same epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock { start: Instant::now() }
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// The instant a `Millis` deadline falls on.
    pub fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
