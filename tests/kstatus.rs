//! kstatus: what Flux, `kubectl`-ecosystem tools and anything else built on
//! `sigs.k8s.io/cli-utils/pkg/kstatus/status` read from an AcqpAuthorization, on the real control
//! plane with the real operator binary and the simulator: InProgress while waiting for the ACQP,
//! Current once Ready, InProgress again after a spec change until the operator has observed it,
//! Failed once Stalled.
//!
//! The reading is kstatus's own code: `hack/kstatus` (a few lines of Go, cli-utils pinned by its
//! go.mod and go.sum) is built on demand into
//! `${ACQP_CACHE:-$HOME/.cache/acqp-operator}/bin/kstatus-<cli-utils version>`, and each object
//! is read with `kubectl get -o json` and piped through it.

mod sim_support;
mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sim_support::{ACME, DEMO};
use support::{
    env::{Env, STEP},
    text,
};

/// What kstatus computed for one object.
#[derive(Debug)]
struct Reading {
    status: String,
    message: String,
}

/// The kstatus binary, built once per cli-utils version (from `hack/kstatus/go.mod`).
fn kstatus_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let source = sim_support::repo("hack/kstatus");
        let go_mod = std::fs::read_to_string(source.join("go.mod")).expect("hack/kstatus/go.mod");
        let version = go_mod
            .lines()
            .find_map(|line| {
                let rest = line.trim().strip_prefix("sigs.k8s.io/cli-utils ")?;
                rest.split_whitespace().next()
            })
            .expect("hack/kstatus/go.mod requires sigs.k8s.io/cli-utils");
        let cache = std::env::var_os("ACQP_CACHE")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/acqp-operator")
            });
        let bin = cache.join("bin").join(format!("kstatus-{version}"));
        if bin.is_file() {
            return bin;
        }
        // Straight to stderr, not eprintln!: the test harness captures that, and a build on
        // first use should be visible.
        let _ = writeln!(
            std::io::stderr(),
            "building {} (cli-utils {version}) from hack/kstatus",
            bin.display()
        );
        std::fs::create_dir_all(bin.parent().unwrap()).expect("create the cache's bin/");
        // Built beside the target and renamed: test binaries running at once never see half.
        let partial = bin.with_extension(format!("partial-{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(&partial)
            .arg(".")
            .current_dir(&source)
            .env("GOFLAGS", "-mod=mod -buildvcs=false")
            .env("CGO_ENABLED", "0")
            .output()
            .expect("go is installed");
        assert!(
            out.status.success(),
            "go build in hack/kstatus failed:\n{}",
            text(&out)
        );
        std::fs::rename(&partial, &bin).expect("move the kstatus binary into place");
        bin
    })
}

/// Pipes `object` (JSON) through kstatus.
fn kstatus(object: &Value) -> Reading {
    let mut child = Command::new(kstatus_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kstatus");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(object.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kstatus failed:\n{}", text(&out));
    let line: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("kstatus printed no JSON ({e}):\n{}", text(&out)));
    Reading {
        status: line["status"].as_str().unwrap().to_owned(),
        message: line["message"].as_str().unwrap().to_owned(),
    }
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A compact view of an object's status for failure messages.
fn summary(object: &Value) -> String {
    let conditions: Vec<String> = object["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| format!("{}={}({})", c["type"], c["status"], c["reason"]))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "generation {} observedGeneration {} phase {} conditions [{}]",
        object["metadata"]["generation"],
        object["status"]["observedGeneration"],
        object["status"]["phase"],
        conditions.join(", ")
    )
}

