//! The contract document (`docs/devcenter-api/openapi.yaml`) against the code, both ways: its
//! paths are the routes the simulator serves; its enums and result codes are the wire types';
//! the wire types serialize to its schemas and its examples deserialize into the wire types and
//! back unchanged; every result code it lists for an operation is one the simulator answers
//! there, and every answer matches its schema; the client, run against a gateway that answers
//! with the document's examples, sends requests the document accepts and reads each example as
//! the document says; notifications and acknowledgements match its webhook.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use acqp_operator::{
    api::Product,
    devcenter::{
        ClientConfig, DevCenterClient, Error,
        signing::{self, SigningKey, VerifyingKey},
        wire::{
            AgentToken, ApplicationInquiryRequest, ApplicationInquiryResponse,
            AuthorizationInquiryRequest, AuthorizationInquiryResponse, AuthorizationRecord,
            AuthorizationStatus, Environment, GenerateUrlRequest, GenerateUrlResponse,
            Notification, NotifyType, ResultCode, ResultInfo, ResultResponse, ResultStatus, Role,
        },
    },
    simulator::{Config, FaultSettings, RunningSimulator, Simulator, openapi},
};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::IntoResponse,
    routing::post,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const DEMO: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
const VIEWER: &str = "SANDBOX_ACQP_OPERATOR_VIEWER";
const APPLICATION: &str = "/devcenter/api/v1/application/inquiry";
const GENERATE: &str = "/devcenter/api/v1/authorizations/generateUrl";
const INQUIRY: &str = "/devcenter/api/v1/authorizations/inquiry";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn key(file: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("examples/keys/{file}"))).unwrap()
}

/// The document, read from the repository as a gateway team would read it.
struct Document(Value);

/// `a/b` as a JSON pointer token.
fn token(part: &str) -> String {
    part.replace('~', "~0").replace('/', "~1")
}

impl Document {
    fn load() -> Self {
        let text = std::fs::read_to_string(repo("docs/devcenter-api/openapi.yaml")).unwrap();
        Self(serde_saphyr::from_str(&text).expect("openapi.yaml is YAML"))
    }

    fn at(&self, pointer: &str) -> &Value {
        self.0
            .pointer(pointer)
            .unwrap_or_else(|| panic!("the document has nothing at {pointer}"))
    }

    /// Validates `instance` against the schema at `pointer`, resolving the document's `$ref`s:
    /// the whole document is the root, with a `$ref` to the schema (unknown keywords such as
    /// `paths` are ignored by JSON Schema).
    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let mut root = self.0.clone();
        root["$ref"] = json!(format!("#{pointer}"));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{instance} against {pointer}: {}",
                errors.join("; ")
            ))
        }
    }

    fn assert_valid(&self, pointer: &str, instance: &Value) {
        if let Err(problem) = self.validate(pointer, instance) {
            panic!("{problem}");
        }
    }

    fn operation(path: &str) -> String {
        format!("/paths/{}/post", token(path))
    }

    fn request_schema(path: &str) -> String {
        format!(
            "{}/requestBody/content/application~1json/schema",
            Self::operation(path)
        )
    }

    fn answer_schema(path: &str, status: &str) -> String {
        let operation = Self::operation(path);
        if status == "413" {
            return "/components/responses/BodyTooLarge/content/application~1json/schema".into();
        }
        format!("{operation}/responses/{status}/content/application~1json/schema")
    }

    fn examples(&self, pointer: &str) -> BTreeMap<String, Value> {
        self.at(pointer)
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, example)| (name.clone(), example["value"].clone()))
            .collect()
    }

    fn request_examples(&self, path: &str) -> BTreeMap<String, Value> {
        self.examples(&format!(
            "{}/requestBody/content/application~1json/examples",
            Self::operation(path)
        ))
    }

    fn answer_examples(&self, path: &str) -> BTreeMap<String, Value> {
        self.examples(&format!(
            "{}/responses/200/content/application~1json/examples",
            Self::operation(path)
        ))
    }

    /// The `enum` of a component schema, as strings.
    fn enumeration(&self, schema: &str) -> BTreeSet<String> {
        strings(
            &self
                .at(&format!("/components/schemas/{schema}/enum"))
                .clone(),
        )
    }

    /// The result codes an operation's failure schema allows, plus SUCCESS.
    fn operation_codes(&self, path: &str) -> BTreeSet<String> {
        let failure = self.at(&format!(
            "{}/oneOf/1/$ref",
            Self::answer_schema(path, "200")
        ));
        let name = failure.as_str().unwrap().rsplit('/').next().unwrap();
        let codes = self.at(&format!(
            "/components/schemas/{name}/properties/result/allOf/1/properties/resultCode/enum"
        ));
        let mut codes = strings(codes);
        codes.insert("SUCCESS".into());
        codes
    }
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn wire<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

