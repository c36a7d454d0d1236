//! The processes a run needs — a real control plane, the Developer Center simulator, the
//! operator — each stopped when its guard is dropped, plus the resources the runs apply.

use std::{
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use acqp_operator::api::{AcqpAuthorization, DeveloperCenterApplication};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client, Config,
    api::{Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

/// The simulator's application, its acquirer range and the field manager of the bench's applies.
pub const CLIENT_ID: &str = "SANDBOX_ACQP_OPERATOR_BENCH";
pub const ACQUIRER_PREFIX: &str = "1022188100";
pub const APPLICATION: &str = "bench";
pub const FIELD_MANAGER: &str = "acqp-bench";

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `index`-th generated acquirer (1-based), as `acquirerRanges` names it.
pub fn acquirer_id(index: usize) -> String {
    format!("{ACQUIRER_PREFIX}{index:09}")
}

/// A free loopback port (the kernel picks it; the tiny race with its reuse is accepted).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A child process, killed when dropped.
pub struct Process {
    pub child: Child,
    name: &'static str,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("create a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("stopping {}: {error}", self.name);
        }
        let _ = self.child.wait();
    }
}

/// etcd and kube-apiserver started by `hack/control-plane up`, with the CRDs installed.
pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl ControlPlane {
    pub fn up(dir: &Path) -> Self {
        let script = repo_root().join("hack/control-plane");
        // Stops exactly this control plane when the bench exits, however it exits (a panic, ^C,
        // SIGKILL), as tests/support does; it must outlive the bench, so it is never waited for.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .args([
                "-c",
                r#"while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$1" down "$2""#,
            ])
            .arg(std::process::id().to_string())
            .arg(&script)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the control plane watchdog");
        run(Command::new(&script).arg("up").arg(dir));
        let plane = Self {
            dir: dir.to_owned(),
            kubeconfig: dir.join("kubeconfig"),
        };
        plane.kubectl(&["apply", "--server-side", "-f", "crds/"]);
        plane.kubectl(&["wait", "--for=condition=Established", "crd", "--all"]);
        plane
    }

    /// The API server's audit log: every request, at Metadata level.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// The PIDs of etcd and kube-apiserver, from `hack/control-plane`'s pid files.
    pub fn pids(&self) -> Vec<u32> {
        ["etcd", "kube-apiserver"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir.join(format!("{name}.pid"))).ok())
            .filter_map(|pid| pid.trim().parse().ok())
            .collect()
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        run(Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root()))
    }

    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read the kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a valid kubeconfig");
        Client::try_from(config).expect("a Kubernetes client")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("hack/control-plane"))
            .arg("down")
            .arg(&self.dir)
            .output();
    }
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The simulator in auto-grant mode with `acquirers` generated acquirers.
pub struct Simulator {
    pub url: String,
    process: Process,
}

impl Simulator {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub async fn start(binary: &Path, dir: &Path, acquirers: usize) -> Self {
        let keys = repo_root().join("examples/keys");
        let config = format!(
            r#"devCenterPrivateKeyFile: {keys}/devcenter-private.pem
applications:
  - clientId: {CLIENT_ID}
    name: ACQP Operator Bench
    environment: Sandbox
    role: DeveloperAdmin
    integratedProducts: [CashierPayment, AutoDebit]
    tspPublicKeyFile: {keys}/tsp-public.pem
acquirerRanges:
  - prefix: "{ACQUIRER_PREFIX}"
    count: {acquirers}
    digits: 9
    namePrefix: Scale Acquirer
    contractProducts: [CashierPayment, AutoDebit]
autoGrant: {{enabled: true, delay: 0s}}
"#,
            keys = keys.display()
        );
        let config_path = dir.join("simulator.yaml");
        std::fs::write(&config_path, config).expect("write the simulator config");
        let addr = format!("127.0.0.1:{}", free_port());
        let process = Process::spawn(
            "simulator",
            Command::new(binary)
                .arg("simulator")
                .arg("--config")
                .arg(&config_path)
                .arg("--listen")
                .arg(&addr),
            &dir.join("simulator.log"),
        );
        let url = format!("http://{addr}");
        wait_http(&format!("{url}/sim/health")).await;
        Self { url, process }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response
    }

    /// Forgets every URL and grant and turns auto-grant back on, so each pass starts clean.
    pub async fn reset(&self) {
        self.post("/sim/reset", json!({})).await;
    }

    pub async fn set_notify_url(&self, url: Option<&str>) {
        self.post(
            &format!("/sim/apps/{CLIENT_ID}/notify-url"),
            json!({ "url": url }),
        )
        .await;
    }

    pub async fn set_auto_grant(&self, enabled: bool) {
        self.post("/sim/auto-grant", json!({"enabled": enabled, "delayMs": 0}))
            .await;
    }

    /// The ACQP clicks Authorize on its newest URL.
    pub async fn authorize(&self, acquirer: &str) {
        self.post(
            &format!("/sim/acqp/{acquirer}/authorize"),
            json!({ "clientId": CLIENT_ID }),
        )
        .await;
    }

