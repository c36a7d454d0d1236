//! Mails about AcqpAuthorizations: the authorization URL to the ACQP's contacts, and grants,
//! rotations and revocations to the TSP team, through the application's SMTP server.
//!
//! [`reconcile::email`] decides which mail is owed and records it in status before the first
//! attempt; this shell renders it, sends it in a background task and wakes the resource, whose
//! next reconcile records the outcome. Reconciling never waits for an SMTP server. Sessions are
//! bounded like webhook deliveries (per namespace and in total), each within a time limit.
//!
//! A mail is sent at least once: an operator that dies after the server accepted a mail but
//! before the status said so sends it again after restarting, with the same Message-ID (derived
//! from the URL or the transition), so mail clients show one message.

mod message;
mod smtp;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Resource as _, ResourceExt as _,
    runtime::{
        events::{Event, EventType},
        reflector::ObjectRef,
    },
};
use lettre::transport::smtp::authentication::Credentials;

use super::{Context, invitation::Deliveries, registry::Application};
use crate::{
    api::{AcqpAuthorization, AcqpAuthorizationStatus, EmailSettings, MailKind},
    reconcile::email::{self as decide, Attempt, Mail},
};

/// How soon to try again when every session slot is taken.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The mail sessions in flight and the outcomes not yet seen in status.
#[derive(Default)]
pub(crate) struct Mailer {
    sessions: Deliveries,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Message-IDs being sent now.
    sending: Mutex<HashSet<String>>,
    /// The latest attempt of each mail recorded in a resource's status, by resource UID; at most
    /// one per mail slot, pruned to what the status still records.
    attempts: Mutex<HashMap<String, Vec<Attempt>>>,
}

impl Shared {
    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Attempt>>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sending(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, uid: &str, attempt: Attempt) {
        let mut attempts = self.attempts();
        let list = attempts.entry(uid.to_owned()).or_default();
        list.retain(|a| a.message_id != attempt.message_id);
        list.push(attempt);
    }
}

impl Mailer {
    /// Brings the mail part of `status` (about to be written for `object`) up to date: records
    /// finished attempts, starts the mails now due, and says when to look again for a retry.
    pub(crate) fn settle(
        &self,
        object: &AcqpAuthorization,
        status: &mut AcqpAuthorizationStatus,
        app: Option<&Application>,
        ctx: &Context,
    ) -> Option<Duration> {
        let Some(app) = app else {
            decide::keep(object, status);
            return None;
        };
        let uid = object.uid().unwrap_or_default();
        let known: Vec<Attempt> = self
            .shared
            .attempts()
            .get(&uid)
            .cloned()
            .unwrap_or_default();
        for attempt in &known {
            decide::record(status, attempt);
        }
        let settings = app.email.as_ref();
        let plan = decide::plan(object, settings, status, jiff::Timestamp::now());
        self.prune(&uid, status);
        let mut retry = plan.retry_after;
        if let Some(settings) = settings {
            for mail in plan.send {
                if !self.start(object, status, app, settings, mail, ctx) {
                    retry = Some(retry.map_or(BUSY_RETRY, |r| r.min(BUSY_RETRY)));
                }
            }
        }
        retry
    }

    /// Forgets a deleted resource's attempts.
    pub(crate) fn forget(&self, object: &AcqpAuthorization) {
        self.shared
            .attempts()
            .remove(&object.uid().unwrap_or_default());
    }

    /// Keeps only the attempts of mails `status` still records.
    fn prune(&self, uid: &str, status: &AcqpAuthorizationStatus) {
        let recorded: Vec<&str> = status
            .email
            .iter()
            .flat_map(|e| [&e.invitation, &e.notice, &e.expiry_warning])
            .flatten()
            .map(|d| d.message_id.as_str())
            .collect();
        let mut attempts = self.shared.attempts();
        if let Some(list) = attempts.get_mut(uid) {
            list.retain(|a| recorded.contains(&a.message_id.as_str()));
            if list.is_empty() {
                attempts.remove(uid);
            }
        }
    }

