//! What the token Secret must look like: who owns it, its labels and annotations.

use crate::api::{AcqpAuthorization, Product};
use std::collections::BTreeMap;

/// Label on every Secret the operator writes; the operator's Secret cache selects on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "acqp-operator";
/// The ACQP whose token the Secret holds.
pub const ACQP_ID_ANNOTATION: &str = "acqp-operator.io/acqp-id";
/// The products the token is good for, comma-separated.
pub const PRODUCTS_ANNOTATION: &str = "acqp-operator.io/products";
/// How many grants produced this token.
pub const REVISION_ANNOTATION: &str = "acqp-operator.io/token-revision";
/// `sha256:<16 hex>` of the token, to spot hand edits without reading the data.
pub const FINGERPRINT_ANNOTATION: &str = "acqp-operator.io/token-fingerprint";

/// What the reconciler knows about the Secret named in the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretView {
    /// No such Secret.
    Missing,
    /// The Secret exists but this AcqpAuthorization does not own it; it is never written.
    Foreign {
        /// Who owns it, for the message ("no owner", "AcqpAuthorization other", ...).
        owner: String,
    },
    /// A Secret the operator wrote for the same ACQP and then released (deletionPolicy
    /// Retain): no owner, the managed-by label and the ACQP's acqp-id annotation. It is
    /// adopted: the next write takes it over instead of reporting SecretConflict.
    Released,
    /// The operator's Secret for this resource.
    Owned {
        /// Fingerprint of the token found under the data key (None when the key is missing).
        data_fingerprint: Option<String>,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// Its annotations.
        annotations: BTreeMap<String, String>,
    },
}

/// The Secret the operator writes; the shell adds the token itself under `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredSecret {
    /// Secret name.
    pub name: String,
    /// Data key for the token.
    pub key: String,
    /// Labels: the spec's template plus the managed-by label.
    pub labels: BTreeMap<String, String>,
    /// Annotations: the spec's template plus the operator's.
    pub annotations: BTreeMap<String, String>,
    /// Fingerprint of the token that goes in.
    pub fingerprint: String,
}

/// The Secret for the token with `fingerprint` from grant number `revision`.
pub fn desired(
    resource: &AcqpAuthorization,
    products: &[Product],
    revision: i64,
    fingerprint: &str,
) -> DesiredSecret {
    let template = &resource.spec.token_secret.template;
    let mut labels = template.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let mut annotations = template.annotations.clone();
    let products = products
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",");
    annotations.insert(ACQP_ID_ANNOTATION.into(), resource.spec.acqp.id.clone());
    annotations.insert(PRODUCTS_ANNOTATION.into(), products);
    annotations.insert(REVISION_ANNOTATION.into(), revision.to_string());
    annotations.insert(FINGERPRINT_ANNOTATION.into(), fingerprint.into());
    DesiredSecret {
        name: resource.token_secret_name(),
        key: resource.spec.token_secret.key.clone(),
        labels,
        annotations,
        fingerprint: fingerprint.into(),
    }
}

impl DesiredSecret {
    /// How the Secret looks once it is written as desired.
    pub fn written(&self) -> SecretView {
        SecretView::Owned {
            data_fingerprint: Some(self.fingerprint.clone()),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
        }
    }

    /// Whether `seen` already holds this token and metadata (extra labels or annotations that
    /// others added are left alone).
    pub fn is_satisfied_by(&self, seen: &SecretView) -> bool {
        let SecretView::Owned {
            data_fingerprint,
            labels,
            annotations,
        } = seen
        else {
            return false;
        };
        let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        };
        data_fingerprint.as_deref() == Some(self.fingerprint.as_str())
            && contains(labels, &self.labels)
            && contains(annotations, &self.annotations)
    }
}
