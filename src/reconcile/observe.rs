//! The one way in to [`super::decide`]: turns the objects a reader found into the decision's
//! [`Input`]. The operator reads them from its caches and registry, `plan` from the cluster or
//! the Developer Center; both build the input here, so they differ only in where they read.

use super::application::{NotReadyReason, Readiness};
use super::conditions::{self, READY};
use super::secret::{ACQP_ID_ANNOTATION, FINGERPRINT_ANNOTATION, MANAGED_BY_LABEL, SecretView};
use super::{ApplicationView, Claim, Input, RemoteAuthorization, RemoteView};
use crate::api::{
    AcqpAuthorization, AcqpAuthorizationStatus, AcqpStatus, DEFAULT_POLL_INTERVAL,
    DeveloperCenterApplication, Product, duration,
};
use crate::devcenter::wire::{AgentToken, AuthorizationRecord, AuthorizationStatus};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::Duration;

/// What a reader found for one AcqpAuthorization, before it is interpreted.
pub struct Found<'s> {
    /// The referenced DeveloperCenterApplication.
    pub application: FoundApplication<'s>,
    /// The Developer Center's record of the ACQP.
    pub remote: FoundRemote<'s>,
    /// The Secret named by `spec.tokenSecret`.
    pub secret: FoundSecret<'s>,
    /// AcqpAuthorizations that may claim the same ACQP; the resource itself may be among them.
    pub candidates: Vec<&'s AcqpAuthorization>,
}

/// The referenced application, as far as the reader could tell.
pub enum FoundApplication<'s> {
    /// No DeveloperCenterApplication of that name in the namespace.
    Missing,
    /// It exists, but the operator has not checked it yet.
    Loading,
    /// Checked just now (by the operator, or by `plan` asking the Developer Center).
    Checked {
        /// Whether it can invite ACQPs.
        readiness: &'s Readiness,
        /// Its integrated products.
        integrated_products: &'s [Product],
        /// Its poll interval.
        poll_interval: Duration,
    },
    /// As its status last reported it.
    Reported(&'s DeveloperCenterApplication),
}

/// The Developer Center's record, as far as the reader could tell.
pub enum FoundRemote<'s> {
    /// The application's authorizations have not been listed yet.
    NotListed,
    /// Listed: the ACQP's record, if the list holds one.
    Listed(Option<&'s AuthorizationRecord>),
    /// As the resource's own status last reported it.
    Reported,
}

