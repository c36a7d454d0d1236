//! The JSON bodies of the Developer Center API, shared by the client and the simulator.
//!
//! Every response carries a [`ResultInfo`]; the rest of a response body is only present when the
//! result is S, so a receiver reads [`ResultResponse`] first and the full response only on success.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::Product;

/// Path of the application inquiry: who the caller is and what it has integrated.
pub const APPLICATION_INQUIRY_PATH: &str = "/devcenter/api/v1/application/inquiry";
/// Path of authorization URL generation.
pub const GENERATE_URL_PATH: &str = "/devcenter/api/v1/authorizations/generateUrl";
/// Path of the authorization list (searchable, paginated).
pub const AUTHORIZATION_INQUIRY_PATH: &str = "/devcenter/api/v1/authorizations/inquiry";

/// Whether a call succeeded, failed for good, or has an unknown outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultStatus {
    /// Success.
    S,
    /// Failed; retrying the same request cannot succeed.
    F,
    /// Unknown outcome; retry the same request (same request ID) with backoff.
    U,
}

/// The result codes of the contract; codes from a newer server are kept verbatim in `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ResultCode {
    /// The call succeeded.
    Success,
    /// The request body or headers are invalid.
    ParamIllegal,
    /// The Client-Id is unknown.
    InvalidClient,
    /// The request signature does not verify with the application's public key.
    InvalidSignature,
    /// The caller's role may not perform this call (only Developer Admin may).
    AccessDenied,
    /// Some requested products are not integrated in the application.
    ProductNotIntegrated,
    /// Some requested products are not in the ACQP's contract with Alipay+.
    ProductNotInContract,
    /// The acquirer ID is unknown.
    AcquirerNotFound,
    /// The request ID was used before with a different body.
    RepeatReqInconsistent,
    /// The server hit an unexpected error; the outcome is unknown.
    UnknownException,
    /// The caller is being throttled.
    RequestTrafficExceedLimit,
    /// A code this version does not know.
    Other(String),
}

impl ResultCode {
    /// The code as sent on the wire, e.g. `PRODUCT_NOT_INTEGRATED`.
    pub fn as_str(&self) -> &str {
        match self {
            ResultCode::Success => "SUCCESS",
            ResultCode::ParamIllegal => "PARAM_ILLEGAL",
            ResultCode::InvalidClient => "INVALID_CLIENT",
            ResultCode::InvalidSignature => "INVALID_SIGNATURE",
            ResultCode::AccessDenied => "ACCESS_DENIED",
            ResultCode::ProductNotIntegrated => "PRODUCT_NOT_INTEGRATED",
            ResultCode::ProductNotInContract => "PRODUCT_NOT_IN_CONTRACT",
            ResultCode::AcquirerNotFound => "ACQUIRER_NOT_FOUND",
            ResultCode::RepeatReqInconsistent => "REPEAT_REQ_INCONSISTENT",
            ResultCode::UnknownException => "UNKNOWN_EXCEPTION",
            ResultCode::RequestTrafficExceedLimit => "REQUEST_TRAFFIC_EXCEED_LIMIT",
            ResultCode::Other(code) => code,
        }
    }

    /// The status the contract pairs with this code; an unknown code is U, because retrying is
    /// the only safe reading of an outcome we cannot interpret.
    pub fn status(&self) -> ResultStatus {
        match self {
            ResultCode::Success => ResultStatus::S,
            ResultCode::UnknownException
            | ResultCode::RequestTrafficExceedLimit
            | ResultCode::Other(_) => ResultStatus::U,
            _ => ResultStatus::F,
        }
    }
}

impl From<String> for ResultCode {
    fn from(code: String) -> Self {
        match code.as_str() {
            "SUCCESS" => ResultCode::Success,
            "PARAM_ILLEGAL" => ResultCode::ParamIllegal,
            "INVALID_CLIENT" => ResultCode::InvalidClient,
            "INVALID_SIGNATURE" => ResultCode::InvalidSignature,
            "ACCESS_DENIED" => ResultCode::AccessDenied,
            "PRODUCT_NOT_INTEGRATED" => ResultCode::ProductNotIntegrated,
            "PRODUCT_NOT_IN_CONTRACT" => ResultCode::ProductNotInContract,
            "ACQUIRER_NOT_FOUND" => ResultCode::AcquirerNotFound,
            "REPEAT_REQ_INCONSISTENT" => ResultCode::RepeatReqInconsistent,
            "UNKNOWN_EXCEPTION" => ResultCode::UnknownException,
            "REQUEST_TRAFFIC_EXCEED_LIMIT" => ResultCode::RequestTrafficExceedLimit,
            _ => ResultCode::Other(code),
        }
    }
}

