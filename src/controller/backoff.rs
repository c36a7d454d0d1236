//! Per-object backoff after failed reconciles: the first retry comes quickly (an API server or
//! Developer Center that was briefly away is back), later ones double up to a ceiling, so an
//! outage costs few requests however long it lasts.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use rand::Rng as _;

/// The first retry's delay.
const FIRST: Duration = Duration::from_millis(500);
/// The longest delay between two retries.
const CEILING: Duration = Duration::from_secs(60);

/// Failures in a row, by object UID.
#[derive(Debug, Default)]
pub(crate) struct RetryBackoff(Mutex<HashMap<String, u32>>);

impl RetryBackoff {
    /// Counts a failure of `uid` and returns when to retry it.
    pub(crate) fn failed(&self, uid: &str) -> Duration {
        let failures = {
            let mut failures = self.failures();
            let count = failures.entry(uid.to_owned()).or_default();
            *count = count.saturating_add(1);
            *count
        };
        jittered(delay(failures), rand::rng().random())
    }

    /// Forgets the failures of `uid` after a successful reconcile.
    pub(crate) fn succeeded(&self, uid: &str) {
        self.failures().remove(uid);
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The delay after `failures` failures in a row (at least one).
pub(crate) fn delay(failures: u32) -> Duration {
    FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(CEILING)
}

/// `delay` spread by ±10% (`unit` uniform in [0, 1)), so objects that failed together retry
/// apart.
pub(crate) fn jittered(delay: Duration, unit: f64) -> Duration {
    delay.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling() {
        assert_eq!(delay(1), Duration::from_millis(500));
        assert_eq!(delay(2), Duration::from_secs(1));
        assert_eq!(delay(4), Duration::from_secs(4));
        assert_eq!(delay(8), CEILING);
        assert_eq!(delay(u32::MAX), CEILING);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let delay = Duration::from_secs(100);
        assert_eq!(jittered(delay, 0.0), Duration::from_secs(90));
        assert_eq!(jittered(delay, 0.5), Duration::from_secs(100));
        assert!(jittered(delay, 0.999_999) <= Duration::from_secs(110));
    }

    #[test]
    fn success_starts_over() {
        let backoff = RetryBackoff::default();
        let first = backoff.failed("a");
        let second = backoff.failed("a");
        assert!(second > first, "{first:?} then {second:?}");
        assert!(backoff.failed("b") < Duration::from_millis(600));
        backoff.succeeded("a");
        assert!(backoff.failed("a") < Duration::from_millis(600));
    }
}
