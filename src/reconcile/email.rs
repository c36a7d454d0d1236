//! Which mails an authorization is owed, and what an attempt's outcome does to its status.
//!
//! A mail is owed for each newly issued authorization URL (to the ACQP's contacts) and for each
//! grant, rotation and revocation (to the TSP team). Each has a Message-ID derived from what it
//! announces, recorded in `status.email` before the first attempt, so that retries, a crash and
//! an operator restart all concern the same mail, and a delivered one is never sent again.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{
    AcqpAuthorization, AcqpAuthorizationStatus, AcqpStatus, EmailSettings, EmailStatus,
    MailDelivery, MailKind, Phase,
};

/// The condition saying whether the current authorization URL reached the ACQP's contacts.
pub const INVITATION_DELIVERED: &str = "InvitationDelivered";
/// The domain of every Message-ID: the operator's API group, which it owns.
const MESSAGE_ID_DOMAIN: &str = "acqp-operator.io";
/// The wait after the first failed attempt; doubled after each further one.
const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(15);
/// The longest wait between two attempts.
const MAX_RETRY: SignedDuration = SignedDuration::from_secs(30 * 60);
/// How long before an unused URL expires the TSP team is warned: a quarter of its lifetime,
/// at most this.
const MAX_EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(24);

/// A mail to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// What it announces.
    pub kind: MailKind,
    /// Its Message-ID, with angle brackets.
    pub message_id: String,
    /// Its To addresses.
    pub to: Vec<String>,
    /// Its Cc addresses.
    pub cc: Vec<String>,
    /// Failed attempts before this one.
    pub failed_attempts: u32,
}

/// What the mail owed by a resource needs next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailPlan {
    /// Mails to attempt now.
    pub send: Vec<Mail>,
    /// When to look again for a retry that is not due yet.
    pub retry_after: Option<Duration>,
}

/// The result of one attempt, as the shell reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The mail's Message-ID.
    pub message_id: String,
    /// When the attempt ended.
    pub at: Timestamp,
    /// The attempt's number (1 for the first).
    pub number: u32,
    /// `Err` with what the SMTP server or the policy said.
    pub result: Result<(), String>,
}

/// Registers in `status` the mails `resource` is owed and returns those due now; sets the
/// InvitationDelivered condition. `status` is the status about to be written (it may carry a
/// URL issued by this very reconcile).
pub fn plan(
    resource: &AcqpAuthorization,
    settings: Option<&EmailSettings>,
    status: &mut AcqpAuthorizationStatus,
    now: Timestamp,
) -> MailPlan {
    let mut plan = MailPlan::default();
    let previous = resource.status.as_ref().map(|s| s.conditions.as_slice());
    let invitation = resource
        .spec
        .invitation
        .as_ref()
        .and_then(|i| i.email.as_ref());
    if let Some(contacts) = invitation {
        if let Some(url) = awaited_url(status, now)
            && settings.is_some()
        {
            let wanted = Mail {
                kind: MailKind::Invitation,
                message_id: message_id("invitation", url.as_bytes()),
                to: contacts.to.clone(),
                cc: contacts.cc.clone(),
                failed_attempts: 0,
            };
            let email = status.email.get_or_insert_with(EmailStatus::default);
            owe(&mut email.invitation, wanted, now, &mut plan);
        }
        let condition = invitation_condition(resource, status, settings.is_some());
        set_condition(status, previous, condition, resource, now);
    }
    let team = settings.map(|s| &s.notify).filter(|n| !n.is_empty());
    if let Some(team) = team
        && let Some((kind, revision)) = notable(status)
    {
        let uid = resource.metadata.uid.as_deref().unwrap_or_default();
        let key = format!("{uid}/{}/{revision}", kind.as_str());
        let wanted = Mail {
            kind,
            message_id: message_id(&kind.as_str().to_lowercase(), key.as_bytes()),
            to: team.clone(),
            cc: vec![],
            failed_attempts: 0,
        };
        let email = status.email.get_or_insert_with(EmailStatus::default);
        owe(&mut email.notice, wanted, now, &mut plan);
    }
    if let Some(team) = team
        && let Some(url) = awaited_url(status, now).map(str::to_owned)
        && let Some(warn_at) = expiry_warning_time(status)
    {
        if warn_at <= now {
            let wanted = Mail {
                kind: MailKind::UrlExpiring,
                message_id: message_id("expiring", url.as_bytes()),
                to: team.clone(),
                cc: vec![],
                failed_attempts: 0,
            };
            let email = status.email.get_or_insert_with(EmailStatus::default);
            owe(&mut email.expiry_warning, wanted, now, &mut plan);
        } else {
            let wait = warn_at.duration_since(now).unsigned_abs();
            plan.retry_after = Some(plan.retry_after.map_or(wait, |w| w.min(wait)));
        }
    }
    plan
}

