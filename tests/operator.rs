//! End to end: the real control plane, the Developer Center simulator and the `acqp-operator`
//! binary, asserting on what a user sees — `kubectl get` status and conditions, `kubectl wait`,
//! Events, the token Secret compared with the simulator's Agent-Token, and the invitation webhook.
//!
//! Every test has its own namespace, simulator and operator (`--namespace`), so they run in
//! parallel without seeing each other. On failure the operator's output, the namespace's
//! resources and Events, and the control plane's log tails are printed. Timings for the issue
//! note are printed as `TIMING ...` lines (visible with `--nocapture`).

mod sim_support;
mod support;

use std::time::{Duration, Instant};

use acqp_operator::devcenter::wire::AgentToken;
use base64::Engine as _;
use serde_json::{Value, json};
use sim_support::{ACME, BETA, DEMO, GENERATE, INQUIRY, VIEWER, browser::Browser};
use support::{
    env::{Env, STEP, condition},
    operator::OperatorOptions,
    text,
};

const GAMMA: &str = "1022188000000000003";

impl Env {
    fn apply_example(&self, name: &str) {
        self.kubectl_ok(&["apply", "-f", &format!("examples/{name}")]);
    }

    /// Fails if an Event about `name` was recorded more than once: Events mark transitions.
    fn assert_events_once(&self, name: &str) {
        for event in self.events(name) {
            let count = event["series"]["count"]
                .as_u64()
                .or(event["count"].as_u64())
                .unwrap_or(1);
            assert!(
                count <= 1,
                "Event {} about {name} was recorded {count} times: {}",
                event["reason"],
                event["message"]
            );
        }
    }

    /// Applies `examples/acme-cashier.yaml`, has Acme authorize it and waits for the token
    /// Secret: the opening of the tests about what follows a grant. Returns the token.
    async fn acme_granted(&self) -> String {
        self.apply_example("acme-cashier.yaml");
        self.wait_url("acme-cashier").await;
        self.authorize(ACME).await;
        let token = self.sim_token(ACME).await;
        self.wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
            .await;
        token
    }

    /// Waits for an Event with `reason` about `name`; returns its message.
    async fn wait_event(&self, name: &str, reason: &str) -> String {
        self.wait_event_with(name, reason, "").await
    }

