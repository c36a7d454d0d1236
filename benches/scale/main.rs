//! The scale benchmark (`make bench`): on a real control plane, with the Developer Center
//! simulator granting every URL at once, it measures how fast N AcqpAuthorizations converge
//! against a floor client in the same run, what steady state costs the Developer Center and the
//! API server, grant-to-Secret latency with and without notifications, and the operator's memory
//! and CPU; then prints the figures and writes `BENCHMARKS.md`.
//!
//! `cargo bench --bench scale` runs the full set (sizes from `ACQP_BENCH_SIZES`, default
//! `100,1000,10000`; poll interval `ACQP_BENCH_POLL_SECONDS`, default 10; the other knobs are
//! read in `Settings::full`). Under `cargo test`
//! (no `--bench` argument) it runs a reduced pass — N = 20, one poll interval, a few latency
//! samples — that checks everything still converges and writes nothing.

mod harness;
mod observe;
mod report;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use acqp_operator::api::AcqpAuthorization;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use harness::{ControlPlane, Operator, Simulator};
use observe::{Requests, Tracker, Usage};

/// The simulator has no quota, so the operator's client-side rate limit (a stand-in for the
/// Developer Center's quota, 50 requests per second by default) is lifted: the bench measures
/// the operator, not a quota. Set `ACQP_BENCH_OPERATOR_ARGS=""` to measure the defaults.
const UNTHROTTLED: &str = "--devcenter-qps=1000 --devcenter-burst=1000";

/// What to run; `full` for `cargo bench`, `smoke` under `cargo test`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub sizes: Vec<usize>,
    pub poll: Duration,
    /// Poll intervals of steady state to count calls and writes over.
    pub steady_intervals: u32,
    /// Requests the bench itself (and the floor) keeps in flight.
    pub client_concurrency: usize,
    /// More arguments for `acqp-operator run`.
    pub operator_args: Vec<String>,
    /// Unrelated Secrets created next to the operator's resources in one extra pass, and the N
    /// of that pass (0 Secrets: no such pass).
    pub unrelated_secrets: usize,
    pub unrelated_at: usize,
    /// Samples of `kubectl apply` → URL, of grant → Secret with notifications, and polling only.
    pub apply_samples: usize,
    pub notify_samples: usize,
    pub polling_samples: usize,
    /// Where to write the report (full runs only): `ACQP_BENCH_REPORT`, default BENCHMARKS.md.
    pub report: Option<PathBuf>,
    /// The static musl binary the image ships (`ACQP_BENCH_MUSL_BINARY`, which `make bench`
    /// builds): one more pass at the largest N measures its memory and CPU next to the glibc
    /// build's.
    pub musl_binary: Option<PathBuf>,
}

impl Settings {
    fn full() -> Self {
        let env =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let number = |name: &str, default: &str| -> usize {
            env(name, default)
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        };
        Self {
            sizes: env("ACQP_BENCH_SIZES", "100,1000,10000")
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("ACQP_BENCH_SIZES: numbers, comma-separated")
                })
                .collect(),
            poll: Duration::from_secs(number("ACQP_BENCH_POLL_SECONDS", "10") as u64),
            steady_intervals: number("ACQP_BENCH_STEADY_INTERVALS", "3") as u32,
            client_concurrency: number("ACQP_BENCH_CLIENT_CONCURRENCY", "32"),
            operator_args: env("ACQP_BENCH_OPERATOR_ARGS", UNTHROTTLED)
                .split_whitespace()
                .map(String::from)
                .collect(),
            unrelated_secrets: number("ACQP_BENCH_UNRELATED_SECRETS", "10000"),
            unrelated_at: number("ACQP_BENCH_UNRELATED_AT", "1000"),
            apply_samples: 20,
            notify_samples: 100,
            polling_samples: 50,
            report: Some(
                std::env::var_os("ACQP_BENCH_REPORT")
                    .map_or_else(|| harness::repo_root().join("BENCHMARKS.md"), PathBuf::from),
            ),
            musl_binary: std::env::var_os("ACQP_BENCH_MUSL_BINARY").map(PathBuf::from),
        }
    }

    fn smoke() -> Self {
        Self {
            sizes: vec![20],
            poll: Duration::from_secs(3),
            steady_intervals: 1,
            client_concurrency: 8,
            operator_args: UNTHROTTLED.split_whitespace().map(String::from).collect(),
            unrelated_secrets: 0,
            unrelated_at: 0,
            apply_samples: 2,
            notify_samples: 5,
            polling_samples: 3,
            report: None,
            musl_binary: None,
        }
    }
}

