//! Fault injection for the contract endpoints: latency, U results, throttling, HTTP 5xx and
//! dropped connections, drawn from a seeded generator so a run can be replayed.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// The knobs, as set in the seed's `faults` or through `POST /sim/faults`. Rates are in [0, 1].
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSettings {
    /// Share of calls answered `UNKNOWN_EXCEPTION` (resultStatus U) without doing the work.
    #[serde(default)]
    pub u_error_rate: f64,
    /// Share of calls answered HTTP 503 with an unsigned body, without doing the work.
    #[serde(default)]
    pub http5xx_rate: f64,
    /// Share of calls answered `REQUEST_TRAFFIC_EXCEED_LIMIT` (U) without doing the work.
    #[serde(default)]
    pub throttle_rate: f64,
    /// Added to every contract call before it is handled.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of calls whose work is done but whose connection is closed before any response
    /// byte is written: the case idempotency keys exist for.
    #[serde(default)]
    pub drop_rate: f64,
    /// Seed of the generator; the same seed and call sequence give the same faults.
    #[serde(default)]
    pub seed: u64,
    /// Contract paths the faults and latency apply to (e.g. `/v1/authorizations/inquiry`);
    /// empty means every path. Lets a test fail one caller without failing the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl FaultSettings {
    /// Rejects rates outside [0, 1] and rates that add up to more than 1.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("uErrorRate", self.u_error_rate),
            ("http5xxRate", self.http5xx_rate),
            ("throttleRate", self.throttle_rate),
            ("dropRate", self.drop_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        let sum: f64 = rates.iter().map(|(_, r)| r).sum();
        if sum > 1.0 + f64::EPSILON {
            return Err(format!("the rates add up to {sum}, more than 1"));
        }
        Ok(())
    }
}

/// What happens to one contract call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Handle it normally.
    None,
    /// Answer `UNKNOWN_EXCEPTION` (U).
    UnknownError,
    /// Answer `REQUEST_TRAFFIC_EXCEED_LIMIT` (U).
    Throttle,
    /// Answer HTTP 503.
    Http5xx,
    /// Handle it, then close the connection without answering.
    Drop,
}

/// The current settings and the generator they seeded.
pub struct Faults {
    settings: FaultSettings,
    rng: StdRng,
}

impl Faults {
    /// Starts a sequence from `settings.seed`.
    pub fn new(settings: FaultSettings) -> Self {
        let rng = StdRng::seed_from_u64(settings.seed);
        Self { settings, rng }
    }

    /// The settings in force.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// The added latency and the fate of the next call to `path`; calls to paths outside
    /// `paths` are neither delayed nor faulted, and draw nothing.
    pub fn next_for(&mut self, path: &str) -> (Duration, Fault) {
        let s = &self.settings;
        if !s.paths.is_empty() && !s.paths.iter().any(|p| p == path) {
            return (Duration::ZERO, Fault::None);
        }
        (Duration::from_millis(s.latency_ms), self.next())
    }

    /// Draws the fate of the next call: one number per call, split by cumulative rates.
    fn next(&mut self) -> Fault {
        let s = &self.settings;
        if s.u_error_rate + s.http5xx_rate + s.throttle_rate + s.drop_rate == 0.0 {
            // No draw, so turning faults on later starts the seeded sequence from its beginning.
            return Fault::None;
        }
        let x: f64 = self.rng.random();
        let mut edge = 0.0;
        for (rate, fault) in [
            (s.u_error_rate, Fault::UnknownError),
            (s.throttle_rate, Fault::Throttle),
            (s.http5xx_rate, Fault::Http5xx),
            (s.drop_rate, Fault::Drop),
        ] {
            edge += rate;
            if x < edge {
                return fault;
            }
        }
        Fault::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> FaultSettings {
        FaultSettings {
            u_error_rate: 0.2,
            http5xx_rate: 0.2,
            throttle_rate: 0.1,
            drop_rate: 0.1,
            seed,
            ..Default::default()
        }
    }

    fn draw(settings: FaultSettings, n: usize) -> Vec<Fault> {
        let mut faults = Faults::new(settings);
        (0..n).map(|_| faults.next()).collect()
    }

    #[test]
    fn same_seed_same_sequence_and_other_seed_differs() {
        assert_eq!(draw(settings(7), 200), draw(settings(7), 200));
        assert_ne!(draw(settings(7), 200), draw(settings(8), 200));
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let seq = draw(settings(1), 10_000);
        let count = |f| seq.iter().filter(|&&x| x == f).count();
        assert!((1700..2300).contains(&count(Fault::UnknownError)));
        assert!((1700..2300).contains(&count(Fault::Http5xx)));
        assert!((700..1300).contains(&count(Fault::Throttle)));
        assert!((700..1300).contains(&count(Fault::Drop)));
        assert!((3500..4500).contains(&count(Fault::None)));
    }

    #[test]
    fn zero_rates_never_fault_and_bad_rates_are_rejected() {
        assert!(
            draw(FaultSettings::default(), 100)
                .iter()
                .all(|f| *f == Fault::None)
        );
        let mut bad = settings(0);
        bad.drop_rate = 1.5;
        assert!(bad.validate().unwrap_err().contains("dropRate"));
        let mut sum = settings(0);
        sum.u_error_rate = 0.9;
        assert!(sum.validate().unwrap_err().contains("add up"));
        assert!(settings(0).validate().is_ok());
    }

    #[test]
    fn paths_scope_the_faults_and_the_latency() {
        let mut faults = Faults::new(FaultSettings {
            throttle_rate: 1.0,
            latency_ms: 5,
            paths: vec!["/listed".into()],
            ..Default::default()
        });
        assert_eq!(faults.next_for("/other"), (Duration::ZERO, Fault::None));
        assert_eq!(
            faults.next_for("/listed"),
            (Duration::from_millis(5), Fault::Throttle)
        );
        let mut everywhere = Faults::new(FaultSettings {
            throttle_rate: 1.0,
            ..Default::default()
        });
        assert_eq!(everywhere.next_for("/other").1, Fault::Throttle);
    }
}