    /// Waits for an Event with `reason` about `name` whose message contains `text`.
    async fn wait_event_with(&self, name: &str, reason: &str, text: &str) -> String {
        let what = format!("Event {reason} about {name} saying {text:?}");
        self.wait_for(&what, STEP, || {
            let events = self.events(name);
            events
                .iter()
                .filter(|e| e["reason"] == reason)
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .find(|message| message.contains(text))
                .ok_or_else(|| {
                    events
                        .iter()
                        .map(|e| format!("{}: {}", e["reason"], e["message"]))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
        })
        .await
    }

    /// The token under `key` of Secret `name`, decoded.
    fn secret_token(secret: &Value, key: &str) -> String {
        let encoded = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("Secret has no data key {key}: {secret}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    }

    /// The simulator's current Agent-Token for the demo application and `acquirer`.
    async fn sim_token(&self, acquirer: &str) -> String {
        let record = self.api.record(acquirer).await.expect("a record");
        record["agentToken"].as_str().unwrap().to_owned()
    }

    /// The ACQP authorizes the demo application's newest URL (as if it clicked Authorize).
    async fn authorize(&self, acquirer: &str) {
        self.api
            .sim_ok(
                &format!("/sim/acqp/{acquirer}/authorize"),
                &json!({"clientId": DEMO}),
            )
            .await;
    }

    async fn deauthorize(&self, acquirer: &str) {
        self.api
            .sim_ok(
                &format!("/sim/acqp/{acquirer}/deauthorize"),
                &json!({"clientId": DEMO}),
            )
            .await;
    }

    /// How many URLs the simulator issued to the demo application for `acquirer` and `products`
    /// (comma-separated, in the simulator's order).
    async fn url_count(&self, acquirer: &str, products: &str) -> u64 {
        let stats = self.api.stats().await;
        stats["urlsByClientAcquirerProducts"][format!("{DEMO}/{acquirer}/{products}")]
            .as_u64()
            .unwrap_or(0)
    }

    /// Calls the simulator answered for `path`, all outcomes together.
    async fn calls(&self, path: &str) -> u64 {
        let stats = self.api.stats().await;
        stats["calls"][path].as_object().map_or(0, |outcomes| {
            outcomes.values().filter_map(Value::as_u64).sum()
        })
    }

    async fn set_faults(&self, faults: Value) {
        self.api.sim_ok("/sim/faults", &faults).await;
    }

    /// Waits for `status.authorizationUrl` of acqpauth `name`; returns the object.
    async fn wait_url(&self, name: &str) -> Value {
        let what = format!("acqpauth/{name}");
        self.wait_for(
            &format!("{what} to show an authorization URL"),
            STEP,
            || {
                let object = self.get(&what).ok_or("not found")?;
                if object["status"]["authorizationUrl"].is_string() {
                    Ok(object)
                } else {
                    Err(serde_json::to_string(&object["status"]).unwrap())
                }
            },
        )
        .await
    }

    /// Waits until Secret `name` holds `token` with `revision`; returns the Secret.
    async fn wait_secret(&self, name: &str, key: &str, token: &str, revision: &str) -> Value {
        let what = format!("secret/{name}");
        self.wait_for(
            &format!("{what} to hold the token of revision {revision}"),
            STEP,
            || {
                let secret = self.get(&what).ok_or("not found")?;
                let held =
                    secret["data"][key].is_string() && Self::secret_token(&secret, key) == token;
                let annotations = &secret["metadata"]["annotations"];
                if held && annotations["acqp-operator.io/token-revision"] == revision {
                    Ok(secret)
                } else {
                    Err(format!("annotations {annotations}, token matches: {held}"))
                }
            },
        )
        .await
    }
}

fn condition_types(object: &Value) -> Vec<String> {
    object["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["type"].as_str().unwrap(),
                        c["status"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reasons(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ")
}

fn timing(what: &str, elapsed: Duration) {
    eprintln!("TIMING {what}: {} ms", elapsed.as_millis());
}

/// The whole life cycle of `examples/acme-cashier.yaml`: URL, consent in Chromium, Ready, the
/// Secret, a product added (ScopeChangePending, then rotation), revocation; and the Agent-Token
/// never shows up in the operator's debug logs, in Events or in status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_from_invitation_to_revocation() {
    let options = OperatorOptions {
        rust_log: Some("debug".into()),
        ..Default::default()
    };
    let sim = sim_support::start(sim_support::config()).await;
    let mut env = Env::with("life-cycle", sim, options).await;
    env.apply_application("5s");
    env.wait_condition("dcapp/demo", "Ready", "True", "Connected")
        .await;

    // Applied → a URL in status, AwaitingAuthorization, Reconciling.
    let applied = Instant::now();
    env.apply_example("acme-cashier.yaml");
    let object = env.wait_url("acme-cashier").await;
    timing(
        "kubectl apply to URL in status (application Ready)",
        applied.elapsed(),
    );
    let status = &object["status"];
    assert_eq!(status["phase"], "AwaitingAuthorization", "{status}");
    assert_eq!(status["requestedProducts"], json!(["CashierPayment"]));
    let ready = condition(&object, "Ready").unwrap();
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("AwaitingAuthorization"))
    );
    assert_eq!(condition(&object, "Reconciling").unwrap()["status"], "True");
    assert!(condition(&object, "Stalled").is_none(), "{status}");
    let url = status["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&env.api.endpoint), "{url}");
    let issued = env.wait_event("acme-cashier", "UrlIssued").await;
    assert!(
        issued.contains(&url),
        "the UrlIssued Event carries the URL: {issued}"
    );

    // Not Ready before the grant: kubectl wait times out.
    let early = env
        .kubectl_async(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=3s",
            "acqpauth/acme-cashier",
        ])
        .await;
    assert!(
        !early.status.success(),
        "Ready before any grant: {}",
        text(&early)
    );

    // The ACQP opens the URL in a browser and authorizes.
    let browser = Browser::start().await;
    browser.authorize(&url).await;
    let granted = Instant::now();
    let waited = env
        .kubectl_async(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "acqpauth/acme-cashier",
        ])
        .await;
    assert!(waited.status.success(), "kubectl wait: {}", text(&waited));
    drop(browser);
    let token = env.sim_token(ACME).await;
    let secret = env
        .wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
        .await;
    timing(
        "grant to Secret, polling every 5s (consent page)",
        granted.elapsed(),
    );

    let object = env.get("acqpauth/acme-cashier").unwrap();
    let status = &object["status"];
    assert_eq!(status["phase"], "Active");
    assert_eq!(status["tokenRevision"], 1);
    assert_eq!(status["authorizedProducts"], json!(["CashierPayment"]));
    assert!(
        status["authorizationUrl"].is_null(),
        "URL cleared once used: {status}"
    );
    assert_eq!(condition_types(&object), ["Ready=True"]);
    let fingerprint = AgentToken::new(token.clone()).fingerprint();
    assert_eq!(status["tokenFingerprint"], fingerprint.as_str());
    let meta = &secret["metadata"];
    assert_eq!(
        meta["labels"]["app.kubernetes.io/managed-by"],
        "acqp-operator"
    );
    assert_eq!(
        meta["annotations"]["acqp-operator.io/token-fingerprint"],
        fingerprint.as_str()
    );
    assert_eq!(meta["annotations"]["acqp-operator.io/acqp-id"], ACME);
    assert_eq!(
        meta["annotations"]["acqp-operator.io/products"],
        "CashierPayment"
    );
    assert_eq!(secret["type"], "Opaque");
    let owners = meta["ownerReferences"].as_array().expect("ownerReferences");
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0]["kind"], "AcqpAuthorization");
    assert_eq!(owners[0]["name"], "acme-cashier");
    assert_eq!(owners[0]["uid"], object["metadata"]["uid"]);
    assert_eq!(owners[0]["controller"], true);
    env.wait_event("acme-cashier", "Authorized").await;

    // A hand edit of the token is repaired, with a Warning Event.
    let tampered = base64::engine::general_purpose::STANDARD.encode("tampered");
    env.kubectl_ok(&[
        "patch",
        "secret/acme-cashier-agent-token",
        "--type=merge",
        "-p",
        &format!(r#"{{"data":{{"agentToken":"{tampered}"}}}}"#),
    ]);
    env.wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
        .await;
    let repaired = env.wait_event("acme-cashier", "SecretRepaired").await;
    assert!(repaired.contains("acme-cashier-agent-token"), "{repaired}");

    // A product added: a new URL for both, the old token stays until the ACQP re-authorizes.
    env.kubectl_ok(&[
        "patch",
        "acqpauth/acme-cashier",
        "--type=merge",
        "-p",
        r#"{"spec":{"products":["CashierPayment","AutoDebit"]}}"#,
    ]);
    let object = env
        .wait_condition(
            "acqpauth/acme-cashier",
            "Ready",
            "False",
            "ScopeChangePending",
        )
        .await;
    let status = &object["status"];
    assert_eq!(status["phase"], "AwaitingAuthorization", "{status}");
    assert!(
        status["authorizationUrl"].is_string(),
        "a new URL: {status}"
    );
    assert_ne!(status["authorizationUrl"], url.as_str());
    let new_url = status["authorizationUrl"].as_str().unwrap();
    env.wait_event_with("acme-cashier", "UrlIssued", new_url)
        .await;
    assert_eq!(condition(&object, "Reconciling").unwrap()["status"], "True");
    let message = condition(&object, "Ready").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("AutoDebit"), "{message}");
    let secret = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(
        Env::secret_token(&secret, "agentToken"),
        token,
        "old token kept meanwhile"
    );

    env.authorize(ACME).await;
    let rotated_grant = Instant::now();
    let new_token = env.sim_token(ACME).await;
    assert_ne!(
        new_token, token,
        "re-authorization issues a new Agent-Token"
    );
    let secret = env
        .wait_secret("acme-cashier-agent-token", "agentToken", &new_token, "2")
        .await;
    timing(
        "grant to Secret, polling every 5s (rotation)",
        rotated_grant.elapsed(),
    );
    assert_eq!(
        secret["metadata"]["annotations"]["acqp-operator.io/products"],
        "CashierPayment,AutoDebit"
    );
    let object = env
        .wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    assert_eq!(object["status"]["tokenRevision"], 2);
    let rotated = env.wait_event("acme-cashier", "TokenRotated").await;
    assert!(rotated.contains("revision 2"), "{rotated}");
    let metrics = env.operator.metrics().await;
    for line in [
        "acqp_operator_token_rotations_total 1",
        "acqp_operator_grant_latency_seconds_count 2",
        r#"acqp_operator_authorizations{phase="Active"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }

    // The ACQP cancels: Revoked, Stalled, not Ready.
    env.deauthorize(ACME).await;
    let object = env
        .wait_condition("acqpauth/acme-cashier", "Stalled", "True", "Revoked")
        .await;
    assert_eq!(object["status"]["phase"], "Revoked");
    assert_eq!(condition(&object, "Ready").unwrap()["status"], "False");
    assert!(condition(&object, "Reconciling").is_none());
    env.wait_event("acme-cashier", "Revoked").await;

    env.assert_events_once("acme-cashier");

    // SIGTERM: a clean exit.
    let exit = env.operator.stop().await;
    assert!(exit.success(), "exit status {exit}");

    // The token is nowhere but in the Secret's data.
    let logs = env.operator.logs();
    assert!(
        logs.lines().count() > 50,
        "debug logs were captured:\n{logs}"
    );
    let events = env.kubectl_ok(&["get", "events", "-o", "json"]);
    let resources = env.kubectl_ok(&["get", "acqpauth,dcapp", "-o", "json"]);
    for (what, secret) in [("first", &token), ("second", &new_token)] {
        assert!(
            !logs.contains(secret.as_str()),
            "the {what} token is in the operator's logs"
        );
        assert!(
            !events.contains(secret.as_str()),
            "the {what} token is in an Event"
        );
        assert!(
            !resources.contains(secret.as_str()),
            "the {what} token is in a status"
        );
    }
}

/// What admission cannot catch ends Stalled with a message that says what to do: a product the
/// application has not integrated, a product outside the ACQP's contract, and credentials of a
/// plain Developer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_stall_with_what_to_do() {
    let env = Env::new("refusals").await;
    env.apply_application("5s");
    env.apply(&format!(
        r#"
apiVersion: acqp-operator.io/v1alpha1
kind: DeveloperCenterApplication
metadata:
  name: viewer
spec:
  environment: Sandbox
  endpoint: {endpoint}
  clientId: {VIEWER}
  credentialsSecretRef:
    name: demo-credentials
---
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: not-integrated
spec:
  applicationRef: {{name: demo}}
  acqp: {{id: "{ACME}", name: Acme Acquiring}}
  products: [CashierPayment, MerchantPresentedModePayment]
---
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: not-in-contract
spec:
  applicationRef: {{name: demo}}
  acqp: {{id: "{BETA}", name: Beta Pay}}
  products: [CashierPayment, AutoDebit]
---
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: viewer-acme
spec:
  applicationRef: {{name: viewer}}
  acqp: {{id: "{ACME}"}}
  products: [CashierPayment]
"#,
        endpoint = env.api.endpoint
    ));

    let object = env
        .wait_condition(
            "acqpauth/not-integrated",
            "Stalled",
            "True",
            "ProductsNotIntegrated",
        )
        .await;
    assert_eq!(object["status"]["phase"], "Error");
    assert_eq!(condition(&object, "Ready").unwrap()["status"], "False");
    assert!(condition(&object, "Reconciling").is_none());
    let message = condition(&object, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("MerchantPresentedModePayment"),
        "{message}"
    );
    assert!(message.contains("add the payment products"), "{message}");
    let event = env
        .wait_event("not-integrated", "ProductsNotIntegrated")
        .await;
    assert!(event.contains("add the payment products"), "{event}");

    let object = env
        .wait_condition(
            "acqpauth/not-in-contract",
            "Stalled",
            "True",
            "ProductsNotInContract",
        )
        .await;
    let message = condition(&object, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("contract"), "{message}");
    assert!(
        message.contains("remove them from spec.products"),
        "{message}"
    );
    assert!(object["status"]["authorizationUrl"].is_null());
    env.wait_event("not-in-contract", "ProductsNotInContract")
        .await;

    let app = env
        .wait_condition("dcapp/viewer", "Ready", "False", "PermissionDenied")
        .await;
    let message = condition(&app, "Ready").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("Developer Admin"), "{message}");
    assert_eq!(app["status"]["role"], "Developer");
    let object = env
        .wait_condition(
            "acqpauth/viewer-acme",
            "Stalled",
            "True",
            "PermissionDenied",
        )
        .await;
    let message = condition(&object, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("use a Developer Admin's keys"),
        "{message}"
    );

