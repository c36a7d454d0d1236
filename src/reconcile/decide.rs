//! The decision function itself. Read top to bottom: each step either settles the outcome or
//! hands on to the next, in the order a human would check things.

use super::annotations::Requests;
use super::conditions::{self, Wanted};
use super::secret::{self, SecretView};
use super::{
    Action, ApplicationView, Decision, Event, Input, IssuedUrl, Reason, Refusal,
    RemoteAuthorization, RemoteView, UrlAnswer,
};
use crate::api::{
    AcqpAuthorizationStatus, AcqpStatus, Phase, Product, RevocationPolicy, TokenSecretRef,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeSet;
use std::time::Duration;

/// A URL this close to expiry is replaced rather than handed out.
const URL_EXPIRY_MARGIN: SignedDuration = SignedDuration::from_secs(60);
/// How long a refusal by the Developer Center stands before the operator asks again.
const REFUSAL_RETRY: SignedDuration = SignedDuration::from_secs(600);
/// How soon to look again while the first list of authorizations is pending.
const FIRST_LIST_RETRY: Duration = Duration::from_secs(5);

/// Decides what to do for one AcqpAuthorization.
pub fn decide(input: &Input<'_>) -> Decision {
    let next = Next::new(input);
    if next.requests.paused {
        return next.paused();
    }
    decide_unpaused(next)
}

fn decide_unpaused(mut next: Next<'_, '_>) -> Decision {
    let input = next.input;
    if let Some(rival) = winning_rival(input) {
        let message = format!(
            "AcqpAuthorization {rival} already claims ACQP {} for application {}: delete this \
             resource or add its products to {rival}",
            input.resource.spec.acqp.id, input.resource.spec.application_ref.name
        );
        return next.stalled(Phase::Error, Reason::DuplicateAcqp, message);
    }
    let app = &input.resource.spec.application_ref.name;
    let integrated = match &input.application {
        ApplicationView::NotFound => {
            let message = format!(
                "DeveloperCenterApplication {app} not found in this namespace: create it or fix \
                 spec.applicationRef.name"
            );
            return next.stalled(Phase::Error, Reason::ApplicationNotFound, message);
        }
        ApplicationView::PermissionDenied => {
            let message = format!(
                "the credentials of application {app} are not a Developer Admin's: only a \
                 Developer Admin may generate authorization URLs; use a Developer Admin's keys"
            );
            return next.stalled(Phase::Error, Reason::PermissionDenied, message);
        }
        // What the operator last saw for this generation still stands (the token in the Secret
        // still works): keep it rather than flap while the application recovers or, after a
        // restart, loads.
        ApplicationView::NotReady { .. } if next.is_current() => {
            return next.unchanged(Some(input.poll_interval));
        }
        ApplicationView::NotReady { reason, message } => {
            let message =
                format!("waiting for application {app} to become Ready ({reason}: {message})");
            return next.progressing(
                Phase::Pending,
                Reason::ApplicationNotReady,
                message,
                Some(input.poll_interval),
            );
        }
        ApplicationView::Ready {
            integrated_products,
        } => integrated_products,
    };
    if let SecretView::Foreign { owner } = &input.secret {
        let name = input.resource.token_secret_name();
        let message = format!(
            "Secret {name} already exists and is not managed by this AcqpAuthorization ({owner}); \
             it is left untouched: delete or rename it, or set spec.tokenSecret.name"
        );
        return next.stalled(Phase::Error, Reason::SecretConflict, message);
    }
    let remote = match &input.remote {
        // Nothing is known yet that could change a status written for this generation (an
        // operator restart, say): keep it, so a Ready resource does not flap while listing.
        RemoteView::Unknown if next.is_current() => {
            return next.unchanged(Some(FIRST_LIST_RETRY));
        }
        RemoteView::Unknown => {
            let message = "waiting for the first list of authorizations from the Developer Center"
                .to_string();
            let retry = Some(FIRST_LIST_RETRY);
            return next.progressing(Phase::Pending, Reason::Listing, message, retry);
        }
        RemoteView::Absent => None,
        RemoteView::Present(record) => Some(record),
    };
    // Keep the Secret current whatever else is wrong: a valid token is never withheld.
    if let Some(record) = remote.filter(|r| r.status == AcqpStatus::Active) {
        next.track_grant(record);
    } else if let Some(record) = remote {
        next.status.acqp_status = Some(record.status);
    }
    let missing: Vec<Product> = next
        .desired
        .iter()
        .filter(|p| !integrated.contains(p))
        .copied()
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "{} not integrated in application {app}: add the payment products in the Developer \
             Center first, or remove them from spec.products",
            list(&missing)
        );
        return next.stalled(Phase::Error, Reason::ProductsNotIntegrated, message);
    }
    // A refresh request is the console's "refresh to retry": it ends a standing refusal.
    if let Some(refusal) = standing_refusal(input).filter(|_| next.refresh_pending().is_none()) {
        return next.keep_refusal(refusal);
    }
    let acqp = acqp_label(input);
    match remote {
        Some(record) if record.status == AcqpStatus::Active => {
            let missing: Vec<Product> = next
                .desired
                .iter()
                .filter(|p| !record.products.contains(p))
                .copied()
                .collect();
            if missing.is_empty() {
                return next.authorized(record, &acqp);
            }
            let message = format!(
                "{acqp} must authorize the added {}: send it the authorization URL; the current \
                 Agent-Token stays in the Secret until then",
                list(&missing)
            );
            next.await_grant(Reason::ScopeChangePending, message)
        }
        Some(record) if next.status.token_revision.unwrap_or(0) > 0 => {
            let since = record.update_time;
            match input.resource.spec.revocation_policy {
                RevocationPolicy::Wait => {
                    let mut message = format!(
                        "{acqp} cancelled its authorization at {since}; the Agent-Token no longer \
                         works. Set spec.revocationPolicy: Reinvite to send a new authorization URL"
                    );
                    if next.reinvite_pending().is_some() {
                        message.push_str(
                            " (the reinvite request is not honoured while revocationPolicy is Wait)",
                        );
                    }
                    next.clear_url();
                    next.stalled(Phase::Revoked, Reason::Revoked, message)
                }
                RevocationPolicy::Reinvite => {
                    let message = format!(
                        "{acqp} cancelled its authorization at {since}; send it the new \
                         authorization URL"
                    );
                    next.await_grant(Reason::Reinvited, message)
                }
            }
        }
        _ => {
            let message =
                format!("send the authorization URL to {acqp} and wait for it to authorize");
            next.await_grant(Reason::AwaitingAuthorization, message)
        }
    }
}

