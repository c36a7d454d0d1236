//! The signed HTTP client for the Developer Center API: the retrying caller, and the checks on
//! pushed notifications.
//!
//! Every call signs its body, verifies the signed response, and retries outcomes that are
//! unknown (U results, HTTP 5xx and 429, timeouts, broken connections) with the very same body,
//! so a retried `generateUrl` keeps its `authorizationRequestId` and cannot mint a second URL.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use rand::Rng as _;
use reqwest::{
    StatusCode, Url,
    header::{CONTENT_TYPE, HeaderMap, HeaderValue},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::Instant;

use super::{
    Error, authenticity,
    limits::{self, ListBudget},
    policy::{self, EndpointPolicy},
    rate::{RateLimit, RateLimiter},
    replay::SeenNotifications,
    signing::{self, SigningKey, VerifyingKey},
    wire::{
        APPLICATION_INQUIRY_PATH, AUTHORIZATION_INQUIRY_PATH, ApplicationInquiryRequest,
        ApplicationInquiryResponse, AuthorizationInquiryRequest, AuthorizationInquiryResponse,
        AuthorizationRecord, AuthorizationStatus, GENERATE_URL_PATH, GenerateUrlRequest,
        GenerateUrlResponse, Notification, ResultInfo, ResultResponse, ResultStatus,
    },
};

/// The content type of every body, requests and responses alike.
pub const JSON_UTF8: &str = "application/json; charset=UTF-8";

/// The largest response body the client reads. A full page of 100 records is about 40 KiB; a
/// body past this cannot be an answer to our call (a wrong endpoint, or a hostile one), and
/// reading it whole would let the other end grow the operator's memory without bound.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How to reach and authenticate to one Developer Center application.
#[derive(Debug)]
pub struct ClientConfig {
    /// Base URL of the Developer Center API; the contract's paths are appended to it.
    pub endpoint: Url,
    /// The application's Client ID, e.g. `SANDBOX_ACQP_OPERATOR_DEMO`.
    pub client_id: String,
    /// The TSP private key that signs requests and notification acknowledgements.
    pub signing_key: SigningKey,
    /// The Developer Center public key that responses and notifications must be signed with.
    pub devcenter_key: VerifyingKey,
    /// Limit for one attempt, connection included.
    pub timeout: Duration,
    /// Retries after the first attempt before a call is reported unavailable.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles per retry, with jitter.
    pub retry_base_delay: Duration,
    /// Cap on the backoff between two attempts.
    pub retry_max_delay: Duration,
    /// How fast this client may send, retries included.
    pub rate_limit: RateLimit,
    /// Where the client may connect. [`ClientConfig::new`] allows any address, for a client
    /// aimed at an endpoint its user chose; the operator, which serves many tenants, sets the
    /// policy of its `--endpoint-allowlist`.
    pub endpoint_policy: Arc<EndpointPolicy>,
    /// Refuse plain HTTP (Production applications: TLS protects the tokens in the answers).
    pub https_only: bool,
}

impl ClientConfig {
    /// A configuration with production-sensible retry, timeout and rate-limit defaults.
    pub fn new(
        endpoint: Url,
        client_id: impl Into<String>,
        signing_key: SigningKey,
        devcenter_key: VerifyingKey,
    ) -> Self {
        Self {
            endpoint,
            client_id: client_id.into(),
            signing_key,
            devcenter_key,
            timeout: Duration::from_secs(10),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(5),
            rate_limit: RateLimit::default(),
            endpoint_policy: Arc::new(EndpointPolicy::any_address()),
            https_only: false,
        }
    }
}

/// Which authorizations [`DevCenterClient::list_all_authorizations`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationFilter {
    /// Only these ACQPs.
    pub acquirer_ids: Option<Vec<String>>,
    /// Only ACQPs whose name contains this.
    pub acquirer_name: Option<String>,
    /// Only authorizations in this status.
    pub status: Option<AuthorizationStatus>,
}

/// A Developer Center API client; cheap to clone, and clones share the rate limit.
#[derive(Clone, Debug)]
pub struct DevCenterClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    /// The endpoint without a trailing slash, so a path can be appended verbatim.
    base_url: String,
    /// The URL path under which the contract's paths live; it is part of the signed content.
    base_path: String,
    limiter: RateLimiter,
    seen: SeenNotifications,
}