/// Deserializes a document example into a wire type and back, which must give it unchanged.
fn round_trip<T: Serialize + DeserializeOwned>(what: &str, example: &Value) -> T {
    let parsed: T = serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("{what}: the example does not read as the wire type: {e}"));
    assert_eq!(&wire(&parsed), example, "{what}: the wire type changes it");
    parsed
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

/// Every variant, written so a new variant fails to compile here until it is listed.
fn all_result_codes() -> Vec<ResultCode> {
    let codes = vec![
        ResultCode::Success,
        ResultCode::ParamIllegal,
        ResultCode::InvalidClient,
        ResultCode::InvalidSignature,
        ResultCode::AccessDenied,
        ResultCode::ProductNotIntegrated,
        ResultCode::ProductNotInContract,
        ResultCode::AcquirerNotFound,
        ResultCode::RepeatReqInconsistent,
        ResultCode::UnknownException,
        ResultCode::RequestTrafficExceedLimit,
    ];
    for code in &codes {
        match code {
            ResultCode::Success
            | ResultCode::ParamIllegal
            | ResultCode::InvalidClient
            | ResultCode::InvalidSignature
            | ResultCode::AccessDenied
            | ResultCode::ProductNotIntegrated
            | ResultCode::ProductNotInContract
            | ResultCode::AcquirerNotFound
            | ResultCode::RepeatReqInconsistent
            | ResultCode::UnknownException
            | ResultCode::RequestTrafficExceedLimit => {}
            ResultCode::Other(code) => panic!("{code} is not a known code"),
        }
    }
    codes
}

fn all_roles() -> Vec<Role> {
    let roles = vec![
        Role::DeveloperAdmin,
        Role::Developer,
        Role::MerchantOnboarding,
    ];
    for role in &roles {
        match role {
            Role::DeveloperAdmin | Role::Developer | Role::MerchantOnboarding => {}
        }
    }
    roles
}

fn all_environments() -> Vec<Environment> {
    let environments = vec![Environment::Sandbox, Environment::Production];
    for environment in &environments {
        match environment {
            Environment::Sandbox | Environment::Production => {}
        }
    }
    environments
}

fn all_statuses() -> Vec<AuthorizationStatus> {
    let statuses = vec![AuthorizationStatus::Active, AuthorizationStatus::Inactive];
    for status in &statuses {
        match status {
            AuthorizationStatus::Active | AuthorizationStatus::Inactive => {}
        }
    }
    statuses
}

fn all_result_statuses() -> Vec<ResultStatus> {
    let statuses = vec![ResultStatus::S, ResultStatus::F, ResultStatus::U];
    for status in &statuses {
        match status {
            ResultStatus::S | ResultStatus::F | ResultStatus::U => {}
        }
    }
    statuses
}

fn all_products() -> Vec<Product> {
    for product in Product::ALL {
        match product {
            Product::CashierPayment
            | Product::AutoDebit
            | Product::UserPresentedModePayment
            | Product::MerchantPresentedModePayment => {}
        }
    }
    Product::ALL.to_vec()
}

