//! The Developer Center client against the simulator over real HTTP on loopback: every result
//! path of the contract, idempotency, pagination, retries under injected faults, notifications,
//! and responses that are unsigned or tampered with (from a small fake server).

use std::{
    num::NonZeroU32,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use acqp_operator::{
    api::Product,
    devcenter::{
        AuthorizationFilter, ClientConfig, DevCenterClient, Error,
        policy::{AllowEntry, EndpointPolicy},
        signing::{self, SigningKey, VerifyingKey},
        wire::{
            AuthorizationStatus, Environment, GenerateUrlRequest, ResultCode, ResultInfo,
            ResultResponse, Role,
        },
    },
    simulator::{Config, RunningSimulator, Simulator},
};
use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode, Uri},
    response::IntoResponse,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const DEMO: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
const VIEWER: &str = "SANDBOX_ACQP_OPERATOR_VIEWER";
const ACME: &str = "1022188000000000001";
const BETA: &str = "1022188000000000002";
const GENERATE_URL: &str = "/devcenter/api/v1/authorizations/generateUrl";

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn key_pem(file: &str) -> Vec<u8> {
    std::fs::read(repo_file(&format!("examples/keys/{file}"))).unwrap()
}

/// A simulator seeded from the shipped `examples/simulator.yaml`, on a free loopback port.
async fn simulator() -> RunningSimulator {
    let config = Config::load(&repo_file("examples/simulator.yaml")).unwrap();
    Simulator::new(config)
        .start(([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// Settings for tests: quick retries, so exhausting them takes milliseconds.
fn config(endpoint: &str, client_id: &str, tsp_private_key: &str) -> ClientConfig {
    let signing_key = SigningKey::from_pem(tsp_private_key, &key_pem(tsp_private_key)).unwrap();
    let devcenter_key =
        VerifyingKey::from_pem("devcenter", &key_pem("devcenter-public.pem")).unwrap();
    let mut config = ClientConfig::new(
        endpoint.parse().unwrap(),
        client_id,
        signing_key,
        devcenter_key,
    );
    config.timeout = Duration::from_secs(5);
    config.max_retries = 3;
    config.retry_base_delay = Duration::from_millis(5);
    config.retry_max_delay = Duration::from_millis(20);
    config.rate_limit.requests_per_second = NonZeroU32::new(1000).unwrap();
    config
}

fn client_with(config: ClientConfig) -> DevCenterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    DevCenterClient::new(config).unwrap()
}

fn demo_client(sim: &RunningSimulator) -> DevCenterClient {
    client_with(config(&sim.endpoint(), DEMO, "tsp-private.pem"))
}

fn url_request(id: &str, acquirer_id: &str, products: &[Product]) -> GenerateUrlRequest {
    GenerateUrlRequest {
        authorization_request_id: id.to_owned(),
        acquirer_id: acquirer_id.to_owned(),
        products: products.to_vec(),
    }
}

/// A test-control call to the simulator's `/sim/` API.
async fn sim_post(sim: &RunningSimulator, path: &str, body: Value) {
    let url = format!("{}{path}", sim.endpoint());
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// The simulator's counters (`GET /sim/stats`).
async fn stats(sim: &RunningSimulator) -> Value {
    let response = reqwest::get(format!("{}/sim/stats", sim.endpoint()))
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// How many calls of `path` the simulator counted with `outcome` (`S`, `U`, `HTTP_503`, ...).
async fn calls(sim: &RunningSimulator, path: &str, outcome: &str) -> u64 {
    stats(sim).await["calls"][path][outcome]
        .as_u64()
        .unwrap_or(0)
}

/// Issues a URL for `acquirer_id` and grants it as the ACQP would.
async fn grant(sim: &RunningSimulator, client: &DevCenterClient, acquirer_id: &str) {
    let request = url_request(
        &format!("grant-{acquirer_id}"),
        acquirer_id,
        &[Product::CashierPayment],
    );
    client.generate_url(&request).await.unwrap();
    sim_post(
        sim,
        &format!("/sim/acqp/{acquirer_id}/authorize"),
        json!({"clientId": DEMO}),
    )
    .await;
}

fn rejection(error: Error) -> (ResultCode, String) {
    assert!(!error.is_retryable(), "{error}");
    assert_eq!(error.metric_label(), "rejected");
    match error {
        Error::Rejected { code, message, .. } => (code, message),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn application_inquiry_describes_the_demo_application() {
    let sim = simulator().await;
    let application = demo_client(&sim).inquire_application().await.unwrap();
    assert_eq!(application.result, ResultInfo::success());
    assert_eq!(application.environment, Environment::Sandbox);
    assert_eq!(application.role, Role::DeveloperAdmin);
    let integrated = [
        Product::CashierPayment,
        Product::AutoDebit,
        Product::UserPresentedModePayment,
    ];
    assert_eq!(application.integrated_products, integrated);
}

#[tokio::test]
async fn generate_url_is_idempotent_per_request_id_and_body() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    let request = url_request(
        "req-1",
        ACME,
        &[Product::CashierPayment, Product::AutoDebit],
    );
    let first = client.generate_url(&request).await.unwrap();
    assert!(
        first.authorization_url.starts_with(sim.public_url()),
        "{}",
        first.authorization_url
    );
    let again = client.generate_url(&request).await.unwrap();
    assert_eq!(again, first);

    let mut changed = request.clone();
    changed.products = vec![Product::CashierPayment];
    let (code, message) = rejection(client.generate_url(&changed).await.unwrap_err());
    assert_eq!(code, ResultCode::RepeatReqInconsistent, "{message}");
}

#[tokio::test]
async fn products_outside_the_integration_or_the_contract_are_named() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    let not_integrated = url_request("req-mpm", ACME, &[Product::MerchantPresentedModePayment]);
    let (code, message) = rejection(client.generate_url(&not_integrated).await.unwrap_err());
    assert_eq!(code, ResultCode::ProductNotIntegrated);
    assert!(
        message.contains("MerchantPresentedModePayment"),
        "{message}"
    );

    let not_in_contract = url_request(
        "req-beta",
        BETA,
        &[Product::CashierPayment, Product::AutoDebit],
    );
    let (code, message) = rejection(client.generate_url(&not_in_contract).await.unwrap_err());
    assert_eq!(code, ResultCode::ProductNotInContract);
    assert!(
        message.contains("AutoDebit") && !message.contains("CashierPayment"),
        "{message}"
    );

    let unknown = url_request(
        "req-unknown",
        "1022188999999999999",
        &[Product::CashierPayment],
    );
    let (code, _) = rejection(client.generate_url(&unknown).await.unwrap_err());
    assert_eq!(code, ResultCode::AcquirerNotFound);
}

#[tokio::test]
async fn callers_without_rights_or_valid_credentials_are_rejected() {
    let sim = simulator().await;
    let request = url_request("req-1", ACME, &[Product::CashierPayment]);
    let endpoint = sim.endpoint();

    let viewer = client_with(config(&endpoint, VIEWER, "tsp-private.pem"));
    let (code, _) = rejection(viewer.generate_url(&request).await.unwrap_err());
    assert_eq!(code, ResultCode::AccessDenied);

    let stranger = client_with(config(&endpoint, "SANDBOX_NOBODY", "tsp-private.pem"));
    let (code, _) = rejection(stranger.inquire_application().await.unwrap_err());
    assert_eq!(code, ResultCode::InvalidClient);

    // Signing with a key that is not the application's: here the Developer Center's own.
    let impostor = client_with(config(&endpoint, DEMO, "devcenter-private.pem"));
    let (code, _) = rejection(impostor.inquire_application().await.unwrap_err());
    assert_eq!(code, ResultCode::InvalidSignature);
}

#[tokio::test]
async fn listing_walks_every_page_and_applies_filters() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    grant(&sim, &client, ACME).await;
    grant(&sim, &client, BETA).await;

    let one_per_page = NonZeroU32::new(1).unwrap();
    let all = client
        .list_all_authorizations(&AuthorizationFilter::default(), one_per_page)
        .await
        .unwrap();
    let mut ids: Vec<&str> = all.iter().map(|r| r.acquirer_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, [ACME, BETA]);
    assert!(all.iter().all(|r| r.status == AuthorizationStatus::Active));
    assert_ne!(all[0].agent_token, all[1].agent_token);
    assert_eq!(
        calls(&sim, "/devcenter/api/v1/authorizations/inquiry", "S").await,
        2
    );

    sim_post(
        &sim,
        &format!("/sim/acqp/{BETA}/deauthorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    let inactive = AuthorizationFilter {
        status: Some(AuthorizationStatus::Inactive),
        ..Default::default()
    };
    let page_size = NonZeroU32::new(10).unwrap();
    let revoked = client
        .list_all_authorizations(&inactive, page_size)
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].acquirer_id, BETA);
    let by_name = AuthorizationFilter {
        acquirer_name: Some("Acme".into()),
        ..Default::default()
    };
    let acme = client
        .list_all_authorizations(&by_name, page_size)
        .await
        .unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].acquirer_name, "Acme Acquiring");
}

#[tokio::test]
async fn unknown_outcomes_are_retried_until_the_cap_then_reported_retryable() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    for (fault, outcome) in [
        ("uErrorRate", "U"),
        ("throttleRate", "U"),
        ("http5xxRate", "HTTP_503"),
    ] {
        sim_post(&sim, "/sim/reset", json!({})).await;
        sim_post(&sim, "/sim/faults", json!({ fault: 1.0 })).await;
        let error = client.inquire_application().await.unwrap_err();
        assert!(error.is_retryable(), "{fault}: {error}");
        assert_eq!(error.metric_label(), "unavailable");
        assert!(
            matches!(error, Error::Unavailable { attempts: 4, .. }),
            "{fault}: {error:?}"
        );
        let path = "/devcenter/api/v1/application/inquiry";
        assert_eq!(
            calls(&sim, path, outcome).await,
            4,
            "{fault}: 1 attempt + 3 retries"
        );
    }
}

