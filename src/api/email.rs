//! E-mail: the SMTP server of a DeveloperCenterApplication, the ACQP contacts an invitation goes
//! to, and what was sent, in the AcqpAuthorization's status.

use super::SECRET_KEY;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// An e-mail address as admission accepts it: ASCII, no display name, no spaces or line breaks
/// (so no header can be injected). Written with `[.]` rather than an escaped dot, because the
/// pattern passes through Rust, CEL and RE2 quoting.
pub const EMAIL_ADDRESS: &str = "^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)+$";

/// An SMTP host: a DNS name or an IP address (IPv6 without brackets).
const SMTP_HOST: &str = "^([A-Za-z0-9-]+[.])*[A-Za-z0-9-]+$|^[0-9A-Fa-f:.]+$";

/// The CEL rule for one address field named `field`.
fn address_rule(field: &str) -> kube::core::Rule {
    let message = format!(
        "{field} must be a plain e-mail address such as payments@acqp.example.com (no display \
         name, no spaces)"
    );
    kube::core::Rule::new(format!("self.matches('{EMAIL_ADDRESS}')")).message(message.as_str())
}

/// The CEL rule for every address of a list field named `field`.
fn addresses_rule(field: &str) -> kube::core::Rule {
    let message = format!(
        "every entry of {field} must be a plain e-mail address such as \
         payments@acqp.example.com (no display name, no spaces)"
    );
    kube::core::Rule::new(format!("self.all(a, a.matches('{EMAIL_ADDRESS}'))"))
        .message(message.as_str())
}

/// Notification settings of an application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct Notifications {
    /// Sends authorization URLs to the ACQPs' contacts and status changes to the TSP team by
    /// e-mail through this SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
}

/// The SMTP server this application's mails go through, and the TSP team to notify.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.tls != 'None' || self.host in ['localhost', '127.0.0.1', '::1']").message("tls: None sends mail and password in clear text, which is allowed only to an SMTP server on loopback (localhost, 127.0.0.1, ::1): use StartTls or ImplicitTls").field_path(".tls"))]
pub struct EmailSettings {
    /// The SMTP server's host name, e.g. smtp.example.com. It must be allowed by the operator's
    /// endpoint policy (public addresses, plus what the cluster admin lists in
    /// --endpoint-allowlist).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SMTP_HOST}')")).message("notifications.email.host must be a host name such as smtp.example.com or an IP address, without scheme or port"))]
    pub host: String,

    /// The SMTP server's port. Defaults to 587 (submission with STARTTLS); implicit TLS is
    /// usually 465.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub port: u16,

    /// How the connection is protected: StartTls (default; the server must offer STARTTLS, or
    /// nothing is sent), ImplicitTls (TLS from the first byte, port 465), or None (clear text,
    /// only to an SMTP server on loopback).
    #[serde(default)]
    pub tls: SmtpTls,

    /// The From address of every mail, e.g. acqp-operator@tsp.example.com.
    #[schemars(length(min = 3, max = 254))]
    #[x_kube(validation = address_rule("notifications.email.from"))]
    pub from: String,

    /// The TSP team's addresses: they receive a notice when an ACQP authorizes, when an
    /// Agent-Token is rotated and when an ACQP revokes. Empty: no notices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 3, max = 254)))]
    #[x_kube(validation = addresses_rule("notifications.email.notify"))]
    pub notify: Vec<String>,

    /// A Secret in this namespace with the SMTP username and password, and optionally a CA
    /// certificate to trust. Without it the operator does not authenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SmtpSecretRef>,
}

/// How the SMTP connection is protected.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; a server that does not offer it gets nothing.
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    ImplicitTls,
    /// No TLS: only for an SMTP server on loopback.
    None,
}

/// Where the SMTP credentials are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmtpSecretRef {
    /// Name of the Secret, in the application's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", super::DNS_SUBDOMAIN)).message("notifications.email.secretRef.name must be a Secret name: lowercase letters, digits, '-' and '.'"))]
    pub name: String,

    /// Data key holding the SMTP username. Defaults to username.
    #[serde(default = "default_username_key")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SECRET_KEY}')")).message("usernameKey must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub username_key: String,

    /// Data key holding the SMTP password. Defaults to password.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SECRET_KEY}')")).message("passwordKey must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub password_key: String,

    /// Data key holding PEM CA certificates to trust for the SMTP server besides the system's
    /// (a private CA). Unset: the system's roots only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(format!("self.matches('{SECRET_KEY}')")).message("caKey must be a Secret data key: letters, digits, '-', '_' and '.'"))]
    pub ca_key: Option<String>,
}

/// Who receives the invitation mail with the authorization URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
pub struct InvitationEmail {
    /// The ACQP's contacts the URL is sent to; at least one. The application's
    /// spec.notifications.email names the SMTP server.
    #[schemars(length(min = 1, max = 10), inner(length(min = 3, max = 254)))]
    #[x_kube(validation = addresses_rule("invitation.email.to"))]
    pub to: Vec<String>,

    /// More contacts, in copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 3, max = 254)))]
    #[x_kube(validation = addresses_rule("invitation.email.cc"))]
    pub cc: Vec<String>,
}

/// The mails sent about an authorization.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmailStatus {
    /// The invitation mail of the current authorization URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<MailDelivery>,
    /// The latest status-change notice to the TSP team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<MailDelivery>,
    /// The TSP team's warning that the current authorization URL is about to expire unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warning: Option<MailDelivery>,
}

/// One mail and how its delivery went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailDelivery {
    /// What the mail announces: Invitation, Authorized, TokenRotated, Revoked or UrlExpiring.
    pub kind: MailKind,
    /// The mail's Message-ID, derived from what it announces (a digest of the URL, or of the
    /// transition), so a retried send is the same mail.
    pub message_id: String,
    /// The addresses it goes to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// When the SMTP server accepted it; unset while it is not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Time>,
    /// Failed attempts so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// When the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Time>,
    /// Why the last attempt failed (the SMTP server's answer, or what policy refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a mail announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MailKind {
    /// The authorization URL, to the ACQP's contacts.
    Invitation,
    /// The ACQP's first grant, to the TSP team.
    Authorized,
    /// A new grant replaced the Agent-Token, to the TSP team.
    TokenRotated,
    /// The ACQP cancelled its authorization, to the TSP team.
    Revoked,
    /// The authorization URL is about to expire unused, to the TSP team.
    UrlExpiring,
}

impl MailKind {
    /// The CamelCase spelling, as in status.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Invitation => "Invitation",
            MailKind::Authorized => "Authorized",
            MailKind::TokenRotated => "TokenRotated",
            MailKind::Revoked => "Revoked",
            MailKind::UrlExpiring => "UrlExpiring",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn default_port() -> u16 {
    587
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}
