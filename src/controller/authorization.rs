//! The AcqpAuthorization controller: a thin shell that gathers what [`reconcile::decide`] needs,
//! carries out its actions (Developer Center calls, the Secret, Events) and writes the status.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{StreamExt as _, TryStreamExt as _, stream::BoxStream};
use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Api, Resource, ResourceExt as _,
    api::{Patch, PatchParams, PostParams},
    runtime::{
        Controller, Predicate as _, PredicateConfig, WatchStreamExt as _,
        controller::{self, Action as Requeue},
        events::{Event as KubeEvent, EventType},
        finalizer::{self, Event as Finalized},
        predicates,
        reflector::{self, ObjectRef},
        watcher,
    },
};
use serde_json::json;

use super::{
    Context,
    context::FIELD_MANAGER,
    freshness::Freshness,
    registry::{AppKey, Application},
};
use crate::{
    api::{AcqpAuthorization, AcqpAuthorizationStatus, DeletionPolicy, DeveloperCenterApplication},
    devcenter::{
        self,
        wire::{AgentToken, GENERATE_URL_PATH, GenerateUrlRequest, ResultCode},
    },
    reconcile::{
        self, Action, Decision, Input, IssuedUrl, Reason, Refusal, UrlAnswer,
        annotations::{PAUSED, REFRESH_REQUESTED_AT, REINVITE_REQUESTED_AT},
        observe::{self, Found, FoundApplication, FoundRemote, FoundSecret},
        secret::{DesiredSecret, MANAGED_BY, MANAGED_BY_LABEL},
    },
};

/// Holds a resource with `deletionPolicy: Retain` until the operator has released its Secret.
/// With Delete, the Secret's owner reference has the garbage collector delete it, so no
/// finalizer is set: deletion never waits on the operator, also not in a namespace being deleted
/// whose Role the operator loses first.
const FINALIZER: &str = "acqp-operator.io/token-secret";

/// Where a client-side `kubectl apply` keeps the whole object it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How long a reconcile whose cached copy is older than the operator's last write waits for the
/// watch to bring that write: our own status writes trigger no reconcile, so a timer does.
const CACHE_CATCH_UP: Duration = Duration::from_millis(100);