    // None of them got a URL, and each said so once.
    let stats = env.api.stats().await;
    assert_eq!(stats["urlsIssued"], 0, "{stats}");
    for name in ["not-integrated", "not-in-contract", "viewer-acme"] {
        env.assert_events_once(name);
    }
}

/// A Secret with the target name that the operator does not own — even one carrying the
/// operator's label — is reported as SecretConflict and never touched, grant or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_secret_is_left_untouched() {
    let env = Env::new("secret-conflict").await;
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: acme-cashier-agent-token
  labels:
    app.kubernetes.io/managed-by: acqp-operator
    team: someone-else
type: Opaque
stringData:
  agentToken: not-yours
  other: keep-me
"#,
    );
    let before = env.get("secret/acme-cashier-agent-token").unwrap();
    env.apply_application("5s");
    env.apply_example("acme-cashier.yaml");
    let object = env
        .wait_condition("acqpauth/acme-cashier", "Stalled", "True", "SecretConflict")
        .await;
    assert_eq!(object["status"]["phase"], "Error");
    let message = condition(&object, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("acme-cashier-agent-token"), "{message}");
    assert!(message.contains("spec.tokenSecret.name"), "{message}");
    env.wait_event("acme-cashier", "SecretConflict").await;

    // Even with an authorization at the Developer Center, the Secret stays as it was. The
    // operator notices the grant at its next poll (5 s); the resource is reconciled by then.
    let answer = env
        .api
        .generate("outside-request", ACME, &["CashierPayment"])
        .await;
    assert_eq!(answer.code(), "SUCCESS", "{answer:?}");
    env.authorize(ACME).await;
    let polls = env.calls(INQUIRY).await;
    let e = &env;
    env.wait_async(
        "two more polls of the Developer Center",
        STEP,
        move || async move {
            let now = e.calls(INQUIRY).await;
            if now >= polls + 2 {
                Ok(())
            } else {
                Err(format!("{now} inquiries"))
            }
        },
    )
    .await;
    env.wait_condition("acqpauth/acme-cashier", "Stalled", "True", "SecretConflict")
        .await;
    let after = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["data"], before["data"]);
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    assert!(after["metadata"]["ownerReferences"].is_null());
}

