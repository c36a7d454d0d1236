//! `kubectl acqp url NAME`: the authorization URL alone on stdout, so it pipes into a mail or a
//! chat message; when there is none, an error that says why.

use clap::Args;
use jiff::Timestamp;

use super::Target;
use crate::api::Phase;
use crate::reconcile::conditions::{self, READY, STALLED};

/// `kubectl acqp url NAME`.
#[derive(Args, Debug)]
pub struct UrlArgs {
    /// The AcqpAuthorization.
    name: String,
}

/// Prints the URL.
pub async fn run(target: &Target, args: UrlArgs) -> anyhow::Result<()> {
    let object = target.authorization(&args.name).await?;
    let status = object.status.unwrap_or_default();
    let name = &args.name;
    let Some(url) = status.authorization_url else {
        let why = conditions::find(&status.conditions, STALLED)
            .or(conditions::find(&status.conditions, READY))
            .map_or_else(|| "not reconciled yet".to_owned(), |c| c.message.clone());
        let phase = status
            .phase
            .map_or_else(|| "no phase".to_owned(), |p| format!("{p:?}"));
        let hint = match status.phase {
            Some(Phase::Active) => "the ACQP has authorized; no URL is needed".to_owned(),
            _ => format!("see `kubectl acqp status {name}`"),
        };
        anyhow::bail!("acqpauth {name} has no authorization URL ({phase}: {why}); {hint}");
    };
    if let Some(expires) = status.authorization_url_expires_at
        && expires.0 <= Timestamp::now()
    {
        anyhow::bail!(
            "the authorization URL of acqpauth {name} expired at {}; the operator issues a new \
             one, or run `kubectl acqp reinvite {name}`",
            expires.0
        );
    }
    println!("{url}");
    Ok(())
}
