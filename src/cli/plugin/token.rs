//! `kubectl acqp token NAME`: the console's display / hide / copy. Hidden by default (the
//! fingerprint, revision and Secret from status, without reading the Secret); `--reveal` reads
//! the Secret with the user's own rights and prints the token; `--copy` puts it on the clipboard
//! through the terminal (OSC 52), never on stdout.

use std::io::Write as _;

use base64::Engine as _;
use clap::Args;
use k8s_openapi::api::core::v1::Secret;

use super::{Target, api_error};
use crate::devcenter::wire::AgentToken;

/// `kubectl acqp token NAME`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The AcqpAuthorization.
    name: String,
    /// Print the Agent-Token itself (read from the Secret with your own rights).
    #[arg(long, conflicts_with = "copy")]
    reveal: bool,
    /// Copy the Agent-Token to the clipboard via the terminal (OSC 52), without printing it.
    #[arg(long)]
    copy: bool,
}

/// Shows, reveals or copies the token.
pub async fn run(target: &Target, args: TokenArgs) -> anyhow::Result<()> {
    let object = target.authorization(&args.name).await?;
    let status = object.status.clone().unwrap_or_default();
    let secret_name = object.token_secret_name();
    let key = &object.spec.token_secret.key;
    let name = &args.name;
    let Some(fingerprint) = status.token_fingerprint.clone() else {
        anyhow::bail!(
            "acqpauth {name} has no Agent-Token yet (phase {}): the ACQP must authorize first \
             (`kubectl acqp status {name}`)",
            status
                .phase
                .map_or_else(|| "unknown".to_owned(), |p| format!("{p:?}"))
        );
    };
    if !args.reveal && !args.copy {
        println!("Secret:       {secret_name} (key {key})");
        println!(
            "Revision:     {}",
            status.token_revision.unwrap_or_default()
        );
        println!("Fingerprint:  {fingerprint}");
        if let Some(rotated) = &status.token_rotated_at {
            println!("Rotated:      {}", rotated.0);
        }
        println!("Token:        hidden (--reveal prints it, --copy copies it)");
        return Ok(());
    }
    let secret = target
        .api::<Secret>()
        .get_opt(&secret_name)
        .await
        .map_err(|e| api_error(&e, &format!("get secret {secret_name}"), &target.namespace))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Secret {secret_name} not found in namespace {}: the operator writes it again \
                 shortly (`kubectl acqp status {name}`)",
                target.namespace
            )
        })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| anyhow::anyhow!("Secret {secret_name} has no key {key}"))?;
    let token = AgentToken::new(String::from_utf8_lossy(&bytes.0).into_owned());
    if token.fingerprint() != fingerprint {
        eprintln!(
            "warning: the token in Secret {secret_name} ({}) is not the one in status \
             ({fingerprint}); the operator is repairing it",
            token.fingerprint()
        );
    }
    if args.reveal {
        println!("{}", token.expose());
        return Ok(());
    }
    let mut tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            anyhow::anyhow!(
                "--copy needs a terminal to send the clipboard sequence to ({e}); use --reveal \
                 and pipe it instead"
            )
        })?;
    tty.write_all(osc52(token.expose()).as_bytes())?;
    tty.flush()?;
    eprintln!("Copied the Agent-Token {fingerprint} to the clipboard (OSC 52).");
    Ok(())
}

/// The OSC 52 sequence that sets the system clipboard to `text`, which terminals such as
/// xterm, iTerm2, kitty, WezTerm and tmux (with set-clipboard on) honour.
fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

#[cfg(test)]
mod tests {
    #[test]
    fn osc52_carries_the_text_base64_encoded() {
        assert_eq!(super::osc52("abc"), "\x1b]52;c;YWJj\x07");
    }
}
