//! `acqp-operator plan`: what the operator will do for each AcqpAuthorization in the files,
//! decided by the operator's own [`crate::reconcile::decide`] from the current state, and
//! printed as a table or JSON. Read-only. Exit codes follow Terraform's `-detailed-exitcode`:
//! 0 no changes, 2 changes (a URL issued, a token written or rotated), 1 errors.

use super::cluster::connect;
use super::documents;
use super::state::{self, Desired, Planned};
use super::validate::{self, check_document, is_ours};
use crate::reconcile::{
    decide,
    outcome::{self, Change, Outcome},
};
use jiff::Timestamp;
use serde::Serialize;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `plan`.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("state").required(true))]
pub struct PlanArgs {
    /// Files, directories (searched recursively for *.yaml and *.yml) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Take the current state from the cluster of the current kubeconfig: each resource's
    /// status, its application's status and the token Secret's metadata.
    #[arg(long, group = "state")]
    pub from_cluster: bool,
    /// Take the current state straight from the Developer Center: the application inquiry and
    /// the authorization list (read-only calls).
    #[arg(long, group = "state")]
    pub from_devcenter: bool,
    /// With --from-devcenter: the application's keys, as a Secret manifest or a map of key
    /// name to PEM (default: a Secret in the files, else the application's Secret in the
    /// cluster).
    #[arg(long, value_name = "FILE", requires = "from_devcenter")]
    pub credentials: Option<PathBuf>,
    /// The namespace of documents that name none, as with `kubectl apply -n`.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// table (for people) or json (for machines).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// How the plan is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table, coloured on a terminal.
    Table,
    /// One JSON document.
    Json,
}

/// One resource's line of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// The ACQP's ID.
    pub acqp: String,
    /// What the operator will do.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the plan had to assume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Where the current state came from, and what that leaves out.
    pub source: String,
    /// One entry per AcqpAuthorization, in file order.
    pub resources: Vec<Entry>,
}

impl Plan {
    /// Decides for each planned resource at `now`.
    pub fn new(source: impl Into<String>, planned: &[Planned], now: Timestamp) -> Self {
        let resources = planned
            .iter()
            .map(|p| {
                let input = p.input(now);
                let meta = &p.resource.metadata;
                Entry {
                    namespace: meta.namespace.clone().unwrap_or_default(),
                    name: meta.name.clone().unwrap_or_default(),
                    acqp: p.resource.spec.acqp.id.clone(),
                    outcome: outcome::summarize(&input, &decide(&input)),
                    notes: p.notes.clone(),
                }
            })
            .collect();
        Plan {
            source: source.into(),
            resources,
        }
    }

    /// Whether anything happens outside status.
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|e| e.outcome.change.is_change())
    }

    /// `Plan: 3 AcqpAuthorizations: 1 rotate token, 1 issue URL, 1 no change.`
    pub fn summary(&self) -> String {
        let mut counts = std::collections::BTreeMap::<Change, usize>::new();
        for entry in &self.resources {
            *counts.entry(entry.outcome.change).or_default() += 1;
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(change, n)| format!("{n} {}", change.label()))
            .collect();
        let n = self.resources.len();
        let verdict = if self.has_changes() {
            "the operator will act"
        } else {
            "no changes"
        };
        format!(
            "Plan: {n} AcqpAuthorization{}: {} ({verdict}).",
            if n == 1 { "" } else { "s" },
            if parts.is_empty() {
                "nothing to plan".to_owned()
            } else {
                parts.join(", ")
            }
        )
    }

    /// The plan for people: a table, each resource's sentence below it, then the summary.
    pub fn render_table(&self, color: bool) -> String {
        let header = ["RESOURCE", "ACQP", "ACTION", "REASON"];
        let rows: Vec<[String; 4]> = self
            .resources
            .iter()
            .map(|e| {
                [
                    format!("{}/{}", e.namespace, e.name),
                    e.acqp.clone(),
                    e.outcome.change.label().to_owned(),
                    e.outcome.reason.clone(),
                ]
            })
            .collect();
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2)];
        let mut out = format!("State: {}\n\n", self.source);
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            header[0],
            header[1],
            header[2],
            header[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
        for (row, entry) in rows.iter().zip(&self.resources) {
            let action = paint(
                &format!("{:w$}", row[2], w = widths[2]),
                entry.outcome.change,
                color,
            );
            out.push_str(&format!(
                "{:w0$}  {:w1$}  {action}  {}\n",
                row[0],
                row[1],
                row[3],
                w0 = widths[0],
                w1 = widths[1]
            ));
            out.push_str(&format!("    {}\n", entry.outcome.message));
            for note in &entry.notes {
                out.push_str(&format!("    note: {note}\n"));
            }
        }
        out.push('\n');
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The plan for machines: `source`, `resources`, `summary` and `changes`.
    pub fn render_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["summary"] = self.summary().into();
        value["changes"] = self.has_changes().into();
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// ANSI colour by consequence: rotation stands out most.
fn paint(text: &str, change: Change, color: bool) -> String {
    let code = match change {
        Change::RotateToken => "1;33",
        Change::IssueUrl | Change::WriteToken => "32",
        Change::Stalled => "1;31",
        Change::Wait | Change::Pending => "36",
        Change::NoChange => "2",
    };
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Runs `plan`: validates the files, reads the current state, prints the plan.
pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (docs, load_errors) = documents::load(&args.paths);
    let ours: Vec<&documents::Document> = docs.iter().filter(|d| is_ours(d)).collect();
    let mut findings: Vec<validate::Finding> =
        load_errors.iter().map(validate::load_finding).collect();
    for doc in &ours {
        findings.extend(check_document(doc));
    }
    // A missing application is not an error here: the plan shows it as ApplicationNotFound.
    findings.extend(validate::duplicate_names(&ours, None));
    findings.extend(validate::rival_claims(&ours, None));
    if !findings.is_empty() {
        for finding in &findings {
            eprintln!("{finding}");
        }
        anyhow::bail!(
            "the files are not valid ({} problem(s)); run `acqp-operator validate` for details",
            findings.len()
        );
    }
    let (planned, source) = if args.from_cluster {
        let client = connect().await?;
        let ns = args
            .namespace
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let desired = Desired::new(&docs, &ns)?;
        let source = "the cluster (status and token Secret metadata; the Developer Center's \
                      record as the operator last saw it)";
        (state::from_cluster(&desired, &client).await?, source)
    } else {
        let ns = args.namespace.unwrap_or_else(|| "default".to_owned());
        let desired = Desired::new(&docs, &ns)?;
        let source = "the Developer Center (the cluster's status is not read: each resource is \
                      planned as on a fresh start)";
        let planned = state::from_devcenter(&desired, args.credentials.as_deref()).await?;
        (planned, source)
    };
    let plan = Plan::new(source, &planned, Timestamp::now());
    match args.output {
        Format::Table => {
            // Colour for people at a terminal only (https://no-color.org is honoured).
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", plan.render_table(color));
        }
        Format::Json => print!("{}", plan.render_json()),
    }
    Ok(if plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
