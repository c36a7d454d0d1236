//! Hostile and bad input at the operator's boundaries (issue 9), each case with the clear error
//! it must produce and a check that nothing was lost or changed:
//!
//! - Developer Center responses: malformed, huge, endless, missing headers, unsigned, signed
//!   with another key, replayed (old, or recorded for another call), tampered, slow. Served by
//!   small fake servers, or by a proxy in front of the simulator, over real HTTP on loopback.
//! - Notifications: captured from the simulator and then altered, redirected, stripped, forged,
//!   aged; and sent to the real operator's endpoint forged, or byte by byte.
//! - Credentials Secrets: missing, incomplete, malformed, a wrong key, a key for another client,
//!   the wrong public key; and credentials broken under a granted authorization (the token stays).
//!
//! The last two groups run the real `acqp-operator run` against this binary's control plane.
//! The notification endpoint's limits (oversized and slow bodies, idle connections, floods) are
//! tested with small limits next to the code, in `src/controller/notify.rs`.

mod sim_support;
mod support;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use acqp_operator::{
    api::Product,
    devcenter::{
        ClientConfig, DevCenterClient, Error, MAX_RESPONSE_BYTES,
        signing::{self, SigningKey, VerifyingKey},
        wire::{AuthorizationStatus, GenerateUrlRequest, ResultInfo},
    },
    simulator::{ApplicationConfig, RunningSimulator},
};
use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use futures::StreamExt as _;
use serde_json::{Value, json};
use sim_support::{ACME, Caller, DEMO, VIEWER, key_lines, pem, repo};
use support::{
    env::{Env, STEP},
    operator::OperatorOptions,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

/// A second application in the tests' simulator, with its own key pair.
const OTHER: &str = "SANDBOX_ACQP_OPERATOR_OTHER";

fn signing_key(path: &str) -> SigningKey {
    SigningKey::from_pem(path, &pem(path)).unwrap()
}

fn devcenter_key() -> SigningKey {
    signing_key("examples/keys/devcenter-private.pem")
}

const PRIVATE_KEYS: [&str; 3] = [
    "examples/keys/tsp-private.pem",
    "examples/keys/devcenter-private.pem",
    "tests/fixtures/hostile/other-tsp-private.pem",
];

/// A client for `client_id` at `endpoint` that gives up quickly: 1 s per attempt, 1 retry.
fn client(endpoint: &str, client_id: &str) -> DevCenterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ClientConfig::new(
        endpoint.parse().unwrap(),
        client_id,
        signing_key("examples/keys/tsp-private.pem"),
        VerifyingKey::from_pem(
            "devcenter-public.pem",
            &pem("examples/keys/devcenter-public.pem"),
        )
        .unwrap(),
    );
    config.timeout = Duration::from_secs(1);
    config.max_retries = 1;
    config.retry_base_delay = Duration::from_millis(10);
    config.retry_max_delay = Duration::from_millis(20);
    config.rate_limit.requests_per_second = std::num::NonZeroU32::new(1000).unwrap();
    DevCenterClient::new(config).unwrap()
}