/// Why one attempt did not produce a verified S response.
enum AttemptError {
    /// The outcome is unknown; the same request may be sent again.
    Transient(String),
    /// Sending it again cannot help.
    Final(Error),
}

impl DevCenterClient {
    /// Builds a client; fails only if the HTTP stack cannot be set up (no TLS crypto provider).
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let http = config
            .endpoint_policy
            .http_client(config.timeout, config.https_only)
            .map_err(|e| Error::Setup(describe(&e)))?;
        let base_url = config.endpoint.as_str().trim_end_matches('/').to_owned();
        let base_path = config.endpoint.path().trim_end_matches('/').to_owned();
        let limiter = RateLimiter::new(config.rate_limit);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                base_url,
                base_path,
                limiter,
                seen: SeenNotifications::default(),
            }),
        })
    }

    /// The application behind the Client ID: name, environment, the caller's role, products.
    pub async fn inquire_application(&self) -> Result<ApplicationInquiryResponse, Error> {
        self.call(APPLICATION_INQUIRY_PATH, &ApplicationInquiryRequest {})
            .await
    }

    /// Asks for an authorization URL; retries reuse `request`, so its ID makes this idempotent.
    pub async fn generate_url(
        &self,
        request: &GenerateUrlRequest,
    ) -> Result<GenerateUrlResponse, Error> {
        self.call(GENERATE_URL_PATH, request).await
    }

    /// One page of the authorization list.
    pub async fn inquire_authorizations(
        &self,
        request: &AuthorizationInquiryRequest,
    ) -> Result<AuthorizationInquiryResponse, Error> {
        self.call(AUTHORIZATION_INQUIRY_PATH, request).await
    }

    /// Every authorization matching `filter`, fetched `page_size` records per call.
    ///
    /// Pages are read one after another, not as a snapshot: a record that changes meanwhile may
    /// be missed or seen twice, which the next poll corrects.
    pub async fn list_all_authorizations(
        &self,
        filter: &AuthorizationFilter,
        page_size: NonZeroU32,
    ) -> Result<Vec<AuthorizationRecord>, Error> {
        let mut records = Vec::new();
        self.for_each_authorization_page(filter, page_size, |page| {
            records.extend(page);
            Ok(())
        })
        .await?;
        Ok(records)
    }

    /// [`DevCenterClient::list_all_authorizations`], handing each page's records to `visit` as
    /// it arrives, so a caller that folds them into a structure of its own never holds the whole
    /// list besides it; an error from `visit` ends the list with that error. After an error,
    /// `visit` has seen the pages before it. Every page is checked against
    /// [`super::limits`] first: past a bound the list ends with [`Error::OverLimit`].
    pub async fn for_each_authorization_page(
        &self,
        filter: &AuthorizationFilter,
        page_size: NonZeroU32,
        mut visit: impl FnMut(Vec<AuthorizationRecord>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut seen = 0u64;
        let mut budget = ListBudget::default();
        for page_number in 1.. {
            let request = AuthorizationInquiryRequest {
                acquirer_ids: filter.acquirer_ids.clone(),
                acquirer_name: filter.acquirer_name.clone(),
                status: filter.status,
                page_size: page_size.get(),
                page_number,
            };
            let page = self.inquire_authorizations(&request).await?;
            // Checked before the page is handed on: past a bound, nothing of it is kept.
            budget
                .admit(page_size.get(), page.total_count, &page.authorizations)
                .map_err(|bound| Error::OverLimit {
                    path: AUTHORIZATION_INQUIRY_PATH,
                    bound,
                })?;
            let short_page = page.authorizations.len() < page_size.get() as usize;
            seen += page.authorizations.len() as u64;
            visit(page.authorizations)?;
            // A short page ends the list even if totalCount grew meanwhile; the budget ends
            // it against a server whose totalCount never stops growing.
            if short_page || seen >= page.total_count {
                break;
            }
        }
        Ok(())
    }

    /// Checks a pushed notification received at `path` and returns its content.
    ///
    /// It must be signed by the Developer Center for this Client-Id and path, and its signed
    /// `Request-Time` must lie within [`MAX_CLOCK_SKEW`] of our clock, so a captured
    /// notification cannot be replayed later. A replay inside that window passes here; the receiver
    /// tells it apart with [`Self::first_delivery`].
    pub fn verify_notification(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Notification, Error> {
        authenticity::verify(
            &self.inner.config,
            path,
            signing::REQUEST_TIME_HEADER,
            headers,
            body,
        )?;
        let notification: Notification =
            serde_json::from_slice(body).map_err(|e| Error::Protocol {
                path: path.to_owned(),
                reason: format!("the notification is not valid: {e}"),
            })?;
        // The ID is remembered until the next poll: bounded like the IDs of listed records.
        let id_bytes = notification.acquirer_id.len();
        if id_bytes > limits::MAX_ACQUIRER_ID_BYTES {
            return Err(Error::Protocol {
                path: path.to_owned(),
                reason: format!(
                    "the notification's acquirerId is {id_bytes} bytes, over {}",
                    limits::MAX_ACQUIRER_ID_BYTES
                ),
            });
        }
        Ok(notification)
    }

    /// The key answers and notifications must be signed with.
    pub fn devcenter_key(&self) -> &VerifyingKey {
        &self.inner.config.devcenter_key
    }

    /// Whether a notification that [`Self::verify_notification`] accepted arrives for the first
    /// time (within the freshness window), judged by its signature. A duplicate should still be
    /// acknowledged, as the sender may have lost the first answer, but needs no new refresh:
    /// so replaying a captured notification cannot make the operator list again and again.
    pub fn first_delivery(&self, headers: &HeaderMap) -> bool {
        let signature = headers
            .get(signing::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.inner.seen.first_time(signature)
    }

    /// The signed success acknowledgement for a notification received at `path`.
    pub fn acknowledge_notification(&self, path: &str) -> (HeaderMap, Vec<u8>) {
        let body = serde_json::to_vec(&ResultResponse {
            result: ResultInfo::success(),
        })
        .expect("a result serializes");
        let config = &self.inner.config;
        let time = signing::now();
        let signature = signing::sign(&config.signing_key, path, &config.client_id, &time, &body);
        let headers = self.signed_headers(signing::RESPONSE_TIME_HEADER, &time, &signature);
        (headers, body)
    }

    /// Runs a call's checks on one received response without the network, as the fuzz targets
    /// in `fuzz/` need: `kind % 3` picks the call (application inquiry, generateUrl,
    /// authorization inquiry). An unknown-outcome result is reported as `Unavailable`.
    #[doc(hidden)]
    pub fn check_received_response(
        &self,
        kind: u8,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Error> {
        fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<(), Error> {
            serde_json::from_slice::<T>(body)
                .map(drop)
                .map_err(|e| Error::Protocol {
                    path: path.to_owned(),
                    reason: format!("unexpected success body: {e}"),
                })
        }
        let path = [
            APPLICATION_INQUIRY_PATH,
            GENERATE_URL_PATH,
            AUTHORIZATION_INQUIRY_PATH,
        ][usize::from(kind % 3)];
        let signed_path = format!("{}{path}", self.inner.base_path);
        let body = match self.check_response(path, &signed_path, status, headers, body) {
            Ok(body) => body,
            Err(AttemptError::Final(error)) => return Err(error),
            Err(AttemptError::Transient(last)) => {
                return Err(Error::Unavailable {
                    path,
                    attempts: 1,
                    last,
                });
            }
        };
        match kind % 3 {
            0 => parse::<ApplicationInquiryResponse>(path, &body),
            1 => parse::<GenerateUrlResponse>(path, &body),
            _ => parse::<AuthorizationInquiryResponse>(path, &body),
        }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &'static str,
        request: &Req,
    ) -> Result<Resp, Error> {
        // Serialized once: every retry sends these exact bytes.
        let body = serde_json::to_vec(request).expect("wire requests serialize");
        let config = &self.inner.config;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = Instant::now();
            let outcome = self.attempt(path, &body).await;
            let latency_ms = started.elapsed().as_millis();
            match outcome {
                Ok(response) => {
                    tracing::debug!(
                        path,
                        attempts,
                        latency_ms,
                        "Developer Center call succeeded"
                    );
                    return serde_json::from_slice(&response).map_err(|e| Error::Protocol {
                        path: path.to_owned(),
                        reason: format!("unexpected success body: {e}"),
                    });
                }
                Err(AttemptError::Final(error)) => {
                    tracing::debug!(path, attempts, latency_ms, %error, "call failed");
                    return Err(error);
                }
                Err(AttemptError::Transient(last)) if attempts > config.max_retries => {
                    return Err(Error::Unavailable {
                        path,
                        attempts,
                        last,
                    });
                }
                Err(AttemptError::Transient(reason)) => {
                    let delay = backoff(config, attempts);
                    tracing::debug!(path, attempts, latency_ms, %reason, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Sends one signed request and returns the verified body of an S response.
    async fn attempt(&self, path: &'static str, body: &[u8]) -> Result<Vec<u8>, AttemptError> {
        let Inner {
            config,
            http,
            base_url,
            base_path,
            limiter,
            seen: _,
        } = &*self.inner;
        // Before anything is signed or sent: a scheme or an address the policy refuses.
        config
            .endpoint_policy
            .check_url(&config.endpoint, config.https_only)
            .map_err(|refusal| {
                AttemptError::Final(Error::NotAllowed {
                    path,
                    reason: refusal.to_string(),
                })
            })?;
        limiter.acquire().await;
        let signed_path = format!("{base_path}{path}");
        let time = signing::now();
        let signature = signing::sign(
            &config.signing_key,
            &signed_path,
            &config.client_id,
            &time,
            body,
        );
        let response = http
            .post(format!("{base_url}{path}"))
            .headers(self.signed_headers(signing::REQUEST_TIME_HEADER, &time, &signature))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| match policy::refusal_in(&e) {
                Some(refusal) => AttemptError::Final(Error::NotAllowed {
                    path,
                    reason: refusal.to_string(),
                }),
                None => AttemptError::Transient(describe(&e)),
            })?;
        let status = response.status();
        // Never followed: a redirect would carry the signed request to a URL no one checked.
        if status.is_redirection() {
            return Err(AttemptError::Final(Error::Protocol {
                path: signed_path,
                reason: format!(
                    "HTTP {status}: the endpoint answers with a redirect, which the operator \
                     never follows; set spec.endpoint to the URL that serves the API itself"
                ),
            }));
        }
        // Load balancers answer these without a signature; they say nothing about our request.
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(AttemptError::Transient(format!("HTTP {status}")));
        }
        let headers = response.headers().clone();
        let body = read_capped(response, &signed_path).await?;
        self.check_response(path, &signed_path, status, &headers, &body)
    }

    /// Authenticates a response and reads its result: the body of an S result, or why not.
    ///
    /// Pure (no I/O), so the fuzz targets in `fuzz/` can drive it with arbitrary input.
    fn check_response(
        &self,
        path: &'static str,
        signed_path: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, AttemptError> {
        let config = &self.inner.config;
        authenticity::verify(
            config,
            signed_path,
            signing::RESPONSE_TIME_HEADER,
            headers,
            body,
        )
        .map_err(|error| AttemptError::Final(authenticity::with_status(error, status)))?;
        let ResultResponse { result } = serde_json::from_slice(body).map_err(|e| {
            AttemptError::Final(Error::Protocol {
                path: signed_path.to_owned(),
                reason: format!("HTTP {status} without a result: {e}"),
            })
        })?;
        tracing::debug!(path, code = %result.result_code, status = ?result.result_status, "result");
        match result.result_status {
            ResultStatus::S => Ok(body.to_vec()),
            ResultStatus::F => Err(AttemptError::Final(Error::Rejected {
                path,
                code: result.result_code,
                message: result.result_message,
            })),
            ResultStatus::U => Err(AttemptError::Transient(format!(
                "{}: {}",
                result.result_code, result.result_message
            ))),
        }
    }

    fn signed_headers(&self, time_header: &'static str, time: &str, signature: &str) -> HeaderMap {
        // Client IDs, our times and Base64 signatures are plain ASCII; a Client ID that is not
        // cannot have been signed either, so failing loudly here is the honest outcome.
        let value = |v: &str| HeaderValue::from_str(v).expect("header values are ASCII");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        headers.insert(
            signing::CLIENT_ID_HEADER,
            value(&self.inner.config.client_id),
        );
        headers.insert(time_header, value(time));
        headers.insert(signing::SIGNATURE_HEADER, value(signature));
        headers
    }
}

/// Reads a response body, refusing one larger than [`MAX_RESPONSE_BYTES`] as soon as it is
/// known to be (from Content-Length, or while streaming), so the rest is never buffered.
async fn read_capped(
    mut response: reqwest::Response,
    signed_path: &str,
) -> Result<Vec<u8>, AttemptError> {
    let too_large = || {
        AttemptError::Final(Error::Protocol {
            path: signed_path.to_owned(),
            reason: format!("the response body is larger than {MAX_RESPONSE_BYTES} bytes"),
        })
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AttemptError::Transient(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
/// many clients spread out while each still waits a predictable minimum.
fn backoff(config: &ClientConfig, attempts: u32) -> Duration {
    let delay = crate::backoff::doubling(config.retry_base_delay, attempts, config.retry_max_delay);
    delay / 2 + delay.mul_f64(rand::rng().random_range(0.0..=0.5))
}

/// What kind of transport failure `error` is, in words a tenant may read (they end up in the
/// application's Ready message): the kind, never what the network said, so the operator cannot
/// serve as a probe of addresses and ports. The whole chain is logged at debug level.
fn describe(error: &reqwest::Error) -> String {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain = format!("{chain}: {cause}");
        source = cause.source();
    }
    tracing::debug!(error = %chain, "Developer Center transport error");
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect to the endpoint"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while the answer was read"
    } else if error.is_builder() {
        "the HTTP client cannot be set up"
    } else {
        "the request failed (no answer)"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcenter::wire::{NotifyType, ResultCode};

    const NOTIFY_PATH: &str = "/notify/acqp/demo";

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/examples/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn config() -> ClientConfig {
        let signing_key = SigningKey::from_pem("tsp", &key_file("tsp-private.pem")).unwrap();
        let devcenter_key =
            VerifyingKey::from_pem("devcenter", &key_file("devcenter-public.pem")).unwrap();
        let endpoint = Url::parse("http://127.0.0.1:9/").unwrap();
        ClientConfig::new(
            endpoint,
            "SANDBOX_ACQP_OPERATOR_DEMO",
            signing_key,
            devcenter_key,
        )
    }

    fn client() -> DevCenterClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        DevCenterClient::new(config()).unwrap()
    }

    /// A notification as the Developer Center would push it, signed with `key_file`'s key.
    fn notification(key_file_name: &str, client_id: &str) -> (HeaderMap, Vec<u8>) {
        let key = SigningKey::from_pem("sender", &key_file(key_file_name)).unwrap();
        let body = serde_json::json!({
            "notifyType": "AUTHORIZATION_STATUS_CHANGED",
            "acquirerId": "1022188000000000001",
            "status": "Inactive",
            "updateTime": "2026-11-27T04:08:56Z",
        })
        .to_string()
        .into_bytes();
        let time = signing::now();
        let signature = signing::sign(&key, NOTIFY_PATH, client_id, &time, &body);
        let mut headers = HeaderMap::new();
        headers.insert(signing::CLIENT_ID_HEADER, client_id.parse().unwrap());
        headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
        headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        (headers, body)
    }

    #[test]
    fn signed_notifications_are_accepted() {
        let (headers, body) = notification("devcenter-private.pem", "SANDBOX_ACQP_OPERATOR_DEMO");
        let notification = client()
            .verify_notification(NOTIFY_PATH, &headers, &body)
            .unwrap();
        assert_eq!(
            notification.notify_type,
            NotifyType::AuthorizationStatusChanged
        );
        assert_eq!(notification.status, AuthorizationStatus::Inactive);
    }

    #[test]
    fn forged_or_misaddressed_notifications_are_unverified() {
        let client = client();
        let reason = |(headers, body): (HeaderMap, Vec<u8>), path: &str| match client
            .verify_notification(path, &headers, &body)
            .unwrap_err()
        {
            Error::Unverified { reason, .. } => reason,
            other => panic!("expected Unverified, got {other:?}"),
        };
        let forged = notification("tsp-private.pem", "SANDBOX_ACQP_OPERATOR_DEMO");
        assert!(reason(forged, NOTIFY_PATH).starts_with("signature does not match"));
        let replayed_elsewhere =
            notification("devcenter-private.pem", "SANDBOX_ACQP_OPERATOR_DEMO");
        assert!(reason(replayed_elsewhere, "/other").starts_with("signature does not match"));
        let other_app = notification("devcenter-private.pem", "SANDBOX_ACQP_OPERATOR_VIEWER");
        let expected = r#"it is addressed to Client-Id "SANDBOX_ACQP_OPERATOR_VIEWER""#;
        assert_eq!(reason(other_app, NOTIFY_PATH), expected);
        let (mut headers, body) =
            notification("devcenter-private.pem", "SANDBOX_ACQP_OPERATOR_DEMO");
        headers.remove(signing::SIGNATURE_HEADER);
        assert_eq!(reason((headers, body), NOTIFY_PATH), "no Signature header");
    }

    /// The checks the fuzz targets drive are the ones a call runs: the outcome follows the
    /// signed result, and the signed path includes the endpoint's own path.
    #[test]
    fn received_responses_are_judged_like_calls() {
        let mut config = config();
        config.endpoint = Url::parse("http://127.0.0.1:9/gw/").unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = DevCenterClient::new(config).unwrap();
        let key = SigningKey::from_pem("dc", &key_file("devcenter-private.pem")).unwrap();
        let answer = |path: &str, result: ResultInfo| {
            let body = serde_json::to_vec(&ResultResponse { result }).unwrap();
            let time = signing::now();
            let signature = signing::sign(&key, path, "SANDBOX_ACQP_OPERATOR_DEMO", &time, &body);
            let mut headers = HeaderMap::new();
            headers.insert(
                signing::CLIENT_ID_HEADER,
                "SANDBOX_ACQP_OPERATOR_DEMO".parse().unwrap(),
            );
            headers.insert(signing::RESPONSE_TIME_HEADER, time.parse().unwrap());
            headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
            (headers, body)
        };
        let path = format!("/gw{GENERATE_URL_PATH}");
        let check = |(headers, body): (HeaderMap, Vec<u8>)| {
            client.check_received_response(1, StatusCode::OK, &headers, &body)
        };
        let rejected = check(answer(
            &path,
            ResultInfo::of(ResultCode::AccessDenied, "no"),
        ));
        assert_eq!(rejected.unwrap_err().metric_label(), "rejected");
        let unknown = check(answer(
            &path,
            ResultInfo::of(ResultCode::UnknownException, "?"),
        ));
        assert!(unknown.unwrap_err().is_retryable());
        // S, but without the URL fields.
        let shapeless = check(answer(&path, ResultInfo::success()));
        assert_eq!(shapeless.unwrap_err().metric_label(), "protocol");
        // Signed for the bare contract path, not the one under the endpoint's `/gw`.
        let misplaced = check(answer(GENERATE_URL_PATH, ResultInfo::success()));
        assert_eq!(misplaced.unwrap_err().metric_label(), "unverified");
    }

    #[test]
    fn acknowledgements_are_signed_success_results() {
        let (headers, body) = client().acknowledge_notification(NOTIFY_PATH);
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap();
        let tsp_public = VerifyingKey::from_pem("tsp", &key_file("tsp-public.pem")).unwrap();
        let verified = signing::verify(
            &tsp_public,
            NOTIFY_PATH,
            header(signing::CLIENT_ID_HEADER),
            header(signing::RESPONSE_TIME_HEADER),
            &body,
            header(signing::SIGNATURE_HEADER),
        );
        assert_eq!(verified, Ok(()));
        assert_eq!(header("content-type"), JSON_UTF8);
        let ack: ResultResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(ack.result, ResultInfo::success());
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = config();
        for attempts in 1..=10 {
            let full =
                (config.retry_base_delay * 2u32.pow(attempts - 1)).min(config.retry_max_delay);
            let delay = backoff(&config, attempts);
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempts}: {delay:?} vs {full:?}"
            );
        }
    }
}
