//! `kubectl acqp list`: the console's search. ACQP ID, phase and status go to the API server as
//! field selectors (the CRD's selectableFields); the name, which the console matches as a
//! case-insensitive substring, is matched here.

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use kube::{ResourceExt as _, api::ListParams};

use super::{
    Target, api_error,
    output::{self, Format},
};
use crate::api::{AcqpAuthorization, AcqpStatus, Phase};
use crate::reconcile::conditions::{self, READY};

/// Which AcqpAuthorizations; shared by `list` and `refresh --all`.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Only this ACQP ID (exact).
    #[arg(long, value_name = "ID")]
    acqp_id: Option<String>,
    /// ACQP names containing this, ignoring case.
    #[arg(long, value_name = "TEXT")]
    acqp_name: Option<String>,
    /// The authorization's status in the Developer Center.
    #[arg(long, value_enum)]
    status: Option<StatusFilter>,
    /// The phase.
    #[arg(long, value_enum)]
    phase: Option<PhaseFilter>,
    /// A label selector, as kubectl's -l.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
}

/// `--status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
enum StatusFilter {
    Active,
    Inactive,
}

/// `--phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
enum PhaseFilter {
    Pending,
    AwaitingAuthorization,
    Active,
    Revoked,
    Error,
}

/// `kubectl acqp list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

impl Filters {
    /// The field selector the API server applies (the CRD's selectableFields).
    pub fn field_selector(&self) -> String {
        let mut fields = Vec::new();
        if let Some(id) = &self.acqp_id {
            fields.push(format!("spec.acqp.id={id}"));
        }
        if let Some(phase) = self.phase {
            let phase = match phase {
                PhaseFilter::Pending => Phase::Pending,
                PhaseFilter::AwaitingAuthorization => Phase::AwaitingAuthorization,
                PhaseFilter::Active => Phase::Active,
                PhaseFilter::Revoked => Phase::Revoked,
                PhaseFilter::Error => Phase::Error,
            };
            fields.push(format!("status.phase={phase:?}"));
        }
        if let Some(status) = self.status {
            let status = match status {
                StatusFilter::Active => AcqpStatus::Active,
                StatusFilter::Inactive => AcqpStatus::Inactive,
            };
            fields.push(format!("status.acqpStatus={status:?}"));
        }
        fields.join(",")
    }

    /// The matching AcqpAuthorizations, sorted by namespace and name.
    pub async fn find(&self, target: &Target) -> anyhow::Result<Vec<AcqpAuthorization>> {
        if let Some(id) = &self.acqp_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            anyhow::bail!("--acqp-id must be an ACQP ID: letters and digits only, not {id:?}");
        }
        let mut params = ListParams::default().fields(&self.field_selector());
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        let where_ = if target.all_namespaces {
            "all namespaces"
        } else {
            &target.namespace
        };
        let list = target
            .authorizations()
            .list(&params)
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 400 && s.message.contains("field label") => {
                    anyhow::anyhow!(
                        "the API server cannot select AcqpAuthorizations by field ({}): install \
                         this version's CRDs (crds/) on a Kubernetes 1.32 or newer",
                        s.message
                    )
                }
                _ => api_error(&e, "list acqpauthorizations", where_),
            })?;
        let needle = self.acqp_name.as_deref().map(str::to_lowercase);
        let mut found: Vec<AcqpAuthorization> = list
            .items
            .into_iter()
            .filter(|a| match &needle {
                None => true,
                Some(needle) => a
                    .spec
                    .acqp
                    .name
                    .as_deref()
                    .is_some_and(|name| name.to_lowercase().contains(needle)),
            })
            .collect();
        found.sort_by_key(|a| (a.namespace(), a.name_any()));
        Ok(found)
    }
}

/// Lists, as a table or as a `List` document.
pub async fn run(target: &Target, args: ListArgs) -> anyhow::Result<()> {
    let mut found = args.filters.find(target).await?;
    match args.output {
        Format::Json | Format::Yaml => {
            for object in &mut found {
                object.managed_fields_mut().clear();
            }
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": found});
            output::print_document(&list, args.output)
        }
        Format::Table | Format::Wide => {
            if found.is_empty() {
                eprintln!("No AcqpAuthorizations found.");
                return Ok(());
            }
            print_rows(&found, target.all_namespaces, args.output == Format::Wide);
            Ok(())
        }
    }
}

fn print_rows(found: &[AcqpAuthorization], namespaces: bool, wide: bool) {
    let now = Timestamp::now();
    let mut header = vec![
        "NAME",
        "ACQP",
        "ACQP-NAME",
        "STATUS",
        "PHASE",
        "READY",
        "AGE",
    ];
    if namespaces {
        header.insert(0, "NAMESPACE");
    }
    if wide {
        header.extend(["APPLICATION", "PRODUCTS", "REVISION", "URL"]);
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|a| {
            let status = a.status.clone().unwrap_or_default();
            let ready =
                conditions::find(&status.conditions, READY).map_or_else(dash, |c| c.status.clone());
            let mut row = vec![
                a.name_any(),
                a.spec.acqp.id.clone(),
                a.spec.acqp.name.clone().unwrap_or_else(dash),
                status.acqp_status.map_or_else(dash, |s| format!("{s:?}")),
                status.phase.map_or_else(dash, |p| format!("{p:?}")),
                ready,
                a.metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or_else(dash, |t| output::age(t.0, now)),
            ];
            if namespaces {
                row.insert(0, a.namespace().unwrap_or_default());
            }
            if wide {
                let products: Vec<&str> = a.spec.products.iter().map(|p| p.as_str()).collect();
                row.extend([
                    a.spec.application_ref.name.clone(),
                    products.join(","),
                    status.token_revision.map_or_else(dash, |r| r.to_string()),
                    status.authorization_url.unwrap_or_else(dash),
                ]);
            }
            row
        })
        .collect();
    output::print_table(&header, &rows);
}
