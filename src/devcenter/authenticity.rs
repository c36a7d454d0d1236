//! Whether a response or notification really comes from the Developer Center: its signature,
//! the Client-Id it is addressed to, and a signed time recent enough that it is no replay.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};

use super::{Error, client::ClientConfig, signing};

/// How far the signed time of a response (`Response-Time`) or notification (`Request-Time`) may
/// lie from our clock, either way. Older messages are refused as replays: the signature binds a
/// message to a path and Client-Id, not to one request, so without this a recorded answer could
/// be played back much later. The allowance covers clock skew and slow answers; the Developer
/// Center signs each notification retry anew, with a fresh time.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Checks that a message was signed by the Developer Center for the application of `config`,
/// at a time within [`MAX_CLOCK_SKEW`] of ours.
pub(super) fn verify(
    config: &ClientConfig,
    path: &str,
    time_header: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Error> {
    let unverified = |reason: String| Error::Unverified {
        path: path.to_owned(),
        reason,
    };
    let header = |name: &str| {
        let value = headers
            .get(name)
            .ok_or_else(|| unverified(format!("no {name} header")))?;
        value
            .to_str()
            .map_err(|_| unverified(format!("the {name} header is not ASCII")))
    };
    let client_id = header(signing::CLIENT_ID_HEADER)?;
    if client_id != config.client_id {
        return Err(unverified(format!(
            "it is addressed to Client-Id {client_id:?}"
        )));
    }
    let time = header(time_header)?;
    let signature = header(signing::SIGNATURE_HEADER)?;
    signing::verify(
        &config.devcenter_key,
        path,
        client_id,
        time,
        body,
        signature,
    )
    .map_err(|e| unverified(format!("{e} (checked with {:?})", config.devcenter_key)))?;
    // After the signature, so the time judged is the one the sender signed.
    check_fresh(time_header, time, jiff::Timestamp::now()).map_err(unverified)
}

/// Why a message's signed time (the `header` value `time`) is not acceptable at `now`, if not.
fn check_fresh(header: &str, time: &str, now: jiff::Timestamp) -> Result<(), String> {
    let sent: jiff::Timestamp = time
        .parse()
        .map_err(|_| format!("{header} {time:?} is not an ISO 8601 time with an offset"))?;
    let max_skew = MAX_CLOCK_SKEW.as_secs() as i64;
    let age = now.as_second() - sent.as_second();
    if age > max_skew {
        return Err(format!(
            "{header} {time} is {age}s old; messages older than {max_skew}s are refused as \
             replays"
        ));
    }
    if -age > max_skew {
        return Err(format!(
            "{header} {time} is {}s in the future; check the clocks (at most {max_skew}s of skew \
             is accepted)",
            -age
        ));
    }
    Ok(())
}

/// Adds the HTTP status to an authentication failure: an unsigned 404 means a wrong endpoint.
pub(super) fn with_status(error: Error, status: StatusCode) -> Error {
    match error {
        Error::Unverified { path, reason } => Error::Unverified {
            path,
            reason: format!("{reason} (HTTP {status})"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_times_outside_the_skew_are_refused() {
        let now: jiff::Timestamp = "2026-11-27T04:10:00Z".parse().unwrap();
        // The same instants in another offset count the same: the check is on absolute time.
        for accepted in [
            "2026-11-27T12:10:00+08:00",
            "2026-11-27T04:05:00+00:00",
            "2026-11-27T04:15:00Z",
        ] {
            assert_eq!(
                check_fresh("Request-Time", accepted, now),
                Ok(()),
                "{accepted}"
            );
        }
        let refused = |time: &str| check_fresh("Request-Time", time, now).unwrap_err();
        let stale = refused("2026-11-27T12:04:59+08:00");
        assert_eq!(
            stale,
            "Request-Time 2026-11-27T12:04:59+08:00 is 301s old; messages older than 300s are \
             refused as replays"
        );
        let future = refused("2026-11-27T04:15:01Z");
        assert!(future.contains("is 301s in the future"), "{future}");
        for garbage in ["", "yesterday", "2026-11-27T04:10:00", "2026-11-27"] {
            let reason = refused(garbage);
            assert!(
                reason.contains("is not an ISO 8601 time"),
                "{garbage:?}: {reason}"
            );
        }
    }
}
