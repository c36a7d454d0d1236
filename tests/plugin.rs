//! `kubectl acqp` end to end: the real `kubectl-acqp` binary against the real control plane,
//! the simulator and the `acqp-operator` binary, checking what each subcommand prints; and the
//! request annotations it sets (refresh, reinvite across an operator SIGKILL, pause, malformed
//! values) as the operator honours them; and a day-two rebuild: a released Secret adopted by a
//! new resource for the same ACQP, with the existing grant and no new URL.
//!
//! The application polls every 10 minutes and the simulator sends no notifications, so every
//! change the operator notices within a test's time comes from a refresh request.

mod sim_support;
mod support;

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sim_support::{ACME, BETA, DEMO, GENERATE};
use support::{
    env::{Env, STEP, condition},
    text,
};

const REINVITE: &str = "acqp-operator.io/reinvite-requested-at";

impl Env {
    /// [`Env::new`] with the example application, polling every 10 minutes, Ready.
    async fn with_ready_application(prefix: &str) -> Env {
        let env = Env::new(prefix).await;
        env.apply_application("10m");
        env.wait_ready("dcapp/demo", "True", "Connected").await;
        env
    }

    /// `kubectl acqp -n <ns> args...` with the cluster's kubeconfig, without a terminal.
    fn plugin(&self, args: &[&str]) -> Output {
        Command::new("setsid")
            .arg(env!("CARGO_BIN_EXE_kubectl-acqp"))
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .args(["-n", &self.ns])
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("kubectl-acqp runs")
    }