/// The shared pieces of one run.
struct Bench {
    settings: Settings,
    binary: PathBuf,
    plane: ControlPlane,
    client: Client,
    simulator: Simulator,
}

/// One N: the floor and the operator side by side.
#[derive(Debug, Default)]
pub struct ScaleResult {
    pub n: usize,
    pub floor: Option<Floor>,
    pub operator: OperatorRun,
}

/// The minimal client: per resource, apply it, create its Secret, write its status.
#[derive(Debug, Default)]
pub struct Floor {
    pub total_seconds: f64,
    pub requests: Requests,
    pub cpu: Cpu,
}

/// CPU seconds (user + system) each process spent while a pass converged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    /// etcd and kube-apiserver.
    pub control_plane: f64,
    /// This process: the floor's writes, or the apply and the watches that time the operator.
    pub client: f64,
    pub operator: f64,
    pub simulator: f64,
}

impl Cpu {
    /// Each process's CPU so far; `operator` is 0 without one.
    fn now(bench: &Bench, operator: Option<u32>) -> Self {
        let cpu = |pid: u32| observe::usage(pid).cpu_seconds;
        Self {
            control_plane: bench.plane.pids().into_iter().map(cpu).sum(),
            client: cpu(std::process::id()),
            operator: operator.map_or(0.0, cpu),
            simulator: cpu(bench.simulator.pid()),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            control_plane: self.control_plane - before.control_plane,
            client: self.client - before.client,
            operator: self.operator - before.operator,
            simulator: self.simulator - before.simulator,
        }
    }
}

/// Which build of the operator a pass ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Build {
    /// `cargo bench`'s own release build (glibc, dynamically linked).
    #[default]
    Glibc,
    /// The static musl binary of the container image.
    Musl,
}

/// One operator pass: N resources, optionally among unrelated Secrets, with one build.
#[derive(Clone, Copy, Debug)]
struct Pass {
    n: usize,
    unrelated: usize,
    steady_intervals: u32,
    build: Build,
}

#[derive(Debug, Default)]
pub struct OperatorRun {
    pub build: Build,
    pub unrelated_secrets: usize,
    pub apply_seconds: f64,
    /// `None`: not all Ready with Secrets before the timeout.
    pub converged_seconds: Option<f64>,
    pub ready: usize,
    pub requests: Requests,
    /// Of `requests`, those about the application rather than any resource (its credentials
    /// Secret and status): once per poll interval, whatever N is.
    pub per_application_requests: usize,
    pub cpu: Cpu,
    pub reconciles: f64,
    pub at_convergence: Usage,
    pub steady: Option<Steady>,
    pub at_end: Usage,
}