fn spelled<T: Serialize>(values: &[T]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| wire(v).as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_simulator_routes_exactly_the_documented_paths_all_post() {
    let document = Document::load();
    let paths = document.at("/paths").as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = openapi::CONTRACT_PATHS.into_iter().collect();
    assert_eq!(documented, routed);
    assert_eq!(routed, BTreeSet::from([APPLICATION, GENERATE, INQUIRY]));
    for (path, methods) in paths {
        assert_eq!(keys(methods), BTreeSet::from(["post".into()]), "{path}");
    }
    let webhooks = keys(document.at("/webhooks"));
    assert_eq!(
        webhooks,
        BTreeSet::from(["authorizationStatusChanged".into()])
    );
}

#[test]
fn the_documented_enums_are_the_wire_enums() {
    let document = Document::load();
    let cases = [
        ("Product", spelled(&all_products())),
        ("Role", spelled(&all_roles())),
        ("Environment", spelled(&all_environments())),
        ("AuthorizationStatus", spelled(&all_statuses())),
        ("ResultStatus", spelled(&all_result_statuses())),
        ("ResultCode", spelled(&all_result_codes())),
    ];
    for (schema, from_code) in cases {
        assert_eq!(document.enumeration(schema), from_code, "enum {schema}");
    }
    let notify_type = document.at("/components/schemas/Notification/properties/notifyType/const");
    assert_eq!(notify_type, &wire(&NotifyType::AuthorizationStatusChanged));
}

#[test]
fn each_result_code_comes_with_its_documented_status_and_no_other() {
    let document = Document::load();
    let table = document
        .at("/components/schemas/ResultCode/x-result-codes")
        .as_object()
        .unwrap();
    let listed: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(listed, spelled(&all_result_codes()), "x-result-codes");
    for code in all_result_codes() {
        let entry = &table[code.as_str()];
        for field in ["retry", "meaning", "operator"] {
            assert!(entry[field].is_string(), "{code}: no {field}");
        }
        assert_eq!(entry["resultStatus"], wire(&code.status()), "{code}");
        let result = wire(&ResultInfo::of(code.clone(), "why"));
        document.assert_valid("/components/schemas/Result", &result);
        for other in all_result_statuses() {
            if other == code.status() {
                continue;
            }
            let mut paired = result.clone();
            paired["resultStatus"] = wire(&other);
            assert!(
                document
                    .validate("/components/schemas/Result", &paired)
                    .is_err(),
                "{code} with {other:?} must not match the document"
            );
        }
    }
    // A code from a newer server is U to the client; the document says so.
    let other = ResultCode::from("A_NEWER_CODE".to_owned());
    assert_eq!(other.status(), ResultStatus::U);
    let description = document.at("/components/schemas/ResultCode/description");
    assert!(description.as_str().unwrap().contains("does not know as U"));
}

fn record() -> AuthorizationRecord {
    AuthorizationRecord {
        acquirer_id: "1022188000000000001".into(),
        acquirer_name: "Acme Acquiring".into(),
        status: AuthorizationStatus::Active,
        products: vec![Product::CashierPayment, Product::AutoDebit],
        agent_token: AgentToken::new("tok-example"),
        authorized_time: "2026-11-27T04:08:56Z".parse().unwrap(),
        update_time: "2026-11-27T04:08:56.5Z".parse().unwrap(),
    }
}

/// Each wire type: a value with every optional field set, one with none, and the schema.
fn wire_samples() -> Vec<(&'static str, (Value, Value), String)> {
    let full_inquiry = AuthorizationInquiryRequest {
        acquirer_ids: Some(vec!["1022188000000000001".into()]),
        acquirer_name: Some("Acme".into()),
        status: Some(AuthorizationStatus::Inactive),
        page_size: 100,
        page_number: 3,
    };
    let bare_inquiry = AuthorizationInquiryRequest {
        acquirer_ids: None,
        acquirer_name: None,
        status: None,
        page_size: 1,
        page_number: 1,
    };
    let generate = GenerateUrlRequest {
        authorization_request_id: "acqpop-0123456789abcdef0123456789abcdef01234567".into(),
        acquirer_id: "1022188000000000001".into(),
        products: all_products(),
    };
    let application = ApplicationInquiryResponse {
        result: ResultInfo::success(),
        application_name: "Demo".into(),
        environment: Environment::Production,
        role: Role::MerchantOnboarding,
        integrated_products: all_products(),
        sandbox_acceptance_passed: Some(false),
    };
    let url = GenerateUrlResponse {
        result: ResultInfo::success(),
        authorization_url: "https://devcenter.example/consent/abc".into(),
        expiry_time: "2026-11-28T04:08:56Z".parse().unwrap(),
    };
    let page = AuthorizationInquiryResponse {
        result: ResultInfo::success(),
        authorizations: vec![record()],
        total_count: 1,
    };
    let notification = Notification {
        notify_type: NotifyType::AuthorizationStatusChanged,
        acquirer_id: "1022188000000000002".into(),
        status: AuthorizationStatus::Inactive,
        update_time: "2026-11-27T04:08:56Z".parse().unwrap(),
    };
    let ack = ResultResponse {
        result: ResultInfo::success(),
    };
    // Types without optional fields serialize the same either way.
    let only = |v: Value| (v.clone(), v);
    let request = Document::request_schema;
    let success = |path: &str| format!("{}/oneOf/0", Document::answer_schema(path, "200"));
    let component = |name: &str| format!("/components/schemas/{name}");
    vec![
        (
            "ApplicationInquiryRequest",
            only(wire(&ApplicationInquiryRequest {})),
            request(APPLICATION),
        ),
        (
            "GenerateUrlRequest",
            only(wire(&generate)),
            request(GENERATE),
        ),
        (
            "AuthorizationInquiryRequest",
            (wire(&full_inquiry), wire(&bare_inquiry)),
            request(INQUIRY),
        ),
        (
            "ApplicationInquiryResponse",
            (
                wire(&application),
                wire(&ApplicationInquiryResponse {
                    sandbox_acceptance_passed: None,
                    ..application.clone()
                }),
            ),
            success(APPLICATION),
        ),
        ("GenerateUrlResponse", only(wire(&url)), success(GENERATE)),
        (
            "AuthorizationInquiryResponse",
            only(wire(&page)),
            success(INQUIRY),
        ),
        (
            "AuthorizationRecord",
            only(wire(&record())),
            component("AuthorizationRecord"),
        ),
        (
            "Notification",
            only(wire(&notification)),
            component("Notification"),
        ),
        (
            "Acknowledgement",
            only(wire(&ack)),
            component("Acknowledgement"),
        ),
    ]
}

/// The properties and required fields of the object schema at `pointer` (following one `$ref`).
fn object_shape(document: &Document, pointer: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut schema = document.at(pointer);
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        schema = document.at(target.trim_start_matches('#'));
    }
    let properties = schema.get("properties").map(keys).unwrap_or_default();
    let required = schema.get("required").map(strings).unwrap_or_default();
    (properties, required)
}

