//! A pushed notification through `verify_notification` (signature, Client-Id, freshness of
//! `Request-Time`, body shape).
//!
//! Input: byte 0 bit 0 says whether the target signs the body itself with a fresh time (bit 1:
//! with the time given up to the first newline instead); otherwise raw `name: value` header
//! lines, a blank line, and the body.

use acqp_operator::devcenter::{Error, limits, signing, wire::Notification};

/// Runs one input; panics on a finding.
pub fn check(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let signed_now = flags & 3 == 1;
    let (headers, body) = match flags & 3 {
        0 | 2 => {
            let (head, body) = crate::common::split_head_body(rest);
            (crate::common::parse_headers(head), body)
        }
        1 => {
            let now = signing::now();
            let Some(headers) = crate::common::signed_headers(
                signing::REQUEST_TIME_HEADER,
                crate::common::NOTIFY_PATH,
                &now,
                rest,
            ) else {
                return;
            };
            (headers, rest)
        }
        _ => {
            let (time, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            let Ok(time) = std::str::from_utf8(time) else {
                return;
            };
            let Some(headers) = crate::common::signed_headers(
                signing::REQUEST_TIME_HEADER,
                crate::common::NOTIFY_PATH,
                time,
                body,
            ) else {
                return;
            };
            (headers, body)
        }
    };
    let result =
        crate::common::client().verify_notification(crate::common::NOTIFY_PATH, &headers, body);
    if signed_now {
        // Authentic and fresh: accepted exactly when the body is a notification within the
        // bounds of what the operator remembers.
        let parses = serde_json::from_slice::<Notification>(body)
            .is_ok_and(|n| n.acquirer_id.len() <= limits::MAX_ACQUIRER_ID_BYTES);
        match &result {
            Ok(_) => assert!(parses),
            Err(Error::Protocol { .. }) => assert!(!parses),
            Err(other) => panic!("an authentic, fresh notification was refused: {other}"),
        }
    }
    if let Err(error) = &result
        && flags & 1 == 0
    {
        // Unsigned by the target: the body is unauthenticated and never reaches the error
        // text; the same headers over other bytes say the same.
        let filler = vec![b'#'; body.len()];
        let again = crate::common::client().verify_notification(
            crate::common::NOTIFY_PATH,
            &headers,
            &filler,
        );
        assert_eq!(
            again.err().map(|e| e.to_string()),
            Some(error.to_string()),
            "the error text depends on the unauthenticated body"
        );
    }
}