impl From<ResultCode> for String {
    fn from(code: ResultCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `result` object in every response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// What happened, e.g. `PRODUCT_NOT_INTEGRATED`.
    pub result_code: ResultCode,
    /// S, F or U.
    pub result_status: ResultStatus,
    /// A human-readable explanation, e.g. naming the offending products.
    pub result_message: String,
}

impl ResultInfo {
    /// The `SUCCESS`/S/`success` result.
    pub fn success() -> Self {
        Self::of(ResultCode::Success, "success")
    }

    /// A result with the status the contract pairs with `code`.
    pub fn of(code: ResultCode, message: impl Into<String>) -> Self {
        Self {
            result_status: code.status(),
            result_code: code,
            result_message: message.into(),
        }
    }
}

/// A body with only a result: every F or U response, and the notification acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultResponse {
    /// The outcome.
    pub result: ResultInfo,
}

/// The environment an application's Client ID belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Environment {
    /// Sandbox: Client IDs start with `SANDBOX_`.
    Sandbox,
    /// Production.
    Production,
}

/// The Developer Center role of the credentials' user; only `DeveloperAdmin` may invite ACQPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// May generate authorization URLs and see authorization status.
    DeveloperAdmin,
    /// May develop, not authorize.
    Developer,
    /// May onboard merchants, not authorize.
    MerchantOnboarding,
}

impl Role {
    /// The wire spelling, as status and messages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeveloperAdmin => "DeveloperAdmin",
            Role::Developer => "Developer",
            Role::MerchantOnboarding => "MerchantOnboarding",
        }
    }
}

/// `POST /application/inquiry` takes an empty object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationInquiryRequest {}

/// The application behind the Client ID, as the Developer Center sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInquiryResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// The application's display name.
    pub application_name: String,
    /// Sandbox or Production.
    pub environment: Environment,
    /// The caller's role.
    pub role: Role,
    /// Products the application has integrated (and so may ask ACQPs to authorize).
    pub integrated_products: Vec<Product>,
    /// Whether the application passed sandbox acceptance testing ("before you begin"): a
    /// Production application that has not may not invite ACQPs. Optional, as every field
    /// added to the contract: a gateway that does not report it holds nothing back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_acceptance_passed: Option<bool>,
}

impl ApplicationInquiryResponse {
    /// Whether this is a Production application still waiting for sandbox acceptance, which
    /// may not invite ACQPs yet.
    pub fn sandbox_acceptance_pending(&self) -> bool {
        self.environment == Environment::Production && self.sandbox_acceptance_passed == Some(false)
    }
}

/// `POST /authorizations/generateUrl`: ask for an authorization URL for one ACQP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateUrlRequest {
    /// Idempotency key: the same ID with the same body always yields the same URL.
    pub authorization_request_id: String,
    /// The ACQP to invite.
    pub acquirer_id: String,
    /// The full scope to authorize (not a delta).
    pub products: Vec<Product>,
}

/// The URL the ACQP opens to grant the authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateUrlResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// The consent page's URL.
    pub authorization_url: String,
    /// When the URL stops working.
    pub expiry_time: Timestamp,
}

/// Whether an ACQP's authorization is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthorizationStatus {
    /// Granted and in force; the agent token is valid.
    Active,
    /// Cancelled by the ACQP.
    Inactive,
}

/// `POST /authorizations/inquiry`: one page of the authorization list, optionally filtered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInquiryRequest {
    /// Only these ACQPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_ids: Option<Vec<String>>,
    /// Only ACQPs whose name contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_name: Option<String>,
    /// Only authorizations in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AuthorizationStatus>,
    /// Records per page.
    pub page_size: u32,
    /// The page to return, counting from 1.
    pub page_number: u32,
}

/// One page of authorizations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInquiryResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// This page's records.
    pub authorizations: Vec<AuthorizationRecord>,
    /// How many records match the filter across all pages.
    pub total_count: u64,
}

/// One ACQP's authorization of this application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRecord {
    /// The ACQP's ID.
    pub acquirer_id: String,
    /// The ACQP's name.
    pub acquirer_name: String,
    /// Active, or Inactive once the ACQP cancelled.
    pub status: AuthorizationStatus,
    /// The products granted by the latest authorization.
    pub products: Vec<Product>,
    /// The token of the latest grant, sent as `Agent-Token` on the ACQP's behalf.
    pub agent_token: AgentToken,
    /// When the latest grant happened.
    pub authorized_time: Timestamp,
    /// When the record last changed (grant or cancellation).
    pub update_time: Timestamp,
}

/// The kind of a pushed notification; the contract defines one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyType {
    /// An ACQP granted or cancelled an authorization.
    #[serde(rename = "AUTHORIZATION_STATUS_CHANGED")]
    AuthorizationStatusChanged,
}

