//! Durations as Kubernetes users write them (`30s`, `5m`, `1h30m`).

use std::time::Duration;

/// The CEL-checked shape of a duration: the subset of Go's syntax that both the API server's
/// regex and [`parse`] accept, so admission and the operator never disagree.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// The admission rule of every `pollInterval`: [`PATTERN`], and at least one second.
pub fn poll_interval_rule() -> kube::core::Rule {
    // The pattern sits inside a CEL string literal, where a backslash must be doubled.
    let pattern = PATTERN.replace('\\', "\\\\");
    kube::core::Rule::new(format!(
        "self.matches('{pattern}') && duration(self) >= duration('1s')"
    ))
    .message("pollInterval must be a duration of at least 1s, like 30s, 5m or 1h")
}

/// Parses a duration string admitted by [`PATTERN`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|err| format!("invalid duration {text:?}: {err}"))?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("soon").is_err());
        assert!(parse("10").is_err());
    }
}
