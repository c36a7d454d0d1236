//! The one exponential backoff formula, shared by every retry loop of the operator (failed
//! reconciles, watches, Developer Center calls, application checks, webhook deliveries).

use std::time::Duration;

/// `first` doubled for each attempt after the first (`attempt` counts from 1), at most
/// `ceiling`.
pub fn doubling(first: Duration, attempt: u32, ceiling: Duration) -> Duration {
    first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_delay_up_to_the_ceiling() {
        let second = Duration::from_secs(1);
        let ceiling = Duration::from_secs(60);
        assert_eq!(doubling(second, 0, ceiling), second);
        assert_eq!(doubling(second, 1, ceiling), second);
        assert_eq!(doubling(second, 3, ceiling), 4 * second);
        assert_eq!(doubling(second, 7, ceiling), ceiling);
        assert_eq!(doubling(second, u32::MAX, ceiling), ceiling);
    }
}
