//! How fast one application's client may call: a token bucket shared by the client's clones.

use std::{num::NonZeroU32, sync::PoisonError, time::Duration};

use tokio::time::Instant;

/// A token bucket: up to `burst` requests at once, refilled at `requests_per_second`. Bursts
/// matter: a hundred resources applied together each need one `generateUrl`, and evenly spaced
/// requests would make the last one wait for all the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The sustained rate.
    pub requests_per_second: NonZeroU32,
    /// Requests that may go at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    /// 50 requests per second with bursts of 100: far below what one application's traffic
    /// needs in steady state (a few list pages per poll interval), high enough that applying
    /// hundreds of resources at once converges in seconds. A gateway that throttles answers
    /// `REQUEST_TRAFFIC_EXCEED_LIMIT`, which the client retries with backoff.
    fn default() -> Self {
        Self {
            requests_per_second: NonZeroU32::new(50).expect("50 is not zero"),
            burst: NonZeroU32::new(100).expect("100 is not zero"),
        }
    }
}

/// The generic cell rate algorithm (GCRA), the token bucket without a refill task: each caller
/// reserves the next slot of the sustained rate and may take it up to `burst` intervals early.
#[derive(Debug)]
pub(super) struct RateLimiter {
    interval: Duration,
    /// How far ahead of the sustained rate a caller may go: `burst - 1` intervals.
    tolerance: Duration,
    /// The theoretical arrival time: when the bucket would be full again.
    full_at: std::sync::Mutex<Instant>,
}

impl RateLimiter {
    pub(super) fn new(limit: RateLimit) -> Self {
        let interval = Duration::from_secs(1) / limit.requests_per_second.get();
        Self {
            interval,
            tolerance: interval * (limit.burst.get() - 1),
            full_at: std::sync::Mutex::new(Instant::now()),
        }
    }

    pub(super) async fn acquire(&self) {
        let slot = {
            // The lock is never held across an await, so a poisoned lock only means another
            // caller panicked between two lines that cannot panic; its value is still sound.
            let mut full_at = self.full_at.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let start = (*full_at).max(now);
            *full_at = start + self.interval;
            start.checked_sub(self.tolerance).unwrap_or(now).max(now)
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limiter_allows_a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(RateLimit {
            requests_per_second: NonZeroU32::new(50).unwrap(),
            burst: NonZeroU32::new(5).unwrap(),
        });
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        let burst = started.elapsed();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // Five go at once; the next five wait 20 ms each. Without a burst the first five would
        // take 80 ms, so 60 ms tells the two apart with room for a loaded machine (one took
        // 15 ms for five immediate acquires).
        assert!(burst < Duration::from_millis(60), "burst took {burst:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }
}
