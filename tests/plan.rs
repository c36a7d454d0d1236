//! `acqp-operator plan`: golden files of its human and JSON output over the situations a
//! platform team meets (first invitation, waiting, no-op, scope growth, re-authorization,
//! revocation, a product not integrated, an application not ready), and read-only runs
//! against the real control plane and the simulator.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite `tests/golden/plan/` after an intended change.

mod sim_support;
mod support;

use acqp_operator::api::{AcqpAuthorization, AcqpStatus, Product};
use acqp_operator::cli::plan::Plan;
use acqp_operator::cli::state::Planned;
use acqp_operator::reconcile::{
    ApplicationView, RemoteAuthorization, RemoteView, decide,
    secret::{self, SecretView},
};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use support::{repo, text};

const NOW: &str = "2026-11-27T09:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// An AcqpAuthorization in namespace `payments`, created an hour before [`NOW`].
fn resource(name: &str, acqp: &str, products: &[Product], extra: Value) -> AcqpAuthorization {
    let mut spec = json!({
        "applicationRef": {"name": "demo"},
        "acqp": {"id": acqp, "name": format!("{name} acquiring")},
        "products": products,
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    serde_json::from_value(json!({
        "apiVersion": "acqp-operator.io/v1alpha1",
        "kind": "AcqpAuthorization",
        "metadata": {
            "name": name, "namespace": "payments", "uid": format!("uid-{name}"),
            "generation": 1, "creationTimestamp": "2026-11-27T08:00:00Z",
        },
        "spec": spec,
    }))
    .unwrap()
}

fn ready_app() -> ApplicationView {
    ApplicationView::Ready {
        integrated_products: vec![Product::CashierPayment, Product::AutoDebit],
    }
}

fn active(products: &[Product], fingerprint: &str) -> RemoteView {
    RemoteView::Present(RemoteAuthorization {
        status: AcqpStatus::Active,
        products: products.to_vec(),
        token_fingerprint: fingerprint.into(),
        update_time: "2026-11-27T08:30:00Z".parse().unwrap(),
    })
}

fn planned(resource: AcqpAuthorization, remote: RemoteView) -> Planned {
    Planned {
        resource,
        application: ready_app(),
        remote,
        secret: SecretView::Missing,
        rivals: vec![],
        poll_interval: Duration::from_secs(60),
        notes: vec![],
    }
}

/// Lets the operator act on `p` as if every action succeeded, until it has nothing left to do:
/// the status it writes, the Secret it fills, the URL it gets.
fn settle(mut p: Planned) -> Planned {
    use acqp_operator::reconcile::{Action, Input, IssuedUrl, UrlAnswer};
    for _ in 0..3 {
        let first = decide(&p.input(now()));
        let asked = first.actions.iter().find_map(|a| match a {
            Action::IssueUrl { products, .. } => Some(products.clone()),
            _ => None,
        });
        let decision = match asked {
            Some(products) => {
                let answer = UrlAnswer::Issued(IssuedUrl {
                    url: "https://devcenter.example.com/consent/abc".into(),
                    expires_at: now() + jiff::SignedDuration::from_hours(24),
                    products,
                });
                decide(&Input {
                    answer: Some(answer),
                    ..p.input(now())
                })
            }
            None => first.clone(),
        };
        for action in &first.actions {
            if let Action::WriteSecret(desired) = action {
                p.secret = desired.written();
            }
        }
        p.resource.status = Some(decision.status);
    }
    p
}

/// Granted for CashierPayment, token `sha256:1111…`, Secret written: Ready.
fn granted(name: &str, acqp: &str, extra: Value) -> Planned {
    let cashier = [Product::CashierPayment];
    settle(planned(
        resource(name, acqp, &cashier, extra),
        active(&cashier, "sha256:1111111111111111"),
    ))
}

fn scenarios() -> Vec<Planned> {
    let cashier = [Product::CashierPayment];
    let both = [Product::CashierPayment, Product::AutoDebit];

    let new = planned(
        resource("acme", "1022188000000000001", &cashier, json!({})),
        RemoteView::Absent,
    );

    let waiting = settle(planned(
        resource("beta", "1022188000000000002", &cashier, json!({})),
        RemoteView::Absent,
    ));

    let unchanged = granted("gamma", "1022188000000000003", json!({}));

    // The pull request adds AutoDebit: a new authorization replaces the token.
    let mut grows = granted("delta", "1022188000000000004", json!({}));
    grows.resource.spec.products = both.to_vec();
    grows.resource.metadata.generation = Some(2);

    // The ACQP has re-authorized with a broader scope: a new token arrives.
    let mut reauthorized = granted("epsilon", "1022188000000000005", json!({}));
    reauthorized.resource.spec.products = both.to_vec();
    reauthorized.remote = active(&both, "sha256:2222222222222222");

    let mut revoked = granted("zeta", "1022188000000000006", json!({}));
    revoked.remote = RemoteView::Present(RemoteAuthorization {
        status: AcqpStatus::Inactive,
        products: cashier.to_vec(),
        token_fingerprint: "sha256:1111111111111111".into(),
        update_time: "2026-11-27T08:45:00Z".parse().unwrap(),
    });

    let not_integrated = planned(
        resource(
            "eta",
            "1022188000000000007",
            &[Product::MerchantPresentedModePayment],
            json!({}),
        ),
        RemoteView::Absent,
    );

    let mut app_not_ready = planned(
        resource("theta", "1022188000000000008", &cashier, json!({})),
        RemoteView::Absent,
    );
    app_not_ready.application = ApplicationView::NotReady {
        reason: "DevCenterUnavailable".into(),
        message: "the Developer Center did not answer; retrying".into(),
    };
    app_not_ready
        .notes
        .push("an example note: what the plan had to assume".into());

    vec![
        new,
        waiting,
        unchanged,
        grows,
        reauthorized,
        revoked,
        not_integrated,
        app_not_ready,
    ]
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = repo("tests/golden/plan").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    pretty_assertions::assert_eq!(expected, actual, "{name} differs from its golden file");
}

const SOURCE: &str = "golden scenarios";

#[test]
fn every_situation_as_a_table() {
    let plan = Plan::new(SOURCE, &scenarios(), now());
    golden("scenarios.txt", &plan.render_table(false));
    assert!(plan.has_changes());
}

#[test]
fn every_situation_as_json() {
    let plan = Plan::new(SOURCE, &scenarios(), now());
    let json = plan.render_json();
    golden("scenarios.json", &json);
    // Tokens never appear, only their fingerprints.
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["changes"], true);
    assert_eq!(value["resources"][3]["change"], "rotateToken");
}

#[test]
fn a_settled_system_plans_no_changes() {
    let settled = vec![
        granted("gamma", "1022188000000000003", json!({})),
        settle(planned(
            resource(
                "beta",
                "1022188000000000002",
                &[Product::CashierPayment],
                json!({}),
            ),
            RemoteView::Absent,
        )),
    ];
    let plan = Plan::new(SOURCE, &settled, now());
    golden("no-changes.txt", &plan.render_table(false));
    assert!(!plan.has_changes());
}

#[test]
fn colour_only_when_asked() {
    let plan = Plan::new(SOURCE, &scenarios(), now());
    assert!(!plan.render_table(false).contains('\x1b'));
    assert!(
        plan.render_table(true)
            .contains("\x1b[1;33mrotate token\x1b[0m")
    );
}

/// The Secret's metadata drives "no change" only when it is really the operator's: a Secret
/// labelled by hand is never overwritten.
#[test]
fn a_foreign_secret_stalls() {
    let mut p = planned(
        resource(
            "iota",
            "1022188000000000009",
            &[Product::CashierPayment],
            json!({}),
        ),
        active(&[Product::CashierPayment], "sha256:1111111111111111"),
    );
    let desired = secret::desired(&p.resource, &[Product::CashierPayment], 1, "sha256:x");
    assert_eq!(desired.name, "iota-agent-token");
    p.secret = SecretView::Foreign {
        owner: "it has no owner".into(),
    };
    let plan = Plan::new(SOURCE, &[p], now());
    assert_eq!(plan.resources[0].outcome.reason, "SecretConflict");
    assert!(!plan.has_changes());
}

// ---- the binary against real systems -------------------------------------------------------

fn plan_cmd(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    support::acqp_operator("plan", args, kubeconfig)
}

/// The example manifests (the simulator's seed is not one).
fn example_manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .any(|l| l.starts_with("apiVersion:"))
        })
        .collect();
    files.sort();
    files
}