    /// Starts sending `mail` unless it is already being sent; false when no session slot is
    /// free (the caller looks again soon).
    fn start(
        &self,
        object: &AcqpAuthorization,
        status: &mut AcqpAuthorizationStatus,
        app: &Application,
        settings: &EmailSettings,
        mail: Mail,
        ctx: &Context,
    ) -> bool {
        if self.shared.sending().contains(&mail.message_id) {
            return true;
        }
        let namespace = object.namespace().unwrap_or_default();
        let Some(slot) = self.sessions.take(&namespace) else {
            tracing::warn!(%namespace, "too many mail sessions in flight; this mail waits");
            return false;
        };
        let uid = object.uid().unwrap_or_default();
        let number = mail.failed_attempts + 1;
        let message = message::build(&settings.from, &mail, render(object, status, app, &mail));
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                // Nothing to retry with: the same facts render the same message.
                let attempt = Attempt {
                    message_id: mail.message_id,
                    at: jiff::Timestamp::now(),
                    number,
                    result: Err(error),
                };
                decide::record(status, &attempt);
                self.shared.remember(&uid, attempt);
                return true;
            }
        };
        self.shared.sending().insert(mail.message_id.clone());
        let shared = self.shared.clone();
        let settings = settings.clone();
        let policy = ctx.endpoint_policy.clone();
        let client = ctx.client.clone();
        let recorder = ctx.event_recorder();
        let reference = object.object_ref(&());
        let wake = ctx.waker();
        let woken = ObjectRef::from_obj(object);
        tokio::spawn(async move {
            let result = match login(&client, &namespace, &settings).await {
                Ok(login) => smtp::send(&policy, &settings, &login, &message).await,
                Err(error) => Err(error),
            };
            let recipients = mail.to.iter().chain(&mail.cc).cloned().collect::<Vec<_>>();
            let event = announce(&mail, &recipients, number, &result);
            let attempt = Attempt {
                message_id: mail.message_id.clone(),
                at: jiff::Timestamp::now(),
                number,
                result,
            };
            shared.remember(&uid, attempt);
            shared.sending().remove(&mail.message_id);
            drop(slot);
            if let Some(event) = event {
                super::context::record(&recorder, &event, &reference).await;
            }
            // Fails only once the controller has stopped.
            let _ = wake.send(woken);
        });
        true
    }
}

/// The subject and bodies of `mail` about `object`.
fn render(
    object: &AcqpAuthorization,
    status: &AcqpAuthorizationStatus,
    app: &Application,
    mail: &Mail,
) -> message::Rendered {
    let resource = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let about = message::About {
        application: &app.key.name,
        client_id: &app.client_id,
        acqp_id: &object.spec.acqp.id,
        acqp_name: object.spec.acqp.name.as_deref(),
        resource: &resource,
    };
    let invitation = message::Invitation {
        products: &status.requested_products,
        url: status.authorization_url.as_deref().unwrap_or_default(),
        expires_at: status
            .authorization_url_expires_at
            .as_ref()
            .map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0),
    };
    match mail.kind {
        MailKind::Invitation => message::invitation(&about, &invitation),
        MailKind::UrlExpiring => message::expiring(&about, &invitation),
        kind => message::notice(
            &about,
            kind,
            &message::Notice {
                products: &status.authorized_products,
                fingerprint: status.token_fingerprint.as_deref(),
                revision: status.token_revision.unwrap_or_default(),
                secret: &object.token_secret_name(),
            },
        ),
    }
}

/// The Event for an attempt: each delivery, and the first failure of each mail (later failures
/// are in the condition and status, not in more Events).
fn announce(
    mail: &Mail,
    recipients: &[String],
    number: u32,
    result: &Result<(), String>,
) -> Option<Event> {
    let what = match mail.kind {
        MailKind::Invitation => "the authorization URL".to_owned(),
        kind => format!("the {} notice", kind.as_str()),
    };
    let to = recipients.join(", ");
    let (type_, reason, note) = match result {
        Ok(()) => (
            EventType::Normal,
            "MailSent",
            format!("mailed {what} to {to} (Message-ID {})", mail.message_id),
        ),
        Err(error) if number == 1 => (
            EventType::Warning,
            "MailFailed",
            format!("mailing {what} to {to} failed, retrying with backoff: {error}"),
        ),
        Err(_) => return None,
    };
    Some(Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "SendMail".into(),
        secondary: None,
    })
}

/// The SMTP login from the application's Secret; the password goes only to the server.
async fn login(
    client: &kube::Client,
    namespace: &str,
    settings: &EmailSettings,
) -> Result<smtp::Login, String> {
    let Some(reference) = &settings.secret_ref else {
        return Ok(smtp::Login {
            credentials: None,
            ca_pem: None,
        });
    };
    let name = format!("{namespace}/{}", reference.name);
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|e| format!("cannot read Secret {name}: {e}"))?
        .ok_or_else(|| {
            format!(
                "Secret {name} (spec.notifications.email.secretRef) not found: create it with \
                 the SMTP username under {:?} and the password under {:?}",
                reference.username_key, reference.password_key
            )
        })?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| -> Result<String, String> {
        let bytes = data.get(key).ok_or_else(|| {
            format!("Secret {name} has no key {key:?}: add it, or fix spec.notifications.email.secretRef")
        })?;
        String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("the value under {key:?} in Secret {name} is not UTF-8"))
    };
    let credentials = Credentials::new(
        text(&reference.username_key)?,
        text(&reference.password_key)?,
    );
    let ca_pem = match &reference.ca_key {
        Some(key) => Some(text(key)?.into_bytes()),
        None => None,
    };
    Ok(smtp::Login {
        credentials: Some(credentials),
        ca_pem,
    })
}