    /// The plugin's stdout, failing the test unless it succeeds.
    fn plugin_ok(&self, args: &[&str]) -> String {
        let out = self.plugin(args);
        assert!(
            out.status.success(),
            "kubectl acqp {} failed:\n{}\n{}",
            args.join(" "),
            text(&out),
            self.operator.logs()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The plugin's one-line error, failing the test unless it fails with exactly one line.
    fn plugin_err(&self, args: &[&str]) -> String {
        let out = self.plugin(args);
        assert!(
            !out.status.success(),
            "kubectl acqp {} should fail:\n{}",
            args.join(" "),
            text(&out)
        );
        assert!(out.stdout.is_empty(), "nothing on stdout: {}", text(&out));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }

    fn apply_authorization(&self, name: &str, acqp: &str, acqp_name: &str) {
        self.cluster.apply_in(
            &self.ns,
            &format!(
                "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata:\n  \
                 name: {name}\nspec:\n  applicationRef: {{name: demo}}\n  acqp: {{id: \
                 \"{acqp}\", name: {acqp_name}}}\n  products: [CashierPayment]\n"
            ),
        );
    }

    /// Waits until acqpauth `name`'s status satisfies `check`; returns the object.
    async fn wait_status(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let target = format!("acqpauth/{name}");
        self.wait_for(&format!("{target}: {what}"), STEP, || {
            let object = self.object(&target);
            if check(&object["status"]) {
                Ok(object)
            } else {
                Err(object["status"].to_string())
            }
        })
        .await
    }

    async fn url_count(&self, acquirer: &str) -> u64 {
        let stats = self.api.stats().await;
        stats["urlsByClientAcquirerProducts"][format!("{DEMO}/{acquirer}/CashierPayment")]
            .as_u64()
            .unwrap_or(0)
    }

    async fn sim(&self, path: &str, body: Value) {
        self.api.sim_ok(path, &body).await;
    }
}

fn names(list: &str) -> Vec<String> {
    list.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every subcommand on two ACQPs through invitation, re-invitation, grant and revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_prints_what_the_console_shows() {
    let env = Env::with_ready_application("plugin").await;
    env.apply_authorization("acme", ACME, "Acme Acquiring");
    env.apply_authorization("beta", BETA, "Beta Pay");
    for name in ["acme", "beta"] {
        env.wait_status(name, "a URL", |s| s["authorizationUrl"].is_string())
            .await;
    }

    // list: the console's search.
    let table = env.plugin_ok(&["list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ACQP",
            "ACQP-NAME",
            "STATUS",
            "PHASE",
            "READY",
            "AGE"
        ]
    );
    assert_eq!(names(&table), ["acme", "beta"], "{table}");
    assert_eq!(
        names(&env.plugin_ok(&["list", "--acqp-name", "aCmE"])),
        ["acme"]
    );
    assert_eq!(
        names(&env.plugin_ok(&["list", "--acqp-name", "pay"])),
        ["beta"]
    );
    assert_eq!(
        names(&env.plugin_ok(&["list", "--acqp-id", BETA])),
        ["beta"]
    );
    let json: Value = serde_json::from_str(&env.plugin_ok(&[
        "list",
        "--phase",
        "AwaitingAuthorization",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 2, "{json}");
    let yaml = env.plugin_ok(&["list", "--acqp-id", ACME, "-o", "yaml"]);
    assert!(
        yaml.contains("name: acme") && !yaml.contains("name: beta"),
        "{yaml}"
    );
    let wide = env.plugin_ok(&["list", "-o", "wide"]);
    assert!(wide.contains("http"), "the URL column in -o wide: {wide}");
    assert_eq!(env.plugin_ok(&["list", "--status", "Active"]), "");
    let all = env.plugin_ok(&["-A", "list", "--acqp-id", ACME]);
    assert!(
        all.starts_with("NAMESPACE") && all.contains(&env.ns),
        "{all}"
    );

    // url: the URL and nothing else.
    let url = env.object("acqpauth/acme")["status"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(env.plugin_ok(&["url", "acme"]), format!("{url}\n"));

    // token before a grant: an error, no token.
    assert!(
        env.plugin_err(&["token", "acme"])
            .contains("no Agent-Token yet")
    );

    // reinvite: one fresh URL; the old one is no longer offered.
    let before = env.url_count(ACME).await;
    let fresh = env.plugin_ok(&["reinvite", "acme", "--wait"]);
    let fresh = fresh.trim();
    assert!(
        fresh.starts_with("http") && fresh != url,
        "{fresh} vs {url}"
    );
    assert_eq!(env.plugin_ok(&["url", "acme"]).trim(), fresh);
    assert_eq!(env.url_count(ACME).await, before + 1, "exactly one new URL");

    // The ACQP authorizes; refresh makes the operator see it now rather than in 10 minutes.
    env.sim(
        &format!("/sim/acqp/{ACME}/authorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    let refreshed = env.plugin_ok(&["refresh", "acme", "--wait"]);
    assert!(refreshed.contains("acqpauth/acme refreshed"), "{refreshed}");
    let active = env
        .wait_status("acme", "Active", |s| s["phase"] == "Active")
        .await;
    assert!(active["status"]["lastHandledRefreshAt"].is_string());
    assert_eq!(
        names(&env.plugin_ok(&["list", "--status", "Active"])),
        ["acme"]
    );
    assert_eq!(
        names(&env.plugin_ok(&["list", "--phase", "Active"])),
        ["acme"]
    );

    // status: phase, why, next, token, application, Events.
    let fingerprint = active["status"]["tokenFingerprint"].as_str().unwrap();
    let token = env.api.record(ACME).await.unwrap()["agentToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = env.plugin_ok(&["status", "acme"]);
    for expected in [
        "Acme Acquiring (1022188000000000001)",
        "Active, Ready=True (Authorized)",
        "Next:",
        fingerprint,
        "revision 1",
        "demo: Ready=True",
        "Authorized",
        "UrlIssued",
    ] {
        assert!(
            status.contains(expected),
            "missing {expected:?} in:\n{status}"
        );
    }

    // token: hidden, revealed, copied (no terminal here: an error, and no token anywhere).
    let hidden = env.plugin_ok(&["token", "acme"]);
    assert!(hidden.contains(fingerprint) && hidden.contains("acme-agent-token"));
    assert!(!hidden.contains(&token), "the token is hidden by default");
    assert_eq!(
        env.plugin_ok(&["token", "acme", "--reveal"]),
        format!("{token}\n")
    );
    let copy = env.plugin(&["token", "acme", "--copy"]);
    assert!(!copy.status.success(), "no terminal to copy to");
    assert!(
        !text(&copy).contains(&token),
        "--copy never prints: {}",
        text(&copy)
    );

    // inspect secret: owner, ACQP, fingerprint, a match; never the token.
    let inspected = env.plugin_ok(&["inspect", "secret", "acme-agent-token"]);
    for expected in [
        "AcqpAuthorization acme",
        ACME,
        "CashierPayment",
        fingerprint,
        "yes",
    ] {
        assert!(
            inspected.contains(expected),
            "missing {expected:?}:\n{inspected}"
        );
    }
    assert!(!inspected.contains(&token));

    // refresh --all with a selector: both resources, each acknowledged.
    let all = env.plugin_ok(&["refresh", "--all", "--acqp-name", "a", "--wait"]);
    assert!(all.contains("acqpauth/acme refreshed") && all.contains("acqpauth/beta refreshed"));

    // Bad input: one line, non-zero, saying what to do.
    assert!(
        env.plugin_err(&["status", "nope"])
            .contains("kubectl acqp list")
    );
    assert!(
        env.plugin_err(&["url", "acme"])
            .contains("no URL is needed")
    );
    assert!(env.plugin_err(&["reinvite", "acme"]).contains("Active"));
    assert!(
        env.plugin_err(&["inspect", "secret", "nope"])
            .contains("not found")
    );
    assert!(!env.plugin(&["list", "--phase", "Bogus"]).status.success());
    assert!(
        !env.plugin(&["refresh"]).status.success(),
        "a name or --all"
    );

    // Revoked under revocationPolicy Wait: reinvite refuses and says how to change that.
    env.sim(
        &format!("/sim/acqp/{ACME}/deauthorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    env.plugin_ok(&["refresh", "acme", "--wait"]);
    env.wait_status("acme", "Revoked", |s| s["phase"] == "Revoked")
        .await;
    assert_eq!(
        names(&env.plugin_ok(&["list", "--status", "Inactive"])),
        ["acme"]
    );
    assert!(
        env.plugin_err(&["reinvite", "acme"])
            .contains("revocationPolicy: Reinvite")
    );
}

/// A reinvite is one URL per annotation value, even when the operator is SIGKILLed after the
/// Developer Center issued the URL and before the status recorded it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_survives_an_operator_sigkill_with_one_url() {
    let mut env = Env::with_ready_application("plugin-kill").await;
    env.apply_authorization("acme", ACME, "Acme Acquiring");
    let first = env
        .wait_status("acme", "a URL", |s| s["authorizationUrl"].is_string())
        .await;
    let before = env.url_count(ACME).await;
    // The Developer Center does the work, then the connection drops: the operator never hears.
    env.sim("/sim/faults", json!({"dropRate": 1.0, "paths": [GENERATE]}))
        .await;
    let value = "2027-01-01T00:00:00Z";
    env.kubectl_ok(&[
        "annotate",
        "acqpauth",
        "acme",
        &format!("{REINVITE}={value}"),
    ]);
    let deadline = Instant::now() + STEP;
    while env.url_count(ACME).await == before {
        assert!(
            Instant::now() < deadline,
            "the simulator issued no reinvited URL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.operator.kill();
    env.sim("/sim/faults", json!({})).await;
    env.start_operator().await;
    let reinvited = env
        .wait_status("acme", "the reinvite handled", |s| {
            s["lastHandledReinviteAt"] == value
        })
        .await;
    assert_ne!(
        reinvited["status"]["authorizationUrl"],
        first["status"]["authorizationUrl"]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.url_count(ACME).await,
        before + 1,
        "one URL for one value"
    );
}

/// Paused: no action and a condition saying so; a malformed value: a condition saying what to
/// do; removing the pause acts on what waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_malformed_annotations_are_conditions() {
    let env = Env::with_ready_application("plugin-pause").await;
    env.apply_authorization("beta", BETA, "Beta Pay");
    let first = env
        .wait_status("beta", "a URL", |s| s["authorizationUrl"].is_string())
        .await;
    env.kubectl_ok(&[
        "annotate",
        "acqpauth",
        "beta",
        "acqp-operator.io/paused=true",
    ]);
    env.wait_status("beta", "Paused", |s| {
        s["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Paused" && c["status"] == "True")
        })
    })
    .await;
    let before = env.url_count(BETA).await;
    let reinvite = env.plugin(&["reinvite", "beta"]);
    assert!(reinvite.status.success(), "{}", text(&reinvite));
    assert!(text(&reinvite).contains("paused"), "{}", text(&reinvite));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.url_count(BETA).await, before, "paused: nothing issued");
    let status = env.plugin_ok(&["status", "beta"]);
    assert!(status.contains("Paused:"), "{status}");

    env.kubectl_ok(&["annotate", "acqpauth", "beta", "acqp-operator.io/paused-"]);
    let resumed = env
        .wait_status("beta", "the reinvite handled", |s| {
            s["lastHandledReinviteAt"].is_string()
        })
        .await;
    assert_ne!(
        resumed["status"]["authorizationUrl"],
        first["status"]["authorizationUrl"]
    );
    assert!(condition(&resumed, "Paused").is_none());

    env.kubectl_ok(&[
        "annotate",
        "acqpauth",
        "beta",
        "acqp-operator.io/refresh-requested-at=yesterday",
    ]);
    let malformed = env
        .wait_status("beta", "MalformedAnnotation", |s| {
            s["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "MalformedAnnotation"))
        })
        .await;
    let message = condition(&malformed, "MalformedAnnotation").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("\"yesterday\"") && message.contains("kubectl acqp refresh beta"),
        "{message}"
    );
}

/// A Secret released under deletionPolicy Retain is adopted by a new AcqpAuthorization for the
/// same ACQP (no SecretConflict), which takes over the existing Active grant without a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_secret_and_an_active_grant_are_adopted() {
    let env = Env::with_ready_application("plugin-adopt").await;
    let manifest = |name: &str| {
        format!(
            "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata:\n  \
             name: {name}\nspec:\n  applicationRef: {{name: demo}}\n  acqp: {{id: \"{ACME}\"}}\n  \
             products: [CashierPayment]\n  tokenSecret: {{name: acme-token, deletionPolicy: \
             Retain}}\n"
        )
    };
    env.cluster.apply_in(&env.ns, &manifest("old"));
    env.wait_status("old", "a URL", |s| s["authorizationUrl"].is_string())
        .await;
    env.sim(
        &format!("/sim/acqp/{ACME}/authorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    env.plugin_ok(&["refresh", "old", "--wait"]);
    env.wait_status("old", "Active", |s| s["phase"] == "Active")
        .await;
    env.kubectl_ok(&["delete", "acqpauth", "old", "--wait=true"]);
    let released = env.object("secret/acme-token");
    assert!(
        released["metadata"]["ownerReferences"].is_null(),
        "{released}"
    );
    let urls = env.url_count(ACME).await;

    env.cluster.apply_in(&env.ns, &manifest("new"));
    let adopted = env
        .wait_status("new", "Active", |s| s["phase"] == "Active")
        .await;
    let secret = env.object("secret/acme-token");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"], adopted["metadata"]["uid"],
        "the new resource owns the Secret"
    );
    assert_eq!(
        secret["data"], released["data"],
        "the same grant, the same token"
    );
    assert_eq!(env.url_count(ACME).await, urls, "no new URL");
    let status = env.plugin_ok(&["status", "new"]);
    assert!(status.contains("SecretAdopted"), "{status}");
}
