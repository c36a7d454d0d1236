//! GitOps for real: Flux's source-controller and kustomize-controller (host processes, built by
//! `hack/flux`) clone a Git repository served on loopback and apply the examples to the real
//! control plane, where the `acqp-operator` binary works against the simulator. The Flux
//! objects and their `healthCheckExprs` are read from README.md's "GitOps with Flux" section,
//! so what users copy is what runs here (only addresses, intervals and timeouts are shortened).
//!
//! What Flux showed at each step is printed as `FLUX ...` lines (visible with `--nocapture`).

mod flux_support;
mod sim_support;
mod support;

use std::{
    process::Output,
    time::{Duration, Instant},
};

use acqp_operator::simulator::RunningSimulator;
use flux_support::{
    Flux,
    git::{GitServer, Repo},
};
use serde_json::{Value, json};
use sim_support::{ACME, BETA, Caller, DEMO};
use support::{
    Cluster,
    operator::{Operator, OperatorOptions},
    text,
};

/// How long a step may take before the test fails; generous for a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(120);
/// The health-check timeout of the authorizations' Kustomization in the test (the README says
/// 1m; kustomize-controller never waits less than 30 s).
const AUTHORIZATIONS_TIMEOUT: &str = "30s";
const APPLICATIONS: &str = "acqp-applications";
const AUTHORIZATIONS: &str = "acqp-authorizations";
const APPLICATION_FILE: &str = "acqp/applications/application.yaml";
const ACME_FILE: &str = "acqp/authorizations/acme-cashier.yaml";
const BETA_FILE: &str = "acqp/authorizations/beta-pay.yaml";

/// The Flux objects of README.md's "GitOps with Flux" section (its first YAML block).
fn documented_layout(readme: &str) -> Vec<Value> {
    let section = readme
        .split_once("\n## GitOps with Flux\n")
        .map(|(_, rest)| rest)
        .expect("README has a \"GitOps with Flux\" section");
    let block = section
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("the section shows the Flux objects in a ```yaml block");
    serde_saphyr::from_multiple::<Value>(block).expect("the Flux objects are valid YAML")
}

fn readme(path: &str) -> String {
    std::fs::read_to_string(support::repo(path)).unwrap()
}

/// The chart's README shows the same objects as the top-level one, word for word.
#[test]
fn both_readmes_show_the_same_flux_layout() {
    let top = documented_layout(&readme("README.md"));
    let chart = documented_layout(&readme("charts/acqp-operator/README.md"));
    assert_eq!(top, chart);
    let kinds: Vec<&str> = top.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["GitRepository", "Kustomization", "Kustomization"]);
}

