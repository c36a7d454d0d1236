//! A decision summed up for people: what the operator will do for one resource, in one word
//! and one sentence. `plan` prints it; being derived from [`super::decide`], it cannot disagree
//! with what the operator does.

use super::conditions::{self, STALLED};
use super::{Action, Decision, Input, Reason, RemoteView};
use crate::api::{AcqpStatus, Phase, Product};
use serde::Serialize;

/// What happens to one resource, from most to least consequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// The scope grows: a URL for the full set goes out, and when the ACQP re-authorizes the
    /// Agent-Token is replaced, so its consumers need the new one. Also: a re-authorization has
    /// arrived and the new token goes into the Secret now.
    RotateToken,
    /// An authorization URL is issued (first invitation, an expired URL, a re-invitation).
    IssueUrl,
    /// The Agent-Token of a grant goes into the Secret (first grant, or a repair).
    WriteToken,
    /// A human must act; nothing happens until then.
    Stalled,
    /// Waiting for the ACQP on a URL already issued.
    Wait,
    /// Waiting for the application or the Developer Center before anything can happen.
    Pending,
    /// Ready: nothing to do.
    NoChange,
}

impl Change {
    /// Whether this change acts outside the resource's status (Terraform's "changes").
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Change::RotateToken | Change::IssueUrl | Change::WriteToken
        )
    }

    /// The word `plan` prints.
    pub fn label(self) -> &'static str {
        match self {
            Change::RotateToken => "rotate token",
            Change::IssueUrl => "issue URL",
            Change::WriteToken => "write token",
            Change::Stalled => "stalled",
            Change::Wait => "wait",
            Change::Pending => "pending",
            Change::NoChange => "no change",
        }
    }
}

/// What the operator will do for one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// In one word.
    pub change: Change,
    /// The Ready (or Stalled) condition's reason after the decision.
    pub reason: String,
    /// In one sentence: what happens and what, if anything, a human must do.
    pub message: String,
    /// The products an authorization URL will ask for, when one is issued.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub url_products: Vec<Product>,
}

/// Sums up `decision`, taken for `input`.
pub fn summarize(input: &Input<'_>, decision: &Decision) -> Outcome {
    let status = &decision.status;
    let condition = conditions::find(&status.conditions, STALLED)
        .filter(|c| c.status == "True")
        .or_else(|| conditions::find(&status.conditions, conditions::READY));
    let reason = condition.map(|c| c.reason.clone()).unwrap_or_default();
    let message = condition
        .map(|c| capitalized(&c.message))
        .unwrap_or_default();
    let url_products = decision
        .actions
        .iter()
        .find_map(|a| match a {
            Action::IssueUrl { products, .. } => Some(products.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let rotated = decision
        .actions
        .iter()
        .any(|a| matches!(a, Action::Event(e) if e.reason == Reason::TokenRotated));
    let writes = decision
        .actions
        .iter()
        .any(|a| matches!(a, Action::WriteSecret(_)));
    let secret = input.resource.token_secret_name();
    let (change, message) = if rotated && writes {
        let message = format!(
            "{message}. The new Agent-Token replaces the old one in Secret {secret}: consumers \
             must pick it up"
        );
        (Change::RotateToken, message)
    } else if !url_products.is_empty() && scope_grows(input) {
        let message = format!(
            "Issue an authorization URL for {}. {message}. When the ACQP re-authorizes, the \
             Agent-Token in Secret {secret} is replaced: consumers need the new token",
            Product::join(&url_products)
        );
        (Change::RotateToken, message)
    } else if !url_products.is_empty() {
        let message = format!(
            "Issue an authorization URL for {}. {message}",
            Product::join(&url_products)
        );
        (Change::IssueUrl, message)
    } else if writes {
        let message = format!("Write the Agent-Token into Secret {secret}. {message}");
        (Change::WriteToken, message)
    } else if condition.is_some_and(|c| c.type_ == STALLED) {
        (Change::Stalled, message)
    } else {
        let change = match status.phase {
            Some(Phase::Active) => Change::NoChange,
            Some(Phase::Pending) => Change::Pending,
            _ => Change::Wait,
        };
        (change, message)
    };
    Outcome {
        change,
        reason,
        message,
        url_products,
    }
}

/// Whether an Active authorization lacks desired products: its token will be replaced.
fn scope_grows(input: &Input<'_>) -> bool {
    let RemoteView::Present(record) = &input.remote else {
        return false;
    };
    record.status == AcqpStatus::Active
        && input
            .resource
            .spec
            .products
            .iter()
            .any(|p| !record.products.contains(p))
}

fn capitalized(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