#[tokio::test]
async fn retries_succeed_once_the_fault_clears_and_keep_the_request_id() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    for fault in ["uErrorRate", "http5xxRate", "dropRate"] {
        sim_post(&sim, "/sim/reset", json!({})).await;
        sim_post(&sim, "/sim/faults", json!({ fault: 1.0 })).await;
        let mut config = config(&sim.endpoint(), DEMO, "tsp-private.pem");
        // Enough patience to outlast the fault being cleared below.
        config.max_retries = 50;
        config.retry_max_delay = Duration::from_millis(20);
        let patient = client_with(config);
        let request = url_request(&format!("req-{fault}"), ACME, &[Product::CashierPayment]);
        let call = tokio::spawn(async move { patient.generate_url(&request).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        sim_post(&sim, "/sim/faults", json!({})).await;
        let issued = call.await.unwrap().unwrap();
        // A dropped connection loses a response whose URL was already made; the retry carries
        // the same authorizationRequestId, so it gets that URL back instead of a second one.
        let again = url_request(&format!("req-{fault}"), ACME, &[Product::CashierPayment]);
        assert_eq!(
            client.generate_url(&again).await.unwrap(),
            issued,
            "{fault}"
        );
        assert_eq!(stats(&sim).await["urlsIssued"], 1, "{fault}");
        let mut failed = 0;
        for outcome in ["U", "HTTP_503", "DROPPED"] {
            failed += calls(&sim, GENERATE_URL, outcome).await;
        }
        assert!(failed >= 1, "{fault}: the fault was never hit");
    }
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retryable() {
    let sim = simulator().await;
    sim_post(&sim, "/sim/faults", json!({"latencyMs": 2000})).await;
    let mut config = config(&sim.endpoint(), DEMO, "tsp-private.pem");
    config.timeout = Duration::from_millis(200);
    config.max_retries = 1;
    let error = client_with(config).inquire_application().await.unwrap_err();
    match error {
        Error::Unavailable {
            attempts: 2,
            ref last,
            ..
        } => assert!(last.starts_with("timed out"), "{last}"),
        other => panic!("expected Unavailable after 2 attempts, got {other:?}"),
    }
}

#[tokio::test]
async fn notifications_verify_and_acknowledgements_satisfy_the_simulator() {
    let sim = simulator().await;
    let client = demo_client(&sim);
    let (notified_tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let receiver = client.clone();
    let app = Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            match receiver.verify_notification("/notify", &headers, &body) {
                Ok(notification) => {
                    notified_tx.send(notification).unwrap();
                    receiver.acknowledge_notification("/notify").into_response()
                }
                Err(error) => (StatusCode::UNAUTHORIZED, error.to_string()).into_response(),
            }
        }),
    );
    let endpoint = serve(app).await;
    let notify_url = json!({"url": format!("{endpoint}/notify")});
    sim_post(&sim, &format!("/sim/apps/{DEMO}/notify-url"), notify_url).await;

    grant(&sim, &client, ACME).await;
    let notification = tokio::time::timeout(Duration::from_secs(10), notified.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.acquirer_id, ACME);
    assert_eq!(notification.status, AuthorizationStatus::Active);
    let acked = async {
        while stats(&sim).await["notificationsAcked"] != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked)
        .await
        .expect("the simulator accepts the signed ack");
}

