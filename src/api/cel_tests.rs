//! Every CEL rule of the CRDs, run locally with kube's CEL engine: one valid and one invalid
//! case each, asserting the message the user will read.

use super::*;
use serde_json::{Value, json};

fn authorization(spec: Value) -> Value {
    json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "metadata": {"name": "acme", "namespace": "payments"},
        "spec": spec,
    })
}

fn valid_authorization_spec() -> Value {
    json!({
        "applicationRef": {"name": "demo"},
        "acqp": {"id": "1022188000000000001"},
        "products": ["CashierPayment"],
        "tokenSecret": {"name": "acme-token", "key": "agentToken"},
        "invitation": {
            "webhook": {"url": "https://hooks.example.com/acqp"},
            "email": {"to": ["ops@acqp.example.com"], "cc": ["cto+acqp@acqp.example.com"]},
        },
        "pollInterval": "30s",
    })
}

fn application(spec: Value) -> Value {
    json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "DeveloperCenterApplication",
        "metadata": {"name": "demo", "namespace": "payments"},
        "spec": spec,
    })
}

fn valid_application_spec() -> Value {
    json!({
        "environment": "Sandbox",
        "endpoint": "https://devcenter.example.com",
        "clientId": "SANDBOX_ACQP_OPERATOR_DEMO",
        "credentialsSecretRef": {"name": "demo-credentials", "privateKeyKey": "privateKey", "devCenterPublicKeyKey": "devCenterPublicKey"},
        "pollInterval": "60s",
        "notifications": {"email": {
            "host": "smtp.example.com",
            "port": 587,
            "tls": "StartTls",
            "from": "acqp-operator@tsp.example.com",
            "notify": ["payments@tsp.example.com"],
            "secretRef": {"name": "smtp", "usernameKey": "username", "passwordKey": "password", "caKey": "ca.crt"},
        }},
    })
}

/// Runs the CRD's CEL rules and returns the messages of the failures.
fn authorization_errors(spec: Value) -> String {
    let object: AcqpAuthorization = serde_json::from_value(authorization(spec)).unwrap();
    match object.validate_cel() {
        Ok(()) => String::new(),
        Err(errors) => errors.to_string(),
    }
}

fn application_errors(spec: Value) -> String {
    let object: DeveloperCenterApplication = serde_json::from_value(application(spec)).unwrap();
    match object.validate_cel() {
        Ok(()) => String::new(),
        Err(errors) => errors.to_string(),
    }
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    *base
        .pointer_mut(pointer)
        .expect("path exists in the valid spec") = value;
    base
}

#[test]
fn valid_specs_pass() {
    assert_eq!(authorization_errors(valid_authorization_spec()), "");
    assert_eq!(application_errors(valid_application_spec()), "");
}

#[test]
fn authorization_rules_reject_with_their_messages() {
    let cases = [
        ("/products", json!([]), "products must list at least one"),
        ("/acqp/id", json!("1022-188"), "letters and digits only"),
        ("/acqp/id", json!(""), "letters and digits only"),
        (
            "/applicationRef/name",
            json!("Demo_App"),
            "applicationRef.name must be",
        ),
        (
            "/tokenSecret/name",
            json!("Acme Token"),
            "tokenSecret.name must be a Secret name",
        ),
        (
            "/tokenSecret/key",
            json!("agent/token"),
            "tokenSecret.key must be a Secret data key",
        ),
        (
            "/invitation/webhook/url",
            json!("ftp://x"),
            "webhook.url must be an http",
        ),
        (
            "/invitation/email/to",
            json!(["Ops <ops@acqp.example.com>"]),
            "every entry of invitation.email.to must be a plain e-mail address",
        ),
        (
            "/invitation/email/cc",
            json!(["ops@acqp.example.com\r\nBcc: x@evil.example"]),
            "every entry of invitation.email.cc must be a plain e-mail address",
        ),
        (
            "/invitation/email/to",
            json!(["no-domain@localhost"]),
            "every entry of invitation.email.to must be a plain e-mail address",
        ),
        (
            "/pollInterval",
            json!("soon"),
            "pollInterval must be a duration",
        ),
        (
            "/pollInterval",
            json!("500ms"),
            "pollInterval must be a duration",
        ),
    ];
    for (pointer, value, expected) in cases {
        let errors = authorization_errors(with(valid_authorization_spec(), pointer, value.clone()));
        assert!(
            errors.contains(expected),
            "{pointer}={value}: got {errors:?}"
        );
    }
}

#[test]
fn application_rules_reject_with_their_messages() {
    let cases = [
        (
            "/endpoint",
            json!("devcenter.example.com"),
            "endpoint must be an http",
        ),
        (
            "/endpoint",
            json!("https://x.example.com/?q=1"),
            "endpoint must be an http",
        ),
        (
            "/clientId",
            json!("SANDBOX ID"),
            "clientId may contain only",
        ),
        ("/clientId", json!("2022ABCDEF"), "starts with SANDBOX_"),
        (
            "/credentialsSecretRef/name",
            json!("UPPER"),
            "name must be a Secret name",
        ),
        (
            "/credentialsSecretRef/privateKeyKey",
            json!("a b"),
            "privateKeyKey must be a Secret data key",
        ),
        (
            "/pollInterval",
            json!("1 minute"),
            "pollInterval must be a duration",
        ),
        (
            "/notifications/email/host",
            json!("smtp://smtp.example.com:25"),
            "notifications.email.host must be a host name",
        ),
        (
            "/notifications/email/from",
            json!("TSP <ops@tsp.example.com>"),
            "notifications.email.from must be a plain e-mail address",
        ),
        (
            "/notifications/email/notify",
            json!(["team@tsp.example.com", "nobody"]),
            "every entry of notifications.email.notify must be",
        ),
        (
            "/notifications/email/tls",
            json!("None"),
            "allowed only to an SMTP server on loopback",
        ),
        (
            "/notifications/email/secretRef/caKey",
            json!("ca crt"),
            "caKey must be a Secret data key",
        ),
    ];
    for (pointer, value, expected) in cases {
        let errors = application_errors(with(valid_application_spec(), pointer, value.clone()));
        assert!(
            errors.contains(expected),
            "{pointer}={value}: got {errors:?}"
        );
    }
    let production = with(
        valid_application_spec(),
        "/environment",
        json!("Production"),
    );
    assert!(application_errors(production).contains("belongs to the Sandbox environment"));
    let loopback = with(
        with(
            valid_application_spec(),
            "/notifications/email/tls",
            json!("None"),
        ),
        "/notifications/email/host",
        json!("127.0.0.1"),
    );
    assert_eq!(application_errors(loopback), "", "clear text to loopback");
}
