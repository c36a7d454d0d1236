//! The simulator over real HTTP on loopback: signed contract calls, the consent flow as plain
//! form posts, notifications, persistence and fault injection.

mod sim_support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use acqp_operator::devcenter::signing::{self, SigningKey, VerifyingKey};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
};
use serde_json::{Value, json};
use sim_support::*;

#[tokio::test]
async fn bad_input_gets_contract_codes_never_a_500() {
    let sim = start(config()).await;
    let api = Caller::new(&sim);

    let malformed = api
        .call_raw(DEMO, GENERATE, b"{\"acquirerId\": ".to_vec())
        .await;
    assert_eq!((malformed.status, malformed.code()), (200, "PARAM_ILLEGAL"));
    let missing_field = api
        .call(
            DEMO,
            GENERATE,
            &json!({"acquirerId": ACME, "products": ["AutoDebit"]}),
        )
        .await;
    assert_eq!(missing_field.code(), "PARAM_ILLEGAL");
    assert!(
        missing_field.message().contains("authorizationRequestId"),
        "{missing_field:?}"
    );
    let unknown_product = api.generate("r", ACME, &["Teleportation"]).await;
    assert_eq!(unknown_product.code(), "PARAM_ILLEGAL");

    let unknown_client = api.call("SANDBOX_NOBODY", APPLICATION, &json!({})).await;
    assert_eq!(unknown_client.code(), "INVALID_CLIENT");
    assert_eq!(unknown_client.result_status(), "F");

    // No headers at all, and a body that does not match its signature.
    let url = format!("{}{APPLICATION}", api.endpoint);
    let unsigned = api.http.post(&url).body("{}").send().await.unwrap();
    let unsigned = api.verify(APPLICATION, unsigned).await;
    assert_eq!(unsigned.code(), "INVALID_SIGNATURE");
    assert!(unsigned.message().contains("Client-Id"), "{unsigned:?}");
    let time = signing::now();
    let signature = signing::sign(&tsp_key(), APPLICATION, DEMO, &time, b"{}");
    let tampered = api
        .http
        .post(&url)
        .header("Client-Id", DEMO)
        .header("Request-Time", &time)
        .header("Signature", &signature)
        .body("{ }")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.verify(APPLICATION, tampered).await.code(),
        "INVALID_SIGNATURE"
    );
    let no_signature = api
        .http
        .post(&url)
        .header("Client-Id", DEMO)
        .header("Request-Time", &time)
        .body("{}");
    let no_signature = api
        .verify(APPLICATION, no_signature.send().await.unwrap())
        .await;
    assert!(
        no_signature.message().contains("Signature"),
        "{no_signature:?}"
    );

    let oversized = api.call_raw(DEMO, GENERATE, vec![b' '; 65 * 1024]).await;
    assert_eq!((oversized.status, oversized.code()), (413, "PARAM_ILLEGAL"));

    let unknown_acquirer = api
        .generate("r", "1022188999999999999", &["CashierPayment"])
        .await;
    assert_eq!(unknown_acquirer.code(), "ACQUIRER_NOT_FOUND");

    let stats = api.stats().await;
    assert_eq!(stats["calls"][GENERATE]["F"], 5, "{stats}");
    assert_eq!(stats["urlsIssued"], 0);
    sim.shutdown().await;
}

