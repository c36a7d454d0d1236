//! Prometheus metrics (`acqp_operator_*`) and the `/metrics`, `/healthz`, `/readyz` server.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::FutureExt as _;

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse};
use kube::runtime::reflector::Store;
use prometheus_client::{
    encoding::{
        EncodeLabelSet,
        text::{encode_eof, encode_registry},
    },
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::sync::watch;

use super::registry::AppKey;
use crate::api::{AcqpAuthorization, Phase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    namespace: String,
    application: String,
    path: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// A histogram constructor that is a plain `fn`, so the family's type can be named.
type HistogramFn = fn() -> Histogram;

fn call_duration_histogram() -> Histogram {
    // 10 ms .. ~40 s: signed calls are usually fast, retries with backoff are not.
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

/// The operator's metrics; cheap to clone, clones update the same series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    devcenter_calls: Family<CallLabels, Counter>,
    /// The call series of each application, so that a deleted application's go with it.
    calls_of: Arc<Mutex<HashMap<AppKey, HashSet<CallLabels>>>>,
    devcenter_call_duration: Family<PathLabels, Histogram, HistogramFn>,
    authorizations: Family<PhaseLabels, Gauge>,
    token_rotations: Counter,
    grant_latency: Histogram,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every series under the `acqp_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("acqp_operator");
        let reconciles = Family::default();
        registry.register(
            "reconciles",
            "Reconciliations by controller",
            reconciles.clone(),
        );
        let reconcile_errors = Family::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations and polls by controller and reason",
            reconcile_errors.clone(),
        );
        let devcenter_calls = Family::default();
        registry.register(
            "devcenter_calls",
            "Developer Center calls by path and result (a paginated list counts once)",
            devcenter_calls.clone(),
        );
        let devcenter_call_duration =
            Family::new_with_constructor(call_duration_histogram as HistogramFn);
        registry.register(
            "devcenter_call_duration_seconds",
            "Developer Center call latency by path, retries included",
            devcenter_call_duration.clone(),
        );
        let authorizations = Family::default();
        registry.register(
            "authorizations",
            "AcqpAuthorizations by phase",
            authorizations.clone(),
        );
        let token_rotations = Counter::default();
        registry.register(
            "token_rotations",
            "Agent-Tokens replaced in a token Secret",
            token_rotations.clone(),
        );
        // 1 s .. ~4.5 days: a grant is a human clicking a link.
        let grant_latency = Histogram::new(exponential_buckets(1.0, 3.0, 12));
        registry.register(
            "grant_latency_seconds",
            "Seconds from an authorization URL being issued to the ACQP's grant",
            grant_latency.clone(),
        );
        let notifications = Family::default();
        registry.register(
            "notifications",
            "Developer Center notifications by answer: accepted, not_leader, invalid_request, \
             unauthenticated",
            notifications.clone(),
        );
        // Every answer from the start, so a rate over them exists before the first rejection.
        for result in NOTIFICATION_RESULTS {
            drop(notifications.get_or_create(&NotificationLabels { result }));
        }
        Self {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            devcenter_calls,
            calls_of: Arc::default(),
            devcenter_call_duration,
            authorizations,
            token_rotations,
            grant_latency,
            notifications,
        }
    }

    /// Counts one reconciliation by `controller` (e.g. `application`, `authorization`).
    pub fn reconciled(&self, controller: &'static str) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// Counts one failed reconciliation (or poll) by `controller`, with a short stable reason.
    pub fn reconcile_failed(&self, controller: &'static str, reason: &str) {
        let labels = ErrorLabels {
            controller,
            reason: reason.to_owned(),
        };
        self.reconcile_errors.get_or_create(&labels).inc();
    }

    /// Records one Developer Center call of application `app`: its path, `success` or an
    /// error's `metric_label()`, and how long it took. The count is per application (its
    /// alert names the application); the duration per path only, as a histogram per
    /// application would be a dozen series each.
    pub fn observe_call(&self, app: &AppKey, path: &str, result: &str, duration: Duration) {
        let labels = CallLabels {
            namespace: app.namespace.clone(),
            application: app.name.clone(),
            path: path.to_owned(),
            result: result.to_owned(),
        };
        self.devcenter_calls.get_or_create(&labels).inc();
        self.calls_of
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(app.clone())
            .or_default()
            .insert(labels);
        self.devcenter_call_duration
            .get_or_create(&PathLabels {
                path: path.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Drops the series of an application that was deleted: applications come and go, and
    /// their series must not pile up.
    pub(crate) fn forget_application(&self, app: &AppKey) {
        let gone = self
            .calls_of
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(app);
        for labels in gone.into_iter().flatten() {
            self.devcenter_calls.remove(&labels);
        }
    }

    /// Counts an Agent-Token written over a previous one.
    pub fn token_rotated(&self) {
        self.token_rotations.inc();
    }

    /// Records the time from an authorization URL being issued to the ACQP granting it.
    pub fn observe_grant_latency(&self, latency: Duration) {
        self.grant_latency.observe(latency.as_secs_f64());
    }

    /// Counts one answer of the notification endpoint by its HTTP status.
    pub(crate) fn notification_answered(&self, status: StatusCode) {
        let result = match status {
            StatusCode::OK => "accepted",
            StatusCode::SERVICE_UNAVAILABLE => "not_leader",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            _ => "invalid_request",
        };
        self.notifications
            .get_or_create(&NotificationLabels { result })
            .inc();
    }

    /// Sets the by-phase gauge from the resources themselves, so it is right after a restart or a
    /// deletion without any reconciler keeping count. Resources without a phase yet are Pending.
    fn count_phases(&self, authorizations: &Store<AcqpAuthorization>) {
        let phases = [
            Phase::Pending,
            Phase::AwaitingAuthorization,
            Phase::Active,
            Phase::Revoked,
            Phase::Error,
        ];
        let state = authorizations.state();
        for phase in phases {
            let count = state
                .iter()
                .filter(|a| {
                    a.status
                        .as_ref()
                        .and_then(|s| s.phase)
                        .unwrap_or(Phase::Pending)
                        == phase
                })
                .count();
            let labels = PhaseLabels {
                phase: phase_label(phase),
            };
            self.authorizations
                .get_or_create(&labels)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text exposition: these metrics, then the ones computed for this scrape.
    fn encode(&self, scraped: &Registry) -> String {
        let mut text = String::new();
        encode_registry(&mut text, &self.registry).expect("writing to a String cannot fail");
        encode_registry(&mut text, scraped).expect("writing to a String cannot fail");
        encode_eof(&mut text).expect("writing to a String cannot fail");
        text
    }
}

/// The `result` labels of `acqp_operator_notifications_total`.
const NOTIFICATION_RESULTS: [&str; 4] = [
    "accepted",
    "not_leader",
    "invalid_request",
    "unauthenticated",
];

pub(super) fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::AwaitingAuthorization => "AwaitingAuthorization",
        Phase::Active => "Active",
        Phase::Revoked => "Revoked",
        Phase::Error => "Error",
    }
}

/// What the health server reads: the metrics and whether the caches have synced.
#[derive(Clone)]
pub(crate) struct HealthState {
    pub(crate) metrics: Metrics,
    pub(crate) authorizations: Store<AcqpAuthorization>,
    /// The registered applications, for the per-application gauges.
    pub(crate) applications: super::Registry,
    /// Whether this replica leads (and so runs the controllers and their caches).
    pub(crate) leading: watch::Receiver<bool>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: HealthState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn metrics(State(state): State<HealthState>) -> impl IntoResponse {
    state.metrics.count_phases(&state.authorizations);
    let leading = *state.leading.borrow();
    let scraped = super::inventory::scrape(&state.authorizations, &state.applications, leading);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(&scraped),
    )
}

/// Ready on a standby (one that is never ready would block rolling updates), and on the leader
/// once its AcqpAuthorization cache has synced.
async fn readyz(State(state): State<HealthState>) -> (StatusCode, &'static str) {
    // Only looks: kube's store wakes a single waiter when it becomes ready, and the controller
    // is already waiting.
    let synced = || {
        state
            .authorizations
            .wait_until_ready()
            .now_or_never()
            .is_some_and(|ready| ready.is_ok())
    };
    if !*state.leading.borrow() || synced() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_series() {
        let metrics = Metrics::new();
        metrics.reconciled("application");
        metrics.reconcile_failed("poller", "unavailable");
        metrics.observe_call(
            &app("ns", "demo"),
            "/p",
            "success",
            Duration::from_millis(30),
        );
        metrics.token_rotated();
        metrics.observe_grant_latency(Duration::from_secs(5));
        let (store, _writer) = kube::runtime::reflector::store();
        metrics.count_phases(&store);
        metrics.notification_answered(StatusCode::UNAUTHORIZED);
        let text = metrics.encode(&Registry::default());
        for line in [
            r#"acqp_operator_reconciles_total{controller="application"} 1"#,
            r#"acqp_operator_reconcile_errors_total{controller="poller",reason="unavailable"} 1"#,
            r#"acqp_operator_devcenter_calls_total{namespace="ns",application="demo",path="/p",result="success"} 1"#,
            r#"acqp_operator_devcenter_call_duration_seconds_count{path="/p"} 1"#,
            r#"acqp_operator_authorizations{phase="Active"} 0"#,
            "acqp_operator_token_rotations_total 1",
            "acqp_operator_grant_latency_seconds_count 1",
            r#"acqp_operator_notifications_total{result="unauthenticated"} 1"#,
            r#"acqp_operator_notifications_total{result="accepted"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    fn app(namespace: &str, name: &str) -> AppKey {
        AppKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_deleted_applications_call_series_go_and_others_stay() {
        let metrics = Metrics::new();
        let second = Duration::from_secs(1);
        metrics.observe_call(&app("a", "gone"), "/p", "success", second);
        metrics.observe_call(&app("a", "gone"), "/p", "unavailable", second);
        metrics.observe_call(&app("b", "kept"), "/p", "success", second);
        metrics.forget_application(&app("a", "gone"));
        let text = metrics.encode(&Registry::default());
        assert!(!text.contains(r#"application="gone""#), "{text}");
        assert!(text.contains(r#"application="kept""#), "{text}");
        assert!(text.contains(r#"devcenter_call_duration_seconds_count{path="/p"} 3"#));
    }
}
