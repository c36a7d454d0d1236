//! Delivers authorization URLs to `spec.invitation.webhook.url`.

use std::time::Duration;

/// Attempts per URL; the URL is also in status and an Event, so a lost webhook loses nothing.
const ATTEMPTS: u32 = 5;

/// POSTs `body` as JSON to `url`, retrying with exponential backoff until a 2xx answer.
pub async fn deliver(url: String, body: serde_json::Value) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "cannot build the webhook client");
            return;
        }
    };
    // Webhook URLs often carry a secret in their path (Slack-style): log only the host.
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        match client.post(&url).json(&body).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(%host, status = %response.status(), attempt, "invitation webhook refused")
            }
            Err(error) => {
                let error = error.without_url();
                tracing::warn!(%host, %error, attempt, "invitation webhook failed")
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