/// A status change pushed by the Developer Center; it never carries the token, so the receiver
/// refreshes through the inquiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Always `AUTHORIZATION_STATUS_CHANGED`.
    pub notify_type: NotifyType,
    /// The ACQP whose authorization changed.
    pub acquirer_id: String,
    /// Its new status.
    pub status: AuthorizationStatus,
    /// When it changed.
    pub update_time: Timestamp,
}

/// An ACQP's Agent-Token: readable only through [`AgentToken::expose`], printed as a fingerprint.
///
/// It serializes as the bare token because the wire carries it that way; never serialize it
/// anywhere else (status, events, logs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentToken(String);

impl AgentToken {
    /// Wraps a token value.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Agent-Token` header or the token Secret, and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 16 hex digits of the token's SHA-256: enough to tell tokens apart
    /// in status and logs, useless for recovering the token.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        format!("sha256:{}", hex::encode(&digest.as_ref()[..8]))
    }
}

impl fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentToken({})", self.fingerprint())
    }
}

impl fmt::Display for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn result_codes_round_trip_and_keep_unknown_codes() {
        let codes = [
            "SUCCESS",
            "PRODUCT_NOT_IN_CONTRACT",
            "REQUEST_TRAFFIC_EXCEED_LIMIT",
            "NEW_CODE",
        ];
        for code in codes {
            let parsed: ResultCode = serde_json::from_value(json!(code)).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), json!(code));
        }
        assert_eq!(
            ResultCode::from("NEW_CODE".to_owned()),
            ResultCode::Other("NEW_CODE".into())
        );
    }

    #[test]
    fn result_info_takes_the_contract_status_of_its_code() {
        let body = serde_json::to_value(ResultInfo::of(ResultCode::AccessDenied, "no")).unwrap();
        let expected =
            json!({"resultCode": "ACCESS_DENIED", "resultStatus": "F", "resultMessage": "no"});
        assert_eq!(body, expected);
        assert_eq!(ResultInfo::success().result_status, ResultStatus::S);
        let throttled = ResultInfo::of(ResultCode::RequestTrafficExceedLimit, "slow down");
        assert_eq!(throttled.result_status, ResultStatus::U);
        assert_eq!(
            ResultInfo::of(ResultCode::Other("X".into()), "?").result_status,
            ResultStatus::U
        );
    }

    #[test]
    fn inquiry_request_omits_absent_filters() {
        let request = AuthorizationInquiryRequest {
            acquirer_ids: None,
            acquirer_name: Some("Acme".into()),
            status: Some(AuthorizationStatus::Active),
            page_size: 50,
            page_number: 2,
        };
        let expected =
            json!({"acquirerName": "Acme", "status": "Active", "pageSize": 50, "pageNumber": 2});
        assert_eq!(serde_json::to_value(&request).unwrap(), expected);
    }

    #[test]
    fn authorization_record_reads_the_contract_shape() {
        let body = json!({
            "acquirerId": "1022188000000000001",
            "acquirerName": "Acme Acquiring",
            "status": "Active",
            "products": ["CashierPayment", "AutoDebit"],
            "agentToken": "tok-secret",
            "authorizedTime": "2026-11-27T04:08:56Z",
            "updateTime": "2026-11-27T12:08:56+08:00",
        });
        let record: AuthorizationRecord = serde_json::from_value(body).unwrap();
        assert_eq!(
            record.products,
            [Product::CashierPayment, Product::AutoDebit]
        );
        assert_eq!(record.agent_token.expose(), "tok-secret");
        assert_eq!(record.authorized_time, record.update_time);
    }

    #[test]
    fn notification_has_the_contract_type_name() {
        let notification = Notification {
            notify_type: NotifyType::AuthorizationStatusChanged,
            acquirer_id: "1022188000000000002".into(),
            status: AuthorizationStatus::Inactive,
            update_time: "2026-11-27T04:08:56Z".parse().unwrap(),
        };
        let expected = json!({
            "notifyType": "AUTHORIZATION_STATUS_CHANGED",
            "acquirerId": "1022188000000000002",
            "status": "Inactive",
            "updateTime": "2026-11-27T04:08:56Z",
        });
        assert_eq!(serde_json::to_value(&notification).unwrap(), expected);
    }

    #[test]
    fn agent_token_prints_only_its_fingerprint() {
        let token = AgentToken::new("tok-secret");
        // sha256("tok-secret"), first 8 bytes; computed independently with `sha256sum`.
        let fingerprint = "sha256:b45db811118693be";
        assert_eq!(token.fingerprint(), fingerprint);
        assert_eq!(format!("{token:?}"), format!("AgentToken({fingerprint})"));
        assert_eq!(token.to_string(), format!("AgentToken({fingerprint})"));
        let record_debug = format!("{:?}", Some(&token));
        assert!(!record_debug.contains("tok-secret"), "{record_debug}");
        assert_eq!(serde_json::to_value(&token).unwrap(), json!("tok-secret"));
    }
}
