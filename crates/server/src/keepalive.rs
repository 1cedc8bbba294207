//! WebSocket-level heartbeat of plain (non-durable) connections: the core's heartbeat only
//! runs inside `durable.v1`, so a plain connection gets a WebSocket Ping every interval, and is
//! declared dead (half-open) if nothing at all arrives within the timeout after a Ping.

use std::time::Duration;

use durable_ws_core::HeartbeatConfig;
use tokio::time::Instant;

/// What to do when the keepalive's deadline passes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Send a Ping now.
    Ping,
    /// Nothing was heard since the last Ping, for the whole timeout: drop the connection.
    Dead,
    /// Nothing to do yet.
    Wait,
}

/// The heartbeat state of one plain connection.
pub(crate) struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// When the unanswered Ping went out.
    awaiting: Option<Instant>,
}

impl Keepalive {
    pub fn new(config: HeartbeatConfig, now: Instant) -> Self {
        let interval = Duration::from_millis(config.interval_ms);
        Keepalive {
            interval,
            timeout: Duration::from_millis(config.timeout_ms),
            next_ping: now + interval,
            awaiting: None,
        }
    }

    /// When [`on_deadline`](Self::on_deadline) must next be called.
    pub fn deadline(&self) -> Instant {
        match self.awaiting {
            Some(sent) => sent + self.timeout,
            None => self.next_ping,
        }
    }

    /// The deadline passed; `last_heard` is when anything last arrived from the peer.
    pub fn on_deadline(&mut self, now: Instant, last_heard: Instant) -> Tick {
        if let Some(sent) = self.awaiting {
            if last_heard >= sent {
                self.awaiting = None;
            } else if now >= sent + self.timeout {
                return Tick::Dead;
            } else {
                return Tick::Wait;
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.interval;
            self.awaiting = Some(now);
            return Tick::Ping;
        }
        Tick::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_every_interval_and_dies_without_an_answer() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut keepalive = Keepalive::new(HeartbeatConfig { interval_ms: 100, timeout_ms: 50 }, start);
        assert_eq!(keepalive.deadline(), ms(100));
        assert_eq!(keepalive.on_deadline(ms(100), start), Tick::Ping);
        assert_eq!(keepalive.deadline(), ms(150));
        // Answered at 120: the next Ping is due at 200.
        assert_eq!(keepalive.on_deadline(ms(150), ms(120)), Tick::Wait);
        assert_eq!(keepalive.deadline(), ms(200));
        assert_eq!(keepalive.on_deadline(ms(200), ms(120)), Tick::Ping);
        // Silence after the second Ping.
        assert_eq!(keepalive.on_deadline(ms(220), ms(120)), Tick::Wait);
        assert_eq!(keepalive.on_deadline(ms(250), ms(120)), Tick::Dead);
    }
}
