//! `DeveloperCenterApplication`: the connection to one TSP application in one environment.

use super::{Notifications, Product, duration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The connection to one TSP application of the Alipay+ Developer Center, shared by many
/// AcqpAuthorizations (like cert-manager's Issuer).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "acqp-operator.io",
    version = "v1alpha1",
    kind = "DeveloperCenterApplication",
    doc = "The connection to one TSP application of the Alipay+ Developer Center in one environment.",
    shortname = "dcapp",
    category = "acqp",
    namespaced,
    status = "DeveloperCenterApplicationStatus",
    cel,
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"Client ID","type":"string","jsonPath":".spec.clientId"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.role"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","priority":1,"jsonPath":".spec.endpoint"}"#
)]
#[x_kube(validation = Rule::new("self.environment != 'Sandbox' || self.clientId.startsWith('SANDBOX_')").message("a Sandbox application's clientId starts with SANDBOX_: copy the sandbox Client ID from the Developer Center").field_path(".clientId"))]
#[x_kube(validation = Rule::new("self.environment != 'Production' || !self.clientId.startsWith('SANDBOX_')").message("a SANDBOX_ client ID belongs to the Sandbox environment: set environment: Sandbox or use the production Client ID").field_path(".clientId"))]
#[x_kube(validation = Rule::new("self.environment != 'Production' || self.endpoint.startsWith('https://')").message("a Production application's endpoint must be an https:// URL: TLS protects the Agent-Tokens in the answers").field_path(".endpoint"))]
#[serde(rename_all = "camelCase")]
pub struct DeveloperCenterApplicationSpec {
    /// The Developer Center environment this application lives in: Sandbox or Production.
    pub environment: Environment,

    /// Base URL of the Developer Center API (or of a gateway implementing it), e.g.
    /// https://devcenter.example.com. Calls go to <endpoint>/devcenter/api/v1/...
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#\\\\s]+(/[^?#\\\\s]*)?$')").message("endpoint must be an http:// or https:// URL without query or fragment, e.g. https://devcenter.example.com"))]
    pub endpoint: String,

    /// The application's Client ID for this environment, as shown in the Developer Center
    /// (sandbox IDs start with SANDBOX_).
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]+$')").message("clientId may contain only letters, digits, '_', '.' and '-': copy it from the Developer Center"))]
    pub client_id: String,

    /// The Secret in this namespace holding the TSP private key and the Developer Center public
    /// key, both PEM.
    pub credentials_secret_ref: CredentialsSecretRef,

    /// How often the operator lists this application's authorizations to notice grants and
    /// revocations (a Go-style duration, at least 1s). Notifications make changes visible sooner.
    #[serde(default = "default_poll_interval")]
    #[schemars(length(min = 2, max = 32))]
    #[x_kube(validation = duration::poll_interval_rule())]
    pub poll_interval: String,

    /// Mail about this application's authorizations: the SMTP server, and the TSP team told of
    /// status changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// A Developer Center environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Environment {
    /// The sandbox: client IDs start with SANDBOX_.
    Sandbox,
    /// Production.
    Production,
}

/// Where the application's credentials are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret, in the application's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", super::DNS_SUBDOMAIN)).message("name must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,

    /// Data key holding the TSP private key (PEM, PKCS#1 or PKCS#8).
    #[serde(default = "default_private_key_key")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", super::SECRET_KEY)).message("privateKeyKey must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub private_key_key: String,

    /// Data key holding the Developer Center's public key (PEM, SubjectPublicKeyInfo), used to
    /// verify responses and notifications.
    #[serde(default = "default_dev_center_public_key_key")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", super::SECRET_KEY)).message("devCenterPublicKeyKey must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub dev_center_public_key_key: String,
}

/// What the operator last learned about the application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperCenterApplicationStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready: credentials load, a signed call succeeds and the role is Developer Admin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Products integrated in the application; only these can be authorized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrated_products: Vec<Product>,

    /// The role of the credentials in the Developer Center; authorizations need DeveloperAdmin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// When the Developer Center last answered this application's inquiry, as of the last change
    /// of this status: a later answer alone is not written (no heartbeat writes; the metric
    /// acqp_operator_application_last_sync_timestamp_seconds is current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
}

/// How often an application is polled when its spec names no interval, and what a resource
/// waits when neither it nor its application names one.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

fn default_poll_interval() -> String {
    format!("{}s", DEFAULT_POLL_INTERVAL.as_secs())
}

impl DeveloperCenterApplicationSpec {
    /// `pollInterval` as a duration ([`DEFAULT_POLL_INTERVAL`] if it does not parse, which
    /// admission prevents).
    pub fn parsed_poll_interval(&self) -> Duration {
        duration::parse(&self.poll_interval).unwrap_or(DEFAULT_POLL_INTERVAL)
    }
}

fn default_private_key_key() -> String {
    "privateKey".into()
}

fn default_dev_center_public_key_key() -> String {
    "devCenterPublicKey".into()
}
