//! The signed contract endpoints: verify the request, apply faults, dispatch to the
//! state machine, sign the answer.

use std::sync::{Arc, PoisonError};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::devcenter::{
    signing,
    wire::{
        self, ApplicationInquiryRequest, ApplicationInquiryResponse, AuthorizationInquiryRequest,
        AuthorizationInquiryResponse, AuthorizationRecord, GenerateUrlRequest, GenerateUrlResponse,
        ResultCode, ResultInfo, ResultResponse, ResultStatus,
    },
};

use super::{
    Shared, checks,
    faults::Fault,
    server::{DropConnection, MAX_BODY_BYTES},
    state::{InquiryQuery, Refusal},
};

/// The one handler behind the three contract paths.
pub(crate) async fn call(State(sim): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let (parts, body) = request.into_parts();
    let client_id = header_str(&parts.headers, signing::CLIENT_ID_HEADER)
        .filter(|id| checks::well_formed_client_id(id))
        .unwrap_or_default()
        .to_owned();

    let (latency, fault) = sim
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .next_for(&path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let outcome = match fault {
        Fault::UnknownError => Err((
            StatusCode::OK,
            ResultInfo::of(
                ResultCode::UnknownException,
                "injected fault: unknown exception, retry",
            ),
        )),
        Fault::Throttle => Err((
            StatusCode::OK,
            ResultInfo::of(
                ResultCode::RequestTrafficExceedLimit,
                "injected fault: too many requests, retry later",
            ),
        )),
        Fault::Http5xx => {
            sim.stats().record_call(&path, "HTTP_503");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "injected fault: service unavailable\n",
            )
                .into_response();
        }
        Fault::None | Fault::Drop => handle(&sim, &path, &client_id, &parts.headers, body).await,
    };
    let (status, body, result_status) = match outcome {
        Ok(body) => (StatusCode::OK, body, ResultStatus::S),
        Err((status, result)) => {
            let result_status = result.result_status;
            (status, json(&ResultResponse { result }), result_status)
        }
    };
    if fault == Fault::Drop {
        sim.stats().record_call(&path, "DROPPED");
        let mut response = StatusCode::OK.into_response();
        response.extensions_mut().insert(DropConnection);
        return response;
    }
    sim.stats()
        .record_call(&path, &format!("{result_status:?}"));
    signed(&sim, &path, &client_id, status, body)
}

/// A failed call: the HTTP status (200 unless the body was too large) and the result.
type Failure = (StatusCode, ResultInfo);

async fn handle(
    sim: &Arc<Shared>,
    path: &str,
    client_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Failure> {
    let body = read_body(body).await?;
    authenticate(sim, path, client_id, headers, &body)?;
    let refused = |r: Refusal| (StatusCode::OK, refusal_result(r));
    match path {
        wire::APPLICATION_INQUIRY_PATH => {
            let _: ApplicationInquiryRequest = parse(&body)?;
            let state = sim.state();
            let app = state.catalog.application(client_id).expect("authenticated");
            Ok(json(&ApplicationInquiryResponse {
                result: ResultInfo::success(),
                application_name: app.name.clone(),
                environment: app.environment,
                role: app.role,
                integrated_products: app.integrated_products.iter().copied().collect(),
                sandbox_acceptance_passed: Some(state.sandbox_acceptance_passed(client_id)),
            }))
        }
        wire::GENERATE_URL_PATH => {
            let request: GenerateUrlRequest = parse(&body)?;
            let issued = sim
                .state()
                .generate_url(
                    client_id,
                    &request.authorization_request_id,
                    &request.acquirer_id,
                    &request.products,
                    sim.now(),
                )
                .map_err(refused)?;
            if issued.new {
                sim.changed();
                tracing::info!(
                    client_id,
                    acquirer_id = request.acquirer_id,
                    url_id = issued.url.id,
                    "authorization URL issued"
                );
                super::control::schedule_auto_grant(sim, &issued.url.id);
            }
            Ok(json(&GenerateUrlResponse {
                result: ResultInfo::success(),
                authorization_url: format!("{}/consent/{}", sim.public_url, issued.url.id),
                expiry_time: issued.url.expires_at,
            }))
        }
        wire::AUTHORIZATION_INQUIRY_PATH => {
            let request: AuthorizationInquiryRequest = parse(&body)?;
            let query = InquiryQuery {
                acquirer_ids: request.acquirer_ids,
                acquirer_name: request.acquirer_name,
                status: request.status,
                page_size: request.page_size,
                page_number: request.page_number,
            };
            let page = sim.state().inquiry(client_id, &query).map_err(refused)?;
            Ok(json(&AuthorizationInquiryResponse {
                result: ResultInfo::success(),
                total_count: page.total_count as u64,
                authorizations: page
                    .authorizations
                    .into_iter()
                    .map(|(acquirer_name, record)| AuthorizationRecord {
                        acquirer_id: record.acquirer_id,
                        acquirer_name,
                        status: record.status,
                        products: record.products.into_iter().collect(),
                        agent_token: record.agent_token,
                        authorized_time: record.authorized_time,
                        update_time: record.update_time,
                    })
                    .collect(),
            }))
        }
        other => unreachable!("no route for {other}"),
    }
}

async fn read_body(body: Body) -> Result<Bytes, Failure> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                ResultInfo::of(
                    ResultCode::ParamIllegal,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes or was cut short"),
                ),
            )
        })
}