/// The recorded status fixtures, read offline: every state the operator writes maps to the
/// kstatus status a GitOps tool should act on.
#[test]
fn fixtures_read_as_expected() {
    let expected = [
        ("ready", "Current"),
        ("awaiting-authorization", "InProgress"),
        ("application-not-ready", "InProgress"),
        ("reinvited", "InProgress"),
        ("scope-change-pending", "InProgress"),
        // generation 2, observedGeneration 1: the operator has not seen the change yet.
        ("stale-generation", "InProgress"),
        ("application-not-found", "Failed"),
        ("products-not-integrated", "Failed"),
        ("revoked", "Failed"),
        // No status at all (before the operator's first reconcile): kstatus has no
        // observedGeneration to compare and no conditions, so it calls the object Current.
        // That is kstatus's rule for every custom resource, recorded here so that a change
        // (ours or upstream's) is noticed.
        ("not-yet-reconciled", "Current"),
    ];
    let dir = sim_support::repo("tests/fixtures/status");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        expected.len(),
        "every fixture in {} has an expected kstatus status here",
        dir.display()
    );
    for (name, status) in expected {
        let object: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let reading = kstatus(&object);
        assert_eq!(
            reading.status,
            status,
            "{name}.json ({}): {reading:?}",
            summary(&object)
        );
        // Not Current: kstatus passes on our Ready/Stalled message, not a generic one.
        if status != "Current" && name != "stale-generation" {
            let ready = condition(&object, "Ready").unwrap();
            assert_eq!(reading.message, ready["message"], "{name}.json");
        }
    }
}

impl Env {
    /// The example application pointed at this test's simulator; waits until kstatus reads it
    /// Current.
    async fn apply_current_application(&self) {
        self.apply_application("2s");
        self.wait_reading("dcapp/demo", "Ready=True, kstatus Current", |o, r| {
            reason(o, "Ready") == Some(("True", "Connected")) && r.status == "Current"
        })
        .await;
    }

