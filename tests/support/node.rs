//! A real node for the tests that run the operator as users do, in a Pod installed by the
//! chart: `hack/node up` starts a control plane with kube-controller-manager and
//! kube-scheduler, and a kubelet with containerd, runc and a CNI bridge of the run's own. The
//! operator's image is built from this checkout (`hack/image --debug`; cargo rebuilds only
//! what changed) and imported into the node, so the chart installs with
//! `image.pullPolicy: Never`.
//!
//! One node per test binary, started on first use and stopped however the binary ends (a
//! watchdog runs `hack/node down`). `ACQP_KEEP_CONTROL_PLANE=1` keeps its state directory
//! (kubelet, containerd and control-plane logs, the audit log).
//!
//! Networking: Pods sit on a bridge the run creates; the API server and each test's simulator
//! listen on the bridge's own address ([`Node::address`]), so every packet stays on addresses
//! the run owns. There is no kube-proxy, so the Pods are told the API server's address
//! directly ([`Node::chart_values`]).

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tokio::sync::OnceCell;

use super::{Cluster, repo, text};

/// The chart, installed from the checkout.
pub const CHART: &str = "charts/acqp-operator";

/// A running node and its control plane, owned by this test binary.
pub struct Node {
    /// The control plane (kubectl, logs, state directory, the pinned helm).
    pub cluster: Cluster,
    /// The bridge's own address: where the API server listens and where Pods reach the
    /// host (a test's simulator binds it too).
    pub address: IpAddr,
    /// The API server's port on [`Node::address`].
    pub api_port: u16,
    /// Tag of the imported operator image (the crate's version, as `make image` tags it).
    pub image_tag: String,
    /// Directory holding the node's binaries (`ctr`).
    node_bin_dir: PathBuf,
}

static NODE: OnceCell<Result<Node, String>> = OnceCell::const_new();

/// The node of this test binary, started (and the image imported) on first use.
pub async fn node() -> &'static Node {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = NODE
        .get_or_init(|| async {
            tokio::task::spawn_blocking(start)
                .await
                .unwrap_or_else(|e| Err(format!("starting the node panicked: {e}")))
        })
        .await;
    match started {
        Ok(node) => node,
        Err(message) => panic!("{message}"),
    }
}

impl Node {
    /// [`Cluster::helm`] on this node's control plane, failing the test unless it succeeds;
    /// returns stdout.
    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.cluster.helm(args);
        assert!(
            out.status.success(),
            "helm {} failed:\n{}\n{}",
            args.join(" "),
            text(&out),
            self.logs_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `--set` arguments every release on this node needs: the imported image, never
    /// pulled; the API server's address (no kube-proxy serves the `kubernetes` Service); the
    /// simulator's address allowed as a Developer Center endpoint; `namespace` watched.
    pub fn chart_values(&self, namespace: &str) -> Vec<String> {
        vec![
            "--set".into(),
            format!("image.tag={}", self.image_tag),
            "--set".into(),
            "image.pullPolicy=Never".into(),
            "--set".into(),
            format!("devCenter.endpointAllowlist={{{}}}", self.address),
            "--set".into(),
            format!("watchNamespaces={{{namespace}}}"),
            "--set-json".into(),
            format!(
                "extraEnv={}",
                serde_json::json!([
                    {"name": "KUBERNETES_SERVICE_HOST", "value": self.address.to_string()},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": self.api_port.to_string()},
                ])
            ),
        ]
    }

    /// Gives the imported operator image a second tag (for `helm upgrade` to a new image).
    pub fn tag_image(&self, tag: &str) {
        let image = |tag: &str| format!("docker.io/library/acqp-operator:{tag}");
        let out = self
            .ctr()
            .args([
                "images",
                "tag",
                "--force",
                &image(&self.image_tag),
                &image(tag),
            ])
            .output()
            .expect("run ctr");
        assert!(out.status.success(), "ctr images tag: {}", text(&out));
    }

    /// Sends `signal` (e.g. `SIGSTOP`) to the process of container `id`.
    pub fn signal_container(&self, id: &str, signal: &str) {
        let out = self
            .ctr()
            .args(["tasks", "kill", "--signal", signal, id])
            .output()
            .expect("run ctr");
        assert!(out.status.success(), "ctr tasks kill: {}", text(&out));
    }

    /// The host PID of container `id`'s process.
    pub fn container_pid(&self, id: &str) -> u32 {
        let out = self.ctr().args(["tasks", "ls"]).output().expect("run ctr");
        assert!(out.status.success(), "ctr tasks ls: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no task {id} in `ctr tasks ls`"))
    }

