//! One shared operator, many tenants: what a user with rights only in a namespace can make the
//! operator do, tried the way such a user would, against the real operator binary on this test
//! binary's control plane.
//!
//! - A tenant's own endpoint, signing with the key the tenant chose, pages at full speed: that
//!   application reports `ContractViolation`, its Secret keeps its token, the operator's memory
//!   stays within the chart's limit, and another tenant's grant goes through meanwhile (the
//!   figures are printed as `TENANCY ...` lines, visible with `--nocapture`).
//! - Applications pointing at loopback (by address and by name) or the metadata address are
//!   `EndpointNotAllowed` and nothing connects; a redirecting endpoint forwards nothing.
//! - Every unauthenticated `/notify` gets one answer, whatever failed.
//! - One operator given two namespaces serves both and looks at nothing in a third.
//!
//! Every fake Developer Center here listens on 127.0.0.1 and signs with the test keys in
//! `examples/keys/`.

mod sim_support;
mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acqp_operator::devcenter::{
    JSON_UTF8,
    signing::{self, SigningKey},
};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::{Value, json};
use sim_support::{ACME, DEMO, pem};
use support::{
    env::{Env, condition},
    operator::OperatorOptions,
};

/// How long a step may take before the test fails; generous for a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(90);
/// The chart's memory limit for the operator (`resources.limits.memory: 256Mi`).
const CHART_MEMORY_LIMIT_KIB: u64 = 256 * 1024;
/// The Client ID of the tenant's own (hostile) application.
const HOSTILE: &str = "SANDBOX_HOSTILE_TENANT";
/// The ACQP the hostile tenant's endpoint grants while it still behaves.
const HOSTILE_ACQP: &str = "1022188000000000009";
const HOSTILE_TOKEN: &str = "token-granted-before-the-endpoint-turned";

impl Env {
    /// [`Env::new`], with `extra_args` for the operator.
    async fn with_args(prefix: &str, extra_args: &[&str]) -> Env {
        let sim = sim_support::start(sim_support::config()).await;
        let options = OperatorOptions {
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        };
        let mut env = Env::with(prefix, sim, options).await;
        env.step = STEP;
        env
    }

    fn ready(&self, what: &str) -> Option<Value> {
        condition(&self.get(what)?, "Ready").cloned()
    }

    /// The token in Secret `name` under `agentToken`, if any.
    fn secret_token(&self, name: &str) -> Option<String> {
        let secret = self.get(&format!("secret/{name}"))?;
        let encoded = secret["data"]["agentToken"].as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        Some(String::from_utf8(decoded).unwrap())
    }

    /// An AcqpAuthorization `name` of application `app` for `acqp`, CashierPayment.
    fn apply_authorization(&self, name: &str, app: &str, acqp: &str) {
        self.apply(&authorization(name, app, acqp));
    }

    /// Application `name` for `client_id` at `endpoint`, with the demo credentials.
    fn apply_application_at(&self, name: &str, client_id: &str, endpoint: &str) {
        self.apply(&format!(
            "apiVersion: acqp-operator.io/v1alpha1\nkind: DeveloperCenterApplication\n\
             metadata: {{name: {name}}}\nspec:\n  environment: Sandbox\n  endpoint: \
             {endpoint}\n  clientId: {client_id}\n  credentialsSecretRef: {{name: \
             demo-credentials}}\n  pollInterval: 1s\n"
        ));
    }

    /// The operator's peak resident set so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.operator.pid()))
            .expect("the operator is running");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

// ---------------------------------------------------------------------------------------------
// A tenant's own Developer Center
// ---------------------------------------------------------------------------------------------

/// A Developer Center a tenant runs: it signs with the Developer Center test key (the tenant
/// put the matching public key in its own credentials Secret), answers the application inquiry
/// as a Developer Admin, and lists one granted record until `hostile` is set; from then on every
/// page of the authorization list is full, of new acquirers with long tokens, and claims that
/// more follow.
#[derive(Clone)]
struct TenantDevCenter {
    key: Arc<SigningKey>,
    hostile: Arc<AtomicBool>,
    pages_served: Arc<AtomicU64>,
}

impl TenantDevCenter {
    async fn start() -> (TenantDevCenter, String) {
        let server = TenantDevCenter {
            key: Arc::new(
                SigningKey::from_pem("devcenter", &pem("examples/keys/devcenter-private.pem"))
                    .unwrap(),
            ),
            hostile: Arc::default(),
            pages_served: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(Self::answer)
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, endpoint)
    }

