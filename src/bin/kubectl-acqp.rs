//! `kubectl acqp`: the kubectl plugin (kubectl finds `kubectl-acqp` on PATH).

use acqp_operator::cli::plugin::Plugin;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One rustls crypto provider (ring) for kube, as in the operator.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plugin = Plugin::parse();
    match plugin.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line: the message says what to do.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
