//! The DeveloperCenterApplication controller: loads the credentials Secret, asks the Developer
//! Center who the credentials are, reports Ready, role and integrated products, and keeps the
//! registry entry (and so the poller) of each application current.
//!
//! Credentials Secrets are not watched: they carry no label the operator could select on, and a
//! cluster-wide Secret watch is what the design rules out. Instead every application is
//! re-checked once per poll interval (sooner while it is not Ready), which also notices a role
//! or product change in the Developer Center.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt as _, TryStreamExt as _, future::ready};
use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
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
    Context, MANAGER, poller,
    registry::{AppKey, Application, ApplicationFacts, ClientSource, NotReadyReason, Readiness},
};
use crate::{
    api::{DeveloperCenterApplication, DeveloperCenterApplicationStatus, duration},
    devcenter::{
        ClientConfig, DevCenterClient,
        signing::{SigningKey, VerifyingKey},
        wire::{APPLICATION_INQUIRY_PATH, ApplicationInquiryResponse, ResultCode, Role},
    },
};

/// The metrics label of this controller.
const CONTROLLER: &str = "application";
/// With nothing else to report, `lastSyncTime` is rewritten only once it is this many poll
/// intervals old, so a quiet system causes (almost) no API-server writes.
const SYNC_TIME_REFRESH: u32 = 10;
/// The first re-check of an application that is not Ready; doubles up to the poll interval.
const NOT_READY_RETRY: Duration = Duration::from_secs(5);
/// The poll interval when `spec.pollInterval` cannot be parsed (admission prevents that).
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

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
    let poll_interval = duration::parse(&app.spec.poll_interval).unwrap_or(DEFAULT_POLL_INTERVAL);
    let (source, loaded) = load_client(&app, &ctx, previous.as_deref()).await?;
    let (client, facts, answered) = match loaded {
        Err((reason, message)) => {
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
    let status = desired_status(&app, &facts, answered.then_some(now));
    if needs_write(app.status.as_ref(), &status, poll_interval) {
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
    NOT_READY_RETRY
        .saturating_mul(1 << (failures - 1).min(16))
        .min(poll_interval)
}

/// The signed client for `app`, reused from `previous` while the spec and Secret are unchanged,
/// or why there is none (as a Ready condition reason and message).
async fn load_client(
    app: &DeveloperCenterApplication,
    ctx: &Context,
    previous: Option<&Application>,
) -> Result<
    (
        ClientSource,
        Result<DevCenterClient, (NotReadyReason, String)>,
    ),
    Error,
> {
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
        return Ok((source, Err((NotReadyReason::CredentialsNotFound, message))));
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
        return Ok((source, Ok(client.clone())));
    }
    let data = secret.data.unwrap_or_default();
    let pem = |key: &str, what: &str, field: &str| {
        data.get(key).map(|bytes| bytes.0.clone()).ok_or_else(|| {
            let message = format!(
                "Secret {secret_name} has no key {key:?}: add {what} (PEM) under it, or point \
                 spec.credentialsSecretRef.{field} at the key that holds it"
            );
            (NotReadyReason::CredentialsInvalid, message)
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
            (NotReadyReason::CredentialsInvalid, e.to_string())
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
            (NotReadyReason::DevCenterUnavailable, message)
        })?;
        let mut config =
            ClientConfig::new(endpoint, &app.spec.client_id, signing_key, devcenter_key);
        config.rate_limit = ctx.rate_limit;
        config.endpoint_policy = ctx.endpoint_policy.clone();
        config.https_only = app.spec.environment == crate::api::Environment::Production;
        DevCenterClient::new(config)
            .map_err(|e| (NotReadyReason::DevCenterUnavailable, e.to_string()))
    };
    Ok((source, build()))
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
        Ok(answer) => {
            let readiness = readiness_of(&answer);
            let facts = ApplicationFacts {
                readiness,
                role: Some(answer.role),
                integrated_products: answer.integrated_products,
            };
            (facts, true)
        }
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

/// Whether the application the Developer Center described may invite ACQPs: the credentials
/// must be a Developer Admin's, and a Production application must have passed sandbox
/// acceptance testing.
fn readiness_of(answer: &ApplicationInquiryResponse) -> Readiness {
    if answer.role != Role::DeveloperAdmin {
        Readiness::NotReady {
            reason: NotReadyReason::PermissionDenied,
            message: format!(
                "the credentials' role is {:?}; only a Developer Admin can generate \
                 authorization URLs: use a Developer Admin's credentials",
                answer.role
            ),
        }
    } else if answer.sandbox_acceptance_pending() {
        Readiness::NotReady {
            reason: NotReadyReason::SandboxAcceptancePending,
            message: "this Production application has not passed sandbox acceptance \
                      testing, so it may not invite ACQPs yet: conduct sandbox acceptance \
                      testing in the Developer Center; the operator keeps checking and invites \
                      ACQPs once it has passed"
                .into(),
        }
    } else {
        Readiness::Ready
    }
}

/// Turns a failed inquiry into a condition reason and a message that says what to fix.
fn classify(
    app: &DeveloperCenterApplication,
    error: &crate::devcenter::Error,
) -> (NotReadyReason, String) {
    use crate::devcenter::Error as E;
    let spec = &app.spec;
    let secret = format!(
        "Secret {}/{}",
        app.namespace().unwrap_or_default(),
        spec.credentials_secret_ref.name
    );
    match error {
        E::Rejected {
            code: ResultCode::InvalidClient,
            ..
        } => (
            NotReadyReason::CredentialsRejected,
            format!(
                "{error}: check spec.clientId {:?} against the Developer Center and that \
                 spec.endpoint serves the {:?} environment",
                spec.client_id, spec.environment
            ),
        ),
        E::Rejected {
            code: ResultCode::InvalidSignature,
            ..
        } => (
            NotReadyReason::CredentialsRejected,
            format!(
                "{error}: put the private key whose public key is registered for {:?} under {:?} \
                 in {secret}",
                spec.client_id, spec.credentials_secret_ref.private_key_key
            ),
        ),
        E::Rejected {
            code: ResultCode::AccessDenied,
            ..
        } => (
            NotReadyReason::PermissionDenied,
            format!(
                "{error}: only a Developer Admin can generate authorization URLs: use a \
                 Developer Admin's credentials"
            ),
        ),
        E::Rejected { .. } => (NotReadyReason::CredentialsRejected, error.to_string()),
        E::Unverified { .. } => (
            NotReadyReason::DevCenterUnverified,
            format!(
                "{error}: check that spec.endpoint is the Developer Center API and that {:?} in \
                 {secret} holds the Developer Center's public key",
                spec.credentials_secret_ref.dev_center_public_key_key
            ),
        ),
        E::OverLimit { .. } => (NotReadyReason::ContractViolation, error.to_string()),
        E::NotAllowed { .. } => (NotReadyReason::EndpointNotAllowed, error.to_string()),
        E::Unavailable { .. } | E::Protocol { .. } | E::Setup(_) => (
            NotReadyReason::DevCenterUnavailable,
            format!("{error}; retrying"),
        ),
    }
}

/// The status `facts` call for; `answered_at` is when the Developer Center last answered now,
/// if it did. The Ready condition keeps its lastTransitionTime while its status is unchanged.
fn desired_status(
    app: &DeveloperCenterApplication,
    facts: &ApplicationFacts,
    answered_at: Option<Timestamp>,
) -> DeveloperCenterApplicationStatus {
    let current = app.status.clone().unwrap_or_default();
    let (status, reason, message) = match &facts.readiness {
        Readiness::Ready => (
            "True",
            "Connected".to_owned(),
            format!(
                "signed calls succeed as a Developer Admin; {} products integrated",
                facts.integrated_products.len()
            ),
        ),
        Readiness::NotReady { reason, message } => {
            ("False", reason.as_str().to_owned(), message.clone())
        }
    };
    let previous = current.conditions.iter().find(|c| c.type_ == "Ready");
    let last_transition_time = match previous {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => Time(answered_at.unwrap_or_else(Timestamp::now)),
    };
    DeveloperCenterApplicationStatus {
        observed_generation: app.metadata.generation,
        conditions: vec![Condition {
            type_: "Ready".to_owned(),
            status: status.to_owned(),
            reason,
            message,
            observed_generation: app.metadata.generation,
            last_transition_time,
        }],
        integrated_products: facts.integrated_products.clone(),
        role: facts.role.map(|role| format!("{role:?}")),
        last_sync_time: answered_at.map(Time).or(current.last_sync_time),
    }
}

/// Whether `desired` must be written: anything but `lastSyncTime` changed, or `lastSyncTime` is
/// [`SYNC_TIME_REFRESH`] poll intervals stale.
fn needs_write(
    current: Option<&DeveloperCenterApplicationStatus>,
    desired: &DeveloperCenterApplicationStatus,
    poll_interval: Duration,
) -> bool {
    let Some(current) = current else {
        return true;
    };
    let mut same_sync = desired.clone();
    same_sync.last_sync_time.clone_from(&current.last_sync_time);
    if &same_sync != current {
        return true;
    }
    match (&current.last_sync_time, &desired.last_sync_time) {
        (Some(Time(written)), Some(Time(latest))) => {
            let age = latest.duration_since(*written);
            age.unsigned_abs() >= poll_interval * SYNC_TIME_REFRESH
        }
        (None, Some(_)) => true,
        _ => false,
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
        &PatchParams::apply(MANAGER).force(),
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
    let ready = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let before = app.status.as_ref().and_then(|s| ready(&s.conditions));
    let Some(condition) = status.conditions.iter().find(|c| c.type_ == "Ready") else {
        return;
    };
    if before == ready(&status.conditions) {
        return;
    }
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
    if let Err(error) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
        tracing::warn!(app = %app.name_any(), %error, "cannot publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CredentialsSecretRef, DeveloperCenterApplicationSpec, Environment, Product};
    use crate::devcenter::wire::Environment as WireEnvironment;

    fn app(status: Option<DeveloperCenterApplicationStatus>) -> DeveloperCenterApplication {
        let mut app = DeveloperCenterApplication::new(
            "demo",
            DeveloperCenterApplicationSpec {
                environment: Environment::Sandbox,
                endpoint: "http://127.0.0.1:8090".into(),
                client_id: "SANDBOX_ACQP_OPERATOR_DEMO".into(),
                credentials_secret_ref: CredentialsSecretRef {
                    name: "demo-credentials".into(),
                    private_key_key: "privateKey".into(),
                    dev_center_public_key_key: "devCenterPublicKey".into(),
                },
                poll_interval: "60s".into(),
                notifications: None,
            },
        );
        app.metadata.namespace = Some("acqp".into());
        app.metadata.generation = Some(3);
        app.status = status;
        app
    }

    fn answer(environment: WireEnvironment, passed: Option<bool>) -> ApplicationInquiryResponse {
        ApplicationInquiryResponse {
            result: crate::devcenter::wire::ResultInfo::success(),
            application_name: "Demo".into(),
            environment,
            role: Role::DeveloperAdmin,
            integrated_products: vec![Product::CashierPayment],
            sandbox_acceptance_passed: passed,
        }
    }

    #[test]
    fn a_production_application_waits_for_sandbox_acceptance() {
        let pending = readiness_of(&answer(WireEnvironment::Production, Some(false)));
        let Readiness::NotReady { reason, message } = pending else {
            panic!("Ready before sandbox acceptance")
        };
        assert_eq!(reason.as_str(), "SandboxAcceptancePending");
        assert!(
            message.contains("conduct sandbox acceptance testing"),
            "{message}"
        );
        let passed = answer(WireEnvironment::Production, Some(true));
        assert_eq!(readiness_of(&passed), Readiness::Ready);
        // Sandbox applications, and gateways that do not report it, are not held back.
        let sandbox = answer(WireEnvironment::Sandbox, Some(false));
        assert_eq!(readiness_of(&sandbox), Readiness::Ready);
        let unreported = answer(WireEnvironment::Production, None);
        assert_eq!(readiness_of(&unreported), Readiness::Ready);
        let viewer = ApplicationInquiryResponse {
            role: Role::Developer,
            ..answer(WireEnvironment::Production, Some(false))
        };
        assert!(matches!(
            readiness_of(&viewer),
            Readiness::NotReady {
                reason: NotReadyReason::PermissionDenied,
                ..
            }
        ));
    }

    fn ready_facts() -> ApplicationFacts {
        ApplicationFacts {
            readiness: Readiness::Ready,
            role: Some(Role::DeveloperAdmin),
            integrated_products: vec![Product::CashierPayment],
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn steady_state_writes_only_a_stale_sync_time() {
        let minute = Duration::from_secs(60);
        let first = desired_status(&app(None), &ready_facts(), Some(at("2026-01-01T00:00:00Z")));
        assert!(needs_write(None, &first, minute));
        let written = app(Some(first.clone()));
        let later = desired_status(&written, &ready_facts(), Some(at("2026-01-01T00:05:00Z")));
        assert_eq!(
            later.conditions, first.conditions,
            "lastTransitionTime kept"
        );
        assert!(!needs_write(Some(&first), &later, minute));
        let stale = desired_status(&written, &ready_facts(), Some(at("2026-01-01T00:10:00Z")));
        assert!(needs_write(Some(&first), &stale, minute));
    }

    #[test]
    fn a_readiness_change_is_written_with_a_new_transition_time() {
        let minute = Duration::from_secs(60);
        let first = desired_status(&app(None), &ready_facts(), Some(at("2026-01-01T00:00:00Z")));
        let facts = ApplicationFacts {
            readiness: Readiness::NotReady {
                reason: NotReadyReason::DevCenterUnavailable,
                message: "down".into(),
            },
            ..ready_facts()
        };
        let broken = desired_status(&app(Some(first.clone())), &facts, None);
        assert!(needs_write(Some(&first), &broken, minute));
        let ready = &broken.conditions[0];
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.observed_generation
            ),
            ("False", "DevCenterUnavailable", Some(3))
        );
        assert_ne!(
            ready.last_transition_time,
            first.conditions[0].last_transition_time
        );
        assert_eq!(broken.last_sync_time, first.last_sync_time);
    }

    #[test]
    fn broken_applications_are_rechecked_with_backoff() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_check(minute, 0), minute);
        assert_eq!(next_check(minute, 1), Duration::from_secs(5));
        assert_eq!(next_check(minute, 2), Duration::from_secs(10));
        assert_eq!(next_check(minute, 9), minute);
    }

    #[test]
    fn rejections_say_what_to_fix() {
        let rejected = |code| crate::devcenter::Error::Rejected {
            path: APPLICATION_INQUIRY_PATH,
            code,
            message: "no".into(),
        };
        let (reason, message) = classify(&app(None), &rejected(ResultCode::InvalidSignature));
        assert_eq!(reason, NotReadyReason::CredentialsRejected);
        assert!(
            message.contains(r#"under "privateKey" in Secret acqp/demo-credentials"#),
            "{message}"
        );
        let (reason, _) = classify(&app(None), &rejected(ResultCode::AccessDenied));
        assert_eq!(reason, NotReadyReason::PermissionDenied);
        let unavailable = crate::devcenter::Error::Unavailable {
            path: APPLICATION_INQUIRY_PATH,
            attempts: 5,
            last: "HTTP 503".into(),
        };
        assert_eq!(
            classify(&app(None), &unavailable).0,
            NotReadyReason::DevCenterUnavailable
        );
    }
}
