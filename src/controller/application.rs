//! The DeveloperCenterApplication controller: loads the credentials Secret, asks the Developer
//! Center who the credentials are, reports Ready, role and integrated products, and keeps the
//! registry entry (and so the poller) of each application current.
//!
//! Credentials Secrets are not watched: they carry no label the operator could select on, and a
//! cluster-wide Secret watch would let the operator read every Secret of the cluster. Instead
//! every application is re-checked once per poll interval (sooner while it is not Ready), which
//! also notices a role or product change in the Developer Center.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt as _, TryStreamExt as _, future::ready};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt as _,
        controller::{self, Action},
        events::{Event, EventType},
        predicates,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tokio::time::Instant;

use super::{
    Context, FIELD_MANAGER, poller,
    registry::{AppKey, Application, ClientSource},
};
use crate::{
    api::{DeveloperCenterApplication, DeveloperCenterApplicationStatus},
    devcenter::{
        ClientConfig, DevCenterClient,
        signing::{SigningKey, VerifyingKey},
        wire::APPLICATION_INQUIRY_PATH,
    },
    reconcile::{
        application::{
            self, ApplicationFacts, NotReadyReason, Readiness, classify, desired_status,
            needs_write,
        },
        conditions::{self, READY},
    },
};

/// The metrics label of this controller.
const CONTROLLER: &str = "application";
/// The first re-check of an application that is not Ready; doubles up to the poll interval.
const NOT_READY_RETRY: Duration = Duration::from_secs(5);

/// What can make a reconciliation fail (as opposed to reporting a NotReady application).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The credentials Secret could not be read.
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// The status could not be written.
    #[error("cannot write the status: {0}")]
    WriteStatus(kube::Error),
}

impl Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "read_secret",
            Error::WriteStatus(_) => "write_status",
        }
    }
}

/// Runs the controller until the operator stops.
pub(crate) async fn run(ctx: Arc<Context>) {
    let (store, writer) = reflector::store();
    let forget_ctx = ctx.clone();
    let forget_store = store.clone();
    let stream = ctx
        .watch::<DeveloperCenterApplication>(watcher::Config::default(), store.clone())
        .reflect(writer)
        .inspect_ok(move |event| forget_deleted(&forget_ctx, &forget_store, event))
        .applied_objects()
        // Our own status writes do not change the generation, so they do not come back here.
        .predicate_filter(predicates::generation, Default::default());
    let reconcile_store = store.clone();
    Controller::for_stream(stream, store)
        .with_config(controller::Config::default().concurrency(ctx.concurrency))
        .graceful_shutdown_on(ctx.stopped())
        .run(
            move |app, ctx| reconcile(app, ctx, reconcile_store.clone()),
            error_policy,
            ctx,
        )
        .for_each(|_| ready(()))
        .await;
}

/// Unregisters deleted applications, including those deleted while the watch was down, and
/// wakes their AcqpAuthorizations so they report ApplicationNotFound.
fn forget_deleted(
    ctx: &Context,
    store: &Store<DeveloperCenterApplication>,
    event: &watcher::Event<DeveloperCenterApplication>,
) {
    let gone = match event {
        watcher::Event::Delete(app) => {
            let key = key_of(app);
            if ctx.applications.remove(&key) {
                vec![key]
            } else {
                vec![]
            }
        }
        watcher::Event::InitDone => ctx.applications.retain(|key| {
            store
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
                .is_some()
        }),
        _ => vec![],
    };
    for key in gone {
        tracing::info!(namespace = %key.namespace, app = %key.name, "application deleted");
        ctx.metrics.forget_application(&key);
        ctx.wake(ctx.authorizations_of(&key).iter().map(AsRef::as_ref));
    }
}

fn key_of(app: &DeveloperCenterApplication) -> AppKey {
    AppKey {
        namespace: app.namespace().unwrap_or_default(),
        name: app.name_any(),
    }
}

