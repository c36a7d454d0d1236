//! Test support shared by the integration test binaries (each declares `mod support;`).
//!
//! Every test binary gets one real control plane — etcd and kube-apiserver built from pinned
//! upstream modules and started by `hack/control-plane up` — with the CRDs from `crds/`
//! installed, plus a fresh namespace per test. Binaries missing is a failure that says to run
//! `hack/control-plane ensure`, never a skip.
//!
//! Set `ACQP_KEEP_CONTROL_PLANE=1` to keep the state directory (logs, audit log, kubeconfig)
//! after the test binary exits; its path is printed at start (shown for failed tests, or for
//! all with `--nocapture`); stop it with `hack/control-plane down DIR`.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod env;
pub mod fixture;
pub mod node;
pub mod operator;
pub mod smtp;
pub mod state;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Config,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::sync::OnceCell;

/// A running control plane owned by this test binary.
pub struct Cluster {
    /// State directory: certificates, etcd data, logs, `audit.log`, PID files.
    pub dir: PathBuf,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// Directory holding the pinned `etcd`, `kube-apiserver` and `helm` binaries.
    pub bin_dir: PathBuf,
}

/// A process of the control plane, for [`Cluster::restart`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    KubeApiserver,
}

impl Component {
    /// Its name in `hack/control-plane` and in the state directory (`<name>.pid`, `.log`).
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
        }
    }
}

/// What a [`Cluster::restart`] took.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    /// From the stop signal until the component served again.
    pub component: std::time::Duration,
    /// From the stop signal until the API server's `/readyz` answered again.
    pub until_ready: std::time::Duration,
}

static CLUSTER: OnceCell<Result<Cluster, String>> = OnceCell::const_new();

/// The control plane of this test binary, started (CRDs included) on first use.
pub async fn cluster() -> &'static Cluster {
    // kube and reqwest share one rustls provider; the first caller installs it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = CLUSTER
        .get_or_init(|| async {
            tokio::task::spawn_blocking(start)
                .await
                .unwrap_or_else(|e| Err(format!("starting the control plane panicked: {e}")))
        })
        .await;
    match started {
        Ok(cluster) => cluster,
        Err(message) => panic!("{message}"),
    }
}

/// Creates a fresh namespace named after `prefix` and returns its name.
pub async fn namespace(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let cluster = cluster().await;
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let name = format!(
        "{}-{}-{:04x}",
        prefix.trim_matches('-'),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u16>()
    );
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name },
    }))
    .expect("namespace manifest");
    Api::<Namespace>::all(cluster.client().await)
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}\n{}", cluster.logs_tail()));
    name
}

impl Cluster {
    /// Runs the pinned `helm` against this cluster, with its caches and config in the state
    /// directory so tests never read or write the user's ~/.config/helm.
    pub fn helm(&self, args: &[&str]) -> Output {
        let home = self.dir.join("helm");
        Command::new(self.bin_dir.join("helm"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .current_dir(repo(""))
            .output()
            .expect("run helm")
    }

    /// A new client for the admin identity (clients are bound to the test's own runtime).
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is valid");
        Client::try_from(config).expect("build client")
    }

    /// Runs `kubectl` against this control plane from the repository root.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root())
            .output()
            .expect("kubectl is installed")
    }

    /// `kubectl -n <ns> args...`.
    pub fn kubectl_in(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        self.kubectl(&all)
    }