/// A fake Developer Center answering every request with `reply(path)`; returns its base URL
/// and a counter of the requests it received.
async fn fake<F>(reply: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(&str) -> Response + Clone + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().fallback(move |uri: Uri| {
        counter.fetch_add(1, Ordering::SeqCst);
        let response = reply(uri.path());
        async move { response }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

/// Headers of a message signed with `key` for `client_id` at `time`.
fn signed_headers(
    key: &SigningKey,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> HeaderMap {
    let signature = signing::sign(key, path, client_id, time, body);
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    headers.insert(signing::CLIENT_ID_HEADER, client_id.parse().unwrap());
    headers.insert(signing::RESPONSE_TIME_HEADER, time.parse().unwrap());
    headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
    headers
}

/// A response to `path` signed by the Developer Center, now, for the demo application.
fn authentic(path: &str, body: impl Into<Vec<u8>>) -> Response {
    let body = body.into();
    let headers = signed_headers(&devcenter_key(), path, DEMO, &signing::now(), &body);
    (headers, body).into_response()
}

/// A valid application inquiry answer.
fn application_body() -> String {
    json!({
        "result": ResultInfo::success(),
        "applicationName": "ACQP operator demo",
        "environment": "Sandbox",
        "role": "DeveloperAdmin",
        "integratedProducts": ["CashierPayment"],
    })
    .to_string()
}

/// `now` shifted by `minutes`, formatted for a time header.
fn time_shifted(minutes: i64) -> String {
    signing::format_time(&(jiff::Zoned::now() + jiff::SignedDuration::from_mins(minutes)))
}

/// The reason of an `Unverified` error; fails the test on any other outcome.
fn unverified(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Unverified { reason, .. }) => reason,
        other => panic!("expected Unverified, got {other:?}"),
    }
}

fn url_request(id: &str) -> GenerateUrlRequest {
    GenerateUrlRequest {
        authorization_request_id: id.to_owned(),
        acquirer_id: ACME.to_owned(),
        products: vec![Product::CashierPayment],
    }
}

// ---------------------------------------------------------------------------------------------
// Developer Center responses
// ---------------------------------------------------------------------------------------------

/// The fakes' honest answer passes, so every refusal below is a check at work, not a broken
/// fake.
#[tokio::test]
async fn an_honest_fake_is_accepted() {
    let (endpoint, _) = fake(|path| authentic(path, application_body())).await;
    let answer = client(&endpoint, DEMO).inquire_application().await.unwrap();
    assert_eq!(answer.application_name, "ACQP operator demo");
}

#[tokio::test]
async fn malformed_authentic_bodies_are_protocol_errors_and_not_retried() {
    let cases = [
        (
            "truncated JSON",
            r#"{"result":{"resultCode":"SUCC"#.to_owned(),
        ),
        (
            "an HTML page",
            "<html><body>Bad gateway</body></html>".to_owned(),
        ),
        ("an empty body", String::new()),
        ("a JSON array", "[]".to_owned()),
        ("a null result", r#"{"result":null}"#.to_owned()),
        (
            "an unknown resultStatus",
            r#"{"result":{"resultCode":"SUCCESS","resultStatus":"X","resultMessage":""}}"#
                .to_owned(),
        ),
        (
            "S with fields of the wrong type",
            application_body().replace(r#""ACQP operator demo""#, "42"),
        ),
        (
            "S with an unknown product",
            application_body().replace("CashierPayment", "FreeMoney"),
        ),
    ];
    for (what, body) in cases {
        let (endpoint, calls) = fake(move |path| authentic(path, body.clone())).await;
        let error = client(&endpoint, DEMO)
            .inquire_application()
            .await
            .unwrap_err();
        assert_eq!(error.metric_label(), "protocol", "{what}: {error}");
        assert!(!error.is_retryable(), "{what}");
        // Final: a retry would only read the same contract violation again.
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{what}");
        assert!(
            error
                .to_string()
                .starts_with("the Developer Center broke the contract at "),
            "{what}: {error}"
        );
    }
}

#[tokio::test]
async fn a_huge_declared_body_is_refused_before_it_is_read() {
    let huge = vec![b' '; MAX_RESPONSE_BYTES + 1];
    let (endpoint, calls) = fake(move |path| authentic(path, huge.clone())).await;
    let started = Instant::now();
    let error = client(&endpoint, DEMO)
        .inquire_application()
        .await
        .unwrap_err();
    let Error::Protocol { reason, .. } = &error else {
        panic!("expected Protocol, got {error:?}")
    };
    assert_eq!(reason, "the response body is larger than 1048576 bytes");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// No Content-Length and no end: the client must stop at the cap rather than buffer forever.
#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_cap() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let (endpoint, _) = fake(move |path| {
        let counter = counter.clone();
        let chunks = futures::stream::repeat_with(move || {
            counter.fetch_add(64 * 1024, Ordering::SeqCst);
            Ok::<_, Infallible>(Bytes::from(vec![b'x'; 64 * 1024]))
        });
        let mut headers = signed_headers(&devcenter_key(), path, DEMO, &signing::now(), b"");
        headers.remove("content-length");
        (headers, Body::from_stream(chunks)).into_response()
    })
    .await;
    let started = Instant::now();
    let error = client(&endpoint, DEMO)
        .inquire_application()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { reason, .. } if reason.contains("larger than")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Once the client hung up the server stops producing; what it produced is the cap plus
    // socket buffers, not an ever-growing amount.
    // (Settling may take a moment on a loaded machine: wait until it stops changing.)
    let mut after_hang_up = produced.load(Ordering::SeqCst);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = produced.load(Ordering::SeqCst);
        if now == after_hang_up {
            break;
        }
        after_hang_up = now;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        produced.load(Ordering::SeqCst),
        after_hang_up,
        "still streaming"
    );
    assert!(
        after_hang_up < 16 * MAX_RESPONSE_BYTES,
        "{after_hang_up} bytes produced"
    );
}

#[tokio::test]
async fn missing_or_unreadable_headers_are_unverified_and_not_retried() {
    type Edit = fn(&mut HeaderMap);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "no Client-Id",
            |h| {
                h.remove(signing::CLIENT_ID_HEADER);
            },
            "no Client-Id header",
        ),
        (
            "no Response-Time",
            |h| {
                h.remove(signing::RESPONSE_TIME_HEADER);
            },
            "no Response-Time header",
        ),
        (
            "no Signature",
            |h| {
                h.remove(signing::SIGNATURE_HEADER);
            },
            "no Signature header",
        ),
        (
            "a non-ASCII Client-Id",
            |h| {
                let value = HeaderValue::from_bytes(b"SANDBOX_\xe9").unwrap();
                h.insert(signing::CLIENT_ID_HEADER, value);
            },
            "the Client-Id header is not ASCII",
        ),
    ];
    for (what, edit, expected) in cases {
        let (endpoint, calls) = fake(move |path| {
            let body = application_body();
            let mut headers = signed_headers(
                &devcenter_key(),
                path,
                DEMO,
                &signing::now(),
                body.as_bytes(),
            );
            edit(&mut headers);
            (headers, body).into_response()
        })
        .await;
        let reason = unverified(client(&endpoint, DEMO).inquire_application().await);
        assert_eq!(reason, format!("{expected} (HTTP 200 OK)"), "{what}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{what}");
    }
}