/// Serves `app` on a free loopback port and returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A fake Developer Center whose answer to every call is a valid application inquiry, signed
/// according to the first path segment: `/honest`, `/tampered`, `/unsigned`, `/wrong-key`,
/// `/other-client`.
async fn fake_devcenter() -> String {
    let app = Router::new().fallback(|uri: Uri| async move {
        let devcenter =
            SigningKey::from_pem("devcenter", &key_pem("devcenter-private.pem")).unwrap();
        let tsp = SigningKey::from_pem("tsp", &key_pem("tsp-private.pem")).unwrap();
        let path = uri.path();
        let mode = path.split('/').nth(1).unwrap_or_default();
        let body = json!({
            "result": ResultInfo::success(),
            "applicationName": "ACQP operator demo",
            "environment": "Sandbox",
            "role": "DeveloperAdmin",
            "integratedProducts": ["CashierPayment"],
        })
        .to_string();
        let time = signing::now();
        let (key, client_id) = match mode {
            "wrong-key" => (&tsp, DEMO),
            "other-client" => (&devcenter, VIEWER),
            _ => (&devcenter, DEMO),
        };
        let signature = signing::sign(key, path, client_id, &time, body.as_bytes());
        let sent_body = match mode {
            "tampered" => body.replace("DeveloperAdmin", "Developer"),
            _ => body,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/json; charset=UTF-8".parse().unwrap(),
        );
        headers.insert(signing::CLIENT_ID_HEADER, client_id.parse().unwrap());
        headers.insert(signing::RESPONSE_TIME_HEADER, time.parse().unwrap());
        if mode != "unsigned" {
            headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        }
        (headers, sent_body)
    });
    serve(app).await
}