    /// `kubectl -n <ns> args...`, failing the test unless it succeeds; returns stdout.
    pub fn kubectl_ok_in(&self, ns: &str, args: &[&str]) -> String {
        let out = self.kubectl_in(ns, args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl -n <ns> apply -f` of a manifest given as text.
    pub fn apply_in(&self, ns: &str, manifest: &str) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), manifest).unwrap();
        self.kubectl_ok_in(ns, &["apply", "-f", &file.path().display().to_string()]);
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's and the server's output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            text(&out),
            self.logs_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Restarts one component of this control plane (`hack/control-plane restart`): stops
    /// exactly its process (SIGTERM, SIGKILL 30 s later if it still runs), starts it again with
    /// the same flags, ports, certificates and data, waits until it serves and then until the
    /// API server is ready again. Clients keep their kubeconfig and reconnect by themselves.
    pub fn restart(&self, component: Component) -> Outage {
        self.restart_with_grace(component, std::time::Duration::from_secs(30))
    }

    /// [`Cluster::restart`] with SIGKILL `grace` (whole seconds) after SIGTERM.
    pub fn restart_with_grace(&self, component: Component, grace: std::time::Duration) -> Outage {
        let started = std::time::Instant::now();
        let out = Command::new(script())
            .arg("restart")
            .arg(&self.dir)
            .arg(component.name())
            .arg(grace.as_secs().to_string())
            .output()
            .expect("hack/control-plane runs");
        assert!(
            out.status.success(),
            "hack/control-plane restart {} failed:\n{}\n{}",
            component.name(),
            text(&out),
            self.logs_tail()
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let ms = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("downtime_ms=")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no downtime_ms in:\n{}", text(&out)));
        let deadline = started + std::time::Duration::from_secs(60);
        while !self.kubectl(&["get", "--raw=/readyz"]).status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "the API server is not ready 60 s after restarting {}:\n{}",
                component.name(),
                self.logs_tail()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Outage {
            component: std::time::Duration::from_millis(ms),
            until_ready: started.elapsed(),
        }
    }

    /// The PID of a running component, from its PID file.
    pub fn pid(&self, component: Component) -> u32 {
        let file = self.dir.join(format!("{}.pid", component.name()));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .expect("a PID")
    }

    /// The last lines of the kube-apiserver and etcd logs, to print when a test fails.
    pub fn logs_tail(&self) -> String {
        ["kube-apiserver.log", "etcd.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(50)..].join("\n");
                format!(
                    "----- last lines of {} -----\n{tail}\n",
                    self.dir.join(name).display()
                )
            })
            .collect()
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("hack/control-plane")
}

/// A file or directory of the repository, from its path relative to the root.
pub fn repo(path: &str) -> PathBuf {
    repo_root().join(path)
}

/// Runs `acqp-operator <subcommand> args...` from the repository root, with `KUBECONFIG` set
/// when `kubeconfig` is given.
pub fn acqp_operator(subcommand: &str, args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_acqp-operator"));
    command.arg(subcommand).args(args).current_dir(repo_root());
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    command.output().expect("the binary runs")
}

/// The Agent-Token a token Secret (as `kubectl get -o json` shows it) holds under the default
/// key `agentToken`, decoded; empty when there is none.
pub fn agent_token(secret: &serde_json::Value) -> String {
    use base64::Engine as _;
    let encoded = secret["data"]["agentToken"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// `secret` if it holds `token` as token revision `revision`, else what its annotations say (for
/// a wait's "last seen").
pub fn at_revision(
    secret: serde_json::Value,
    token: &str,
    revision: &str,
) -> Result<serde_json::Value, String> {
    let annotations = &secret["metadata"]["annotations"];
    if agent_token(&secret) == token && annotations["acqp-operator.io/token-revision"] == revision {
        Ok(secret)
    } else {
        Err(annotations.to_string())
    }
}

/// A command's stdout followed by its stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn start() -> Result<Cluster, String> {
    let path = Command::new(script())
        .arg("path")
        .output()
        .map_err(|e| e.to_string())?;
    if !path.status.success() {
        return Err(format!(
            "the control plane binaries are missing: run `hack/control-plane ensure` \
             (or `make test`), then rerun the tests.\n{}",
            text(&path)
        ));
    }
    let bin_dir = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
    let (dir, keep) = state::dir("acqp-cp");
    state::watchdog(&script(), &dir, keep)?;

    let up = Command::new(script())
        .arg("up")
        .arg(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !up.status.success() {
        return Err(format!("`hack/control-plane up` failed:\n{}", text(&up)));
    }
    let cluster = Cluster {
        kubeconfig: dir.join("kubeconfig"),
        dir,
        bin_dir,
    };
    cluster.install_crds()?;
    Ok(cluster)
}

impl Cluster {
    fn install_crds(&self) -> Result<(), String> {
        let steps: [&[&str]; 2] = [
            &["apply", "--server-side", "-f", "crds/"],
            &[
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=60s",
            ],
        ];
        for args in steps {
            let out = self.kubectl(args);
            if !out.status.success() {
                return Err(format!(
                    "kubectl {} failed:\n{}\n{}",
                    args.join(" "),
                    text(&out),
                    self.logs_tail()
                ));
            }
        }
        Ok(())
    }
}
