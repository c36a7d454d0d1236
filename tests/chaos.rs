//! The reduced chaos runs of issue 9 (`make test`): Developer Center faults, operator crashes
//! and leader failover, each on the real control plane with its own namespace, its own
//! simulator (auto-grant on, so every URL is authorized at once) and its own operator(s).
//!
//! Each run prints its figures as `CHAOS ...` lines (visible with `--nocapture`) and asserts
//! the outcomes: every resource converges to Ready with the simulator's current Agent-Token in
//! its Secret, no (resource, product set) ever gets a second URL, and (faults) Ready never
//! flips back after it first became True.

mod sim_support;
mod support;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use acqp_operator::simulator::{AcquirerRange, RunningSimulator};
use base64::Engine as _;
use serde_json::{Value, json};
use sim_support::{Caller, DEMO};
use support::{
    Cluster,
    operator::{Operator, OperatorOptions},
};

/// Resources per run.
const RESOURCES: usize = 20;
/// Bound of one convergence, generous for a loaded 2-core machine.
const CONVERGE: Duration = Duration::from_secs(90);
const PREFIX: &str = "1022188100";

/// A run's world: namespace, simulator with generated acquirers, and a caller.
struct World {
    cluster: &'static Cluster,
    ns: String,
    _sim: RunningSimulator,
    api: Caller,
}

impl World {
    async fn new(prefix: &str) -> World {
        let cluster = support::cluster().await;
        let ns = support::namespace(prefix).await;
        let mut config = sim_support::config();
        config.acquirer_ranges.push(
            serde_json::from_value::<AcquirerRange>(json!({
                "prefix": PREFIX,
                "count": RESOURCES as u32 + 5,
                "digits": 9,
                "namePrefix": "Chaos Acquirer",
                "contractProducts": ["CashierPayment"],
            }))
            .unwrap(),
        );
        let sim = sim_support::start(config).await;
        let api = Caller::new(&sim);
        api.sim_ok("/sim/auto-grant", &json!({"enabled": true, "delayMs": 0}))
            .await;
        World {
            cluster,
            ns,
            _sim: sim,
            api,
        }
    }

    fn options(&self) -> OperatorOptions {
        OperatorOptions {
            namespace: Some(self.ns.clone()),
            ..Default::default()
        }
    }

    /// The example application, polling every `poll` (grants are seen by polling).
    fn apply_application(&self, poll: &str) {
        self.cluster.apply_in(
            &self.ns,
            &support::fixture::example_application(&self.api.endpoint, poll),
        );
    }

