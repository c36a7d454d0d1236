//! `kubectl acqp status NAME`: in the spirit of `cmctl status certificate`, everything a human
//! needs in one screen: the phase and why, what to do next, the URL, products, the token, the
//! application and the last Events.

use clap::Args;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::{ResourceExt as _, api::ListParams};

use super::{
    Target,
    output::{self, Format},
};
use crate::api::{AcqpAuthorization, DeveloperCenterApplication, Phase, Product};
use crate::reconcile::{
    annotations,
    conditions::{self, MALFORMED, PAUSED, READY, STALLED},
};

/// How many Events `status` shows.
const EVENTS_SHOWN: usize = 5;

/// `kubectl acqp status NAME`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The AcqpAuthorization.
    name: String,
    /// Output format: the summary (table), or the resource as JSON or YAML.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

/// Prints the summary.
pub async fn run(target: &Target, args: StatusArgs) -> anyhow::Result<()> {
    let mut object = target.authorization(&args.name).await?;
    if matches!(args.output, Format::Json | Format::Yaml) {
        object.managed_fields_mut().clear();
        return output::print_document(&object, args.output);
    }
    let app = target
        .api::<DeveloperCenterApplication>()
        .get_opt(&object.spec.application_ref.name)
        .await
        .ok()
        .flatten();
    // Events are a help, not a requirement: a user who may not list them still gets the rest.
    let events = target
        .api::<Event>()
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={},involvedObject.kind=AcqpAuthorization",
            args.name
        )))
        .await
        .map(|list| list.items)
        .ok();
    print!(
        "{}",
        summary(&object, app.as_ref(), events, Timestamp::now())
    );
    Ok(())
}

/// The summary as text.
fn summary(
    object: &AcqpAuthorization,
    app: Option<&DeveloperCenterApplication>,
    events: Option<Vec<Event>>,
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{:<13}{value}\n", format!("{label}:")));
    };
    let status = object.status.clone().unwrap_or_default();
    let acqp = &object.spec.acqp;
    line(
        "Name",
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        ),
    );
    line(
        "ACQP",
        match &acqp.name {
            Some(name) => format!("{name} ({})", acqp.id),
            None => acqp.id.clone(),
        },
    );
    let ready = conditions::find(&status.conditions, READY);
    let stalled = conditions::find(&status.conditions, STALLED);
    let phase = status.phase.map_or_else(
        || "unknown (not reconciled yet)".into(),
        |p| format!("{p:?}"),
    );
    let ready_text = ready.map_or_else(
        || "Ready unknown".to_owned(),
        |c| format!("Ready={} ({})", c.status, c.reason),
    );
    line("Phase", format!("{phase}, {ready_text}"));
    if let Some(why) = stalled.or(ready) {
        line("Why", why.message.clone());
    }
    let name = object.name_any();
    line("Next", next_step(object, &name));
    if let Some(paused) = conditions::find(&status.conditions, PAUSED) {
        line("Paused", paused.message.clone());
    }
    if let Some(malformed) = conditions::find(&status.conditions, MALFORMED) {
        line("Annotations", malformed.message.clone());
    }
    if status.observed_generation != object.metadata.generation {
        line(
            "Generation",
            format!(
                "the operator has not acted on generation {} yet (status describes {})",
                object.metadata.generation.unwrap_or_default(),
                status
                    .observed_generation
                    .map_or_else(|| "none".into(), |g| g.to_string())
            ),
        );
    }
    match (
        &status.authorization_url,
        &status.authorization_url_expires_at,
    ) {
        (Some(url), Some(expires)) => line(
            "URL",
            format!(
                "{url} (expires {}, {})",
                expires.0,
                output::relative(expires.0, now)
            ),
        ),
        (Some(url), None) => line("URL", url.clone()),
        (None, _) => line("URL", "none".into()),
    }
    line(
        "Products",
        format!(
            "desired {}; requested {}; authorized {}",
            products(&object.spec.products),
            products(&status.requested_products),
            products(&status.authorized_products)
        ),
    );
    line(
        "Token",
        match (&status.token_fingerprint, status.token_revision) {
            (Some(fingerprint), Some(revision)) => format!(
                "revision {revision}, {fingerprint}, rotated {}; Secret {}",
                status.token_rotated_at.as_ref().map_or_else(
                    || "at an unknown time".into(),
                    |t| format!("{} ({})", t.0, output::relative(t.0, now))
                ),
                secret_ref(object)
            ),
            _ => format!("none yet; it will be in Secret {}", secret_ref(object)),
        },
    );
    let app_name = &object.spec.application_ref.name;
    line(
        "Application",
        match app {
            None => format!("{app_name}: not found in this namespace"),
            Some(app) => {
                let conditions = app.status.as_ref().map(|s| &s.conditions[..]);
                match conditions.and_then(|c| conditions::find(c, READY)) {
                    Some(c) => format!(
                        "{app_name}: Ready={} ({}): {}",
                        c.status, c.reason, c.message
                    ),
                    None => format!("{app_name}: not reconciled yet"),
                }
            }
        },
    );
    if let Some(handled) = &status.last_handled_refresh_at {
        line("Refreshed", format!("on request {handled}"));
    }
    if let Some(handled) = &status.last_handled_reinvite_at {
        line("Reinvited", format!("on request {handled}"));
    }
    out.push_str(&events_text(events, now));
    out
}

/// What a human should do next, by phase.
fn next_step(object: &AcqpAuthorization, name: &str) -> String {
    let status = object.status.clone().unwrap_or_default();
    if conditions::is_true(&status.conditions, PAUSED) {
        return format!(
            "resume it: `kubectl annotate acqpauth {name} {}-`",
            annotations::PAUSED
        );
    }
    match status.phase {
        None | Some(Phase::Pending) => {
            "wait for the operator; if this stays, check the application below".into()
        }
        Some(Phase::AwaitingAuthorization) => format!(
            "send the URL to the ACQP (`kubectl acqp url {name}`); `kubectl acqp reinvite \
             {name}` issues a fresh one if it was lost"
        ),
        Some(Phase::Active) => format!(
            "nothing: consumers read the Agent-Token from Secret {} (`kubectl acqp token {name}`)",
            secret_ref(object)
        ),
        Some(Phase::Revoked) | Some(Phase::Error) => {
            "a human must act: see Why above, then `kubectl acqp refresh {name}` to check again"
                .replace("{name}", name)
        }
    }
}

fn secret_ref(object: &AcqpAuthorization) -> String {
    format!(
        "{}/{}",
        object.token_secret_name(),
        object.spec.token_secret.key
    )
}

fn products(products: &[Product]) -> String {
    if products.is_empty() {
        return "-".into();
    }
    Product::join(products)
}

fn events_text(events: Option<Vec<Event>>, now: Timestamp) -> String {
    let Some(mut events) = events else {
        return "Events:      (you may not list Events here)\n".into();
    };
    if events.is_empty() {
        return "Events:      none\n".into();
    }
    let when = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(Timestamp::UNIX_EPOCH)
    };
    events.sort_by_key(when);
    let start = events.len().saturating_sub(EVENTS_SHOWN);
    let mut out = String::from("Events:\n");
    for event in &events[start..] {
        out.push_str(&format!(
            "  {:<5} {:<8} {:<18} {}\n",
            output::age(when(event), now),
            event.type_.as_deref().unwrap_or_default(),
            event.reason.as_deref().unwrap_or_default(),
            event.message.as_deref().unwrap_or_default()
        ));
    }
    out
}
