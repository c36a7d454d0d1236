//! Signed `AUTHORIZATION_STATUS_CHANGED` notifications to the application's notify URL, retried
//! with capped exponential backoff until a signed S acknowledgement verifies.
//!
//! Each change is delivered by its own task, so two quick changes may arrive out of order; the
//! receiver refreshes through `inquiry` anyway, which always returns the current record.

use std::sync::Arc;

use crate::devcenter::{
    signing,
    wire::{Notification, NotifyType, ResultCode, ResultResponse, ResultStatus},
};

use super::{NotificationSettings, Shared, state::Change};

/// The HTTP client and retry policy of notifications.
pub(crate) struct Notifier {
    client: reqwest::Client,
    settings: NotificationSettings,
}

impl Notifier {
    /// A notifier with the seed's retry settings.
    pub(crate) fn new(settings: NotificationSettings) -> Self {
        Self {
            client: reqwest::Client::new(),
            settings,
        }
    }
}

/// Starts delivering a change to its application's notify URL, if it has one.
pub(crate) fn send(sim: &Arc<Shared>, change: Change) {
    let Some(url) = sim.state().notify_url(&change.client_id) else {
        return;
    };
    let notification = Notification {
        notify_type: NotifyType::AuthorizationStatusChanged,
        acquirer_id: change.acquirer_id,
        status: change.status,
        update_time: change.update_time,
    };
    let body = serde_json::to_vec(&notification).expect("notifications serialize");
    let task_sim = sim.clone();
    sim.spawn(async move { deliver(&task_sim, &url, &change.client_id, &body).await });
}

async fn deliver(sim: &Shared, url: &str, client_id: &str, body: &[u8]) {
    let settings = &sim.notifier.settings;
    let mut backoff = settings.initial_backoff;
    for attempt in 1..=settings.max_attempts {
        sim.stats().notifications_sent += 1;
        match attempt_once(sim, url, client_id, body).await {
            Ok(()) => {
                sim.stats().notifications_acked += 1;
                tracing::info!(client_id, url, attempt, "notification acknowledged");
                return;
            }
            Err(error) => tracing::warn!(
                client_id,
                url,
                attempt,
                error,
                "notification not acknowledged"
            ),
        }
        if attempt < settings.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(settings.max_backoff);
        }
    }
    sim.stats().notifications_failed += 1;
    tracing::error!(
        client_id,
        url,
        attempts = settings.max_attempts,
        "notification given up"
    );
}

/// One signed POST; Ok only for HTTP 200 with a verified, signed SUCCESS/S body.
async fn attempt_once(sim: &Shared, url: &str, client_id: &str, body: &[u8]) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad notify URL: {e}"))?;
    let path = parsed.path();
    let time = signing::now();
    let signature = signing::sign(&sim.keys.dev_center, path, client_id, &time, body);
    let response = sim
        .notifier
        .client
        .post(parsed.clone())
        .timeout(sim.notifier.settings.attempt_timeout)
        .header("Content-Type", "application/json; charset=UTF-8")
        .header(signing::CLIENT_ID_HEADER, client_id)
        .header(signing::REQUEST_TIME_HEADER, &time)
        .header(signing::SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("acknowledgement has no {name} header (HTTP {status})"))
    };
    let (ack_client, ack_time, ack_signature) = (
        header(signing::CLIENT_ID_HEADER),
        header(signing::RESPONSE_TIME_HEADER),
        header(signing::SIGNATURE_HEADER),
    );
    let ack_body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the acknowledgement: {e}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let ack_client = ack_client?;
    if ack_client != client_id {
        return Err(format!("acknowledgement is for Client-Id {ack_client}"));
    }
    let key = sim
        .keys
        .tsp
        .get(client_id)
        .ok_or("application has no key")?;
    signing::verify(key, path, client_id, &ack_time?, &ack_body, &ack_signature?)
        .map_err(|e| format!("acknowledgement signature: {e}"))?;
    let ack: ResultResponse =
        serde_json::from_slice(&ack_body).map_err(|e| format!("acknowledgement body: {e}"))?;
    if ack.result.result_status != ResultStatus::S || ack.result.result_code != ResultCode::Success
    {
        return Err(format!(
            "acknowledged with {}/{:?}",
            ack.result.result_code, ack.result.result_status
        ));
    }
    Ok(())
}