/// Client-Id names a known application, and Signature verifies with its TSP public key.
fn authenticate(
    sim: &Shared,
    path: &str,
    client_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Failure> {
    let invalid = |code, message: String| Err((StatusCode::OK, ResultInfo::of(code, message)));
    let missing = |name: &str| {
        invalid(
            ResultCode::InvalidSignature,
            format!("missing or malformed {name} header"),
        )
    };
    if client_id.is_empty() {
        return missing(signing::CLIENT_ID_HEADER);
    }
    let Some(key) = sim.keys.tsp.get(client_id) else {
        return invalid(
            ResultCode::InvalidClient,
            format!("unknown Client-Id {client_id}"),
        );
    };
    let Some(time) = header_str(headers, signing::REQUEST_TIME_HEADER) else {
        return missing(signing::REQUEST_TIME_HEADER);
    };
    let Some(signature) = header_str(headers, signing::SIGNATURE_HEADER) else {
        return missing(signing::SIGNATURE_HEADER);
    };
    signing::verify(key, path, client_id, time, body, signature).or_else(|error| {
        invalid(
            ResultCode::InvalidSignature,
            format!("{error}; sign `POST {path}\\n<Client-Id>.<Request-Time>.<body>` with the application's private key"),
        )
    })?;
    // After the signature, so the time judged is the one the sender signed.
    checks::fresh(time, sim.now()).or_else(|reason| invalid(ResultCode::InvalidSignature, reason))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    let illegal = |message: String| {
        (
            StatusCode::OK,
            ResultInfo::of(ResultCode::ParamIllegal, message),
        )
    };
    if !checks::is_json_object(body) {
        return Err(illegal(
            "invalid request body: the body must be a JSON object".into(),
        ));
    }
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| illegal(format!("invalid request body: {error}")))?;
    checks::integral_numbers_as_integers(&mut value);
    serde_json::from_value(value).map_err(|error| illegal(format!("invalid request body: {error}")))
}

fn refusal_result(refusal: Refusal) -> ResultInfo {
    let code = match &refusal {
        Refusal::ParamIllegal(_) => ResultCode::ParamIllegal,
        Refusal::AccessDenied { .. } => ResultCode::AccessDenied,
        Refusal::AcquirerNotFound(_) => ResultCode::AcquirerNotFound,
        Refusal::ProductNotIntegrated { .. } => ResultCode::ProductNotIntegrated,
        Refusal::ProductNotInContract { .. } => ResultCode::ProductNotInContract,
        Refusal::RepeatReqInconsistent(_) => ResultCode::RepeatReqInconsistent,
    };
    ResultInfo::of(code, refusal.to_string())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().filter(|v| !v.is_empty())
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire types always serialize")
}

/// Signs `body` as the Developer Center, echoing the caller's Client-Id.
fn signed(
    sim: &Shared,
    path: &str,
    client_id: &str,
    status: StatusCode,
    body: Vec<u8>,
) -> Response {
    let time = signing::now();
    let signature = signing::sign(&sim.keys.dev_center, path, client_id, &time, &body);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    // Echoed even when empty (no readable Client-Id), so every answer verifies the same way.
    headers.insert(
        signing::CLIENT_ID_HEADER,
        HeaderValue::from_str(client_id).expect("read from a header value"),
    );
    headers.insert(
        signing::RESPONSE_TIME_HEADER,
        HeaderValue::from_str(&time).expect("formatted time is ASCII"),
    );
    headers.insert(
        signing::SIGNATURE_HEADER,
        HeaderValue::from_str(&signature).expect("the signature is percent-encoded ASCII"),
    );
    response
}
