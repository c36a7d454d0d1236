//! Delivers authorization URLs to `spec.invitation.webhook.url`.
//!
//! The URL is the tenant's choice, so deliveries go only where the endpoint policy allows,
//! follow no redirect, and are bounded in number: a tenant whose webhook never answers holds
//! at most [`PER_NAMESPACE`] deliveries, and all tenants together [`IN_FLIGHT`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::devcenter::policy::{self, EndpointPolicy};

/// Attempts per URL; the URL is also in status and an Event, so a lost webhook loses nothing.
const ATTEMPTS: u32 = 5;
/// The wait after the first failed attempt; it doubles after each further one.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Limit for one attempt, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries in flight at once, across all namespaces.
pub(crate) const IN_FLIGHT: usize = 32;
/// Deliveries in flight at once for the resources of one namespace.
pub(crate) const PER_NAMESPACE: usize = 4;

/// The deliveries in flight; past a bound a delivery is dropped with a warning (the URL stays
/// in status and in the `UrlIssued` Event).
pub(crate) struct Deliveries {
    in_flight: Arc<Semaphore>,
    per_namespace: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for Deliveries {
    fn default() -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            per_namespace: Arc::default(),
        }
    }
}

/// One namespace's place among its [`PER_NAMESPACE`] deliveries, given back when dropped.
pub(crate) struct NamespaceSlot {
    namespace: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for NamespaceSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.namespace) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.namespace);
            }
        }
    }
}

impl Deliveries {
    /// Starts delivering `body` to `url` for a resource in `namespace`, unless too many
    /// deliveries are in flight; returns whether it started.
    pub(crate) fn deliver(
        &self,
        policy: &Arc<EndpointPolicy>,
        namespace: &str,
        url: String,
        body: serde_json::Value,
    ) -> bool {
        let Some((permit, slot)) = self.take(namespace) else {
            tracing::warn!(
                namespace,
                "too many invitation webhook deliveries in flight; this one is dropped (the URL \
                 is in status and in the UrlIssued Event)"
            );
            return false;
        };
        let policy = policy.clone();
        tokio::spawn(async move {
            send(&policy, &url, &body).await;
            drop((permit, slot));
        });
        true
    }

    /// A place for one more delivery (or other bounded session, such as a mail) of
    /// `namespace`, held until dropped; `None` past a bound.
    pub(crate) fn take(&self, namespace: &str) -> Option<(OwnedSemaphorePermit, NamespaceSlot)> {
        let permit = self.in_flight.clone().try_acquire_owned().ok()?;
        let mut counts = self
            .per_namespace
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(namespace.to_owned()).or_default();
        if *count >= PER_NAMESPACE {
            return None;
        }
        *count += 1;
        let slot = NamespaceSlot {
            namespace: namespace.to_owned(),
            counts: self.per_namespace.clone(),
        };
        Some((permit, slot))
    }
}

/// POSTs `body` as JSON to `url`, retrying with exponential backoff until a 2xx answer; a
/// refusal by the policy or a redirect ends it at once (retrying cannot change either).
async fn send(policy: &Arc<EndpointPolicy>, url: &str, body: &serde_json::Value) {
    // Webhook URLs often carry a secret in their path (Slack-style): log only the host.
    let parsed = reqwest::Url::parse(url);
    let host = parsed
        .as_ref()
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let checked = parsed
        .map_err(|_| "the URL does not parse".to_owned())
        .and_then(|u| policy.check_url(&u, false).map_err(|r| r.to_string()));
    if let Err(reason) = checked {
        tracing::warn!(%host, %reason, "invitation webhook not sent");
        return;
    }
    let client = match policy.http_client(ATTEMPT_TIMEOUT, false) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "cannot build the webhook client");
            return;
        }
    };
    for attempt in 1..=ATTEMPTS {
        match client.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) if response.status().is_redirection() => {
                tracing::warn!(
                    %host, status = %response.status(),
                    "invitation webhook answered with a redirect, which is never followed"
                );
                return;
            }
            Ok(response) => {
                tracing::warn!(%host, status = %response.status(), attempt, "invitation webhook refused")
            }
            Err(error) => {
                if let Some(refusal) = policy::refusal_in(&error) {
                    tracing::warn!(%host, reason = %refusal, "invitation webhook not sent");
                    return;
                }
                let error = error.without_url();
                tracing::warn!(%host, %error, attempt, "invitation webhook failed")
            }
        }
        let delay = crate::backoff::doubling(FIRST_RETRY, attempt, Duration::MAX);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deliveries_are_bounded_per_namespace_and_in_total() {
        let deliveries = Deliveries::default();
        let mut held = Vec::new();
        for _ in 0..PER_NAMESPACE {
            held.push(
                deliveries
                    .take("team-a")
                    .expect("within the namespace's share"),
            );
        }
        assert!(
            deliveries.take("team-a").is_none(),
            "past the namespace's share"
        );
        held.pop();
        assert!(
            deliveries.take("team-a").is_some(),
            "a finished delivery frees its place"
        );
        let mut others = Vec::new();
        for n in 0..IN_FLIGHT {
            if let Some(taken) = deliveries.take(&format!("team-{n}")) {
                others.push(taken);
            }
        }
        assert_eq!(held.len() + others.len(), IN_FLIGHT);
        assert!(deliveries.take("team-new").is_none(), "past the total");
    }

    /// A webhook on loopback is refused by the default policy: nothing reaches it.
    #[tokio::test]
    async fn webhooks_outside_the_policy_receive_nothing() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let policy = Arc::new(EndpointPolicy::default());
        send(&policy, &url, &serde_json::json!({})).await;
        let accepted = tokio::time::timeout(Duration::from_millis(1), listener.accept()).await;
        assert!(accepted.is_err(), "the webhook was connected to");
        // By name: resolved, then refused.
        let url = url.replace("127.0.0.1", "localhost");
        send(&policy, &url, &serde_json::json!({})).await;
        let accepted = tokio::time::timeout(Duration::from_millis(1), listener.accept()).await;
        assert!(accepted.is_err(), "the webhook was connected to by name");
    }
}
