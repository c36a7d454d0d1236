//! The decision core: a pure function from what the operator sees (spec, status, the Developer
//! Center's record, the token Secret, the application, rival claims, the time) to what it should
//! do and the status that results. No I/O: the controller performs the actions, `plan` prints
//! them, and both therefore agree.

pub mod annotations;
pub mod application;
pub mod conditions;
mod decide;
pub mod email;
pub mod observe;
pub mod outcome;
mod reason;
pub mod secret;

pub use decide::decide;
pub use reason::Reason;

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
    /// What the Developer Center answered to the [`Action::IssueUrl`] of the decision on this
    /// same input, once the shell has asked; `None` before.
    pub answer: Option<UrlAnswer>,
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
    /// The next status. With [`Action::IssueUrl`] it is provisional: the shell asks the
    /// Developer Center and decides once more with the [`UrlAnswer`] in the input, and keeps
    /// that decision's status, Events and requeue.
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
    /// Why.
    pub reason: Reason,
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

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::ProductsNotInContract,
        Refusal::ProductsNotIntegrated,
        Refusal::AcqpNotFound,
        Refusal::PermissionDenied,
    ];

    /// The Stalled condition's reason while the refusal stands.
    pub fn reason(self) -> Reason {
        match self {
            Refusal::ProductsNotInContract => Reason::ProductsNotInContract,
            Refusal::ProductsNotIntegrated => Reason::ProductsNotIntegrated,
            Refusal::AcqpNotFound => Reason::AcqpNotFound,
            Refusal::PermissionDenied => Reason::PermissionDenied,
        }
    }

    /// The refusal whose reason a condition names, if any.
    pub fn with_reason(reason: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.reason().as_str() == reason)
    }

    /// What a human does about it.
    fn hint(self) -> &'static str {
        match self {
            Refusal::ProductsNotInContract => {
                "the ACQP must add them to its contract with Alipay+, or remove them from \
                 spec.products"
            }
            Refusal::ProductsNotIntegrated => {
                "add the payment products in the Developer Center first, or remove them from \
                 spec.products"
            }
            Refusal::AcqpNotFound => "check spec.acqp.id against the Developer Center",
            Refusal::PermissionDenied => "use a Developer Admin's credentials",
        }
    }
}

/// The Developer Center's answer to an [`Action::IssueUrl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlAnswer {
    /// It issued this URL.
    Issued(IssuedUrl),
    /// It refused, for a reason a human must resolve.
    Refused {
        /// Why.
        refusal: Refusal,
        /// Its message.
        message: String,
    },
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