    async fn answer(State(server): State<TenantDevCenter>, uri: Uri, body: Bytes) -> Response {
        let success = json!({"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "ok"});
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let answer = match uri.path() {
            "/devcenter/api/v1/application/inquiry" => json!({
                "result": success, "applicationName": "tenant", "environment": "Sandbox",
                "role": "DeveloperAdmin", "integratedProducts": ["CashierPayment"],
            }),
            "/devcenter/api/v1/authorizations/inquiry"
                if server.hostile.load(Ordering::Relaxed) =>
            {
                server.pages_served.fetch_add(1, Ordering::Relaxed);
                let page = request["pageNumber"].as_u64().unwrap_or(1);
                let size = request["pageSize"].as_u64().unwrap_or(100);
                let records: Vec<Value> = (0..size)
                    .map(|i| {
                        let id = format!("{:064}", page * size + i);
                        record(&id, &"x".repeat(4000))
                    })
                    .collect();
                json!({"result": success, "authorizations": records, "totalCount": 9_999})
            }
            "/devcenter/api/v1/authorizations/inquiry" => json!({
                "result": success,
                "authorizations": [record(HOSTILE_ACQP, HOSTILE_TOKEN)],
                "totalCount": 1,
            }),
            _ => json!({"result": {"resultCode": "PARAM_ILLEGAL", "resultStatus": "F",
                                   "resultMessage": "unknown path"}}),
        };
        server.signed(uri.path(), serde_json::to_vec(&answer).unwrap())
    }

    fn signed(&self, path: &str, body: Vec<u8>) -> Response {
        let time = signing::now();
        let signature = signing::sign(&self.key, path, HOSTILE, &time, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        headers.insert(signing::CLIENT_ID_HEADER, HeaderValue::from_static(HOSTILE));
        headers.insert(
            signing::RESPONSE_TIME_HEADER,
            HeaderValue::from_str(&time).unwrap(),
        );
        headers.insert(
            signing::SIGNATURE_HEADER,
            HeaderValue::from_str(&signature).unwrap(),
        );
        (headers, body).into_response()
    }
}

fn record(acquirer_id: &str, token: &str) -> Value {
    json!({
        "acquirerId": acquirer_id, "acquirerName": "Tenant's acquirer", "status": "Active",
        "products": ["CashierPayment"], "agentToken": token,
        "authorizedTime": "2026-11-27T04:08:56Z", "updateTime": "2026-11-27T04:08:56Z",
    })
}

/// The demo application against the simulator, plus `hostile` against the tenant's endpoint
/// with one authorization each; returns once both authorizations exist.
/// An AcqpAuthorization `name` of application `app` for `acqp`, CashierPayment.
fn authorization(name: &str, app: &str, acqp: &str) -> String {
    format!(
        "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata: {{name: \
         {name}}}\nspec:\n  applicationRef: {{name: {app}}}\n  acqp: {{id: \"{acqp}\", \
         name: Acquirer {acqp}}}\n  products: [CashierPayment]\n"
    )
}

async fn two_tenants(env: &Env, hostile_endpoint: &str) {
    env.apply(&support::fixture::example_application(
        &env.api.endpoint,
        "1s",
    ));
    env.apply_application_at("hostile", HOSTILE, hostile_endpoint);
    env.apply_authorization("granted-elsewhere", "hostile", HOSTILE_ACQP);
    env.apply_authorization("acme", "demo", ACME);
}

/// Hole: a tenant's endpoint whose signed pages never end (full pages, a growing list) grew
/// the shared operator without bound and took every tenant down with it. Now the list stops at
/// the bounds of `devcenter::limits`, that application alone reports `ContractViolation`, its
/// Secret keeps the token granted before, the operator's peak RSS stays below the chart's limit
/// while the endpoint pages at full speed for a minute, and another tenant's grant goes through
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_endpoint_paging_at_full_speed_harms_only_its_own_application() {
    let (tenant, endpoint) = TenantDevCenter::start().await;
    let env = Env::with_args("hostile-paging", &[]).await;
    two_tenants(&env, &endpoint).await;
    env.wait_ready("acqpauth/granted-elsewhere", "True", "Authorized")
        .await;
    let secret = "granted-elsewhere-agent-token";
    assert_eq!(env.secret_token(secret).as_deref(), Some(HOSTILE_TOKEN));
    env.wait_ready("acqpauth/acme", "False", "AwaitingAuthorization")
        .await;
    let rss_before = env.peak_rss_kib();

    tenant.hostile.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let violation = env
        .wait_ready("dcapp/hostile", "False", "ContractViolation")
        .await;
    let message = violation["message"].as_str().unwrap();
    assert!(
        message.contains("the operator holds for one application"),
        "{message}"
    );
    assert!(
        !message.contains("xxxx"),
        "the message repeats the answer: {message}"
    );
    println!(
        "TENANCY contract violation reported after {:?}",
        started.elapsed()
    );

    // The other tenant's grant, while the endpoint keeps paging.
    tokio::time::sleep(Duration::from_secs(20)).await;
    env.api
        .sim_ok(
            &format!("/sim/acqp/{ACME}/authorize"),
            &json!({"clientId": DEMO}),
        )
        .await;
    let granted = Instant::now();
    env.wait_ready("acqpauth/acme", "True", "Authorized").await;
    let grant_latency = granted.elapsed();
    let remaining = Duration::from_secs(60).saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;

    let pages = tenant.pages_served.load(Ordering::Relaxed);
    let peak = env.peak_rss_kib();
    println!(
        "TENANCY hostile endpoint served {pages} full pages in {:?}; operator peak RSS \
         {:.1} MiB (before: {:.1} MiB); the other tenant's grant took {grant_latency:?}",
        started.elapsed(),
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    assert!(
        pages >= 100,
        "the endpoint was asked for only {pages} pages"
    );
    assert!(
        peak < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB is past the chart's limit"
    );
    assert!(
        grant_latency < Duration::from_secs(15),
        "the other tenant's grant took {grant_latency:?}"
    );
    // Last good state: the token granted before the endpoint turned is still there.
    assert_eq!(env.secret_token(secret).as_deref(), Some(HOSTILE_TOKEN));
    let demo = env.ready("dcapp/demo").unwrap();
    assert_eq!(demo["status"], "True", "{demo}");
}

// ---------------------------------------------------------------------------------------------
// Where a tenant can make the operator go
// ---------------------------------------------------------------------------------------------

/// A loopback listener that counts the connections it accepts and answers none.
async fn counting_listener() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

/// Hole (SSRF): the operator POSTed signed requests to any address a tenant named, loopback
/// and the metadata service included, and the connect error came back in the Ready message.
/// With the default policy (here the allowlist names only a documentation address, so loopback
/// is not allowed) every such application is `EndpointNotAllowed`, the message names the
/// policy, and nothing connects to the listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_cannot_point_the_operator_at_internal_addresses() {
    let (port, reached) = counting_listener().await;
    let env = Env::with_args("ssrf", &["--endpoint-allowlist=192.0.2.1"]).await;
    env.apply(&support::fixture::example_application(
        &env.api.endpoint,
        "1s",
    ));
    let endpoints = [
        ("by-address", format!("http://127.0.0.1:{port}")),
        ("by-name", format!("http://localhost:{port}")),
        ("metadata", "http://169.254.169.254".to_owned()),
    ];
    for (name, endpoint) in &endpoints {
        env.apply_application_at(name, HOSTILE, endpoint);
    }
    for (name, endpoint) in &endpoints {
        let ready = env
            .wait_ready(&format!("dcapp/{name}"), "False", "EndpointNotAllowed")
            .await;
        let message = ready["message"].as_str().unwrap();
        assert!(message.contains("endpoint policy"), "{endpoint}: {message}");
        assert!(!message.contains("refused ("), "{endpoint}: {message}");
        assert!(
            !message.to_lowercase().contains("connection"),
            "{endpoint}: {message}"
        );
    }
    // Even the simulator, on loopback, is out of reach for this operator.
    env.wait_ready("dcapp/demo", "False", "EndpointNotAllowed")
        .await;
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "an internal address was connected to"
    );
}

/// Hole: an endpoint answering 307 received nothing itself but had the operator re-post its
/// signed `application/inquiry` to the redirect target. Now the application reports the
/// redirect and the target hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_endpoint_gets_nothing_forwarded() {
    let (target_port, reached) = counting_listener().await;
    let location = format!("http://127.0.0.1:{target_port}/devcenter/api/v1/application/inquiry");
    let redirecting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", redirecting.local_addr().unwrap());
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", location)],
                "",
            )
        }
    });
    tokio::spawn(async move { axum::serve(redirecting, app).await });
    let env = Env::with_args("redirect", &[]).await;
    env.apply(&support::fixture::example_application(
        &env.api.endpoint,
        "1s",
    ));
    env.apply_application_at("redirecting", HOSTILE, &endpoint);
    let ready = env
        .wait_ready("dcapp/redirecting", "False", "DevCenterUnavailable")
        .await;
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("never follows"), "{message}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

