//! Whether a DeveloperCenterApplication can invite ACQPs, and the status that says so: pure
//! functions of what the Developer Center answered and the time, shared by the application
//! controller (which writes the status) and `plan` (which reads the same answer).

use super::conditions::{self, READY, Wanted};
use crate::api::{DeveloperCenterApplication, DeveloperCenterApplicationStatus, Product};
use crate::devcenter::wire::{ApplicationInquiryResponse, ResultCode, Role};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The Ready condition's reason while the application is Ready.
pub const CONNECTED: &str = "Connected";

/// Why an application cannot be used to invite ACQPs; the Ready condition's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReadyReason {
    /// The credentials Secret does not exist.
    CredentialsNotFound,
    /// The Secret lacks a key, or a key is not a usable PEM.
    CredentialsInvalid,
    /// The Developer Center does not accept the Client ID or the signature.
    CredentialsRejected,
    /// The Developer Center's answers do not verify with the configured public key.
    DevCenterUnverified,
    /// The Developer Center cannot be reached or keeps answering U.
    DevCenterUnavailable,
    /// The credentials belong to a user who is not a Developer Admin.
    PermissionDenied,
    /// An authentic answer went past what the operator holds for one application.
    ContractViolation,
    /// The operator's endpoint policy refuses `spec.endpoint`: nothing is sent there.
    EndpointNotAllowed,
    /// A Production application that has not passed sandbox acceptance testing.
    SandboxAcceptancePending,
}

impl NotReadyReason {
    const ALL: [NotReadyReason; 9] = [
        NotReadyReason::CredentialsNotFound,
        NotReadyReason::CredentialsInvalid,
        NotReadyReason::CredentialsRejected,
        NotReadyReason::DevCenterUnverified,
        NotReadyReason::DevCenterUnavailable,
        NotReadyReason::PermissionDenied,
        NotReadyReason::ContractViolation,
        NotReadyReason::EndpointNotAllowed,
        NotReadyReason::SandboxAcceptancePending,
    ];

    /// The CamelCase condition reason.
    pub fn as_str(self) -> &'static str {
        match self {
            NotReadyReason::CredentialsNotFound => "CredentialsNotFound",
            NotReadyReason::CredentialsInvalid => "CredentialsInvalid",
            NotReadyReason::CredentialsRejected => "CredentialsRejected",
            NotReadyReason::DevCenterUnverified => "DevCenterUnverified",
            NotReadyReason::DevCenterUnavailable => "DevCenterUnavailable",
            NotReadyReason::PermissionDenied => "PermissionDenied",
            NotReadyReason::ContractViolation => "ContractViolation",
            NotReadyReason::EndpointNotAllowed => "EndpointNotAllowed",
            NotReadyReason::SandboxAcceptancePending => "SandboxAcceptancePending",
        }
    }

    /// The reason a Ready condition names, if it is one of these.
    pub fn parse(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == reason)
    }
}

/// Whether an application can be used, and if not why, in words that say what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Credentials load, a signed call succeeds and the role is Developer Admin.
    Ready,
    /// Something a human (or the Developer Center's recovery) must fix first.
    NotReady {
        /// The condition reason.
        reason: NotReadyReason,
        /// The condition message.
        message: String,
    },
}

impl Readiness {
    /// The Ready condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Readiness::Ready => CONNECTED,
            Readiness::NotReady { reason, .. } => reason.as_str(),
        }
    }
}

/// What the application controller learned about an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationFacts {
    /// Ready, or why not.
    pub readiness: Readiness,
    /// The credentials' role, once the Developer Center has answered.
    pub role: Option<Role>,
    /// Products integrated in the application (only these can be authorized).
    pub integrated_products: Vec<Product>,
}

impl ApplicationFacts {
    /// What an authentic inquiry answer tells.
    pub fn answered(answer: ApplicationInquiryResponse) -> Self {
        ApplicationFacts {
            readiness: readiness_of(&answer),
            role: Some(answer.role),
            integrated_products: answer.integrated_products,
        }
    }
}

