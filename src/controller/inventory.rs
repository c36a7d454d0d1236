//! Gauges computed at scrape time from what the operator already holds — the AcqpAuthorization
//! cache, the application registry and leadership — the way kube-state-metrics exposes custom
//! resources. Nothing here is counted by a reconciler: every scrape builds the series afresh,
//! so they are right after a restart, and a deleted resource's series simply stops.
//!
//! Cardinality stays bounded: a resource gets a series of its own only while an alert must
//! name it (Stalled, or waiting for the ACQP). A settled (Active) authorization adds nothing;
//! the by-reason count has one series per phase and reason in use.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::Store;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry as MetricRegistry,
};

use super::{metrics::phase_label, registry::Registry};
use crate::api::{AcqpAuthorization, Phase};
use crate::reconcile::application::Readiness;

/// The condition types these gauges read (kstatus).
const READY: &str = "Ready";
const STALLED: &str = "Stalled";

/// Names the resource an alert is about, the way `kubectl get acqpauth -n NAMESPACE NAME` does,
/// with the application and the ACQP the message needs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthorizationLabels {
    namespace: String,
    authorization: String,
    application: String,
    acqp_id: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExpiryLabels {
    namespace: String,
    authorization: String,
    application: String,
    acqp_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReasonLabels {
    phase: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplicationLabels {
    namespace: String,
    application: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplicationKeyLabels {
    namespace: String,
    application: String,
}

type TimestampGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A registry holding this scrape's gauges (prefix `acqp_operator`), to encode after the
/// operator's counters.
pub(crate) fn scrape(
    authorizations: &Store<AcqpAuthorization>,
    applications: &Registry,
    leading: bool,
) -> MetricRegistry {
    let mut registry = MetricRegistry::with_prefix("acqp_operator");

    let leader = Gauge::<i64>::default();
    leader.set(i64::from(leading));
    registry.register(
        "leader",
        "1 while this replica leads and runs the controllers, 0 on a standby",
        leader,
    );

    let stalled = Family::<AuthorizationLabels, Gauge>::default();
    let awaiting_since = Family::<AuthorizationLabels, TimestampGauge>::default();
    let url_expiry = Family::<ExpiryLabels, TimestampGauge>::default();
    let by_reason = Family::<ReasonLabels, Gauge>::default();
    let mut reasons: BTreeMap<ReasonLabels, i64> = BTreeMap::new();
    for authorization in authorizations.state() {
        let facts = Facts::of(&authorization);
        *reasons
            .entry(ReasonLabels {
                phase: phase_label(facts.phase),
                reason: facts.ready_reason.to_owned(),
            })
            .or_default() += 1;
        if facts.stalled {
            stalled
                .get_or_create(&facts.labels(facts.ready_reason))
                .set(1);
        }
        if facts.phase == Phase::AwaitingAuthorization {
            // Ready turned False when the wait began and stays so across re-issued URLs (they
            // last a day), so its transition time says how long the ACQP has been asked.
            if let Some(since) = facts.ready_since.or(facts.url_issued) {
                awaiting_since
                    .get_or_create(&facts.labels(facts.ready_reason))
                    .set(seconds(since));
            }
            if let Some(expiry) = facts.url_expiry {
                url_expiry
                    .get_or_create(&facts.expiry_labels())
                    .set(seconds(expiry));
            }
        }
    }
    for (labels, count) in reasons {
        by_reason.get_or_create(&labels).set(count);
    }
    registry.register(
        "authorizations_by_reason",
        "AcqpAuthorizations by phase and Ready reason",
        by_reason,
    );
    registry.register(
        "authorization_stalled",
        "1 for each AcqpAuthorization whose Stalled condition is True (a human must act), by reason",
        stalled,
    );
    registry.register(
        "authorization_awaiting_since_timestamp_seconds",
        "When each AcqpAuthorization waiting for its ACQP began waiting (Ready's last transition), \
         by Ready reason",
        awaiting_since,
    );
    registry.register(
        "authorization_url_expiry_timestamp_seconds",
        "When the unused authorization URL of each AcqpAuthorization waiting for its ACQP expires",
        url_expiry,
    );

    let ready = Family::<ApplicationLabels, Gauge>::default();
    for app in applications.applications() {
        let readiness = &app.facts.readiness;
        let value = i64::from(*readiness == Readiness::Ready);
        let reason = readiness.reason();
        ready
            .get_or_create(&ApplicationLabels {
                namespace: app.key.namespace.clone(),
                application: app.key.name.clone(),
                reason: reason.to_owned(),
            })
            .set(value);
    }
    registry.register(
        "application_ready",
        "1 for each DeveloperCenterApplication that is Ready, 0 if not, with the Ready reason",
        ready,
    );
    let last_sync = Family::<ApplicationKeyLabels, TimestampGauge>::default();
    for app in applications.applications() {
        if let Some(answered) = app.last_answer {
            last_sync
                .get_or_create(&ApplicationKeyLabels {
                    namespace: app.key.namespace.clone(),
                    application: app.key.name.clone(),
                })
                .set(seconds(&Time(answered)));
        }
    }
    registry.register(
        "application_last_sync_timestamp_seconds",
        "When the Developer Center last answered each DeveloperCenterApplication's inquiry \
         (status.lastSyncTime is written only with other changes)",
        last_sync,
    );
    registry
}

/// What the gauges need from one AcqpAuthorization.
struct Facts<'a> {
    namespace: &'a str,
    name: &'a str,
    application: &'a str,
    acqp_id: &'a str,
    phase: Phase,
    ready_reason: &'a str,
    ready_since: Option<&'a Time>,
    stalled: bool,
    url_issued: Option<&'a Time>,
    url_expiry: Option<&'a Time>,
}

impl<'a> Facts<'a> {
    fn of(authorization: &'a AcqpAuthorization) -> Self {
        let status = authorization.status.as_ref();
        let conditions = status.map_or(&[][..], |s| &s.conditions[..]);
        let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
        let ready = find(READY);
        Facts {
            namespace: authorization
                .metadata
                .namespace
                .as_deref()
                .unwrap_or_default(),
            name: authorization.metadata.name.as_deref().unwrap_or_default(),
            application: &authorization.spec.application_ref.name,
            acqp_id: &authorization.spec.acqp.id,
            // Not reconciled yet: the same Pending the by-phase gauge counts it as.
            phase: status.and_then(|s| s.phase).unwrap_or(Phase::Pending),
            ready_reason: ready.map_or("", |c| c.reason.as_str()),
            ready_since: ready.map(|c| &c.last_transition_time),
            stalled: find(STALLED).is_some_and(|c| c.status == "True"),
            url_issued: status.and_then(|s| s.authorization_url_issued_at.as_ref()),
            url_expiry: status.and_then(|s| s.authorization_url_expires_at.as_ref()),
        }
    }

    fn labels(&self, reason: &str) -> AuthorizationLabels {
        AuthorizationLabels {
            namespace: self.namespace.to_owned(),
            authorization: self.name.to_owned(),
            application: self.application.to_owned(),
            acqp_id: self.acqp_id.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn expiry_labels(&self) -> ExpiryLabels {
        ExpiryLabels {
            namespace: self.namespace.to_owned(),
            authorization: self.name.to_owned(),
            application: self.application.to_owned(),
            acqp_id: self.acqp_id.to_owned(),
        }
    }
}

/// Unix seconds, as Prometheus timestamps are compared with `time()`.
fn seconds(time: &Time) -> f64 {
    time.0.as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use kube::runtime::{reflector, watcher};
    use prometheus_client::encoding::text::encode;
    use serde_json::{Value, json};

    use super::*;
    use crate::controller::registry::{AppKey, Application, ClientSource};
    use crate::reconcile::application::{ApplicationFacts, NotReadyReason};

    /// An AcqpAuthorization `name` in namespace `team` with `status`.
    fn authorization(name: &str, status: Value) -> AcqpAuthorization {
        serde_json::from_value(json!({
            "apiVersion": "acqp-operator.io/v1alpha1",
            "kind": "AcqpAuthorization",
            "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}")},
            "spec": {
                "applicationRef": {"name": "demo"},
                "acqp": {"id": format!("id{name}")},
                "products": ["CashierPayment"],
            },
            "status": status,
        }))
        .unwrap()
    }

    fn condition(type_: &str, status: &str, reason: &str, since: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "m",
               "lastTransitionTime": since})
    }

    fn awaiting(name: &str) -> AcqpAuthorization {
        authorization(
            name,
            json!({
                "phase": "AwaitingAuthorization",
                "authorizationUrl": "https://consent.example/x",
                "authorizationUrlIssuedAt": "2026-11-27T10:00:00Z",
                "authorizationUrlExpiresAt": "2026-11-28T10:00:00Z",
                "conditions": [
                    condition("Ready", "False", "AwaitingAuthorization", "2026-11-20T08:00:00Z"),
                    condition("Reconciling", "True", "AwaitingAuthorization", "2026-11-20T08:00:00Z"),
                ],
            }),
        )
    }

    fn store(objects: Vec<AcqpAuthorization>) -> Store<AcqpAuthorization> {
        let (store, mut writer) = reflector::store();
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        store
    }

    fn application(registry: &Registry, name: &str, readiness: Readiness, answered: Option<&str>) {
        let key = AppKey {
            namespace: "team".into(),
            name: name.into(),
        };
        let source = ClientSource {
            endpoint: "http://127.0.0.1:9/".into(),
            client_id: format!("SANDBOX_{name}"),
            credentials: None,
        };
        let facts = ApplicationFacts {
            readiness,
            role: None,
            integrated_products: vec![],
        };
        let mut entry = Application::new(key, source, None, facts, Duration::from_secs(60));
        entry.last_answer = answered.map(|at| at.parse().unwrap());
        registry.publish(entry);
    }

    fn exposition(registry: &MetricRegistry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    /// The sample lines (not comments) of an exposition.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn series_name_only_the_resources_an_alert_is_about() {
        let active = authorization(
            "active",
            json!({"phase": "Active", "conditions": [
                condition("Ready", "True", "Authorized", "2026-11-20T08:00:00Z")]}),
        );
        let conflict = authorization(
            "conflict",
            json!({"phase": "Error", "conditions": [
                condition("Ready", "False", "SecretConflict", "2026-11-21T08:00:00Z"),
                condition("Stalled", "True", "SecretConflict", "2026-11-21T08:00:00Z")]}),
        );
        let revoked = authorization(
            "revoked",
            json!({"phase": "Revoked", "conditions": [
                condition("Ready", "False", "Revoked", "2026-11-22T08:00:00Z"),
                condition("Stalled", "True", "Revoked", "2026-11-22T08:00:00Z")]}),
        );
        let fresh = authorization("fresh", Value::Null);
        let authorizations = store(vec![active, awaiting("waiting"), conflict, revoked, fresh]);
        let applications = Registry::default();
        application(
            &applications,
            "demo",
            Readiness::Ready,
            Some("2026-11-20T08:00:00Z"),
        );
        application(
            &applications,
            "broken",
            Readiness::NotReady {
                reason: NotReadyReason::DevCenterUnavailable,
                message: "m".into(),
            },
            None,
        );

        let text = exposition(&scrape(&authorizations, &applications, true));
        let mut lines = samples(&text);
        lines.sort_unstable();
        let who = |name: &str| {
            format!(
                r#"namespace="team",authorization="{name}",application="demo",acqp_id="id{name}""#
            )
        };
        let mut expected = vec![
            "acqp_operator_leader 1".to_owned(),
            r#"acqp_operator_authorizations_by_reason{phase="Active",reason="Authorized"} 1"#.into(),
            r#"acqp_operator_authorizations_by_reason{phase="AwaitingAuthorization",reason="AwaitingAuthorization"} 1"#.into(),
            r#"acqp_operator_authorizations_by_reason{phase="Error",reason="SecretConflict"} 1"#.into(),
            r#"acqp_operator_authorizations_by_reason{phase="Pending",reason=""} 1"#.into(),
            r#"acqp_operator_authorizations_by_reason{phase="Revoked",reason="Revoked"} 1"#.into(),
            format!(r#"acqp_operator_authorization_stalled{{{},reason="SecretConflict"}} 1"#, who("conflict")),
            format!(r#"acqp_operator_authorization_stalled{{{},reason="Revoked"}} 1"#, who("revoked")),
            // Ready's transition (a week earlier), not the current URL's issue time.
            format!(
                r#"acqp_operator_authorization_awaiting_since_timestamp_seconds{{{},reason="AwaitingAuthorization"}} 1795161600.0"#,
                who("waiting")
            ),
            format!(
                r#"acqp_operator_authorization_url_expiry_timestamp_seconds{{{}}} 1795860000.0"#,
                who("waiting")
            ),
            r#"acqp_operator_application_ready{namespace="team",application="demo",reason="Connected"} 1"#.into(),
            r#"acqp_operator_application_ready{namespace="team",application="broken",reason="DevCenterUnavailable"} 0"#.into(),
            r#"acqp_operator_application_last_sync_timestamp_seconds{namespace="team",application="demo"} 1795161600.0"#.into(),
        ];
        expected.sort_unstable();
        assert_eq!(lines, expected, "in\n{text}");
    }

    #[test]
    fn a_standby_says_so_and_names_nothing() {
        let text = exposition(&scrape(&store(vec![]), &Registry::default(), false));
        assert_eq!(samples(&text), ["acqp_operator_leader 0"], "in\n{text}");
    }

    /// The series count at N = 10,000 (documented in the chart README): every resource waiting
    /// for its ACQP is the worst case, two series each; settled ones add none.
    #[test]
    fn series_count_at_ten_thousand_resources() {
        const N: usize = 10_000;
        let waiting: Vec<_> = (0..N).map(|i| awaiting(&format!("a{i}"))).collect();
        let authorizations = store(waiting);
        let applications = Registry::default();
        application(&applications, "demo", Readiness::Ready, None);
        let started = Instant::now();
        let text = exposition(&scrape(&authorizations, &applications, true));
        let elapsed = started.elapsed();
        let count = |prefix: &str| {
            samples(&text)
                .iter()
                .filter(|l| l.starts_with(prefix))
                .count()
        };
        assert_eq!(
            count("acqp_operator_authorization_awaiting_since_timestamp_seconds{"),
            N
        );
        assert_eq!(
            count("acqp_operator_authorization_url_expiry_timestamp_seconds{"),
            N
        );
        assert_eq!(count("acqp_operator_authorization_stalled{"), 0);
        // leader, one by-reason count, one application.
        assert_eq!(samples(&text).len(), 2 * N + 3);
        eprintln!(
            "SERIES N={N} awaiting: {} series, {} bytes, built and encoded in {elapsed:?}",
            samples(&text).len(),
            text.len()
        );

        let settled: Vec<_> = (0..N)
            .map(|i| {
                authorization(
                    &format!("a{i}"),
                    json!({"phase": "Active", "conditions": [
                        condition("Ready", "True", "Authorized", "2026-11-20T08:00:00Z")]}),
                )
            })
            .collect();
        let text = exposition(&scrape(&store(settled), &applications, true));
        assert_eq!(samples(&text).len(), 3, "in\n{text}");
    }
}
