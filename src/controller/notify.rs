//! The notification endpoint (`POST /notify`): the Developer Center pushes a signed
//! `AUTHORIZATION_STATUS_CHANGED`; the operator verifies it, acknowledges it with a signed
//! result, and refreshes that application's snapshot at once. A notification never changes
//! anything by itself (it carries no token); a stale one is refused, and one replayed while
//! still fresh is acknowledged without another refresh.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::post,
};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};
use tower::Service as _;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use super::{
    metrics::Metrics,
    registry::{Application, Registry},
};
use crate::devcenter::{
    DevCenterClient, Error, JSON_UTF8,
    signing::{CLIENT_ID_HEADER, VerifyingKey},
    wire::{Notification, ResultCode, ResultInfo, ResultResponse},
};

/// The path the Developer Center posts to.
pub(crate) const NOTIFY_PATH: &str = "/notify";
/// Notifications are a few hundred bytes; anything much larger is not one.
const BODY_LIMIT: usize = 64 * 1024;
/// Bounds reading a request's headers, and then handling it (body included), so slow senders
/// cannot hold connections open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once. The Developer Center needs a handful; past this, further
/// senders wait in the kernel's accept backlog instead of costing the operator memory.
const MAX_CONNECTIONS: usize = 64;

/// What one sender may hold, as numbers the tests can shrink.
#[derive(Clone, Copy, Debug)]
struct Limits {
    request_timeout: Duration,
    max_connections: usize,
}

/// What the endpoint reads: the registry, and whether this replica leads.
#[derive(Clone)]
pub(crate) struct NotifyState {
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) leading: watch::Receiver<bool>,
}

/// Serves `POST /notify` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    state: NotifyState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = Limits {
        request_timeout: REQUEST_TIMEOUT,
        max_connections: MAX_CONNECTIONS,
    };
    serve_with(listener, state, shutdown, limits).await
}

/// The accept loop. `axum::serve` sets no header-read timeout, so a sender trickling its
/// headers, or connecting and sending nothing, would keep a connection (and a task) forever;
/// serving each connection with hyper directly lets us bound that too.
async fn serve_with(
    listener: TcpListener,
    state: NotifyState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route(NOTIFY_PATH, post(receive))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Refuses a too-large Content-Length at once; the extractor's limit alone would wait
        // for the body and answer only when it overflows or the request times out.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, path = NOTIFY_PATH, "accepting Developer Center notifications");
    // Connections still open at shutdown are cut; an unacknowledged notification is retried by
    // the Developer Center, and the poller lists on its own schedule anyway.
    crate::accept::serve_connections(&listener, limits.max_connections, shutdown, |stream| {
        serve_connection(stream, app.clone(), limits)
    })
    .await;
    Ok(())
}

/// Serves one connection, giving a sender [`Limits::request_timeout`] for its headers.
async fn serve_connection(stream: TcpStream, app: Router, limits: Limits) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        app.clone().call(request.map(Body::new))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "notification connection ended with an error");
    }
}

async fn receive(
    State(state): State<NotifyState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let leading = *state.leading.borrow();
    // RSA verification is CPU work: it runs on the blocking pool, at most VERIFYING_AT_ONCE
    // requests at a time, so a flood of forged notifications cannot stall the async workers
    // that run the controllers. Waiting for a slot is bounded by the request timeout.
    let Ok(_slot) = VERIFYING.acquire().await else {
        unreachable!("the semaphore is never closed")
    };
    let path = uri.path().to_owned();
    let metrics = state.metrics.clone();
    let verified = tokio::task::spawn_blocking(move || {
        handle(&state.registry, leading, &path, &headers, &body)
    })
    .await;
    match verified {
        Ok((status, headers, body)) => {
            metrics.notification_answered(status);
            (status, headers, body).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "verifying a notification failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                ResultCode::UnknownException,
                "try again",
            )
            .into_response()
        }
    }
}

/// Notifications verified at once (each on a blocking thread).
const VERIFYING_AT_ONCE: usize = 2;
static VERIFYING: Semaphore = Semaphore::const_new(VERIFYING_AT_ONCE);

/// Distinct Developer Center keys one notification is checked against. Applications that share
/// a Client-Id usually share the key too, and then one check serves them all; a tenant that
/// registers applications with someone else's Client-Id and keys of its own can make a
/// notification cost at most this many checks.
const MAX_KEYS_PER_NOTIFICATION: usize = 16;