async fn reconcile(
    app: Arc<DeveloperCenterApplication>,
    ctx: Arc<Context>,
    store: Store<DeveloperCenterApplication>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let key = key_of(&app);
    let previous = ctx.applications.get_key(&key);
    let poll_interval = app.spec.parsed_poll_interval();
    let LoadedClient { source, client } = load_client(&app, &ctx, previous.as_deref()).await?;
    let (client, facts, answered) = match client {
        Err(NoClient { reason, message }) => {
            let facts = ApplicationFacts {
                readiness: Readiness::NotReady { reason, message },
                role: None,
                integrated_products: vec![],
            };
            (None, facts, false)
        }
        Ok(client) => {
            let (facts, answered) = inquire(&app, &ctx, &client, previous.as_deref()).await;
            let facts = facts.with_poll_outcome(previous.as_deref(), &source);
            (Some(client), facts, answered)
        }
    };

    let now = Timestamp::now();
    let status = desired_status(&app, &facts, answered, now);
    if needs_write(app.status.as_ref(), &status) {
        write_status(&app, &ctx, &status).await?;
        announce_transition(&app, &ctx, &status).await;
    }

    let failures = match (&facts.readiness, &previous) {
        (Readiness::Ready, _) => 0,
        (_, Some(previous)) => previous.failures + 1,
        (_, None) => 1,
    };
    let polls = facts.polls();
    let facts_changed = previous.as_ref().is_none_or(|p| p.facts != facts);
    let mut entry = Application::new(key.clone(), source, client, facts, poll_interval);
    entry.failures = failures;
    entry.last_answer = if answered {
        Some(now)
    } else {
        previous.as_ref().and_then(|p| p.last_answer)
    };
    entry.email = app
        .spec
        .notifications
        .as_ref()
        .and_then(|n| n.email.clone());
    ctx.applications.publish(entry);
    let poller_ctx = ctx.clone();
    let poller_key = key.clone();
    ctx.applications
        .ensure_poller(&key, polls, || poller::spawn(poller_ctx, poller_key));
    // A deletion seen while this reconcile ran must not leave a stale entry (and poller) behind.
    if store.get(&ObjectRef::from_obj(&*app)).is_none() {
        ctx.applications.remove(&key);
        ctx.metrics.forget_application(&key);
    }
    if facts_changed {
        ctx.wake(ctx.authorizations_of(&key).iter().map(AsRef::as_ref));
    }
    ctx.retries.succeeded(&app.uid().unwrap_or_default());
    Ok(Action::requeue(next_check(poll_interval, failures)))
}

fn error_policy(app: Arc<DeveloperCenterApplication>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_failed(CONTROLLER, error.metric_label());
    tracing::warn!(namespace = ?app.namespace(), app = %app.name_any(), %error, "reconcile failed");
    Action::requeue(ctx.retries.failed(&app.uid().unwrap_or_default()))
}

/// When to check an application again: each poll interval, sooner with backoff while broken.
fn next_check(poll_interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return poll_interval;
    }
    crate::backoff::doubling(NOT_READY_RETRY, failures, poll_interval)
}

/// What loading an application's credentials gave.
struct LoadedClient {
    /// Where the client comes from, so the next load can reuse it while that is unchanged.
    source: ClientSource,
    /// The signed client, or why there is none.
    client: Result<DevCenterClient, NoClient>,
}

/// Why an application has no client: its Ready condition's reason and message.
struct NoClient {
    reason: NotReadyReason,
    message: String,
}

impl NoClient {
    fn new(reason: NotReadyReason, message: impl Into<String>) -> NoClient {
        NoClient {
            reason,
            message: message.into(),
        }
    }
}