/// The token Secret replaced while the operator was away by one it does not own (and that its
/// label-selected cache therefore never shows): the operator's write is a create, which fails
/// because a Secret exists, so it looks again and reports SecretConflict instead of taking the
/// Secret over (writing the token into it, owning it, and deleting it with the resource).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_token_secret_is_not_taken_over() {
    let mut env = Env::new("secret-replaced").await;
    env.apply_application("5s");
    env.acme_granted().await;

    env.operator.kill();
    env.kubectl_ok(&["delete", "secret", "acme-cashier-agent-token"]);
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: acme-cashier-agent-token
  labels:
    team: someone-else
type: Opaque
stringData:
  agentToken: not-yours
"#,
    );
    let before = env.get("secret/acme-cashier-agent-token").unwrap();
    env.start_operator().await;

    let object = env
        .wait_condition("acqpauth/acme-cashier", "Stalled", "True", "SecretConflict")
        .await;
    let message = condition(&object, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("acme-cashier-agent-token"), "{message}");
    let after = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "the foreign Secret was written"
    );
    assert!(after["metadata"]["ownerReferences"].is_null(), "{after}");

    // Deleting the resource leaves the foreign Secret where it is.
    env.kubectl_ok(&["delete", "acqpauth", "acme-cashier", "--timeout=60s"]);
    let kept = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(kept["data"], before["data"]);
}

