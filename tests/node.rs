//! End to end as users run the operator: `helm install` of the chart on a real node (kubelet,
//! containerd, runc, a CNI bridge), the image built from this checkout running as the Pod, the
//! Pod's probes and ServiceAccount token, the Developer Center simulator's notifications
//! reaching the Pod, leader election between two Pods, `helm upgrade`, `helm uninstall` and
//! namespace deletion. Timings are printed as `TIMING ...` lines (visible with `--nocapture`).
//!
//! Needs root and the node's binaries (`make test-tools`); see `tests/support/node.rs`.

mod sim_support;
mod support;

use std::{
    process::Output,
    time::{Duration, Instant},
};

use acqp_operator::simulator::{RunningSimulator, Simulator};
use serde_json::{Value, json};
use sim_support::{ACME, Caller, DEMO};
use support::{
    node::{CHART, Node},
    text,
};

/// How long a step may take before the test fails; generous for a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(90);
const SECRET: &str = "acme-cashier-agent-token";

fn timing(what: &str, elapsed: Duration) {
    eprintln!("TIMING {what}: {} ms", elapsed.as_millis());
}

/// One test's world on the shared node: the operator's namespace (the release), the namespace
/// it watches (the authorizations), and a simulator on the node's bridge address.
struct Env {
    node: &'static Node,
    /// The Helm release; it contains the chart's name, so the Deployment, the Lease and the
    /// ServiceAccount are named exactly so (and the cluster-wide roles of two tests differ).
    release: String,
    /// Where the release (Deployment, Lease) lives.
    system: String,
    /// Where the application, the authorization and the token Secret live.
    ns: String,
    _sim: RunningSimulator,
    api: Caller,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        Self::with_simulator(prefix, sim_support::config()).await
    }

    async fn with_simulator(prefix: &str, config: acqp_operator::simulator::Config) -> Env {
        let node = support::node::node().await;
        let suffix = format!("{:04x}", rand::random::<u16>());
        let system = format!("{prefix}-system-{suffix}");
        let ns = format!("{prefix}-{suffix}");
        for name in [&system, &ns] {
            node.cluster.kubectl_ok(&["create", "namespace", name]);
        }
        let sim = Simulator::new(config)
            .start((node.address, 0).into())
            .await
            .expect("the simulator binds the node's bridge address");
        let api = Caller::new(&sim);
        Env {
            node,
            release: format!("{prefix}-acqp-operator"),
            system,
            ns,
            _sim: sim,
            api,
        }
    }

    /// `helm install --wait` (or `upgrade`) of the chart with `replicas` Pods and `more` values;
    /// returns how long it took.
    fn helm_install(&self, command: &str, replicas: u32, more: &[&str]) -> Duration {
        let args = self.helm_args(command, replicas, more);
        let started = Instant::now();
        self.node
            .helm_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        started.elapsed()
    }

    /// The arguments of [`Env::helm_install`], for a run off the test's runtime.
    fn helm_args(&self, command: &str, replicas: u32, more: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [command, &self.release, CHART, "--namespace", &self.system]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        args.extend(["--wait".into(), "--timeout=180s".into(), "--set".into()]);
        args.push(format!("replicas={replicas}"));
        args.extend(self.node.chart_values(&self.ns));
        args.extend(more.iter().map(|a| (*a).to_owned()));
        args
    }

    /// The example application and authorization applied, the ACQP grants, the Secret holds
    /// the token and the authorization is Ready; returns the token.
    async fn granted(&self, poll: &str) -> String {
        self.apply_authorization(poll);
        self.wait_ready("False", "AwaitingAuthorization").await;
        self.authorize(false).await;
        let token = self.sim_token().await;
        self.wait_secret(&token, "1").await;
        self.wait_ready("True", "Authorized").await;
        token
    }

    fn kubectl(&self, ns: &str, args: &[&str]) -> Output {
        self.node.cluster.kubectl_in(ns, args)
    }

    fn kubectl_ok(&self, ns: &str, args: &[&str]) -> String {
        let out = self.kubectl(ns, args);
        assert!(
            out.status.success(),
            "kubectl -n {ns} {}:\n{}\n{}",
            args.join(" "),
            text(&out),
            self.node.logs_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn get(&self, ns: &str, what: &str) -> Option<Value> {
        let out = self.kubectl(ns, &["get", what, "-o", "json"]);
        if out.status.success() {
            return Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        assert!(
            text(&out).contains("NotFound"),
            "kubectl get {what}: {}",
            text(&out)
        );
        None
    }

    /// The operator's Pods that are not terminating, by name.
    fn pods(&self) -> Vec<Value> {
        let selector = format!("app.kubernetes.io/instance={}", self.release);
        let list: Value = serde_json::from_str(&self.kubectl_ok(
            &self.system,
            &["get", "pods", "-l", &selector, "-o", "json"],
        ))
        .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
            .cloned()
            .collect()
    }

    /// The Lease's holder, if any.
    fn leader(&self) -> Option<String> {
        let lease = self.get(&self.system, &format!("lease/{}", self.release))?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }

    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            match check() {
                Ok(value) => return value,
                Err(seen) if Instant::now() > deadline => panic!(
                    "timed out after {STEP:?} waiting for {what}; last seen: {seen}\n{}",
                    self.diagnostics()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until the authorization's Ready condition has `status` and `reason`.
    async fn wait_ready(&self, status: &str, reason: &str) -> Value {
        self.wait_for(
            &format!("acqpauth/acme-cashier Ready={status} ({reason})"),
            || {
                let object = self
                    .get(&self.ns, "acqpauth/acme-cashier")
                    .ok_or("not found")?;
                let ready = ready_condition(&object);
                if ready["status"] == status && ready["reason"] == reason {
                    Ok(object)
                } else {
                    Err(object["status"].to_string())
                }
            },
        )
        .await
    }

    /// Waits until the token Secret holds `token` at `revision`.
    async fn wait_secret(&self, token: &str, revision: &str) -> Value {
        self.wait_for(&format!("{SECRET} at revision {revision}"), || {
            let secret = self
                .get(&self.ns, &format!("secret/{SECRET}"))
                .ok_or("not found")?;
            support::at_revision(secret, token, revision)
        })
        .await
    }

    fn apply(&self, manifest: &str) {
        self.node.cluster.apply_in(&self.ns, manifest);
    }

    /// The example application (pointed at this test's simulator, polling every `poll`) and
    /// the example authorization of Acme for CashierPayment.
    fn apply_authorization(&self, poll: &str) {
        self.apply(&support::fixture::example_application(
            &self.api.endpoint,
            poll,
        ));
        self.kubectl_ok(&self.ns, &["apply", "-f", "examples/acme-cashier.yaml"]);
    }

    async fn authorize(&self, deauthorize: bool) {
        let verb = if deauthorize {
            "deauthorize"
        } else {
            "authorize"
        };
        self.api
            .sim_ok(
                &format!("/sim/acqp/{ACME}/{verb}"),
                &json!({"clientId": DEMO}),
            )
            .await;
    }

    async fn sim_token(&self) -> String {
        let record = self.api.record(ACME).await.expect("a record");
        record["agentToken"].as_str().unwrap().to_owned()
    }

    /// URLs the simulator issued for Acme, every product set together.
    async fn urls_issued(&self) -> u64 {
        let stats = self.api.stats().await;
        stats["urlsByClientAcquirerProducts"]
            .as_object()
            .map_or(0, |by| {
                by.iter()
                    .filter(|(key, _)| key.starts_with(&format!("{DEMO}/{ACME}/")))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
    }

    /// Deletes Pod `name` and returns how long the other Pod took to hold the Lease. With
    /// `kill`, the operator gets no grace: its process is stopped (SIGSTOP, so it can neither
    /// handle the kubelet's SIGTERM nor exit and be restarted) and the Pod force-deleted; the
    /// kubelet SIGKILLs it after its minimum grace, and the Lease must expire.
    async fn delete_leader(&self, name: &str, kill: bool) -> Duration {
        let pod = self.get(&self.system, &format!("pod/{name}")).unwrap();
        let mut args = vec!["delete", "pod", name, "--wait=false"];
        let started = Instant::now();
        if kill {
            let id = pod["status"]["containerStatuses"][0]["containerID"]
                .as_str()
                .and_then(|id| id.strip_prefix("containerd://"))
                .expect("a containerd container ID");
            self.node.signal_container(id, "SIGSTOP");
            args.extend(["--grace-period=0", "--force"]);
        }
        self.kubectl_ok(&self.system, &args);
        let leader = self
            .wait_for("another Pod to take the Lease", || match self.leader() {
                Some(holder) if holder != name => Ok(holder),
                other => Err(format!("{other:?}")),
            })
            .await;
        let took = started.elapsed();
        assert!(
            self.pods()
                .iter()
                .any(|p| p["metadata"]["name"] == leader.as_str()),
            "the new leader {leader} is one of the Deployment's Pods"
        );
        took
    }

    /// Waits until the Deployment has `replicas` Pods, all Ready.
    async fn wait_pods_ready(&self, replicas: usize) -> Vec<Value> {
        self.wait_for(&format!("{replicas} Ready Pods"), || {
            let pods = self.pods();
            let ready = pods.iter().filter(|p| pod_ready(p)).count();
            if pods.len() == replicas && ready == replicas {
                Ok(pods)
            } else {
                Err(format!("{} Pods, {ready} Ready", pods.len()))
            }
        })
        .await
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        for (ns, what) in [
            (&self.system, "deploy,rs,pods,lease"),
            (&self.ns, "dcapp,acqpauth,secret"),
            (&self.system, "events"),
        ] {
            let got = self.kubectl(ns, &["get", what, "-o", "wide"]);
            out += &format!("----- kubectl -n {ns} get {what} -----\n{}\n", text(&got));
        }
        for pod in self.pods() {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let logs = self.kubectl(&self.system, &["logs", name, "--tail=80"]);
            out += &format!("----- logs of {name} -----\n{}\n", text(&logs));
        }
        out + &self.node.logs_tail()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

fn ready_condition(object: &Value) -> Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn pod_ready(pod: &Value) -> bool {
    ready_condition(pod)["status"] == "True"
}

/// One Pod from `helm install --wait`: Ready through its probes, talking to the API server
/// with its own ServiceAccount token, receiving the simulator's notifications, through the
/// whole life cycle — URL, grant, Secret, rotation, revocation — with the token in no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_runs_the_life_cycle() {
    let env = Env::new("node-life").await;
    let took = env.helm_install("install", 1, &[]);
    timing("helm install --wait, 1 replica", took);

    let pods = env.wait_pods_ready(1).await;
    let pod = &pods[0];
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["ready"], true, "{status}");
    assert_eq!(status["restartCount"], 0, "{status}");
    assert!(
        status["image"]
            .as_str()
            .unwrap()
            .ends_with(&env.node.image_tag),
        "{status}"
    );
    let pod_ip = pod["status"]["podIP"]
        .as_str()
        .expect("a Pod IP")
        .to_owned();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_owned();

    // Notifications go to the Pod's own address; polling is slow enough that only a
    // notification can deliver the grant within the step.
    env.api
        .sim_ok(
            &format!("/sim/apps/{DEMO}/notify-url"),
            &json!({"url": format!("http://{pod_ip}:8081/notify")}),
        )
        .await;
    env.apply_authorization("10m");
    let object = env.wait_ready("False", "AwaitingAuthorization").await;
    let url = object["status"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&env.api.endpoint), "{url}");

    env.authorize(false).await;
    let granted = Instant::now();
    let token = env.sim_token().await;
    env.wait_secret(&token, "1").await;
    timing(
        "grant to Secret in the Pod, by notification",
        granted.elapsed(),
    );
    env.wait_ready("True", "Authorized").await;
    let stats = env.api.stats().await;
    assert!(
        stats["notificationsAcked"].as_u64().unwrap() >= 1,
        "{stats}"
    );

    // A product added: a second URL, then rotation.
    env.kubectl_ok(
        &env.ns,
        &[
            "patch",
            "acqpauth/acme-cashier",
            "--type=merge",
            "-p",
            r#"{"spec":{"products":["CashierPayment","AutoDebit"]}}"#,
        ],
    );
    env.wait_ready("False", "ScopeChangePending").await;
    env.authorize(false).await;
    let rotated = env.sim_token().await;
    assert_ne!(rotated, token);
    env.wait_secret(&rotated, "2").await;
    env.wait_ready("True", "Authorized").await;

    // Revocation.
    env.authorize(true).await;
    let object = env
        .wait_for("acqpauth/acme-cashier Stalled=True (Revoked)", || {
            let object = env.get(&env.ns, "acqpauth/acme-cashier").ok_or("gone")?;
            if object["status"]["phase"] == "Revoked" {
                Ok(object)
            } else {
                Err(object["status"].to_string())
            }
        })
        .await;
    assert_eq!(ready_condition(&object)["status"], "False");
    assert_eq!(env.urls_issued().await, 2, "one URL per product set");

    // The operator in the Pod used its own ServiceAccount, from the Pod's address: the audit
    // log records who made each request and from where.
    let audit = std::fs::read_to_string(env.node.cluster.dir.join("audit.log")).unwrap();
    let account = format!("system:serviceaccount:{}:{}", env.system, env.release);
    let from_pod = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["user"]["username"] == account.as_str())
        .filter(|event| event["sourceIPs"][0] == pod_ip.as_str())
        .filter(|event| event["objectRef"]["resource"] == "secrets")
        .count();
    assert!(
        from_pod > 0,
        "no Secret request by {account} from {pod_ip} in the audit log"
    );

    // `kubectl logs` (API server → kubelet) shows the operator's JSON logs, without a token.
    let logs = env.kubectl_ok(&env.system, &["logs", &pod_name]);
    assert!(logs.lines().count() > 10, "{logs}");
    assert!(logs.contains("\"level\""), "JSON logs: {logs}");
    for secret in [&token, &rotated] {
        assert!(
            !logs.contains(secret.as_str()),
            "a token is in the Pod's logs"
        );
    }

    // deletionPolicy Delete: no finalizer holds the resource; the garbage collector of the
    // controller manager deletes the Secret it owns.
    assert!(object["metadata"]["finalizers"].is_null(), "{object}");
    let deleted = Instant::now();
    env.kubectl_ok(
        &env.ns,
        &["delete", "acqpauth/acme-cashier", "--timeout=30s"],
    );
    env.wait_for("the token Secret garbage-collected", || {
        match env.get(&env.ns, "secret/acme-cashier-agent-token") {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await;
    timing("deletion to Secret garbage-collected", deleted.elapsed());
}

/// Two Pods: exactly one leads; deleting it, gracefully or not, hands over without a second
/// URL or a lost token; `helm upgrade` to a new image rolls the Deployment while the
/// authorization stays Ready; `helm uninstall` keeps the CRDs and the token Secret; a new
/// release picks up where the old one left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_hand_over_upgrade_and_uninstall() {
    let env = Env::new("node-ha").await;
    let took = env.helm_install("install", 2, &[]);
    timing("helm install --wait, 2 replicas", took);
    let pods = env.wait_pods_ready(2).await;
    let names: Vec<String> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let leader = env
        .wait_for("a leader", || env.leader().ok_or("no holder".to_owned()))
        .await;
    assert!(
        names.contains(&leader),
        "{leader} leads, not one of {names:?}"
    );

    let token = env.granted("2s").await;

    // The leader's Pod deleted (SIGTERM: it releases the Lease), then a leader killed without
    // grace (the Lease must expire first).
    for kill in [false, true] {
        let leader = env.leader().expect("a leader");
        let took = env.delete_leader(&leader, kill).await;
        let how = if kill {
            "stopped and force-deleted (no grace)"
        } else {
            "deleted (graceful)"
        };
        timing(&format!("leader handover, leader Pod {how}"), took);
        env.wait_pods_ready(2).await;
        env.wait_ready("True", "Authorized").await;
        env.wait_secret(&token, "1").await;
        assert_eq!(env.urls_issued().await, 1, "no second URL after a handover");
    }

    // helm upgrade to a new image tag: a rolling update, the authorization Ready throughout.
    let next = format!("{}-next", env.node.image_tag);
    env.node.tag_image(&next);
    let tag = format!("image.tag={next}");
    let args = env.helm_args("upgrade", 2, &["--set", &tag]);
    let node = env.node;
    let upgrade = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        node.helm_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        started.elapsed()
    });
    while !upgrade.is_finished() {
        let object = env.get(&env.ns, "acqpauth/acme-cashier").unwrap();
        assert_eq!(
            ready_condition(&object)["status"],
            "True",
            "Ready during the upgrade: {}",
            object["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    timing(
        "helm upgrade --wait to a new image tag",
        upgrade.await.unwrap(),
    );
    let pods = env.wait_pods_ready(2).await;
    for pod in &pods {
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap();
        assert!(image.ends_with(&next), "{image}");
    }
    env.wait_secret(&token, "1").await;
    assert_eq!(
        env.urls_issued().await,
        1,
        "no second URL after the upgrade"
    );

    // Uninstall keeps the CRDs and the token Secret (the chart's README says so).
    env.node.helm_ok(&[
        "uninstall",
        &env.release,
        "--namespace",
        &env.system,
        "--wait",
    ]);
    env.node
        .cluster
        .kubectl_ok(&["get", "crd", "acqpauthorizations.acqp-operator.io"]);
    env.wait_secret(&token, "1").await;

    // A new release takes over the existing authorization without a new URL.
    env.helm_install("install", 1, &[]);
    let pod = env.wait_pods_ready(1).await.remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    env.wait_for("the new release's Pod to lead", || match env.leader() {
        Some(holder) if holder == name => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    env.wait_ready("True", "Authorized").await;
    env.wait_secret(&token, "1").await;
    assert_eq!(
        env.urls_issued().await,
        1,
        "no second URL after reinstalling"
    );
}

/// Deleting a namespace that holds an authorization completes while the operator (installed
/// for that namespace only) runs. The namespace controller deletes the chart's Role and
/// RoleBinding there in the same sweep as the authorization, so a finalizer the operator had to
/// remove would wedge it; under the default deletionPolicy there is none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_watched_namespace_completes() {
    let env = Env::new("node-nsdel").await;
    env.helm_install("install", 1, &[]);
    env.granted("2s").await;

    let deleting = Instant::now();
    let out = env.kubectl(&env.ns, &["delete", "namespace", &env.ns, "--timeout=120s"]);
    assert!(out.status.success(), "namespace deletion: {}", text(&out));
    timing(
        "namespace with an authorization deleted",
        deleting.elapsed(),
    );
    let gone = env.node.cluster.kubectl(&["get", "namespace", &env.ns]);
    assert!(
        text(&gone).contains("NotFound"),
        "the namespace is gone: {}",
        text(&gone)
    );
}

/// The Pod's memory at N = 1,000 authorizations, all granted (the simulator grants every URL at
/// once): the container cgroup's usage and the process's RSS, printed as `MEMORY` lines for
/// BENCHMARKS.md. A measurement, not a gate: `cargo test --test node -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md; minutes of work at N = 1,000"]
async fn pod_memory_at_1000_authorizations() {
    const N: usize = 1000;
    const PREFIX: &str = "1022188100";
    let mut config = sim_support::config();
    config.acquirer_ranges = vec![
        serde_json::from_value(json!({
            "prefix": PREFIX, "count": N, "digits": 9,
            "contractProducts": ["CashierPayment"],
        }))
        .unwrap(),
    ];
    config.auto_grant = serde_json::from_value(json!({"enabled": true, "delay": "0s"})).unwrap();
    let env = Env::with_simulator("node-memory", config).await;
    env.helm_install("install", 1, &[]);
    env.apply(&support::fixture::example_application(
        &env.api.endpoint,
        "5s",
    ));

    let manifests: String = (1..=N)
        .map(|i| {
            format!(
                "---\napiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\n\
                 metadata: {{name: acqp-{i:05}}}\nspec:\n  applicationRef: {{name: demo}}\n  \
                 acqp: {{id: \"{PREFIX}{i:09}\", name: Scale Acquirer {i}}}\n  \
                 products: [CashierPayment]\n"
            )
        })
        .collect();
    let started = Instant::now();
    env.apply(&manifests);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list: Value = serde_json::from_str(&env.kubectl_ok(
            &env.ns,
            &[
                "get",
                "secrets",
                "-l",
                "app.kubernetes.io/managed-by=acqp-operator",
                "-o",
                "json",
            ],
        ))
        .unwrap();
        let secrets = list["items"].as_array().unwrap().len();
        if secrets == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{secrets} of {N} token Secrets after 10 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    timing(
        &format!("{N} authorizations to {N} token Secrets in the Pod"),
        started.elapsed(),
    );
    // Steady state: a few seconds after the last write.
    tokio::time::sleep(Duration::from_secs(10)).await;

    let pod = &env.pods()[0];
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("containerd://"))
        .unwrap()
        .to_owned();
    let pid = env.node.container_pid(&id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let memory = cgroup
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_owned()))
        .expect("a memory cgroup (v1)");
    let read = |file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory{memory}/{file}")).unwrap()
    };
    let usage: f64 = read("memory.usage_in_bytes").trim().parse().unwrap();
    let stat = read("memory.stat");
    let rss: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("total_rss "))
        .unwrap()
        .parse()
        .unwrap();
    let mib = 1024.0 * 1024.0;
    // RssFile is mostly the binary's text, whose page cache is charged to whoever read the
    // image first (containerd), so the cgroup counts only the anonymous part.
    eprintln!(
        "MEMORY pod at N = {N}: process RSS {:.1} MiB (peak {:.1} MiB; anonymous {:.1} MiB, \
         file-backed {:.1} MiB); container cgroup usage {:.1} MiB, of which rss {:.1} MiB",
        kib("VmRSS:") / 1024.0,
        kib("VmHWM:") / 1024.0,
        kib("RssAnon:") / 1024.0,
        kib("RssFile:") / 1024.0,
        usage / mib,
        rss / mib
    );
}