// ---------------------------------------------------------------------------------------------
// What /notify tells a caller who cannot sign
// ---------------------------------------------------------------------------------------------

/// Hole: refusals carried the verification error (naming the namespace and Secret of a key),
/// and INVALID_CLIENT versus INVALID_SIGNATURE told which Client-Ids are registered. Now every
/// unauthenticated notification gets the same status and body, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_notifications_all_get_one_answer() {
    let env = Env::with_args("notify-refusals", &[]).await;
    env.apply(&support::fixture::example_application(
        &env.api.endpoint,
        "1s",
    ));
    env.wait_ready("dcapp/demo", "True", "Connected").await;
    let forger = SigningKey::from_pem("forger", &pem("examples/keys/tsp-private.pem")).unwrap();
    let body = br#"{"notifyType":"AUTHORIZATION_STATUS_CHANGED","acquirerId":"1022188000000000001","status":"Active","updateTime":"2026-11-27T04:08:56Z"}"#;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    // A registered Client-Id with a forged signature, an unknown one, and none at all.
    for client_id in [Some(DEMO), Some("SANDBOX_NOT_REGISTERED"), None] {
        let mut request = http
            .post(env.operator.notify_url())
            .header(CONTENT_TYPE, JSON_UTF8)
            .body(body.to_vec());
        if let Some(client_id) = client_id {
            let time = signing::now();
            let signature = signing::sign(&forger, "/notify", client_id, &time, body);
            request = request
                .header(signing::CLIENT_ID_HEADER, client_id)
                .header(signing::REQUEST_TIME_HEADER, time)
                .header(signing::SIGNATURE_HEADER, signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        answers.push((client_id, status, response.text().await.unwrap()));
    }
    for (client_id, status, text) in &answers {
        assert_eq!(status.as_u16(), 401, "{client_id:?}: {text}");
        assert_eq!(text, &answers[0].2, "{client_id:?} is told apart");
        assert!(!text.contains(&env.ns), "{client_id:?}: {text}");
    }
}

/// One operator for two teams (`--namespace` twice, as the chart's `watchNamespaces` sets it):
/// both teams' authorizations converge with the token in their own namespace, and the same
/// resources in a namespace outside the list are never looked at (no status, no Secret), so a cluster admin can serve several teams without cluster-wide Secret rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operator_serves_exactly_the_namespaces_it_is_given() {
    let team_b = support::namespace("tenancy-team-b").await;
    let outside = support::namespace("tenancy-outside").await;
    let env = Env::with_args("tenancy-team-a", &[&format!("--namespace={team_b}")]).await;
    let application = support::fixture::example_application(&env.api.endpoint, "1s");
    for ns in [&env.ns, &team_b, &outside] {
        env.cluster.apply_in(ns, &application);
        env.cluster
            .apply_in(ns, &authorization("acme", "demo", ACME));
    }
    env.wait_ready("acqpauth/acme", "False", "AwaitingAuthorization")
        .await;
    env.api
        .sim_ok(
            &format!("/sim/acqp/{ACME}/authorize"),
            &json!({"clientId": DEMO}),
        )
        .await;
    env.wait_ready("acqpauth/acme", "True", "Authorized").await;
    let token = env
        .secret_token("acme-agent-token")
        .expect("team a's token");

    let get = |ns: &str, what: &str| {
        let out = env.cluster.kubectl_in(ns, &["get", what, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    let deadline = Instant::now() + STEP;
    loop {
        let object = get(&team_b, "acqpauth/acme").unwrap();
        let ready = object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "team b's authorization never became Ready: {}\n{}",
            object["status"],
            env.operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secret = get(&team_b, "secret/acme-agent-token").expect("team b's token Secret");
    let held = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["agentToken"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(held).unwrap(), token);

    let ignored = get(&outside, "acqpauth/acme").unwrap();
    assert!(ignored["status"].is_null(), "{ignored}");
    assert!(get(&outside, "secret/acme-agent-token").is_none());
    let app = get(&outside, "dcapp/demo").unwrap();
    assert!(app["status"].is_null(), "{app}");
}
