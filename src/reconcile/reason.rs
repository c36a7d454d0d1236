//! Every reason the decision writes into an AcqpAuthorization's conditions or records on an
//! Event, as one CamelCase word. The shell, the metrics and `plan` match on these variants;
//! only the API server sees the words.

/// Why a resource is in its state, or why an Event was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Ready: the ACQP authorized every desired product (also the first grant's Event).
    Authorized,
    /// Waiting for the ACQP to use the authorization URL.
    AwaitingAuthorization,
    /// The ACQP must authorize products added to the spec.
    ScopeChangePending,
    /// The ACQP revoked its grant and a new URL is out (revocationPolicy: Reinvite).
    Reinvited,
    /// The ACQP revoked its grant (revocationPolicy: Wait).
    Revoked,
    /// Waiting for the first list of authorizations.
    Listing,
    /// Waiting for the application to become Ready.
    ApplicationNotReady,
    /// The referenced application does not exist.
    ApplicationNotFound,
    /// The application's credentials are not a Developer Admin's.
    PermissionDenied,
    /// The token Secret belongs to someone else.
    SecretConflict,
    /// A desired product is not integrated in the application.
    ProductsNotIntegrated,
    /// A desired product is not in the ACQP's contract.
    ProductsNotInContract,
    /// The Developer Center does not know the ACQP.
    AcqpNotFound,
    /// An older resource claims the same ACQP of the same application.
    DuplicateAcqp,
    /// The paused annotation stops all action.
    Paused,
    /// A request annotation's value cannot be used.
    MalformedAnnotation,
    /// Event: the ACQP re-authorized and a new Agent-Token replaced the old one.
    TokenRotated,
    /// Event: a Secret released by an earlier resource was adopted.
    SecretAdopted,
    /// Event: a Secret changed outside the operator was restored.
    SecretRepaired,
    /// Event: a re-invitation was asked for, but every product is authorized.
    ReinviteNotNeeded,
    /// Event: the Developer Center issued an authorization URL.
    UrlIssued,
}

impl Reason {
    /// The CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Authorized => "Authorized",
            Reason::AwaitingAuthorization => "AwaitingAuthorization",
            Reason::ScopeChangePending => "ScopeChangePending",
            Reason::Reinvited => "Reinvited",
            Reason::Revoked => "Revoked",
            Reason::Listing => "Listing",
            Reason::ApplicationNotReady => "ApplicationNotReady",
            Reason::ApplicationNotFound => "ApplicationNotFound",
            Reason::PermissionDenied => "PermissionDenied",
            Reason::SecretConflict => "SecretConflict",
            Reason::ProductsNotIntegrated => "ProductsNotIntegrated",
            Reason::ProductsNotInContract => "ProductsNotInContract",
            Reason::AcqpNotFound => "AcqpNotFound",
            Reason::DuplicateAcqp => "DuplicateAcqp",
            Reason::Paused => "Paused",
            Reason::MalformedAnnotation => "MalformedAnnotation",
            Reason::TokenRotated => "TokenRotated",
            Reason::SecretAdopted => "SecretAdopted",
            Reason::SecretRepaired => "SecretRepaired",
            Reason::ReinviteNotNeeded => "ReinviteNotNeeded",
            Reason::UrlIssued => "UrlIssued",
        }
    }

    /// Whether this Event marks a grant: the first one or a rotation.
    pub fn is_grant(self) -> bool {
        matches!(self, Reason::Authorized | Reason::TokenRotated)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
