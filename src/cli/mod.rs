//! The command line: one binary, one subcommand per job.

pub mod crd;

use clap::{Parser, Subcommand};

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
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Crd { out_dir: None } => {
                print!("{}", crd::all_yaml()?);
                Ok(())
            }
            Command::Crd { out_dir: Some(dir) } => crd::write_all(&dir),
            Command::Run(args) => crate::controller::run(args).await,
            Command::Simulator(args) => Ok(crate::simulator::run(args).await?),
        }
    }
}