/// Why a reconcile failed; each is retried with a delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The Developer Center could not be asked (retryable) or broke the contract.
    #[error(transparent)]
    DevCenter(#[from] devcenter::Error),
    /// The Secret could not be written: the grant's token is no longer in the snapshot.
    #[error("the Developer Center's record for ACQP {0} changed meanwhile; retrying")]
    RecordChanged(String),
    /// The token Secret is not what the decision saw: it appeared, went or changed meanwhile.
    /// Nothing was written; the decision is made again on a fresh read of the Secret.
    #[error("Secret {0} changed meanwhile; deciding again")]
    SecretChanged(String),
    /// The application's client went away between deciding and acting (it was just changed).
    #[error("application {0} changed meanwhile; retrying")]
    ApplicationChanged(String),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::DevCenter(error) => error.metric_label(),
            Error::RecordChanged(_) => "record_changed",
            Error::SecretChanged(_) => "secret_changed",
            Error::ApplicationChanged(_) => "application_changed",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

/// Where the controller's watches write what they see: the stores in [`super::Caches`].
pub struct CacheWriters {
    /// Fills `Caches::authorizations`.
    pub authorizations: reflector::store::Writer<AcqpAuthorization>,
    /// Fills `Caches::token_secrets`.
    pub token_secrets: reflector::store::Writer<Secret>,
}

/// Runs the controller until the context stops. `wake` comes from the poller: it names the
/// resources whose remote record or application changed.
///
/// One watch per kind feeds both the caches every part of the operator reads and the
/// controller's triggers, and the caches hold no `managedFields` (the operator never reads
/// them, and they are a third of an object's size) and no copy of the spec that a client-side
/// `kubectl apply` leaves in an annotation (as large again as the spec).
pub async fn run(
    ctx: Arc<Context>,
    wake: BoxStream<'static, ObjectRef<AcqpAuthorization>>,
    writers: CacheWriters,
) {
    let authorizations = ctx
        .watch(watcher::Config::default(), ctx.authorizations.clone())
        .modify(|a| {
            a.managed_fields_mut().clear();
            a.annotations_mut().remove(LAST_APPLIED);
        })
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| {
                ctx.claims.observe(event);
                if let watcher::Event::Delete(object) = event {
                    ctx.mail.forget(object);
                }
            }
        })
        .reflect(writers.authorizations)
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| ctx.status_writes.observe(event)
        })
        .touched_objects()
        // Our own status writes change none of these; a spec edit, the deletion request, the
        // finalizer we add (after which the finalizer helper waits for the next event) and a
        // request annotation do.
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(request_annotations),
            PredicateConfig::default(),
        );
    // Only Secrets the operator labelled are cached: never every Secret of the cluster.
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let token_secrets = ctx
        .watch(managed, ctx.token_secrets.clone())
        // Ownership, labels, annotations and data matter here, and the resourceVersion: it
        // is the precondition of every update, so a Secret replaced meanwhile is never written.
        .modify(|s| {
            let meta = &mut s.metadata;
            meta.managed_fields = None;
            meta.uid = None;
            meta.creation_timestamp = None;
        })
        .reflect(writers.token_secrets)
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| ctx.secret_writes.observe(event)
        })
        .touched_objects();
    Controller::for_stream(authorizations, ctx.authorizations.clone())
        .with_config(controller::Config::default().concurrency(ctx.concurrency))
        .owns_stream(token_secrets)
        .reconcile_on(wake)
        .graceful_shutdown_on(ctx.stopped())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn reconcile(object: Arc<AcqpAuthorization>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    ctx.metrics.reconciled("acqpauthorization");
    let api: Api<AcqpAuthorization> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let uid = object.uid().unwrap_or_default();
    let retains = object.spec.token_secret.deletion_policy == DeletionPolicy::Retain;
    let requeue = if retains {
        finalizer::finalizer(&api, FINALIZER, object, |event| async {
            match event {
                Finalized::Apply(object) => apply(&object, &ctx).await,
                Finalized::Cleanup(object) => release_secret(&object, &ctx).await,
            }
        })
        .await
        .map_err(|error| Error::Finalizer(Box::new(error)))?
    } else if object.finalizers().iter().any(|f| f == FINALIZER) {
        // Set while the policy was Retain, or by an operator that finalized every resource.
        // Its removal is an event of its own that brings the next reconcile.
        remove_finalizer(&api, &object).await?;
        Requeue::await_change()
    } else if object.meta().deletion_timestamp.is_some() {
        // Someone else's finalizer holds it; the garbage collector takes the Secret after.
        Requeue::await_change()
    } else {
        apply(&object, &ctx).await?
    };
    ctx.retries.succeeded(&uid);
    Ok(requeue)
}

fn error_policy(object: Arc<AcqpAuthorization>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics
        .reconcile_failed("acqpauthorization", error.metric_label());
    tracing::warn!(
        name = %object.name_any(),
        namespace = %object.namespace().unwrap_or_default(),
        %error,
        "reconcile failed; retrying"
    );
    Requeue::requeue(ctx.retries.failed(&object.uid().unwrap_or_default()))
}

/// Brings one resource closer to what its spec asks for.
///
/// Deciding reads only caches, and steady-state reconciles (no actions) send nothing to the API
/// server. The caches can lag behind it, though. A reconcile therefore decides only once both
/// caches show the operator's own last writes ([`PendingWrites`]), or it would repeat the last
/// transition's side effects (a second UrlIssued Event and webhook, a second Authorized Event),
/// write a status derived from an older one, or try to create its Secret twice; where resource
/// versions cannot be ordered, the resource is read instead. Someone else's changes need no such
/// wait: every Secret write carries a precondition (create when the cache has none, update only
/// the version the cache has), so a Secret that appeared, went or changed meanwhile is never
/// overwritten, and the decision is made again on a fresh read of the Secret.
///
/// [`PendingWrites`]: super::freshness::PendingWrites
async fn apply(object: &AcqpAuthorization, ctx: &Context) -> Result<Requeue, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let secret_ref = ObjectRef::new(&object.token_secret_name()).within(&namespace);
    // `object` is the copy the controller queued this reconcile with: it can predate the
    // operator's last write. The copies to decide on are read after the pending writes were
    // looked up.
    let (status_freshness, cached) = ctx.status_writes.freshness(&namespace, &name, || {
        ctx.authorizations.get(&ObjectRef::from_obj(object))
    });
    let (secret_freshness, cached_secret) =
        ctx.secret_writes
            .freshness(&namespace, &secret_ref.name, || {
                ctx.token_secrets.get(&secret_ref)
            });
    if [status_freshness, secret_freshness].contains(&Freshness::Behind) {
        // The watch is bringing the operator's own last write; the requeue finds it cached.
        return Ok(Requeue::requeue(CACHE_CATCH_UP));
    }
    let read;
    let latest = if status_freshness == Freshness::Unknown {
        let api: Api<AcqpAuthorization> = Api::namespaced(ctx.client.clone(), &namespace);
        read = api.get_opt(&name).await?;
        read.as_ref()
    } else {
        cached.as_deref()
    };
    // Gone or being deleted: nothing to act on (the deletion brings a reconcile of its own, and
    // a Retain finalizer's release runs there).
    let Some(latest) = latest.filter(|l| l.metadata.deletion_timestamp.is_none()) else {
        return Ok(Requeue::await_change());
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match act(latest, cached_secret.as_deref(), &secrets, ctx).await {
        Err(Error::SecretChanged(name)) => {
            tracing::debug!(%namespace, secret = %name, "Secret changed meanwhile; deciding again");
            let fresh = secrets.get_opt(&name).await?;
            act(latest, fresh.as_ref(), &secrets, ctx).await
        }
        done => done,
    }
}

