//! `/sim/*`: the ACQP's side scripted over HTTP (authorize, deauthorize), counters, faults,
//! auto-grant and notify URLs, for tests, demos and benchmarks. Never subject to faults.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{
    AutoGrant, Shared,
    faults::{FaultSettings, Faults},
    state::{Closed, StateData},
};

/// Counters since start (or the last reset), served by `GET /sim/stats`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stats {
    /// Path → outcome (`S`, `F`, `U`, `HTTP_503`, `DROPPED`) → calls.
    calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// Grants (consent page, scripted or automatic).
    pub(crate) grants: u64,
    /// Active records made Inactive by the ACQP.
    pub(crate) deauthorizations: u64,
    /// Skip clicks on the consent page.
    pub(crate) consent_skips: u64,
    /// Notification delivery attempts.
    pub(crate) notifications_sent: u64,
    /// Notifications acknowledged with a valid signed S result.
    pub(crate) notifications_acked: u64,
    /// Notifications given up after the last attempt.
    pub(crate) notifications_failed: u64,
}

impl Stats {
    /// Counts one contract call.
    pub(crate) fn record_call(&mut self, path: &str, outcome: &str) {
        *self
            .calls
            .entry(path.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }
}

/// The `/sim/*` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sim/health", get(|| async { "ok\n" }))
        .route("/sim/stats", get(stats))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/sim/auto-grant", get(get_auto_grant).post(set_auto_grant))
        .route("/sim/acqp/{acquirer_id}/authorize", post(authorize))
        .route("/sim/acqp/{acquirer_id}/deauthorize", post(deauthorize))
        .route("/sim/apps/{client_id}/notify-url", post(set_notify_url))
        .route(
            "/sim/apps/{client_id}/sandbox-acceptance",
            post(set_sandbox_acceptance),
        )
        .route("/sim/reset", post(reset))
}

async fn stats(State(sim): State<Arc<Shared>>) -> Response {
    let (urls_issued, url_counts) = {
        let state = sim.state();
        (state.data.urls.len(), state.url_counts())
    };
    let mut body = serde_json::to_value(&*sim.stats()).expect("stats serialize");
    body["urlsIssued"] = json!(urls_issued);
    body["urlsByClientAcquirerProducts"] = json!(url_counts);
    Json(body).into_response()
}

async fn get_faults(State(sim): State<Arc<Shared>>) -> Json<FaultSettings> {
    Json(
        sim.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .settings()
            .clone(),
    )
}

/// Replaces the settings and restarts the seeded sequence, so a seed replays from here.
async fn set_faults(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings: FaultSettings = match parse(&body) {
        Ok(s) => s,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Err(message) = settings.validate() {
        return error(StatusCode::BAD_REQUEST, message);
    }
    tracing::info!(?settings, "faults set");
    *sim.faults.lock().unwrap_or_else(PoisonError::into_inner) = Faults::new(settings.clone());
    Json(settings).into_response()
}

/// `POST /sim/auto-grant` body; milliseconds, as benchmarks script it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AutoGrantBody {
    enabled: bool,
    #[serde(default)]
    delay_ms: u64,
}

async fn get_auto_grant(State(sim): State<Arc<Shared>>) -> Json<AutoGrantBody> {
    let auto = sim
        .auto_grant
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(AutoGrantBody {
        enabled: auto.enabled,
        delay_ms: auto.delay.as_millis().try_into().unwrap_or(u64::MAX),
    })
}

async fn set_auto_grant(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: AutoGrantBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    *sim.auto_grant
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = AutoGrant {
        enabled: body.enabled,
        delay: Duration::from_millis(body.delay_ms),
    };
    Json(body).into_response()
}

