//! Checks on contract requests that their wire types cannot express: the shape of `Client-Id`,
//! the freshness of `Request-Time`, that a body is a JSON object, and that an integer may be
//! written with a zero fraction (`100.0`), as JSON Schema's `integer` allows. Each is a rule of
//! `docs/devcenter-api/openapi.yaml` that the conformance suite found the simulator not
//! enforcing.

use jiff::Timestamp;

use crate::devcenter::MAX_CLOCK_SKEW;

/// Longest Client ID, in characters.
pub(crate) const MAX_CLIENT_ID_CHARS: usize = 64;

/// Whether `id` can be a Client ID: 1 to 64 of `A-Z a-z 0-9 _ . -`, as `spec.clientId` allows.
/// Only a well-formed one is echoed on the answer, so the answer's header stays well-formed.
pub(crate) fn well_formed_client_id(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    !id.is_empty() && id.len() <= MAX_CLIENT_ID_CHARS && id.chars().all(allowed)
}

/// Why a signed `Request-Time` is not acceptable at `now`, if not. The signature binds a request
/// to a path and a Client-Id but not to a moment, so without this bound a recorded request could
/// be replayed at any later time; the bound is the client's for answers, either way.
pub(crate) fn fresh(time: &str, now: Timestamp) -> Result<(), String> {
    let sent: Timestamp = time
        .parse()
        .map_err(|_| format!("Request-Time {time:?} is not an ISO 8601 time with an offset"))?;
    let max_skew = MAX_CLOCK_SKEW.as_secs() as i64;
    let age = now.as_second() - sent.as_second();
    if age > max_skew {
        return Err(format!(
            "Request-Time {time} is {age}s old; requests older than {max_skew}s are refused as \
             replays: sign each request with the current time"
        ));
    }
    if -age > max_skew {
        return Err(format!(
            "Request-Time {time} is {}s in the future; check the clocks (at most {max_skew}s of \
             skew is accepted)",
            -age
        ));
    }
    Ok(())
}

/// Whether the body's first token opens a JSON object. serde's derived structs also accept a
/// JSON array of the fields in order (`["id", "1022188000000000001", ["AutoDebit"]]`), which the
/// contract does not allow.
pub(crate) fn is_json_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

/// Rewrites numbers with a zero fraction (`100.0`, `1e2`) as integers, in place: JSON Schema's
/// `integer` includes them, so a gateway must read them as the integers they are, while serde
/// refuses a float for an integer field. Numbers too large for an integer stay as they are and are
/// refused by the field's range.
pub(crate) fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            // Exact below 2^53; larger values are out of every documented range anyway.
            if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_follow_the_documented_pattern() {
        for good in ["SANDBOX_ACQP_OPERATOR_DEMO", "2188.app-1", &"A".repeat(64)] {
            assert!(well_formed_client_id(good), "{good}");
        }
        for bad in ["", "has space", "ünïcode", "a/b", &"A".repeat(65)] {
            assert!(!well_formed_client_id(bad), "{bad}");
        }
    }

    #[test]
    fn request_times_within_the_skew_either_way_are_fresh() {
        let now: Timestamp = "2026-11-27T04:08:56Z".parse().unwrap();
        for time in [
            "2026-11-27T12:08:56+08:00",
            "2026-11-27T04:03:56Z",
            "2026-11-27T04:13:56Z",
            "2026-11-27T04:08:56.5Z",
        ] {
            assert_eq!(fresh(time, now), Ok(()), "{time}");
        }
        let stale = fresh("2026-11-27T04:03:55Z", now).unwrap_err();
        assert!(stale.contains("301s old"), "{stale}");
        let future = fresh("2026-11-27T12:13:57+08:00", now).unwrap_err();
        assert!(future.contains("301s in the future"), "{future}");
        let garbage = fresh("yesterday", now).unwrap_err();
        assert!(garbage.contains("not an ISO 8601 time"), "{garbage}");
        let no_offset = fresh("2026-11-27T04:08:56", now).unwrap_err();
        assert!(no_offset.contains("with an offset"), "{no_offset}");
    }

    #[test]
    fn integral_floats_read_as_integers_and_others_stay() {
        let mut value = serde_json::json!({"pageSize": 10.0, "x": [1e2, 2.5, -3.0], "big": 1e300});
        integral_numbers_as_integers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"pageSize": 10, "x": [100, 2.5, -3], "big": 1e300})
        );
        assert!(value["pageSize"].is_u64());
    }

    #[test]
    fn only_objects_are_bodies() {
        for body in [&b"{}"[..], b" \r\n\t{\"a\":1}", b"{"] {
            assert!(is_json_object(body), "{body:?}");
        }
        for body in [&b"[]"[..], b"", b"   ", b"null", b"\"{}\"", b"\x0c{}"] {
            assert!(!is_json_object(body), "{body:?}");
        }
    }
}