    /// Applies authorizations `from..to` (`chaos-<i>` for generated acquirer `i + 1`).
    fn apply_authorizations(&self, from: usize, to: usize) {
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
    fn ready(&self) -> BTreeMap<String, bool> {
        ready_states(self.cluster, &self.ns)
    }

    /// Waits until `chaos-0..count` are all Ready; returns the time it took.
    async fn wait_all_ready(
        &self,
        count: usize,
        what: &str,
        logs: impl Fn() -> String,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let ready = self.ready();
            let n = (0..count)
                .filter(|i| ready.get(&name(*i)).copied().unwrap_or(false))
                .count();
            if n == count {
                return start.elapsed();
            }
            if start.elapsed() > CONVERGE {
                panic!(
                    "{what}: only {n}/{count} Ready after {CONVERGE:?}: {ready:?}\n{}\n{}",
                    self.cluster
                        .kubectl_ok_in(&self.ns, &["get", "acqpauth", "-o", "yaml"]),
                    logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Asserts one URL per (resource, product set) and that every Secret of `0..count` holds
    /// the simulator's current token. Clears the faults first (the inquiry is a contract call).
    async fn verify(&self, count: usize) -> Value {
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
        for i in 0..count {
            let record = self.api.record(&acquirer(i)).await.expect("a record");
            let token = record["agentToken"]
                .as_str()
                .expect("agentToken")
                .to_owned();
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

fn name(i: usize) -> String {
    format!("chaos-{i}")
}

fn acquirer(i: usize) -> String {
    format!("{PREFIX}{:09}", i + 1)
}

fn ready_states(cluster: &Cluster, ns: &str) -> BTreeMap<String, bool> {
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
/// True.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, Vec<String>)>>,
}

impl Sampler {
    fn start(cluster: &'static Cluster, ns: &str) -> Sampler {
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

    fn finish(mut self) -> (u32, Vec<String>) {
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
fn calls(stats: &Value) -> (u64, String) {
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
fn reconciles(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("acqp_operator_reconciles_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// 30% of contract calls fail (U results, 5xx, throttling, dropped connections; 20 ms added
/// latency; fixed seed) while 20 authorizations converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devcenter_faults() {
    let world = World::new("chaos-faults").await;
    let operator = Operator::start(world.cluster, world.options()).await;
    world
        .api
        .sim_ok(
            "/sim/faults",
            &json!({
                "uErrorRate": 0.08, "http5xxRate": 0.08, "throttleRate": 0.07,
                "dropRate": 0.07, "latencyMs": 20, "seed": 2
            }),
        )
        .await;
    let sampler = Sampler::start(world.cluster, &world.ns);
    // Polling every second keeps calls (and so faults) coming after convergence.
    world.apply_application("1s");
    world.apply_authorizations(0, RESOURCES);
    let took = world
        .wait_all_ready(RESOURCES, "faults", || operator.logs())
        .await;
    // Keep sampling a few poll intervals after convergence, faults still on.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (samples, flips) = sampler.finish();
    let stats = world.verify(RESOURCES).await;
    let (failed, calls) = calls(&stats);
    println!(
        "CHAOS faults: {RESOURCES} resources Ready in {} ms under 30% faults; \
         Ready samples {samples}, flips back {}; URLs issued {}; calls {}",
        took.as_millis(),
        flips.len(),
        stats["urlsIssued"],
        calls
    );
    assert!(flips.is_empty(), "Ready flipped back to False: {flips:?}");
    assert_eq!(stats["urlsIssued"], RESOURCES, "{stats}");
    // Seed 2 fails 15 of the first 50 draws; the run makes about 50 calls.
    assert!(failed >= 5, "the faults hardly hit: {calls}");
}

/// SIGKILL the operator three times while 20 authorizations converge, restarting it each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_crashes() {
    let world = World::new("chaos-crash").await;
    let mut operator = Operator::start(world.cluster, world.options()).await;
    let mut logs = vec![];
    let sampler = Sampler::start(world.cluster, &world.ns);
    world.apply_application("2s");
    world.apply_authorizations(0, RESOURCES);
    let start = Instant::now();
    let mut at_kill = vec![];
    for delay_ms in [300, 800, 1500] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        operator.kill();
        let ready = world.ready().values().filter(|r| **r).count();
        let urls = world.api.stats().await["urlsIssued"].clone();
        at_kill.push(format!(
            "{} ms: {ready} Ready, {urls} URLs",
            start.elapsed().as_millis()
        ));
        logs.push(operator.logs());
        operator = Operator::start(world.cluster, world.options()).await;
    }
    let took = world
        .wait_all_ready(RESOURCES, "crashes", || {
            format!("{}\n{}", logs.join("\n-----\n"), operator.logs())
        })
        .await;
    let total = start.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (samples, flips) = sampler.finish();
    let stats = world.verify(RESOURCES).await;
    println!(
        "CHAOS crashes: 3 SIGKILLs at [{}]; all {RESOURCES} Ready {} ms after the last restart \
         ({} ms after apply); Ready samples {samples}, flips back {}; URLs issued {}; calls {}",
        at_kill.join("; "),
        took.as_millis(),
        total.as_millis(),
        flips.len(),
        stats["urlsIssued"],
        calls(&stats).1
    );
    assert!(flips.is_empty(), "Ready flipped back to False: {flips:?}");
    assert_eq!(stats["urlsIssued"], RESOURCES, "{stats}");
}

/// Two operators with leader election: only the leader reconciles; SIGTERM on it releases the
/// Lease and the standby takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover() {
    let world = World::new("chaos-failover").await;
    let lease = format!("chaos-{}", world.ns);
    let options = |identity: &str| OperatorOptions {
        extra_args: vec![
            "--leader-elect".into(),
            format!("--lease-namespace={}", world.ns),
            format!("--lease-name={lease}"),
        ],
        env: vec![("POD_NAME".into(), identity.into())],
        ..world.options()
    };
    let mut first = Operator::start(world.cluster, options("chaos-first")).await;
    world.apply_application("2s");
    world.apply_authorizations(0, 3);
    world
        .wait_all_ready(3, "first leader", || first.logs())
        .await;
    let second = Operator::start(world.cluster, options("chaos-second")).await;
    // A resource applied while both run is handled by the leader alone.
    world.apply_authorizations(3, 4);
    world
        .wait_all_ready(4, "with a standby", || first.logs())
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (leader, standby) = (
        reconciles(&first.metrics().await),
        reconciles(&second.metrics().await),
    );
    assert!(leader > 0.0, "the leader reconciled nothing");
    assert_eq!(standby, 0.0, "the standby reconciled:\n{}", second.logs());
    let holder = || {
        let out = world.cluster.kubectl_in(
            &world.ns,
            &[
                "get",
                "lease",
                &lease,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(holder(), "chaos-first");

    let stopped = Instant::now();
    let status = first.stop().await;
    let stop_took = stopped.elapsed();
    assert!(status.success(), "SIGTERM exit: {status}\n{}", first.logs());
    world.apply_authorizations(4, 5);
    // Takeover: the Lease names the standby. The leader releases the Lease on SIGTERM, but a
    // standby of kube-lease-manager 0.13 sleeps until the expiry it last read before looking
    // again, so the takeover takes up to the lease duration (30 s, its default) whatever the
    // release; 45 s adds slack for a loaded machine.
    loop {
        if holder() == "chaos-second" {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(45),
            "no takeover within 45 s of SIGTERM:\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let takeover = stopped.elapsed();
    let took = world
        .wait_all_ready(5, "after failover", || second.logs())
        .await;
    let converged = stopped.elapsed();
    let after = reconciles(&second.metrics().await);
    assert!(after > 0.0, "the new leader reconciled nothing");
    let stats = world.verify(5).await;
    println!(
        "CHAOS failover: leader reconciles {leader}, standby 0 while standing by; SIGTERM exit \
         in {} ms; Lease taken over {} ms after SIGTERM; new resource Ready {} ms after \
         SIGTERM ({} ms after the takeover); new leader reconciles {after}; URLs issued {}",
        stop_took.as_millis(),
        takeover.as_millis(),
        converged.as_millis(),
        took.as_millis(),
        stats["urlsIssued"]
    );
    assert_eq!(stats["urlsIssued"], 5, "{stats}");
}