fn application_of(object: &AcqpAuthorization, ctx: &Context) -> Option<Arc<Application>> {
    ctx.applications.get(
        &object.namespace().unwrap_or_default(),
        &object.spec.application_ref.name,
    )
}

/// What [`reconcile::decide`] needs to know about `object`, from the caches and the registry
/// (and, for an application not registered yet, whether it exists at all).
async fn gather<'a>(
    object: &'a AcqpAuthorization,
    app: Option<&Application>,
    secret: Option<&Secret>,
    ctx: &Context,
) -> Result<Input<'a>, Error> {
    let application = match app {
        Some(app) => FoundApplication::Checked {
            readiness: &app.facts.readiness,
            integrated_products: &app.facts.integrated_products,
            poll_interval: app.poll_interval,
        },
        // Not registered: either it does not exist or the application controller has not
        // loaded it yet. Only the API server can tell.
        None => {
            let apps: Api<DeveloperCenterApplication> =
                Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
            match apps.get_opt(&object.spec.application_ref.name).await? {
                None => FoundApplication::Missing,
                Some(_) => FoundApplication::Loading,
            }
        }
    };
    let record = app
        .filter(|a| a.snapshot_taken())
        .map(|a| a.record(&object.spec.acqp.id));
    let claimants = ctx.claimants(
        &AppKey {
            namespace: object.namespace().unwrap_or_default(),
            name: object.spec.application_ref.name.clone(),
        },
        &object.spec.acqp.id,
    );
    let found = Found {
        application,
        remote: record
            .as_ref()
            .map_or(FoundRemote::NotListed, |r| FoundRemote::Listed(r.as_ref())),
        secret: secret.map_or(FoundSecret::Missing, FoundSecret::Object),
        // The index only narrows the search; the cached objects decide.
        candidates: claimants.iter().map(AsRef::as_ref).collect(),
    };
    Ok(observe::input(object, &found, jiff::Timestamp::now()))
}

/// Decides on fresh reads and carries the decision out: the Secret first (a precondition that
/// fails there leaves nothing done, so deciding again repeats nothing), then the Developer
/// Center call, the Events and the status. After a call the decision is made once more with
/// its answer; that decision's Secret writes are the ones already done.
async fn act(
    object: &AcqpAuthorization,
    secret: Option<&Secret>,
    secrets: &Api<Secret>,
    ctx: &Context,
) -> Result<Requeue, Error> {
    let app = application_of(object, ctx);
    let input = gather(object, app.as_deref(), secret, ctx).await?;
    let mut decision = reconcile::decide(&input);
    for action in &decision.actions {
        if let Action::RefreshRemote = action
            && let Some(app) = &app
        {
            app.refresh_acquirer(&object.spec.acqp.id);
        }
        if let Action::WriteSecret(desired) = action {
            let record = app.as_ref().and_then(|a| a.record(&object.spec.acqp.id));
            let token = record
                .filter(|r| r.agent_token.fingerprint() == desired.fingerprint)
                .map(|r| r.agent_token)
                .ok_or_else(|| Error::RecordChanged(object.spec.acqp.id.clone()))?;
            write_secret(object, desired, &token, secret, secrets, ctx).await?;
        }
    }
    if let Some(Action::IssueUrl {
        request_id,
        products,
    }) = decision
        .actions
        .iter()
        .find(|a| matches!(a, Action::IssueUrl { .. }))
        .cloned()
    {
        let answer = issue_url(object, app.as_deref(), request_id, products, ctx).await?;
        if let UrlAnswer::Issued(issued) = &answer {
            deliver_url(object, issued, ctx);
        }
        decision = reconcile::decide(&Input {
            answer: Some(answer),
            ..input
        });
    }
    publish_events(object, &decision, ctx).await;
    let mail_retry = ctx
        .mail
        .settle(object, &mut decision.status, app.as_deref(), ctx);
    write_status(object, &decision.status, ctx).await?;
    Ok(requeue(decision.requeue_after, mail_retry))
}

