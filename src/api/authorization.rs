//! `AcqpAuthorization`: which products one ACQP must authorize for an application.

use super::{DNS_SUBDOMAIN, EmailStatus, InvitationEmail, Product, SECRET_KEY, duration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The products an ACQP (acquirer) must authorize for a DeveloperCenterApplication, and where
/// the resulting Agent-Token goes.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "acqp-operator.io",
    version = "v1alpha1",
    kind = "AcqpAuthorization",
    doc = "An ACQP's authorization of products for a TSP application, and the Agent-Token it yields.",
    shortname = "acqpauth",
    category = "acqp",
    namespaced,
    status = "AcqpAuthorizationStatus",
    cel,
    printcolumn = r#"{"name":"ACQP","type":"string","jsonPath":".spec.acqp.id"}"#,
    printcolumn = r#"{"name":"ACQP-Name","type":"string","jsonPath":".spec.acqp.name"}"#,
    printcolumn = r#"{"name":"Products","type":"string","jsonPath":".spec.products"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"URL","type":"string","priority":1,"jsonPath":".status.authorizationUrl"}"#,
    // `kubectl get acqpauth --field-selector …` searches as the console does (by ACQP ID and
    // status); field selectors match exactly, so `kubectl acqp list --acqp-name` does substrings.
    selectable = ".spec.acqp.id",
    selectable = ".spec.acqp.name",
    selectable = ".spec.applicationRef.name",
    selectable = ".status.phase",
    selectable = ".status.acqpStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct AcqpAuthorizationSpec {
    /// The DeveloperCenterApplication, in this namespace, whose TSP application the ACQP
    /// authorizes.
    pub application_ref: ApplicationRef,

    /// The ACQP (acquiring service provider) asked to authorize.
    pub acqp: Acqp,

    /// Products the ACQP must authorize: each must be integrated in the application and in the
    /// ACQP's contract with Alipay+. Adding a product needs a new authorization by the ACQP,
    /// which replaces the Agent-Token.
    #[schemars(length(max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("size(self) > 0").message("products must list at least one of CashierPayment, AutoDebit, UserPresentedModePayment, MerchantPresentedModePayment"))]
    pub products: Vec<Product>,

    /// The Secret the operator writes the Agent-Token into.
    #[serde(default)]
    pub token_secret: TokenSecret,

    /// What to do when the ACQP cancels its authorization: Wait (default; report Revoked and
    /// wait for a human) or Reinvite (issue a new authorization URL).
    #[serde(default)]
    pub revocation_policy: RevocationPolicy,

    /// Where to deliver the authorization URL besides status and an Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<Invitation>,

    /// Overrides the application's pollInterval for this resource (a Go-style duration, at
    /// least 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32))]
    #[x_kube(validation = duration::poll_interval_rule())]
    pub poll_interval: Option<String>,
}

/// A reference to a DeveloperCenterApplication in the same namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct ApplicationRef {
    /// Name of the DeveloperCenterApplication.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{DNS_SUBDOMAIN}')")).message("applicationRef.name must be the name of a DeveloperCenterApplication: lowercase letters, digits, '-' and '.'"))]
    pub name: String,
}

/// The ACQP, as listed in the Developer Center.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct Acqp {
    /// The ACQP's ID in the Developer Center, e.g. 1022188000000000001.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9]+$')").message("acqp.id must be the ACQP's ID from the Developer Center: letters and digits only, e.g. 1022188000000000001"))]
    pub id: String,

    /// The ACQP's display name; used in messages and to search the authorization list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,
}

/// The Secret holding the Agent-Token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenSecret {
    /// Name of the Secret, in this namespace. Defaults to <metadata.name>-agent-token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{DNS_SUBDOMAIN}')")).message("tokenSecret.name must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub name: Option<String>,

    /// Data key the Agent-Token is stored under. Defaults to agentToken.
    #[serde(default = "default_token_key")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SECRET_KEY}')")).message("tokenSecret.key must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub key: String,

    /// Labels and annotations added to the Secret, e.g. Reloader's
    /// secret.reloader.stakater.com/reload so consumers restart on rotation.
    #[serde(default, skip_serializing_if = "SecretTemplate::is_empty")]
    pub template: SecretTemplate,

    /// What happens to the Secret when the AcqpAuthorization is deleted: Delete (default) or
    /// Retain.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl Default for TokenSecret {
    fn default() -> Self {
        TokenSecret {
            name: None,
            key: default_token_key(),
            template: SecretTemplate::default(),
            deletion_policy: DeletionPolicy::default(),
        }
    }
}

