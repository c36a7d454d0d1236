//! End to end: invitations and status-change notices by e-mail, on the real control plane with
//! the simulator, the `acqp-operator` binary and a real SMTP server (aiosmtpd, `hack/smtp`).
//!
//! - `invitations_and_notices_reach_the_smtp_server_once_each`: STARTTLS with a CA made by
//!   openssl and an SMTP login; the ACQP's contacts get the URL (recipients, subject, URL,
//!   expiry), once, also across an operator restart; the TSP team hears of the grant, of the
//!   rotation after a scope change (which mails a second URL) and of the revocation; no mail
//!   holds the Agent-Token, the notices hold its fingerprint.
//! - `smtp_failures_are_reported_and_nothing_goes_out_in_clear`: a server without STARTTLS gets
//!   nothing when StartTls is asked for, a server that refuses the mail yields
//!   InvitationDelivered=False with its answer, a MailFailed Event, and the resource still
//!   reconciles; invalid addresses are refused at admission.
//! - `implicit_tls_trusts_the_secrets_ca`: SMTPS from the first byte, verified with the CA
//!   from the application's Secret.
//! - `kubectl_explain_describes_every_email_field`: each field of `spec.notifications`,
//!   `spec.invitation.email` and `status.email` has a description that `kubectl explain` shows.

mod sim_support;
mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sim_support::{ACME, BETA, DEMO};
use support::{
    env::{Env, STEP, condition},
    smtp::{Certificates, SmtpOptions, SmtpServer},
    text,
};
const LOGIN: (&str, &str) = ("operator", "s3cret-smtp-password");

impl Env {
    /// The example application named `name`, mailing through `smtp` with `email` settings.
    fn apply_mailing_application(&self, name: &str, email: Value) {
        let manifest = support::fixture::example_application(&self.api.endpoint, "1s")
            .replace("name: demo\n", &format!("name: {name}\n"));
        self.apply(&manifest);
        let patch = json!({"spec": {"notifications": {"email": email}}}).to_string();
        self.cluster.kubectl_ok_in(
            &self.ns,
            &["patch", "dcapp", name, "--type=merge", "-p", &patch],
        );
    }

    fn apply_authorization(&self, name: &str, app: &str, acqp: &str, products: &[&str]) {
        let manifest = json!({
            "apiVersion": "acqp-operator.io/v1alpha1",
            "kind": "AcqpAuthorization",
            "metadata": {"name": name},
            "spec": {
                "applicationRef": {"name": app},
                "acqp": {"id": acqp, "name": "Acme Acquiring"},
                "products": products,
                "invitation": {"email": {
                    "to": ["ops@acme.example"],
                    "cc": ["cto@acme.example"],
                }},
            },
        });
        self.apply(&manifest.to_string());
    }

    /// Waits until `server` holds `count` messages and returns them.
    async fn wait_messages(&self, server: &SmtpServer, count: usize) -> Vec<Value> {
        self.wait_for(
            &format!("{count} message(s) at the SMTP server"),
            STEP,
            || {
                let messages = server.messages();
                if messages.len() >= count {
                    Ok(messages)
                } else {
                    Err(format!("{} message(s)", messages.len()))
                }
            },
        )
        .await
    }

    async fn acqp(&self, acquirer: &str, action: &str) {
        self.api
            .sim_ok(
                &format!("/sim/acqp/{acquirer}/{action}"),
                &json!({"clientId": DEMO}),
            )
            .await;
    }

    /// The Agent-Token in the operator's Secret.
    fn token(&self, secret: &str) -> String {
        let secret = self.object(&format!("secret/{secret}"));
        let encoded = secret["data"]["agentToken"].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    }

    fn events_with_reason(&self, name: &str, reason: &str) -> Vec<Value> {
        let selector = format!("involvedObject.name={name},reason={reason}");
        let list: Value = serde_json::from_str(&self.cluster.kubectl_ok_in(
            &self.ns,
            &["get", "events", "--field-selector", &selector, "-o", "json"],
        ))
        .unwrap();
        list["items"].as_array().unwrap().clone()
    }
}