    /// Polls `what` every 100 ms until `check` accepts it (and kstatus's reading of it);
    /// returns both.
    async fn wait_reading(
        &self,
        what: &str,
        description: &str,
        check: impl Fn(&Value, &Reading) -> bool,
    ) -> (Value, Reading) {
        let deadline = Instant::now() + STEP;
        loop {
            let object = self.object(what);
            let reading = kstatus(&object);
            if check(&object, &reading) {
                return (object, reading);
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {STEP:?} waiting for {what}: {description}; last seen: {} \
                     read by kstatus as {reading:?}",
                    summary(&object)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sim(&self, action: &str) {
        let path = format!("/sim/acqp/{ACME}/{action}");
        self.api.sim_ok(&path, &json!({"clientId": DEMO})).await;
    }
}

fn reason<'a>(object: &'a Value, type_: &str) -> Option<(&'a str, &'a str)> {
    let c = condition(object, type_)?;
    Some((c["status"].as_str()?, c["reason"].as_str()?))
}

/// Invitation → grant → spec change while the operator is down → re-grant → revocation, read
/// through kstatus at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kstatus_follows_the_life_cycle() {
    // Built before the clock of any step starts.
    tokio::task::spawn_blocking(kstatus_bin).await.unwrap();
    let mut env = Env::new("kstatus").await;
    env.apply_current_application().await;

    // Waiting for the ACQP: Reconciling=True → InProgress, with our message.
    env.kubectl_ok(&["apply", "-f", "examples/acme-cashier.yaml"]);
    let what = "acqpauth/acme-cashier";
    let (object, reading) = env
        .wait_reading(what, "AwaitingAuthorization with a URL", |o, _| {
            o["status"]["authorizationUrl"].is_string()
        })
        .await;
    assert_eq!(
        reason(&object, "Reconciling"),
        Some(("True", "AwaitingAuthorization"))
    );
    assert_eq!(reading.status, "InProgress", "{reading:?}");
    assert_eq!(
        reading.message,
        condition(&object, "Ready").unwrap()["message"]
    );

    // Authorized: Ready=True → Current.
    env.sim("authorize").await;
    let (object, reading) = env
        .wait_reading(what, "kstatus Current", |_, r| r.status == "Current")
        .await;
    assert_eq!(reason(&object, "Ready"), Some(("True", "Authorized")));
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(reading.message, "Resource is Ready");

    // The operator is down and the spec changes: generation 2, observedGeneration 1 →
    // InProgress, although the conditions still say Ready=True.
    let exit = env.operator.stop().await;
    assert!(exit.success(), "exit status {exit}");
    env.kubectl_ok(&[
        "patch",
        what,
        "--type=merge",
        "-p",
        r#"{"spec":{"products":["CashierPayment","AutoDebit"]}}"#,
    ]);
    let object = env.object(what);
    let reading = kstatus(&object);
    assert_eq!(object["metadata"]["generation"], 2);
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(reason(&object, "Ready"), Some(("True", "Authorized")));
    assert_eq!(reading.status, "InProgress", "{reading:?}");
    assert_eq!(
        reading.message,
        "AcqpAuthorization generation is 2, but latest observed generation is 1"
    );

    // Restarted: it observes generation 2 (passing through whatever it reports first, e.g.
    // Listing) and asks the ACQP for AutoDebit → InProgress all along (Reconciling=True, then
    // ScopeChangePending), never Current before the ACQP authorizes again.
    env.start_operator().await;
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let (object, reading) = env
        .wait_reading(what, "Reconciling=True (ScopeChangePending)", |o, r| {
            assert_eq!(
                r.status,
                "InProgress",
                "{r:?} before the re-grant: {}",
                summary(o)
            );
            let mut seen = seen.lock().unwrap();
            let step = format!(
                "{} {}",
                o["status"]["observedGeneration"], o["status"]["phase"]
            );
            if seen.last() != Some(&step) {
                seen.push(step);
            }
            reason(o, "Reconciling") == Some(("True", "ScopeChangePending"))
        })
        .await;
    eprintln!(
        "after the restart (observedGeneration phase): {}",
        seen.lock().unwrap().join(" → ")
    );
    assert_eq!(object["status"]["observedGeneration"], 2);
    assert!(reading.message.contains("AutoDebit"), "{reading:?}");

    // The ACQP authorizes the new URL → Current again.
    env.sim("authorize").await;
    let (object, _) = env
        .wait_reading(what, "kstatus Current", |_, r| r.status == "Current")
        .await;
    assert_eq!(reason(&object, "Ready"), Some(("True", "Authorized")));
    assert_eq!(object["status"]["tokenRevision"], 2);

    // The ACQP cancels: Revoked, Stalled=True → Failed, with our message.
    env.sim("deauthorize").await;
    let (object, reading) = env
        .wait_reading(what, "kstatus Failed", |_, r| r.status == "Failed")
        .await;
    assert_eq!(reason(&object, "Stalled"), Some(("True", "Revoked")));
    assert_eq!(object["status"]["phase"], "Revoked");
    assert_eq!(
        reading.message,
        condition(&object, "Ready").unwrap()["message"]
    );
    assert!(reading.message.contains("cancelled"), "{reading:?}");
}

/// An operator restart with no spec change should leave a Ready authorization Current: a GitOps
/// tool's health check (and `kubectl wait`) must not see it flap. Today the restarted operator
/// first writes Ready=False (Pending, "Listing": no list from the Developer Center yet), which
/// kstatus reads as InProgress, then Ready=True again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_change_stays_current() {
    tokio::task::spawn_blocking(kstatus_bin).await.unwrap();
    let mut env = Env::new("kstatus-restart").await;
    env.apply_current_application().await;
    env.kubectl_ok(&["apply", "-f", "examples/acme-cashier.yaml"]);
    let what = "acqpauth/acme-cashier";
    env.wait_reading(what, "a URL", |o, _| {
        o["status"]["authorizationUrl"].is_string()
    })
    .await;
    env.sim("authorize").await;
    env.wait_reading(what, "kstatus Current", |_, r| r.status == "Current")
        .await;

    env.restart_operator().await;
    // Every distinct reading for 5 s after the restart (the first list is due well before).
    let mut readings: Vec<String> = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let object = env.object(what);
        let step = format!("{:?} {}", kstatus(&object), summary(&object));
        if readings.last() != Some(&step) {
            readings.push(step);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        readings
            .iter()
            .all(|r| r.starts_with("Reading { status: \"Current\"")),
        "kstatus readings after a restart without spec change:\n{}",
        readings.join("\n")
    );
}