#[test]
fn wire_types_serialize_to_the_documented_shapes() {
    let document = Document::load();
    for (name, (full, minimal), pointer) in wire_samples() {
        document.assert_valid(&pointer, &full);
        document.assert_valid(&pointer, &minimal);
        let (properties, required) = object_shape(&document, &pointer);
        assert_eq!(
            keys(&full),
            properties,
            "{name}: fields vs documented properties"
        );
        assert_eq!(
            keys(&minimal),
            required,
            "{name}: mandatory fields vs required"
        );
    }
    // And the other way: what the document refuses, a wire type does not produce by accident.
    let missing = json!({"acquirerId": "1", "products": ["AutoDebit"]});
    assert!(
        document
            .validate(&Document::request_schema(GENERATE), &missing)
            .is_err()
    );
    assert!(serde_json::from_value::<GenerateUrlRequest>(missing).is_err());
}

#[test]
fn documented_examples_read_as_the_wire_types_and_back_unchanged() {
    let document = Document::load();
    let mut seen = 0;
    for path in [APPLICATION, GENERATE, INQUIRY] {
        for (name, example) in document.request_examples(path) {
            document.assert_valid(&Document::request_schema(path), &example);
            let what = format!("{path} request example {name}");
            match path {
                APPLICATION => {
                    round_trip::<ApplicationInquiryRequest>(&what, &example);
                }
                GENERATE => {
                    round_trip::<GenerateUrlRequest>(&what, &example);
                }
                _ => {
                    round_trip::<AuthorizationInquiryRequest>(&what, &example);
                }
            }
            seen += 1;
        }
        let codes = document.operation_codes(path);
        for (name, example) in document.answer_examples(path) {
            document.assert_valid(&Document::answer_schema(path, "200"), &example);
            let what = format!("{path} answer example {name}");
            let result: ResultResponse = serde_json::from_value(example.clone()).unwrap();
            assert!(codes.contains(result.result.result_code.as_str()), "{what}");
            if result.result.result_status != ResultStatus::S {
                round_trip::<ResultResponse>(&what, &example);
            } else {
                match path {
                    APPLICATION => {
                        round_trip::<ApplicationInquiryResponse>(&what, &example);
                    }
                    GENERATE => {
                        round_trip::<GenerateUrlResponse>(&what, &example);
                    }
                    _ => {
                        round_trip::<AuthorizationInquiryResponse>(&what, &example);
                    }
                }
            }
            seen += 1;
        }
    }
    let webhook = "/webhooks/authorizationStatusChanged/post";
    let notifications = document.examples(&format!(
        "{webhook}/requestBody/content/application~1json/examples"
    ));
    for (name, example) in notifications {
        document.assert_valid("/components/schemas/Notification", &example);
        round_trip::<Notification>(&format!("notification example {name}"), &example);
        seen += 1;
    }
    let acks = document.examples(&format!(
        "{webhook}/responses/200/content/application~1json/examples"
    ));
    for (name, example) in acks {
        document.assert_valid("/components/schemas/Acknowledgement", &example);
        round_trip::<ResultResponse>(&format!("acknowledgement example {name}"), &example);
        seen += 1;
    }
    let too_large =
        document.examples("/components/responses/BodyTooLarge/content/application~1json/examples");
    for (name, example) in too_large {
        document.assert_valid(&Document::answer_schema(GENERATE, "413"), &example);
        round_trip::<ResultResponse>(&format!("413 example {name}"), &example);
        seen += 1;
    }
    assert!(seen >= 25, "only {seen} examples");
}

