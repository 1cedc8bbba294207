//! How fast one client's frames are read: a token bucket both servers use (the Rust server per
//! socket, the Node.js one through `crates/node`). Every frame takes a token (pings and pongs too,
//! plain connections too); with fewer than one left, reading pauses until one is back. Nothing is
//! dropped: a client that sends faster is read more slowly.

use crate::Millis;

/// `rate` tokens per second, at most `burst` saved up (the servers' `max_messages_per_second` and
/// `burst`, [`defaults`](super::defaults)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: f64,
}

impl Bucket {
    /// A full bucket at `now` (ms, on any clock that only goes forward; fractions are kept).
    pub fn new(rate: u32, burst: u32, now: f64) -> Bucket {
        let rate = f64::from(rate.max(1));
        let burst = f64::from(burst.max(1));
        Bucket { rate, burst, tokens: burst, at: now }
    }

    /// Takes a token for a frame read at `now`; `Some(ms)`: reading pauses this long.
    pub fn take(&mut self, now: f64) -> Option<Millis> {
        self.refill(now);
        self.tokens -= 1.0;
        self.wait()
    }

    /// How long reading must still pause at `now` (`None`: it may go on).
    pub fn ready_in(&mut self, now: f64) -> Option<Millis> {
        self.refill(now);
        self.wait()
    }

    fn wait(&self) -> Option<Millis> {
        (self.tokens < 1.0).then(|| ((1.0 - self.tokens) * 1000.0 / self.rate).ceil().max(1.0) as Millis)
    }

    fn refill(&mut self, now: f64) {
        let elapsed = (now - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * self.rate / 1000.0).min(self.burst);
        self.at = self.at.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut bucket = Bucket::new(10, 3, 0.0);
        assert_eq!(bucket.take(0.0), None);
        assert_eq!(bucket.take(0.0), None);
        assert_eq!(bucket.take(0.0), Some(100), "the burst is spent: a token comes back in 100 ms");
        assert_eq!(bucket.ready_in(50.0), Some(50));
        assert_eq!(bucket.ready_in(100.0), None);
        assert_eq!(bucket.take(100.0), Some(100));
    }

    #[test]
    fn refills_up_to_the_burst_and_never_backwards() {
        let mut bucket = Bucket::new(1000, 5, 0.0);
        for _ in 0..5 {
            bucket.take(0.0);
        }
        assert_eq!(bucket.ready_in(1_000_000.0), None);
        for _ in 0..4 {
            assert_eq!(bucket.take(1_000_000.0), None, "refilled to the burst, no more");
        }
        assert_eq!(bucket.take(1_000_000.0), Some(1));
        assert_eq!(bucket.ready_in(10.0), Some(1), "an earlier time refills nothing");
    }
}
