//! One test's world: a fresh namespace, a Developer Center simulator and an `acqp-operator`
//! restricted to the namespace, with the helpers every end-to-end test uses. On a failing test
//! it prints the namespace's objects and Events, every operator's log and the control plane's
//! log tails. Test-specific helpers live in the test file, in an `impl Env` of their own.

use std::{
    path::PathBuf,
    process::Output,
    time::{Duration, Instant},
};

use acqp_operator::simulator::RunningSimulator;
use serde_json::Value;

use super::{
    Cluster,
    operator::{Operator, OperatorOptions},
    text,
};
use crate::sim_support::{self, Caller};

/// How long a step may take before the test fails; generous for a loaded 2-core machine.
pub const STEP: Duration = Duration::from_secs(60);

/// A namespace, a simulator and an operator acting only there.
pub struct Env {
    pub cluster: &'static Cluster,
    pub ns: String,
    /// Runs as long as the test does (unless taken to stop it); dropping it stops it.
    pub sim: Option<RunningSimulator>,
    pub api: Caller,
    pub operator: Operator,
    /// How the operator was started, for starting it again.
    pub options: OperatorOptions,
    /// Logs of operators this test already stopped or killed.
    pub previous_logs: Vec<PathBuf>,
    /// How long [`Env::wait_condition`] and [`Env::wait_ready`] wait ([`STEP`] unless set).
    pub step: Duration,
}

impl Env {
    /// The example simulator seed and an operator with default options.
    pub async fn new(prefix: &str) -> Env {
        let sim = sim_support::start(sim_support::config()).await;
        Self::with(prefix, sim, OperatorOptions::default()).await
    }

    /// `sim`, and an operator started with `options` restricted to a fresh namespace.
    pub async fn with(prefix: &str, sim: RunningSimulator, options: OperatorOptions) -> Env {
        let cluster = super::cluster().await;
        let ns = super::namespace(prefix).await;
        let api = Caller::new(&sim);
        let options = OperatorOptions {
            namespace: Some(ns.clone()),
            ..options
        };
        let operator = Operator::start(cluster, options.clone()).await;
        Env {
            cluster,
            ns,
            sim: Some(sim),
            api,
            operator,
            options,
            previous_logs: vec![],
            step: STEP,
        }
    }

    /// Starts a fresh operator with the same options in place of the current one (stopped,
    /// killed or running: dropping it kills it).
    pub async fn start_operator(&mut self) {
        self.previous_logs.push(self.operator.log_path().clone());
        self.operator = Operator::start(self.cluster, self.options.clone()).await;
    }

    /// SIGKILLs the operator and starts a fresh one with the same options.
    pub async fn restart_operator(&mut self) {
        self.operator.kill();
        self.start_operator().await;
    }

    /// `kubectl -n <ns> args...`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.cluster.kubectl_in(&self.ns, args)
    }

    /// `kubectl`, failing the test unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.cluster.kubectl_ok_in(&self.ns, args)
    }

    /// `kubectl` without blocking the runtime (for `kubectl wait`, which blocks for long).
    pub async fn kubectl_async(&self, args: &[&str]) -> Output {
        let cluster = self.cluster;
        let mut all: Vec<String> = vec!["-n".into(), self.ns.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            cluster.kubectl(&args)
        })
        .await
        .unwrap()
    }

    /// `kubectl apply -f` of a manifest given as text.
    pub fn apply(&self, manifest: &str) {
        self.cluster.apply_in(&self.ns, manifest);
    }

    /// The example application, pointed at this test's simulator and polling every `poll`.
    pub fn apply_application(&self, poll: &str) {
        self.apply(&super::fixture::example_application(
            &self.api.endpoint,
            poll,
        ));
    }

    /// `kubectl get <what> -o json`, or None when it does not exist.
    pub fn get(&self, what: &str) -> Option<Value> {
        let out = self.kubectl(&["get", what, "-o", "json"]);
        if out.status.success() {
            return Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        let error = text(&out);
        assert!(error.contains("NotFound"), "kubectl get {what}: {error}");
        None
    }

    /// `kubectl get <what> -o json`, failing the test unless it exists.
    pub fn object(&self, what: &str) -> Value {
        serde_json::from_str(&self.kubectl_ok(&["get", what, "-o", "json"])).unwrap()
    }

    /// Polls `check` every 100 ms until it returns Ok; fails with its last Err (the state seen)
    /// after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match check() {
                Ok(value) => return value,
                Err(seen) if Instant::now() > deadline => {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Like [`Env::wait_for`] for checks that must await (simulator stats, say).
    pub async fn wait_async<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            match check().await {
                Ok(value) => return value,
                Err(seen) if Instant::now() > deadline => {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until `what` (e.g. `acqpauth/x`) has condition `type_` with `status` and `reason`,
    /// and returns the object.
    pub async fn wait_condition(
        &self,
        what: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> Value {
        let description = format!("{what} {type_}={status} ({reason})");
        self.wait_for(&description, self.step, || {
            let object = self.get(what).ok_or("not found")?;
            match condition(&object, type_) {
                Some(c) if c["status"] == status && c["reason"] == reason => Ok(object),
                _ => Err(serde_json::to_string(&object["status"]).unwrap()),
            }
        })
        .await
    }

    /// Waits until `what`'s Ready condition has `status` and `reason`; returns the condition.
    pub async fn wait_ready(&self, what: &str, status: &str, reason: &str) -> Value {
        let object = self.wait_condition(what, "Ready", status, reason).await;
        condition(&object, "Ready").cloned().unwrap()
    }

    /// The Events about `name`.
    pub fn events(&self, name: &str) -> Vec<Value> {
        let selector = format!("involvedObject.name={name}");
        let list: Value = serde_json::from_str(&self.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            &selector,
            "-o",
            "json",
        ]))
        .unwrap();
        list["items"].as_array().unwrap().clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("===== namespace {} =====", self.ns);
        for what in ["dcapp,acqpauth,secret", "events"] {
            let out = self.kubectl(&["get", what, "-o", "yaml"]);
            eprintln!("----- kubectl get {what} -----\n{}", text(&out));
        }
        for path in &self.previous_logs {
            let logs = std::fs::read_to_string(path).unwrap_or_default();
            eprintln!(
                "----- earlier operator {} -----\n{}",
                path.display(),
                tail(&logs, 150)
            );
        }
        eprintln!(
            "----- operator {} -----\n{}",
            self.operator.log_path().display(),
            tail(&self.operator.logs(), 300)
        );
        eprintln!("{}", self.cluster.logs_tail());
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The condition of `type_` in an object's status, if present.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}
