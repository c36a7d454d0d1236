//! Flux for the GitOps end-to-end tests: source-controller and kustomize-controller (built by
//! `hack/flux ensure` from their pinned Go modules) run as host processes against the test
//! binary's control plane, with their CRDs installed, and a Git server on loopback.
//!
//! Every address the controllers listen on or advertise is 127.0.0.1 with a port of its own.
//! They run once per test binary (they watch every namespace; each test has its own), and a
//! watchdog stops exactly their PIDs when the test process is gone, however it ends.

pub mod git;

use std::{
    fs::File,
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

use crate::support::{self, Cluster, text};

/// The running controllers of this test binary.
pub struct Flux {
    /// Log files of source-controller and kustomize-controller.
    pub logs: Vec<PathBuf>,
}

static FLUX: OnceCell<Result<Flux, String>> = OnceCell::const_new();

/// Flux on this test binary's control plane, started (CRDs included) on first use.
pub async fn flux() -> &'static Flux {
    let cluster = support::cluster().await;
    let started = FLUX
        .get_or_init(|| async {
            tokio::task::spawn_blocking(move || start(cluster))
                .await
                .unwrap_or_else(|e| Err(format!("starting Flux panicked: {e}")))
        })
        .await;
    match started {
        Ok(flux) => flux,
        Err(message) => panic!("{message}"),
    }
}

impl Flux {
    /// The last lines of both controllers' logs, to print when a test fails.
    pub fn logs_tail(&self) -> String {
        self.logs
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                format!("----- last lines of {} -----\n{tail}\n", path.display())
            })
            .collect()
    }
}

fn start(cluster: &'static Cluster) -> Result<Flux, String> {
    let script = support::repo("hack/flux");
    let path = Command::new(&script)
        .arg("path")
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !path.status.success() {
        return Err(format!(
            "the Flux controllers are missing: run `hack/flux ensure` (or `make test`), then \
             rerun the tests.\n{}",
            text(&path)
        ));
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
    install_crds(cluster, &bin)?;

    let ports = free_ports(5);
    let storage = format!("127.0.0.1:{}", ports[0]);
    let data = cluster.dir.join("flux-source-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let source = spawn(
        cluster,
        &bin,
        "source-controller",
        &[
            format!("--storage-path={}", data.display()),
            format!("--storage-addr={storage}"),
            format!("--storage-adv-addr={storage}"),
            format!("--metrics-addr=127.0.0.1:{}", ports[1]),
            format!("--health-addr=127.0.0.1:{}", ports[2]),
        ],
    )?;
    let kustomize = spawn(
        cluster,
        &bin,
        "kustomize-controller",
        &[
            format!("--metrics-addr=127.0.0.1:{}", ports[3]),
            format!("--health-addr=127.0.0.1:{}", ports[4]),
            // A Kustomization whose dependency is not Ready yet is looked at again this soon
            // (30 s by default), so a test's steps follow each other quickly.
            "--requeue-dependency=2s".into(),
        ],
    )?;
    let logs = vec![source.1.clone(), kustomize.1.clone()];
    // Dropping a Child leaves the process running; its watchdog stops it.
    for ((mut child, log), port) in [(source, ports[2]), (kustomize, ports[4])] {
        wait_ready(&mut child, &log, port)?;
    }
    Ok(Flux { logs })
}

fn install_crds(cluster: &Cluster, bin: &std::path::Path) -> Result<(), String> {
    let crds = bin.join("crds").display().to_string();
    let steps: [&[&str]; 2] = [
        &["apply", "--server-side", "-f", &crds],
        &[
            "wait",
            "--for=condition=Established",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
            "--timeout=60s",
        ],
    ];
    for args in steps {
        let out = cluster.kubectl(args);
        if !out.status.success() {
            return Err(format!(
                "kubectl {} failed:\n{}",
                args.join(" "),
                text(&out)
            ));
        }
    }
    Ok(())
}

/// Starts `bin/name` with `args` against the cluster, logging to a file in its state
/// directory, and a watchdog that stops exactly that PID once this test process is gone.
fn spawn(
    cluster: &Cluster,
    bin: &std::path::Path,
    name: &str,
    args: &[String],
) -> Result<(Child, PathBuf), String> {
    let log = cluster.dir.join(format!("{name}.log"));
    let file = File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(bin.join(name))
        .args(args)
        .arg("--log-level=info")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?;
    Command::new("sh")
        .args([
            "-c",
            r#"while kill -0 "$0" 2>/dev/null; do sleep 1; done; kill -TERM "$1" 2>/dev/null"#,
        ])
        .arg(std::process::id().to_string())
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the watchdog of {name}: {e}"))?;
    Ok((child, log))
}

/// Waits until the controller's health endpoint on `port` says ready.
fn wait_ready(child: &mut Child, log: &std::path::Path, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited with {status} before it was ready:\n{}",
                log.display(),
                logs()
            ));
        }
        let ready = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null"])
            .arg(format!("http://127.0.0.1:{port}/readyz"))
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} not ready on 127.0.0.1:{port} after 60 s:\n{}",
                log.display(),
                logs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `count` distinct free loopback ports (bound together so the kernel hands out different ones).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}