#[tokio::test]
async fn unsigned_or_tampered_responses_are_rejected() {
    let base = fake_devcenter().await;
    let client =
        |mode: &str| client_with(config(&format!("{base}/{mode}"), DEMO, "tsp-private.pem"));
    // The fake's honest answer passes, so the failures below are the client's checks at work.
    assert_eq!(
        client("honest").inquire_application().await.unwrap().role,
        Role::DeveloperAdmin
    );

    for (mode, expected) in [
        ("tampered", "signature does not match the message"),
        ("wrong-key", "signature does not match the message"),
        ("unsigned", "no Signature header (HTTP 200 OK)"),
        (
            "other-client",
            r#"it is addressed to Client-Id "SANDBOX_ACQP_OPERATOR_VIEWER""#,
        ),
    ] {
        let error = client(mode).inquire_application().await.unwrap_err();
        assert!(!error.is_retryable(), "{mode}: {error}");
        assert_eq!(error.metric_label(), "unverified", "{mode}");
        let Error::Unverified { reason, .. } = error else {
            panic!("{mode}: {error:?}")
        };
        assert!(reason.starts_with(expected), "{mode}: {reason}");
    }
}

#[tokio::test]
async fn a_result_without_the_contract_shape_is_a_protocol_error() {
    let app = Router::new().fallback(|uri: Uri| async move {
        let devcenter =
            SigningKey::from_pem("devcenter", &key_pem("devcenter-private.pem")).unwrap();
        // Authentic and S, but missing the application fields.
        let body = serde_json::to_string(&ResultResponse {
            result: ResultInfo::success(),
        })
        .unwrap();
        let time = signing::now();
        let signature = signing::sign(&devcenter, uri.path(), DEMO, &time, body.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(signing::CLIENT_ID_HEADER, DEMO.parse().unwrap());
        headers.insert(signing::RESPONSE_TIME_HEADER, time.parse().unwrap());
        headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        (headers, body)
    });
    let endpoint = serve(app).await;
    let error = client_with(config(&endpoint, DEMO, "tsp-private.pem"))
        .inquire_application()
        .await
        .unwrap_err();
    assert_eq!(error.metric_label(), "protocol", "{error}");
    assert!(!error.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Where the client may go: the endpoint policy, redirects, https for Production
// ---------------------------------------------------------------------------------------------

/// A listener that counts the connections it accepts and answers none of them.
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (format!("127.0.0.1:{}", addr.port()), accepted)
}

/// Hole: reqwest followed redirects, re-posting the signed request (307/308) to wherever the
/// endpoint pointed. Now a 3xx is an error that says so, and the target hears nothing.
#[tokio::test]
async fn redirects_are_reported_and_never_followed() {
    let (target, reached) = counting_listener().await;
    for status in [301u16, 302, 307, 308] {
        let location = format!("http://{target}/devcenter/api/v1/application/inquiry");
        let redirecting = serve(Router::new().fallback(move || {
            let location = location.clone();
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("location", location)],
                    "",
                )
            }
        }))
        .await;
        let error = client_with(config(&redirecting, DEMO, "tsp-private.pem"))
            .inquire_application()
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, Error::Protocol { .. }) && text.contains("never follows"),
            "{status}: {text}"
        );
        assert!(!text.contains(&target), "{text}");
    }
    assert_eq!(reached.load(Ordering::SeqCst), 0, "a redirect was followed");
}