/// Asks the Developer Center for an authorization URL; a refusal a human must resolve is an
/// answer, any other failure an error.
async fn issue_url(
    object: &AcqpAuthorization,
    app: Option<&Application>,
    request_id: String,
    products: Vec<crate::api::Product>,
    ctx: &Context,
) -> Result<UrlAnswer, Error> {
    // Ready implies loaded credentials, and only a Ready application leads to IssueUrl.
    let (app_key, client) = app
        .and_then(|a| Some((&a.key, a.client.clone()?)))
        .ok_or_else(|| Error::ApplicationChanged(object.spec.application_ref.name.clone()))?;
    let request = GenerateUrlRequest {
        authorization_request_id: request_id,
        acquirer_id: object.spec.acqp.id.clone(),
        products: products.clone(),
    };
    let started = std::time::Instant::now();
    let outcome = client.generate_url(&request).await;
    let label = outcome
        .as_ref()
        .map_or_else(|e| e.metric_label(), |_| "success");
    ctx.metrics
        .observe_call(app_key, GENERATE_URL_PATH, label, started.elapsed());
    match outcome {
        Ok(response) => Ok(UrlAnswer::Issued(IssuedUrl {
            url: response.authorization_url,
            expires_at: response.expiry_time,
            products,
        })),
        Err(error) => match refusal(&error) {
            Some((refusal, message)) => Ok(UrlAnswer::Refused {
                refusal,
                message: message.to_owned(),
            }),
            None => Err(error.into()),
        },
    }
}

/// The decision's requeue, sooner when a mail is to be retried; with neither due, the resource
/// waits for a change or for the paced resync ([`super::resync`]).
fn requeue(after: Option<Duration>, mail_retry: Option<Duration>) -> Requeue {
    match after.into_iter().chain(mail_retry).min() {
        Some(due) => Requeue::requeue(due),
        None => Requeue::await_change(),
    }
}