/// Steady state after convergence, per poll interval.
#[derive(Debug, Default)]
pub struct Steady {
    pub intervals: f64,
    pub devcenter_calls: std::collections::BTreeMap<String, f64>,
    pub requests: Requests,
    /// The writes among `requests`, by what was written and by whom (from the audit log).
    pub writes: std::collections::BTreeMap<String, usize>,
    pub cpu_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Latency {
    pub apply_to_url: Vec<f64>,
    pub notified: Vec<f64>,
    pub polled: Vec<f64>,
    pub polled_interval: Duration,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let settings = if full {
        Settings::full()
    } else {
        Settings::smoke()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let started = Instant::now();
    let (scale, latency) = runtime.block_on(run(&settings));
    let text = report::render(&settings, &scale, &latency, started.elapsed());
    println!("{text}");
    if let Some(path) = &settings.report {
        report::write(path, &text);
        println!("wrote {}", path.display());
    } else {
        assert_converged(&scale, &latency, &settings);
    }
}

/// The reduced run's checks: correctness, not speed.
fn assert_converged(scale: &[ScaleResult], latency: &Latency, settings: &Settings) {
    for result in scale {
        assert!(
            result.operator.converged_seconds.is_some(),
            "N = {}: only {} of {} Ready with their Secrets",
            result.n,
            result.operator.ready,
            result.n
        );
    }
    assert_eq!(latency.apply_to_url.len(), settings.apply_samples);
    assert_eq!(latency.notified.len(), settings.notify_samples);
    assert_eq!(latency.polled.len(), settings.polling_samples);
}

async fn run(settings: &Settings) -> (Vec<ScaleResult>, Latency) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_acqp-operator"));
    let dir = std::env::temp_dir().join(format!("acqp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the run directory");
    eprintln!("bench: control plane and logs in {}", dir.display());
    let plane = ControlPlane::up(&dir.join("cluster"));
    let client = plane.client().await;
    let acquirers = settings
        .sizes
        .iter()
        .copied()
        .chain([
            settings.unrelated_at,
            settings.notify_samples + settings.polling_samples,
        ])
        .max()
        .unwrap_or(0);
    let simulator = Simulator::start(&binary, &dir, acquirers).await;
    let bench = Bench {
        settings: settings.clone(),
        binary,
        plane,
        client,
        simulator,
    };

    let mut scale = Vec::new();
    for &n in &settings.sizes {
        eprintln!("bench: N = {n}: floor");
        let floor = floor(&bench, n).await;
        eprintln!("bench: N = {n}: operator");
        let pass = Pass {
            n,
            unrelated: 0,
            steady_intervals: settings.steady_intervals,
            build: Build::Glibc,
        };
        let operator = operator_pass(&bench, pass).await;
        scale.push(ScaleResult {
            n,
            floor: Some(floor),
            operator,
        });
    }
    if settings.unrelated_secrets > 0 {
        let n = settings.unrelated_at;
        eprintln!(
            "bench: N = {n} with {} unrelated Secrets",
            settings.unrelated_secrets
        );
        let pass = Pass {
            n,
            unrelated: settings.unrelated_secrets,
            steady_intervals: 0,
            build: Build::Glibc,
        };
        let operator = operator_pass(&bench, pass).await;
        scale.push(ScaleResult {
            n,
            floor: None,
            operator,
        });
    }
    if settings.musl_binary.is_some()
        && let Some(&n) = settings.sizes.iter().max()
    {
        eprintln!("bench: N = {n} with the image's static musl binary");
        let pass = Pass {
            n,
            unrelated: 0,
            steady_intervals: 0,
            build: Build::Musl,
        };
        let operator = operator_pass(&bench, pass).await;
        scale.push(ScaleResult {
            n,
            floor: None,
            operator,
        });
    }
    eprintln!("bench: latency");
    let latency = latency_pass(&bench).await;
    // Stops the control plane first: `down` finds its processes through the PID files in `dir`.
    drop(bench);
    let _ = std::fs::remove_dir_all(&dir);
    (scale, latency)
}

/// Only the API-server work that any implementation must do for N, as fast as the API server
/// takes it: per resource the user's apply, then one Secret and one status write, pipelined with
/// the same number of requests in flight as the operator pass's apply. It is timed as the
/// operator pass is, by the same watches: until every resource is seen Ready with its Secret.
async fn floor(bench: &Bench, n: usize) -> Floor {
    let namespace = format!("floor-{n}");
    create_namespace(&bench.client, &namespace).await;
    let tracker = Tracker::start(&bench.client, &namespace).await;
    let authorizations = Api::<AcqpAuthorization>::namespaced(bench.client.clone(), &namespace);
    let secrets = Api::<Secret>::namespaced(bench.client.clone(), &namespace);
    let before = observe::apiserver_requests(&bench.client).await;
    let cpu_before = Cpu::now(bench, None);
    let started = Instant::now();
    futures::stream::iter(1..=n)
        .map(|i| {
            let (authorizations, secrets) = (&authorizations, &secrets);
            async move { floor_one(authorizations, secrets, i).await }
        })
        .buffer_unordered(bench.settings.client_concurrency)
        .try_for_each(|()| futures::future::ready(Ok(())))
        .await
        .expect("the floor's writes");
    let seen_all = tracker
        .wait(Duration::from_secs(60), |seen| {
            seen.ready.len() >= n && seen.secret.len() >= n
        })
        .await;
    assert!(seen_all, "the watches saw the floor's writes");
    let total_seconds = started.elapsed().as_secs_f64();
    let cpu = Cpu::now(bench, None).since(cpu_before);
    let after = observe::apiserver_requests(&bench.client).await;
    Floor {
        total_seconds,
        requests: observe::delta(&before, &after),
        cpu,
    }
}

/// The Secret and the status the operator would write for resource `i`, written blindly.
async fn floor_one(
    authorizations: &Api<AcqpAuthorization>,
    secrets: &Api<Secret>,
    i: usize,
) -> Result<(), kube::Error> {
    let name = harness::name(i);
    authorizations
        .patch(
            &name,
            &PatchParams::apply(harness::FIELD_MANAGER),
            &Patch::Apply(harness::authorization(i)),
        )
        .await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{name}-agent-token"),
            // The operator's label, so the same watch sees it (no operator runs here).
            "labels": {"app.kubernetes.io/managed-by": "acqp-operator"},
            "annotations": {"acqp-operator.io/acqp-id": harness::acquirer_id(i)},
        },
        "type": "Opaque",
        "stringData": {"agentToken": format!("floor-token-{i:032}")},
    }))
    .expect("a Secret");
    secrets.create(&PostParams::default(), &secret).await?;
    let now = jiff::Timestamp::now().to_string();
    let status = json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "status": {
            "observedGeneration": 1,
            "phase": "Active",
            "acqpStatus": "Active",
            "authorizedProducts": ["CashierPayment"],
            "requestedProducts": ["CashierPayment"],
            "tokenSecretRef": {"name": format!("{name}-agent-token"), "key": "agentToken"},
            "tokenRevision": 1,
            "tokenFingerprint": "sha256:0123456789abcdef",
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Authorized",
                "message": "the ACQP authorized every product; the Secret holds the token",
                "lastTransitionTime": now, "observedGeneration": 1,
            }],
        },
    });
    authorizations
        .patch_status(
            &name,
            &PatchParams::apply(harness::FIELD_MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await?;
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

/// Starts a fresh operator for a fresh namespace, applies N at once and waits until all are
/// Ready with Secrets; then counts `steady_intervals` poll intervals of steady state.
async fn operator_pass(bench: &Bench, pass: Pass) -> OperatorRun {
    let Pass {
        n,
        unrelated,
        steady_intervals,
        build,
    } = pass;
    let settings = &bench.settings;
    let namespace = match (unrelated, build) {
        (0, Build::Glibc) => format!("op-{n}"),
        (_, Build::Glibc) => format!("op-{n}-unrelated"),
        (_, Build::Musl) => format!("op-{n}-musl"),
    };
    let binary = match build {
        Build::Glibc => &bench.binary,
        Build::Musl => settings.musl_binary.as_ref().expect("a musl binary"),
    };
    bench.simulator.reset().await;
    harness::prepare_namespace(
        &bench.client,
        &namespace,
        &bench.simulator.url,
        settings.poll,
    )
    .await;
    if unrelated > 0 {
        create_unrelated_secrets(bench, &namespace, unrelated).await;
    }
    let operator = Operator::start(binary, &bench.plane, &namespace, &settings.operator_args).await;
    bench
        .simulator
        .set_notify_url(Some(&operator.notify_url))
        .await;
    harness::wait_application_ready(&bench.client, &namespace).await;
    let tracker = Tracker::start(&bench.client, &namespace).await;

    let before = observe::apiserver_requests(&bench.client).await;
    let pid = operator.process.pid();
    let cpu_before = Cpu::now(bench, Some(pid));
    let audit_from = observe::audit_log_end(&bench.plane.audit_log());
    let started = Instant::now();
    harness::apply_all(
        &bench.client,
        &namespace,
        1..=n,
        settings.client_concurrency,
    )
    .await;
    let apply_seconds = started.elapsed().as_secs_f64();
    // Generous: a pass that does not converge is reported, not waited for forever.
    let timeout = Duration::from_secs(120) + Duration::from_millis(100) * n as u32;
    let converged = tracker
        .wait(timeout, |seen| {
            seen.ready.len() >= n && seen.secret.len() >= n
        })
        .await;
    let converged_seconds = converged.then(|| started.elapsed().as_secs_f64());
    let cpu = Cpu::now(bench, Some(pid)).since(cpu_before);
    let after = observe::apiserver_requests(&bench.client).await;
    let per_application_requests = observe::audit_entries(&bench.plane.audit_log(), audit_from)
        .iter()
        .filter(|request| request.namespace == namespace && request.is_per_application())
        .count();
    let at_convergence = observe::usage(pid);
    let reconciles = operator.reconciles("acqpauthorization").await;
    let ready = tracker.read(|seen| seen.ready.len().min(seen.secret.len()));
    eprintln!(
        "bench:   {ready}/{n} converged in {:.1} s (apply {apply_seconds:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let steady = if converged && steady_intervals > 0 {
        Some(steady_state(bench, pid, steady_intervals).await)
    } else {
        None
    };
    OperatorRun {
        build,
        unrelated_secrets: unrelated,
        apply_seconds,
        converged_seconds,
        ready,
        requests: observe::delta(&before, &after),
        per_application_requests,
        cpu,
        reconciles,
        at_convergence,
        steady,
        at_end: observe::usage(pid),
    }
}

/// Counts Developer Center calls, API-server requests and operator CPU over `intervals` poll
/// intervals, after one interval for the last requeues and notifications to settle.
async fn steady_state(bench: &Bench, pid: u32, intervals: u32) -> Steady {
    let poll = bench.settings.poll;
    tokio::time::sleep(poll).await;
    let audit_log = bench.plane.audit_log();
    let audit_from = observe::audit_log_end(&audit_log);
    let (stats_before, requests_before, usage_before) = (
        bench.simulator.stats().await,
        observe::apiserver_requests(&bench.client).await,
        observe::usage(pid),
    );
    let started = Instant::now();
    tokio::time::sleep(poll * intervals).await;
    let (stats_after, requests_after, usage_after) = (
        bench.simulator.stats().await,
        observe::apiserver_requests(&bench.client).await,
        observe::usage(pid),
    );
    let measured = started.elapsed().as_secs_f64() / poll.as_secs_f64();
    let calls_before = observe::sim_calls(&stats_before);
    let devcenter_calls = observe::sim_calls(&stats_after)
        .into_iter()
        .map(|(path, calls)| {
            let delta = calls - calls_before.get(&path).copied().unwrap_or(0.0);
            (path, delta / measured)
        })
        .collect();
    Steady {
        intervals: measured,
        devcenter_calls,
        requests: observe::delta(&requests_before, &requests_after),
        writes: observe::audit_entries(&audit_log, audit_from)
            .iter()
            .filter(|request| request.is_write())
            .fold(Default::default(), |mut writes, request| {
                *writes.entry(request.describe()).or_default() += 1;
                writes
            }),
        cpu_seconds: (usage_after.cpu_seconds - usage_before.cpu_seconds) / measured,
    }
}

/// Secrets the operator has nothing to do with, about the size of a small TLS Secret each.
async fn create_unrelated_secrets(bench: &Bench, namespace: &str, count: usize) {
    let secrets = Api::<Secret>::namespaced(bench.client.clone(), namespace);
    let payload = "x".repeat(1024);
    futures::stream::iter(0..count)
        .map(|i| {
            let (secrets, payload) = (&secrets, &payload);
            async move {
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("unrelated-{i:05}"), "labels": {"app": "unrelated"}},
                    "stringData": {"payload": payload},
                }))
                .expect("a Secret");
                secrets.create(&PostParams::default(), &secret).await.map(drop)
            }
        })
        .buffer_unordered(bench.settings.client_concurrency)
        .try_for_each(|()| futures::future::ready(Ok(())))
        .await
        .expect("create unrelated Secrets");
}