/// Hole: the operator posted to any address a tenant named, loopback and metadata included.
/// With the operator's policy the client refuses them, by IP literal before anything is sent
/// and by name after resolution, with a message naming the policy and not what it found.
#[tokio::test]
async fn the_default_policy_refuses_internal_addresses_and_sends_nothing() {
    let (addr, reached) = counting_listener().await;
    let port = addr.rsplit(':').next().unwrap();
    for endpoint in [
        format!("http://{addr}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://169.254.169.254".to_owned(),
    ] {
        let mut config = config(&endpoint, DEMO, "tsp-private.pem");
        config.endpoint_policy = Arc::new(EndpointPolicy::default());
        let error = client_with(config).inquire_application().await.unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, Error::NotAllowed { .. }),
            "{endpoint}: {text}"
        );
        assert!(text.contains("endpoint policy"), "{endpoint}: {text}");
        assert!(!error.is_retryable(), "{endpoint}");
        for probe_result in ["Connection refused", "os error", "127.0.0.1", "::1"] {
            assert!(
                !text.contains(probe_result) || endpoint.contains(probe_result),
                "{endpoint}: {text}"
            );
        }
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a refused address was connected to"
    );
}

/// The allowlist admits exactly what it names: loopback allowed, the call goes through.
#[tokio::test]
async fn the_allowlist_admits_what_the_admin_trusts() {
    let sim = simulator().await;
    let mut config = config(&sim.endpoint(), DEMO, "tsp-private.pem");
    config.endpoint_policy = Arc::new(EndpointPolicy::allowing(vec![
        "127.0.0.0/8".parse::<AllowEntry>().unwrap(),
    ]));
    let answer = client_with(config).inquire_application().await.unwrap();
    assert_eq!(answer.role, Role::DeveloperAdmin);
}

/// Hole: Production applications were called over plain HTTP. A Production client refuses it
/// before anything is sent.
#[tokio::test]
async fn production_clients_refuse_plain_http() {
    let (addr, reached) = counting_listener().await;
    let mut config = config(&format!("http://{addr}"), DEMO, "tsp-private.pem");
    config.https_only = true;
    let error = client_with(config).inquire_application().await.unwrap_err();
    assert!(
        error.to_string().contains("must be an https:// URL"),
        "{error}"
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

/// Hole: connect errors came back verbatim in the tenant-readable Ready message, a port-scan
/// oracle. They now name the kind of failure only.
#[tokio::test]
async fn transport_errors_name_the_kind_of_failure_only() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut config = config(&format!("http://{closed}"), DEMO, "tsp-private.pem");
    config.max_retries = 0;
    match client_with(config).inquire_application().await.unwrap_err() {
        Error::Unavailable { last, .. } => assert_eq!(last, "cannot connect to the endpoint"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