/// The status being built, with what the decision needs along the way.
struct Next<'i, 'a> {
    input: &'i Input<'a>,
    generation: i64,
    desired: Vec<Product>,
    requests: Requests,
    status: AcqpAuthorizationStatus,
    actions: Vec<Action>,
}

impl<'i, 'a> Next<'i, 'a> {
    fn new(input: &'i Input<'a>) -> Self {
        let desired: BTreeSet<Product> = input.resource.spec.products.iter().copied().collect();
        Next {
            input,
            generation: input.resource.metadata.generation.unwrap_or_default(),
            desired: desired.into_iter().collect(),
            requests: Requests::of(input.resource),
            status: input.resource.status.clone().unwrap_or_default(),
            actions: Vec::new(),
        }
    }

    /// Notes a (possibly new) grant and makes sure the Secret holds its token.
    fn track_grant(&mut self, record: &RemoteAuthorization) {
        let status = &mut self.status;
        status.acqp_status = Some(AcqpStatus::Active);
        let mut revision = status.token_revision.unwrap_or(0);
        let is_new_grant = status.token_fingerprint.as_deref() != Some(&record.token_fingerprint);
        if is_new_grant {
            revision += 1;
            status.token_revision = Some(revision);
            status.token_fingerprint = Some(record.token_fingerprint.clone());
            status.token_rotated_at = Some(Time(self.input.now));
            status.authorized_products = record.products.clone();
            let (reason, verb) = if revision == 1 {
                (Reason::Authorized, "authorized")
            } else {
                (Reason::TokenRotated, "re-authorized")
            };
            let message = format!(
                "{} {verb} {}; Agent-Token revision {revision} ({})",
                acqp_label(self.input),
                list(&record.products),
                record.token_fingerprint
            );
            self.actions.push(Action::Event(Event {
                warning: false,
                reason,
                message,
            }));
        }
        let desired = secret::desired(
            self.input.resource,
            &record.products,
            revision,
            &record.token_fingerprint,
        );
        status.token_secret_ref = Some(TokenSecretRef {
            name: desired.name.clone(),
            key: desired.key.clone(),
        });
        if !desired.is_satisfied_by(&self.input.secret) {
            if self.input.secret == SecretView::Released {
                let message = format!(
                    "Secret {}, released by an earlier AcqpAuthorization for this ACQP, is \
                     adopted",
                    desired.name
                );
                self.actions.push(Action::Event(Event {
                    warning: false,
                    reason: Reason::SecretAdopted,
                    message,
                }));
            } else if !is_new_grant {
                // The grant is one the operator already delivered: someone else changed or
                // removed its Secret, which applications reading it should hear about.
                let what = match self.input.secret {
                    SecretView::Missing => "deleted outside the operator; recreated it",
                    _ => "changed outside the operator; restored it",
                };
                self.actions.push(Action::Event(Event {
                    warning: true,
                    reason: Reason::SecretRepaired,
                    message: format!("Secret {} was {what}", desired.name),
                }));
            }
            self.actions.push(Action::WriteSecret(desired));
        }
    }