/// When the TSP team is warned that the awaited URL in `status` expires unused.
fn expiry_warning_time(status: &AcqpAuthorizationStatus) -> Option<Timestamp> {
    let issued = status.authorization_url_issued_at.as_ref()?.0;
    let expires = status.authorization_url_expires_at.as_ref()?.0;
    let lead = (expires.duration_since(issued) / 4).min(MAX_EXPIRY_WARNING);
    Some(expires - lead)
}

/// Keeps the InvitationDelivered condition `resource` had, for a reconcile that cannot tell
/// (its application is not loaded yet): nothing changes until it can.
pub fn keep(resource: &AcqpAuthorization, status: &mut AcqpAuthorizationStatus) {
    let previous = resource
        .status
        .as_ref()
        .and_then(|s| super::conditions::find(&s.conditions, INVITATION_DELIVERED));
    if let Some(previous) = previous {
        status
            .conditions
            .retain(|c| c.type_ != INVITATION_DELIVERED);
        status.conditions.push(previous.clone());
    }
}

/// Records an attempt's outcome in `status`, if it concerns a mail still recorded there.
/// Recording the same attempt twice changes nothing.
pub fn record(status: &mut AcqpAuthorizationStatus, attempt: &Attempt) {
    let Some(email) = status.email.as_mut() else {
        return;
    };
    let slots = [
        email.invitation.as_mut(),
        email.notice.as_mut(),
        email.expiry_warning.as_mut(),
    ];
    for delivery in slots
        .into_iter()
        .flatten()
        .filter(|d| d.message_id == attempt.message_id && d.sent_at.is_none())
    {
        match &attempt.result {
            Ok(()) => {
                delivery.sent_at = Some(Time(attempt.at));
                delivery.last_error = None;
            }
            Err(error) if attempt.number > delivery.failed_attempts => {
                delivery.failed_attempts = attempt.number;
                delivery.last_attempt_at = Some(Time(attempt.at));
                delivery.last_error = Some(error.clone());
            }
            Err(_) => {}
        }
    }
}

/// The wait before attempt `failed + 1`, after `failed` failures.
pub fn backoff(failed: u32) -> SignedDuration {
    let doublings = failed.saturating_sub(1).min(16);
    let wait = FIRST_RETRY.saturating_mul(1 << doublings);
    wait.min(MAX_RETRY)
}

/// The URL in `status` still waiting for the ACQP, if any.
fn awaited_url(status: &AcqpAuthorizationStatus, now: Timestamp) -> Option<&str> {
    let live = status
        .authorization_url_expires_at
        .as_ref()
        .is_some_and(|expires| expires.0 > now);
    (status.phase == Some(Phase::AwaitingAuthorization) && live)
        .then_some(status.authorization_url.as_deref())
        .flatten()
}

/// The latest transition the TSP team hears of, and the token revision it belongs to.
fn notable(status: &AcqpAuthorizationStatus) -> Option<(MailKind, i64)> {
    let revision = status.token_revision.filter(|r| *r > 0)?;
    let kind = match status.acqp_status? {
        AcqpStatus::Inactive => MailKind::Revoked,
        AcqpStatus::Active if revision == 1 => MailKind::Authorized,
        AcqpStatus::Active => MailKind::TokenRotated,
    };
    Some((kind, revision))
}

/// Makes `slot` hold `wanted`, and schedules an attempt when one is due.
fn owe(slot: &mut Option<MailDelivery>, wanted: Mail, now: Timestamp, plan: &mut MailPlan) {
    let recorded = slot.as_ref().filter(|d| d.message_id == wanted.message_id);
    let Some(recorded) = recorded else {
        *slot = Some(MailDelivery {
            kind: wanted.kind,
            message_id: wanted.message_id.clone(),
            recipients: wanted.to.iter().chain(&wanted.cc).cloned().collect(),
            sent_at: None,
            failed_attempts: 0,
            last_attempt_at: None,
            last_error: None,
        });
        plan.send.push(wanted);
        return;
    };
    if recorded.sent_at.is_some() {
        return;
    }
    let due = recorded
        .last_attempt_at
        .as_ref()
        .map_or(now, |t| t.0 + backoff(recorded.failed_attempts));
    if due <= now {
        plan.send.push(Mail {
            failed_attempts: recorded.failed_attempts,
            ..wanted
        });
    } else {
        let wait = due.duration_since(now).unsigned_abs();
        plan.retry_after = Some(plan.retry_after.map_or(wait, |w| w.min(wait)));
    }
}

