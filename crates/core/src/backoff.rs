//! Reconnect delays: exponential growth, full jitter, a cap, an attempt limit.

use crate::Millis;

/// A small seeded PRNG (SplitMix64). The driver seeds it (from `crypto.getRandomValues` in the
/// browser), so the core stays deterministic under test.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Reconnect policy.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Shortest delay before a reconnect attempt. Default 250 ms.
    pub min_delay_ms: Millis,
    /// Longest delay. Default 30 000 ms.
    pub max_delay_ms: Millis,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// Full jitter (default on): attempt `n` waits a uniform random time in
    /// `[min_delay, min(max_delay, min_delay·factorⁿ)]`, so clients cut at the same moment spread
    /// out. Off: exactly `min(max_delay, min_delay·factorⁿ⁻¹)`.
    pub jitter: bool,
    /// Consecutive failed attempts before giving up; `None` (default) never gives up.
    pub max_attempts: Option<u32>,
    /// A connection that stayed up this long resets the attempt count. Default 5 000 ms. (The
    /// client also resets it when a connection's handshake went through and its link then broke:
    /// see `Client`.)
    pub stable_after_ms: Millis,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min_delay_ms: 250,
            max_delay_ms: 30_000,
            factor: 2.0,
            jitter: true,
            max_attempts: None,
            stable_after_ms: 5_000,
        }
    }
}

impl BackoffConfig {
    /// The delay before attempt `attempt` (from 1), given 64 random bits.
    ///
    /// ```
    /// use durable_ws_core::BackoffConfig;
    /// let c = BackoffConfig { jitter: false, ..Default::default() };
    /// assert_eq!([1, 2, 3].map(|n| c.delay(n, 0)), [250, 500, 1000]);
    /// assert_eq!(c.delay(100, 0), 30_000);
    /// ```
    pub fn delay(&self, attempt: u32, random: u64) -> Millis {
        let min = self.min_delay_ms.min(self.max_delay_ms) as f64;
        let max = self.max_delay_ms as f64;
        let exponent = if self.jitter { attempt } else { attempt.saturating_sub(1) };
        let grown = min * self.factor.max(1.0).powi(exponent.min(1024) as i32);
        let ceiling = if grown.is_finite() { grown.min(max) } else { max };
        if !self.jitter {
            return ceiling as Millis;
        }
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64; // uniform in [0, 1)
        (min + unit * (ceiling - min)) as Millis
    }
}

/// Counts consecutive failed attempts and hands out delays.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// A policy with no failed attempt yet.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff { config, attempt: 0 }
    }

    /// Counts one more attempt and returns `(attempt, delay)`, or `None` when the attempt limit
    /// is reached.
    pub fn next(&mut self, rng: &mut SplitMix64) -> Option<(u32, Millis)> {
        if self.config.max_attempts.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        self.attempt += 1;
        Some((self.attempt, self.config.delay(self.attempt, rng.next_u64())))
    }

    /// Attempts made since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Starts counting again (after a stable connection, or when the user asks to reconnect).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The policy.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn attempt_limit_gives_up() {
        let mut b = Backoff::new(BackoffConfig { max_attempts: Some(2), ..Default::default() });
        let mut rng = SplitMix64::new(1);
        assert_eq!(b.next(&mut rng).map(|(n, _)| n), Some(1));
        assert_eq!(b.next(&mut rng).map(|(n, _)| n), Some(2));
        assert_eq!(b.next(&mut rng), None);
        b.reset();
        assert_eq!(b.next(&mut rng).map(|(n, _)| n), Some(1));
    }

    #[test]
    fn jitter_spreads_delays() {
        let c = BackoffConfig::default();
        let mut rng = SplitMix64::new(7);
        let delays: Vec<_> = (0..200).map(|_| c.delay(3, rng.next_u64())).collect();
        let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*lo >= 250 && *hi <= 2000, "{lo}..{hi}");
        assert!(hi - lo > 1000, "delays are spread: {lo}..{hi}");
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(
            min in 0u64..10_000, max in 0u64..100_000, factor in 0.5f64..4.0,
            attempt in 1u32..10_000, random: u64, jitter: bool,
        ) {
            let c = BackoffConfig { min_delay_ms: min, max_delay_ms: max, factor, jitter, ..Default::default() };
            let d = c.delay(attempt, random);
            prop_assert!(d >= min.min(max) && d <= max, "{} not in [{}, {}]", d, min.min(max), max);
        }
    }
}