    /// Ready: the ACQP authorized every desired product and the Secret holds the token.
    fn authorized(mut self, record: &RemoteAuthorization, acqp: &str) -> Decision {
        self.clear_url();
        if let Some(value) = self.reinvite_pending() {
            self.status.last_handled_reinvite_at = Some(value);
            self.actions.push(Action::Event(Event {
                warning: false,
                reason: Reason::ReinviteNotNeeded,
                message: format!(
                    "{acqp} has authorized every product: no new authorization URL was issued"
                ),
            }));
        }
        let secret = self
            .status
            .token_secret_ref
            .as_ref()
            .map(|r| format!("{}/{}", r.name, r.key))
            .unwrap_or_default();
        let message = format!(
            "{acqp} authorized {}; Agent-Token revision {} ({}) is in Secret {secret}",
            list(&record.products),
            self.status.token_revision.unwrap_or(0),
            record.token_fingerprint
        );
        let wanted = Wanted {
            ready: true,
            reason: Reason::Authorized.as_str(),
            message,
            reconciling: false,
            stalled: false,
        };
        self.finish(Phase::Active, wanted, None)
    }

    /// Waits for the ACQP on a valid URL for the desired products, issuing one if needed (or
    /// recording the one the Developer Center issued, or its refusal).
    fn await_grant(mut self, reason: Reason, message: String) -> Decision {
        let mut url_expiry = self.current_url_expiry();
        if url_expiry.is_none() {
            let reinvite = self.reinvite_pending();
            let request_id = self.request_id(reinvite.as_deref());
            if reinvite.is_some() {
                self.status.last_handled_reinvite_at = reinvite;
            }
            match self.input.answer.clone() {
                None => self.actions.push(Action::IssueUrl {
                    request_id,
                    products: self.desired.clone(),
                }),
                Some(UrlAnswer::Issued(issued)) => {
                    self.record_url(issued);
                    url_expiry = self.current_url_expiry();
                }
                Some(UrlAnswer::Refused { refusal, message }) => {
                    return self.refused(refusal, &message);
                }
            }
        }
        let poll = self.input.poll_interval;
        let requeue = url_expiry.map_or(poll, |expires| {
            let until_refresh = (expires - URL_EXPIRY_MARGIN).duration_since(self.input.now);
            poll.min(until_refresh.unsigned_abs())
        });
        self.progressing(Phase::AwaitingAuthorization, reason, message, Some(requeue))
    }

    /// When the URL in the status expires, if it asks for the desired products, no
    /// re-invitation wants it replaced, and it is not about to expire.
    fn current_url_expiry(&self) -> Option<Timestamp> {
        let now = self.input.now;
        self.status
            .authorization_url
            .as_ref()
            .filter(|_| {
                self.status.requested_products == self.desired && self.reinvite_pending().is_none()
            })
            .and(self.status.authorization_url_expires_at.as_ref())
            .map(|t| t.0)
            .filter(|expires| *expires > now + URL_EXPIRY_MARGIN)
    }

    /// Puts the URL the Developer Center issued into the status, and says so in an Event.
    fn record_url(&mut self, issued: IssuedUrl) {
        let message = format!(
            "authorization URL for ACQP {} ({}), valid until {}: {}",
            self.input.resource.spec.acqp.id,
            Product::join(&issued.products),
            issued.expires_at,
            issued.url
        );
        self.actions.push(Action::Event(Event {
            warning: false,
            reason: Reason::UrlIssued,
            message,
        }));
        let status = &mut self.status;
        status.authorization_url = Some(issued.url);
        status.authorization_url_issued_at = Some(Time(self.input.now));
        status.authorization_url_expires_at = Some(Time(issued.expires_at));
        status.requested_products = issued.products;
    }

    /// The refresh request's value, if it has not been acted on yet.
    fn refresh_pending(&self) -> Option<String> {
        let handled = self.status.last_handled_refresh_at.as_ref();
        self.requests.refresh.clone().filter(|v| Some(v) != handled)
    }

