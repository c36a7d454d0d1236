use acqp_operator::cli::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One rustls crypto provider (ring) for kube and reqwest alike.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
