//! Backoff after failures: per object after failed reconciles, and for the watches. The first
//! retry comes quickly (an API server or Developer Center that was briefly away is back), later
//! ones double up to a ceiling, so an outage costs few requests however long it lasts.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use crate::backoff::doubling;
use kube::runtime::utils::Backoff;
use rand::Rng as _;

/// The first retry's delay.
const FIRST: Duration = Duration::from_millis(500);
/// The longest delay between two retries.
const CEILING: Duration = Duration::from_secs(60);
/// The longest delay between two attempts of a watch to list and watch again. kube's default
/// grows to 30 s, so the watches resumed up to 30 s after an API server outage of half a
/// minute had ended (and everything waited on them); 5 s bounds that wait, at the cost of one
/// attempt per 5 s per watch while the API server is away.
const WATCH_CEILING: Duration = Duration::from_secs(5);

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
    doubling(FIRST, failures, CEILING)
}

/// The watches' backoff (for `WatchStreamExt::backoff`): [`FIRST`] doubling to
/// [`WATCH_CEILING`], jittered, starting over at the watch's next success.
#[derive(Debug, Default)]
pub(crate) struct WatchBackoff {
    failures: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        Some(jittered(
            doubling(FIRST, self.failures, WATCH_CEILING),
            rand::rng().random(),
        ))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
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
    fn watches_back_off_to_five_seconds_and_start_over_after_a_success() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = backoff.by_ref().take(10).collect();
        assert!(delays[0] < Duration::from_millis(600), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= WATCH_CEILING.mul_f64(1.1)));
        assert!(delays[9] >= WATCH_CEILING.mul_f64(0.9), "{delays:?}");
        backoff.reset();
        assert!(backoff.next().unwrap() < Duration::from_millis(600));
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