/// A Secret deleted by hand comes back with the Developer Center's token at once (its watch
/// wakes the resource; no poll or resync is waited for), with a Warning Event, and without a new
/// URL or a new token revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_deleted_by_hand_is_restored_promptly() {
    let env = Env::new("secret-deleted").await;
    env.api
        .sim_ok(
            &format!("/sim/apps/{DEMO}/notify-url"),
            &json!({"url": env.operator.notify_url()}),
        )
        .await;
    // A poll interval far beyond the test: only the Secret's watch can bring it back in time.
    env.apply_application("10m");
    env.wait_condition("dcapp/demo", "Ready", "True", "Connected")
        .await;
    // The grant arrives by notification: no poll is waited for here either.
    let token = env.acme_granted().await;
    let urls = env.url_count(ACME, "CashierPayment").await;

    let deleted = Instant::now();
    env.kubectl_ok(&["delete", "secret", "acme-cashier-agent-token"]);
    env.wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
        .await;
    timing("Secret deleted by hand to restored", deleted.elapsed());
    let repaired = env
        .wait_event_with("acme-cashier", "SecretRepaired", "deleted")
        .await;
    assert!(repaired.contains("acme-cashier-agent-token"), "{repaired}");
    let object = env
        .wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    assert_eq!(
        object["status"]["tokenRevision"], 1,
        "a repair is no rotation"
    );
    assert_eq!(
        env.url_count(ACME, "CashierPayment").await,
        urls,
        "no new URL"
    );
}

/// A platform team rebuilds a cluster and applies the same YAML against the same Developer
/// Center: the ACQP's grant is still Active there, so the new resource takes it over — the token
/// Secret is written from the Developer Center's record, no URL is issued and no one is asked to
/// authorize again. What a new cluster changes for the operator is that it has never seen the
/// resource, its status or its Secret: here a namespace no operator has served and a fresh
/// operator process for it, after the old cluster's operator is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_adopts_the_active_grant_without_a_url() {
    let mut env = Env::new("old-cluster").await;
    env.apply_application("5s");
    let token = env.acme_granted().await;
    let urls = env.url_count(ACME, "CashierPayment").await;
    env.operator.kill();
    env.ns = support::namespace("new-cluster").await;
    env.options.namespace = Some(env.ns.clone());
    env.start_operator().await;
    let applied = Instant::now();
    env.apply_application("5s");
    env.apply_example("acme-cashier.yaml");
    let object = env
        .wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    timing("same YAML in a new cluster to Ready", applied.elapsed());
    let status = &object["status"];
    assert_eq!(status["phase"], "Active", "{status}");
    assert!(status["authorizationUrl"].is_null(), "{status}");
    assert_eq!(status["authorizedProducts"], json!(["CashierPayment"]));
    env.wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
        .await;
    assert_eq!(
        env.url_count(ACME, "CashierPayment").await,
        urls,
        "no new URL"
    );
    let reasons = reasons(&env.events("acme-cashier"));
    assert!(!reasons.contains("UrlIssued"), "{reasons}");
}

