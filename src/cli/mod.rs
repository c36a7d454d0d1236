//! The command line: one binary, one subcommand per job.

mod cluster;
pub mod crd;
pub mod documents;
pub mod plan;
pub mod plugin;
mod schema;
pub mod state;
pub mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// acqp-operator: the Alipay+ Developer Center's ACQP authorization flow as Kubernetes resources.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write one file each into a directory.
    Crd {
        /// Write `<plural>.yaml` files into this directory (as `crds/` holds them).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Run the operator: reconcile DeveloperCenterApplications and AcqpAuthorizations.
    Run(crate::controller::RunArgs),
    /// Run the Developer Center simulator (for the demo, tests and staging).
    Simulator(crate::simulator::SimulatorArgs),
    /// Check manifests offline against the CRDs' schemas and CEL rules, and against each other.
    Validate(validate::ValidateArgs),
    /// Show what the operator will do for each AcqpAuthorization: exit 0 no changes, 2 changes,
    /// 1 errors.
    Plan(plan::PlanArgs),
}

impl Cli {
    /// Runs the chosen subcommand; `validate` and `plan` choose their own exit code.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Crd { out_dir: None } => print!("{}", crd::all_yaml()?),
            Command::Crd { out_dir: Some(dir) } => crd::write_all(&dir)?,
            Command::Run(args) => crate::controller::run(args).await?,
            Command::Simulator(args) => crate::simulator::run(args).await?,
            Command::Validate(args) => return validate::run(args).await,
            Command::Plan(args) => return plan::run(args).await,
        }
        Ok(ExitCode::SUCCESS)
    }
}