/// The one answer to every notification that is not authentic, whatever the reason (no
/// Client-Id, an unknown one, a bad signature, a stale time): telling them apart would let
/// anyone enumerate registered Client-Ids, and the reasons name the Secrets keys come from.
/// Only the operator's log has the reason.
const NOT_AUTHENTIC: &str = "the notification is not authentic";

/// Refusals logged at warn at most once per this interval; the others at debug, counted.
const REFUSAL_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// The last refusal logged at warn and how many since were not.
static REFUSALS: Mutex<(Option<std::time::Instant>, u64)> = Mutex::new((None, 0));

/// Logs why a notification was refused: always at debug, at warn only once per
/// [`REFUSAL_WARN_INTERVAL`] (with the count of the others), so forged notifications cannot
/// flood the log.
fn log_refusal(client_id: &str, reason: &str) {
    tracing::debug!(client_id, reason, "notification refused");
    let mut refusals = REFUSALS.lock().unwrap_or_else(PoisonError::into_inner);
    let (last, suppressed) = &mut *refusals;
    let now = std::time::Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < REFUSAL_WARN_INTERVAL) {
        *suppressed += 1;
        return;
    }
    tracing::warn!(
        client_id,
        reason,
        refused_since_last_warning = *suppressed,
        "notification refused (further refusals within a minute are logged at debug)"
    );
    *last = Some(now);
    *suppressed = 0;
}

/// Verifies a notification against every registered application with its Client-Id and
/// refreshes those it is authentic for; returns the HTTP answer.
fn handle(
    registry: &Registry,
    leading: bool,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    if !leading {
        // U makes the Developer Center retry; behind a Service the retry may reach the leader.
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ResultCode::UnknownException,
            "this replica is not the leader",
        );
    }
    let not_authentic = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            ResultCode::InvalidSignature,
            NOT_AUTHENTIC,
        )
    };
    let Some(client_id) = headers.get(CLIENT_ID_HEADER).and_then(|v| v.to_str().ok()) else {
        log_refusal("", "no Client-Id header");
        return not_authentic();
    };
    let apps = registry.by_client_id(client_id);
    let checked = authenticate(&apps, path, headers, body);
    let Some((_, ack_client, _)) = checked.verified.first() else {
        return match &checked.failure {
            // Authentic, but not what the contract says: the sender holds the key, so it may
            // hear what is wrong.
            Some(error @ Error::Protocol { .. }) => {
                log_refusal(client_id, &error.to_string());
                refuse(
                    StatusCode::BAD_REQUEST,
                    ResultCode::ParamIllegal,
                    &error.to_string(),
                )
            }
            Some(error) => {
                log_refusal(client_id, &error.to_string());
                not_authentic()
            }
            None => {
                log_refusal(
                    client_id,
                    "no application with this Client-Id is registered",
                );
                not_authentic()
            }
        };
    };
    let (ack_headers, ack_body) = ack_client.acknowledge_notification(path);
    for (app, client, notification) in &checked.verified {
        if !client.first_delivery(headers) {
            // Acknowledged again (the sender may have lost our answer), but refreshed once.
            tracing::debug!(
                namespace = %app.key.namespace,
                app = %app.key.name,
                acquirer_id = %notification.acquirer_id,
                "duplicate notification acknowledged; already refreshed for it"
            );
            continue;
        }
        tracing::info!(
            namespace = %app.key.namespace,
            app = %app.key.name,
            acquirer_id = %notification.acquirer_id,
            status = ?notification.status,
            "notification received; refreshing"
        );
        app.refresh_acquirer(&notification.acquirer_id);
    }
    (StatusCode::OK, ack_headers, ack_body)
}

/// What checking one notification against the applications of its Client-Id found.
struct Checked<'a> {
    /// The applications it is authentic for, with their clients and the notification.
    verified: Vec<(&'a Arc<Application>, &'a DevCenterClient, Notification)>,
    /// Why it is not authentic for the others (the last reason seen).
    failure: Option<Error>,
    /// How many signature checks it took: one per distinct key.
    signature_checks: usize,
}

