//! `kubectl acqp refresh` and `kubectl acqp reinvite`: each sets its request annotation to the
//! current time, which the operator acts on once and reports in status, so the same request
//! works from GitOps or `kubectl annotate`. With `--wait`, the command waits for that report.

use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
};

use super::{Target, api_error, list::Filters};
use crate::api::{AcqpAuthorization, AcqpAuthorizationStatus, Phase, RevocationPolicy};
use crate::reconcile::annotations::{PAUSED, REFRESH_REQUESTED_AT, REINVITE_REQUESTED_AT};

/// `kubectl acqp refresh`.
#[derive(Args, Debug)]
pub struct RefreshArgs {
    /// The AcqpAuthorization.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,
    /// Every AcqpAuthorization in the namespace (or with -A, everywhere) that the filters match.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    wait: WaitArgs,
}

/// `kubectl acqp reinvite`.
#[derive(Args, Debug)]
pub struct ReinviteArgs {
    /// The AcqpAuthorization.
    name: String,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args, Debug)]
struct WaitArgs {
    /// Wait until the operator reports the request handled (and, for reinvite, print the URL).
    #[arg(long)]
    wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = crate::api::duration::parse)]
    timeout: Duration,
}

/// Requests a refresh of one resource, or of every match with `--all`.
pub async fn refresh(target: &Target, args: RefreshArgs) -> anyhow::Result<()> {
    let objects = match &args.name {
        Some(name) => vec![target.authorization(name).await?],
        None => args.filters.find(target).await?,
    };
    if objects.is_empty() {
        anyhow::bail!("no AcqpAuthorization matches: `kubectl acqp list` with the same filters");
    }
    let value = now();
    for object in &objects {
        request(target, object, REFRESH_REQUESTED_AT, &value).await?;
        println!(
            "acqpauth/{} refresh requested ({value})",
            qualified(target, object)
        );
    }
    if args.wait.wait {
        for object in &objects {
            wait(target, object, &args.wait, |s| {
                s.last_handled_refresh_at.as_deref() == Some(value.as_str())
            })
            .await?;
            println!("acqpauth/{} refreshed", qualified(target, object));
        }
    }
    Ok(())
}

/// Requests a fresh authorization URL.
pub async fn reinvite(target: &Target, args: ReinviteArgs) -> anyhow::Result<()> {
    let object = target.authorization(&args.name).await?;
    let name = &args.name;
    let status = object.status.clone().unwrap_or_default();
    if status.phase == Some(Phase::Revoked)
        && object.spec.revocation_policy == RevocationPolicy::Wait
    {
        anyhow::bail!(
            "acqpauth {name} is Revoked and spec.revocationPolicy is Wait, so no new URL is \
             issued: set spec.revocationPolicy: Reinvite to invite the ACQP again"
        );
    }
    if status.phase == Some(Phase::Active) {
        anyhow::bail!(
            "acqpauth {name} is Active: the ACQP has authorized every product, so there is no \
             URL to reissue"
        );
    }
    let value = now();
    request(target, &object, REINVITE_REQUESTED_AT, &value).await?;
    if !args.wait.wait {
        println!("acqpauth/{name} reinvite requested ({value})");
        return Ok(());
    }
    let status = wait(target, &object, &args.wait, |s| {
        s.last_handled_reinvite_at.as_deref() == Some(value.as_str())
            && s.authorization_url.is_some()
    })
    .await?;
    println!("{}", status.authorization_url.unwrap_or_default());
    Ok(())
}

/// A request value: now, to the millisecond, so two requests in one second differ.
fn now() -> String {
    let now = Timestamp::now();
    let millis = now.as_millisecond();
    Timestamp::from_millisecond(millis)
        .unwrap_or(now)
        .to_string()
}

fn qualified(target: &Target, object: &AcqpAuthorization) -> String {
    if target.all_namespaces {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    } else {
        object.name_any()
    }
}

async fn request(
    target: &Target,
    object: &AcqpAuthorization,
    key: &str,
    value: &str,
) -> anyhow::Result<()> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    if object.annotations().get(PAUSED).map(String::as_str) == Some("true") {
        eprintln!(
            "warning: acqpauth {name} is paused ({PAUSED}); the request waits until it is resumed"
        );
    }
    let api: Api<AcqpAuthorization> = Api::namespaced(target.client.clone(), &namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| api_error(&e, &format!("patch acqpauth {name}"), &namespace))?;
    Ok(())
}

/// Waits until the operator's status of `object` satisfies `handled`; returns that status.
async fn wait(
    target: &Target,
    object: &AcqpAuthorization,
    args: &WaitArgs,
    handled: impl Fn(&AcqpAuthorizationStatus) -> bool,
) -> anyhow::Result<AcqpAuthorizationStatus> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<AcqpAuthorization> = Api::namespaced(target.client.clone(), &namespace);
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let latest = api
            .get(&name)
            .await
            .map_err(|e| api_error(&e, &format!("get acqpauth {name}"), &namespace))?;
        let status = latest.status.unwrap_or_default();
        if handled(&status) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the operator did not report the request on acqpauth {name} within {:?}: is it \
                 running, and is the resource paused? (`kubectl acqp status {name}`)",
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