/// What the conformance suite (tests/conformance.rs) found the simulator accepting or answering
/// against the contract document, each pinned here.
#[tokio::test]
async fn conformance_findings_stay_fixed() {
    let sim = start(config()).await;
    let api = Caller::new(&sim);
    let url = format!("{}{APPLICATION}", api.endpoint);
    let signed_at = |time: String, client_id: &'static str| {
        let signature = signing::sign(&tsp_key(), APPLICATION, client_id, &time, b"{}");
        api.http
            .post(&url)
            .header("Client-Id", client_id)
            .header("Request-Time", time)
            .header("Signature", signature)
            .body("{}")
            .send()
    };

    // A correctly signed request from ten minutes ago (or ahead) is a replay, not a call.
    let ten_minutes = jiff::SignedDuration::from_mins(10);
    for moment in [
        jiff::Zoned::now().checked_sub(ten_minutes).unwrap(),
        jiff::Zoned::now().checked_add(ten_minutes).unwrap(),
    ] {
        let answer = signed_at(signing::format_time(&moment), DEMO)
            .await
            .unwrap();
        let answer = api.verify(APPLICATION, answer).await;
        assert_eq!(answer.code(), "INVALID_SIGNATURE", "{answer:?}");
        assert!(answer.message().contains("Request-Time"), "{answer:?}");
    }
    let unparsable = api
        .verify(APPLICATION, signed_at("noon".into(), DEMO).await.unwrap())
        .await;
    assert!(
        unparsable.message().contains("not an ISO 8601 time"),
        "{unparsable:?}"
    );

    // serde reads a JSON array as a struct's fields in order; the contract wants objects.
    let positional = api
        .call(
            DEMO,
            GENERATE,
            &json!(["r-array", ACME, ["CashierPayment"]]),
        )
        .await;
    assert_eq!(positional.code(), "PARAM_ILLEGAL", "{positional:?}");
    assert!(
        positional.message().contains("JSON object"),
        "{positional:?}"
    );
    let empty_array = api.call_raw(DEMO, APPLICATION, b"[]".to_vec()).await;
    assert_eq!(empty_array.code(), "PARAM_ILLEGAL");

    // Values outside the documented limits, checked before the role.
    for (client_id, path, body) in [
        (
            DEMO,
            GENERATE,
            json!({"authorizationRequestId": "r".repeat(65), "acquirerId": ACME, "products": ["AutoDebit"]}),
        ),
        (
            VIEWER,
            GENERATE,
            json!({"authorizationRequestId": "r 1", "acquirerId": ACME, "products": ["AutoDebit"]}),
        ),
        (
            DEMO,
            GENERATE,
            json!({"authorizationRequestId": "r1", "acquirerId": "", "products": ["AutoDebit"]}),
        ),
        (
            DEMO,
            INQUIRY,
            json!({"acquirerIds": [], "pageSize": 10, "pageNumber": 1}),
        ),
        (
            DEMO,
            INQUIRY,
            json!({"acquirerName": "", "pageSize": 10, "pageNumber": 1}),
        ),
        (
            VIEWER,
            INQUIRY,
            json!({"pageSize": 10, "pageNumber": 2_147_483_648_u64}),
        ),
    ] {
        let answer = api.call(client_id, path, &body).await;
        assert_eq!(answer.code(), "PARAM_ILLEGAL", "{body}: {answer:?}");
    }
    // Unknown fields and nulls for optional fields are accepted, as the document says.
    let lenient = api
        .call(
            DEMO,
            INQUIRY,
            &json!({"acquirerName": null, "status": null, "future": {"x": 1}, "pageSize": 1, "pageNumber": 1}),
        )
        .await;
    assert_eq!(lenient.code(), "SUCCESS", "{lenient:?}");
    // JSON Schema's `integer` includes 10.0; serde alone refused it as a float.
    let fraction = api
        .call(DEMO, INQUIRY, &json!({"pageSize": 10.0, "pageNumber": 1e0}))
        .await;
    assert_eq!(fraction.code(), "SUCCESS", "{fraction:?}");
    let not_integral = api
        .call(DEMO, INQUIRY, &json!({"pageSize": 10.5, "pageNumber": 1}))
        .await;
    assert_eq!(not_integral.code(), "PARAM_ILLEGAL", "{not_integral:?}");

    // An answer echoes a malformed Client-Id as empty, so its own header stays well-formed.
    let malformed = api
        .verify(
            APPLICATION,
            signed_at(signing::now(), "not a client id").await.unwrap(),
        )
        .await;
    assert_eq!(malformed.code(), "INVALID_SIGNATURE");
    assert!(
        malformed.message().contains("malformed Client-Id"),
        "{malformed:?}"
    );
    sim.shutdown().await;
}

