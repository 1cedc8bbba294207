//! A token bucket: how fast one client's messages are read.

use std::time::Duration;

use tokio::time::Instant;

/// `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Bucket { rate: f64::from(rate), burst: f64::from(burst), tokens: f64::from(burst), at: now }
    }

    /// Takes a token; `Some(instant)` is when the next one is available if none is left now.
    pub fn take(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        self.tokens -= 1.0;
        (self.tokens < 1.0).then(|| now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    /// Takes a token for `value` just read, and hands it on.
    pub fn took<T>(&mut self, value: T) -> T {
        self.take(Instant::now());
        value
    }

    /// When reading may go on (`None`: now).
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        (self.tokens < 1.0).then(|| now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
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
        assert!((wait - start).as_millis().abs_diff(100) <= 1, "{:?}", wait - start);
        assert!(bucket.ready_at(start + Duration::from_millis(50)).is_some());
        assert_eq!(bucket.ready_at(start + Duration::from_millis(101)), None);
    }
}