/// Publishes the transition Events of a decision, counting rotations and grant latency.
async fn publish_events(object: &AcqpAuthorization, decision: &Decision, ctx: &Context) {
    for action in &decision.actions {
        let Action::Event(event) = action else {
            continue;
        };
        if event.reason == Reason::TokenRotated {
            ctx.metrics.token_rotated();
        }
        if event.reason.is_grant() {
            observe_grant_latency(object, ctx);
        }
        let event = KubeEvent {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.as_str().into(),
            note: Some(event.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        ctx.record(&event, &object.object_ref(&())).await;
    }
}

/// Posts a URL just issued to the webhook, when the spec asks for it.
fn deliver_url(object: &AcqpAuthorization, issued: &IssuedUrl, ctx: &Context) {
    let Some(webhook) = object
        .spec
        .invitation
        .as_ref()
        .and_then(|i| i.webhook.as_ref())
    else {
        return;
    };
    let body = json!({
        "acqp": {"id": object.spec.acqp.id, "name": object.spec.acqp.name},
        "products": issued.products,
        "authorizationUrl": issued.url,
        "expiresAt": issued.expires_at,
        "resource": {"namespace": object.namespace(), "name": object.name_any()},
    });
    let namespace = object.namespace().unwrap_or_default();
    let url = webhook.url.clone();
    ctx.invitations
        .deliver(&ctx.endpoint_policy, &namespace, url, body);
}

fn observe_grant_latency(object: &AcqpAuthorization, ctx: &Context) {
    let issued = object
        .status
        .as_ref()
        .and_then(|s| s.authorization_url_issued_at.as_ref());
    if let Some(issued) = issued {
        let latency = jiff::Timestamp::now().duration_since(issued.0);
        ctx.metrics.observe_grant_latency(latency.unsigned_abs());
    }
}

/// Writes the token Secret; the token goes only into its data. `seen` is the Secret the
/// decision was made on: none means create (which fails if one exists by now), otherwise a
/// server-side apply conditional on the version seen. Either precondition failing means the
/// Secret is not what the decision saw ([`Error::SecretChanged`]), and nothing was written.
async fn write_secret(
    object: &AcqpAuthorization,
    desired: &DesiredSecret,
    token: &AgentToken,
    seen: Option<&Secret>,
    secrets: &Api<Secret>,
    ctx: &Context,
) -> Result<(), Error> {
    let owner = object.controller_owner_ref(&()).map(|mut owner| {
        // Deletion goes through our finalizer (which honours deletionPolicy), not through GC.
        owner.block_owner_deletion = Some(false);
        owner
    });
    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            labels: Some(desired.labels.clone()),
            annotations: Some(desired.annotations.clone()),
            owner_references: owner.map(|o: OwnerReference| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            desired.key.clone(),
            ByteString(token.expose().as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let written = match seen.and_then(|s| s.metadata.resource_version.clone()) {
        None => {
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            secrets.create(&params, &secret).await
        }
        Some(version) => {
            secret.metadata.resource_version = Some(version);
            let params = PatchParams::apply(FIELD_MANAGER).force();
            secrets
                .patch(&desired.name, &params, &Patch::Apply(&secret))
                .await
        }
    };
    match written {
        Ok(written) => {
            ctx.secret_writes.wrote(&written);
            Ok(())
        }
        // 409: it exists (create) or is another version (apply); 404: it went meanwhile.
        Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => {
            Err(Error::SecretChanged(desired.name.clone()))
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes the status when it changed, with server-side apply of the status subresource, and
/// records what was written (see [`super::freshness`]).
async fn write_status(
    object: &AcqpAuthorization,
    status: &AcqpAuthorizationStatus,
    ctx: &Context,
) -> Result<(), Error> {
    if object.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<AcqpAuthorization> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = api
        .patch_status(&object.name_any(), &params, &Patch::Apply(&patch))
        .await?;
    ctx.status_writes.wrote(&written);
    Ok(())
}

/// On deletion with `deletionPolicy: Retain`: releases the Secret by dropping our owner
/// reference, so the garbage collector keeps it. Only Kubernetes is touched, so deletion never
/// waits for the Developer Center.
async fn release_secret(object: &AcqpAuthorization, ctx: &Context) -> Result<Requeue, Error> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let name = object.token_secret_name();
    let Some(secret) = secrets.get_opt(&name).await? else {
        return Ok(Requeue::await_change());
    };
    if observe::is_controlled_by(&secret.metadata, object) {
        let release = json!({"metadata": {"ownerReferences": null}});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&release))
            .await?;
    }
    Ok(Requeue::await_change())
}

/// Removes our finalizer, on the condition that the resource is still the version read (a
/// merge patch carrying `resourceVersion`), so finalizers added meanwhile are never dropped.
async fn remove_finalizer(
    api: &Api<AcqpAuthorization>,
    object: &AcqpAuthorization,
) -> Result<(), Error> {
    let others: Vec<&String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": others,
        "resourceVersion": object.resource_version(),
    }});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A hash of the request annotations (`acqp-operator.io/paused`, `…/refresh-requested-at`,
/// `…/reinvite-requested-at`), so setting one triggers a reconcile and other metadata does not.
fn request_annotations(object: &AcqpAuthorization) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for key in [PAUSED, REFRESH_REQUESTED_AT, REINVITE_REQUESTED_AT] {
        object.annotations().get(key).hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The refusals a human must resolve; other F codes are errors of the operator or the gateway.
fn refusal(error: &devcenter::Error) -> Option<(Refusal, &str)> {
    let devcenter::Error::Rejected { code, message, .. } = error else {
        return None;
    };
    let refusal = match code {
        ResultCode::ProductNotInContract => Refusal::ProductsNotInContract,
        ResultCode::ProductNotIntegrated => Refusal::ProductsNotIntegrated,
        ResultCode::AcquirerNotFound => Refusal::AcqpNotFound,
        ResultCode::AccessDenied => Refusal::PermissionDenied,
        _ => return None,
    };
    Some((refusal, message))
}
