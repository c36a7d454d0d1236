use acqp_operator::cli::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One rustls crypto provider (ring) for kube and reqwest alike.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors exit 1, not clap's 2: `plan` uses 2 for "changes".
            let _ = err.print();
            return if err.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    match cli.run().await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