/// Write requests in `ns` recorded by the API server's audit log so far.
fn audited_writes(cluster: &support::Cluster, ns: &str) -> usize {
    std::fs::read_to_string(cluster.dir.join("audit.log"))
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["objectRef"]["namespace"] == ns
                && matches!(
                    event["verb"].as_str(),
                    Some("create" | "update" | "patch" | "delete")
                )
        })
        .count()
}

fn resource_versions(cluster: &support::Cluster, ns: &str) -> String {
    let out = cluster.kubectl(&[
        "get",
        "acqpauthorizations,developercenterapplications,secrets",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn plan_from_the_cluster_reads_and_never_writes() {
    let cluster = support::cluster().await;
    let ns = support::namespace("plan").await;
    for file in example_manifests() {
        let out = cluster.kubectl(&["apply", "-n", &ns, "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let before = resource_versions(cluster, &ns);
    let writes = audited_writes(cluster, &ns);

    // No operator runs: nothing has been issued, so every authorization gets its URL.
    let out = plan_cmd(
        &["examples/", "--from-cluster", "-n", &ns],
        Some(&cluster.kubeconfig),
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    for name in ["acme-cashier", "beta-pay", "gamma"] {
        let row = said
            .lines()
            .find(|l| l.starts_with(&format!("{ns}/{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{said}"));
        assert!(row.contains("issue URL"), "{row}");
    }
    assert!(
        said.contains("application demo has no status yet"),
        "{said}"
    );
    assert!(
        said.contains("Plan: 3 AcqpAuthorizations: 3 issue URL"),
        "{said}"
    );

    let json = plan_cmd(
        &["examples/", "--from-cluster", "-n", &ns, "-o", "json"],
        Some(&cluster.kubeconfig),
    );
    let value: Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(value["changes"], true);

    assert_eq!(
        resource_versions(cluster, &ns),
        before,
        "plan changed an object"
    );
    assert_eq!(
        audited_writes(cluster, &ns),
        writes,
        "plan wrote to the API server"
    );
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 means "changes": a missing --from-cluster/--from-devcenter must not look like one.
    let out = plan_cmd(&["examples/"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--from-cluster"), "{}", text(&out));
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         contexts:\n- name: gone\n  context: {cluster: gone, user: nobody}\ncurrent-context: gone\n\
         users:\n- name: nobody\n  user: {token: x}\n",
    )
    .unwrap();
    let out = plan_cmd(&["examples/", "--from-cluster"], Some(&kubeconfig));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot read from the cluster"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

// Multi-threaded: the simulator serves while the test waits for the binary.
#[tokio::test(flavor = "multi_thread")]
async fn plan_from_the_devcenter_only_reads() {
    let sim = sim_support::start(sim_support::config()).await;
    let caller = sim_support::Caller::new(&sim);
    let dir = tempfile::tempdir().unwrap();
    let app = std::fs::read_to_string(repo("examples/application.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8090", &sim.endpoint());
    std::fs::write(dir.path().join("application.yaml"), app).unwrap();
    for file in ["acme-cashier.yaml", "beta-with-reloader.yaml"] {
        std::fs::copy(repo("examples").join(file), dir.path().join(file)).unwrap();
    }
    let out = plan_cmd(&[dir.path().to_str().unwrap(), "--from-devcenter"], None);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("Plan: 2 AcqpAuthorizations: 2 issue URL"),
        "{said}"
    );
    let stats = caller.stats().await;
    assert!(
        stats["calls"].get(sim_support::GENERATE).is_none(),
        "plan asked for a URL: {stats}"
    );
    assert!(
        stats["calls"].get(sim_support::INQUIRY).is_some(),
        "{stats}"
    );

    // The keys from a file instead of a Secret in the set.
    let app_only = std::fs::read_to_string(dir.path().join("application.yaml")).unwrap();
    let app_only = app_only.split("\n---\n").nth(1).unwrap().to_owned();
    std::fs::write(dir.path().join("application.yaml"), app_only).unwrap();
    let pem = |file: &str| std::fs::read_to_string(repo("examples/keys").join(file)).unwrap();
    let keys = dir.path().join("keys.json");
    let map = json!({
        "privateKey": pem("tsp-private.pem"),
        "devCenterPublicKey": pem("devcenter-public.pem"),
    });
    std::fs::write(&keys, map.to_string()).unwrap();
    let out = plan_cmd(
        &[
            dir.path().to_str().unwrap(),
            "--from-devcenter",
            "--credentials",
            keys.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `plan --from-cluster -o json` over `dir` in `ns`: the exit code and the plan.
fn plan_json(cluster: &support::Cluster, dir: &Path, ns: &str) -> (Option<i32>, Value) {
    let out = plan_cmd(
        &[
            dir.to_str().unwrap(),
            "--from-cluster",
            "-n",
            ns,
            "-o",
            "json",
        ],
        Some(&cluster.kubeconfig),
    );
    let plan = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON plan ({e}):\n{}", text(&out)));
    (out.status.code(), plan)
}

fn entry<'p>(plan: &'p Value, name: &str) -> &'p Value {
    plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the plan: {plan}"))
}

fn status_of(cluster: &support::Cluster, ns: &str, name: &str) -> Value {
    let json = cluster.kubectl_ok(&["get", "acqpauthorization", name, "-n", ns, "-o", "json"]);
    serde_json::from_str::<Value>(&json).unwrap()["status"].clone()
}

/// Plan, then let the operator act, then compare: every URL plan announced is the one the
/// operator asked for, a settled system plans nothing, and a growing scope is announced as a
/// rotation before the operator starts it.
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_does_what_plan_announced() {
    let cluster = support::cluster().await;
    let ns = support::namespace("plan-agree").await;
    let sim = sim_support::start(sim_support::config()).await;
    let caller = sim_support::Caller::new(&sim);
    let dir = tempfile::tempdir().unwrap();
    let app = std::fs::read_to_string(repo("examples/application.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8090", &sim.endpoint())
        .replace("pollInterval: 30s", "pollInterval: 1s");
    std::fs::write(dir.path().join("application.yaml"), app).unwrap();
    for file in ["acme-cashier.yaml", "gamma-several-products.yaml"] {
        std::fs::copy(repo("examples").join(file), dir.path().join(file)).unwrap();
    }
    cluster.kubectl_ok(&["apply", "-n", &ns, "-f", dir.path().to_str().unwrap()]);

    let (code, before) = plan_json(cluster, dir.path(), &ns);
    assert_eq!(code, Some(2), "{before}");
    let _operator = support::operator::Operator::start(
        cluster,
        support::operator::OperatorOptions {
            namespace: Some(ns.clone()),
            ..Default::default()
        },
    )
    .await;
    cluster.kubectl_ok(&[
        "wait",
        "acqpauthorization",
        "--all",
        "-n",
        &ns,
        "--timeout=60s",
        "--for=jsonpath={.status.phase}=AwaitingAuthorization",
    ]);
    for name in ["acme-cashier", "gamma"] {
        let planned = entry(&before, name);
        assert_eq!(planned["change"], "issueUrl", "{planned}");
        let status = status_of(cluster, &ns, name);
        assert_eq!(
            status["requestedProducts"], planned["urlProducts"],
            "{name}"
        );
    }

    // Waiting on issued URLs is not a change.
    let (code, waiting) = plan_json(cluster, dir.path(), &ns);
    assert_eq!(code, Some(0), "{waiting}");
    assert_eq!(entry(&waiting, "acme-cashier")["change"], "wait");

    caller
        .sim_ok(
            &format!("/sim/acqp/{}/authorize", sim_support::ACME),
            &json!({"clientId": sim_support::DEMO}),
        )
        .await;
    cluster.kubectl_ok(&[
        "wait",
        "acqpauthorization/acme-cashier",
        "-n",
        &ns,
        "--timeout=60s",
        "--for=condition=Ready",
    ]);
    let (code, ready) = plan_json(cluster, dir.path(), &ns);
    assert_eq!(code, Some(0), "{ready}");
    assert_eq!(entry(&ready, "acme-cashier")["change"], "noChange");

    // The pull request adds AutoDebit: plan announces the rotation, the operator starts it.
    let acme = dir.path().join("acme-cashier.yaml");
    let grown = std::fs::read_to_string(&acme).unwrap().replace(
        "    - CashierPayment",
        "    - CashierPayment\n    - AutoDebit",
    );
    std::fs::write(&acme, grown).unwrap();
    let (code, rotation) = plan_json(cluster, dir.path(), &ns);
    assert_eq!(code, Some(2), "{rotation}");
    let planned = entry(&rotation, "acme-cashier");
    assert_eq!(planned["change"], "rotateToken", "{planned}");
    assert_eq!(
        planned["urlProducts"],
        json!(["CashierPayment", "AutoDebit"])
    );
    cluster.kubectl_ok(&["apply", "-n", &ns, "-f", acme.to_str().unwrap()]);
    cluster.kubectl_ok(&[
        "wait",
        "acqpauthorization/acme-cashier",
        "-n",
        &ns,
        "--timeout=60s",
        "--for=jsonpath={.status.requestedProducts[1]}=AutoDebit",
    ]);
    let status = status_of(cluster, &ns, "acme-cashier");
    assert_eq!(
        status["requestedProducts"], planned["urlProducts"],
        "{status}"
    );
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], planned["reason"], "{status}");
}