/// Two AcqpAuthorizations of one application on the same ACQP: the newer is DuplicateAcqp (even
/// though its name sorts first), the older proceeds, and only one URL is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_claim_on_an_acqp_is_duplicate() {
    let env = Env::new("duplicate").await;
    env.apply_application("5s");
    env.apply_example("acme-cashier.yaml");
    let older = env.wait_url("acme-cashier").await;
    // creationTimestamp has one-second resolution: let the clock pass the older one's second.
    let created: jiff::Timestamp = older["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    env.wait_for("the next second", Duration::from_secs(3), || {
        if jiff::Timestamp::now().as_second() > created.as_second() {
            Ok(())
        } else {
            Err("same second".into())
        }
    })
    .await;
    env.apply(&format!(
        r#"
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: a-newer-claim
spec:
  applicationRef: {{name: demo}}
  acqp: {{id: "{ACME}"}}
  products: [CashierPayment, AutoDebit]
"#
    ));
    let newer = env
        .wait_condition("acqpauth/a-newer-claim", "Stalled", "True", "DuplicateAcqp")
        .await;
    let message = condition(&newer, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("acme-cashier"), "{message}");
    assert!(newer["status"]["authorizationUrl"].is_null());
    env.wait_event("a-newer-claim", "DuplicateAcqp").await;

    let older = env.get("acqpauth/acme-cashier").unwrap();
    assert_eq!(
        condition(&older, "Ready").unwrap()["reason"],
        "AwaitingAuthorization"
    );
    assert!(condition(&older, "Stalled").is_none());
    assert_eq!(env.url_count(ACME, "CashierPayment").await, 1);
    assert_eq!(env.url_count(ACME, "CashierPayment,AutoDebit").await, 0);
    assert_eq!(env.api.stats().await["urlsIssued"], 1);
    env.assert_events_once("a-newer-claim");
    env.assert_events_once("acme-cashier");
}

/// The operator dies after the Developer Center issued a URL but before the URL reached the
/// status. Its successor asks again with the same idempotency key and gets the same URL: the
/// simulator's stats show one URL, and the resource converges to Ready after the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_url_and_status_issues_no_second_url() {
    let mut env = Env::new("crash").await;
    env.apply_application("10m");
    env.wait_condition("dcapp/demo", "Ready", "True", "Connected")
        .await;
    let e = &env;
    env.wait_async(
        "the first list of authorizations",
        STEP,
        move || async move {
            let n = e.calls(INQUIRY).await;
            if n >= 1 {
                Ok(())
            } else {
                Err("no inquiry yet".into())
            }
        },
    )
    .await;
    // Every call is carried out, then its connection dropped before the answer.
    env.set_faults(json!({"dropRate": 1.0})).await;
    env.apply_example("acme-cashier.yaml");
    let e = &env;
    env.wait_async("a URL issued at the simulator", STEP, move || async move {
        let stats = e.api.stats().await;
        if stats["urlsIssued"] == 1 {
            Ok(())
        } else {
            Err(stats.to_string())
        }
    })
    .await;
    let object = env.get("acqpauth/acme-cashier").unwrap();
    assert!(
        object["status"]["authorizationUrl"].is_null(),
        "the URL must not have reached the status yet: {}",
        object["status"]
    );
    env.restart_operator().await;
    env.set_faults(json!({})).await;

    let object = env.wait_url("acme-cashier").await;
    assert_eq!(
        env.url_count(ACME, "CashierPayment").await,
        1,
        "no second URL"
    );
    assert_eq!(env.api.stats().await["urlsIssued"], 1);
    let dropped = &env.api.stats().await["calls"][GENERATE];
    assert!(dropped["DROPPED"].as_u64().unwrap_or(0) >= 1, "{dropped}");
    let events = env.events("acme-cashier");
    let issued: Vec<_> = events
        .iter()
        .filter(|e| e["reason"] == "UrlIssued")
        .collect();
    assert!(!issued.is_empty(), "{}", reasons(&events));
    assert!(object["status"]["authorizationUrl"].is_string());

    // Converges: the grant (seen at the next poll, 10 min away, so through a notification).
    env.api
        .sim_ok(
            &format!("/sim/apps/{DEMO}/notify-url"),
            &json!({"url": env.operator.notify_url()}),
        )
        .await;
    env.authorize(ACME).await;
    let token = env.sim_token(ACME).await;
    env.wait_secret("acme-cashier-agent-token", "agentToken", &token, "1")
        .await;
    env.wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    assert_eq!(env.url_count(ACME, "CashierPayment").await, 1);
    env.assert_events_once("acme-cashier");
}