/// `kubectl apply` → URL in status, then grant → Secret with notifications and polling only.
async fn latency_pass(bench: &Bench) -> Latency {
    let settings = &bench.settings;
    let namespace = "latency";
    bench.simulator.reset().await;
    bench.simulator.set_auto_grant(false).await;
    harness::prepare_namespace(
        &bench.client,
        namespace,
        &bench.simulator.url,
        settings.poll,
    )
    .await;
    let operator = Operator::start(
        &bench.binary,
        &bench.plane,
        namespace,
        &settings.operator_args,
    )
    .await;
    bench
        .simulator
        .set_notify_url(Some(&operator.notify_url))
        .await;
    harness::wait_application_ready(&bench.client, namespace).await;
    let tracker = Tracker::start(&bench.client, namespace).await;
    let mut latency = Latency {
        polled_interval: settings.poll,
        ..Latency::default()
    };

    let manifest = bench.plane.dir.join("authorization.json");
    for i in 1..=settings.apply_samples {
        std::fs::write(&manifest, harness::authorization(i).to_string()).unwrap();
        let started = Instant::now();
        apply_with_kubectl(&bench.plane, namespace, &manifest);
        let name = harness::name(i);
        assert!(
            tracker
                .wait(Duration::from_secs(30), |seen| seen.url.contains_key(&name))
                .await,
            "no URL in the status of {name} after 30 s"
        );
        let seen = tracker.read(|seen| seen.url[&name]);
        latency.apply_to_url.push((seen - started).as_secs_f64());
    }

    let notified = 1..=settings.notify_samples;
    latency.notified = grant_and_measure(
        bench,
        &tracker,
        namespace,
        notified,
        Duration::from_millis(50),
    )
    .await;

    bench.simulator.set_notify_url(None).await;
    let polled = settings.notify_samples + 1..=settings.notify_samples + settings.polling_samples;
    // Spread over 2.5 intervals, so grants land at every point of the poll cycle.
    let spacing = settings.poll.mul_f64(2.5) / settings.polling_samples.max(1) as u32;
    latency.polled = grant_and_measure(bench, &tracker, namespace, polled, spacing).await;
    drop(operator);
    latency
}

