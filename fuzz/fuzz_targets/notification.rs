//! A pushed notification through `verify_notification` (signature, Client-Id, freshness of
//! `Request-Time`, body shape).
//!
//! Input: byte 0 bit 0 says whether the target signs the body itself with a fresh time (bit 1:
//! with the time given up to the first newline instead); otherwise raw `name: value` header
//! lines, a blank line, and the body.

#![no_main]

use acqp_operator::devcenter::{Error, signing, wire::Notification};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let signed_now = flags & 3 == 1;
    let (headers, body) = match flags & 3 {
        0 | 2 => {
            let (head, body) = common::split_head_body(rest);
            (common::parse_headers(head), body)
        }
        1 => {
            let now = signing::now();
            let Some(headers) = common::signed_headers(
                signing::REQUEST_TIME_HEADER,
                common::NOTIFY_PATH,
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
            let Some(headers) = common::signed_headers(
                signing::REQUEST_TIME_HEADER,
                common::NOTIFY_PATH,
                time,
                body,
            ) else {
                return;
            };
            (headers, body)
        }
    };
    let result = common::client().verify_notification(common::NOTIFY_PATH, &headers, body);
    if signed_now {
        // Authentic and fresh: accepted exactly when the body is a notification.
        let parses = serde_json::from_slice::<Notification>(body).is_ok();
        match &result {
            Ok(_) => assert!(parses),
            Err(Error::Protocol { .. }) => assert!(!parses),
            Err(other) => panic!("an authentic, fresh notification was refused: {other}"),
        }
    }
    if let Err(error) = &result {
        let _ = error.to_string();
    }
});