/// `<prefix>.<32 hex of SHA-256(key)>@acqp-operator.io`: stable for one URL or transition, and
/// revealing neither.
fn message_id(prefix: &str, key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let hex = hex::encode(&digest.as_ref()[..16]);
    format!("<{prefix}.{hex}@{MESSAGE_ID_DOMAIN}>")
}

/// The InvitationDelivered condition `status` calls for, if any: (status, reason, message).
fn invitation_condition(
    resource: &AcqpAuthorization,
    status: &AcqpAuthorizationStatus,
    configured: bool,
) -> Option<(&'static str, &'static str, String)> {
    let app = &resource.spec.application_ref.name;
    let delivery = status.email.as_ref().and_then(|e| e.invitation.as_ref());
    if !configured && status.phase == Some(Phase::AwaitingAuthorization) {
        let message = format!(
            "spec.invitation.email is set but application {app} has no \
             spec.notifications.email: add its SMTP server there to mail the authorization URL"
        );
        return Some(("False", "EmailNotConfigured", message));
    }
    let delivery = delivery?;
    let to = delivery.recipients.join(", ");
    Some(match (&delivery.sent_at, &delivery.last_error) {
        (Some(sent), _) => (
            "True",
            "Sent",
            format!("the authorization URL was mailed to {to} at {}", sent.0),
        ),
        (None, Some(error)) => (
            "False",
            "SendFailed",
            format!(
                "mailing the authorization URL to {to} failed {} time(s), retrying with \
                 backoff; the last attempt: {error}",
                delivery.failed_attempts
            ),
        ),
        (None, None) => (
            "False",
            "Sending",
            format!("mailing the authorization URL to {to}"),
        ),
    })
}

