//! A Developer Center response through the client's checks (signature, Client-Id, result,
//! body shape), as a call runs them on what the network delivered.
//!
//! Input: byte 0 picks the call (`% 3`) and whether the target signs the body itself, now
//! (bit 2); bytes 1-2 the HTTP status; then, when signing, the body; otherwise raw `name: value`
//! header lines, a blank line, and the body. Signing
//! here lets the fuzzer reach the parsing behind the signature check, which it could never
//! reach by forging RSA signatures.

use acqp_operator::devcenter::{Error, signing};
use http::StatusCode;

const PATHS: [&str; 3] = [
    "/devcenter/api/v1/application/inquiry",
    "/devcenter/api/v1/authorizations/generateUrl",
    "/devcenter/api/v1/authorizations/inquiry",
];

/// Runs one input; panics on a finding.
pub fn check(data: &[u8]) {
    let [flags, s1, s2, rest @ ..] = data else {
        return;
    };
    let kind = (flags & 3) % 3;
    let status = StatusCode::from_u16(100 + u16::from_le_bytes([*s1, *s2]) % 500).unwrap();
    let sign_here = flags & 4 != 0;
    let (headers, body) = if sign_here {
        // Signed now: an authentic, fresh answer whose content alone is fuzzed.
        let path = format!("{}{}", crate::common::BASE_PATH, PATHS[usize::from(kind)]);
        let time = signing::now();
        let headers =
            crate::common::signed_headers(signing::RESPONSE_TIME_HEADER, &path, &time, rest)
                .expect("our own time is a valid header value");
        (headers, rest)
    } else {
        let (head, body) = crate::common::split_head_body(rest);
        (crate::common::parse_headers(head), body)
    };
    let result = crate::common::client().check_received_response(kind, status, &headers, body);
    if sign_here {
        // An authentic response is never refused as unauthentic, whatever it says.
        assert!(
            !matches!(result, Err(Error::Unverified { .. })),
            "{result:?}"
        );
    }
    if let Err(error) = &result {
        let _ = (
            error.to_string(),
            error.metric_label(),
            error.is_retryable(),
        );
        if !sign_here {
            // Unauthenticated bytes never reach the error text (tenants read it in their
            // application's conditions): the same headers over other bytes say the same.
            let filler = vec![b'#'; body.len()];
            let again =
                crate::common::client().check_received_response(kind, status, &headers, &filler);
            assert_eq!(
                again.err().map(|e| e.to_string()),
                Some(error.to_string()),
                "the error text depends on the unauthenticated body"
            );
        }
    }
}
