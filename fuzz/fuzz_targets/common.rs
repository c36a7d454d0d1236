//! What the targets share: the example keys (test keys made for this project), one client
//! configured the way the operator configures it, and helpers to turn fuzz input into headers.

#![allow(dead_code)] // Each target uses a different part.

use std::sync::OnceLock;

use acqp_operator::devcenter::{
    ClientConfig, DevCenterClient,
    signing::{self, SigningKey, VerifyingKey},
};
use http::{HeaderMap, HeaderName, HeaderValue};

pub const CLIENT_ID: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
/// The client's endpoint has a path, so the signed path is `/gw` + the contract path: a
/// response signed for the bare contract path must not verify.
pub const BASE_PATH: &str = "/gw";
pub const NOTIFY_PATH: &str = "/notify";

const DEVCENTER_PRIVATE: &[u8] = include_bytes!("../../examples/keys/devcenter-private.pem");
const DEVCENTER_PUBLIC: &[u8] = include_bytes!("../../examples/keys/devcenter-public.pem");
const TSP_PRIVATE: &[u8] = include_bytes!("../../examples/keys/tsp-private.pem");

/// The Developer Center's signing key, to make authentic messages whose content is fuzzed.
pub fn devcenter_signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem("devcenter", DEVCENTER_PRIVATE).unwrap())
}

pub fn devcenter_verifying_key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| VerifyingKey::from_pem("devcenter", DEVCENTER_PUBLIC).unwrap())
}

/// A client for CLIENT_ID at `http://127.0.0.1:9/gw/`; it never sends anything here.
pub fn client() -> &'static DevCenterClient {
    static CLIENT: OnceLock<DevCenterClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig::new(
            format!("http://127.0.0.1:9{BASE_PATH}/").parse().unwrap(),
            CLIENT_ID,
            SigningKey::from_pem("tsp", TSP_PRIVATE).unwrap(),
            VerifyingKey::from_pem("devcenter", DEVCENTER_PUBLIC).unwrap(),
        );
        DevCenterClient::new(config).unwrap()
    })
}

/// Headers from `name: value` lines; lines that are not valid HTTP headers are skipped, as an
/// HTTP stack would refuse them before our code sees them.
pub fn parse_headers(text: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// Splits `data` at the first blank line into a header block and a body, like HTTP/1.
pub fn split_head_body(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[]),
    }
}

/// Headers of an authentic message: Client-Id, the time header and a valid signature over
/// `path`, `time` and `body` made with the Developer Center key.
pub fn signed_headers(time_header: &str, path: &str, time: &str, body: &[u8]) -> Option<HeaderMap> {
    let signature = signing::sign(devcenter_signing_key(), path, CLIENT_ID, time, body);
    let mut headers = HeaderMap::new();
    headers.insert(
        signing::CLIENT_ID_HEADER,
        HeaderValue::from_static(CLIENT_ID),
    );
    headers.insert(
        HeaderName::from_bytes(time_header.as_bytes()).unwrap(),
        HeaderValue::from_str(time).ok()?,
    );
    headers.insert(
        signing::SIGNATURE_HEADER,
        HeaderValue::from_str(&signature).unwrap(),
    );
    Some(headers)
}
