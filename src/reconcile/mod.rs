//! The decision core: a pure function from what the operator sees (spec, status, the Developer
//! Center's record, the token Secret, the application, rival claims, the time) to what it should
//! do and the status that results. No I/O: the controller performs the actions, `plan` prints
//! them, and both therefore agree.

pub mod annotations;
pub mod conditions;
mod decide;
pub mod email;
pub mod outcome;
pub mod secret;

pub use decide::{decide, record_refusal, record_url};

use crate::api::{AcqpAuthorization, AcqpAuthorizationStatus, AcqpStatus, Product};
use jiff::Timestamp;
use secret::{DesiredSecret, SecretView};
use std::time::Duration;

/// Everything the decision depends on.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// The resource: spec, metadata (uid, generation) and current status.
    pub resource: &'a AcqpAuthorization,
    /// The referenced application.
    pub application: ApplicationView,
    /// The Developer Center's record for this ACQP.
    pub remote: RemoteView,
    /// The token Secret named by the spec.
    pub secret: SecretView,
    /// Other AcqpAuthorizations of the same application claiming the same ACQP.
    pub rivals: Vec<Claim>,
    /// How often the remote record is checked.
    pub poll_interval: Duration,
    /// Now.
    pub now: Timestamp,
}

/// What the operator knows about the referenced DeveloperCenterApplication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplicationView {
    /// No such application in the namespace.
    NotFound,
    /// It exists but cannot be used yet (credentials, reachability); not the user's fault alone.
    NotReady {
        /// The application's Ready reason.
        reason: String,
        /// The application's Ready message.
        message: String,
    },
    /// The credentials are not a Developer Admin's.
    PermissionDenied,
    /// Ready, with these integrated products.
    Ready {
        /// Products integrated in the application.
        integrated_products: Vec<Product>,
    },
}

/// The Developer Center's authorization record for the ACQP, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteView {
    /// The operator has not yet listed the application's authorizations.
    Unknown,
    /// The list holds no record for this ACQP.
    Absent,
    /// The record.
    Present(RemoteAuthorization),
}

/// An authorization record, without its token: the core only ever sees a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAuthorization {
    /// Active or Inactive.
    pub status: AcqpStatus,
    /// The products authorized.
    pub products: Vec<Product>,
    /// Fingerprint of the current Agent-Token.
    pub token_fingerprint: String,
    /// When the ACQP's record last changed.
    pub update_time: Timestamp,
}

/// Another resource's claim on the same (application, ACQP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its name.
    pub name: String,
    /// Its creationTimestamp; the oldest claim wins, ties broken by name.
    pub created: Timestamp,
}

/// What to do, and the status that results once it is done.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The next status. After [`Action::IssueUrl`] it is provisional: the shell records the URL
    /// with [`record_url`] (or the refusal with [`record_refusal`]) and decides again.
    pub status: AcqpAuthorizationStatus,
    /// Side effects, in order.
    pub actions: Vec<Action>,
    /// When something falls due (a URL to replace, a refusal to retry, a poll to wait for),
    /// if nothing wakes the resource sooner. None when nothing is due: only a change can make a
    /// difference, and the controller's paced resync of every resource covers a missed one.
    pub requeue_after: Option<Duration>,
}

/// A side effect for the shell.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Ask the Developer Center for an authorization URL. `request_id` is derived from the
    /// resource's UID, the products, the grant count, the previous URL and a re-invitation
    /// request's value, so a retry after a crash gets the same URL back instead of a second one.
    IssueUrl {
        /// The idempotency key.
        request_id: String,
        /// The products to ask for.
        products: Vec<Product>,
    },
    /// Ask the Developer Center about this ACQP now (a refresh request), instead of at the
    /// next poll; whatever changed wakes the resource again.
    RefreshRemote,
    /// Write the current Agent-Token into the Secret.
    WriteSecret(DesiredSecret),
    /// Record a Kubernetes Event (only on transitions).
    Event(Event),
}

/// A Kubernetes Event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Warning when a human should look; Normal otherwise.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

/// A Developer Center refusal of a URL request that a human must resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// PRODUCT_NOT_IN_CONTRACT.
    ProductsNotInContract,
    /// PRODUCT_NOT_INTEGRATED (the application's list was stale).
    ProductsNotIntegrated,
    /// ACQUIRER_NOT_FOUND.
    AcqpNotFound,
    /// ACCESS_DENIED.
    PermissionDenied,
}

/// A URL the Developer Center issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedUrl {
    /// The authorization URL.
    pub url: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// The products it asks for.
    pub products: Vec<Product>,
}

#[cfg(test)]
mod tests;
