//! The annotations a user (or `kubectl acqp`, or GitOps) sets to ask the operator for something
//! outside the spec: look at the Developer Center now, issue a fresh URL, or leave the resource
//! alone. The Crossplane and Flux convention: a request's value is a timestamp, acted on once
//! per value, and the value acted on is reported in status.

use crate::api::AcqpAuthorization;

/// Ask the Developer Center about this ACQP now instead of at the next poll.
pub const REFRESH_REQUESTED_AT: &str = "acqp-operator.io/refresh-requested-at";
/// Issue a fresh authorization URL for the current products.
pub const REINVITE_REQUESTED_AT: &str = "acqp-operator.io/reinvite-requested-at";
/// `"true"`: take no action on this resource.
pub const PAUSED: &str = "acqp-operator.io/paused";

/// Request values are timestamps; anything longer is refused rather than echoed into status.
const MAX_VALUE_LEN: usize = 64;

/// What the annotations of one resource ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// Whether the resource is paused. A malformed `paused` value pauses too: whoever wrote it
    /// most likely meant to pause, and acting is the riskier guess.
    pub paused: bool,
    /// The refresh request's value, when well-formed.
    pub refresh: Option<String>,
    /// The re-invitation request's value, when well-formed.
    pub reinvite: Option<String>,
    /// Annotations whose value the operator cannot use, with what to do about each.
    pub malformed: Vec<Malformed>,
}

/// An annotation with a value the operator cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The annotation key.
    pub key: &'static str,
    /// Why, and what to do: one sentence.
    pub message: String,
}

impl Requests {
    /// Reads the requests from `resource`'s annotations.
    pub fn of(resource: &AcqpAuthorization) -> Requests {
        let annotations = resource.metadata.annotations.as_ref();
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        let name = resource.metadata.name.as_deref().unwrap_or_default();
        let mut requests = Requests::default();
        match get(PAUSED).map(str::trim) {
            None | Some("false") => {}
            Some("true") => requests.paused = true,
            Some(other) => {
                requests.paused = true;
                requests.malformed.push(Malformed {
                    key: PAUSED,
                    message: format!(
                        "annotation {PAUSED} must be \"true\" or \"false\", not {}; the resource \
                         is treated as paused until then: `kubectl annotate acqpauth {name} \
                         --overwrite {PAUSED}=true` (or remove it to resume)",
                        shown(other)
                    ),
                });
            }
        }
        let (refresh, refresh_error) = timestamp(get(REFRESH_REQUESTED_AT));
        let (reinvite, reinvite_error) = timestamp(get(REINVITE_REQUESTED_AT));
        requests.refresh = refresh;
        requests.reinvite = reinvite;
        requests.malformed.extend(
            [
                (refresh_error, REFRESH_REQUESTED_AT, "refresh"),
                (reinvite_error, REINVITE_REQUESTED_AT, "reinvite"),
            ]
            .into_iter()
            .filter_map(|(error, key, command)| {
                let value = error?;
                let message = format!(
                    "annotation {key} must be an RFC 3339 timestamp such as \
                     2026-12-02T14:05:00Z, not {}; it is ignored: run `kubectl acqp {command} \
                     {name}`, or `kubectl annotate acqpauth {name} --overwrite \
                     {key}=$(date -u +%Y-%m-%dT%H:%M:%SZ)`",
                    shown(&value)
                );
                Some(Malformed { key, message })
            }),
        );
        requests
    }
}

/// A well-formed timestamp value, or the malformed value.
fn timestamp(value: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(value) = value else {
        return (None, None);
    };
    let trimmed = value.trim();
    if trimmed.len() <= MAX_VALUE_LEN && trimmed.parse::<jiff::Timestamp>().is_ok() {
        (Some(trimmed.to_owned()), None)
    } else {
        (None, Some(value.to_owned()))
    }
}

/// A tenant's value, quoted and cut short so a condition message stays one line.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(MAX_VALUE_LEN).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AcqpAuthorizationSpec;
    use std::collections::BTreeMap;

    fn annotated(pairs: &[(&str, &str)]) -> AcqpAuthorization {
        let spec: AcqpAuthorizationSpec = serde_json::from_value(serde_json::json!({
            "applicationRef": {"name": "demo"},
            "acqp": {"id": "1022188000000000001"},
            "products": ["CashierPayment"],
        }))
        .unwrap();
        let mut resource = AcqpAuthorization::new("acme", spec);
        resource.metadata.annotations = Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        );
        resource
    }

    #[test]
    fn no_annotations_ask_for_nothing() {
        assert_eq!(Requests::of(&annotated(&[])), Requests::default());
        let unpaused = Requests::of(&annotated(&[(PAUSED, "false")]));
        assert_eq!(unpaused, Requests::default());
    }

    #[test]
    fn timestamps_are_requests() {
        let requests = Requests::of(&annotated(&[
            (REFRESH_REQUESTED_AT, "2026-12-02T14:05:00Z"),
            (REINVITE_REQUESTED_AT, " 2026-12-02T14:05:00.123+08:00 "),
            (PAUSED, "true"),
        ]));
        assert_eq!(requests.refresh.as_deref(), Some("2026-12-02T14:05:00Z"));
        assert_eq!(
            requests.reinvite.as_deref(),
            Some("2026-12-02T14:05:00.123+08:00")
        );
        assert!(requests.paused);
        assert!(requests.malformed.is_empty());
    }

    #[test]
    fn malformed_values_say_what_to_do() {
        let long = "9".repeat(500);
        let requests = Requests::of(&annotated(&[
            (REFRESH_REQUESTED_AT, "yesterday"),
            (REINVITE_REQUESTED_AT, &long),
            (PAUSED, "yes"),
        ]));
        assert_eq!(requests.refresh, None);
        assert_eq!(requests.reinvite, None);
        assert!(requests.paused, "a malformed paused value pauses");
        let keys: Vec<_> = requests.malformed.iter().map(|m| m.key).collect();
        assert_eq!(keys, [PAUSED, REFRESH_REQUESTED_AT, REINVITE_REQUESTED_AT]);
        let refresh = &requests.malformed[1].message;
        assert!(refresh.contains("\"yesterday\""), "{refresh}");
        assert!(refresh.contains("kubectl acqp refresh acme"), "{refresh}");
        let reinvite = &requests.malformed[2].message;
        assert!(
            reinvite.len() < 400,
            "a long value is cut short: {reinvite}"
        );
        assert!(requests.malformed[0].message.contains("\"yes\""));
    }
}
