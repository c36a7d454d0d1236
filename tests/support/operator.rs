//! The real `acqp-operator run` binary as a child process of a test: its own metrics and
//! notification ports, its stdout and stderr captured in a file (for assertions, and printed
//! when a test fails), killed when dropped.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use super::Cluster;

/// How to run the operator.
#[derive(Clone, Debug, Default)]
pub struct OperatorOptions {
    /// `--namespace`: act only there (the default acts in every namespace).
    pub namespace: Option<String>,
    /// The kubeconfig it uses (e.g. one that impersonates its ServiceAccount); the cluster's
    /// admin kubeconfig by default.
    pub kubeconfig: Option<PathBuf>,
    /// More arguments after `run` and the address and log flags.
    pub extra_args: Vec<String>,
    /// `RUST_LOG` [default: info].
    pub rust_log: Option<String>,
    /// More environment variables (e.g. `POD_NAME`, the leader election identity).
    pub env: Vec<(String, String)>,
}

/// A running `acqp-operator run`.
pub struct Operator {
    child: Child,
    log: PathBuf,
    metrics_addr: SocketAddr,
    notify_addr: SocketAddr,
}

impl Operator {
    /// Starts the operator against `cluster` and waits until `/healthz` answers (it panics with
    /// the operator's output if the process exits first or does not answer in 30 s).
    pub async fn start(cluster: &Cluster, options: OperatorOptions) -> Operator {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (metrics_addr, notify_addr) = free_addrs();
        let log = cluster.dir.join(format!(
            "operator-{}-{}.log",
            options.namespace.as_deref().unwrap_or("all"),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&log).expect("create the operator's log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_acqp-operator"));
        command
            .arg("run")
            .arg(format!("--metrics-addr={metrics_addr}"))
            .arg(format!("--notify-addr={notify_addr}"))
            .arg("--log-format=json");
        if let Some(namespace) = &options.namespace {
            command.arg(format!("--namespace={namespace}"));
        }
        // The simulator and the tests' fakes listen on loopback, which the operator refuses
        // unless allowed; a test of the default policy passes an allowlist of its own.
        if !options
            .extra_args
            .iter()
            .any(|a| a.starts_with("--endpoint-allowlist"))
        {
            command.arg("--endpoint-allowlist=127.0.0.0/8,::1");
        }
        command
            .args(&options.extra_args)
            .env(
                "KUBECONFIG",
                options.kubeconfig.as_ref().unwrap_or(&cluster.kubeconfig),
            )
            .env("RUST_LOG", options.rust_log.as_deref().unwrap_or("info"))
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file handle"))
            .stderr(file);
        let child = command.spawn().expect("start acqp-operator");
        let mut operator = Operator {
            child,
            log,
            metrics_addr,
            notify_addr,
        };
        operator.wait_healthy(Duration::from_secs(30)).await;
        operator
    }

    async fn wait_healthy(&mut self, timeout: Duration) {
        let http = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.metrics_addr);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "acqp-operator exited with {status} before serving /healthz:\n{}",
                    self.logs()
                );
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "acqp-operator did not serve {url} within {timeout:?}:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` says the caches are synced.
    pub async fn wait_ready(&self, timeout: Duration) {
        let http = reqwest::Client::new();
        let url = format!("http://{}/readyz", self.metrics_addr);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{url} not ready within {timeout:?}:\n{}", self.logs());
    }

    /// The notification endpoint, `http://<notify-addr>/notify`.
    pub fn notify_url(&self) -> String {
        format!("http://{}/notify", self.notify_addr)
    }

    /// The metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_addr);
        let response = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.logs()));
        response.text().await.expect("metrics body")
    }

    /// Everything the operator wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where its output goes.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to 30 s) for the exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for acqp-operator") {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "acqp-operator did not exit within 30 s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process ID (the same for the operator's whole life; a restart is a new one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two different loopback addresses whose ports were free a moment ago.
fn free_addrs() -> (SocketAddr, SocketAddr) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    let (first, second) = (bind(), bind());
    (
        first.local_addr().expect("bound address"),
        second.local_addr().expect("bound address"),
    )
}
