//! What can go wrong talking to the Developer Center, classified for retries and metrics.

use super::wire::ResultCode;

/// A failed Developer Center call or an unauthentic message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Developer Center answered F: retrying the same request cannot succeed.
    #[error("the Developer Center rejected {path}: {code}: {message}")]
    Rejected {
        /// The API path called.
        path: &'static str,
        /// The result code, e.g. `PRODUCT_NOT_INTEGRATED`.
        code: ResultCode,
        /// The Developer Center's explanation, e.g. naming the products at fault.
        message: String,
    },
    /// U results, HTTP 5xx, throttling, timeouts or broken connections outlasted the retries.
    #[error("the Developer Center is unavailable for {path} after {attempts} attempts: {last}")]
    Unavailable {
        /// The API path called.
        path: &'static str,
        /// How many times the request was sent.
        attempts: u32,
        /// What the last attempt ran into.
        last: String,
    },
    /// A response or notification is unsigned, signed by someone else, or altered in transit.
    #[error("the message at {path} is not authentic: {reason}")]
    Unverified {
        /// The path the message was sent to or answered.
        path: String,
        /// Which check failed.
        reason: String,
    },
    /// An authentic message that does not follow the contract (unexpected shape or HTTP status).
    #[error("the Developer Center broke the contract at {path}: {reason}")]
    Protocol {
        /// The path the message was sent to or answered.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An authentic answer past what the operator holds for one application (see
    /// [`super::limits`]): the application's Developer Center broke the contract.
    #[error(
        "the Developer Center broke the contract at {path}: {bound}; the operator keeps the \
         last complete list"
    )]
    OverLimit {
        /// The API path called.
        path: &'static str,
        /// Which bound the answer broke (never the answer's content).
        bound: String,
    },
    /// The operator's endpoint policy refuses the endpoint: nothing was sent.
    #[error("the operator refused to call {path}: {reason}")]
    NotAllowed {
        /// The API path that was to be called.
        path: &'static str,
        /// The policy's reason, naming the policy (never what resolution found).
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no TLS crypto provider installed).
    #[error("cannot set up the Developer Center client: {0}")]
    Setup(String),
}

impl Error {
    /// Whether trying again later, without anyone changing anything, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Rejected { .. } => "rejected",
            Error::Unavailable { .. } => "unavailable",
            Error::Unverified { .. } => "unverified",
            Error::Protocol { .. } => "protocol",
            Error::OverLimit { .. } => "over_limit",
            Error::NotAllowed { .. } => "not_allowed",
            Error::Setup(_) => "setup",
        }
    }
}
