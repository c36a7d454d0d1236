//! The `Signature` header parser, alone and through `verify`: no input may panic, and `verify`
//! must refuse a malformed header for exactly the reason the parser gives.

use acqp_operator::devcenter::signing::{self, SignatureError};

/// Runs one input; panics on a finding.
pub fn check(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = signing::parse_header(value);
    let verified = signing::verify(
        crate::common::devcenter_verifying_key(),
        "/notify",
        crate::common::CLIENT_ID,
        "2026-11-27T12:08:56+08:00",
        b"{}",
        value,
    );
    match parsed {
        Err(reason) => assert_eq!(verified, Err(reason), "{value:?}"),
        // Any signature that decodes is checked; one this input could not have made is refused.
        Ok(_) => assert!(
            matches!(verified, Ok(()) | Err(SignatureError::Mismatch)),
            "{value:?}: {verified:?}"
        ),
    }
    // Errors are displayed in conditions and logs; formatting one must not panic either.
    let _ = verified.map_err(|e| e.to_string());
}