/// acqp_operator_reconciles_total of the AcqpAuthorization controller.
fn reconciles(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("acqp_operator_reconciles_total"))
        .filter(|l| l.contains("acqpauthorization"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the test looks at in a stored message, one line each, for failure output.
fn summary(messages: &[Value]) -> String {
    messages
        .iter()
        .map(|m| format!("{} {} {}", m["messageId"], m["rcptTos"], m["subject"]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_and_notices_reach_the_smtp_server_once_each() {
    let mut env = Env::new("email").await;
    let dir = tempfile::tempdir().unwrap();
    let certs = Certificates::make(&dir.path().join("certs"));
    let smtp = SmtpServer::start(
        dir.path(),
        &SmtpOptions {
            tls: Some(certs.clone()),
            auth: Some(format!("{}:{}", LOGIN.0, LOGIN.1)),
            ..Default::default()
        },
    );
    let ca = std::fs::read_to_string(&certs.ca_cert).unwrap();
    env.apply(
        &json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "smtp-login"},
            "stringData": {"username": LOGIN.0, "password": LOGIN.1, "ca.crt": ca},
        })
        .to_string(),
    );
    env.apply_mailing_application(
        "demo",
        json!({
            "host": "127.0.0.1",
            "port": smtp.addr.port(),
            "tls": "StartTls",
            "from": "acqp-operator@tsp.example",
            "notify": ["payments-team@tsp.example"],
            "secretRef": {"name": "smtp-login", "caKey": "ca.crt"},
        }),
    );
    env.apply_authorization("acme", "demo", ACME, &["CashierPayment"]);

    // The invitation: to the ACQP's contacts, over STARTTLS, logged in, with the URL.
    let object = env
        .wait_condition("acqpauth/acme", "InvitationDelivered", "True", "Sent")
        .await;
    let url = object["status"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let messages = env.wait_messages(&smtp, 1).await;
    assert_eq!(messages.len(), 1, "{}", summary(&messages));
    let invitation = &messages[0];
    assert_eq!(
        invitation["rcptTos"],
        json!(["ops@acme.example", "cto@acme.example"])
    );
    assert_eq!(invitation["mailFrom"], "acqp-operator@tsp.example");
    assert_eq!(invitation["tls"], true, "STARTTLS before DATA");
    assert_eq!(invitation["login"], LOGIN.0);
    assert_eq!(
        invitation["subject"],
        "Authorize Cashier Payment for TSP application demo (SANDBOX_ACQP_OPERATOR_DEMO)"
    );
    let body = invitation["text"].as_str().unwrap();
    assert!(body.contains(&url), "the URL in the text part:\n{body}");
    assert!(body.contains("Acme Acquiring"), "{body}");
    let expires = object["status"]["authorizationUrlExpiresAt"]
        .as_str()
        .unwrap();
    assert!(
        body.contains(&expires[..16]),
        "the expiry {expires} in the text:\n{body}"
    );
    assert!(invitation["html"].as_str().unwrap().contains("href="));
    let delivery = &object["status"]["email"]["invitation"];
    assert_eq!(delivery["messageId"], invitation["messageId"]);
    assert!(
        !delivery["messageId"].as_str().unwrap().contains(&url),
        "the Message-ID is a digest"
    );
    assert_eq!(
        delivery["recipients"],
        json!(["ops@acme.example", "cto@acme.example"])
    );
    assert!(delivery["sentAt"].is_string());
    assert_eq!(env.events_with_reason("acme", "MailSent").len(), 1);

    // An operator restart sends nothing again: the status says the URL was mailed.
    env.restart_operator().await;
    env.operator.wait_ready(STEP).await;
    // Wait until the restarted operator has reconciled the resource a few times (it polls
    // every second), then look again.
    let deadline = Instant::now() + STEP;
    while reconciles(&env.operator.metrics().await) < 3.0 {
        assert!(Instant::now() < deadline, "no reconciles after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 1, "{}", summary(&smtp.messages()));

    // The grant: the TSP team is told, with the fingerprint and never the token.
    env.acqp(ACME, "authorize").await;
    let messages = env.wait_messages(&smtp, 2).await;
    let granted = env
        .wait_condition("acqpauth/acme", "Ready", "True", "Authorized")
        .await;
    let authorized = &messages[1];
    assert_eq!(authorized["rcptTos"], json!(["payments-team@tsp.example"]));
    let subject = authorized["subject"].as_str().unwrap();
    assert!(subject.contains("authorized Cashier Payment"), "{subject}");
    let fingerprint = granted["status"]["tokenFingerprint"].as_str().unwrap();
    assert!(authorized["text"].as_str().unwrap().contains(fingerprint));
    let first_token = env.token("acme-agent-token");

    // A scope change: a second URL mailed to the ACQP, then the rotation told to the team.
    let patch = json!({"spec": {"products": ["CashierPayment", "AutoDebit"]}}).to_string();
    env.cluster.kubectl_ok_in(
        &env.ns,
        &["patch", "acqpauth", "acme", "--type=merge", "-p", &patch],
    );
    let messages = env.wait_messages(&smtp, 3).await;
    let second = &messages[2];
    assert_eq!(second["rcptTos"], invitation["rcptTos"]);
    assert_ne!(
        second["messageId"], invitation["messageId"],
        "a new URL, a new mail"
    );
    let subject = second["subject"].as_str().unwrap();
    assert!(subject.contains("Cashier Payment, Auto Debit"), "{subject}");
    env.acqp(ACME, "authorize").await;
    let messages = env.wait_messages(&smtp, 4).await;
    assert!(
        messages[3]["subject"]
            .as_str()
            .unwrap()
            .contains("new Agent-Token"),
        "{}",
        summary(&messages)
    );
    let second_token = env.token("acme-agent-token");
    assert_ne!(first_token, second_token);

    // The revocation.
    env.acqp(ACME, "deauthorize").await;
    let messages = env.wait_messages(&smtp, 5).await;
    let revoked = &messages[4];
    assert!(
        revoked["subject"].as_str().unwrap().contains("revoked"),
        "{}",
        summary(&messages)
    );
    assert_eq!(revoked["rcptTos"], json!(["payments-team@tsp.example"]));

    // One mail each, and no token in any of them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 5, "{}", summary(&messages));
    let ids: std::collections::BTreeSet<&str> = messages
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "{}", summary(&messages));
    for message in &messages {
        let raw = message["data"].as_str().unwrap();
        for token in [&first_token, &second_token] {
            assert!(
                !raw.contains(token.as_str()),
                "a token in {}",
                message["subject"]
            );
        }
        assert!(!raw.contains(LOGIN.1), "the SMTP password in a mail");
    }
    assert!(
        !env.operator.logs().contains(LOGIN.1),
        "the SMTP password in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_failures_are_reported_and_nothing_goes_out_in_clear() {
    let env = Env::new("email-failures").await;
    let dir = tempfile::tempdir().unwrap();
    let plain = SmtpServer::start(&dir.path().join("plain"), &SmtpOptions::default());
    let busy = SmtpServer::start(
        &dir.path().join("busy"),
        &SmtpOptions {
            reject: Some("451 4.3.0 mailbox busy, try later".into()),
            ..Default::default()
        },
    );
    // StartTls asked for, but the server offers none: nothing is sent in clear.
    env.apply_mailing_application(
        "demo",
        json!({"host": "127.0.0.1", "port": plain.addr.port(), "tls": "StartTls",
               "from": "acqp-operator@tsp.example"}),
    );
    // Clear text on loopback is allowed, and this server refuses the mail.
    env.apply_mailing_application(
        "other",
        json!({"host": "127.0.0.1", "port": busy.addr.port(), "tls": "None",
               "from": "acqp-operator@tsp.example"}),
    );
    env.apply_authorization("acme", "demo", ACME, &["CashierPayment"]);
    env.apply_authorization("beta", "other", BETA, &["CashierPayment"]);

    let acme = env
        .wait_condition(
            "acqpauth/acme",
            "InvitationDelivered",
            "False",
            "SendFailed",
        )
        .await;
    let message = condition(&acme, "InvitationDelivered").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("does not offer STARTTLS"), "{message}");
    assert!(plain.messages().is_empty(), "nothing in clear text");
    assert_eq!(
        acme["status"]["phase"], "AwaitingAuthorization",
        "reconciling goes on"
    );

    let beta = env
        .wait_condition(
            "acqpauth/beta",
            "InvitationDelivered",
            "False",
            "SendFailed",
        )
        .await;
    let message = condition(&beta, "InvitationDelivered").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("(451)") && message.contains("4.3.0 mailbox busy"),
        "the server's answer: {message}"
    );
    assert!(beta["status"]["authorizationUrl"].is_string());
    assert!(beta["status"]["email"]["invitation"]["lastError"].is_string());
    let warnings = env.events_with_reason("beta", "MailFailed");
    assert_eq!(warnings.len(), 1, "one Warning for the first failure");

    // The grant is not held up by the mail.
    env.acqp(BETA, "authorize").await;
    env.wait_condition("acqpauth/beta", "Ready", "True", "Authorized")
        .await;

    // Admission refuses addresses that are not plain e-mail addresses, and clear text to a
    // host other than loopback.
    let bad = json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "metadata": {"name": "bad"},
        "spec": {
            "applicationRef": {"name": "demo"},
            "acqp": {"id": ACME},
            "products": ["CashierPayment"],
            "invitation": {"email": {"to": ["Ops <ops@acme.example>\r\nBcc: x@evil.example"]}},
        },
    });
    let file = dir.path().join("bad.json");
    std::fs::write(&file, bad.to_string()).unwrap();
    let out = env
        .cluster
        .kubectl_in(&env.ns, &["apply", "-f", &file.display().to_string()]);
    assert!(!out.status.success());
    let refused = text(&out);
    assert!(
        refused.contains("every entry of invitation.email.to must be a plain e-mail address"),
        "{refused}"
    );
    let patch = json!({"spec": {"notifications": {"email": {
        "host": "smtp.example.com", "tls": "None", "from": "a@tsp.example"}}}})
    .to_string();
    let out = env.cluster.kubectl_in(
        &env.ns,
        &["patch", "dcapp", "demo", "--type=merge", "-p", &patch],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("allowed only to an SMTP server on loopback"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_trusts_the_secrets_ca() {
    let env = Env::new("email-smtps").await;
    let dir = tempfile::tempdir().unwrap();
    let certs = Certificates::make(&dir.path().join("certs"));
    let smtps = SmtpServer::start(
        dir.path(),
        &SmtpOptions {
            tls: Some(certs.clone()),
            implicit_tls: true,
            auth: Some(format!("{}:{}", LOGIN.0, LOGIN.1)),
            ..Default::default()
        },
    );
    let ca = std::fs::read_to_string(&certs.ca_cert).unwrap();
    env.apply(
        &json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "smtp-login"},
            "stringData": {"username": LOGIN.0, "password": LOGIN.1, "ca.crt": ca},
        })
        .to_string(),
    );
    env.apply_mailing_application(
        "demo",
        json!({"host": "127.0.0.1", "port": smtps.addr.port(), "tls": "ImplicitTls",
               "from": "acqp-operator@tsp.example",
               "secretRef": {"name": "smtp-login", "caKey": "ca.crt"}}),
    );
    env.apply_authorization("acme", "demo", ACME, &["CashierPayment"]);
    env.wait_condition("acqpauth/acme", "InvitationDelivered", "True", "Sent")
        .await;
    let messages = env.wait_messages(&smtps, 1).await;
    assert_eq!(messages[0]["tls"], true);
    assert_eq!(messages[0]["login"], LOGIN.0);
}

/// Every e-mail field has a description in the CRDs, and `kubectl explain` shows it.
#[tokio::test]
async fn kubectl_explain_describes_every_email_field() {
    let cluster = support::cluster().await;
    let roots = [
        (
            "developercenterapplications.acqp-operator.io",
            "developercenterapplication",
            &["spec", "notifications"][..],
        ),
        (
            "acqpauthorizations.acqp-operator.io",
            "acqpauthorization",
            &["spec", "invitation", "email"][..],
        ),
        (
            "acqpauthorizations.acqp-operator.io",
            "acqpauthorization",
            &["status", "email"][..],
        ),
    ];
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    // A control plane that just started publishes the CRDs' OpenAPI a moment after they are
    // established.
    let deadline = Instant::now() + STEP;
    while !cluster
        .kubectl(&["explain", "developercenterapplication.spec.notifications"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "kubectl explain never found the CRDs"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (crd, kind, path) in roots {
        let crd: Value =
            serde_json::from_str(&cluster.kubectl_ok(&["get", "crd", crd, "-o", "json"])).unwrap();
        let mut schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        for field in path {
            schema = &schema["properties"][field];
        }
        let mut fields = vec![(path.join("."), schema)];
        while let Some((name, schema)) = fields.pop() {
            let description = schema["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{kind}.{name} has no description");
            let explained = cluster.kubectl_ok(&["explain", &format!("{kind}.{name}")]);
            assert!(
                words(&explained).contains(&words(description)),
                "`kubectl explain {kind}.{name}` does not show {description:?}:\n{explained}"
            );
            let children = schema["properties"]
                .as_object()
                .or(schema["items"]["properties"].as_object());
            for (child, child_schema) in children.into_iter().flatten() {
                fields.push((format!("{name}.{child}"), child_schema));
            }
        }
    }
}
