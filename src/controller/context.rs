//! What every controller shares: the Kubernetes client, the application registry, the metrics,
//! the AcqpAuthorization cache, and the wake-up channel from the poller to the reconciler.

use std::sync::Arc;

use futures::{StreamExt as _, stream::BoxStream};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::{
    Resource,
    runtime::{
        events::{Event, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use tokio::sync::{mpsc, watch};

use super::{
    backoff::RetryBackoff,
    claims::{ClaimIndex, ClaimKey},
    freshness::PendingWrites,
    metrics::Metrics,
    namespaces::Scope,
    registry::{AppKey, Registry},
};
use crate::{
    api::AcqpAuthorization,
    devcenter::{RateLimit, policy::EndpointPolicy},
};

/// Records `event` about `reference`. An Event that cannot be recorded is logged and otherwise
/// ignored: Events tell people what happened, the status is what the operator relies on.
pub async fn record(recorder: &Recorder, event: &Event, reference: &ObjectReference) {
    if let Err(error) = recorder.publish(event, reference).await {
        tracing::warn!(%error, reason = %event.reason, "cannot record Event");
    }
}

/// The field manager of every server-side apply, and the Events' reporting controller.
pub const FIELD_MANAGER: &str = "acqp-operator";

/// The operator's views of the cluster, filled by the AcqpAuthorization controller's watches.
pub struct Caches {
    /// Every AcqpAuthorization the operator watches.
    pub authorizations: Store<AcqpAuthorization>,
    /// The token Secrets the operator wrote.
    pub token_secrets: Store<Secret>,
}

/// Shared state of the running operator; handed to reconcilers as `Arc<Context>`.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The DeveloperCenterApplications as the application controller last saw them.
    pub applications: Registry,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The namespaces the operator acts in.
    pub(crate) scope: Scope,
    /// Every AcqpAuthorization the operator watches.
    pub authorizations: Store<AcqpAuthorization>,
    /// The token Secrets the operator wrote (selected by its label).
    pub token_secrets: Store<Secret>,
    /// Who publishes Events, for recorders made per Event (see [`Context::event_recorder`]).
    pub reporter: Reporter,
    /// How many resources one controller reconciles at once.
    pub concurrency: u16,
    /// Failed reconciles in a row per object, for both controllers' retries.
    pub(crate) retries: RetryBackoff,
    /// Which AcqpAuthorizations claim each ACQP, kept with `authorizations`.
    pub(crate) claims: ClaimIndex,
    /// The operator's status writes that the AcqpAuthorization cache does not show yet.
    pub(crate) status_writes: PendingWrites<AcqpAuthorization>,
    /// The operator's token Secret writes that the Secret cache does not show yet.
    pub(crate) secret_writes: PendingWrites<Secret>,
    /// The rate limit of each application's Developer Center client.
    pub rate_limit: RateLimit,
    /// Where Developer Center clients and invitation webhooks may connect.
    pub endpoint_policy: Arc<EndpointPolicy>,
    /// Invitation webhook deliveries in flight, bounded.
    pub(crate) invitations: super::invitation::Deliveries,
    /// Invitation and status-change mails in flight, bounded like webhook deliveries.
    pub(crate) mail: super::email::Mailer,
    wakes: mpsc::UnboundedSender<ObjectRef<AcqpAuthorization>>,
    stop: watch::Sender<bool>,
}

impl Context {
    /// A context, and the stream of AcqpAuthorizations to reconcile because their remote record
    /// or their application changed (for the AcqpAuthorization controller's `reconcile_on`).
    pub fn new(
        client: kube::Client,
        scope: Scope,
        caches: Caches,
        concurrency: u16,
        rate_limit: RateLimit,
    ) -> (Self, BoxStream<'static, ObjectRef<AcqpAuthorization>>) {
        let (wakes, woken) = mpsc::unbounded_channel();
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let context = Self {
            reporter,
            client,
            applications: Registry::default(),
            metrics: Metrics::new(),
            scope,
            authorizations: caches.authorizations,
            token_secrets: caches.token_secrets,
            concurrency,
            retries: RetryBackoff::default(),
            claims: ClaimIndex::default(),
            status_writes: PendingWrites::default(),
            secret_writes: PendingWrites::default(),
            rate_limit,
            endpoint_policy: Arc::default(),
            invitations: super::invitation::Deliveries::default(),
            mail: super::email::Mailer::default(),
            wakes,
            stop: watch::Sender::new(false),
        };
        let stream = futures::stream::unfold(woken, |mut woken| async move {
            woken.recv().await.map(|object| (object, woken))
        });
        (context, stream.boxed())
    }

    /// A recorder that never folds this Event into an earlier one. kube's shared [`Recorder`]
    /// turns Events with the same reason about the same object within six minutes into one
    /// series that keeps the first note, so a second `UrlIssued` would show the first URL.
    /// The operator's Events mark transitions, each with its own message: each gets its own
    /// Event.
    pub fn event_recorder(&self) -> Recorder {
        Recorder::new(self.client.clone(), self.reporter.clone())
    }

    /// Records `event` about `reference` with a recorder of its own ([`Context::event_recorder`]).
    pub async fn record(&self, event: &Event, reference: &ObjectReference) {
        record(&self.event_recorder(), event, reference).await;
    }

    /// A watch of `K` in the operator's namespaces, for the cache whose reader is `cache`.
    pub fn watch<K>(
        &self,
        config: watcher::Config,
        cache: Store<K>,
    ) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        self.scope.watch(&self.client, config, cache)
    }

    /// Resolves once the operator is stopping (a signal, or the leader lease was lost); pass it
    /// to `Controller::graceful_shutdown_on`.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            // An error means the sender is gone, which also means stopping.
            let _ = stop.wait_for(|stopping| *stopping).await;
        }
    }

    /// Tells every controller to finish its current work and stop.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The AcqpAuthorizations that reference the application `key`.
    pub(crate) fn authorizations_of(&self, key: &AppKey) -> Vec<Arc<AcqpAuthorization>> {
        self.authorizations.state_filter(|authorization| {
            authorization.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                && authorization.spec.application_ref.name == key.name
        })
    }

    /// The cached AcqpAuthorizations of the application `key` that claim the ACQP `acqp_id`.
    pub(crate) fn claimants(&self, key: &AppKey, acqp_id: &str) -> Vec<Arc<AcqpAuthorization>> {
        let claim = ClaimKey {
            namespace: key.namespace.clone(),
            application: key.name.clone(),
            acqp_id: acqp_id.to_owned(),
        };
        self.claims
            .claimants(&claim)
            .iter()
            .filter_map(|object| self.authorizations.get(object))
            .collect()
    }

    /// The channel [`Context::wake`] sends on, for a task that outlives its reconcile.
    pub(crate) fn waker(&self) -> mpsc::UnboundedSender<ObjectRef<AcqpAuthorization>> {
        self.wakes.clone()
    }

    /// Asks the AcqpAuthorization controller to reconcile these resources.
    pub(crate) fn wake<'a>(&self, authorizations: impl IntoIterator<Item = &'a AcqpAuthorization>) {
        for authorization in authorizations {
            // Fails only once the controller has stopped, when there is no one left to wake.
            let _ = self.wakes.send(ObjectRef::from_obj(authorization));
        }
    }
}
