//! The notification endpoint (`POST /notify`): the Developer Center pushes a signed
//! `AUTHORIZATION_STATUS_CHANGED`; the operator verifies it, acknowledges it with a signed
//! result, and refreshes that application's snapshot at once. A notification never changes
//! anything by itself (it carries no token), so a replay costs only one extra list.

use std::time::Duration;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::post,
};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use super::registry::Registry;
use crate::devcenter::{
    Error, JSON_UTF8,
    signing::CLIENT_ID_HEADER,
    wire::{ResultCode, ResultInfo, ResultResponse},
};

/// The path the Developer Center posts to.
pub(crate) const NOTIFY_PATH: &str = "/notify";
/// Notifications are a few hundred bytes; anything much larger is not one.
const BODY_LIMIT: usize = 64 * 1024;
/// Bounds a whole request, body included, so slow senders cannot hold connections open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint reads: the registry, and whether this replica leads.
#[derive(Clone)]
pub(crate) struct NotifyState {
    pub(crate) registry: Registry,
    pub(crate) leading: watch::Receiver<bool>,
}

/// Serves `POST /notify` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: NotifyState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route(NOTIFY_PATH, post(receive))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, path = NOTIFY_PATH, "accepting Developer Center notifications");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn receive(
    State(state): State<NotifyState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let leading = *state.leading.borrow();
    let (status, headers, body) = handle(&state.registry, leading, uri.path(), &headers, &body);
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
    for (app, _, notification) in &verified {
        tracing::info!(
            namespace = %app.key.namespace,
            app = %app.key.name,
            acquirer_id = %notification.acquirer_id,
            status = ?notification.status,
            "notification received; refreshing"
        );
        app.refresh_now();
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

    fn refreshed(registry: &Registry, namespace: &str) -> bool {
        let app = registry.get(namespace, "demo").unwrap();
        app.refresh_requested().now_or_never().is_some()
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
    fn standbys_ask_for_a_retry() {
        let registry = Registry::default();
        register(&registry, "team-a", "devcenter-public.pem");
        let (headers, body) = notification("devcenter-private.pem", CLIENT_ID);
        let (status, _, body) = handle(&registry, false, NOTIFY_PATH, &headers, &body);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(result_code(&body), "UNKNOWN_EXCEPTION");
        assert!(!refreshed(&registry, "team-a"));
    }
}