/// Checks the notification once per distinct Developer Center key among `apps` (at most
/// [`MAX_KEYS_PER_NOTIFICATION`]), and shares each outcome among the applications with that
/// key: whether a message verifies depends on nothing else, as they share path and Client-Id.
fn authenticate<'a>(
    apps: &'a [Arc<Application>],
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Checked<'a> {
    let mut outcomes: Vec<(&VerifyingKey, Option<Notification>)> = Vec::new();
    let mut checked = Checked {
        verified: Vec::new(),
        failure: None,
        signature_checks: 0,
    };
    let mut unchecked = 0;
    for app in apps {
        let Some(client) = &app.client else { continue };
        let key = client.devcenter_key();
        let outcome = match outcomes.iter().find(|(known, _)| known.same_key(key)) {
            Some((_, outcome)) => outcome.clone(),
            None if outcomes.len() >= MAX_KEYS_PER_NOTIFICATION => {
                unchecked += 1;
                continue;
            }
            None => {
                checked.signature_checks += 1;
                let outcome = match client.verify_notification(path, headers, body) {
                    Ok(notification) => Some(notification),
                    Err(error) => {
                        checked.failure = Some(error);
                        None
                    }
                };
                outcomes.push((key, outcome.clone()));
                outcome
            }
        };
        if let Some(notification) = outcome {
            checked.verified.push((app, client, notification));
        }
    }
    if unchecked > 0 {
        tracing::debug!(
            unchecked,
            "applications sharing one Client-Id hold more than {MAX_KEYS_PER_NOTIFICATION} \
             distinct Developer Center keys; notifications are not checked against the rest"
        );
    }
    checked
}

