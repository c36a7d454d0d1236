//! Shared by `tests/simulator.rs` and `tests/consent_page.rs`: start the simulator from the
//! example seed and make signed contract calls over real HTTP, verifying every signed answer.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod browser;

use std::{path::PathBuf, time::Duration};

use acqp_operator::{
    devcenter::signing::{self, SigningKey, VerifyingKey},
    simulator::{Config, RunningSimulator, Simulator},
};
use serde_json::{Value, json};

pub const DEMO: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
pub const VIEWER: &str = "SANDBOX_ACQP_OPERATOR_VIEWER";
pub const ACME: &str = "1022188000000000001";
pub const BETA: &str = "1022188000000000002";
pub const GENERATE: &str = "/devcenter/api/v1/authorizations/generateUrl";
pub const INQUIRY: &str = "/devcenter/api/v1/authorizations/inquiry";
pub const APPLICATION: &str = "/devcenter/api/v1/application/inquiry";

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A PEM file of the repository, as bytes.
pub fn pem(path: &str) -> Vec<u8> {
    std::fs::read(repo(path)).unwrap()
}

/// The Base64 lines of a PEM file, each long enough to be unmistakable: if any of them shows
/// up in output, key material leaked.
pub fn key_lines(path: &str) -> Vec<String> {
    String::from_utf8(pem(path))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 40)
        .map(str::to_owned)
        .collect()
}

/// The example seed, with notification retries fast enough for tests.
pub fn config() -> Config {
    let mut config = Config::load(&repo("examples/simulator.yaml")).unwrap();
    config.notifications.initial_backoff = Duration::from_millis(20);
    config.notifications.max_backoff = Duration::from_millis(100);
    config.notifications.attempt_timeout = Duration::from_secs(2);
    config
}

pub async fn start(config: Config) -> RunningSimulator {
    Simulator::new(config)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Starts `simulator` on a fixed `addr` (say, the one a stopped simulator used, so clients
/// keep their endpoint), retrying the bind for up to 10 s while the old socket lets go.
pub async fn start_at(
    simulator: impl Fn() -> Simulator,
    addr: std::net::SocketAddr,
) -> RunningSimulator {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match simulator().start(addr).await {
            Ok(running) => return running,
            Err(acqp_operator::simulator::SimulatorError::Bind { source, .. })
                if std::time::Instant::now() < deadline =>
            {
                eprintln!("simulator: binding {addr} failed ({source}); retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("starting the simulator on {addr}: {error}"),
        }
    }
}

pub fn tsp_key() -> SigningKey {
    SigningKey::from_pem(
        "tsp-private.pem",
        &std::fs::read(repo("examples/keys/tsp-private.pem")).unwrap(),
    )
    .unwrap()
}

pub fn devcenter_public() -> VerifyingKey {
    VerifyingKey::from_pem(
        "devcenter-public.pem",
        &std::fs::read(repo("examples/keys/devcenter-public.pem")).unwrap(),
    )
    .unwrap()
}

/// A signed answer: HTTP status and body, its signature already verified.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["result"]["resultCode"].as_str().unwrap()
    }
    pub fn result_status(&self) -> &str {
        self.body["result"]["resultStatus"].as_str().unwrap()
    }
    pub fn message(&self) -> &str {
        self.body["result"]["resultMessage"].as_str().unwrap()
    }
}

/// A TSP-side caller of the contract.
pub struct Caller {
    pub http: reqwest::Client,
    pub endpoint: String,
    key: SigningKey,
    devcenter: VerifyingKey,
}

impl Caller {
    pub fn new(sim: &RunningSimulator) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: sim.endpoint(),
            key: tsp_key(),
            devcenter: devcenter_public(),
        }
    }

    /// Signs `body` for `client_id` and posts it.
    pub async fn call(&self, client_id: &str, path: &str, body: &Value) -> Answer {
        self.call_raw(client_id, path, serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn call_raw(&self, client_id: &str, path: &str, body: Vec<u8>) -> Answer {
        let response = self.send(client_id, path, body).await.unwrap();
        self.verify(path, response).await
    }

    /// Signs and posts without reading the answer (fault tests look at transport errors).
    pub async fn send(
        &self,
        client_id: &str,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::Response> {
        let time = signing::now();
        let signature = signing::sign(&self.key, path, client_id, &time, &body);
        self.http
            .post(format!("{}{path}", self.endpoint))
            .header("Content-Type", "application/json; charset=UTF-8")
            .header(signing::CLIENT_ID_HEADER, client_id)
            .header(signing::REQUEST_TIME_HEADER, time)
            .header(signing::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
    }

    /// Reads an answer, asserting it is signed by the Developer Center key.
    pub async fn verify(&self, path: &str, response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .unwrap_or_else(|| panic!("answer has no {name} header"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let (client, time, signature) = (
            header(signing::CLIENT_ID_HEADER),
            header(signing::RESPONSE_TIME_HEADER),
            header(signing::SIGNATURE_HEADER),
        );
        let body = response.bytes().await.unwrap();
        signing::verify(&self.devcenter, path, &client, &time, &body, &signature)
            .expect("the answer's signature verifies");
        Answer {
            status,
            body: serde_json::from_slice(&body).unwrap(),
        }
    }

    pub async fn generate(&self, request_id: &str, acquirer: &str, products: &[&str]) -> Answer {
        let body = json!({"authorizationRequestId": request_id, "acquirerId": acquirer, "products": products});
        self.call(DEMO, GENERATE, &body).await
    }

    /// The demo application's record for one ACQP, if any.
    pub async fn record(&self, acquirer: &str) -> Option<Value> {
        let body = json!({"acquirerIds": [acquirer], "pageSize": 10, "pageNumber": 1});
        let answer = self.call(DEMO, INQUIRY, &body).await;
        assert_eq!(answer.code(), "SUCCESS", "{answer:?}");
        answer.body["authorizations"]
            .as_array()
            .unwrap()
            .first()
            .cloned()
    }

    /// `POST /sim/...` with a JSON body; returns status and JSON answer.
    /// [`Caller::sim_post`], failing the test unless the simulator answers 200; returns the
    /// answer.
    pub async fn sim_ok(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.sim_post(path, body).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }

    pub async fn sim_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/sim/stats", self.endpoint))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The consent page's path part of an authorization URL.
pub fn consent_path(url: &str) -> &str {
    &url[url
        .find("/consent/")
        .expect("authorization URL has /consent/")..]
}