/// The token Secret, as far as the reader could tell.
pub enum FoundSecret<'s> {
    /// There is none.
    Missing,
    /// The whole object.
    Object(&'s Secret),
    /// Its metadata alone, for readers that may not read Secret data: the fingerprint
    /// annotation stands in for the data.
    Metadata(&'s ObjectMeta),
}

/// The decision's input for `resource` from what was found, at `now`.
pub fn input<'a>(resource: &'a AcqpAuthorization, found: &Found<'_>, now: Timestamp) -> Input<'a> {
    Input {
        resource,
        application: application(&found.application),
        remote: remote(resource, &found.remote),
        secret: secret(resource, &found.secret),
        rivals: rivals(resource, &found.candidates),
        poll_interval: poll_interval(resource, &found.application),
        now,
        answer: None,
    }
}

/// Whether the application's status holds no Ready condition: no operator has checked it yet,
/// and the plan assumes it Ready with every product integrated.
pub fn never_checked(app: &DeveloperCenterApplication) -> bool {
    let status = app.status.as_ref();
    status.is_none_or(|s| conditions::find(&s.conditions, READY).is_none())
}

fn application(found: &FoundApplication<'_>) -> ApplicationView {
    match found {
        FoundApplication::Missing => ApplicationView::NotFound,
        FoundApplication::Loading => ApplicationView::NotReady {
            reason: "Loading".into(),
            message: "the operator is loading the application".into(),
        },
        FoundApplication::Checked {
            readiness,
            integrated_products,
            ..
        } => match readiness {
            Readiness::Ready => ApplicationView::Ready {
                integrated_products: integrated_products.to_vec(),
            },
            Readiness::NotReady {
                reason: NotReadyReason::PermissionDenied,
                ..
            } => ApplicationView::PermissionDenied,
            Readiness::NotReady { reason, message } => ApplicationView::NotReady {
                reason: reason.as_str().into(),
                message: message.clone(),
            },
        },
        FoundApplication::Reported(app) => {
            let status = app.status.clone().unwrap_or_default();
            match conditions::find(&status.conditions, READY) {
                Some(ready) if ready.status == "True" => ApplicationView::Ready {
                    integrated_products: status.integrated_products,
                },
                Some(ready)
                    if NotReadyReason::parse(&ready.reason)
                        == Some(NotReadyReason::PermissionDenied) =>
                {
                    ApplicationView::PermissionDenied
                }
                Some(ready) => ApplicationView::NotReady {
                    reason: ready.reason.clone(),
                    message: ready.message.clone(),
                },
                None => ApplicationView::Ready {
                    integrated_products: Product::ALL.to_vec(),
                },
            }
        }
    }
}

fn remote(resource: &AcqpAuthorization, found: &FoundRemote<'_>) -> RemoteView {
    match found {
        FoundRemote::NotListed => RemoteView::Unknown,
        FoundRemote::Listed(None) => RemoteView::Absent,
        FoundRemote::Listed(Some(record)) => RemoteView::Present(remote_record(record)),
        FoundRemote::Reported => remote_from_status(resource.status.as_ref()),
    }
}

/// The decision's view of a Developer Center record: the token only as its fingerprint.
fn remote_record(record: &AuthorizationRecord) -> RemoteAuthorization {
    RemoteAuthorization {
        status: match record.status {
            AuthorizationStatus::Active => AcqpStatus::Active,
            AuthorizationStatus::Inactive => AcqpStatus::Inactive,
        },
        products: record.products.clone(),
        token_fingerprint: record.agent_token.fingerprint(),
        update_time: record.update_time,
    }
}

/// The Developer Center's record as the resource's status last reported it.
fn remote_from_status(status: Option<&AcqpAuthorizationStatus>) -> RemoteView {
    let Some(status) = status else {
        return RemoteView::Absent;
    };
    match status.acqp_status {
        None => RemoteView::Absent,
        Some(acqp_status) => RemoteView::Present(RemoteAuthorization {
            status: acqp_status,
            products: status.authorized_products.clone(),
            token_fingerprint: status.token_fingerprint.clone().unwrap_or_default(),
            update_time: status
                .last_checked_time
                .as_ref()
                .or(status.token_rotated_at.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        }),
    }
}

fn secret(resource: &AcqpAuthorization, found: &FoundSecret<'_>) -> SecretView {
    let (meta, data_fingerprint) = match found {
        FoundSecret::Missing => return SecretView::Missing,
        FoundSecret::Object(secret) => {
            let key = &resource.spec.token_secret.key;
            let data = secret.data.as_ref().and_then(|d| d.get(key));
            let fingerprint = data.map(|bytes| {
                AgentToken::new(String::from_utf8_lossy(&bytes.0).into_owned()).fingerprint()
            });
            (&secret.metadata, fingerprint)
        }
        FoundSecret::Metadata(meta) => {
            let annotations = meta.annotations.as_ref();
            let fingerprint = annotations
                .and_then(|a| a.get(FINGERPRINT_ANNOTATION))
                .cloned();
            (*meta, fingerprint)
        }
    };
    if is_released_for(meta, resource) {
        return SecretView::Released;
    }
    if !is_controlled_by(meta, resource) {
        let owner = match meta.owner_references.as_deref().unwrap_or_default() {
            [] => "it has no owner".to_owned(),
            [owner, ..] => format!("it belongs to {} {}", owner.kind, owner.name),
        };
        return SecretView::Foreign { owner };
    }
    SecretView::Owned {
        data_fingerprint,
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
    }
}

/// Whether `resource` is the controller owner of the object with `meta` (the operator writes
/// only Secrets it controls).
pub fn is_controlled_by(meta: &ObjectMeta, resource: &AcqpAuthorization) -> bool {
    let uid = resource.metadata.uid.as_deref();
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| Some(o.uid.as_str()) == uid && o.controller == Some(true))
}

/// Whether the Secret with `meta` is one the operator released for `resource`'s ACQP: no
/// owner, the managed-by label, and the acqp-id annotation naming the same ACQP.
fn is_released_for(meta: &ObjectMeta, resource: &AcqpAuthorization) -> bool {
    let label = meta.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL));
    let acqp = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ACQP_ID_ANNOTATION));
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .is_empty()
        && label.map(String::as_str) == Some(super::secret::MANAGED_BY)
        && acqp == Some(&resource.spec.acqp.id)
}

/// The other live resources of the same namespace claiming the same ACQP of the same
/// application. A resource found twice (in the files and in the cluster) counts once, with
/// its real age.
fn rivals(resource: &AcqpAuthorization, candidates: &[&AcqpAuthorization]) -> Vec<Claim> {
    let mut claims: Vec<Claim> = candidates
        .iter()
        .filter(|o| {
            o.metadata.namespace == resource.metadata.namespace
                && o.metadata.name != resource.metadata.name
                && o.metadata.deletion_timestamp.is_none()
                && o.spec.application_ref == resource.spec.application_ref
                && o.spec.acqp.id == resource.spec.acqp.id
        })
        .map(|o| Claim {
            name: o.metadata.name.clone().unwrap_or_default(),
            created: o
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::MAX, |t| t.0),
        })
        .collect();
    claims.sort_by(|a, b| (&a.name, a.created).cmp(&(&b.name, b.created)));
    claims.dedup_by(|later, earlier| later.name == earlier.name);
    claims
}

/// The resource's own `spec.pollInterval`, else its application's, else the default.
fn poll_interval(resource: &AcqpAuthorization, app: &FoundApplication<'_>) -> Duration {
    let own = resource.spec.poll_interval.as_deref();
    let application = match app {
        FoundApplication::Checked { poll_interval, .. } => Some(*poll_interval),
        FoundApplication::Reported(app) => Some(app.spec.parsed_poll_interval()),
        FoundApplication::Missing | FoundApplication::Loading => None,
    };
    own.and_then(|d| duration::parse(d).ok())
        .or(application)
        .unwrap_or(DEFAULT_POLL_INTERVAL)
}
