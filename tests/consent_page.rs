//! The consent page in a real headless Chromium, driven through chromedriver (WebDriver):
//! authorize, skip then authorize, missing terms, and reuse of a completed URL.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`hack/deps`, which `make test`
//! runs, installs them); without them the tests fail and say so.

mod sim_support;

use std::time::Duration;

use acqp_operator::simulator::RunningSimulator;
use fantoccini::Locator;
use serde_json::json;
use sim_support::{browser::Browser, *};

const AUTHORIZE: &str = "button[value=authorize]";
const SKIP: &str = "button[value=skip]";
const TERMS: &str = "#accept-terms";

async fn issue(sim: &RunningSimulator, request_id: &str) -> (Caller, String) {
    let api = Caller::new(sim);
    let answer = api
        .generate(request_id, ACME, &["CashierPayment", "AutoDebit"])
        .await;
    assert_eq!(answer.code(), "SUCCESS", "{answer:?}");
    let url = answer.body["authorizationUrl"].as_str().unwrap().to_owned();
    (api, url)
}

#[tokio::test]
async fn authorize_grants_an_active_record_with_a_token() {
    let sim = start(config()).await;
    let (api, url) = issue(&sim, "chromium-authorize").await;
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.wait_title("Review authorization request").await;
    let text = browser.body_text().await;
    for expected in [
        "ACQP Operator Demo",
        "Acme Acquiring",
        ACME,
        "Cashier Payment",
        "Auto Debit",
    ] {
        assert!(text.contains(expected), "page lacks {expected}: {text}");
    }
    // The checkbox is reachable through its label, as a screen reader would announce it.
    browser.click("label[for=accept-terms]").await;
    assert!(
        browser
            .client
            .find(Locator::Css(TERMS))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap()
    );
    browser.click(AUTHORIZE).await;
    browser.wait_title("Authorized").await;

    let record = api.record(ACME).await.expect("a record after the grant");
    assert_eq!(record["status"], "Active");
    assert_eq!(record["products"], json!(["CashierPayment", "AutoDebit"]));
    assert!(record["agentToken"].as_str().is_some_and(|t| t.len() >= 32));
    browser.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn skip_keeps_the_url_usable() {
    let sim = start(config()).await;
    let (api, url) = issue(&sim, "chromium-skip").await;
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.wait_title("Review authorization request").await;
    // Skip needs no terms: formnovalidate lets it through with the box unchecked.
    browser.click(SKIP).await;
    browser.wait_title("Skipped").await;
    assert!(api.record(ACME).await.is_none());

    browser.click("main a").await;
    browser.wait_title("Review authorization request").await;
    browser.click(TERMS).await;
    browser.click(AUTHORIZE).await;
    browser.wait_title("Authorized").await;
    assert_eq!(api.record(ACME).await.unwrap()["status"], "Active");
    browser.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_terms_block_the_grant_in_the_browser_and_on_the_server() {
    let sim = start(config()).await;
    let (api, url) = issue(&sim, "chromium-terms").await;
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.wait_title("Review authorization request").await;
    browser.click(AUTHORIZE).await;
    // The browser refuses to submit a form whose required box is unchecked: give a submission
    // time to happen, then check nothing navigated and nothing was granted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.wait_title("Review authorization request").await;
    assert_eq!(browser.client.current_url().await.unwrap().as_str(), url);
    let missing = browser
        .client
        .execute(
            "return document.getElementById('accept-terms').validity.valueMissing",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(missing, json!(true));
    assert!(api.record(ACME).await.is_none());

    // A form posted without a browser is refused by the server as well.
    let response = api
        .http
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("decision=authorize")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Accept the terms"));
    assert!(api.record(ACME).await.is_none());
    browser.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_completed_url_says_already_completed() {
    let sim = start(config()).await;
    let (api, url) = issue(&sim, "chromium-reuse").await;
    api.sim_ok(
        &format!("/sim/acqp/{ACME}/authorize"),
        &json!({"clientId": DEMO}),
    )
    .await;
    let token = api.record(ACME).await.unwrap()["agentToken"].clone();

    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.wait_title("Already completed").await;
    assert!(
        browser
            .client
            .find_all(Locator::Css("form"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        api.record(ACME).await.unwrap()["agentToken"],
        token,
        "reopening changes nothing"
    );
    browser.close().await;
    sim.shutdown().await;
}