    pub async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/sim/stats", self.url))
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /sim/stats")
            .json()
            .await
            .expect("/sim/stats is JSON")
    }
}

/// `acqp-operator run`, confined to one namespace so passes do not see each other.
pub struct Operator {
    pub metrics_url: String,
    pub notify_url: String,
    pub process: Process,
}

impl Operator {
    pub async fn start(
        binary: &Path,
        plane: &ControlPlane,
        namespace: &str,
        args: &[String],
    ) -> Self {
        let metrics = format!("127.0.0.1:{}", free_port());
        let notify = format!("127.0.0.1:{}", free_port());
        // `ACQP_BENCH_OPERATOR_WRAPPER="heaptrack -o /tmp/op"` (or `perf record -g --`) profiles
        // the operator; its PID, and so the memory and CPU figures, are then the wrapper's.
        let wrapper = std::env::var("ACQP_BENCH_OPERATOR_WRAPPER").unwrap_or_default();
        let mut wrapper = wrapper.split_whitespace();
        let mut command = match wrapper.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(wrapper).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["run", "--namespace", namespace])
            .args(["--metrics-addr", &metrics, "--notify-addr", &notify])
            // The simulator listens on loopback, which the endpoint policy refuses by default.
            .arg("--endpoint-allowlist=127.0.0.0/8")
            .env("KUBECONFIG", &plane.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        command.args(args);
        let process = Process::spawn(
            "operator",
            &mut command,
            &plane.dir.join(format!("operator-{namespace}.log")),
        );
        let metrics_url = format!("http://{metrics}");
        wait_http(&format!("{metrics_url}/readyz")).await;
        Self {
            metrics_url,
            notify_url: format!("http://{notify}/notify"),
            process,
        }
    }

    /// `acqp_operator_reconciles_total` of one controller.
    pub async fn reconciles(&self, controller: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics_url))
            .await
            .expect("GET the operator's /metrics")
            .text()
            .await
            .expect("read /metrics");
        let prefix = format!("acqp_operator_reconciles_total{{controller=\"{controller}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

async fn wait_http(url: &str) {
    for _ in 0..300 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no answer from {url} after 30 s");
}

/// Creates a namespace holding the credentials Secret and a DeveloperCenterApplication that
/// polls every `poll`; returns once the application is Ready.
pub async fn prepare_namespace(client: &Client, namespace: &str, simulator: &str, poll: Duration) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));
    let key = |name: &str| {
        std::fs::read_to_string(repo_root().join("examples/keys").join(name))
            .expect("read a test key")
    };
    let credentials: Secret = serde_json::from_value(json!({
        "metadata": {"name": "bench-credentials"},
        "stringData": {
            "privateKey": key("tsp-private.pem"),
            "devCenterPublicKey": key("devcenter-public.pem"),
        },
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &credentials)
        .await
        .expect("create the credentials Secret");
    let app = json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "DeveloperCenterApplication",
        "metadata": {"name": APPLICATION},
        "spec": {
            "environment": "Sandbox",
            "endpoint": simulator,
            "clientId": CLIENT_ID,
            "credentialsSecretRef": {"name": "bench-credentials"},
            "pollInterval": format!("{}s", poll.as_secs()),
        },
    });
    Api::<DeveloperCenterApplication>::namespaced(client.clone(), namespace)
        .patch(
            APPLICATION,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&app),
        )
        .await
        .expect("apply the DeveloperCenterApplication");
}

/// Waits until the namespace's application reports Ready (the operator is running).
pub async fn wait_application_ready(client: &Client, namespace: &str) {
    let apps = Api::<DeveloperCenterApplication>::namespaced(client.clone(), namespace);
    for _ in 0..600 {
        let app = apps.get(APPLICATION).await.expect("get the application");
        let ready = app.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("application {namespace}/{APPLICATION} not Ready after 60 s");
}

/// The AcqpAuthorization for generated acquirer `index`, as a user would write it.
pub fn authorization(index: usize) -> serde_json::Value {
    json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "metadata": {"name": name(index)},
        "spec": {
            "applicationRef": {"name": APPLICATION},
            "acqp": {"id": acquirer_id(index), "name": format!("Scale Acquirer {index}")},
            "products": ["CashierPayment"],
        },
    })
}

pub fn name(index: usize) -> String {
    format!("acqp-{index:05}")
}

/// Server-side applies AcqpAuthorizations `indices` with `concurrency` requests in flight, the
/// way a GitOps tool applies a directory.
pub async fn apply_all(
    client: &Client,
    namespace: &str,
    indices: impl Iterator<Item = usize>,
    concurrency: usize,
) {
    use futures::{StreamExt as _, TryStreamExt as _};
    let api = Api::<AcqpAuthorization>::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER);
    futures::stream::iter(indices)
        .map(|i| {
            let (api, params) = (&api, &params);
            async move {
                api.patch(&name(i), params, &Patch::Apply(authorization(i)))
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await
        .expect("apply AcqpAuthorizations");
}