/// The signed client for `app`, reused from `previous` while the spec and Secret are unchanged,
/// or why there is none. Only a failure to read the Secret is an error (retried).
async fn load_client(
    app: &DeveloperCenterApplication,
    ctx: &Context,
    previous: Option<&Application>,
) -> Result<LoadedClient, Error> {
    let namespace = app.namespace().unwrap_or_default();
    let refs = &app.spec.credentials_secret_ref;
    let secret_name = format!("{namespace}/{}", refs.name);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&refs.name)
        .await
        .map_err(|source| Error::ReadSecret {
            namespace: namespace.clone(),
            name: refs.name.clone(),
            source,
        })?;
    let mut source = ClientSource {
        endpoint: app.spec.endpoint.clone(),
        client_id: app.spec.client_id.clone(),
        credentials: None,
    };
    let Some(secret) = secret else {
        let message = format!(
            "Secret {secret_name} not found: create it with the TSP private key (PEM) under {:?} \
             and the Developer Center public key (PEM) under {:?}",
            refs.private_key_key, refs.dev_center_public_key_key
        );
        let client = Err(NoClient::new(NotReadyReason::CredentialsNotFound, message));
        return Ok(LoadedClient { source, client });
    };
    source.credentials = Some((
        secret.resource_version().unwrap_or_default(),
        refs.private_key_key.clone(),
        refs.dev_center_public_key_key.clone(),
    ));
    if let Some(previous) = previous
        && previous.source == source
        && let Some(client) = &previous.client
    {
        let client = Ok(client.clone());
        return Ok(LoadedClient { source, client });
    }
    let data = secret.data.unwrap_or_default();
    let pem = |key: &str, what: &str, field: &str| {
        data.get(key).map(|bytes| bytes.0.clone()).ok_or_else(|| {
            let message = format!(
                "Secret {secret_name} has no key {key:?}: add {what} (PEM) under it, or point \
                 spec.credentialsSecretRef.{field} at the key that holds it"
            );
            NoClient::new(NotReadyReason::CredentialsInvalid, message)
        })
    };
    let build = || {
        let private = pem(
            &refs.private_key_key,
            "the TSP private key",
            "privateKeyKey",
        )?;
        let public = pem(
            &refs.dev_center_public_key_key,
            "the Developer Center public key",
            "devCenterPublicKeyKey",
        )?;
        let invalid = |e: crate::devcenter::signing::KeyError| {
            NoClient::new(NotReadyReason::CredentialsInvalid, e.to_string())
        };
        let signing_key = SigningKey::from_pem(
            &format!("{} in Secret {secret_name}", refs.private_key_key),
            &private,
        )
        .map_err(invalid)?;
        let devcenter_key = VerifyingKey::from_pem(
            &format!("{} in Secret {secret_name}", refs.dev_center_public_key_key),
            &public,
        )
        .map_err(invalid)?;
        let endpoint = reqwest::Url::parse(&app.spec.endpoint).map_err(|e| {
            let message = format!("spec.endpoint {:?} is not a URL: {e}", app.spec.endpoint);
            NoClient::new(NotReadyReason::DevCenterUnavailable, message)
        })?;
        let mut config =
            ClientConfig::new(endpoint, &app.spec.client_id, signing_key, devcenter_key);
        config.rate_limit = ctx.rate_limit;
        config.endpoint_policy = ctx.endpoint_policy.clone();
        config.https_only = app.spec.environment == crate::api::Environment::Production;
        DevCenterClient::new(config)
            .map_err(|e| NoClient::new(NotReadyReason::DevCenterUnavailable, e.to_string()))
    };
    let client = build();
    Ok(LoadedClient { source, client })
}

/// Asks the Developer Center about the application; returns the facts and whether it answered.
/// While it cannot be asked, the role and products last learned are kept.
async fn inquire(
    app: &DeveloperCenterApplication,
    ctx: &Context,
    client: &DevCenterClient,
    previous: Option<&Application>,
) -> (ApplicationFacts, bool) {
    let started = Instant::now();
    let answer = client.inquire_application().await;
    let result = answer
        .as_ref()
        .map_or_else(crate::devcenter::Error::metric_label, |_| "success");
    ctx.metrics.observe_call(
        &key_of(app),
        APPLICATION_INQUIRY_PATH,
        result,
        started.elapsed(),
    );
    match answer {
        Ok(answer) => (ApplicationFacts::answered(answer), true),
        Err(error) => {
            let (reason, message) = classify(app, &error);
            let facts = ApplicationFacts {
                readiness: Readiness::NotReady { reason, message },
                role: previous.and_then(|p| p.facts.role),
                integrated_products: previous
                    .map(|p| p.facts.integrated_products.clone())
                    .unwrap_or_default(),
            };
            (facts, false)
        }
    }
}

async fn write_status(
    app: &DeveloperCenterApplication,
    ctx: &Context,
    status: &DeveloperCenterApplicationStatus,
) -> Result<(), Error> {
    let api: Api<DeveloperCenterApplication> =
        Api::namespaced(ctx.client.clone(), &app.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": DeveloperCenterApplication::api_version(&()),
        "kind": DeveloperCenterApplication::kind(&()),
        "status": status,
    });
    api.patch_status(
        &app.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::WriteStatus)?;
    Ok(())
}

/// Emits an Event when the Ready condition's status or reason changed.
async fn announce_transition(
    app: &DeveloperCenterApplication,
    ctx: &Context,
    status: &DeveloperCenterApplicationStatus,
) {
    if !application::is_transition(app.status.as_ref(), status) {
        return;
    }
    let Some(condition) = conditions::find(&status.conditions, READY) else {
        return;
    };
    let event = Event {
        type_: if condition.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: condition.reason.clone(),
        note: Some(condition.message.chars().take(1024).collect()),
        action: "CheckApplication".to_owned(),
        secondary: None,
    };
    ctx.record(&event, &app.object_ref(&())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_applications_are_rechecked_with_backoff() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_check(minute, 0), minute);
        assert_eq!(next_check(minute, 1), Duration::from_secs(5));
        assert_eq!(next_check(minute, 2), Duration::from_secs(10));
        assert_eq!(next_check(minute, 9), minute);
    }
}
