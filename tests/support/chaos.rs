//! The chaos runs' world (issue 9), shared by `tests/chaos.rs` and
//! `tests/chaos_control_plane.rs`: a namespace on the binary's control plane, a simulator with
//! generated acquirers (auto-grant on, so every URL is authorized at once), and the checks every
//! run ends with.
//!
//! It uses both `support` and `sim_support`, which not every test binary declares, so it is not
//! a submodule of `support`: a chaos binary includes it with
//! `#[path = "support/chaos.rs"] mod chaos;` next to `mod sim_support; mod support;`.
//!
//! Sizes: the reduced runs (`make test`) by default; `ACQP_CHAOS_FULL=1` (`make chaos`) for the
//! full ones. The convergence bound scales with the number of resources.

// Each chaos binary uses a different part of this module.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use acqp_operator::simulator::{AcquirerRange, AutoGrant, Config, RunningSimulator, Simulator};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    sim_support::{self, Caller, DEMO},
    support::{self, Cluster, operator::OperatorOptions},
};

const PREFIX: &str = "1022188100";

/// Whether this is a full run (`ACQP_CHAOS_FULL=1`, as `make chaos` sets it).
pub fn full() -> bool {
    std::env::var_os("ACQP_CHAOS_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `reduced` under `make test`, `full` under `make chaos`.
pub fn size(reduced: usize, full_size: usize) -> usize {
    if full() { full_size } else { reduced }
}

/// Bound of one convergence of `resources` resources, generous for a loaded 2-core machine:
/// 60 s plus 1.5 s per resource (90 s for the reduced 20).
pub fn converge_bound(resources: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(1500) * resources as u32
}

/// A run's world: namespace, simulator with generated acquirers, and a caller.
pub struct World {
    pub cluster: &'static Cluster,
    pub ns: String,
    /// How many resources the run converges (`chaos-0..resources`).
    pub resources: usize,
    /// Bound of [`World::wait_all_ready`].
    pub converge: Duration,
    sim: Option<RunningSimulator>,
    config: Config,
    state_file: Option<PathBuf>,
    pub api: Caller,
}

impl World {
    /// A world for `resources` resources, with a simulator that keeps its state in memory.
    pub async fn new(prefix: &str, resources: usize) -> World {
        World::start(prefix, resources, None).await
    }

    /// A world whose simulator persists to `state_file` (`--state`), so it can be restarted.
    pub async fn with_state_file(prefix: &str, resources: usize, state_file: PathBuf) -> World {
        World::start(prefix, resources, Some(state_file)).await
    }

    async fn start(prefix: &str, resources: usize, state_file: Option<PathBuf>) -> World {
        let cluster = support::cluster().await;
        let ns = support::namespace(prefix).await;
        let mut config = sim_support::config();
        config.acquirer_ranges.push(
            serde_json::from_value::<AcquirerRange>(json!({
                "prefix": PREFIX,
                "count": resources as u32 + 5,
                "digits": 9,
                "namePrefix": "Chaos Acquirer",
                "contractProducts": ["CashierPayment"],
            }))
            .unwrap(),
        );
        // In the seed rather than set over /sim, so a restarted simulator grants as well.
        config.auto_grant = AutoGrant {
            enabled: true,
            delay: Duration::ZERO,
        };
        let sim = simulator(&config, &state_file)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let api = Caller::new(&sim);
        World {
            cluster,
            ns,
            resources,
            converge: converge_bound(resources),
            sim: Some(sim),
            config,
            state_file,
            api,
        }
    }

    /// The simulator's address.
    pub fn sim_addr(&self) -> SocketAddr {
        self.sim.as_ref().expect("a running simulator").addr()
    }

    /// Stops the simulator (it saves its state file one last time) and starts a new one on the
    /// same address from the same seed and state file; returns how long no simulator listened.
    pub async fn restart_simulator(&mut self) -> Duration {
        let addr = self.sim_addr();
        let sim = self.sim.take().unwrap();
        let stopped = Instant::now();
        sim.shutdown().await;
        let (config, state_file) = (self.config.clone(), self.state_file.clone());
        let sim = sim_support::start_at(move || simulator(&config, &state_file), addr).await;
        let down = stopped.elapsed();
        // A fresh HTTP client: the old one's pooled connections went with the old server.
        self.api = Caller::new(&sim);
        self.sim = Some(sim);
        down
    }

    pub fn options(&self) -> OperatorOptions {
        OperatorOptions {
            namespace: Some(self.ns.clone()),
            ..Default::default()
        }
    }

    /// The example application, polling every `poll` (grants are seen by polling).
    pub fn apply_application(&self, poll: &str) {
        self.cluster.apply_in(
            &self.ns,
            &support::fixture::example_application(&self.api.endpoint, poll),
        );
    }

    /// Applies authorizations `from..to` (`chaos-<i>` for generated acquirer `i + 1`).
    pub fn apply_authorizations(&self, from: usize, to: usize) {
        let manifest: Vec<String> = (from..to)
            .map(|i| {
                format!(
                    "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\n\
                     metadata:\n  name: {}\nspec:\n  applicationRef:\n    name: demo\n  \
                     acqp:\n    id: \"{}\"\n    name: Chaos Acquirer {}\n  products:\n    \
                     - CashierPayment\n",
                    name(i),
                    acquirer(i),
                    i + 1
                )
            })
            .collect();
        self.cluster.apply_in(&self.ns, &manifest.join("---\n"));
    }

    /// Ready status of every authorization in the namespace.
    pub fn ready(&self) -> BTreeMap<String, bool> {
        ready_states(self.cluster, &self.ns)
    }

    /// How many of `chaos-from..to` are Ready.
    pub fn ready_count(&self, from: usize, to: usize) -> usize {
        let ready = self.ready();
        (from..to)
            .filter(|i| ready.get(&name(*i)).copied().unwrap_or(false))
            .count()
    }

    /// Waits until `chaos-0..count` are all Ready; returns the time it took.
    pub async fn wait_all_ready(
        &self,
        count: usize,
        what: &str,
        logs: impl Fn() -> String,
    ) -> Duration {
        self.wait_ready_range(0, count, what, logs).await
    }

    /// Waits until `chaos-from..to` are all Ready (at most [`World::converge`]); returns the
    /// time it took. Fails with the resources, the control plane's and the operator's logs.
    pub async fn wait_ready_range(
        &self,
        from: usize,
        to: usize,
        what: &str,
        logs: impl Fn() -> String,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let ready = self.ready();
            let n = (from..to)
                .filter(|i| ready.get(&name(*i)).copied().unwrap_or(false))
                .count();
            if n == to - from {
                return start.elapsed();
            }
            if start.elapsed() > self.converge {
                let not_ready: Vec<&String> =
                    ready.iter().filter(|(_, r)| !**r).map(|(n, _)| n).collect();
                panic!(
                    "{what}: only {n}/{} of chaos-{from}..{to} Ready after {:?}; not Ready: \
                     {not_ready:?}\n{}\n{}\n----- operator -----\n{}",
                    to - from,
                    self.converge,
                    self.cluster
                        .kubectl_ok_in(&self.ns, &["get", "acqpauth", "-o", "yaml"]),
                    self.cluster.logs_tail(),
                    logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every generated acquirer's current Agent-Token at the simulator, `0..count`.
    pub async fn tokens(&self, count: usize) -> Vec<String> {
        let mut tokens = vec![];
        for i in 0..count {
            let record = self.api.record(&acquirer(i)).await.expect("a record");
            tokens.push(
                record["agentToken"]
                    .as_str()
                    .expect("agentToken")
                    .to_owned(),
            );
        }
        tokens
    }

    /// Asserts one URL per (resource, product set) and that every Secret of `0..count` holds
    /// the simulator's current token. Clears the faults first (the inquiry is a contract call).
    pub async fn verify(&self, count: usize) -> Value {
        self.api.sim_ok("/sim/faults", &json!({})).await;
        let stats = self.api.stats().await;
        let urls = stats["urlsByClientAcquirerProducts"]
            .as_object()
            .expect("urlsByClientAcquirerProducts");
        for (key, n) in urls {
            assert_eq!(n, 1, "duplicate URLs for {key}: {stats}");
        }
        for i in 0..count {
            let key = format!("{DEMO}/{}/CashierPayment", acquirer(i));
            assert_eq!(urls.get(&key), Some(&json!(1)), "URLs for {key}: {stats}");
        }
        let tokens = self.tokens(count).await;
        for (i, token) in tokens.iter().enumerate() {
            let secret: Value = serde_json::from_str(&self.cluster.kubectl_ok_in(
                &self.ns,
                &[
                    "get",
                    &format!("secret/{}-agent-token", name(i)),
                    "-o",
                    "json",
                ],
            ))
            .unwrap();
            let held = secret["data"]["agentToken"]
                .as_str()
                .map(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .expect("base64")
                })
                .unwrap_or_default();
            assert!(
                held == token.as_bytes(),
                "Secret {}-agent-token does not hold the simulator's current token",
                name(i)
            );
        }
        stats
    }
}

fn simulator(config: &Config, state_file: &Option<PathBuf>) -> Simulator {
    let simulator = Simulator::new(config.clone());
    match state_file {
        Some(path) => simulator.with_state_file(path),
        None => simulator,
    }
}

pub fn name(i: usize) -> String {
    format!("chaos-{i}")
}

pub fn acquirer(i: usize) -> String {
    format!("{PREFIX}{:09}", i + 1)
}

pub fn ready_states(cluster: &Cluster, ns: &str) -> BTreeMap<String, bool> {
    let out = cluster.kubectl_in(ns, &["get", "acqpauth", "-o", "json"]);
    if !out.status.success() {
        return BTreeMap::new();
    }
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let ready = item["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (item["metadata"]["name"].as_str().unwrap().to_owned(), ready)
        })
        .collect()
}

/// Samples Ready of every resource every 200 ms on its own thread and counts flips back from
/// True. A sample the API server does not answer (say, while it restarts) is skipped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, Vec<String>)>>,
}

impl Sampler {
    pub fn start(cluster: &'static Cluster, ns: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let ns = ns.to_owned();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let seen = Mutex::new(BTreeMap::<String, bool>::new());
            let (mut samples, mut flips) = (0u32, vec![]);
            while !flag.load(Ordering::Relaxed) {
                let now = ready_states(cluster, &ns);
                let mut seen = seen.lock().unwrap();
                for (name, ready) in now {
                    let was = seen.entry(name.clone()).or_default();
                    if *was && !ready {
                        flips.push(format!("{name} after sample {samples}"));
                    }
                    *was |= ready;
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            (samples, flips)
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns the number of samples and the flips back from True.
    pub fn finish(mut self) -> (u32, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Calls per path and outcome, and the share that did not succeed, for the figures.
pub fn calls(stats: &Value) -> (u64, String) {
    let (mut failed, mut all) = (0, 0);
    for outcomes in stats["calls"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for (outcome, n) in outcomes.as_object().into_iter().flatten() {
            let n = n.as_u64().unwrap_or(0);
            all += n;
            if outcome != "S" {
                failed += n;
            }
        }
    }
    (failed, format!("{failed}/{all} failed: {}", stats["calls"]))
}

/// Sum of `acqp_operator_reconciles_total` over its labels.
pub fn reconciles(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("acqp_operator_reconciles_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The operator's JSON log lines at WARN or ERROR in `logs`.
pub fn warnings(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|line| {
            serde_json::from_str::<Value>(line)
                .is_ok_and(|v| matches!(v["level"].as_str(), Some("WARN" | "ERROR")))
        })
        .collect()
}