/// With auto-grant on, grants a newly issued URL after the delay (if it is still open then).
pub(crate) fn schedule_auto_grant(sim: &Arc<Shared>, url_id: &str) {
    let auto = sim
        .auto_grant
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if !auto.enabled {
        return;
    }
    let (task_sim, url_id) = (sim.clone(), url_id.to_owned());
    sim.spawn(async move {
        tokio::time::sleep(auto.delay).await;
        let granted = task_sim.state().grant(&url_id, task_sim.now());
        match granted {
            Ok(change) => task_sim.record_changes(vec![change]),
            Err(closed) => tracing::debug!(url_id, ?closed, "auto-grant skipped"),
        }
    });
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientBody {
    client_id: Option<String>,
}

/// Grants the application's newest open URL for this ACQP, as if the ACQP clicked Authorize.
async fn authorize(
    State(sim): State<Arc<Shared>>,
    Path(acquirer_id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(client_id) = optional_client(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be {\"clientId\": \"...\"}",
        );
    };
    let now = sim.now();
    let granted = {
        let mut state = sim.state();
        state
            .latest_open_url(&client_id, &acquirer_id, now)
            .map(str::to_owned)
            .and_then(|url_id| state.grant(&url_id, now))
    };
    match granted {
        Ok(change) => {
            sim.record_changes(vec![change]);
            Json(json!({"clientId": client_id, "acquirerId": acquirer_id, "status": "Active"}))
                .into_response()
        }
        Err(closed) => {
            let why = match closed {
                Closed::NotFound => "no authorization URL was issued",
                Closed::Completed => "the newest authorization URL is already completed",
                Closed::Expired => "the newest authorization URL has expired",
                Closed::Superseded => "the newest authorization URL was superseded",
            };
            error(
                StatusCode::CONFLICT,
                format!("cannot authorize {client_id} for {acquirer_id}: {why}"),
            )
        }
    }
}

/// The ACQP cancels: one application's authorization, or (no body) every application's.
async fn deauthorize(
    State(sim): State<Arc<Shared>>,
    Path(acquirer_id): Path<String>,
    body: Bytes,
) -> Response {
    let client_id = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match parse::<ClientBody>(&body) {
            Ok(b) => b.client_id,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        }
    };
    if sim.state().catalog.acquirer(&acquirer_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("acquirer {acquirer_id} does not exist"),
        );
    }
    let changes = sim
        .state()
        .deauthorize(&acquirer_id, client_id.as_deref(), sim.now());
    let clients: Vec<String> = changes.iter().map(|c| c.client_id.clone()).collect();
    tracing::info!(acquirer_id, ?clients, "ACQP deauthorized");
    sim.record_changes(changes);
    Json(json!({"acquirerId": acquirer_id, "deauthorized": clients})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyUrlBody {
    url: Option<String>,
}

/// Sets (or, with `null`, clears back to the seed's) where an application's notifications go.
async fn set_notify_url(
    State(sim): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let body: NotifyUrlBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(url) = &body.url
        && reqwest::Url::parse(url).is_err()
    {
        return error(StatusCode::BAD_REQUEST, format!("{url} is not a URL"));
    }
    let mut state = sim.state();
    if state.catalog.application(&client_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("application {client_id} does not exist"),
        );
    }
    match body.url {
        Some(url) => state.data.notify_urls.insert(client_id.clone(), url),
        None => state.data.notify_urls.remove(&client_id),
    };
    let current = state.notify_url(&client_id);
    drop(state);
    sim.changed();
    Json(json!({"clientId": client_id, "notifyUrl": current})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxAcceptanceBody {
    passed: bool,
}

/// `{"passed": true}`: the application passed sandbox acceptance testing (false: undo it).
async fn set_sandbox_acceptance(
    State(sim): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let body: SandboxAcceptanceBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.state();
    if state.catalog.application(&client_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("application {client_id} does not exist"),
        );
    }
    state
        .data
        .sandbox_acceptance
        .insert(client_id.clone(), body.passed);
    drop(state);
    sim.changed();
    Json(json!({"clientId": client_id, "sandboxAcceptancePassed": body.passed})).into_response()
}

/// Forgets every URL, authorization and counter; faults and auto-grant go back to the seed's.
async fn reset(State(sim): State<Arc<Shared>>) -> Response {
    sim.state().data = StateData::default();
    *sim.stats() = Stats::default();
    *sim.faults.lock().unwrap_or_else(PoisonError::into_inner) =
        Faults::new(sim.config.faults.clone());
    *sim.auto_grant
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = sim.config.auto_grant.clone();
    sim.changed();
    tracing::info!("simulator reset");
    StatusCode::NO_CONTENT.into_response()
}

fn optional_client(body: &[u8]) -> Option<String> {
    parse::<ClientBody>(body).ok()?.client_id
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}