/// One test's world: a namespace, a simulator, a Git repository and, while it runs, an
/// operator restricted to the namespace.
struct Env {
    cluster: &'static Cluster,
    flux: &'static Flux,
    ns: String,
    _sim: RunningSimulator,
    api: Caller,
    operator: Option<Operator>,
    _git: GitServer,
    repo: Repo,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        let cluster = support::cluster().await;
        let flux = flux_support::flux().await;
        let ns = support::namespace(prefix).await;
        let sim = sim_support::start(sim_support::config()).await;
        let api = Caller::new(&sim);
        let git = GitServer::start(&cluster.dir.join(format!("git-{ns}"))).await;
        let repo = Repo::create(&git, "payments");
        Env {
            cluster,
            flux,
            ns,
            _sim: sim,
            api,
            operator: None,
            _git: git,
            repo,
        }
    }

    async fn start_operator(&mut self) {
        let options = OperatorOptions {
            namespace: Some(self.ns.clone()),
            ..Default::default()
        };
        self.operator = Some(Operator::start(self.cluster, options).await);
    }

    async fn stop_operator(&mut self) {
        let mut operator = self.operator.take().expect("the operator runs");
        let exit = operator.stop().await;
        assert!(exit.success(), "the operator exited with {exit}");
    }

    /// The documented Flux objects for this test: its namespace, its repository, and
    /// intervals of seconds instead of minutes.
    fn layout(&self) -> Vec<Value> {
        let mut docs = documented_layout(&readme("README.md"));
        for doc in &mut docs {
            doc["metadata"]["namespace"] = json!(self.ns);
            let kind = doc["kind"].as_str().unwrap().to_owned();
            let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
            let spec = &mut doc["spec"];
            match kind.as_str() {
                "GitRepository" => {
                    spec["url"] = json!(self.repo.url);
                    spec["interval"] = json!("2s");
                }
                _ => {
                    assert_eq!(spec["targetNamespace"], "payments", "{spec}");
                    spec["targetNamespace"] = json!(self.ns);
                    spec["interval"] = json!("3s");
                    if spec.get("retryInterval").is_some() {
                        spec["retryInterval"] = json!("2s");
                    }
                    if name == AUTHORIZATIONS {
                        spec["timeout"] = json!(AUTHORIZATIONS_TIMEOUT);
                    }
                }
            }
        }
        docs
    }

    /// Applies the documented object named `name`.
    fn apply_flux_object(&self, name: &str) {
        let doc = self
            .layout()
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("README's layout has no object {name}"));
        self.cluster
            .apply_in(&self.ns, &serde_json::to_string(&doc).unwrap());
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.cluster.kubectl_in(&self.ns, args)
    }

    /// `kubectl get <what> -o json`, or None when it does not exist. Other failures are
    /// errors for the caller to retry: a loaded 2-core machine makes the API server time out
    /// now and then.
    fn try_get(&self, what: &str) -> Result<Option<Value>, String> {
        let out = self.kubectl(&["get", what, "-o", "json"]);
        if out.status.success() {
            return Ok(Some(serde_json::from_slice(&out.stdout).unwrap()));
        }
        let error = text(&out);
        if error.contains("NotFound") {
            Ok(None)
        } else {
            Err(format!("kubectl get {what}: {error}"))
        }
    }

    /// [`Env::try_get`], failing the test on errors.
    fn get(&self, what: &str) -> Option<Value> {
        self.try_get(what).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_kustomization(&self, name: &str) -> Result<Value, String> {
        self.try_get(&format!(
            "kustomizations.kustomize.toolkit.fluxcd.io/{name}"
        ))?
        .ok_or_else(|| format!("Kustomization {name} not found"))
    }

    fn kustomization(&self, name: &str) -> Value {
        self.try_kustomization(name)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Polls `check` every 500 ms until it returns Ok; fails with its last Err after [`STEP`].
    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            match check() {
                Ok(value) => return value,
                Err(seen) if Instant::now() > deadline => {
                    panic!("timed out after {STEP:?} waiting for {what}; last seen: {seen}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Waits until Kustomization `name` satisfies `check`; prints every distinct state it went
    /// through meanwhile as `FLUX` lines and returns them with the object.
    async fn wait_kustomization(
        &self,
        step: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> (Value, Vec<String>) {
        let mut seen: Vec<String> = Vec::new();
        let object = self
            .wait_for(&format!("Kustomization {name} {what}"), || {
                let object = self.try_kustomization(name)?;
                let state = summary(&object);
                if seen.last() != Some(&state) {
                    eprintln!("FLUX {step}: {name}: {state}");
                    seen.push(state.clone());
                }
                if check(&object) {
                    Ok(object)
                } else {
                    Err(state)
                }
            })
            .await;
        (object, seen)
    }

    /// The messages of kustomize-controller's Events about Kustomization `name` with `reason`,
    /// oldest first. Its conditions move on with every retry; the Events stay.
    fn flux_events(&self, name: &str, reason: &str) -> Result<Vec<String>, String> {
        let selector = format!("involvedObject.kind=Kustomization,involvedObject.name={name}");
        let out = self.kubectl(&["get", "events", "--field-selector", &selector, "-o", "json"]);
        if !out.status.success() {
            return Err(format!("kubectl get events: {}", text(&out)));
        }
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut events: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == reason)
            .collect();
        events.sort_by_key(|e| e["lastTimestamp"].as_str().unwrap_or_default().to_owned());
        Ok(events
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Waits for a HealthCheckFailed Event about Kustomization `name` containing every one of
    /// `needles`, printing the Kustomization's states meanwhile; returns the Event's message
    /// and the states seen.
    async fn wait_health_check_failed(
        &self,
        step: &str,
        name: &str,
        needles: &[&str],
    ) -> (String, Vec<String>) {
        let mut seen: Vec<String> = Vec::new();
        let message = self
            .wait_for(
                &format!("a HealthCheckFailed Event about {name} saying {needles:?}"),
                || {
                    let state = summary(&self.try_kustomization(name)?);
                    if seen.last() != Some(&state) {
                        eprintln!("FLUX {step}: {name}: {state}");
                        seen.push(state);
                    }
                    let events = self.flux_events(name, "HealthCheckFailed")?;
                    events
                        .iter()
                        .find(|m| needles.iter().all(|n| m.contains(n)))
                        .cloned()
                        .ok_or_else(|| format!("{events:#?}"))
                },
            )
            .await;
        eprintln!("FLUX {step}: {name}: Event HealthCheckFailed: {message}");
        (message, seen)
    }

    /// Waits until `what` (e.g. `acqpauth/x`) has condition `type_` with `status` and `reason`.
    async fn wait_condition(&self, what: &str, type_: &str, status: &str, reason: &str) -> Value {
        self.wait_for(&format!("{what} {type_}={status} ({reason})"), || {
            let object = self.try_get(what)?.ok_or("not found")?;
            match condition(&object, type_) {
                Some(c) if c["status"] == status && c["reason"] == reason => Ok(object),
                _ => Err(object["status"].to_string()),
            }
        })
        .await
    }

    async fn wait_gone(&self, what: &str) {
        self.wait_for(&format!("{what} to be deleted"), || {
            match self.try_get(what)? {
                None => Ok(()),
                Some(object) => Err(object["metadata"].to_string()),
            }
        })
        .await
    }

    /// The ACQP authorizes the demo application's newest URL (as if it clicked Authorize).
    async fn authorize(&self, acquirer: &str) {
        self.api
            .sim_ok(
                &format!("/sim/acqp/{acquirer}/authorize"),
                &json!({"clientId": DEMO}),
            )
            .await;
    }

    /// The simulator's current Agent-Token for the demo application and `acquirer`.
    async fn sim_token(&self, acquirer: &str) -> String {
        let record = self.api.record(acquirer).await.expect("a record");
        record["agentToken"].as_str().unwrap().to_owned()
    }

    /// Waits until Secret `name` holds `token` (key agentToken) as token revision `revision`.
    async fn wait_secret(&self, name: &str, token: &str, revision: &str) -> Value {
        let what = format!("secret/{name}");
        self.wait_for(&format!("{what} to hold token revision {revision}"), || {
            let secret = self.try_get(&what)?.ok_or("not found")?;
            support::at_revision(secret, token, revision)
        })
        .await
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("===== namespace {} =====", self.ns);
        for what in [
            "gitrepositories.source.toolkit.fluxcd.io,kustomizations.kustomize.toolkit.fluxcd.io",
            "dcapp,acqpauth,secret",
            "events",
        ] {
            let out = self.kubectl(&["get", what, "-o", "yaml"]);
            eprintln!("----- kubectl get {what} -----\n{}", text(&out));
        }
        if let Some(operator) = &self.operator {
            eprintln!("----- operator -----\n{}", tail(&operator.logs(), 150));
        }
        eprintln!("{}", self.flux.logs_tail());
        eprintln!("{}", self.cluster.logs_tail());
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether `object` has condition `type_` with `status` and `reason`.
fn has(object: &Value, type_: &str, status: &str, reason: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == status && c["reason"] == reason)
}

/// A Kustomization's conditions on one line: `Ready=False/HealthCheckFailed: message; ...`.
fn summary(object: &Value) -> String {
    let conditions = object["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}/{}: {}",
                        c["type"].as_str().unwrap_or_default(),
                        c["status"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| "no conditions".into());
    format!(
        "{conditions} [lastApplied {}, lastAttempted {}]",
        object["status"]["lastAppliedRevision"], object["status"]["lastAttemptedRevision"]
    )
}

fn revision(sha: &str) -> String {
    format!("main@sha1:{sha}")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(support::repo(&format!("examples/{name}"))).unwrap()
}

/// `examples/beta-with-reloader.yaml` with a quicker poll and `deletionPolicy: Retain`.
fn beta_retained() -> String {
    let manifest = example("beta-with-reloader.yaml")
        .replace("pollInterval: 15s", "pollInterval: 2s")
        .replace(
            "  tokenSecret:\n",
            "  tokenSecret:\n    deletionPolicy: Retain\n",
        );
    assert!(
        manifest.contains("deletionPolicy: Retain") && manifest.contains("pollInterval: 2s"),
        "examples/beta-with-reloader.yaml changed shape:\n{manifest}"
    );
    manifest
}

/// `examples/acme-cashier.yaml` asking for `products`.
fn acme_with(products: &[&str]) -> String {
    let list: String = products.iter().map(|p| format!("    - {p}\n")).collect();
    let manifest = example("acme-cashier.yaml").replace("    - CashierPayment\n", &list);
    assert!(
        manifest.contains(&list),
        "examples/acme-cashier.yaml changed"
    );
    manifest
}

/// Git to Ready and back: the documented layout applies the examples; a status-less
/// authorization is not taken for Current; waiting for the ACQP keeps the Kustomization
/// waiting, not failed; the grant makes it Ready; a product added shows the scope change and
/// then the rotation; a product not integrated fails fast through Stalled; files deleted from
/// Git are pruned and their token Secrets follow `deletionPolicy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_applies_the_examples_and_waits_on_their_health() {
    let mut env = Env::new("flux").await;

    // 1. The application from Git; its Kustomization is Ready once the operator says so.
    let application = support::fixture::example_application(&env.api.endpoint, "2s");
    let first = env
        .repo
        .commit("the application", &[(APPLICATION_FILE, application)], &[]);
    env.start_operator().await;
    env.apply_flux_object("payments");
    env.apply_flux_object(APPLICATIONS);
    let started = Instant::now();
    env.wait_kustomization(
        "1 application",
        APPLICATIONS,
        "Ready at the first commit",
        |k| {
            has(k, "Ready", "True", "ReconciliationSucceeded")
                && k["status"]["lastAppliedRevision"] == revision(&first)
        },
    )
    .await;
    eprintln!(
        "FLUX 1 application: Ready {} ms after the Kustomization was created",
        started.elapsed().as_millis()
    );
    let app = env
        .wait_condition("dcapp/demo", "Ready", "True", "Connected")
        .await;
    assert_eq!(
        app["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"], APPLICATIONS,
        "applied by Flux: {}",
        app["metadata"]
    );

    // 2. The authorizations arrive while no operator runs: they have no status, which kstatus
    // alone reads as Current. Under the documented expressions the Kustomization keeps
    // waiting and reports them when its timeout expires.
    env.stop_operator().await;
    let second = env.repo.commit(
        "invite Acme and Beta",
        &[
            (ACME_FILE, acme_with(&["CashierPayment"])),
            (BETA_FILE, beta_retained()),
            (
                "acqp/authorizations/README.md",
                "One AcqpAuthorization per file; Flux applies every YAML file here.\n".into(),
            ),
        ],
        &[],
    );
    env.wait_for("the GitRepository to fetch the second commit", || {
        let source = env.try_get("gitrepositories.source.toolkit.fluxcd.io/payments")?;
        let fetched = source
            .as_ref()
            .map(|s| &s["status"]["artifact"]["revision"]);
        match fetched {
            Some(r) if *r == revision(&second) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    env.apply_flux_object(AUTHORIZATIONS);
    let ns = env.ns.clone();
    let acme = format!("AcqpAuthorization/{ns}/acme-cashier status: 'Unknown'");
    let beta = format!("AcqpAuthorization/{ns}/beta-pay status: 'Unknown'");
    let (_, seen) = env
        .wait_health_check_failed(
            "2 no status",
            AUTHORIZATIONS,
            &["timeout waiting for", &acme, &beta],
        )
        .await;
    for name in ["acme-cashier", "beta-pay"] {
        let authorization = env
            .get(&format!("acqpauth/{name}"))
            .expect("applied by Flux");
        assert_eq!(
            authorization["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            AUTHORIZATIONS
        );
        assert!(
            authorization["status"].is_null(),
            "no operator ran, yet {name} has a status: {}",
            authorization["status"]
        );
    }
    assert!(
        seen.iter().all(|s| !s.starts_with("Ready=True")),
        "Ready before the operator's first status: {seen:#?}"
    );

    // 3. The operator issues the URLs. Waiting for the ACQP is InProgress: the Kustomization
    // waits and times out on it again and again, and never fails fast.
    env.start_operator().await;
    for name in ["acme-cashier", "beta-pay"] {
        let object = env
            .wait_condition(
                &format!("acqpauth/{name}"),
                "Ready",
                "False",
                "AwaitingAuthorization",
            )
            .await;
        assert!(
            object["status"]["authorizationUrl"].is_string(),
            "{}",
            object["status"]
        );
    }
    let waiting = format!("AcqpAuthorization/{ns}/acme-cashier status: 'InProgress'");
    let (_, seen) = env
        .wait_health_check_failed(
            "3 waiting for the ACQP",
            AUTHORIZATIONS,
            &["timeout waiting for", &waiting],
        )
        .await;
    let failed_fast = env
        .flux_events(AUTHORIZATIONS, "HealthCheckFailed")
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|m| m.contains("failed early"))
        .collect::<Vec<_>>();
    assert!(
        failed_fast.is_empty() && seen.iter().all(|s| !s.contains("failed early")),
        "waiting for the ACQP failed fast: {failed_fast:#?} {seen:#?}"
    );
    let object = env.kustomization(AUTHORIZATIONS);
    assert!(
        condition(&object, "Stalled").is_none(),
        "{}",
        summary(&object)
    );

    // 4. Both ACQPs authorize: the Kustomization becomes Ready at the same revision.
    env.authorize(ACME).await;
    env.authorize(BETA).await;
    let acme_token = env.sim_token(ACME).await;
    let beta_token = env.sim_token(BETA).await;
    env.wait_secret("acme-cashier-agent-token", &acme_token, "1")
        .await;
    env.wait_secret("beta-pay-agent-token", &beta_token, "1")
        .await;
    let granted = Instant::now();
    env.wait_kustomization("4 granted", AUTHORIZATIONS, "Ready after the grants", |k| {
        has(k, "Ready", "True", "ReconciliationSucceeded")
            && k["status"]["lastAppliedRevision"] == revision(&second)
    })
    .await;
    eprintln!(
        "FLUX 4 granted: Ready {} ms after both Secrets held their tokens",
        granted.elapsed().as_millis()
    );

    // 5. A commit adds a product: the scope change shows, the Kustomization waits again, and
    // after the re-grant the token rotates and it is Ready at the new revision.
    let third = env.repo.commit(
        "Acme: add AutoDebit",
        &[(ACME_FILE, acme_with(&["CashierPayment", "AutoDebit"]))],
        &[],
    );
    let object = env
        .wait_condition(
            "acqpauth/acme-cashier",
            "Ready",
            "False",
            "ScopeChangePending",
        )
        .await;
    assert_eq!(
        object["status"]["requestedProducts"],
        json!(["CashierPayment", "AutoDebit"])
    );
    env.wait_kustomization(
        "5 scope change",
        AUTHORIZATIONS,
        "to wait on the new revision",
        |k| {
            let checking = format!("Running health checks for revision {}", revision(&third));
            condition(k, "Reconciling")
                .is_some_and(|c| c["message"].as_str().is_some_and(|m| m.contains(&checking)))
        },
    )
    .await;
    let secret = env.get("secret/acme-cashier-agent-token").unwrap();
    assert_eq!(
        support::agent_token(&secret),
        acme_token,
        "old token kept meanwhile"
    );
    env.authorize(ACME).await;
    let rotated = env.sim_token(ACME).await;
    assert_ne!(
        rotated, acme_token,
        "re-authorization issues a new Agent-Token"
    );
    env.wait_secret("acme-cashier-agent-token", &rotated, "2")
        .await;
    env.wait_kustomization(
        "5 rotated",
        AUTHORIZATIONS,
        "Ready after the rotation",
        |k| {
            has(k, "Ready", "True", "ReconciliationSucceeded")
                && k["status"]["lastAppliedRevision"] == revision(&third)
        },
    )
    .await;

    // 6. A product the application has not integrated: Stalled, and Flux fails fast.
    let pushed = Instant::now();
    let fourth = env.repo.commit(
        "Acme: add MerchantPresentedModePayment",
        &[(
            ACME_FILE,
            acme_with(&[
                "CashierPayment",
                "AutoDebit",
                "MerchantPresentedModePayment",
            ]),
        )],
        &[],
    );
    env.wait_condition(
        "acqpauth/acme-cashier",
        "Stalled",
        "True",
        "ProductsNotIntegrated",
    )
    .await;
    let stalled = format!("AcqpAuthorization/{ns}/acme-cashier status: 'Failed'");
    env.wait_health_check_failed(
        "6 not integrated",
        AUTHORIZATIONS,
        &["failed early due to stalled resources", &stalled],
    )
    .await;
    let object = env.kustomization(AUTHORIZATIONS);
    assert_eq!(
        object["status"]["lastAttemptedRevision"],
        revision(&fourth),
        "{}",
        summary(&object)
    );
    eprintln!(
        "FLUX 6 not integrated: failed {} ms after the push (health-check timeout {AUTHORIZATIONS_TIMEOUT})",
        pushed.elapsed().as_millis()
    );

    // 7. Both files deleted from Git: Flux prunes them; Acme's Secret is left to the garbage
    // collector (the default deletionPolicy; this control plane runs none, the node tests do),
    // Beta's is kept (Retain) and released.
    let fifth = env
        .repo
        .commit("remove the authorizations", &[], &[ACME_FILE, BETA_FILE]);
    env.wait_gone("acqpauth/acme-cashier").await;
    env.wait_gone("acqpauth/beta-pay").await;
    let kept = env
        .wait_for("secret/beta-pay-agent-token released", || {
            let secret = env
                .try_get("secret/beta-pay-agent-token")?
                .ok_or("deleted")?;
            if secret["metadata"]["ownerReferences"].is_null() {
                Ok(secret)
            } else {
                Err(secret["metadata"]["ownerReferences"].to_string())
            }
        })
        .await;
    assert_eq!(
        support::agent_token(&kept),
        beta_token,
        "Retain keeps the token"
    );
    let (object, _) = env
        .wait_kustomization("7 pruned", AUTHORIZATIONS, "Ready with nothing left", |k| {
            has(k, "Ready", "True", "ReconciliationSucceeded")
                && k["status"]["lastAppliedRevision"] == revision(&fifth)
        })
        .await;
    let inventory = object["status"]["inventory"]["entries"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(inventory, 0, "{}", object["status"]["inventory"]);
}

/// Why the expressions are needed: with plain `wait: true` and no operator running, Flux
/// reports an AcqpAuthorization the operator never saw as healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_expressions_flux_passes_an_authorization_nobody_has_seen() {
    let env = Env::new("flux-plain").await;
    let commit = env.repo.commit(
        "invite Acme",
        &[(ACME_FILE, acme_with(&["CashierPayment"]))],
        &[],
    );
    env.apply_flux_object("payments");
    let mut plain = env
        .layout()
        .into_iter()
        .find(|d| d["metadata"]["name"] == AUTHORIZATIONS)
        .unwrap();
    let spec = plain["spec"].as_object_mut().unwrap();
    spec.remove("healthCheckExprs");
    spec.remove("dependsOn");
    env.cluster
        .apply_in(&env.ns, &serde_json::to_string(&plain).unwrap());
    env.wait_kustomization("plain wait", AUTHORIZATIONS, "Ready", |k| {
        has(k, "Ready", "True", "ReconciliationSucceeded")
            && k["status"]["lastAppliedRevision"] == revision(&commit)
    })
    .await;
    let authorization = env.get("acqpauth/acme-cashier").expect("applied by Flux");
    assert!(
        authorization["status"].is_null(),
        "{}",
        authorization["status"]
    );
}