/// Replaces the InvitationDelivered condition in `status` (drops it for `None`), keeping its
/// lastTransitionTime while its status stays the same.
fn set_condition(
    status: &mut AcqpAuthorizationStatus,
    previous: Option<&[Condition]>,
    wanted: Option<(&str, &str, String)>,
    resource: &AcqpAuthorization,
    now: Timestamp,
) {
    status
        .conditions
        .retain(|c| c.type_ != INVITATION_DELIVERED);
    let Some((state, reason, message)) = wanted else {
        return;
    };
    let last_transition_time = previous
        .and_then(|p| super::conditions::find(p, INVITATION_DELIVERED))
        .filter(|old| old.status == state)
        .map_or(Time(now), |old| old.last_transition_time.clone());
    status.conditions.push(Condition {
        type_: INVITATION_DELIVERED.into(),
        status: state.into(),
        reason: reason.into(),
        message,
        observed_generation: resource.metadata.generation,
        last_transition_time,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AcqpAuthorizationSpec, Invitation, InvitationEmail, Product, SmtpTls, TokenSecret,
    };

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn resource(status: Option<AcqpAuthorizationStatus>) -> AcqpAuthorization {
        let spec: AcqpAuthorizationSpec = serde_json::from_value(serde_json::json!({
            "applicationRef": {"name": "demo"},
            "acqp": {"id": "1022188000000000001"},
            "products": ["CashierPayment"],
        }))
        .unwrap();
        let mut object = AcqpAuthorization::new("acme", spec);
        object.metadata.uid = Some("uid-1".into());
        object.metadata.generation = Some(3);
        object.spec.token_secret = TokenSecret::default();
        object.spec.invitation = Some(Invitation {
            webhook: None,
            email: Some(InvitationEmail {
                to: vec!["ops@acqp.example".into()],
                cc: vec!["cto@acqp.example".into()],
            }),
        });
        object.status = status;
        object
    }

    fn settings(notify: &[&str]) -> EmailSettings {
        EmailSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            from: "operator@tsp.example".into(),
            notify: notify.iter().map(|s| (*s).to_owned()).collect(),
            secret_ref: None,
        }
    }

    fn awaiting(url: &str) -> AcqpAuthorizationStatus {
        AcqpAuthorizationStatus {
            phase: Some(Phase::AwaitingAuthorization),
            authorization_url: Some(url.into()),
            authorization_url_expires_at: Some(Time(at(3600))),
            requested_products: vec![Product::CashierPayment],
            ..Default::default()
        }
    }

    fn condition(status: &AcqpAuthorizationStatus) -> (String, String) {
        let c = super::super::conditions::find(&status.conditions, INVITATION_DELIVERED)
            .expect("InvitationDelivered");
        (c.status.clone(), c.reason.clone())
    }

    /// Plans, records the attempts with `result`, and returns the status the shell writes.
    fn step(
        object: &AcqpAuthorization,
        mut status: AcqpAuthorizationStatus,
        now: Timestamp,
        result: Result<(), &str>,
    ) -> (MailPlan, AcqpAuthorizationStatus) {
        let plan = plan(
            object,
            Some(&settings(&["team@tsp.example"])),
            &mut status,
            now,
        );
        for mail in &plan.send {
            let attempt = Attempt {
                message_id: mail.message_id.clone(),
                at: now,
                number: mail.failed_attempts + 1,
                result: result.map_err(str::to_owned),
            };
            record(&mut status, &attempt);
            record(&mut status, &attempt);
        }
        let _ = super::plan(
            object,
            Some(&settings(&["team@tsp.example"])),
            &mut status,
            now,
        );
        (plan, status)
    }

    #[test]
    fn a_new_url_is_mailed_once_to_to_and_cc() {
        let object = resource(None);
        let (plan, status) = step(&object, awaiting("https://dc/consent/a"), at(0), Ok(()));
        assert_eq!(plan.send.len(), 1);
        let mail = &plan.send[0];
        assert_eq!(mail.kind, MailKind::Invitation);
        assert_eq!(mail.to, ["ops@acqp.example"]);
        assert_eq!(mail.cc, ["cto@acqp.example"]);
        assert!(
            !mail.message_id.contains("consent"),
            "the ID reveals no URL"
        );
        assert_eq!(condition(&status), ("True".into(), "Sent".into()));
        let sent = status.email.as_ref().unwrap().invitation.as_ref().unwrap();
        assert_eq!(sent.recipients, ["ops@acqp.example", "cto@acqp.example"]);
        assert_eq!(sent.sent_at, Some(Time(at(0))));

        // Deciding again, as after an operator restart, sends nothing.
        let restarted = resource(Some(status.clone()));
        let (again, after) = step(&restarted, status.clone(), at(5), Ok(()));
        assert!(again.send.is_empty());
        assert_eq!(after, status);

        // A new URL (re-invitation, scope change) is a new mail with another Message-ID.
        let mut reissued = status.clone();
        reissued.authorization_url = Some("https://dc/consent/b".into());
        let (next, _) = step(&restarted, reissued, at(10), Ok(()));
        assert_eq!(next.send.len(), 1);
        assert_ne!(next.send[0].message_id, mail.message_id);
    }

    #[test]
    fn failures_are_retried_with_backoff_and_the_same_message_id() {
        let object = resource(None);
        let (first, status) = step(&object, awaiting("https://dc/u"), at(0), Err("451 busy"));
        assert_eq!(condition(&status), ("False".into(), "SendFailed".into()));
        let message = &status.conditions.last().unwrap().message;
        assert!(message.contains("451 busy"), "{message}");

        let object = resource(Some(status.clone()));
        let (early, unchanged) = step(&object, status.clone(), at(10), Err("451 busy"));
        assert!(early.send.is_empty(), "before the backoff");
        assert_eq!(early.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(unchanged, status);

        let (retry, status) = step(&object, status, at(15), Err("451 busy"));
        assert_eq!(retry.send[0].message_id, first.send[0].message_id);
        assert_eq!(retry.send[0].failed_attempts, 1);
        let delivery = status.email.as_ref().unwrap().invitation.clone().unwrap();
        assert_eq!(delivery.failed_attempts, 2);

        let object = resource(Some(status.clone()));
        let (later, _) = step(&object, status.clone(), at(30), Ok(()));
        assert!(later.send.is_empty(), "the second wait is 30 s");
        let (last, status) = step(&object, status, at(45), Ok(()));
        assert_eq!(last.send.len(), 1);
        assert_eq!(condition(&status), ("True".into(), "Sent".into()));
    }

    #[test]
    fn nothing_is_mailed_without_a_server_and_the_condition_says_where_to_add_it() {
        let object = resource(None);
        let mut status = awaiting("https://dc/u");
        let plan = plan(&object, None, &mut status, at(0));
        assert!(plan.send.is_empty());
        assert_eq!(
            condition(&status),
            ("False".into(), "EmailNotConfigured".into())
        );
        assert!(status.email.is_none());
    }

    #[test]
    fn expired_or_granted_urls_are_not_mailed() {
        let object = resource(None);
        let mut expired = awaiting("https://dc/u");
        expired.authorization_url_expires_at = Some(Time(at(-1)));
        assert!(
            plan(&object, Some(&settings(&[])), &mut expired, at(0))
                .send
                .is_empty()
        );
        let mut active = awaiting("https://dc/u");
        active.phase = Some(Phase::Active);
        assert!(
            plan(&object, Some(&settings(&[])), &mut active, at(0))
                .send
                .is_empty()
        );
    }

    #[test]
    fn the_team_hears_of_each_grant_rotation_and_revocation_once() {
        let mut object = resource(None);
        object.spec.invitation = None;
        let mut ids = Vec::new();
        let mut status = AcqpAuthorizationStatus::default();
        for (acqp_status, revision, kind) in [
            (AcqpStatus::Active, 1, MailKind::Authorized),
            (AcqpStatus::Active, 2, MailKind::TokenRotated),
            (AcqpStatus::Inactive, 2, MailKind::Revoked),
        ] {
            status.acqp_status = Some(acqp_status);
            status.token_revision = Some(revision);
            let (plan, after) = step(&object, status.clone(), at(0), Ok(()));
            assert_eq!(plan.send.len(), 1, "{kind:?}");
            assert_eq!(plan.send[0].kind, kind);
            assert_eq!(plan.send[0].to, ["team@tsp.example"]);
            ids.push(plan.send[0].message_id.clone());
            let (again, _) = step(&object, after.clone(), at(1), Ok(()));
            assert!(again.send.is_empty(), "{kind:?} twice");
            assert!(
                !after
                    .conditions
                    .iter()
                    .any(|c| c.type_ == INVITATION_DELIVERED),
                "no invitation asked for"
            );
            status = after;
        }
        ids.dedup();
        assert_eq!(ids.len(), 3);
        // No team: no notice.
        let mut quiet = status.clone();
        quiet.token_revision = Some(3);
        quiet.acqp_status = Some(AcqpStatus::Active);
        assert!(
            plan(&object, Some(&settings(&[])), &mut quiet, at(0))
                .send
                .is_empty()
        );
    }

    #[test]
    fn an_unloaded_application_changes_nothing() {
        let object = resource(None);
        let (_, sent) = step(&object, awaiting("https://dc/u"), at(0), Ok(()));
        let object = resource(Some(sent.clone()));
        // The decision rebuilt its own conditions; the mail condition comes back as it was.
        let mut decided = sent.clone();
        decided
            .conditions
            .retain(|c| c.type_ != INVITATION_DELIVERED);
        keep(&object, &mut decided);
        assert_eq!(decided, sent);
    }

    #[test]
    fn the_team_is_warned_once_before_an_unused_url_expires() {
        let mut object = resource(None);
        object.spec.invitation = None;
        let mut status = awaiting("https://dc/u");
        status.authorization_url_issued_at = Some(Time(at(0)));
        // Lifetime 3600 s: the warning is due a quarter before, at 2700 s.
        let (early, _) = step(&object, status.clone(), at(2000), Ok(()));
        assert!(early.send.is_empty());
        assert_eq!(early.retry_after, Some(Duration::from_secs(700)));
        let (due, warned) = step(&object, status.clone(), at(2700), Ok(()));
        assert_eq!(due.send.len(), 1);
        assert_eq!(due.send[0].kind, MailKind::UrlExpiring);
        assert_eq!(due.send[0].to, ["team@tsp.example"]);
        let (again, _) = step(&object, warned.clone(), at(2800), Ok(()));
        assert!(again.send.is_empty(), "once per URL");
        let mut granted = warned;
        granted.phase = Some(Phase::Active);
        granted.email = None;
        let (used, _) = step(&object, granted, at(2800), Ok(()));
        assert!(used.send.is_empty(), "a used URL is no news");
    }

    #[test]
    fn backoff_doubles_up_to_half_an_hour() {
        assert_eq!(backoff(1), SignedDuration::from_secs(15));
        assert_eq!(backoff(2), SignedDuration::from_secs(30));
        assert_eq!(backoff(3), SignedDuration::from_secs(60));
        assert_eq!(backoff(40), MAX_RETRY);
    }
}
