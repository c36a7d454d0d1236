//! kstatus-compatible conditions: `Ready` always present; `Reconciling` and `Stalled` present
//! only while True; `lastTransitionTime` moves only on a real transition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Ready: the resource does what it promises.
pub const READY: &str = "Ready";
/// Reconciling: work is in progress (including waiting for the ACQP).
pub const RECONCILING: &str = "Reconciling";
/// Stalled: a human must act.
pub const STALLED: &str = "Stalled";
/// Paused: the `acqp-operator.io/paused` annotation stops all action (present only while True).
pub const PAUSED: &str = "Paused";
/// MalformedAnnotation: a request annotation's value cannot be used (present only while True).
pub const MALFORMED: &str = "MalformedAnnotation";

/// The conditions a decision wants, before timestamps and generations are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Whether Ready is True.
    pub ready: bool,
    /// Reason and message of every condition written (they share them, as Flux does).
    pub reason: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// Whether work is in progress (Reconciling=True).
    pub reconciling: bool,
    /// Whether a human must act (Stalled=True).
    pub stalled: bool,
}

/// Builds the conditions for `wanted`, keeping each existing condition's lastTransitionTime
/// when its status does not change.
pub fn apply(
    previous: &[Condition],
    wanted: &Wanted,
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let mut conditions = vec![condition(
        previous,
        READY,
        wanted.ready,
        wanted,
        generation,
        now,
    )];
    if wanted.reconciling {
        conditions.push(condition(
            previous,
            RECONCILING,
            true,
            wanted,
            generation,
            now,
        ));
    }
    if wanted.stalled {
        conditions.push(condition(previous, STALLED, true, wanted, generation, now));
    }
    conditions
}

fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    wanted: &Wanted,
    generation: i64,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = find(previous, type_)
        .filter(|old| old.status == status)
        .map_or_else(|| now.clone(), |old| old.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: wanted.reason.into(),
        message: wanted.message.clone(),
        observed_generation: Some(generation),
        last_transition_time,
    }
}

/// A True condition of `(type, reason, message)` outside the kstatus three, keeping its
/// lastTransitionTime from `previous`.
pub fn present(
    previous: &[Condition],
    (type_, reason, message): (&str, &'static str, String),
    generation: i64,
    now: &Time,
) -> Condition {
    let wanted = Wanted {
        ready: false,
        reason,
        message,
        reconciling: false,
        stalled: false,
    };
    condition(previous, type_, true, &wanted, generation, now)
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn waiting() -> Wanted {
        Wanted {
            ready: false,
            reason: "AwaitingAuthorization",
            message: "waiting".into(),
            reconciling: true,
            stalled: false,
        }
    }

    #[test]
    fn reconciling_and_stalled_appear_only_when_true() {
        let conditions = apply(&[], &waiting(), 3, &at(10));
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Reconciling"]);
        assert!(conditions.iter().all(|c| c.observed_generation == Some(3)));

        let stalled = Wanted {
            reconciling: false,
            stalled: true,
            reason: "Revoked",
            ..waiting()
        };
        let types: Vec<_> = apply(&conditions, &stalled, 3, &at(20))
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Ready", "Stalled"]);
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = apply(&[], &waiting(), 1, &at(10));
        let again = apply(
            &first,
            &Wanted {
                message: "still".into(),
                ..waiting()
            },
            2,
            &at(20),
        );
        assert_eq!(find(&again, READY).unwrap().last_transition_time, at(10));
        assert_eq!(find(&again, READY).unwrap().observed_generation, Some(2));

        let ready = Wanted {
            ready: true,
            reconciling: false,
            reason: "Authorized",
            ..waiting()
        };
        let flipped = apply(&again, &ready, 2, &at(30));
        assert_eq!(find(&flipped, READY).unwrap().last_transition_time, at(30));
        assert!(is_true(&flipped, READY));
    }
}