    /// `ctr` in the kubelet's namespace of the node's containerd.
    fn ctr(&self) -> Command {
        let mut command = Command::new(self.node_bin_dir.join("ctr"));
        command
            .arg("--address")
            .arg(self.cluster.dir.join("containerd/containerd.sock"))
            .args(["-n", "k8s.io"]);
        command
    }

    /// The last lines of the node's and the control plane's logs, for failure messages.
    pub fn logs_tail(&self) -> String {
        let node: String = [
            "kubelet.log",
            "containerd.log",
            "kube-controller-manager.log",
        ]
        .iter()
        .map(|name| {
            let path = self.cluster.dir.join(name);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            format!("----- last lines of {} -----\n{tail}\n", path.display())
        })
        .collect();
        format!("{node}{}", self.cluster.logs_tail())
    }
}

fn script() -> PathBuf {
    repo("hack/node")
}

/// `KEY=value` lines of a file `hack/node up` wrote.
fn env_file(path: &Path) -> Result<HashMap<String, String>, String> {
    let content =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(content
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The target directory this test binary was built in (`<target>/debug/deps/<binary>`), so
/// the image is built next to it.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("<target>/debug/deps/<binary>")
        .to_owned()
}

fn run(what: &str, command: &mut Command) -> Result<Output, String> {
    let out = command.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed:\n{}", text(&out)))
    }
}

fn start() -> Result<Node, String> {
    let node_bin_dir = run("hack/node path", Command::new(script()).arg("path")).map_err(|e| {
        format!(
            "{e}\nthe node's binaries are missing: run `make test-tools` (or `hack/node ensure`)"
        )
    })?;
    let node_bin_dir = PathBuf::from(String::from_utf8_lossy(&node_bin_dir.stdout).trim());
    let bin_dir = run(
        "hack/control-plane path",
        Command::new(repo("hack/control-plane")).arg("path"),
    )?;
    let bin_dir = PathBuf::from(String::from_utf8_lossy(&bin_dir.stdout).trim());

    let target = target_dir();
    eprintln!(
        "building the operator's image (hack/image --debug) in {}",
        target.display()
    );
    run(
        "hack/image --debug",
        Command::new(repo("hack/image"))
            .arg("--debug")
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let image_tag = env!("CARGO_PKG_VERSION").to_owned();
    let archive = target
        .join("image")
        .join(format!("acqp-operator-{image_tag}.tar"));

    let (dir, keep) = super::state::dir("acqp-node");
    super::state::watchdog(&script(), &dir, keep)?;

    run("hack/node up", Command::new(script()).arg("up").arg(&dir))?;
    run(
        "hack/node import",
        Command::new(script()).arg("import").arg(&dir).arg(&archive),
    )?;
    let node = env_file(&dir.join("node.env"))?;
    let ports = env_file(&dir.join("ports.env"))?;
    let address = node["NODE_ADDRESS"]
        .parse()
        .map_err(|e| format!("NODE_ADDRESS: {e}"))?;
    let api_port = ports["API_PORT"]
        .parse()
        .map_err(|e| format!("API_PORT: {e}"))?;
    Ok(Node {
        cluster: Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            bin_dir,
        },
        address,
        api_port,
        image_tag,
        node_bin_dir,
    })
}