/// Label and annotation keys of Secret-replication controllers: a Secret carrying one of them
/// is copied into other namespaces (Reflector by emberstack, kubed and its successor
/// config-syncer by AppsCode, mittwald's Replicator). Refused in `tokenSecret.template` at
/// admission, so an Agent-Token never leaves the namespace its AcqpAuthorization lives in. Exact
/// keys, because the API server prices a check of every key against prefixes beyond its CEL
/// budget; a cluster admin refuses whole prefixes with the chart's
/// `tokenSecretTemplate.deniedKeyPrefixes`.
pub const REPLICATION_KEYS: [&str; 12] = [
    "reflector.v1.k8s.emberstack.com/reflection-allowed",
    "reflector.v1.k8s.emberstack.com/reflection-allowed-namespaces",
    "reflector.v1.k8s.emberstack.com/reflection-auto-enabled",
    "reflector.v1.k8s.emberstack.com/reflection-auto-namespaces",
    "reflector.v1.k8s.emberstack.com/reflects",
    "kubed.appscode.com/sync",
    "kubed.appscode.com/sync-contexts",
    "replicator.v1.mittwald.de/replicate-to",
    "replicator.v1.mittwald.de/replicate-to-matching",
    "replicator.v1.mittwald.de/replicate-from",
    "replicator.v1.mittwald.de/replication-allowed",
    "replicator.v1.mittwald.de/replication-allowed-namespaces",
];

/// The CEL rule refusing [`REPLICATION_KEYS`] in a map.
fn no_replication_keys(field: &str) -> kube::core::Rule {
    let keys = REPLICATION_KEYS
        .iter()
        .map(|key| format!("'{key}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "tokenSecret.template.{field} must not use the keys of Secret-replication controllers \
         (Reflector, kubed, Replicator): they would copy the Agent-Token into other namespaces"
    );
    kube::core::Rule::new(format!("![{keys}].exists(key, key in self)")).message(message.as_str())
}

/// Extra metadata for the token Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct SecretTemplate {
    /// Labels added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = no_replication_keys("labels"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret. The keys of Secret-replication controllers (Reflector,
    /// kubed, Replicator) are refused: they would copy the token into other namespaces.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = no_replication_keys("annotations"))]
    pub annotations: BTreeMap<String, String>,
}

impl SecretTemplate {
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// What happens to the token Secret on deletion.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Delete the Secret with the AcqpAuthorization.
    #[default]
    Delete,
    /// Keep the Secret (its owner reference is removed).
    Retain,
}

/// What happens when the ACQP cancels its authorization.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum RevocationPolicy {
    /// Report Revoked (Stalled) and wait for a human.
    #[default]
    Wait,
    /// Issue a new authorization URL for the ACQP.
    Reinvite,
}

/// How the authorization URL reaches the ACQP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct Invitation {
    /// A webhook that receives a JSON POST with the ACQP, products, URL and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,

    /// An e-mail with the URL to the ACQP's contacts, through the application's
    /// spec.notifications.email server; each new URL is mailed once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<InvitationEmail>,
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct Webhook {
    /// The http:// or https:// URL to POST to.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#\\\\s]+([/?#][^\\\\s]*)?$')").message("invitation.webhook.url must be an http:// or https:// URL"))]
    pub url: String,
}

/// The observed state of an authorization.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcqpAuthorizationStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled (kstatus conventions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// A one-word summary for kubectl: Pending, AwaitingAuthorization, Active, Revoked or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The URL the ACQP opens to authorize; send it to the ACQP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,

    /// When the authorization URL was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url_issued_at: Option<Time>,

    /// When the authorization URL stops working; the operator issues a new one after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url_expires_at: Option<Time>,

    /// The products the current authorization URL asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_products: Vec<Product>,

    /// The products the ACQP has authorized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_products: Vec<Product>,

    /// The authorization's status in the Developer Center: Active, or Inactive once cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acqp_status: Option<AcqpStatus>,

    /// Where the Agent-Token is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<TokenSecretRef>,

    /// How many grants the operator has seen; each grant brings a new Agent-Token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_revision: Option<i64>,

    /// sha256:<16 hex>, a fingerprint of the current Agent-Token (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fingerprint: Option<String>,

    /// When the Secret last received a new Agent-Token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_rotated_at: Option<Time>,

    /// When the operator last saw a change in the Developer Center's record. It is not bumped
    /// on every poll, so that a quiet system causes no API-server writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_time: Option<Time>,

    /// The acqp-operator.io/refresh-requested-at value last acted on (the Developer Center was
    /// asked about this ACQP then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_refresh_at: Option<String>,

    /// The acqp-operator.io/reinvite-requested-at value last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reinvite_at: Option<String>,

    /// The invitation mail and the latest status-change notice, and how their delivery went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailStatus>,
}

/// A one-word summary of an authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Phase {
    /// Nothing issued yet.
    Pending,
    /// An authorization URL is out; waiting for the ACQP.
    AwaitingAuthorization,
    /// The ACQP authorized every product; the Secret holds the token.
    Active,
    /// The ACQP cancelled its authorization.
    Revoked,
    /// A human must act; see the Stalled condition.
    Error,
}

/// The authorization's status in the Developer Center.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AcqpStatus {
    /// Authorized.
    Active,
    /// Cancelled by the ACQP.
    Inactive,
}

/// Where the Agent-Token is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenSecretRef {
    /// Secret name.
    pub name: String,
    /// Data key.
    pub key: String,
}

fn default_token_key() -> String {
    "agentToken".into()
}

impl AcqpAuthorization {
    /// The token Secret's name: spec.tokenSecret.name or `<metadata.name>-agent-token`.
    pub fn token_secret_name(&self) -> String {
        match &self.spec.token_secret.name {
            Some(name) => name.clone(),
            None => format!(
                "{}-agent-token",
                self.metadata.name.as_deref().unwrap_or_default()
            ),
        }
    }
}
