//! What a run reads: when each resource got its URL, became Ready and got its Secret (from
//! watches, so times are exact), the API server's request counters, and the operator's
//! memory and CPU from /proc.

use std::{
    collections::{BTreeMap, HashMap},
    io::{Read as _, Seek as _, SeekFrom},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use acqp_operator::api::AcqpAuthorization;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{WatchStreamExt as _, watcher},
};
use tokio::{sync::Notify, task::JoinHandle};

/// When each AcqpAuthorization (by name) was first seen with a URL, Ready, and with its Secret.
#[derive(Default)]
pub struct Seen {
    pub url: HashMap<String, Instant>,
    pub ready: HashMap<String, Instant>,
    pub secret: HashMap<String, Instant>,
}

/// Watches one namespace's AcqpAuthorizations and operator-managed Secrets.
pub struct Tracker {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tracker {
    pub async fn start(client: &Client, namespace: &str) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let authorizations = Api::<AcqpAuthorization>::namespaced(client.clone(), namespace);
        let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
        let managed =
            watcher::Config::default().labels("app.kubernetes.io/managed-by=acqp-operator");
        let tasks = vec![
            tokio::spawn(watch(
                authorizations,
                watcher::Config::default(),
                seen.clone(),
                changed.clone(),
                |seen, a: &AcqpAuthorization, now| {
                    let status = a.status.as_ref();
                    if status.is_some_and(|s| s.authorization_url.is_some()) {
                        seen.url.entry(a.name_any()).or_insert(now);
                    }
                    let ready = status.is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    });
                    if ready {
                        seen.ready.entry(a.name_any()).or_insert(now);
                    }
                },
            )),
            tokio::spawn(watch(
                secrets,
                managed,
                seen.clone(),
                changed.clone(),
                |seen, s: &Secret, now| {
                    if let Some(owner) = s.name_any().strip_suffix("-agent-token") {
                        seen.secret.entry(owner.to_owned()).or_insert(now);
                    }
                },
            )),
        ];
        let tracker = Self {
            seen,
            changed,
            tasks,
        };
        // Lets both watches list first, so later times are those of watch events.
        tokio::time::sleep(Duration::from_millis(500)).await;
        tracker
    }

    /// Waits until `done` holds or `timeout` passes; returns whether it held.
    pub async fn wait(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if done(&self.seen.lock().unwrap()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return done(&self.seen.lock().unwrap());
            }
        }
    }

    pub fn read<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    record: impl Fn(&mut Seen, &K, Instant) + Send + 'static,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut events = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        if let Ok(object) = event {
            record(&mut seen.lock().unwrap(), &object, Instant::now());
            changed.notify_waiters();
        }
    }
}

/// `apiserver_request_total` summed by (verb, resource[/subresource]).
pub type Requests = BTreeMap<(String, String), f64>;

/// The API server's request counters, read from its own /metrics.
pub async fn apiserver_requests(client: &Client) -> Requests {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client
        .request_text(request)
        .await
        .expect("read the API server's /metrics");
    let mut requests = Requests::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let resource = match label("subresource").as_str() {
            "" => label("resource"),
            sub => format!("{}/{sub}", label("resource")),
        };
        *requests.entry((label("verb"), resource)).or_default() +=
            value.trim().parse::<f64>().unwrap_or(0.0);
    }
    requests
}

/// What happened between two counter readings, keeping only non-zero entries.
pub fn delta(before: &Requests, after: &Requests) -> Requests {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// The resources the operator reads and writes.
pub const OUR_RESOURCES: [&str; 6] = [
    "acqpauthorizations",
    "acqpauthorizations/status",
    "developercenterapplications",
    "developercenterapplications/status",
    "secrets",
    "events",
];

pub fn is_write(verb: &str) -> bool {
    !matches!(verb, "GET" | "LIST" | "WATCH" | "WATCHLIST" | "CONNECT")
}

/// Sum of `requests` whose verb and resource satisfy `keep`.
pub fn total(requests: &Requests, keep: impl Fn(&str, &str) -> bool) -> f64 {
    requests
        .iter()
        .filter(|((verb, resource), _)| keep(verb, resource))
        .map(|(_, v)| v)
        // A fold from +0.0: an empty float `sum()` is -0.0, which prints as "-0".
        .fold(0.0, |total, v| total + v)
}

/// The audit log's size now: where [`audit_entries`] starts reading.
pub fn audit_log_end(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// One completed request to our resources, from the audit log.
pub struct Audited {
    pub verb: String,
    /// With its subresource: `acqpauthorizations/status`.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The user agent up to its first '/' (the program), else the user name.
    pub by: String,
}

impl Audited {
    pub fn is_write(&self) -> bool {
        matches!(&*self.verb, "create" | "update" | "patch" | "delete")
    }

    /// Whether this request concerns an application rather than a resource: the
    /// DeveloperCenterApplication itself or its credentials Secret (token Secrets end in
    /// `-agent-token`). Those come once per application and poll interval, whatever N is.
    pub fn is_per_application(&self) -> bool {
        self.resource.starts_with("developercenterapplications")
            || (self.resource == "secrets" && !self.name.ends_with("-agent-token"))
    }

    /// "patch acqpauthorizations/status op-100/acqp-00042 by acqp-operator"
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}/{} by {}",
            self.verb, self.resource, self.namespace, self.name, self.by
        )
    }
}

/// The completed requests to our resources recorded in the audit log after byte `from`: the
/// counters say how many requests there were, this says which.
pub fn audit_entries(log: &Path, from: u64) -> Vec<Audited> {
    let Ok(mut file) = std::fs::File::open(log) else {
        return vec![];
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_string(&mut text).is_err() {
        return vec![];
    }
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["stage"] == "ResponseComplete")
        .filter_map(|entry| {
            let object = &entry["objectRef"];
            let field = |name: &str| object[name].as_str().unwrap_or_default().to_owned();
            let resource = match &*field("subresource") {
                "" => field("resource"),
                sub => format!("{}/{sub}", field("resource")),
            };
            OUR_RESOURCES.contains(&&*resource).then(|| {
                let agent = entry["userAgent"].as_str().unwrap_or_default();
                let program = agent.split('/').next().unwrap_or_default();
                let user = entry["user"]["username"].as_str().unwrap_or_default();
                Audited {
                    verb: entry["verb"].as_str().unwrap_or_default().to_owned(),
                    resource,
                    namespace: field("namespace"),
                    name: field("name"),
                    by: if program.is_empty() { user } else { program }.to_owned(),
                }
            })
        })
        .collect()
}

/// Peak resident memory (VmHWM) and CPU time (user + system) of a process so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub peak_rss_mib: f64,
    pub rss_mib: f64,
    pub cpu_seconds: f64,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        peak_rss_mib: kib("VmHWM:") / 1024.0,
        rss_mib: kib("VmRSS:") / 1024.0,
        cpu_seconds: (ticks(11) + ticks(12)) / clock_ticks(),
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Nearest-rank percentile of `samples` (seconds); NaN when there are none.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Calls per contract path in `/sim/stats` (all outcomes).
pub fn sim_calls(stats: &serde_json::Value) -> BTreeMap<String, f64> {
    stats["calls"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .map(|(path, outcomes)| {
                    let calls = outcomes
                        .as_object()
                        .map(|o| o.values().filter_map(serde_json::Value::as_f64).sum())
                        .unwrap_or(0.0);
                    (path.clone(), calls)
                })
                .collect()
        })
        .unwrap_or_default()
}