fn apply_with_kubectl(plane: &ControlPlane, namespace: &str, manifest: &Path) {
    let manifest = manifest.to_string_lossy();
    plane.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        harness::FIELD_MANAGER,
        "-n",
        namespace,
        "-f",
        &manifest,
    ]);
}

/// Makes sure resources `indices` await authorization, grants them one by one `spacing` apart
/// as the ACQP would, and returns each grant's time to its Secret, in seconds.
async fn grant_and_measure(
    bench: &Bench,
    tracker: &Tracker,
    namespace: &str,
    indices: std::ops::RangeInclusive<usize>,
    spacing: Duration,
) -> Vec<f64> {
    let settings = &bench.settings;
    harness::apply_all(
        &bench.client,
        namespace,
        indices.clone(),
        settings.client_concurrency,
    )
    .await;
    let names: Vec<String> = indices.clone().map(harness::name).collect();
    assert!(
        tracker
            .wait(Duration::from_secs(60), |seen| names
                .iter()
                .all(|n| seen.url.contains_key(n)))
            .await,
        "not every resource got its URL within 60 s"
    );
    let mut granted = Vec::new();
    for i in indices {
        let at = Instant::now();
        bench.simulator.authorize(&harness::acquirer_id(i)).await;
        granted.push((harness::name(i), at));
        tokio::time::sleep(spacing).await;
    }
    let wait = settings.poll * 3 + Duration::from_secs(30);
    let all = tracker
        .wait(wait, |seen| {
            names.iter().all(|n| seen.secret.contains_key(n))
        })
        .await;
    assert!(all, "not every grant reached its Secret within {wait:?}");
    tracker.read(|seen| {
        granted
            .iter()
            .map(|(name, at)| {
                seen.secret[name]
                    .saturating_duration_since(*at)
                    .as_secs_f64()
            })
            .collect()
    })
}
