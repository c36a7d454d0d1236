//! One SMTP session per mail, to a server the tenant chose: only where the endpoint policy
//! allows, TLS as configured (clear text only on loopback), and within a time limit.

use std::{net::SocketAddr, time::Duration};

use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, TlsParameters},
        extension::ClientId,
    },
};

use crate::{
    api::{EmailSettings, SmtpTls},
    devcenter::policy::EndpointPolicy,
};

/// Limit for connecting (and the TLS handshake of implicit TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for a whole session, from resolving the host to QUIT.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// The longest server answer kept in status.
const MAX_ERROR_CHARS: usize = 400;

/// What the application's SMTP Secret holds.
pub(crate) struct Login {
    /// The username and password, when the Secret has them.
    pub credentials: Option<Credentials>,
    /// More CA certificates to trust (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

/// Sends `message` through the server in `settings`; `Err` says why not in words for status.
pub(crate) async fn send(
    policy: &EndpointPolicy,
    settings: &EmailSettings,
    login: &Login,
    message: &Message,
) -> Result<(), String> {
    match tokio::time::timeout(SESSION_TIMEOUT, session(policy, settings, login, message)).await {
        Ok(result) => result.map_err(|e| truncate(&e)),
        Err(_) => Err(format!(
            "the SMTP server {}:{} did not complete the session within {}s",
            settings.host,
            settings.port,
            SESSION_TIMEOUT.as_secs()
        )),
    }
}

async fn session(
    policy: &EndpointPolicy,
    settings: &EmailSettings,
    login: &Login,
    message: &Message,
) -> Result<(), String> {
    let addresses = resolve(policy, settings).await?;
    let mut tls = TlsParameters::builder(settings.host.clone());
    if let Some(pem) = &login.ca_pem {
        let ca = Certificate::from_pem(pem)
            .map_err(|e| format!("the CA certificate in the SMTP Secret is not PEM: {e}"))?;
        tls = tls.add_root_certificate(ca);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let hello = ClientId::Domain("acqp-operator".into());
    let implicit = (settings.tls == SmtpTls::ImplicitTls).then(|| tls.clone());
    let server = format!("{}:{}", settings.host, settings.port);
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        &addresses[..],
        Some(CONNECT_TIMEOUT),
        &hello,
        implicit,
        None,
    )
    .await
    .map_err(|e| format!("cannot connect to the SMTP server {server}: {e}"))?;
    if settings.tls == SmtpTls::StartTls {
        if !connection.can_starttls() {
            connection.abort().await;
            return Err(format!(
                "the SMTP server {server} does not offer STARTTLS, which tls: StartTls requires; \
                 nothing was sent"
            ));
        }
        connection
            .starttls(tls, &hello)
            .await
            .map_err(|e| format!("STARTTLS with {server} failed: {e}"))?;
    }
    if let Some(credentials) = &login.credentials {
        connection
            .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
            .await
            .map_err(|e| format!("the SMTP server {server} refused the login: {e}"))?;
    }
    connection
        .send(message.envelope(), &message.formatted())
        .await
        .map_err(|e| format!("the SMTP server {server} refused the mail: {e}"))?;
    // Delivered once DATA is accepted; a failed QUIT changes nothing.
    let _ = connection.quit().await;
    Ok(())
}

/// The addresses of the SMTP host that the policy allows (and, for `tls: None`, only
/// loopback ones); the error names the policy, never what resolution found.
async fn resolve(
    policy: &EndpointPolicy,
    settings: &EmailSettings,
) -> Result<Vec<SocketAddr>, String> {
    let host = settings.host.as_str();
    let resolved = tokio::net::lookup_host((host, settings.port)).await;
    let allowed: Vec<SocketAddr> = match resolved {
        Ok(addresses) => addresses
            .filter(|a| policy.allows(host, a.ip()))
            .filter(|a| settings.tls != SmtpTls::None || a.ip().is_loopback())
            .collect(),
        Err(error) => {
            tracing::debug!(%host, %error, "SMTP host does not resolve");
            Vec::new()
        }
    };
    if allowed.is_empty() {
        let why = if settings.tls == SmtpTls::None {
            "tls: None is allowed only to an SMTP server on loopback, and"
        } else {
            "loopback, private, link-local and metadata addresses are refused unless the \
             cluster admin allows them with --endpoint-allowlist, and"
        };
        return Err(format!(
            "the SMTP host {host} resolves to no address the operator's endpoint policy allows \
             ({why} a host that does not resolve is refused the same way)"
        ));
    }
    Ok(allowed)
}

fn truncate(text: &str) -> String {
    let one_line = text.replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &one_line[..end]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str, tls: SmtpTls) -> EmailSettings {
        EmailSettings {
            host: host.into(),
            port: 2525,
            tls,
            from: "operator@tsp.example".into(),
            notify: vec![],
            secret_ref: None,
        }
    }

    #[tokio::test]
    async fn hosts_outside_the_policy_are_refused_before_connecting() {
        let refused = resolve(
            &EndpointPolicy::default(),
            &settings("127.0.0.1", SmtpTls::StartTls),
        )
        .await
        .unwrap_err();
        assert!(refused.contains("--endpoint-allowlist"), "{refused}");
        let metadata = resolve(
            &EndpointPolicy::default(),
            &settings("169.254.169.254", SmtpTls::ImplicitTls),
        )
        .await;
        assert!(metadata.is_err());
    }

    #[tokio::test]
    async fn clear_text_goes_only_to_loopback() {
        let everything = EndpointPolicy::allowing(vec!["0.0.0.0/0".parse().unwrap()]);
        let refused = resolve(&everything, &settings("203.0.113.7", SmtpTls::None))
            .await
            .unwrap_err();
        assert!(
            refused.contains("only to an SMTP server on loopback"),
            "{refused}"
        );
        let loopback = EndpointPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        let allowed = resolve(&loopback, &settings("127.0.0.1", SmtpTls::None)).await;
        assert_eq!(allowed.unwrap(), ["127.0.0.1:2525".parse().unwrap()]);
    }

    #[test]
    fn server_answers_are_kept_short_and_on_one_line() {
        let long = format!("550 no\r\n{}", "y".repeat(1000));
        let short = truncate(&long);
        assert!(!short.contains('\n'));
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS + 1);
    }
}
