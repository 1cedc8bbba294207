//! How fast one client's messages are read: the core's token bucket
//! ([`durable_ws_core::server::rate::Bucket`], the Node.js server's too) on Tokio's clock.

use std::time::Duration;

use durable_ws_core::server::rate;
use tokio::time::Instant;

/// `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct Bucket {
    bucket: rate::Bucket,
    origin: Instant,
}

impl Bucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Bucket { bucket: rate::Bucket::new(rate, burst, 0.0), origin: now }
    }

    fn ms(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.origin).as_secs_f64() * 1000.0
    }

    /// Takes a token; `Some(instant)` is when reading may go on if none is left now.
    pub fn take(&mut self, now: Instant) -> Option<Instant> {
        self.bucket.take(self.ms(now)).map(|wait| now + Duration::from_millis(wait))
    }

    /// Takes a token for `value` just read, and hands it on.
    pub fn took<T>(&mut self, value: T) -> T {
        self.take(Instant::now());
        value
    }

    /// When reading may go on (`None`: now).
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.bucket.ready_in(self.ms(now)).map(|wait| now + Duration::from_millis(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(10, 3, start);
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start), None);
        let wait = bucket.take(start).expect("the burst is spent");
        assert_eq!(wait - start, Duration::from_millis(100));
        assert!(bucket.ready_at(start + Duration::from_millis(50)).is_some());
        assert_eq!(bucket.ready_at(start + Duration::from_millis(101)), None);
    }
}
