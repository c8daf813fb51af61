//! Per-peer token buckets.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Most peers tracked before full buckets are forgotten.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// The bucket's own refill rate and size, so pruning judges it by them.
    rate: f64,
    burst: f64,
}

/// Allows each key `rate` events per second with bursts of up to `burst`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// A limiter of `rate` per second with bursts of `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`; false if its bucket is empty.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        self.allow_at(key, now, self.rate, self.burst, 1.0)
    }

    /// Takes `n` tokens for `key` at `now`, all or none; false (taking none) if its bucket holds
    /// fewer.
    pub fn allow_n(&mut self, key: K, now: Instant, n: u32) -> bool {
        self.allow_at(key, now, self.rate, self.burst, f64::from(n))
    }

    /// Takes one token for `key` at `now` from a bucket of `rate` per second holding up to `burst`
    /// (a key's own limits, for limiters whose keys are not all equal); false if it is empty.
    pub fn allow_with(&mut self, key: K, now: Instant, rate: u32, burst: u32) -> bool {
        self.allow_at(
            key,
            now,
            f64::from(rate.max(1)),
            f64::from(burst.max(1)),
            1.0,
        )
    }

    fn allow_at(&mut self, key: K, now: Instant, rate: f64, burst: f64, n: f64) -> bool {
        if self.buckets.len() >= PRUNE_AT && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * b.rate < b.burst
            });
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        (bucket.rate, bucket.burst) = (rate, burst);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn many_tokens_are_taken_all_or_none() {
        let mut limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        assert!(!limiter.allow_n(1u8, start, 6), "more than the burst");
        assert!(
            limiter.allow_n(1u8, start, 3),
            "nothing was taken by the refusal"
        );
        assert!(!limiter.allow_n(1u8, start, 3));
        assert!(limiter.allow_n(1u8, start, 2));
        assert!(!limiter.allow(1u8, start));
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        let allowed = (0..20).filter(|_| limiter.allow(1u8, start)).count();
        assert_eq!(allowed, 5);
        assert!(!limiter.allow(1, start));
        // 0.5 s later, five more tokens.
        let later = start + Duration::from_millis(500);
        let allowed = (0..20).filter(|_| limiter.allow(1u8, later)).count();
        assert_eq!(allowed, 5);
        // Another key has its own bucket.
        assert!(limiter.allow(2, later));
    }

    #[test]
    fn pruning_judges_each_bucket_by_its_own_rate() {
        let mut limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        // A big bucket, drained by half.
        for _ in 0..500 {
            limiter.allow_with(0u32, start, 1000, 1000);
        }
        // Enough other keys to prune, a millisecond later.
        let later = start + Duration::from_millis(1);
        for key in 1..=PRUNE_AT as u32 {
            limiter.allow(key, later);
        }
        // Not forgotten (which would have refilled it): about 501 tokens left, not 1000.
        let left = (0..2_000)
            .filter(|_| limiter.allow_with(0u32, later, 1000, 1000))
            .count();
        assert!((500..=502).contains(&left), "{left}");
    }

    #[test]
    fn a_key_may_have_its_own_rate() {
        let mut limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        let big = (0..200)
            .filter(|_| limiter.allow_with(1u8, start, 1000, 100))
            .count();
        assert_eq!(big, 100);
        let later = start + Duration::from_millis(10);
        let refilled = (0..200)
            .filter(|_| limiter.allow_with(1u8, later, 1000, 100))
            .count();
        assert_eq!(refilled, 10);
        assert_eq!((0..20).filter(|_| limiter.allow(2u8, start)).count(), 5);
    }
}
