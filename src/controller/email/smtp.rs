//! One SMTP session per mail, to a server the tenant chose: only where the endpoint policy
//! allows, TLS as configured (clear text only on loopback), and within a time limit.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters},
        extension::ClientId,
    },
};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
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
/// What a server may send in one session (TLS included); a normal session is a few KiB. lettre
/// reads answers line by line without a bound of its own, so this caps what a hostile server
/// can make the operator hold.
const MAX_READ_BYTES: usize = 256 * 1024;

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
    let server = format!("{}:{}", settings.host, settings.port);
    let stream = connect(&addresses, settings, login)
        .await
        .map_err(|e| format!("cannot connect to the SMTP server {server}: {e}"))?;
    let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &hello)
        .await
        .map_err(|e| format!("the SMTP server {server} did not greet: {e}"))?;
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

/// A connection to the first of `addresses` that answers, capped, with TLS from the first byte
/// for `tls: ImplicitTls`.
async fn connect(
    addresses: &[SocketAddr],
    settings: &EmailSettings,
    login: &Login,
) -> io::Result<Box<dyn AsyncTokioStream>> {
    let mut last = io::Error::other("no address to connect to");
    for address in addresses {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(error)) => {
                last = error;
                continue;
            }
            Err(_) => {
                last = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
                continue;
            }
        };
        if settings.tls != SmtpTls::ImplicitTls {
            return Ok(Box::new(Capped::new(tcp, *address)));
        }
        let connector = tokio_rustls::TlsConnector::from(tls_config(login)?);
        let name = ServerName::try_from(settings.host.clone()).map_err(|e| {
            io::Error::other(format!("{:?} is not a TLS server name: {e}", settings.host))
        })?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        return Ok(Box::new(Capped::new(tls, *address)));
    }
    Err(last)
}

/// The client configuration of implicit TLS: the process's crypto provider (ring), the
/// platform's roots plus the Secret's CA.
fn tls_config(login: &Login) -> io::Result<Arc<rustls::ClientConfig>> {
    let extra: Vec<CertificateDer<'static>> = match &login.ca_pem {
        Some(pem) => CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                io::Error::other(format!(
                    "the CA certificate in the SMTP Secret is not PEM: {e}"
                ))
            })?,
        None => Vec::new(),
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(io::Error::other)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection that fails once the server has sent more than [`MAX_READ_BYTES`] (counted
/// before STARTTLS decrypts, after implicit TLS does).
#[derive(Debug)]
struct Capped<S> {
    inner: S,
    remaining: usize,
    peer: SocketAddr,
}

impl<S> Capped<S> {
    fn new(inner: S, peer: SocketAddr) -> Self {
        Self {
            inner,
            remaining: MAX_READ_BYTES,
            peer,
        }
    }
}

impl<S> AsyncTokioStream for Capped<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + std::fmt::Debug,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        this.remaining = this.remaining.checked_sub(read).ok_or_else(|| {
            io::Error::other(format!(
                "the server sent more than {} KiB in one session",
                MAX_READ_BYTES / 1024
            ))
        })?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
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

    /// A server that never ends its greeting line makes the operator hold at most
    /// MAX_READ_BYTES, and the session fails at once.
    #[tokio::test]
    async fn an_endless_answer_is_cut_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let (mut socket, _) = listener.accept().await.unwrap();
            let chunk = vec![b'2'; 64 * 1024];
            while socket.write_all(&chunk).await.is_ok() {}
        });
        let mut settings = settings("127.0.0.1", SmtpTls::None);
        settings.port = port;
        let policy = EndpointPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        let login = Login {
            credentials: None,
            ca_pem: None,
        };
        let message = Message::builder()
            .from("a@tsp.example".parse().unwrap())
            .to("b@acqp.example".parse().unwrap())
            .body(String::from("x"))
            .unwrap();
        let started = std::time::Instant::now();
        let error = send(&policy, &settings, &login, &message)
            .await
            .unwrap_err();
        assert!(error.contains("more than 256 KiB"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn server_answers_are_kept_short_and_on_one_line() {
        let long = format!("550 no\r\n{}", "y".repeat(1000));
        let short = truncate(&long);
        assert!(!short.contains('\n'));
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS + 1);
    }
}
