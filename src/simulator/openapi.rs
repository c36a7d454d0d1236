//! The contract document, served as `GET /openapi.yaml` (verbatim) and `GET /openapi.json`, so a
//! gateway team, code generators and the conformance suite read the very document the simulator
//! and the client are tested against (`tests/contract.rs`).

use std::sync::OnceLock;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use crate::devcenter::wire;

/// The signed contract paths the simulator routes; `tests/contract.rs` holds them equal to the
/// document's paths.
pub const CONTRACT_PATHS: [&str; 3] = [
    wire::APPLICATION_INQUIRY_PATH,
    wire::GENERATE_URL_PATH,
    wire::AUTHORIZATION_INQUIRY_PATH,
];

/// `docs/devcenter-api/openapi.yaml`, compiled in so the binary serves the document it was
/// built with.
pub const OPENAPI_YAML: &str = include_str!("../../docs/devcenter-api/openapi.yaml");

/// The document as JSON, converted once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    // The conversion of this constant is checked by the unit test below, so it cannot fail here.
    DOCUMENT.get_or_init(|| {
        serde_saphyr::from_str(OPENAPI_YAML).expect("docs/devcenter-api/openapi.yaml is YAML")
    })
}

pub(crate) async fn json() -> Response {
    axum::Json(document()).into_response()
}

pub(crate) async fn yaml() -> Response {
    let mut response = OPENAPI_YAML.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_converts_to_openapi_3_1_json() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        // Quoted in the YAML so they stay strings: JSON object keys and 19-digit IDs.
        let generate = &document["paths"]["/devcenter/api/v1/authorizations/generateUrl"]["post"];
        let example = &generate["requestBody"]["content"]["application/json"]["examples"]["invite"];
        assert_eq!(example["value"]["acquirerId"], "1022188000000000001");
        assert!(generate["responses"]["200"].is_object());
    }
}