/// Whether the application the Developer Center described may invite ACQPs: the credentials
/// must be a Developer Admin's, and a Production application must have passed sandbox
/// acceptance testing.
pub fn readiness_of(answer: &ApplicationInquiryResponse) -> Readiness {
    if answer.role != Role::DeveloperAdmin {
        Readiness::NotReady {
            reason: NotReadyReason::PermissionDenied,
            message: format!(
                "the credentials' role is {}; only a Developer Admin can generate \
                 authorization URLs: use a Developer Admin's credentials",
                answer.role.as_str()
            ),
        }
    } else if answer.sandbox_acceptance_pending() {
        Readiness::NotReady {
            reason: NotReadyReason::SandboxAcceptancePending,
            message: "this Production application has not passed sandbox acceptance \
                      testing, so it may not invite ACQPs yet: conduct sandbox acceptance \
                      testing in the Developer Center; the operator keeps checking and invites \
                      ACQPs once it has passed"
                .into(),
        }
    } else {
        Readiness::Ready
    }
}

/// The status `facts` call for at `now`; `answered` is whether the Developer Center answered
/// just now. The Ready condition keeps its lastTransitionTime while its status is unchanged.
pub fn desired_status(
    app: &DeveloperCenterApplication,
    facts: &ApplicationFacts,
    answered: bool,
    now: Timestamp,
) -> DeveloperCenterApplicationStatus {
    let current = app.status.clone().unwrap_or_default();
    let message = match &facts.readiness {
        Readiness::Ready => format!(
            "signed calls succeed as a Developer Admin; {} products integrated",
            facts.integrated_products.len()
        ),
        Readiness::NotReady { message, .. } => message.clone(),
    };
    let wanted = Wanted {
        ready: facts.readiness == Readiness::Ready,
        reason: facts.readiness.reason(),
        message,
        reconciling: false,
        stalled: false,
    };
    let generation = app.metadata.generation.unwrap_or_default();
    DeveloperCenterApplicationStatus {
        observed_generation: app.metadata.generation,
        conditions: conditions::apply(&current.conditions, &wanted, generation, &Time(now)),
        integrated_products: facts.integrated_products.clone(),
        role: facts.role.map(|role| role.as_str().to_owned()),
        last_sync_time: answered.then_some(Time(now)).or(current.last_sync_time),
    }
}

/// Whether `desired` must be written: when anything but `lastSyncTime` changed, or on the first
/// answer. A later answer alone is no reason to write: a status heartbeat is a write per
/// application per interval that every watcher of the kind receives (the Kubernetes API
/// conventions keep heartbeats out of status for that reason); the
/// `acqp_operator_application_last_sync_timestamp_seconds` gauge is always current instead.
pub fn needs_write(
    current: Option<&DeveloperCenterApplicationStatus>,
    desired: &DeveloperCenterApplicationStatus,
) -> bool {
    let Some(current) = current else {
        return true;
    };
    let mut same_sync = desired.clone();
    same_sync.last_sync_time.clone_from(&current.last_sync_time);
    &same_sync != current || (current.last_sync_time.is_none() && desired.last_sync_time.is_some())
}

/// Whether the Ready condition's status or reason differs between two statuses: a transition
/// worth an Event.
pub fn is_transition(
    before: Option<&DeveloperCenterApplicationStatus>,
    after: &DeveloperCenterApplicationStatus,
) -> bool {
    let ready = |status: &DeveloperCenterApplicationStatus| {
        conditions::find(&status.conditions, READY).map(|c| (c.status.clone(), c.reason.clone()))
    };
    before.and_then(ready) != ready(after)
}