    /// The re-invitation request's value, if it has not been acted on yet.
    fn reinvite_pending(&self) -> Option<String> {
        let handled = self.status.last_handled_reinvite_at.as_ref();
        self.requests
            .reinvite
            .clone()
            .filter(|v| Some(v) != handled)
    }

    /// Paused: nothing is done and nothing but the request conditions changes, not even
    /// observedGeneration (the spec has not been acted on).
    fn paused(self) -> Decision {
        let mut status = self.input.resource.status.clone().unwrap_or_default();
        status.conditions = self.with_request_conditions(status.conditions);
        Decision {
            status,
            actions: Vec::new(),
            requeue_after: None,
        }
    }

    /// `conditions` with the Paused and MalformedAnnotation conditions the annotations call
    /// for (each present only while True).
    fn with_request_conditions(&self, mut conditions: Vec<Condition>) -> Vec<Condition> {
        let previous = self
            .input
            .resource
            .status
            .as_ref()
            .map(|s| &s.conditions[..]);
        let previous = previous.unwrap_or_default();
        let now = Time(self.input.now);
        conditions.retain(|c| c.type_ != conditions::PAUSED && c.type_ != conditions::MALFORMED);
        if self.requests.paused {
            let name = self
                .input
                .resource
                .metadata
                .name
                .as_deref()
                .unwrap_or_default();
            let message = format!(
                "annotation {} pauses this resource: the operator calls no Developer Center and \
                 writes no Secret for it; `kubectl annotate acqpauth {name} {}-` resumes",
                super::annotations::PAUSED,
                super::annotations::PAUSED
            );
            let paused = (conditions::PAUSED, Reason::Paused.as_str(), message);
            conditions.push(conditions::present(previous, paused, self.generation, &now));
        }
        if !self.requests.malformed.is_empty() {
            let message = self
                .requests
                .malformed
                .iter()
                .map(|m| m.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let malformed = (
                conditions::MALFORMED,
                Reason::MalformedAnnotation.as_str(),
                message,
            );
            conditions.push(conditions::present(
                previous,
                malformed,
                self.generation,
                &now,
            ));
        }
        conditions
    }

    /// Whether the status already describes this generation.
    fn is_current(&self) -> bool {
        self.status.observed_generation == Some(self.generation)
    }

    fn unchanged(self, requeue_after: Option<Duration>) -> Decision {
        let status = self.input.resource.status.clone().unwrap_or_default();
        Decision {
            status,
            actions: Vec::new(),
            requeue_after,
        }
    }

    fn progressing(
        self,
        phase: Phase,
        reason: Reason,
        message: String,
        requeue: Option<Duration>,
    ) -> Decision {
        let wanted = Wanted {
            ready: false,
            reason: reason.as_str(),
            message,
            reconciling: true,
            stalled: false,
        };
        self.finish(phase, wanted, requeue)
    }

    fn stalled(mut self, phase: Phase, reason: Reason, message: String) -> Decision {
        self.warn_unless_stalled_for(reason, &message);
        self.finish(phase, stalled_conditions(reason, message), None)
    }

    /// Stalled on a refusal of the Developer Center that a human must fix; it stands for
    /// [`REFUSAL_RETRY`] before the operator asks again.
    fn refused(mut self, refusal: Refusal, message: &str) -> Decision {
        let reason = refusal.reason();
        let message = format!("{REFUSAL_PREFIX}: {message}; {}", refusal.hint());
        self.warn_unless_stalled_for(reason, &message);
        // The wait runs from this refusal (the Stalled condition's lastTransitionTime), also
        // when a retry is refused again.
        self.status
            .conditions
            .retain(|c| c.type_ != conditions::STALLED);
        let retry = REFUSAL_RETRY.unsigned_abs();
        self.finish(
            Phase::Error,
            stalled_conditions(reason, message),
            Some(retry),
        )
    }

    /// Keeps a refusal until it is due for another try.
    fn keep_refusal(self, refusal: StandingRefusal) -> Decision {
        let requeue = refusal
            .retry_at
            .duration_since(self.input.now)
            .unsigned_abs();
        self.finish(
            Phase::Error,
            stalled_conditions(refusal.reason, refusal.message),
            Some(requeue),
        )
    }

    /// A Warning Event, unless the resource is already Stalled for `reason` (no transition).
    fn warn_unless_stalled_for(&mut self, reason: Reason, message: &str) {
        let already = conditions::find(&self.status.conditions, conditions::STALLED)
            .is_some_and(|c| c.reason == reason.as_str());
        if !already {
            self.actions.push(Action::Event(Event {
                warning: true,
                reason,
                message: message.to_owned(),
            }));
        }
    }

    fn clear_url(&mut self) {
        let status = &mut self.status;
        status.authorization_url = None;
        status.authorization_url_issued_at = None;
        status.authorization_url_expires_at = None;
        status.requested_products.clear();
    }

    /// The idempotency key of a URL request: the same inputs after a crash give the same key,
    /// and every situation that needs a new URL (other products, a new grant, an expired URL)
    /// changes it.
    /// A re-invitation request adds its value, so each value yields exactly one new URL.
    fn request_id(&self, reinvite: Option<&str>) -> String {
        let uid = self
            .input
            .resource
            .metadata
            .uid
            .as_deref()
            .unwrap_or_default();
        let products = Product::join(&self.desired);
        let revision = self.status.token_revision.unwrap_or(0);
        let previous = self.status.authorization_url.as_deref().unwrap_or_default();
        let mut material = format!("{uid}\n{products}\n{revision}\n{previous}");
        if let Some(value) = reinvite {
            material.push_str("\nreinvite ");
            material.push_str(value);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, material.as_bytes());
        format!("acqpop-{}", &hex::encode(digest.as_ref())[..40])
    }

    fn finish(mut self, phase: Phase, wanted: Wanted, requeue_after: Option<Duration>) -> Decision {
        let now = Time(self.input.now);
        if let Some(value) = self.refresh_pending() {
            self.status.last_handled_refresh_at = Some(value);
            self.actions.push(Action::RefreshRemote);
        }
        let applied = conditions::apply(&self.status.conditions, &wanted, self.generation, &now);
        let applied = self.with_request_conditions(applied);
        let status = &mut self.status;
        status.observed_generation = Some(self.generation);
        status.phase = Some(phase);
        status.conditions = applied;
        let previous = self.input.resource.status.clone().unwrap_or_default();
        // lastCheckedTime moves only with another change, so a quiet system writes nothing.
        let changed = AcqpAuthorizationStatus {
            last_checked_time: None,
            ..status.clone()
        } != AcqpAuthorizationStatus {
            last_checked_time: None,
            ..previous
        };
        if changed {
            status.last_checked_time = Some(now);
        }
        Decision {
            status: self.status,
            actions: self.actions,
            requeue_after,
        }
    }
}

/// How a refusal's message starts, which tells it from the same reason found by the operator.
const REFUSAL_PREFIX: &str = "the Developer Center refused the authorization URL";

/// The conditions of a resource a human must look at.
fn stalled_conditions(reason: Reason, message: String) -> Wanted {
    Wanted {
        ready: false,
        reason: reason.as_str(),
        message,
        reconciling: false,
        stalled: true,
    }
}

/// A refusal recorded for this generation that is not yet due for a retry.
struct StandingRefusal {
    reason: Reason,
    message: String,
    retry_at: Timestamp,
}

fn standing_refusal(input: &Input<'_>) -> Option<StandingRefusal> {
    let status = input.resource.status.as_ref()?;
    let stalled = conditions::find(&status.conditions, conditions::STALLED)?;
    let refusal = Refusal::with_reason(&stalled.reason)?;
    let retry_at = stalled.last_transition_time.0 + REFUSAL_RETRY;
    let current = stalled.observed_generation == input.resource.metadata.generation;
    let refused = stalled.message.starts_with(REFUSAL_PREFIX);
    (current && refused && input.now < retry_at).then(|| StandingRefusal {
        reason: refusal.reason(),
        message: stalled.message.clone(),
        retry_at,
    })
}

/// The oldest other claim on the same ACQP, if it is older than this resource.
fn winning_rival(input: &Input<'_>) -> Option<String> {
    let meta = &input.resource.metadata;
    let mine = (
        meta.creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(input.now),
        meta.name.clone().unwrap_or_default(),
    );
    input
        .rivals
        .iter()
        .map(|c| (c.created, c.name.clone()))
        .filter(|theirs| *theirs < mine)
        .min()
        .map(|(_, name)| name)
}

fn acqp_label(input: &Input<'_>) -> String {
    let acqp = &input.resource.spec.acqp;
    match &acqp.name {
        Some(name) => format!("ACQP {name} ({})", acqp.id),
        None => format!("ACQP {}", acqp.id),
    }
}

fn list(products: &[Product]) -> String {
    let noun = if products.len() == 1 {
        "product"
    } else {
        "products"
    };
    format!("{noun} {}", Product::join(products))
}
