//! `kubectl acqp inspect secret NAME`: what a token Secret is, without printing the token:
//! who owns it, the ACQP, products, revision, the fingerprint of the data it holds, and whether
//! that is the token its AcqpAuthorization's status names.

use clap::Subcommand;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;

use super::{Target, api_error};
use crate::api::AcqpAuthorization;
use crate::devcenter::wire::AgentToken;
use crate::reconcile::secret::{
    ACQP_ID_ANNOTATION, FINGERPRINT_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, PRODUCTS_ANNOTATION,
    REVISION_ANNOTATION,
};

/// What to inspect.
#[derive(Subcommand, Debug)]
pub enum What {
    /// A token Secret.
    Secret {
        /// The Secret's name.
        name: String,
    },
}

/// Prints what the Secret is.
pub async fn run(target: &Target, what: What) -> anyhow::Result<()> {
    let What::Secret { name } = what;
    let secret = target
        .api::<Secret>()
        .get_opt(&name)
        .await
        .map_err(|e| api_error(&e, &format!("get secret {name}"), &target.namespace))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Secret {name} not found in namespace {}: `kubectl acqp list` shows the \
                 AcqpAuthorizations, `kubectl acqp token NAME` their Secrets",
                target.namespace
            )
        })?;
    let labels = secret.labels();
    let annotations = secret.annotations();
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        anyhow::bail!(
            "Secret {name} is not managed by acqp-operator (no {MANAGED_BY_LABEL}={MANAGED_BY} \
             label): it is not a token Secret"
        );
    }
    let owner = secret
        .owner_references()
        .iter()
        .find(|o| o.kind == "AcqpAuthorization" && o.controller == Some(true))
        .cloned();
    let owner_object = match &owner {
        Some(owner) => target
            .api::<AcqpAuthorization>()
            .get_opt(&owner.name)
            .await
            .ok()
            .flatten()
            .filter(|a| a.uid().as_deref() == Some(owner.uid.as_str())),
        None => None,
    };
    let get = |key: &str| annotations.get(key).cloned().unwrap_or_else(|| "-".into());
    println!("Secret:       {}/{name}", target.namespace);
    println!(
        "Owner:        {}",
        match (&owner, &owner_object) {
            (Some(o), Some(_)) => format!("AcqpAuthorization {}", o.name),
            (Some(o), None) => format!("AcqpAuthorization {} (gone)", o.name),
            (None, _) => "none: released (deletionPolicy Retain) or never owned".into(),
        }
    );
    println!("ACQP:         {}", get(ACQP_ID_ANNOTATION));
    println!("Products:     {}", get(PRODUCTS_ANNOTATION));
    println!("Revision:     {}", get(REVISION_ANNOTATION));
    let key = owner_object
        .as_ref()
        .map(|a| a.spec.token_secret.key.clone());
    let data = secret.data.clone().unwrap_or_default();
    let held = match &key {
        Some(key) => data.get(key),
        None if data.len() == 1 => data.values().next(),
        None => None,
    };
    let held = held.map(|b| AgentToken::new(String::from_utf8_lossy(&b.0).into_owned()));
    let data_fingerprint = held.as_ref().map(AgentToken::fingerprint);
    println!(
        "Fingerprint:  {} (data), {} (annotation)",
        data_fingerprint.as_deref().unwrap_or("no token"),
        get(FINGERPRINT_ANNOTATION)
    );
    let status_fingerprint = owner_object
        .as_ref()
        .and_then(|a| a.status.as_ref())
        .and_then(|s| s.token_fingerprint.clone());
    println!(
        "Matches:      {}",
        match (&data_fingerprint, &status_fingerprint) {
            (Some(data), Some(status)) if data == status =>
                "yes: the token is the one its AcqpAuthorization's status names".to_owned(),
            (Some(_), Some(status)) =>
                format!("no: status names {status}; the operator repairs the Secret shortly"),
            (_, None) => "unknown: no owning AcqpAuthorization with a token in status".to_owned(),
            (None, Some(_)) => "no: the Secret holds no token".to_owned(),
        }
    );
    Ok(())
}
