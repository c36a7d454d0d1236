//! The wire types' JSON: no input may panic, and whatever parses must survive a round trip
//! (serialize, parse again, get the same value), so what the client reads is what it would send.

use acqp_operator::devcenter::wire::{
    ApplicationInquiryResponse, AuthorizationInquiryRequest, AuthorizationInquiryResponse,
    GenerateUrlRequest, GenerateUrlResponse, Notification, ResultResponse,
};
use serde::{Serialize, de::DeserializeOwned};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let json = serde_json::to_vec(&value).expect("a parsed value serializes");
    let again: T = serde_json::from_slice(&json).expect("our own JSON parses");
    assert_eq!(again, value);
    // Debug is what logs show; it must not panic (and, for records, must not show the token).
    let _ = format!("{value:?}");
}

/// Runs one input; panics on a finding.
pub fn check(data: &[u8]) {
    round_trip::<ResultResponse>(data);
    round_trip::<ApplicationInquiryResponse>(data);
    round_trip::<GenerateUrlRequest>(data);
    round_trip::<GenerateUrlResponse>(data);
    round_trip::<AuthorizationInquiryRequest>(data);
    round_trip::<AuthorizationInquiryResponse>(data);
    round_trip::<Notification>(data);
}