/// An unsigned error result: signing it would need a verified Client-Id to sign for.
fn refuse(status: StatusCode, code: ResultCode, message: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let body = serde_json::to_vec(&ResultResponse {
        result: ResultInfo::of(code, message),
    })
    .expect("a result serializes");
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt as _;

    use super::*;
    use crate::controller::registry::{AppKey, Application, ClientSource};
    use crate::devcenter::{
        ClientConfig, DevCenterClient, signing,
        signing::{SigningKey, VerifyingKey},
    };
    use crate::reconcile::application::{ApplicationFacts, Readiness};

    const CLIENT_ID: &str = "SANDBOX_ACQP_OPERATOR_DEMO";

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/examples/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Registers `namespace/demo` for CLIENT_ID, trusting `devcenter_public` notifications.
    fn register(registry: &Registry, namespace: &str, devcenter_public: &str) {
        register_with_key(registry, namespace, &key_file(devcenter_public));
    }

    /// Registers `namespace/demo` for CLIENT_ID, trusting the public key in `pem`.
    fn register_with_key(registry: &Registry, namespace: &str, pem: &[u8]) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig::new(
            "http://127.0.0.1:9/".parse().unwrap(),
            CLIENT_ID,
            SigningKey::from_pem("tsp", &key_file("tsp-private.pem")).unwrap(),
            VerifyingKey::from_pem("devcenter", pem).unwrap(),
        );
        let source = ClientSource {
            endpoint: "http://127.0.0.1:9/".into(),
            client_id: CLIENT_ID.into(),
            credentials: None,
        };
        let facts = ApplicationFacts {
            readiness: Readiness::Ready,
            role: None,
            integrated_products: vec![],
        };
        let key = AppKey {
            namespace: namespace.into(),
            name: "demo".into(),
        };
        let client = DevCenterClient::new(config).unwrap();
        let app = Application::new(key, source, Some(client), facts, Duration::from_secs(60));
        registry.publish(app);
    }

    /// A public key PEM of its own for each `n`: the Developer Center's, with one byte of the
    /// modulus changed. No private key matches it, which is all a key a tenant made up needs.
    fn generated_public_key(n: usize) -> Vec<u8> {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let pem = String::from_utf8(key_file("devcenter-public.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = engine.decode(body).unwrap();
        // Inside the 256-byte modulus, which starts about 33 bytes into the SPKI.
        der[100] = der[100].wrapping_add(1 + n as u8);
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            engine.encode(der)
        )
        .into_bytes()
    }

    /// A notification signed with `signer` for `client_id`.
    fn notification(signer: &str, client_id: &str) -> (HeaderMap, Vec<u8>) {
        let key = SigningKey::from_pem("sender", &key_file(signer)).unwrap();
        let body = br#"{"notifyType":"AUTHORIZATION_STATUS_CHANGED","acquirerId":"1022188000000000001","status":"Active","updateTime":"2026-11-27T04:08:56Z"}"#.to_vec();
        let time = signing::now();
        let signature = signing::sign(&key, NOTIFY_PATH, client_id, &time, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_ID_HEADER, client_id.parse().unwrap());
        headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
        headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        (headers, body)
    }

    /// Whether the poller of `namespace/demo` was woken, checking that it was asked to look
    /// at exactly the notified acquirer.
    fn refreshed(registry: &Registry, namespace: &str) -> bool {
        let app = registry.get(namespace, "demo").unwrap();
        let woken = app.refresh_requested().now_or_never().is_some();
        let expected: &[&str] = if woken { &["1022188000000000001"] } else { &[] };
        assert!(app.take_notified().unwrap().iter().eq(expected));
        woken
    }

    fn result_code(body: &[u8]) -> String {
        let response: ResultResponse = serde_json::from_slice(body).unwrap();
        response.result.result_code.to_string()
    }

    #[test]
    fn authentic_notifications_refresh_their_applications_only() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        // Same Client ID, but it trusts another key: the notification is not for it.
        register(&registry, "team-b", "tsp-public.pem");
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let (status, ack_headers, ack_body) = handle(&registry, true, NOTIFY_PATH, &headers, &body);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(result_code(&ack_body), "SUCCESS");
        assert!(ack_headers.contains_key(signing::SIGNATURE_HEADER));
        assert!(refreshed(&registry, "team-a"));
        assert!(!refreshed(&registry, "team-b"));
    }

    #[test]
    fn forged_unknown_or_unsigned_notifications_change_nothing() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let (mut unsigned, body) = notification("devcenter-private.pem", CLIENT_ID);
        unsigned.remove(signing::SIGNATURE_HEADER);
        let cases = [
            notification("tsp-private.pem", CLIENT_ID),
            notification("devcenter-private.pem", "SANDBOX_OTHER"),
            (HeaderMap::new(), b"{}".to_vec()),
            (unsigned, body),
        ];
        // One answer for every reason, byte for byte: it tells a sender nothing, neither
        // which Client-Ids are registered nor where their keys come from.
        let mut answers = Vec::new();
        for (headers, body) in cases {
            let (status, headers, body) = handle(&registry, true, NOTIFY_PATH, &headers, &body);
            assert!(!headers.contains_key(signing::SIGNATURE_HEADER));
            assert!(!refreshed(&registry, "team-a"));
            answers.push((status, body));
        }
        let expected = (
            StatusCode::UNAUTHORIZED,
            serde_json::to_vec(&ResultResponse {
                result: ResultInfo::of(ResultCode::InvalidSignature, NOT_AUTHENTIC),
            })
            .unwrap(),
        );
        for answer in &answers {
            assert_eq!(answer, &expected, "{}", String::from_utf8_lossy(&answer.1));
        }
    }

    #[test]
    fn applications_sharing_a_client_id_and_key_cost_one_check() {
        let registry = Registry::default();
        for n in 0..40 {
            register(&registry, &format!("team-{n:02}"), "devcenter-public.pem");
        }
        // Someone else's keys under the same Client-Id: one more check each, up to the cap.
        for n in 0..40 {
            register(&registry, &format!("zz-{n:02}"), "tsp-public.pem");
        }
        let apps = registry.by_client_id(CLIENT_ID);
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let checked = authenticate(&apps, NOTIFY_PATH, &headers, &body);
        assert_eq!(checked.signature_checks, 2);
        assert_eq!(checked.verified.len(), 40);
        let (headers, body) = notification("tsp-private.pem", CLIENT_ID);
        let checked = authenticate(&apps, NOTIFY_PATH, &headers, &body);
        assert_eq!(checked.signature_checks, 2);
        assert_eq!(checked.verified.len(), 40, "the other key's applications");
    }

    #[test]
    fn distinct_keys_per_notification_are_capped() {
        let registry = Registry::default();
        for n in 0..MAX_KEYS_PER_NOTIFICATION + 4 {
            register_with_key(&registry, &format!("team-{n:02}"), &generated_public_key(n));
        }
        let apps = registry.by_client_id(CLIENT_ID);
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let checked = authenticate(&apps, NOTIFY_PATH, &headers, &body);
        assert_eq!(checked.signature_checks, MAX_KEYS_PER_NOTIFICATION);
        assert!(checked.verified.is_empty());
    }

    #[test]
    fn a_replayed_notification_is_acknowledged_but_refreshes_once() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        for delivery in ["first", "replayed"] {
            let (status, ack_headers, ack_body) =
                handle(&registry, true, NOTIFY_PATH, &headers, &body);
            assert_eq!(status, StatusCode::OK, "{delivery}");
            assert_eq!(result_code(&ack_body), "SUCCESS", "{delivery}");
            assert!(ack_headers.contains_key(signing::SIGNATURE_HEADER));
            assert_eq!(
                refreshed(&registry, "team-a"),
                delivery == "first",
                "{delivery}"
            );
        }
        // The same change signed anew (another attempt, a second later) is a new delivery.
        std::thread::sleep(Duration::from_millis(1100));
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let (status, _, _) = handle(&registry, true, NOTIFY_PATH, &headers, &body);
        assert_eq!(status, StatusCode::OK);
        assert!(refreshed(&registry, "team-a"));
    }

    #[test]
    fn standbys_ask_for_a_retry() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let (status, _, body) = handle(&registry, false, NOTIFY_PATH, &headers, &body);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(result_code(&body), "UNKNOWN_EXCEPTION");
        assert!(!refreshed(&registry, "team-a"));
    }

    #[test]
    fn stale_or_tampered_notifications_change_nothing() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let key = SigningKey::from_pem("sender", &key_file("devcenter-private.pem")).unwrap();
        // Authentic, but signed 10 minutes ago: a captured notification replayed later.
        let (mut headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let old = jiff::Zoned::now() - jiff::SignedDuration::from_mins(10);
        let time = signing::format_time(&old);
        let signature = signing::sign(&key, NOTIFY_PATH, CLIENT_ID, &time, &body);
        headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
        headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        let (status, _, answer) = handle(&registry, true, NOTIFY_PATH, &headers, &body);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let message = serde_json::from_slice::<ResultResponse>(&answer)
            .unwrap()
            .result
            .result_message;
        assert_eq!(message, NOT_AUTHENTIC);
        // Authentic headers over a body flipped from Active to Inactive.
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let flipped = String::from_utf8(body)
            .unwrap()
            .replace("Active", "Inactive");
        let (status, _, answer) =
            handle(&registry, true, NOTIFY_PATH, &headers, flipped.as_bytes());
        assert_eq!(
            (status, result_code(&answer).as_str()),
            (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE")
        );
        assert!(!refreshed(&registry, "team-a"));
    }

    /// The endpoint on a free port with small limits; returns its address and the registry.
    async fn endpoint(limits: Limits) -> (std::net::SocketAddr, Registry) {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let (leading_tx, leading) = watch::channel(true);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = NotifyState {
            registry: registry.clone(),
            metrics: Metrics::new(),
            leading,
        };
        // The sender lives as long as the server task, so the replica stays the leader.
        let shutdown = async move {
            std::future::pending::<()>().await;
            drop(leading_tx);
        };
        tokio::spawn(serve_with(listener, state, shutdown, limits));
        (addr, registry)
    }

    const SMALL: Limits = Limits {
        request_timeout: Duration::from_millis(500),
        max_connections: 4,
    };
    /// Generous slack over SMALL.request_timeout for a loaded CI machine; still far below what
    /// the slow senders below would need to finish.
    const CLOSED_WITHIN: Duration = Duration::from_secs(4);

    /// The head of a raw HTTP/1.1 notification request with `extra` header lines.
    fn head(content_length: usize, extra: &str) -> String {
        format!(
            "POST {NOTIFY_PATH} HTTP/1.1\r\nHost: operator\r\nContent-Type: {JSON_UTF8}\r\n\
             Content-Length: {content_length}\r\n{extra}\r\n"
        )
    }

    /// `headers` as raw header lines, plus `Connection: close` when asked.
    fn header_lines(headers: &HeaderMap, close: bool) -> String {
        headers
            .iter()
            .map(|(name, value)| format!("{name}: {}\r\n", value.to_str().unwrap()))
            .chain(close.then(|| "Connection: close\r\n".to_owned()))
            .collect()
    }

    /// Reads until the server closes the connection; returns what it sent.
    async fn read_to_close(stream: &mut TcpStream) -> String {
        use tokio::io::AsyncReadExt as _;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Sends `bytes` one at a time, `gap` apart, until the server stops taking them; returns
    /// how many were written before the connection broke (all of them if it never did).
    async fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) -> usize {
        use tokio::io::AsyncWriteExt as _;
        for (sent, byte) in bytes.iter().enumerate() {
            if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
                return sent;
            }
            tokio::time::sleep(gap).await;
        }
        bytes.len()
    }

    /// Sends a whole authentic notification on a new connection and reads the answer.
    async fn send_authentic(addr: std::net::SocketAddr) -> String {
        use tokio::io::AsyncWriteExt as _;
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = head(body.len(), &header_lines(&headers, true));
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        read_to_close(&mut stream).await
    }

    #[tokio::test]
    async fn an_authentic_notification_over_http_is_acknowledged() {
        let (addr, registry) = endpoint(SMALL).await;
        let answer = send_authentic(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains(r#""resultCode":"SUCCESS""#), "{answer}");
        assert!(refreshed(&registry, "team-a"));
    }

    #[tokio::test]
    async fn headers_sent_byte_by_byte_are_cut_off() {
        let (addr, registry) = endpoint(SMALL).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        // 400 bytes at 20 ms each would take 8 s; the server must hang up long before.
        let request = head(2, &format!("X-Padding: {}\r\n", "a".repeat(340)));
        assert!(request.len() >= 400);
        let sent = trickle(&mut stream, request.as_bytes(), Duration::from_millis(20)).await;
        let answer = read_to_close(&mut stream).await;
        assert!(
            sent < request.len() && started.elapsed() < CLOSED_WITHIN,
            "the server took {sent} of {} bytes over {:?}",
            request.len(),
            started.elapsed()
        );
        assert!(!answer.contains("200 OK"), "{answer}");
        assert!(!refreshed(&registry, "team-a"));
    }

    #[tokio::test]
    async fn idle_connections_are_closed() {
        let (addr, _) = endpoint(SMALL).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        let closed = tokio::time::timeout(CLOSED_WITHIN, read_to_close(&mut stream)).await;
        assert!(
            closed.is_ok(),
            "a connection that sent nothing is still open after {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_body_sent_byte_by_byte_times_out() {
        use tokio::io::AsyncWriteExt as _;
        let (addr, registry) = endpoint(SMALL).await;
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = head(body.len(), &header_lines(&headers, false));
        stream.write_all(request.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        // An authentic body, but at 20 ms a byte it would take seconds to arrive.
        let sent = trickle(&mut stream, &body, Duration::from_millis(20)).await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            sent < body.len() && started.elapsed() < CLOSED_WITHIN,
            "{sent} of {} bytes over {:?}",
            body.len(),
            started.elapsed()
        );
        assert!(!refreshed(&registry, "team-a"));
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_unread() {
        use tokio::io::AsyncWriteExt as _;
        let (addr, registry) = endpoint(SMALL).await;
        // Declared too large: refused on the header alone.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let declared = head(
            BODY_LIMIT + 1,
            &format!("{CLIENT_ID_HEADER}: {CLIENT_ID}\r\n"),
        );
        stream.write_all(declared.as_bytes()).await.unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Chunked, so no length up front: refused once the limit is crossed, and the sender
        // finds the connection closed while it still has most of its 1 MiB to send.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let chunked = format!(
            "POST {NOTIFY_PATH} HTTP/1.1\r\nHost: operator\r\n{CLIENT_ID_HEADER}: {CLIENT_ID}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        stream.write_all(chunked.as_bytes()).await.unwrap();
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        let mut sent = 0;
        for _ in 0..64 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "after {sent} bytes: {answer}"
        );
        assert!(!refreshed(&registry, "team-a"));
    }

    #[tokio::test]
    async fn a_flood_of_idle_connections_only_delays_real_notifications() {
        let (addr, registry) = endpoint(SMALL).await;
        let mut idle = Vec::new();
        for _ in 0..SMALL.max_connections * 3 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        // The idle ones hold every slot and are cut a request timeout later, batch by batch;
        // the real notification waits its turn in the backlog, and is then answered.
        let answer = tokio::time::timeout(Duration::from_secs(10), send_authentic(addr))
            .await
            .expect("the notification is answered once the idle connections are cut");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(refreshed(&registry, "team-a"));
    }
}