/// With a 10-minute poll interval, a grant still reaches the Secret within seconds because the
/// Developer Center's signed notification triggers a refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_delivers_a_grant_long_before_the_next_poll() {
    let env = Env::new("notify").await;
    env.api
        .sim_ok(
            &format!("/sim/apps/{DEMO}/notify-url"),
            &json!({"url": env.operator.notify_url()}),
        )
        .await;
    // Application and authorization applied together, as a user would.
    let applied = Instant::now();
    env.apply_application("10m");
    env.apply_example("acme-cashier.yaml");
    env.wait_url("acme-cashier").await;
    timing(
        "kubectl apply (application and authorization together) to URL in status",
        applied.elapsed(),
    );
    let inquiries = env.calls(INQUIRY).await;

    env.authorize(ACME).await;
    let granted = Instant::now();
    let token = env.sim_token(ACME).await;
    let secret = env
        .wait_for(
            "the Secret within 10 s of the grant",
            Duration::from_secs(10),
            || {
                let secret = env
                    .get("secret/acme-cashier-agent-token")
                    .ok_or("no Secret")?;
                if Env::secret_token(&secret, "agentToken") == token {
                    Ok(secret)
                } else {
                    Err("old data".into())
                }
            },
        )
        .await;
    timing(
        "grant to Secret with notifications (poll interval 10m)",
        granted.elapsed(),
    );
    assert_eq!(
        secret["metadata"]["annotations"]["acqp-operator.io/token-revision"],
        "1"
    );
    env.wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    let stats = env.api.stats().await;
    assert!(
        stats["notificationsAcked"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    // One list per notification, not a call per resource.
    let after = env.calls(INQUIRY).await;
    assert!(
        after > inquiries && after <= inquiries + 3,
        "{inquiries} → {after} inquiries"
    );

    // A forged notification (signed with the wrong key) is refused and changes nothing.
    let forged = env
        .api
        .http
        .post(env.operator.notify_url())
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("Client-Id", DEMO)
        .header("Request-Time", "2026-11-27T00:00:00Z")
        .header("Signature", "algorithm=RSA256,keyVersion=1,signature=Zm9yZ2Vk")
        .body(r#"{"notifyType":"AUTHORIZATION_STATUS_CHANGED","acquirerId":"1022188000000000001","status":"Inactive","updateTime":"2026-11-27T00:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let metrics = env.operator.metrics().await;
    assert!(metrics.contains("acqp_operator_"), "{metrics}");
    env.assert_events_once("acme-cashier");
}

/// deletionPolicy Delete leaves the Secret to the garbage collector (a controller owner reference,
/// no finalizer, so deletion never waits on the operator; the collector's part runs on the real
/// node in `tests/node.rs`), Retain holds the resource with a finalizer until the Secret is
/// released, and both deletions complete while the Developer Center is down. A finalizer left
/// on a Delete resource (by an older operator, or while it was Retain) is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_honours_the_policy_while_the_developer_center_is_down() {
    let mut env = Env::new("deletion").await;
    env.apply_application("2s");
    env.apply_example("acme-cashier.yaml");
    env.apply_example("gamma-several-products.yaml");
    env.wait_url("acme-cashier").await;
    env.wait_url("gamma").await;
    env.authorize(ACME).await;
    env.authorize(GAMMA).await;
    let acme = env
        .wait_condition("acqpauth/acme-cashier", "Ready", "True", "Authorized")
        .await;
    let gamma = env
        .wait_condition("acqpauth/gamma", "Ready", "True", "Authorized")
        .await;
    assert!(
        acme["metadata"]["finalizers"].is_null(),
        "{}",
        acme["metadata"]
    );
    assert_eq!(
        gamma["metadata"]["finalizers"],
        json!(["acqp-operator.io/token-secret"])
    );
    let gamma_secret = env.get("secret/gamma-agent-token").unwrap();
    assert!(gamma_secret["data"]["token"].is_string());
    let acme_secret = env.get("secret/acme-cashier-agent-token").unwrap();
    let owner = &acme_secret["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], acme["metadata"]["uid"], "{owner}");
    assert_eq!(owner["controller"], true, "{owner}");

    env.kubectl_ok(&[
        "patch",
        "acqpauth/acme-cashier",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["acqp-operator.io/token-secret"]}}"#,
    ]);
    env.wait_for("the finalizer removed from a Delete resource", STEP, || {
        let object = env.object("acqpauth/acme-cashier");
        match &object["metadata"]["finalizers"] {
            Value::Null => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;

    env.sim.take().unwrap().shutdown().await;
    env.wait_condition("dcapp/demo", "Ready", "False", "DevCenterUnavailable")
        .await;

    let deleted = env
        .kubectl_async(&["delete", "acqpauth/acme-cashier", "--timeout=30s"])
        .await;
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(env.get("acqpauth/acme-cashier").is_none());

    let deleted = env
        .kubectl_async(&["delete", "acqpauth/gamma", "--timeout=30s"])
        .await;
    assert!(deleted.status.success(), "{}", text(&deleted));
    let kept = env
        .get("secret/gamma-agent-token")
        .expect("Retain keeps the Secret");
    assert!(
        kept["metadata"]["ownerReferences"].is_null(),
        "{}",
        kept["metadata"]
    );
    assert_eq!(kept["data"], gamma_secret["data"]);
}

/// `spec.invitation.webhook`: each URL is POSTed once (retried after a failure) with the ACQP,
/// the products, the URL and its expiry; a product added posts the new URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_webhook_receives_each_url_once() {
    use std::sync::{Arc, Mutex};
    /// Every POST the receiver got: the HTTP status it answered and the JSON body.
    type Received = Arc<Mutex<Vec<(u16, Value)>>>;
    let env = Env::new("webhook").await;
    // The receiver fails its first request, so delivery must retry.
    let received: Received = Arc::default();
    let router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(received): axum::extract::State<Received>,
                 axum::Json(body): axum::Json<Value>| async move {
                    let mut received = received.lock().unwrap();
                    let status = if received.is_empty() { 500 } else { 200 };
                    received.push((status, body));
                    axum::http::StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    env.apply_application("5s");
    env.apply(&format!(
        r#"
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: acme-hooked
spec:
  applicationRef: {{name: demo}}
  acqp: {{id: "{ACME}", name: Acme Acquiring}}
  products: [CashierPayment]
  invitation:
    webhook:
      url: {hook}
"#
    ));
    let object = env.wait_url("acme-hooked").await;
    let first_url = object["status"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivered = |url: &str| {
        let received = received.lock().unwrap();
        let posts: Vec<(u16, Value)> = received
            .iter()
            .filter(|(_, body)| body["authorizationUrl"] == url)
            .cloned()
            .collect();
        posts
    };
    let posts = env
        .wait_for("the webhook to accept the first URL", STEP, || {
            let posts = delivered(&first_url);
            if posts.iter().any(|(status, _)| *status == 200) {
                Ok(posts)
            } else {
                Err(format!("{:?}", received.lock().unwrap()))
            }
        })
        .await;
    assert_eq!(
        posts.len(),
        2,
        "one failed attempt, one delivery: {posts:?}"
    );
    let body = &posts[1].1;
    assert_eq!(body["acqp"]["id"], ACME);
    assert_eq!(body["acqp"]["name"], "Acme Acquiring");
    assert_eq!(body["products"], json!(["CashierPayment"]));
    // Status keeps whole seconds (metav1.Time); the webhook gets the Developer Center's value.
    let at = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let skew =
        at(&body["expiresAt"]).duration_since(at(&object["status"]["authorizationUrlExpiresAt"]));
    assert!(skew.abs() < jiff::SignedDuration::from_secs(1), "{body}");

    env.kubectl_ok(&[
        "patch",
        "acqpauth/acme-hooked",
        "--type=merge",
        "-p",
        r#"{"spec":{"products":["CashierPayment","AutoDebit"]}}"#,
    ]);
    let second_url = env
        .wait_for("a second URL", STEP, || {
            let object = env.get("acqpauth/acme-hooked").ok_or("gone")?;
            match object["status"]["authorizationUrl"].as_str() {
                Some(url) if url != first_url => Ok(url.to_owned()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    let posts = env
        .wait_for("the webhook to receive the second URL", STEP, || {
            let posts = delivered(&second_url);
            if posts.is_empty() {
                Err(format!("{:?}", received.lock().unwrap()))
            } else {
                Ok(posts)
            }
        })
        .await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].0, 200);
    let products = posts[0].1["products"].as_array().unwrap().clone();
    assert_eq!(products.len(), 2, "{products:?}");
    assert_eq!(
        delivered(&first_url).len(),
        2,
        "the first URL was not sent again"
    );
    env.assert_events_once("acme-hooked");
}