/// `application/inquiry` reports sandbox acceptance from the seed, and `/sim` passes it.
#[tokio::test]
async fn sandbox_acceptance_is_reported_and_can_be_passed() {
    let mut config = config();
    config.applications[0].sandbox_acceptance_passed = false;
    let sim = start(config).await;
    let api = Caller::new(&sim);
    let app = api.call(DEMO, APPLICATION, &json!({})).await;
    assert_eq!(app.code(), "SUCCESS");
    assert_eq!(app.body["sandboxAcceptancePassed"], false);
    let path = format!("/sim/apps/{DEMO}/sandbox-acceptance");
    let answer = api.sim_ok(&path, &json!({"passed": true})).await;
    assert_eq!(answer["sandboxAcceptancePassed"], true);
    let app = api.call(DEMO, APPLICATION, &json!({})).await;
    assert_eq!(app.body["sandboxAcceptancePassed"], true);
    let viewer = api.call(VIEWER, APPLICATION, &json!({})).await;
    assert_eq!(
        viewer.body["sandboxAcceptancePassed"], true,
        "the seed's default"
    );
    let (status, _) = api.sim_post(&path, &json!({"passed": "yes"})).await;
    assert_eq!(status, 400);
    let (status, _) = api
        .sim_post(
            "/sim/apps/NOBODY/sandbox-acceptance",
            &json!({"passed": true}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn roles_integration_and_contract_checks_name_the_problem() {
    let sim = start(config()).await;
    let api = Caller::new(&sim);

    let app = api.call(DEMO, APPLICATION, &json!({})).await;
    assert_eq!(app.code(), "SUCCESS");
    assert_eq!(app.body["role"], "DeveloperAdmin");
    assert_eq!(app.body["environment"], "Sandbox");
    assert_eq!(
        app.body["integratedProducts"],
        json!(["CashierPayment", "AutoDebit", "UserPresentedModePayment"])
    );
    let viewer = api.call(VIEWER, APPLICATION, &json!({})).await;
    assert_eq!(viewer.body["role"], "Developer");

    let body =
        json!({"authorizationRequestId": "v1", "acquirerId": ACME, "products": ["CashierPayment"]});
    let denied = api.call(VIEWER, GENERATE, &body).await;
    assert_eq!(denied.code(), "ACCESS_DENIED");
    assert!(
        denied.message().contains("only a Developer Admin"),
        "{denied:?}"
    );
    let denied = api
        .call(VIEWER, INQUIRY, &json!({"pageSize": 10, "pageNumber": 1}))
        .await;
    assert_eq!(denied.code(), "ACCESS_DENIED");

    let not_integrated = api
        .generate(
            "r1",
            ACME,
            &["CashierPayment", "MerchantPresentedModePayment"],
        )
        .await;
    assert_eq!(not_integrated.code(), "PRODUCT_NOT_INTEGRATED");
    assert!(
        not_integrated
            .message()
            .contains("MerchantPresentedModePayment; add payment products")
    );
    let not_in_contract = api
        .generate("r2", BETA, &["CashierPayment", "AutoDebit"])
        .await;
    assert_eq!(not_in_contract.code(), "PRODUCT_NOT_IN_CONTRACT");
    assert!(
        not_in_contract.message().contains("(Beta Pay): AutoDebit;"),
        "{not_in_contract:?}"
    );

    let too_big = api
        .call(DEMO, INQUIRY, &json!({"pageSize": 101, "pageNumber": 1}))
        .await;
    assert_eq!(too_big.code(), "PARAM_ILLEGAL");
    sim.shutdown().await;
}

#[tokio::test]
async fn consent_flow_over_plain_http_grants_rotates_and_revokes() {
    let sim = start(config()).await;
    let api = Caller::new(&sim);
    let page = |path: &str| api.http.get(format!("{}{path}", api.endpoint)).send();
    let submit = |path: &str, form: &'static str| {
        api.http
            .post(format!("{}{path}", api.endpoint))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };

    let first = api.generate("req-1", ACME, &["CashierPayment"]).await;
    assert_eq!(first.code(), "SUCCESS");
    let url = first.body["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/consent/", sim.public_url())),
        "{url}"
    );
    let again = api.generate("req-1", ACME, &["CashierPayment"]).await;
    assert_eq!(
        (&again.body["authorizationUrl"], &again.body["expiryTime"]),
        (&first.body["authorizationUrl"], &first.body["expiryTime"])
    );
    let inconsistent = api.generate("req-1", ACME, &["AutoDebit"]).await;
    assert_eq!(inconsistent.code(), "REPEAT_REQ_INCONSISTENT");

    let path = consent_path(&url).to_owned();
    let html = page(&path).await.unwrap().text().await.unwrap();
    for expected in [
        "ACQP Operator Demo",
        "Acme Acquiring",
        ACME,
        "Cashier Payment",
        "name=\"acceptTerms\"",
        "required",
    ] {
        assert!(
            html.contains(expected),
            "consent page lacks {expected}: {html}"
        );
    }

    let no_terms = submit(&path, "decision=authorize").await.unwrap();
    assert_eq!(no_terms.status(), StatusCode::BAD_REQUEST);
    assert!(no_terms.text().await.unwrap().contains("<title>Error:"));
    assert!(
        api.record(ACME).await.is_none(),
        "no grant without the terms"
    );

    let skipped = submit(&path, "decision=skip")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(skipped.contains("<title>Skipped"), "{skipped}");
    let authorized = submit(&path, "acceptTerms=true&decision=authorize")
        .await
        .unwrap();
    assert_eq!(authorized.status(), StatusCode::OK);
    assert!(
        authorized
            .text()
            .await
            .unwrap()
            .contains("<title>Authorized")
    );
    let record = api.record(ACME).await.unwrap();
    assert_eq!(
        (&record["status"], &record["products"]),
        (&json!("Active"), &json!(["CashierPayment"]))
    );
    let token1 = record["agentToken"].as_str().unwrap().to_owned();

    let reused = page(&path).await.unwrap().text().await.unwrap();
    assert!(reused.contains("<title>Already completed"), "{reused}");
    let reposted = submit(&path, "acceptTerms=true&decision=authorize")
        .await
        .unwrap();
    assert_eq!(reposted.status(), StatusCode::CONFLICT);

    // Scope grows: a new URL; an older outstanding one is superseded by a newer one.
    let older = api
        .generate("req-2", ACME, &["CashierPayment", "AutoDebit"])
        .await;
    let newer = api
        .generate("req-3", ACME, &["CashierPayment", "AutoDebit"])
        .await;
    let older_path = consent_path(older.body["authorizationUrl"].as_str().unwrap()).to_owned();
    let superseded = page(&older_path).await.unwrap().text().await.unwrap();
    assert!(
        superseded.contains("<title>Superseded by a newer URL"),
        "{superseded}"
    );
    api.sim_ok(
        &format!("/sim/acqp/{ACME}/authorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    let newer_path = consent_path(newer.body["authorizationUrl"].as_str().unwrap()).to_owned();
    assert!(
        page(&newer_path)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("<title>Already completed")
    );
    let record = api.record(ACME).await.unwrap();
    assert_eq!(record["products"], json!(["CashierPayment", "AutoDebit"]));
    assert_ne!(
        record["agentToken"].as_str().unwrap(),
        token1,
        "every grant replaces the token"
    );

    let (status, answer) = api
        .sim_post(&format!("/sim/acqp/{ACME}/deauthorize"), &json!({}))
        .await;
    assert_eq!((status, &answer["deauthorized"]), (200, &json!([DEMO])));
    assert_eq!(api.record(ACME).await.unwrap()["status"], "Inactive");
    let (status, _) = api
        .sim_post(
            &format!("/sim/acqp/{ACME}/authorize"),
            &json!({"clientId": DEMO}),
        )
        .await;
    assert_eq!(status, 409, "nothing outstanding to authorize");

    let stats = api.stats().await;
    assert_eq!(
        (
            &stats["grants"],
            &stats["deauthorizations"],
            &stats["consentSkips"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(stats["urlsIssued"], 3);
    assert_eq!(
        stats["urlsByClientAcquirerProducts"][format!("{DEMO}/{ACME}/CashierPayment")],
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn inquiry_filters_by_name_status_and_paginates() {
    let mut config = config();
    config.acquirer_ranges = serde_json::from_value(json!([
        {"prefix": "1022188100", "count": 150, "namePrefix": "Scale Acquirer", "contractProducts": ["CashierPayment"]}
    ]))
    .unwrap();
    config.auto_grant.enabled = true;
    let sim = start(config).await;
    let api = Caller::new(&sim);
    for i in 1..=150 {
        let answer = api
            .generate(
                &format!("scale-{i}"),
                &format!("1022188100{i:09}"),
                &["CashierPayment"],
            )
            .await;
        assert_eq!(answer.code(), "SUCCESS");
    }
    let generated = api.generate("acme", ACME, &["AutoDebit"]).await;
    assert_eq!(generated.code(), "SUCCESS");
    wait_until(|| async { api.stats().await["grants"] == 151 }).await;
    api.sim_post(
        "/sim/acqp/1022188100000000007/deauthorize",
        &json!({"clientId": DEMO}),
    )
    .await;

    let caller = &api;
    let inquire = |body: Value| async move { caller.call(DEMO, INQUIRY, &body).await };
    let page2 = inquire(json!({"pageSize": 100, "pageNumber": 2})).await;
    assert_eq!(page2.body["totalCount"], 151);
    assert_eq!(page2.body["authorizations"].as_array().unwrap().len(), 51);
    let acme = inquire(json!({"acquirerName": "ACME", "pageSize": 10, "pageNumber": 1})).await;
    assert_eq!(acme.body["authorizations"][0]["acquirerId"], ACME);
    assert_eq!(acme.body["totalCount"], 1);
    let inactive = inquire(json!({"status": "Inactive", "pageSize": 10, "pageNumber": 1})).await;
    assert_eq!(
        inactive.body["authorizations"][0]["acquirerName"],
        "Scale Acquirer 7"
    );
    assert_eq!(inactive.body["totalCount"], 1);
    sim.shutdown().await;
}

/// A notification receiver that fails the first `failures` deliveries, then acknowledges
/// properly, recording every notification whose signature verified.
#[derive(Clone)]
struct Receiver {
    failures: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<Value>>>,
    devcenter: Arc<VerifyingKey>,
    tsp: Arc<SigningKey>,
}

async fn receive(
    State(rx): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    let (client, time) = (header("Client-Id"), header("Request-Time"));
    signing::verify(
        &rx.devcenter,
        "/hooks/devcenter",
        &client,
        &time,
        &body,
        &header("Signature"),
    )
    .expect("notifications are signed by the Developer Center");
    rx.received
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    {
        let mut failures = rx.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            // Alternate between a server error and an unsigned "success", which must not count.
            return if *failures % 2 == 0 {
                (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()
            } else {
                r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#.into_response()
            };
        }
    }
    let ack =
        br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
    let time = signing::now();
    let signature = signing::sign(&rx.tsp, "/hooks/devcenter", &client, &time, ack);
    (
        [
            ("Client-Id", client),
            ("Response-Time", time),
            ("Signature", signature),
        ],
        ack.to_vec(),
    )
        .into_response()
}

#[tokio::test]
async fn notifications_are_signed_retried_until_acknowledged() {
    let rx = Receiver {
        failures: Arc::new(Mutex::new(2)),
        received: Arc::default(),
        devcenter: Arc::new(devcenter_public()),
        tsp: Arc::new(tsp_key()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hooks/devcenter", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hooks/devcenter", post(receive))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = start(config()).await;
    let api = Caller::new(&sim);
    api.sim_ok(
        &format!("/sim/apps/{DEMO}/notify-url"),
        &json!({"url": hook}),
    )
    .await;
    api.generate("n1", BETA, &["CashierPayment"]).await;
    api.sim_post(
        &format!("/sim/acqp/{BETA}/authorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    wait_until(|| async { api.stats().await["notificationsAcked"] == 1 }).await;
    let stats = api.stats().await;
    assert_eq!(
        (&stats["notificationsSent"], &stats["notificationsFailed"]),
        (&json!(3), &json!(0)),
        "{stats}"
    );

    api.sim_post(
        &format!("/sim/acqp/{BETA}/deauthorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    wait_until(|| async { api.stats().await["notificationsAcked"] == 2 }).await;
    let received = rx.received.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0]["notifyType"], "AUTHORIZATION_STATUS_CHANGED");
    assert_eq!(
        (&received[0]["acquirerId"], &received[0]["status"]),
        (&json!(BETA), &json!("Active"))
    );
    assert_eq!(received[3]["status"], "Inactive");
    assert!(
        received.iter().all(|n| n.get("agentToken").is_none()),
        "no token in notifications"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn notifications_give_up_after_the_last_attempt() {
    let mut config = config();
    config.notifications.max_attempts = 3;
    // Nothing listens on port 9 (discard) on loopback, so every attempt fails to connect.
    config.applications[0].notify_url = Some("http://127.0.0.1:9/hooks".into());
    let sim = start(config).await;
    let api = Caller::new(&sim);
    api.generate("g1", BETA, &["CashierPayment"]).await;
    api.sim_post(
        &format!("/sim/acqp/{BETA}/authorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    wait_until(|| async { api.stats().await["notificationsFailed"] == 1 }).await;
    assert_eq!(api.stats().await["notificationsSent"], 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let started = || {
        acqp_operator::simulator::Simulator::new(config())
            .with_state_file(&file)
            .start("127.0.0.1:0".parse().unwrap())
    };

    let sim = started().await.unwrap();
    let api = Caller::new(&sim);
    let issued = api.generate("p1", ACME, &["CashierPayment"]).await;
    api.sim_post(
        &format!("/sim/acqp/{ACME}/authorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    let before = api.record(ACME).await.unwrap();
    sim.shutdown().await;

    let sim = started().await.unwrap();
    let api = Caller::new(&sim);
    assert_eq!(
        api.record(ACME).await.unwrap(),
        before,
        "token and record survive"
    );
    let again = api.generate("p1", ACME, &["CashierPayment"]).await;
    let path = |a: &Answer| consent_path(a.body["authorizationUrl"].as_str().unwrap()).to_owned();
    assert_eq!(path(&again), path(&issued), "idempotency records survive");
    assert_eq!(again.body["expiryTime"], issued.body["expiryTime"]);
    sim.shutdown().await;

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{not json").unwrap();
    let error = acqp_operator::simulator::Simulator::new(config())
        .with_state_file(&corrupt)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .err()
        .expect("a corrupt state file is an error, not a silent fresh start");
    assert!(error.to_string().contains("corrupt.json"), "{error}");
}

/// One contract call's outcome as a label: result status, HTTP 503, or a dropped connection.
async fn outcome(api: &Caller, i: usize) -> String {
    let body = serde_json::to_vec(&json!({"authorizationRequestId": format!("f{i}"), "acquirerId": ACME, "products": ["CashierPayment"]})).unwrap();
    match api.send(DEMO, GENERATE, body).await {
        Err(_) => "dropped".into(),
        Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => "503".into(),
        Ok(response) => {
            let answer = api.verify(GENERATE, response).await;
            format!("{}:{}", answer.result_status(), answer.code())
        }
    }
}

#[tokio::test]
async fn faults_are_reproducible_from_a_seed_and_spare_sim_endpoints() {
    let sim = start(config()).await;
    let api = Caller::new(&sim);
    let faults = json!({"uErrorRate": 0.2, "http5xxRate": 0.2, "throttleRate": 0.1, "dropRate": 0.2, "latencyMs": 1, "seed": 42});
    let mut runs = Vec::new();
    for _ in 0..2 {
        api.sim_ok("/sim/faults", &faults).await;
        let mut run = Vec::new();
        for i in 0..40 {
            run.push(outcome(&api, i).await);
        }
        runs.push(run);
    }
    assert_eq!(runs[0], runs[1], "same seed, same faults");
    for label in [
        "dropped",
        "503",
        "U:UNKNOWN_EXCEPTION",
        "U:REQUEST_TRAFFIC_EXCEED_LIMIT",
        "S:SUCCESS",
    ] {
        assert!(
            runs[0].iter().any(|o| o == label),
            "{label} never happened: {:?}",
            runs[0]
        );
    }
    // A dropped call did its work: retrying with the same request ID gets the same URL back.
    let dropped = runs[0].iter().position(|o| o == "dropped").unwrap();
    let current: Value = api
        .http
        .get(format!("{}/sim/faults", api.endpoint))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["seed"], 42);
    assert!(
        api.stats().await["calls"][GENERATE]["DROPPED"]
            .as_u64()
            .unwrap()
            > 0
    );
    api.sim_post("/sim/faults", &json!({})).await;
    let retried = api
        .generate(&format!("f{dropped}"), ACME, &["CashierPayment"])
        .await;
    assert_eq!(retried.code(), "SUCCESS");
    let counts = &api.stats().await["urlsByClientAcquirerProducts"];
    let issued = counts[format!("{DEMO}/{ACME}/CashierPayment")]
        .as_u64()
        .unwrap();
    let successes = runs[0]
        .iter()
        .filter(|o| *o == "S:SUCCESS" || *o == "dropped")
        .count() as u64;
    assert_eq!(
        issued, successes,
        "a retry of a dropped call issued no second URL"
    );

    let (status, error) = api.sim_post("/sim/faults", &json!({"dropRate": 2.0})).await;
    assert_eq!(status, 400, "{error}");
    sim.shutdown().await;
}

#[tokio::test]
async fn starts_in_well_under_a_second() {
    let begun = std::time::Instant::now();
    let sim = start(config()).await;
    let health = reqwest::get(format!("{}/sim/health", sim.endpoint()))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "took {:?}",
        begun.elapsed()
    );
    sim.shutdown().await;
}

async fn wait_until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}
