//! Secret hygiene in-process: the client and the simulator go through grants, a rotation, a
//! revocation, notifications and every kind of failure with tracing captured at the most
//! verbose level, and neither an Agent-Token nor a line of a private key may appear in what was
//! logged, in any error's Display or Debug text, or in the Debug text of any type that holds a
//! token or a key. (The operator binary's logs, Events and status are checked end to end in
//! `tests/operator.rs` and `tests/hostile_input.rs`.)
//!
//! One test in this binary, because it installs the process-wide tracing subscriber.

mod sim_support;

use std::{
    io::Write,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use acqp_operator::{
    api::Product,
    devcenter::{
        AuthorizationFilter, ClientConfig, DevCenterClient,
        signing::{SigningKey, VerifyingKey},
        wire::{AgentToken, GenerateUrlRequest},
    },
};
use axum::{Router, body::Bytes, http::HeaderMap, response::IntoResponse};
use serde_json::json;
use sim_support::{ACME, BETA, Caller, DEMO, key_lines, pem};
use tokio::net::TcpListener;
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// Everything logged, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn client(endpoint: &str, private_key: &str) -> DevCenterClient {
    let mut config = ClientConfig::new(
        endpoint.parse().unwrap(),
        DEMO,
        SigningKey::from_pem(private_key, &pem(private_key)).unwrap(),
        VerifyingKey::from_pem("devcenter", &pem("examples/keys/devcenter-public.pem")).unwrap(),
    );
    config.max_retries = 1;
    config.retry_base_delay = Duration::from_millis(5);
    config.rate_limit.requests_per_second = NonZeroU32::new(1000).unwrap();
    DevCenterClient::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_private_key_reaches_logs_errors_or_debug_output() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("debug,acqp_operator=trace"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();

    let sim = sim_support::start(sim_support::config()).await;
    let api = Caller::new(&sim);
    let demo = client(&sim.endpoint(), "examples/keys/tsp-private.pem");
    // Everything else that is not a log line but could be shown: errors and Debug output.
    let mut shown: Vec<String> = vec![format!("{demo:?}"), format!("{:?}", sim_support::config())];

    // A receiver that verifies and acknowledges notifications, logging what it got.
    let receiver = demo.clone();
    let (notified_tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            let notification = receiver.verify_notification("/notify", &headers, &body);
            tracing::info!(?notification, "notification received");
            let _ = notified_tx.send(());
            receiver.acknowledge_notification("/notify").into_response()
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    api.sim_ok(
        &format!("/sim/apps/{DEMO}/notify-url"),
        &json!({"url": notify_url}),
    )
    .await;

    // Grants for two ACQPs, then a rotation (scope grows) and a revocation.
    let mut tokens: Vec<AgentToken> = Vec::new();
    let grant = |id: &'static str, acquirer: &'static str, products: Vec<Product>| {
        let (demo, api) = (demo.clone(), &api);
        async move {
            let request = GenerateUrlRequest {
                authorization_request_id: id.to_owned(),
                acquirer_id: acquirer.to_owned(),
                products,
            };
            let url = demo.generate_url(&request).await.unwrap();
            tracing::info!(?url, "URL issued");
            api.sim_ok(
                &format!("/sim/acqp/{acquirer}/authorize"),
                &json!({"clientId": DEMO}),
            )
            .await;
        }
    };
    grant("hygiene-1", ACME, vec![Product::CashierPayment]).await;
    grant("hygiene-2", BETA, vec![Product::CashierPayment]).await;
    let listed = demo
        .list_all_authorizations(&AuthorizationFilter::default(), NonZeroU32::new(1).unwrap())
        .await
        .unwrap();
    tracing::info!(?listed, "authorizations listed");
    shown.push(format!("{listed:?} {listed:#?}"));
    tokens.extend(listed.iter().map(|r| r.agent_token.clone()));
    grant(
        "hygiene-3",
        ACME,
        vec![Product::CashierPayment, Product::AutoDebit],
    )
    .await;
    api.sim_ok(
        &format!("/sim/acqp/{BETA}/deauthorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    let listed = demo
        .list_all_authorizations(
            &AuthorizationFilter::default(),
            NonZeroU32::new(10).unwrap(),
        )
        .await
        .unwrap();
    tracing::debug!(?listed, "authorizations listed again");
    shown.push(format!("{listed:?}"));
    tokens.extend(listed.iter().map(|r| r.agent_token.clone()));
    // The revoked ACQP's record still carries its (now invalid) token: count each once.
    tokens.sort_by(|a, b| a.expose().cmp(b.expose()));
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "two grants and a rotation: {tokens:?}");
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), notified.recv())
            .await
            .expect("the simulator notifies each change");
    }

    // Failures: a key the Developer Center does not know, a client aimed at the wrong key for
    // answers, keys that do not load, and a simulator that fails every call.
    let stranger = client(
        &sim.endpoint(),
        "tests/fixtures/hostile/other-tsp-private.pem",
    );
    let rejected = stranger.inquire_application().await.unwrap_err();
    let mut mistrusting = ClientConfig::new(
        sim.endpoint().parse().unwrap(),
        DEMO,
        SigningKey::from_pem("tsp", &pem("examples/keys/tsp-private.pem")).unwrap(),
        VerifyingKey::from_pem("tsp-public", &pem("examples/keys/tsp-public.pem")).unwrap(),
    );
    mistrusting.max_retries = 0;
    shown.push(format!("{mistrusting:?}"));
    let unverified = DevCenterClient::new(mistrusting)
        .unwrap()
        .inquire_application()
        .await
        .unwrap_err();
    let private = pem("examples/keys/tsp-private.pem");
    let truncated = SigningKey::from_pem("truncated", &private[..private.len() / 2]).unwrap_err();
    let mut corrupted = private.clone();
    corrupted[100] = b'!';
    let corrupted = SigningKey::from_pem("corrupted", &corrupted).unwrap_err();
    let private_as_public = VerifyingKey::from_pem("swapped", &private).unwrap_err();
    api.sim_ok("/sim/faults", &json!({"uErrorRate": 1.0})).await;
    let unavailable = demo.inquire_application().await.unwrap_err();
    for error in [&rejected, &unverified, &unavailable] {
        tracing::warn!(%error, ?error, "call failed");
        shown.push(format!("{error} {error:?}"));
    }
    for error in [&truncated, &corrupted, &private_as_public] {
        tracing::warn!(%error, ?error, "key refused");
        shown.push(format!("{error} {error:?}"));
    }
    sim.shutdown().await;

    let logs = captured.text();
    let everything = format!("{logs}\n{}", shown.join("\n"));
    // The controls: debug lines of the client and the simulator were captured, and the records
    // were logged (as fingerprints), so the absences below mean something.
    assert!(logs.contains("Developer Center call succeeded"), "{logs}");
    assert!(logs.contains("notification acknowledged"), "{logs}");
    for token in &tokens {
        assert!(
            logs.contains(&token.fingerprint()),
            "{token:?} was logged as a fingerprint"
        );
        assert!(
            !everything.contains(token.expose()),
            "an Agent-Token ({token:?}) appears in the output"
        );
    }
    for path in [
        "examples/keys/tsp-private.pem",
        "examples/keys/devcenter-private.pem",
        "tests/fixtures/hostile/other-tsp-private.pem",
    ] {
        for line in key_lines(path) {
            assert!(
                !everything.contains(&line),
                "a line of {path} appears in the output: {line}"
            );
        }
    }
}
