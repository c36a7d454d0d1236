//! The notification endpoint (`POST /notify`): the Developer Center pushes a signed
//! `AUTHORIZATION_STATUS_CHANGED`; the operator verifies it, acknowledges it with a signed
//! result, and refreshes that application's snapshot at once. A notification never changes
//! anything by itself (it carries no token); a stale one is refused, and one replayed while
//! still fresh is acknowledged without another refresh.

use std::{sync::Arc, time::Duration};

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
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};
use tower::Service as _;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use super::{metrics::Metrics, registry::Registry};
use crate::devcenter::{
    Error, JSON_UTF8,
    signing::CLIENT_ID_HEADER,
    wire::{ResultCode, ResultInfo, ResultResponse},
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
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a notification connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.spawn(serve_connection(stream, app.clone(), limits, slot));
    }
    // Connections still open are cut; an unacknowledged notification is retried by the
    // Developer Center, and the poller lists on its own schedule anyway.
    connections.shutdown().await;
    Ok(())
}

/// Serves one connection; `_slot` frees its place among [`MAX_CONNECTIONS`] when it ends.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    _slot: OwnedSemaphorePermit,
) {
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
    let (status, headers, body) = handle(&state.registry, leading, uri.path(), &headers, &body);
    state.metrics.notification_answered(status);
    (status, headers, body).into_response()
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
    let Some(client_id) = headers.get(CLIENT_ID_HEADER).and_then(|v| v.to_str().ok()) else {
        tracing::warn!("notification without a Client-Id header rejected");
        return refuse(
            StatusCode::BAD_REQUEST,
            ResultCode::ParamIllegal,
            "no Client-Id header",
        );
    };
    let apps = registry.by_client_id(client_id);
    let mut verified = Vec::new();
    let mut failure = None;
    for app in &apps {
        let Some(client) = &app.client else { continue };
        match client.verify_notification(path, headers, body) {
            Ok(notification) => verified.push((app, client, notification)),
            Err(error) => failure = Some(error),
        }
    }
    let Some((_, ack_client, _)) = verified.first() else {
        let (status, code, reason) = match &failure {
            None => (
                StatusCode::UNAUTHORIZED,
                ResultCode::InvalidClient,
                "no application with this Client-Id is registered".to_owned(),
            ),
            Some(error @ Error::Protocol { .. }) => (
                StatusCode::BAD_REQUEST,
                ResultCode::ParamIllegal,
                error.to_string(),
            ),
            Some(error) => (
                StatusCode::UNAUTHORIZED,
                ResultCode::InvalidSignature,
                error.to_string(),
            ),
        };
        tracing::warn!(client_id, %reason, "notification rejected");
        return refuse(status, code, &reason);
    };
    let (ack_headers, ack_body) = ack_client.acknowledge_notification(path);
    for (app, client, notification) in &verified {
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
    use crate::controller::registry::{
        AppKey, Application, ApplicationFacts, ClientSource, Readiness,
    };
    use crate::devcenter::{
        ClientConfig, DevCenterClient, signing,
        signing::{SigningKey, VerifyingKey},
    };

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
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig::new(
            "http://127.0.0.1:9/".parse().unwrap(),
            CLIENT_ID,
            SigningKey::from_pem("tsp", &key_file("tsp-private.pem")).unwrap(),
            VerifyingKey::from_pem("devcenter", &key_file(devcenter_public)).unwrap(),
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
        assert!(app.take_notified().iter().eq(expected));
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
        let cases = [
            (
                notification("tsp-private.pem", CLIENT_ID),
                StatusCode::UNAUTHORIZED,
                "INVALID_SIGNATURE",
            ),
            (
                notification("devcenter-private.pem", "SANDBOX_OTHER"),
                StatusCode::UNAUTHORIZED,
                "INVALID_CLIENT",
            ),
            (
                (HeaderMap::new(), b"{}".to_vec()),
                StatusCode::BAD_REQUEST,
                "PARAM_ILLEGAL",
            ),
        ];
        for ((headers, body), expected_status, expected_code) in cases {
            let (status, headers, body) = handle(&registry, true, NOTIFY_PATH, &headers, &body);
            assert_eq!(
                (status, result_code(&body).as_str()),
                (expected_status, expected_code)
            );
            assert!(!headers.contains_key(signing::SIGNATURE_HEADER));
            assert!(!refreshed(&registry, "team-a"));
        }
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
        assert!(message.contains("refused as replays"), "{message}");
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