async fn simulator(faults: FaultSettings) -> RunningSimulator {
    let mut config = Config::load(&repo("examples/simulator.yaml")).unwrap();
    config.faults = faults;
    Simulator::new(config)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A signed answer of the simulator: HTTP status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> String {
        self.body["result"]["resultCode"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Posts `body` to the simulator, signed for `client_id` by `signer` (or not at all), and
/// checks the answer is signed by the Developer Center.
async fn call_simulator(
    endpoint: &str,
    path: &str,
    client_id: &str,
    signer: Option<&SigningKey>,
    body: Vec<u8>,
) -> Answer {
    let time = signing::now();
    let mut request = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .header("Content-Type", "application/json; charset=UTF-8")
        .header(signing::CLIENT_ID_HEADER, client_id)
        .header(signing::REQUEST_TIME_HEADER, &time);
    if let Some(signer) = signer {
        let signature = signing::sign(signer, path, client_id, &time, &body);
        request = request.header(signing::SIGNATURE_HEADER, signature);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let devcenter = VerifyingKey::from_pem("devcenter", &key("devcenter-public.pem")).unwrap();
    signing::verify(
        &devcenter,
        path,
        &header(signing::CLIENT_ID_HEADER),
        &header(signing::RESPONSE_TIME_HEADER),
        &bytes,
        &header(signing::SIGNATURE_HEADER),
    )
    .unwrap_or_else(|e| panic!("{path}: the answer is not signed: {e}"));
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

/// Checks an answer's headers against the document's response headers.
fn assert_answer_headers(document: &Document, headers: &HeaderMap) {
    for (name, schema) in [
        ("Client-Id", "/components/headers/ClientId/schema"),
        ("Response-Time", "/components/headers/ResponseTime/schema"),
        ("Signature", "/components/headers/Signature/schema"),
    ] {
        let value = headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap();
        document.assert_valid(schema, &json!(value));
    }
}

#[tokio::test]
async fn the_simulator_answers_every_documented_code_of_each_operation_and_no_other() {
    let document = Document::load();
    let tsp = SigningKey::from_pem("tsp", &key("tsp-private.pem")).unwrap();
    // Signed by a key the simulator does not trust for the application.
    let stranger = SigningKey::from_pem("devcenter", &key("devcenter-private.pem")).unwrap();
    let sim = simulator(FaultSettings::default()).await;
    let endpoint = sim.endpoint();
    let invite = |id: &str, acquirer: &str, products: &[&str]| {
        serde_json::to_vec(
            &json!({"authorizationRequestId": id, "acquirerId": acquirer, "products": products}),
        )
        .unwrap()
    };
    let page = br#"{"pageSize": 10, "pageNumber": 1}"#.to_vec();
    let acme = "1022188000000000001";
    let mut cases: Vec<(&str, &str, Option<&SigningKey>, Vec<u8>)> = vec![
        (APPLICATION, DEMO, Some(&tsp), b"{}".to_vec()),
        (APPLICATION, DEMO, Some(&tsp), b"[]".to_vec()),
        (APPLICATION, "SANDBOX_NOBODY", Some(&tsp), b"{}".to_vec()),
        (APPLICATION, DEMO, Some(&stranger), b"{}".to_vec()),
        (INQUIRY, DEMO, Some(&tsp), page.clone()),
        (
            INQUIRY,
            DEMO,
            Some(&tsp),
            br#"{"pageSize": 101, "pageNumber": 1}"#.to_vec(),
        ),
        (INQUIRY, "SANDBOX_NOBODY", Some(&tsp), page.clone()),
        (INQUIRY, DEMO, None, page.clone()),
        (INQUIRY, VIEWER, Some(&tsp), page.clone()),
        (
            GENERATE,
            DEMO,
            Some(&tsp),
            invite("r1", acme, &["CashierPayment"]),
        ),
        (
            GENERATE,
            DEMO,
            Some(&tsp),
            invite("r1", acme, &["AutoDebit"]),
        ),
        (GENERATE, DEMO, Some(&tsp), invite("", acme, &["AutoDebit"])),
        (
            GENERATE,
            "SANDBOX_NOBODY",
            Some(&tsp),
            invite("r2", acme, &["AutoDebit"]),
        ),
        (
            GENERATE,
            DEMO,
            Some(&stranger),
            invite("r2", acme, &["AutoDebit"]),
        ),
        (
            GENERATE,
            VIEWER,
            Some(&tsp),
            invite("r2", acme, &["AutoDebit"]),
        ),
        (
            GENERATE,
            DEMO,
            Some(&tsp),
            invite("r3", acme, &["MerchantPresentedModePayment"]),
        ),
        (
            GENERATE,
            DEMO,
            Some(&tsp),
            invite("r4", "1022188000000000002", &["AutoDebit"]),
        ),
        (
            GENERATE,
            DEMO,
            Some(&tsp),
            invite("r5", "1022188999999999999", &["AutoDebit"]),
        ),
    ];
    let oversized = vec![b' '; 64 * 1024 + 1];
    for path in [APPLICATION, GENERATE, INQUIRY] {
        cases.push((path, DEMO, Some(&tsp), oversized.clone()));
    }
    let mut answered: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (path, client_id, signer, body) in cases {
        let answer = call_simulator(&endpoint, path, client_id, signer, body).await;
        let status = answer.status.to_string();
        document.assert_valid(&Document::answer_schema(path, &status), &answer.body);
        assert_answer_headers(&document, &answer.headers);
        answered.entry(path).or_default().insert(answer.code());
    }
    sim.shutdown().await;
    // The unknown outcomes come from the fault injector, as a gateway's would from its back end.
    for (faults, code) in [
        (
            FaultSettings {
                u_error_rate: 1.0,
                ..Default::default()
            },
            "UNKNOWN_EXCEPTION",
        ),
        (
            FaultSettings {
                throttle_rate: 1.0,
                ..Default::default()
            },
            "REQUEST_TRAFFIC_EXCEED_LIMIT",
        ),
    ] {
        let sim = simulator(faults).await;
        for (path, body) in [
            (APPLICATION, b"{}".to_vec()),
            (GENERATE, invite("r9", acme, &["AutoDebit"])),
            (INQUIRY, page.clone()),
        ] {
            let answer = call_simulator(&sim.endpoint(), path, DEMO, Some(&tsp), body).await;
            document.assert_valid(&Document::answer_schema(path, "200"), &answer.body);
            assert_eq!(answer.code(), code, "{path}");
            answered.entry(path).or_default().insert(answer.code());
        }
        sim.shutdown().await;
    }
    for path in [APPLICATION, GENERATE, INQUIRY] {
        assert_eq!(
            answered[path],
            document.operation_codes(path),
            "{path}: codes answered vs codes documented"
        );
    }
}

#[tokio::test]
async fn the_simulator_serves_the_document() {
    let sim = simulator(FaultSettings::default()).await;
    let served: Value = reqwest::get(format!("{}/openapi.json", sim.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, Document::load().0);
    let yaml = reqwest::get(format!("{}/openapi.yaml", sim.endpoint()))
        .await
        .unwrap();
    assert_eq!(
        yaml.headers()["content-type"],
        "application/yaml; charset=utf-8"
    );
    let text = yaml.text().await.unwrap();
    let file = std::fs::read_to_string(repo("docs/devcenter-api/openapi.yaml")).unwrap();
    assert_eq!(text, file);
    sim.shutdown().await;
}

/// A gateway that answers every call with the example it is given, signed with the Developer
/// Center test key, and records whether the requests it got are ones the document accepts.
#[derive(Default)]
struct ExampleGateway {
    answer: Value,
    received: Vec<(String, Value)>,
    problems: Vec<String>,
}

type Gateway = Arc<Mutex<ExampleGateway>>;

async fn answer_with_example(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let document = Document::load();
    let path = uri.path().to_owned();
    let mut problems = Vec::new();
    for (name, schema) in [
        ("Client-Id", "/components/parameters/ClientId/schema"),
        ("Request-Time", "/components/parameters/RequestTime/schema"),
        ("Signature", "/components/parameters/Signature/schema"),
    ] {
        match headers.get(name).and_then(|v| v.to_str().ok()) {
            Some(value) => problems.extend(document.validate(schema, &json!(value)).err()),
            None => problems.push(format!("{path}: no {name} header")),
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let tsp = VerifyingKey::from_pem("tsp", &key("tsp-public.pem")).unwrap();
    let (client_id, time) = (
        header(signing::CLIENT_ID_HEADER),
        header(signing::REQUEST_TIME_HEADER),
    );
    if let Err(e) = signing::verify(&tsp, &path, &client_id, &time, &body, &header("Signature")) {
        problems.push(format!("{path}: the request's signature: {e}"));
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    problems.extend(
        document
            .validate(&Document::request_schema(&path), &request)
            .err(),
    );
    let answer = {
        let mut gateway = gateway.lock().unwrap();
        gateway.problems.extend(problems);
        gateway.received.push((path.clone(), request));
        serde_json::to_vec(&gateway.answer).unwrap()
    };
    let devcenter = SigningKey::from_pem("devcenter", &key("devcenter-private.pem")).unwrap();
    let time = signing::now();
    let signature = signing::sign(&devcenter, &path, &client_id, &time, &answer);
    (
        StatusCode::OK,
        [
            ("Content-Type", "application/json; charset=UTF-8".to_owned()),
            (signing::CLIENT_ID_HEADER, client_id),
            (signing::RESPONSE_TIME_HEADER, time),
            (signing::SIGNATURE_HEADER, signature),
        ],
        answer,
    )
}

fn client(endpoint: &str) -> DevCenterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ClientConfig::new(
        endpoint.parse().unwrap(),
        DEMO,
        SigningKey::from_pem("tsp", &key("tsp-private.pem")).unwrap(),
        VerifyingKey::from_pem("devcenter", &key("devcenter-public.pem")).unwrap(),
    );
    config.max_retries = 1;
    config.retry_base_delay = Duration::from_millis(1);
    config.retry_max_delay = Duration::from_millis(2);
    DevCenterClient::new(config).unwrap()
}

/// What the client made of an answer: the success body as JSON, or the error.
async fn call_with(client: &DevCenterClient, path: &str, request: &Value) -> Result<Value, Error> {
    match path {
        APPLICATION => client.inquire_application().await.map(|r| wire(&r)),
        GENERATE => {
            let request: GenerateUrlRequest = serde_json::from_value(request.clone()).unwrap();
            client.generate_url(&request).await.map(|r| wire(&r))
        }
        _ => {
            let request: AuthorizationInquiryRequest =
                serde_json::from_value(request.clone()).unwrap();
            client
                .inquire_authorizations(&request)
                .await
                .map(|r| wire(&r))
        }
    }
}

#[tokio::test]
async fn the_client_reads_every_documented_example_as_the_document_says() {
    let document = Document::load();
    let gateway: Gateway = Arc::default();
    let app = Router::new()
        .fallback(answer_with_example)
        .with_state(gateway.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = client(&endpoint);
    let mut calls = 0;
    for path in [APPLICATION, GENERATE, INQUIRY] {
        for (request_name, request) in document.request_examples(path) {
            for (answer_name, answer) in document.answer_examples(path) {
                gateway.lock().unwrap().answer = answer.clone();
                let what = format!("{path}: request {request_name}, answer {answer_name}");
                let outcome = call_with(&client, path, &request).await;
                let result = &answer["result"];
                match (result["resultStatus"].as_str().unwrap(), outcome) {
                    ("S", Ok(body)) => assert_eq!(body, answer, "{what}"),
                    ("F", Err(Error::Rejected { code, message, .. })) => {
                        assert_eq!(code.as_str(), result["resultCode"], "{what}");
                        assert_eq!(message, result["resultMessage"], "{what}");
                    }
                    ("U", Err(error @ Error::Unavailable { .. })) => {
                        assert!(error.is_retryable(), "{what}");
                        let code = result["resultCode"].as_str().unwrap();
                        assert!(error.to_string().contains(code), "{what}: {error}");
                    }
                    (status, outcome) => panic!("{what}: {status} read as {outcome:?}"),
                }
                calls += 1;
            }
            // The client sends the document's request example as it is.
            let received = gateway.lock().unwrap().received.last().cloned().unwrap();
            let expected = if path == APPLICATION {
                json!({})
            } else {
                request.clone()
            };
            assert_eq!(
                received,
                (path.to_owned(), expected),
                "{path}: {request_name}"
            );
        }
    }
    let gateway = gateway.lock().unwrap();
    assert!(calls >= 15, "only {calls} calls");
    assert!(
        gateway.problems.is_empty(),
        "the client sent requests the document refuses:\n{}",
        gateway.problems.join("\n")
    );
}

#[tokio::test]
async fn notifications_and_acknowledgements_follow_the_webhook() {
    let document = Document::load();
    let webhook = "/webhooks/authorizationStatusChanged/post";
    let client = client("http://127.0.0.1:9/");
    let devcenter = SigningKey::from_pem("devcenter", &key("devcenter-private.pem")).unwrap();
    let examples = document.examples(&format!(
        "{webhook}/requestBody/content/application~1json/examples"
    ));
    for (name, example) in examples {
        let body = serde_json::to_vec(&example).unwrap();
        let time = signing::now();
        let mut headers = HeaderMap::new();
        headers.insert(signing::CLIENT_ID_HEADER, DEMO.parse().unwrap());
        headers.insert(signing::REQUEST_TIME_HEADER, time.parse().unwrap());
        let signature = signing::sign(&devcenter, "/notify", DEMO, &time, &body);
        headers.insert(signing::SIGNATURE_HEADER, signature.parse().unwrap());
        let notification = client
            .verify_notification("/notify", &headers, &body)
            .unwrap_or_else(|e| panic!("notification example {name}: {e}"));
        assert_eq!(wire(&notification), example, "{name}");
    }
    let (headers, body) = client.acknowledge_notification("/notify");
    document.assert_valid(
        "/components/schemas/Acknowledgement",
        &serde_json::from_slice(&body).unwrap(),
    );
    assert_answer_headers(&document, &headers);
    let tsp = VerifyingKey::from_pem("tsp", &key("tsp-public.pem")).unwrap();
    let header = |name: &str| headers[name].to_str().unwrap();
    signing::verify(
        &tsp,
        "/notify",
        header("Client-Id"),
        header("Response-Time"),
        &body,
        header("Signature"),
    )
    .unwrap();

    // The simulator's notifications, as the operator's endpoint receives them.
    let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let store = received.clone();
    let ack_client = Arc::new(client);
    let receiver = Router::new().route(
        "/notify",
        post(move |headers: HeaderMap, body: Bytes| {
            let (store, ack_client) = (store.clone(), ack_client.clone());
            async move {
                store.lock().unwrap().push((headers, body));
                let (headers, body) = ack_client.acknowledge_notification("/notify");
                (StatusCode::OK, headers, body)
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let sim = simulator(FaultSettings::default()).await;
    let http = reqwest::Client::new();
    let set = http
        .post(format!("{}/sim/apps/{DEMO}/notify-url", sim.endpoint()))
        .json(&json!({"url": notify_url}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    let tsp_key = SigningKey::from_pem("tsp", &key("tsp-private.pem")).unwrap();
    let invite = br#"{"authorizationRequestId":"n1","acquirerId":"1022188000000000001","products":["CashierPayment"]}"#;
    let issued = call_simulator(
        &sim.endpoint(),
        GENERATE,
        DEMO,
        Some(&tsp_key),
        invite.to_vec(),
    )
    .await;
    assert_eq!(issued.code(), "SUCCESS");
    let granted = http
        .post(format!(
            "{}/sim/acqp/1022188000000000001/authorize",
            sim.endpoint()
        ))
        .json(&json!({"clientId": DEMO}))
        .send()
        .await
        .unwrap();
    assert!(granted.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (headers, body) = loop {
        if let Some(first) = received.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let notification: Value = serde_json::from_slice(&body).unwrap();
    document.assert_valid("/components/schemas/Notification", &notification);
    for (name, schema) in [
        ("Client-Id", "/components/parameters/ClientId/schema"),
        ("Request-Time", "/components/parameters/RequestTime/schema"),
        ("Signature", "/components/parameters/Signature/schema"),
    ] {
        let value = headers[name].to_str().unwrap();
        document.assert_valid(schema, &json!(value));
    }
    assert_eq!(notification["status"], "Active");
    sim.shutdown().await;
}

#[test]
fn the_guide_shows_the_signing_vectors_the_unit_tests_use() {
    let guide = std::fs::read_to_string(repo("docs/devcenter-api/README.md")).unwrap();
    let tsp = VerifyingKey::from_pem("tsp", &key("tsp-public.pem")).unwrap();
    for name in ["generate-url", "empty-body", "utf8-body"] {
        let fixture = |ext: &str| {
            std::fs::read_to_string(repo(&format!("tests/fixtures/signing/{name}.{ext}"))).unwrap()
        };
        let (content, signature) = (fixture("content"), fixture("signature"));
        let header = format!("algorithm=RSA256,keyVersion=1,signature={signature}");
        for block in [&content, &header] {
            assert!(
                guide.contains(&format!("```text\n{block}\n```")),
                "the guide does not show vector {name} as in tests/fixtures/signing:\n{block}"
            );
        }
        // The vector is what it claims: the content's parts, signed with the test key.
        let (request_line, rest) = content.split_once('\n').unwrap();
        let mut parts = rest.splitn(3, '.');
        let (client_id, time, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = request_line.strip_prefix("POST ").unwrap();
        signing::verify(&tsp, path, client_id, time, body.as_bytes(), &header)
            .unwrap_or_else(|e| panic!("vector {name}: {e}"));
    }
}