/// Turns a failed inquiry into a condition reason and a message that says what to fix.
pub fn classify(
    app: &DeveloperCenterApplication,
    error: &crate::devcenter::Error,
) -> (NotReadyReason, String) {
    use crate::devcenter::Error as E;
    let spec = &app.spec;
    let secret = format!(
        "Secret {}/{}",
        app.metadata.namespace.as_deref().unwrap_or_default(),
        spec.credentials_secret_ref.name
    );
    match error {
        E::Rejected {
            code: ResultCode::InvalidClient,
            ..
        } => (
            NotReadyReason::CredentialsRejected,
            format!(
                "{error}: check spec.clientId {:?} against the Developer Center and that \
                 spec.endpoint serves the {:?} environment",
                spec.client_id, spec.environment
            ),
        ),
        E::Rejected {
            code: ResultCode::InvalidSignature,
            ..
        } => (
            NotReadyReason::CredentialsRejected,
            format!(
                "{error}: put the private key whose public key is registered for {:?} under {:?} \
                 in {secret}",
                spec.client_id, spec.credentials_secret_ref.private_key_key
            ),
        ),
        E::Rejected {
            code: ResultCode::AccessDenied,
            ..
        } => (
            NotReadyReason::PermissionDenied,
            format!(
                "{error}: only a Developer Admin can generate authorization URLs: use a \
                 Developer Admin's credentials"
            ),
        ),
        E::Rejected { .. } => (NotReadyReason::CredentialsRejected, error.to_string()),
        E::Unverified { .. } => (
            NotReadyReason::DevCenterUnverified,
            format!(
                "{error}: check that spec.endpoint is the Developer Center API and that {:?} in \
                 {secret} holds the Developer Center's public key",
                spec.credentials_secret_ref.dev_center_public_key_key
            ),
        ),
        E::OverLimit { .. } => (NotReadyReason::ContractViolation, error.to_string()),
        E::NotAllowed { .. } => (NotReadyReason::EndpointNotAllowed, error.to_string()),
        E::Unavailable { .. } | E::Protocol { .. } | E::Setup(_) => (
            NotReadyReason::DevCenterUnavailable,
            format!("{error}; retrying"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CredentialsSecretRef, DeveloperCenterApplicationSpec, Environment};
    use crate::devcenter::wire::{APPLICATION_INQUIRY_PATH, Environment as WireEnvironment};

    fn app(status: Option<DeveloperCenterApplicationStatus>) -> DeveloperCenterApplication {
        let mut app = DeveloperCenterApplication::new(
            "demo",
            DeveloperCenterApplicationSpec {
                environment: Environment::Sandbox,
                endpoint: "http://127.0.0.1:8090".into(),
                client_id: "SANDBOX_ACQP_OPERATOR_DEMO".into(),
                credentials_secret_ref: CredentialsSecretRef {
                    name: "demo-credentials".into(),
                    private_key_key: "privateKey".into(),
                    dev_center_public_key_key: "devCenterPublicKey".into(),
                },
                poll_interval: "60s".into(),
                notifications: None,
            },
        );
        app.metadata.namespace = Some("acqp".into());
        app.metadata.generation = Some(3);
        app.status = status;
        app
    }

    fn answer(environment: WireEnvironment, passed: Option<bool>) -> ApplicationInquiryResponse {
        ApplicationInquiryResponse {
            result: crate::devcenter::wire::ResultInfo::success(),
            application_name: "Demo".into(),
            environment,
            role: Role::DeveloperAdmin,
            integrated_products: vec![Product::CashierPayment],
            sandbox_acceptance_passed: passed,
        }
    }

    #[test]
    fn a_production_application_waits_for_sandbox_acceptance() {
        let pending = readiness_of(&answer(WireEnvironment::Production, Some(false)));
        let Readiness::NotReady { reason, message } = pending else {
            panic!("Ready before sandbox acceptance")
        };
        assert_eq!(reason.as_str(), "SandboxAcceptancePending");
        assert!(
            message.contains("conduct sandbox acceptance testing"),
            "{message}"
        );
        let passed = answer(WireEnvironment::Production, Some(true));
        assert_eq!(readiness_of(&passed), Readiness::Ready);
        // Sandbox applications, and gateways that do not report it, are not held back.
        let sandbox = answer(WireEnvironment::Sandbox, Some(false));
        assert_eq!(readiness_of(&sandbox), Readiness::Ready);
        let unreported = answer(WireEnvironment::Production, None);
        assert_eq!(readiness_of(&unreported), Readiness::Ready);
        let viewer = ApplicationInquiryResponse {
            role: Role::Developer,
            ..answer(WireEnvironment::Production, Some(false))
        };
        assert!(matches!(
            readiness_of(&viewer),
            Readiness::NotReady {
                reason: NotReadyReason::PermissionDenied,
                ..
            }
        ));
    }

    fn ready_facts() -> ApplicationFacts {
        ApplicationFacts {
            readiness: Readiness::Ready,
            role: Some(Role::DeveloperAdmin),
            integrated_products: vec![Product::CashierPayment],
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn steady_state_writes_nothing_however_old_the_sync_time() {
        let first = desired_status(&app(None), &ready_facts(), true, at("2026-01-01T00:00:00Z"));
        assert!(needs_write(None, &first));
        let written = app(Some(first.clone()));
        let later = desired_status(&written, &ready_facts(), true, at("2026-01-01T00:05:00Z"));
        assert_eq!(
            later.conditions, first.conditions,
            "lastTransitionTime kept"
        );
        assert!(!needs_write(Some(&first), &later));
        let day_later = desired_status(&written, &ready_facts(), true, at("2026-01-02T00:00:00Z"));
        assert!(!needs_write(Some(&first), &day_later));
        let unsynced = DeveloperCenterApplicationStatus {
            last_sync_time: None,
            ..first.clone()
        };
        assert!(
            needs_write(Some(&unsynced), &first),
            "the first answer is written"
        );
    }

    #[test]
    fn a_readiness_change_is_written_with_a_new_transition_time() {
        let first = desired_status(&app(None), &ready_facts(), true, at("2026-01-01T00:00:00Z"));
        let facts = ApplicationFacts {
            readiness: Readiness::NotReady {
                reason: NotReadyReason::DevCenterUnavailable,
                message: "down".into(),
            },
            ..ready_facts()
        };
        let unanswered = at("2026-01-01T00:01:00Z");
        let broken = desired_status(&app(Some(first.clone())), &facts, false, unanswered);
        assert!(needs_write(Some(&first), &broken));
        let ready = &broken.conditions[0];
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.observed_generation
            ),
            ("False", "DevCenterUnavailable", Some(3))
        );
        assert_ne!(
            ready.last_transition_time,
            first.conditions[0].last_transition_time
        );
        assert_eq!(broken.last_sync_time, first.last_sync_time);
    }

    #[test]
    fn rejections_say_what_to_fix() {
        let rejected = |code| crate::devcenter::Error::Rejected {
            path: APPLICATION_INQUIRY_PATH,
            code,
            message: "no".into(),
        };
        let (reason, message) = classify(&app(None), &rejected(ResultCode::InvalidSignature));
        assert_eq!(reason, NotReadyReason::CredentialsRejected);
        assert!(
            message.contains(r#"under "privateKey" in Secret acqp/demo-credentials"#),
            "{message}"
        );
        let (reason, _) = classify(&app(None), &rejected(ResultCode::AccessDenied));
        assert_eq!(reason, NotReadyReason::PermissionDenied);
        let unavailable = crate::devcenter::Error::Unavailable {
            path: APPLICATION_INQUIRY_PATH,
            attempts: 5,
            last: "HTTP 503".into(),
        };
        assert_eq!(
            classify(&app(None), &unavailable).0,
            NotReadyReason::DevCenterUnavailable
        );
    }
}