/// A wrong `spec.endpoint` answers with an unsigned page: the error names the HTTP status.
#[tokio::test]
async fn an_unsigned_error_page_is_unverified_with_its_status() {
    let (endpoint, _) =
        fake(|_| (StatusCode::NOT_FOUND, "<h1>Not Found</h1>").into_response()).await;
    let reason = unverified(client(&endpoint, DEMO).inquire_application().await);
    assert_eq!(reason, "no Client-Id header (HTTP 404 Not Found)");
}

#[tokio::test]
async fn responses_signed_with_another_key_are_unverified() {
    for key_path in [
        "examples/keys/tsp-private.pem",
        "tests/fixtures/hostile/other-tsp-private.pem",
    ] {
        let (endpoint, _) = fake(move |path| {
            let body = application_body();
            let key = signing_key(key_path);
            (
                signed_headers(&key, path, DEMO, &signing::now(), body.as_bytes()),
                body,
            )
                .into_response()
        })
        .await;
        let reason = unverified(client(&endpoint, DEMO).inquire_application().await);
        assert!(
            reason.starts_with("signature does not match the message"),
            "{key_path}: {reason}"
        );
        // The error names the key it checked with, never its material.
        assert!(
            reason.contains(r#"VerifyingKey { name: "devcenter-public.pem", .. }"#),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn malformed_signature_headers_are_unverified() {
    let cases = [
        (
            "algorithm=RSA,keyVersion=1,signature=AAAA",
            "unsupported signature algorithm \"RSA\"",
        ),
        (
            "algorithm=RSA256,keyVersion=1",
            "malformed Signature header: no signature field",
        ),
        (
            "algorithm=RSA256,signature=a,signature=b",
            "malformed Signature header: a field appears twice",
        ),
        (
            "algorithm=RSA256,signature=***",
            "malformed Signature header: signature is not Base64",
        ),
        (
            "",
            "malformed Signature header: every field must be name=value",
        ),
    ];
    for (value, expected) in cases {
        let (endpoint, _) = fake(move |path| {
            let body = application_body();
            let mut headers = signed_headers(
                &devcenter_key(),
                path,
                DEMO,
                &signing::now(),
                body.as_bytes(),
            );
            headers.insert(signing::SIGNATURE_HEADER, HeaderValue::from_static(value));
            (headers, body).into_response()
        })
        .await;
        let reason = unverified(client(&endpoint, DEMO).inquire_application().await);
        assert!(reason.starts_with(expected), "{value:?}: {reason}");
    }
}

/// A genuinely signed answer recorded earlier and played back: its signed time gives it away.
#[tokio::test]
async fn old_or_future_dated_responses_are_refused() {
    for (minutes, expected) in [(-10, "refused as replays"), (10, "in the future")] {
        let (endpoint, _) = fake(move |path| {
            let body = application_body();
            let time = time_shifted(minutes);
            (
                signed_headers(&devcenter_key(), path, DEMO, &time, body.as_bytes()),
                body,
            )
                .into_response()
        })
        .await;
        let reason = unverified(client(&endpoint, DEMO).inquire_application().await);
        assert!(reason.contains(expected), "{minutes} min: {reason}");
        assert!(reason.starts_with("Response-Time "), "{reason}");
    }
}

/// Starts the simulator from the example seed plus the OTHER application.
async fn simulator() -> RunningSimulator {
    let mut config = sim_support::config();
    let mut other: ApplicationConfig = config.applications[0].clone();
    other.client_id = OTHER.to_owned();
    other.name = "Another TSP application".to_owned();
    other.tsp_public_key_file = repo("tests/fixtures/hostile/other-tsp-public.pem");
    config.applications.push(other);
    sim_support::start(config).await
}

/// A genuine signed answer of the simulator (to an application inquiry), captured whole and
/// replayed for every request: it verifies only where it was meant to.
#[tokio::test]
async fn a_genuine_answer_replayed_for_another_call_or_client_is_unverified() {
    let sim = simulator().await;
    let caller = Caller::new(&sim);
    let response = caller
        .send(DEMO, sim_support::APPLICATION, b"{}".to_vec())
        .await
        .unwrap();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let (endpoint, _) = fake(move |_| (headers.clone(), body.clone()).into_response()).await;

    let demo = client(&endpoint, DEMO);
    // Played back for the call it answered, it verifies: the control for the refusals below.
    demo.inquire_application().await.unwrap();
    let reason = unverified(demo.generate_url(&url_request("replay-1")).await);
    assert!(reason.starts_with("signature does not match"), "{reason}");
    let viewer = client(&endpoint, VIEWER);
    let reason = unverified(viewer.inquire_application().await);
    assert_eq!(
        reason,
        format!("it is addressed to Client-Id {DEMO:?} (HTTP 200 OK)")
    );
}

/// A proxy that alters the first generateUrl answer on its way back: the client refuses it,
/// and the retry with the same request ID gets the one URL the simulator issued, not a second.
#[tokio::test]
async fn a_tampered_url_answer_is_refused_and_mints_no_second_url() {
    let sim = simulator().await;
    let upstream = sim.endpoint();
    let tampered = Arc::new(AtomicUsize::new(0));
    let count = tampered.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (upstream, count) = (upstream.clone(), count.clone());
        async move {
            let response = reqwest::Client::new()
                .post(format!("{upstream}{}", uri.path()))
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, mut headers) = (response.status(), response.headers().clone());
            // The body may change length; the server framing sets it anew.
            headers.remove("content-length");
            let mut body = response.text().await.unwrap();
            if uri.path() == sim_support::GENERATE && count.fetch_add(1, Ordering::SeqCst) == 0 {
                body = body.replace("/consent/", "/consent/evil");
            }
            let mut answer = (headers, body).into_response();
            *answer.status_mut() = status;
            answer
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let request = url_request("tamper-1");
    let reason = unverified(client(&proxy, DEMO).generate_url(&request).await);
    assert!(reason.starts_with("signature does not match"), "{reason}");
    // The operator asks again later with the same request ID; now the answer arrives intact.
    let url = client(&proxy, DEMO).generate_url(&request).await.unwrap();
    assert!(
        !url.authorization_url.contains("evil"),
        "{}",
        url.authorization_url
    );
    let stats = Caller::new(&sim).stats().await;
    let issued = &stats["urlsByClientAcquirerProducts"][format!("{DEMO}/{ACME}/CashierPayment")];
    assert_eq!(issued, 1, "{stats}");
}

/// Headers arrive at once, then the body trickles: each attempt times out, and the whole call
/// is bounded by attempts × timeout, not by the sender.
#[tokio::test]
async fn a_body_that_trickles_times_out() {
    let (endpoint, calls) = fake(|path| {
        let body = application_body().into_bytes();
        let headers = signed_headers(&devcenter_key(), path, DEMO, &signing::now(), &body);
        let chunks = futures::stream::iter(body).then(|byte| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, Infallible>(Bytes::from(vec![byte]))
        });
        (headers, Body::from_stream(chunks)).into_response()
    })
    .await;
    let started = Instant::now();
    let error = client(&endpoint, DEMO)
        .inquire_application()
        .await
        .unwrap_err();
    match &error {
        Error::Unavailable {
            attempts: 2, last, ..
        } => assert!(last.starts_with("timed out"), "{last}"),
        other => panic!("expected Unavailable after 2 attempts, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// A server that accepts the connection and never answers.
#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let error = client(&endpoint, DEMO)
        .inquire_application()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Unavailable { attempts: 2, last, .. } if last.starts_with("timed out")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Notifications, checked by the client
// ---------------------------------------------------------------------------------------------

/// A notification the simulator really sent (for a grant), as it arrived.
async fn captured_notification(sim: &RunningSimulator) -> (HeaderMap, Bytes) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let _ = tx.send((headers, body));
        // No acknowledgement: one delivery is all this test needs.
        async { StatusCode::SERVICE_UNAVAILABLE }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let caller = Caller::new(sim);
    caller
        .sim_ok(
            &format!("/sim/apps/{DEMO}/notify-url"),
            &json!({"url": url}),
        )
        .await;
    let answer = caller
        .generate("capture-1", ACME, &["CashierPayment"])
        .await;
    assert_eq!(answer.code(), "SUCCESS", "{answer:?}");
    caller
        .sim_ok(
            &format!("/sim/acqp/{ACME}/authorize"),
            &json!({"clientId": DEMO}),
        )
        .await;
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap()
}

#[tokio::test]
async fn captured_notifications_cannot_be_altered_redirected_or_forged() {
    let sim = simulator().await;
    let (headers, body) = captured_notification(&sim).await;
    let demo = client(&sim.endpoint(), DEMO);
    // As delivered, it verifies: the control for every refusal below.
    let genuine = demo
        .verify_notification("/notify", &headers, &body)
        .unwrap();
    assert_eq!(
        (genuine.acquirer_id.as_str(), genuine.status),
        (ACME, AuthorizationStatus::Active)
    );

    let flipped = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("Active", "Inactive");
    let reason = unverified(demo.verify_notification("/notify", &headers, flipped.as_bytes()));
    assert!(
        reason.starts_with("signature does not match"),
        "body altered: {reason}"
    );

    let reason = unverified(demo.verify_notification("/other/notify", &headers, &body));
    assert!(
        reason.starts_with("signature does not match"),
        "another path: {reason}"
    );

    let mut retimed = headers.clone();
    let time = time_shifted(1);
    retimed.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
    let reason = unverified(demo.verify_notification("/notify", &retimed, &body));
    assert!(
        reason.starts_with("signature does not match"),
        "time changed: {reason}"
    );

    let mut stripped = headers.clone();
    stripped.remove(signing::SIGNATURE_HEADER);
    let reason = unverified(demo.verify_notification("/notify", &stripped, &body));
    assert_eq!(reason, "no Signature header", "unsigned");

    // Forged: the same content signed with the TSP's own key (what a cluster insider has).
    let tsp = signing_key("examples/keys/tsp-private.pem");
    let time = signing::now();
    let mut forged = headers.clone();
    forged.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
    let signature = signing::sign(&tsp, "/notify", DEMO, &time, &body);
    forged.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
    let reason = unverified(demo.verify_notification("/notify", &forged, &body));
    assert!(
        reason.starts_with("signature does not match"),
        "forged: {reason}"
    );

    // Readdressed: another application with the same Developer Center does not take it.
    let reason =
        unverified(client(&sim.endpoint(), OTHER).verify_notification("/notify", &headers, &body));
    assert_eq!(reason, format!("it is addressed to Client-Id {DEMO:?}"));
}

#[tokio::test]
async fn old_or_future_notifications_are_refused() {
    let body = br#"{"notifyType":"AUTHORIZATION_STATUS_CHANGED","acquirerId":"1022188000000000001","status":"Inactive","updateTime":"2026-11-27T04:08:56Z"}"#;
    let demo = client("http://127.0.0.1:9", DEMO);
    for (minutes, expected) in [(-6, "refused as replays"), (6, "in the future")] {
        let time = time_shifted(minutes);
        let mut headers = signed_headers(&devcenter_key(), "/notify", DEMO, &time, body);
        headers.remove(signing::RESPONSE_TIME_HEADER);
        headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
        let reason = unverified(demo.verify_notification("/notify", &headers, body));
        assert!(reason.starts_with("Request-Time "), "{reason}");
        assert!(reason.contains(expected), "{minutes} min: {reason}");
    }
}

#[tokio::test]
async fn an_authentic_notification_of_an_unknown_kind_is_a_protocol_error() {
    let body =
        br#"{"notifyType":"TOKEN_ROTATED","acquirerId":"1022188000000000001","agentToken":"x"}"#;
    let time = signing::now();
    let mut headers = signed_headers(&devcenter_key(), "/notify", DEMO, &time, body);
    headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
    let error = client("http://127.0.0.1:9", DEMO)
        .verify_notification("/notify", &headers, body)
        .unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { reason, .. } if reason.starts_with("the notification is not valid")),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against the real operator on the control plane
// ---------------------------------------------------------------------------------------------

impl Env {
    /// The simulator with OTHER, and an operator at debug level.
    async fn with_other_application(prefix: &str) -> Env {
        let options = OperatorOptions {
            rust_log: Some("debug".to_owned()),
            ..Default::default()
        };
        Env::with(prefix, simulator().await, options).await
    }

    /// An application `name` for `client_id` whose credentials are Secret `secret`.
    fn apply_application_for(&self, name: &str, client_id: &str, secret: &str, poll: &str) {
        self.apply(&format!(
            "apiVersion: acqp-operator.io/v1alpha1\nkind: DeveloperCenterApplication\n\
             metadata: {{name: {name}}}\nspec:\n  environment: Sandbox\n  endpoint: {}\n  \
             clientId: {client_id}\n  credentialsSecretRef: {{name: {secret}}}\n  pollInterval: {poll}\n",
            self.api.endpoint
        ));
    }

    /// Secret `name` with `data` (key → value, taken verbatim).
    fn apply_secret(&self, name: &str, data: &[(&str, &[u8])]) {
        let encode =
            |v: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": data.iter().map(|(k, v)| ((*k).to_owned(), Value::String(encode(v)))).collect::<serde_json::Map<_, _>>(),
        });
        self.apply(&secret.to_string());
    }

    /// Everything the operator exposed: its logs, Events, resources' status, metrics.
    async fn everything_exposed(&self) -> String {
        [
            self.operator.logs(),
            self.kubectl_ok(&["get", "events", "-o", "json"]),
            self.kubectl_ok(&["get", "dcapp,acqpauth", "-o", "json"]),
            self.operator.metrics().await,
        ]
        .join("\n")
    }
}

/// Every way a credentials Secret can be wrong ends in a NotReady application whose condition
/// says what to fix; no message, log line, Event or metric repeats key material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_say_what_to_fix_and_never_echo_keys() {
    let env = Env::with_other_application("bad-credentials").await;
    let tsp_private = pem("examples/keys/tsp-private.pem");
    let tsp_public = pem("examples/keys/tsp-public.pem");
    let dc_public = pem("examples/keys/devcenter-public.pem");
    let dc_private = pem("examples/keys/devcenter-private.pem");
    let other_private = pem("tests/fixtures/hostile/other-tsp-private.pem");
    let mut truncated = tsp_private[..tsp_private.len() / 2].to_vec();
    truncated.extend_from_slice(b"\n-----END PRIVATE KEY-----\n");
    let garbage = b"-----BEGIN PRIVATE KEY-----\nNOT-A-KEY-b7f3c2e1\n-----END PRIVATE KEY-----\n";
    /// A credentials Secret's data, key by key.
    type SecretData = Vec<(&'static str, Vec<u8>)>;
    let pair = |private: &[u8], public: &[u8]| -> SecretData {
        vec![
            ("privateKey", private.to_vec()),
            ("devCenterPublicKey", public.to_vec()),
        ]
    };
    // (application, Client ID, Secret data or None for no Secret, reason, words in the message)
    let cases: Vec<(&str, &str, Option<SecretData>, &str, &str)> = vec![
        (
            "no-secret",
            DEMO,
            None,
            "CredentialsNotFound",
            "not found: create it with the TSP private key",
        ),
        (
            "no-private-key",
            DEMO,
            Some(vec![("devCenterPublicKey", dc_public.clone())]),
            "CredentialsInvalid",
            r#"has no key "privateKey""#,
        ),
        (
            "garbage-pem",
            DEMO,
            Some(pair(garbage, &dc_public)),
            "CredentialsInvalid",
            "is not a usable RSA private key",
        ),
        (
            "truncated-pem",
            DEMO,
            Some(pair(&truncated, &dc_public)),
            "CredentialsInvalid",
            "is not a usable RSA private key",
        ),
        (
            "public-as-private",
            DEMO,
            Some(pair(&tsp_public, &dc_public)),
            "CredentialsInvalid",
            "no BEGIN PRIVATE KEY",
        ),
        (
            "private-as-public",
            DEMO,
            Some(pair(&tsp_private, &dc_private)),
            "CredentialsInvalid",
            "no BEGIN PUBLIC KEY block found",
        ),
        // A well-formed key the Developer Center does not know for this Client ID.
        (
            "wrong-key",
            DEMO,
            Some(pair(&dc_private, &dc_public)),
            "CredentialsRejected",
            "INVALID_SIGNATURE",
        ),
        // The key of another registered application, and the other way round.
        (
            "other-clients-key",
            DEMO,
            Some(pair(&other_private, &dc_public)),
            "CredentialsRejected",
            "INVALID_SIGNATURE",
        ),
        (
            "key-of-demo-for-other",
            OTHER,
            Some(pair(&tsp_private, &dc_public)),
            "CredentialsRejected",
            "INVALID_SIGNATURE",
        ),
        // Our own public key where the Developer Center's belongs: its answers cannot verify.
        (
            "wrong-devcenter-key",
            DEMO,
            Some(pair(&tsp_private, &tsp_public)),
            "DevCenterUnverified",
            "signature does not match",
        ),
    ];
    for (name, client_id, data, _, _) in &cases {
        let secret = format!("{name}-credentials");
        if let Some(data) = data {
            let data: Vec<(&str, &[u8])> = data.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            env.apply_secret(&secret, &data);
        }
        env.apply_application_for(name, client_id, &secret, "10m");
    }
    // The control: correct credentials for OTHER work, so its refusals above are about keys.
    env.apply_secret(
        "other-credentials",
        &[
            ("privateKey", &other_private),
            ("devCenterPublicKey", &dc_public),
        ],
    );
    env.apply_application_for("other", OTHER, "other-credentials", "10m");
    env.wait_ready("dcapp/other", "True", "Connected").await;

    for (name, _, _, reason, words) in &cases {
        let ready = env
            .wait_ready(&format!("dcapp/{name}"), "False", reason)
            .await;
        let message = ready["message"].as_str().unwrap();
        assert!(message.contains(words), "{name}: {message}");
    }
    let exposed = env.everything_exposed().await;
    assert!(
        !exposed.contains("NOT-A-KEY-b7f3c2e1"),
        "the malformed key's content was echoed"
    );
    for path in PRIVATE_KEYS {
        for line in key_lines(path) {
            assert!(
                !exposed.contains(&line),
                "a line of {path} was exposed: {line}"
            );
        }
    }
}

/// Credentials broken under a granted authorization: the application goes NotReady, the token
/// Secret keeps its token, and once the key is fixed everything is as before (no new URL, no
/// new grant, the same token revision).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_credentials_lose_nothing() {
    let env = Env::with_other_application("broken-credentials").await;
    let tsp_private = pem("examples/keys/tsp-private.pem");
    let dc_public = pem("examples/keys/devcenter-public.pem");
    let other_private = pem("tests/fixtures/hostile/other-tsp-private.pem");
    env.apply_secret(
        "demo-credentials",
        &[
            ("privateKey", &tsp_private),
            ("devCenterPublicKey", &dc_public),
        ],
    );
    env.apply_application_for("demo", DEMO, "demo-credentials", "2s");
    env.wait_ready("dcapp/demo", "True", "Connected").await;
    env.kubectl_ok(&["apply", "-f", "examples/acme-cashier.yaml"]);
    env.wait_ready("acqpauth/acme-cashier", "False", "AwaitingAuthorization")
        .await;
    env.api
        .sim_ok(
            &format!("/sim/acqp/{ACME}/authorize"),
            &json!({"clientId": DEMO}),
        )
        .await;
    env.wait_ready("acqpauth/acme-cashier", "True", "Authorized")
        .await;
    let secret_before = env.get("secret/acme-cashier-agent-token").unwrap();
    let status_before = env.get("acqpauth/acme-cashier").unwrap()["status"].clone();

    // Someone puts the wrong key in the Secret.
    env.apply_secret(
        "demo-credentials",
        &[
            ("privateKey", &other_private),
            ("devCenterPublicKey", &dc_public),
        ],
    );
    env.wait_ready("dcapp/demo", "False", "CredentialsRejected")
        .await;
    // Give the authorization controller a few poll intervals to (wrongly) act on it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let secret_during = env
        .get("secret/acme-cashier-agent-token")
        .expect("the token Secret is kept");
    assert_eq!(
        secret_during["data"], secret_before["data"],
        "the token is unchanged"
    );

    env.apply_secret(
        "demo-credentials",
        &[
            ("privateKey", &tsp_private),
            ("devCenterPublicKey", &dc_public),
        ],
    );
    env.wait_ready("dcapp/demo", "True", "Connected").await;
    env.wait_ready("acqpauth/acme-cashier", "True", "Authorized")
        .await;
    let status_after = env.get("acqpauth/acme-cashier").unwrap()["status"].clone();
    for field in ["tokenRevision", "tokenFingerprint", "authorizedProducts"] {
        assert_eq!(status_after[field], status_before[field], "{field}");
    }
    let secret_after = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(secret_after["data"], secret_before["data"]);
    let stats = env.api.stats().await;
    assert_eq!(stats["grants"], 1, "{stats}");
    assert_eq!(
        stats["urlsByClientAcquirerProducts"][format!("{DEMO}/{ACME}/CashierPayment")],
        1,
        "{stats}"
    );
}

/// Calls of `path` the simulator answered, all outcomes together.
async fn calls(api: &Caller, path: &str) -> u64 {
    let stats = api.stats().await;
    stats["calls"][path].as_object().map_or(0, |outcomes| {
        outcomes.values().filter_map(Value::as_u64).sum()
    })
}

/// The real endpoint: forged, unsigned and stale notifications are refused and trigger no list;
/// a sender trickling bytes is cut off within the request timeout; an authentic one triggers a
/// list, and the same one replayed is acknowledged without another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_endpoint_refuses_forgeries_and_slow_senders() {
    let env = Env::with_other_application("notify-endpoint").await;
    let tsp_private = pem("examples/keys/tsp-private.pem");
    let dc_public = pem("examples/keys/devcenter-public.pem");
    env.apply_secret(
        "demo-credentials",
        &[
            ("privateKey", &tsp_private),
            ("devCenterPublicKey", &dc_public),
        ],
    );
    // Polling every 10 minutes: any list call within the test is a notification's doing.
    env.apply_application_for("demo", DEMO, "demo-credentials", "10m");
    env.wait_ready("dcapp/demo", "True", "Connected").await;
    let url = env.operator.notify_url();
    let path = "/notify";
    let body = br#"{"notifyType":"AUTHORIZATION_STATUS_CHANGED","acquirerId":"1022188000000000001","status":"Active","updateTime":"2026-11-27T04:08:56Z"}"#;
    let post = |key: Option<SigningKey>, time: String| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json; charset=UTF-8")
                .header(signing::CLIENT_ID_HEADER, DEMO)
                .header(signing::REQUEST_TIME_HEADER, &time)
                .body(body.to_vec());
            if let Some(key) = key {
                request = request.header(
                    signing::SIGNATURE_HEADER,
                    signing::sign(&key, path, DEMO, &time, body),
                );
            }
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Wait for the first list (the poller's initial snapshot) before counting.
    let deadline = Instant::now() + STEP;
    while calls(&env.api, sim_support::INQUIRY).await == 0 {
        assert!(Instant::now() < deadline, "no first list");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lists = calls(&env.api, sim_support::INQUIRY).await;

    let forged = post(
        Some(signing_key("examples/keys/tsp-private.pem")),
        signing::now(),
    )
    .await;
    let unsigned = post(None, signing::now()).await;
    let replayed = post(Some(devcenter_key()), time_shifted(-30)).await;
    for (what, (status, answer)) in [
        ("forged", forged),
        ("unsigned", unsigned),
        ("replayed", replayed),
    ] {
        assert_eq!(status, 401, "{what}: {answer}");
        assert!(answer.contains("INVALID_SIGNATURE"), "{what}: {answer}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        calls(&env.api, sim_support::INQUIRY).await,
        lists,
        "a refused notification made the operator list"
    );

    // Slow loris: the operator's request timeout is 10 s; 1 byte every 100 ms would take 60 s.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches(path)
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(600)
    );
    let started = Instant::now();
    let mut sent = 0;
    for byte in request.as_bytes() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A closed connection shows as a failed write only after the peer's RST; peek too.
        let mut probe = [0; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
        {
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        sent < request.len(),
        "the operator took all {sent} bytes over {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(25),
        "cut off only after {elapsed:?}"
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;

    // The control: an authentic notification is acknowledged and makes the operator list.
    let time = signing::now();
    let (status, answer) = post(Some(devcenter_key()), time.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let deadline = Instant::now() + STEP;
    while calls(&env.api, sim_support::INQUIRY).await == lists {
        assert!(
            Instant::now() < deadline,
            "the authentic notification triggered no list"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lists = calls(&env.api, sim_support::INQUIRY).await;
    // Replayed verbatim while still fresh: acknowledged again, but no second list.
    let (status, answer) = post(Some(devcenter_key()), time).await;
    assert_eq!(status, 200, "{answer}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        calls(&env.api, sim_support::INQUIRY).await,
        lists,
        "a replayed notification made the operator list again"
    );
}
