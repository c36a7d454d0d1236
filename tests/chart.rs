//! The Helm chart (`charts/acqp-operator/`) on the real control plane: it lints, renders with
//! default and non-default values into manifests the API server accepts, rejects bad values
//! with a message naming them, installs and uninstalls, and grants exactly what the operator
//! needs — proven by `kubectl auth can-i` and by running the operator's whole life cycle
//! authenticated as the chart's ServiceAccount (kubeconfig impersonation).

mod sim_support;
mod support;

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};
use support::{
    Cluster,
    operator::{Operator, OperatorOptions},
    repo, text,
};

const CHART: &str = "charts/acqp-operator";
/// `helm template` cannot ask a server which version it is; render for the pinned one.
const KUBE_VERSION: &str = "1.36.3";

fn helm_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.helm(args);
    assert!(
        out.status.success(),
        "helm {} failed:\n{}",
        args.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` with `--set`/`--set-json` style arguments, for release `release` in
/// namespace `namespace`.
fn template(cluster: &Cluster, release: &str, namespace: &str, values: &[&str]) -> String {
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ];
    args.extend_from_slice(values);
    helm_ok(cluster, &args)
}

/// Server-side dry run of `manifests`: every object passes the API server's validation and
/// admission (not only a schema check); returns the objects as the server would store them.
fn dry_run(cluster: &Cluster, name: &str, manifests: &str) -> Vec<Value> {
    let file = cluster.dir.join(format!("{name}.yaml"));
    std::fs::write(&file, manifests).unwrap();
    let out = cluster.kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        file.to_str().unwrap(),
    ]);
    let applied: Value = serde_json::from_str(&out).expect("kubectl apply -o json");
    match applied["kind"].as_str() {
        Some("List") => applied["items"].as_array().unwrap().clone(),
        _ => vec![applied],
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let present: Vec<String> = objects
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind}/{name} among {present:?}")
        })
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

fn args_of(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// `kubectl auth can-i VERB RESOURCE [-n NS]` as `user`: true for "yes", false for "no".
fn can_i(cluster: &Cluster, user: &str, verb: &str, resource: &str, namespace: &str) -> bool {
    // `kind/name` names one object; `/status` is a subresource, not a name.
    let mut args = vec!["auth", "can-i", verb, "--as", user];
    match resource.strip_suffix("/status") {
        Some(kind) => args.extend([kind, "--subresource=status"]),
        None => args.push(resource),
    }
    if namespace.is_empty() {
        args.push("--all-namespaces");
    } else {
        args.extend(["-n", namespace]);
    }
    let out = cluster.kubectl(&args);
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        _ => panic!("kubectl {} answered:\n{}", args.join(" "), text(&out)),
    }
}

/// Asserts every (verb, resource, namespace, allowed) row at once, listing all mismatches.
fn assert_permissions(cluster: &Cluster, user: &str, rows: &[(&str, &str, &str, bool)]) {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(verb, resource, namespace, allowed)| {
            can_i(cluster, user, verb, resource, namespace) != *allowed
        })
        .map(|(verb, resource, namespace, allowed)| {
            let ns = if namespace.is_empty() {
                "all namespaces"
            } else {
                namespace
            };
            let want = if *allowed { "allowed" } else { "denied" };
            format!("  {verb} {resource} in {ns}: should be {want}")
        })
        .collect();
    assert!(wrong.is_empty(), "RBAC of {user}:\n{}", wrong.join("\n"));
}

fn service_account(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(repo(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("crds"),
        names(&format!("{CHART}/crds")),
        "{CHART}/crds must hold exactly the files of crds/: copy them after `make crds`"
    );
    for name in names("crds") {
        let generated = std::fs::read(repo(&format!("crds/{name}"))).unwrap();
        let chart = std::fs::read(repo(&format!("{CHART}/crds/{name}"))).unwrap();
        assert!(
            generated == chart,
            "{CHART}/crds/{name} differs from crds/{name}: run `cp crds/*.yaml {CHART}/crds/`"
        );
    }
}

#[tokio::test]
async fn chart_lints_strictly() {
    let cluster = support::cluster().await;
    helm_ok(cluster, &["lint", "--strict", CHART]);
}

/// Default values: cluster-wide RBAC, leader election, hardened pod; every object is accepted
/// by the API server's dry run.
#[tokio::test]
async fn default_values_render_manifests_the_api_server_accepts() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-default").await;
    let objects = dry_run(
        cluster,
        "default",
        &template(cluster, "acqp", &namespace, &[]),
    );
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount"
        ]
    );
    let deployment = find(&objects, "Deployment", "acqp-acqp-operator");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"], "acqp-operator:0.1.0",
        "matches `make image`"
    );
    assert_eq!(pod["serviceAccountName"], "acqp-acqp-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "metrics");
    let args = args_of(deployment);
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert!(
        args.contains(&"--lease-name=acqp-acqp-operator".to_owned()),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );
    let env = container["env"].as_array().unwrap();
    for (name, field) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        assert!(
            env.iter()
                .any(|e| e["name"] == name && e["valueFrom"]["fieldRef"]["fieldPath"] == field),
            "{name} from the downward API in {env:?}"
        );
    }
    let lease_role = find(&objects, "Role", "acqp-acqp-operator-leader-election");
    assert_eq!(lease_role["metadata"]["namespace"], namespace);
    assert!(
        !args.iter().any(|a| a.starts_with("--endpoint-allowlist")),
        "by default nothing but public addresses: {args:?}"
    );
    // The user roles: editing applications is a power of its own, aggregated into edit
    // (which reads Secrets anyway) and admin, never into view.
    let aggregation = |name: &str| {
        let labels = &find(&objects, "ClusterRole", name)["metadata"]["labels"];
        ["view", "edit", "admin"]
            .map(|role| labels[format!("rbac.authorization.k8s.io/aggregate-to-{role}")] == "true")
    };
    assert_eq!(aggregation("acqp-acqp-operator-view"), [true, true, true]);
    assert_eq!(
        aggregation("acqp-acqp-operator-edit-authorizations"),
        [false, true, true]
    );
    assert_eq!(
        aggregation("acqp-acqp-operator-edit-applications"),
        [false, true, true]
    );
}

/// Non-default values: namespaced mode, two replicas, PodDisruptionBudget and NetworkPolicy on
/// (all applied in a dry run), and the ServiceMonitor (rendered only: its CRD is not here).
#[tokio::test]
async fn non_default_values_render_manifests_the_api_server_accepts() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-custom").await;
    let watched = support::namespace("chart-custom-team").await;
    let values = [
        "--set-json",
        &format!(r#"watchNamespaces=["{watched}"]"#),
        "--set",
        "replicas=2,podDisruptionBudget.enabled=true,networkPolicy.enabled=true",
        "--set",
        "image.repository=registry.example.com/acqp-operator,image.tag=1.2.3",
        "--set",
        "logFormat=text,concurrency=8,devCenter.qps=5,devCenter.burst=20,leaderElection.leaseName=acqp-leader",
        "--set-json",
        r#"devCenter.endpointAllowlist=["10.20.0.0/16","devcenter-gw.payments.svc"]"#,
        "--set",
        "userRoles.aggregateToEdit=false",
        "--set-json",
        r#"tokenSecretTemplate.deniedKeyPrefixes=["copy.example.com/"]"#,
    ];
    let rendered = template(cluster, "custom", &namespace, &values);
    let objects = dry_run(cluster, "custom", &rendered);
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ],
        "namespaced mode binds nothing cluster-wide to the operator (the ClusterRoles are the \
         users' roles)"
    );
    let edit_applications = find(
        &objects,
        "ClusterRole",
        "custom-acqp-operator-edit-applications",
    );
    assert_eq!(
        edit_applications["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        Value::Null,
        "userRoles.aggregateToEdit=false keeps edit from editing applications"
    );
    let deployment = find(&objects, "Deployment", "custom-acqp-operator");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/acqp-operator:1.2.3"
    );
    let args = args_of(deployment);
    for expected in [
        format!("--namespace={watched}"),
        "--lease-name=acqp-leader".into(),
        "--log-format=text".into(),
        "--concurrency=8".into(),
        "--devcenter-qps=5".into(),
        "--devcenter-burst=20".into(),
        "--endpoint-allowlist=10.20.0.0/16,devcenter-gw.payments.svc".into(),
    ] {
        assert!(args.contains(&expected), "{expected} in {args:?}");
    }
    let roles: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Role").collect();
    let operator_role = roles
        .iter()
        .find(|r| r["metadata"]["name"] == "custom-acqp-operator")
        .unwrap();
    assert_eq!(operator_role["metadata"]["namespace"], watched.as_str());

    let with_monitor = template(
        cluster,
        "custom",
        &namespace,
        &[
            "--set",
            "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus",
        ],
    );
    let monitor = with_monitor
        .split("\n---")
        .find(|doc| doc.contains("kind: ServiceMonitor"))
        .unwrap_or_else(|| panic!("no ServiceMonitor rendered:\n{with_monitor}"));
    for expected in [
        "apiVersion: monitoring.coreos.com/v1",
        "release: prometheus",
        "app.kubernetes.io/component: metrics",
        "- port: metrics",
        "path: /metrics",
    ] {
        assert!(monitor.contains(expected), "{expected:?} in:\n{monitor}");
    }
}

/// values.schema.json turns mistakes into messages naming the value, before anything is sent.
#[tokio::test]
async fn bad_values_fail_with_a_message_naming_the_value() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-bad").await;
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &[
                "--set-json",
                r#"devCenter.endpointAllowlist=["http://10.0.0.1"]"#,
            ],
            &["/devCenter/endpointAllowlist/0", "does not match pattern"],
        ),
        (
            &["--set-json", r#"watchNamespaces=["Team_A"]"#],
            &["/watchNamespaces/0", "does not match pattern"],
        ),
        (
            &["--set", "logFormat=xml"],
            &["/logFormat", "'json', 'text'"],
        ),
        (
            &["--set", "replicsa=2"],
            &["additional properties 'replicsa'"],
        ),
        (
            &["--set", "metrics.port=80800"],
            &["/metrics/port", "maximum"],
        ),
        (
            &["--set", "replicas=2,leaderElection.enabled=false"],
            &["replicas > 1 needs leaderElection.enabled"],
        ),
    ];
    for (values, expected) in cases {
        let mut args = vec!["install", "bad", CHART, "--namespace", &namespace];
        args.extend_from_slice(values);
        let out = cluster.helm(&args);
        let message = text(&out);
        assert!(!out.status.success(), "helm {args:?} succeeded:\n{message}");
        for part in expected {
            assert!(
                message.contains(part),
                "helm {args:?}: {part:?} missing from:\n{message}"
            );
        }
    }
    let releases = helm_ok(cluster, &["list", "--namespace", &namespace, "-q"]);
    assert!(releases.trim().is_empty(), "nothing installed: {releases}");
}

/// Cluster-wide mode on the real API server: install creates the objects and grants the
/// operator what it needs and nothing it must not have; uninstall removes them, CRDs stay.
#[tokio::test]
async fn install_cluster_wide_grants_least_privilege_and_uninstall_cleans_up() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-install").await;
    let elsewhere = support::namespace("chart-install-other").await;
    helm_ok(
        cluster,
        &["install", "wide", CHART, "--namespace", &namespace],
    );
    let notes = helm_ok(
        cluster,
        &["get", "notes", "wide", "--namespace", &namespace],
    );
    assert!(
        notes.contains("kubectl -n <your-namespace> apply -f application.yaml"),
        "{notes}"
    );

    for (kind, ns) in [
        ("deployment", namespace.as_str()),
        ("serviceaccount", &namespace),
        ("service/wide-acqp-operator-metrics", &namespace),
        ("service/wide-acqp-operator-notifications", &namespace),
        ("role/wide-acqp-operator-leader-election", &namespace),
        ("rolebinding/wide-acqp-operator-leader-election", &namespace),
        ("clusterrole/wide-acqp-operator", ""),
        ("clusterrolebinding/wide-acqp-operator", ""),
    ] {
        let mut args = vec!["get", kind];
        if !ns.is_empty() {
            args.extend(["-n", ns]);
        }
        cluster.kubectl_ok(&args);
    }

    let sa = service_account(&namespace, "wide-acqp-operator");
    assert_permissions(
        cluster,
        &sa,
        &[
            ("watch", "acqpauthorizations.acqp-operator.io", "", true),
            (
                "patch",
                "acqpauthorizations.acqp-operator.io",
                &elsewhere,
                true,
            ),
            (
                "patch",
                "acqpauthorizations.acqp-operator.io/status",
                &elsewhere,
                true,
            ),
            (
                "list",
                "developercenterapplications.acqp-operator.io",
                "",
                true,
            ),
            (
                "patch",
                "developercenterapplications.acqp-operator.io/status",
                &elsewhere,
                true,
            ),
            ("get", "secrets", &elsewhere, true),
            ("watch", "secrets", "", true),
            ("create", "secrets", &elsewhere, true),
            ("patch", "secrets", &elsewhere, true),
            ("create", "events.events.k8s.io", &elsewhere, true),
            ("create", "leases.coordination.k8s.io", &namespace, true),
            (
                "patch",
                "leases.coordination.k8s.io/wide-acqp-operator",
                &namespace,
                true,
            ),
            // Nothing beyond that: no writes to the users' specs, no PUT on Secrets, no other
            // Lease, no CRDs, no RBAC, no wildcard.
            (
                "create",
                "acqpauthorizations.acqp-operator.io",
                &elsewhere,
                false,
            ),
            (
                "delete",
                "acqpauthorizations.acqp-operator.io",
                &elsewhere,
                false,
            ),
            (
                "update",
                "acqpauthorizations.acqp-operator.io",
                &elsewhere,
                false,
            ),
            (
                "patch",
                "developercenterapplications.acqp-operator.io",
                &elsewhere,
                false,
            ),
            ("update", "secrets", &elsewhere, false),
            // Deleted with their owner by the garbage collector, never by the operator.
            ("delete", "secrets", &elsewhere, false),
            ("deletecollection", "secrets", &elsewhere, false),
            (
                "patch",
                "leases.coordination.k8s.io/kube-scheduler",
                &namespace,
                false,
            ),
            ("create", "leases.coordination.k8s.io", &elsewhere, false),
            (
                "create",
                "customresourcedefinitions.apiextensions.k8s.io",
                "",
                false,
            ),
            (
                "patch",
                "customresourcedefinitions.apiextensions.k8s.io",
                "",
                false,
            ),
            (
                "delete",
                "customresourcedefinitions.apiextensions.k8s.io",
                "",
                false,
            ),
            (
                "create",
                "clusterroles.rbac.authorization.k8s.io",
                "",
                false,
            ),
            (
                "patch",
                "clusterrolebindings.rbac.authorization.k8s.io",
                "",
                false,
            ),
            (
                "create",
                "rolebindings.rbac.authorization.k8s.io",
                &elsewhere,
                false,
            ),
            (
                "escalate",
                "roles.rbac.authorization.k8s.io",
                &elsewhere,
                false,
            ),
            ("bind", "clusterroles.rbac.authorization.k8s.io", "", false),
            ("impersonate", "serviceaccounts", &elsewhere, false),
            ("create", "pods", &elsewhere, false),
            ("*", "*", "", false),
        ],
    );

    helm_ok(
        cluster,
        &["uninstall", "wide", "--namespace", &namespace, "--wait"],
    );
    for args in [
        vec![
            "get",
            "clusterrole/wide-acqp-operator",
            "--ignore-not-found",
            "-o",
            "name",
        ],
        vec![
            "get",
            "clusterrolebinding/wide-acqp-operator",
            "--ignore-not-found",
            "-o",
            "name",
        ],
        vec![
            "get",
            "deployment,serviceaccount,service,role,rolebinding",
            "-n",
            &namespace,
            "-o",
            "name",
        ],
    ] {
        let left = cluster.kubectl_ok(&args);
        assert!(left.trim().is_empty(), "left after uninstall: {left}");
    }
    assert!(
        !can_i(cluster, &sa, "get", "secrets", &elsewhere),
        "the grant is gone with the release"
    );
    // Helm never deletes CRDs, so users' AcqpAuthorizations (and their Secrets) survive.
    cluster.kubectl_ok(&["get", "crd", "acqpauthorizations.acqp-operator.io"]);
}

/// Namespaced mode: the operator's rules exist only in the watched namespace.
#[tokio::test]
async fn namespaced_mode_cannot_touch_other_namespaces() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-ns").await;
    let watched = support::namespace("chart-ns-team").await;
    let second = support::namespace("chart-ns-second").await;
    let elsewhere = support::namespace("chart-ns-other").await;
    helm_ok(
        cluster,
        &[
            "install",
            "narrow",
            CHART,
            "--namespace",
            &namespace,
            "--set-json",
            &format!(r#"watchNamespaces=["{watched}","{second}"]"#),
        ],
    );
    let args = cluster.kubectl_ok(&[
        "get",
        "deployment/narrow-acqp-operator",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(
        args.contains(&format!("--namespace={watched},{second}")),
        "{args}"
    );
    let sa = service_account(&namespace, "narrow-acqp-operator");
    assert_permissions(
        cluster,
        &sa,
        &[
            ("get", "secrets", &watched, true),
            ("watch", "secrets", &watched, true),
            ("get", "secrets", &second, true),
            ("create", "secrets", &second, true),
            (
                "watch",
                "developercenterapplications.acqp-operator.io",
                &second,
                true,
            ),
            (
                "patch",
                "acqpauthorizations.acqp-operator.io/status",
                &watched,
                true,
            ),
            ("create", "events.events.k8s.io", &watched, true),
            ("create", "leases.coordination.k8s.io", &namespace, true),
            ("get", "secrets", &elsewhere, false),
            ("list", "secrets", &elsewhere, false),
            ("get", "secrets", &namespace, false),
            ("list", "secrets", "", false),
            ("list", "acqpauthorizations.acqp-operator.io", "", false),
            (
                "get",
                "acqpauthorizations.acqp-operator.io",
                &elsewhere,
                false,
            ),
            ("create", "events.events.k8s.io", &elsewhere, false),
            (
                "create",
                "customresourcedefinitions.apiextensions.k8s.io",
                "",
                false,
            ),
            ("create", "roles.rbac.authorization.k8s.io", &watched, false),
        ],
    );
    helm_ok(
        cluster,
        &["uninstall", "narrow", "--namespace", &namespace, "--wait"],
    );
    for ns in [&watched, &second] {
        let left = cluster.kubectl_ok(&["get", "role,rolebinding", "-n", ns, "-o", "name"]);
        assert!(left.trim().is_empty(), "left after uninstall: {left}");
    }
}

/// A kubeconfig that authenticates as the admin and impersonates `user`, as kube-rs reads it
/// (`users[].user.as`): every request is authorized as the chart's ServiceAccount.
fn impersonating_kubeconfig(cluster: &Cluster, user: &str) -> PathBuf {
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let key = "    client-key-data:";
    assert!(admin.contains(key), "unexpected admin kubeconfig:\n{admin}");
    let kubeconfig = admin.replacen(key, &format!("    as: {user}\n{key}"), 1);
    let path = cluster
        .dir
        .join(format!("kubeconfig-{}", user.replace(':', "-")));
    std::fs::write(&path, kubeconfig).unwrap();
    path
}

/// Polls `check` for up to 60 s; on timeout prints the resources of `namespace` and the
/// operator's output, which together say where the life cycle stopped.
async fn wait_for(
    what: &str,
    cluster: &Cluster,
    namespace: &str,
    operator: &Operator,
    mut check: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        if std::time::Instant::now() > deadline {
            let resources =
                cluster.kubectl(&["get", "dcapp,acqpauth", "-n", namespace, "-o", "yaml"]);
            panic!(
                "timed out waiting for {what}\n{}\noperator output:\n{}",
                text(&resources),
                operator.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The life cycle — application Ready, URL issued, ACQP authorizes, token Secret written,
/// Events recorded, a Retain deletion releases the Secret through the finalizer — with the operator
/// authenticated as the namespaced chart's ServiceAccount and holding the leader Lease. A
/// missing permission surfaces as a timeout with `forbidden` in the operator's output.
///
/// Multi-threaded: the simulator runs in this test's runtime and must keep answering while
/// the test blocks on `kubectl wait`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_its_life_cycle_as_the_chart_service_account() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-run").await;
    let watched = support::namespace("chart-run-team").await;
    let second = support::namespace("chart-run-second").await;
    helm_ok(
        cluster,
        &[
            "install",
            "run",
            CHART,
            "--namespace",
            &namespace,
            "--set-json",
            &format!(r#"watchNamespaces=["{watched}","{second}"]"#),
        ],
    );
    let sa = service_account(&namespace, "run-acqp-operator");
    let kubeconfig = impersonating_kubeconfig(cluster, &sa);
    let whoami = cluster.kubectl_ok(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(whoami, sa, "the kubeconfig impersonates the ServiceAccount");

    let sim = sim_support::start(sim_support::config()).await;
    let operator = Operator::start(
        cluster,
        OperatorOptions {
            namespace: Some(watched.clone()),
            kubeconfig: Some(kubeconfig),
            // As the chart starts it: leader election on the chart's Lease in its namespace.
            // Both namespaces, as the chart passes them: any watch beyond them (cluster-wide,
            // or of another namespace) would be forbidden to this ServiceAccount.
            extra_args: vec![
                format!("--namespace={second}"),
                "--leader-elect".into(),
                "--lease-name=run-acqp-operator".into(),
                format!("--lease-namespace={namespace}"),
            ],
            rust_log: None,
            env: vec![],
        },
    )
    .await;
    let caller = sim_support::Caller::new(&sim);
    caller
        .sim_ok(
            &format!("/sim/apps/{}/notify-url", sim_support::DEMO),
            &json!({"url": operator.notify_url()}),
        )
        .await;

    let application = std::fs::read_to_string(repo("examples/application.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8090", &sim.endpoint())
        .replace("pollInterval: 30s", "pollInterval: 2s");
    let manifests = cluster.dir.join(format!("{watched}-run.yaml"));
    std::fs::write(
        &manifests,
        format!(
            "{application}\n---\n{}",
            std::fs::read_to_string(repo("examples/acme-cashier.yaml")).unwrap()
        ),
    )
    .unwrap();
    cluster.kubectl_ok(&["apply", "-n", &watched, "-f", manifests.to_str().unwrap()]);
    let second_app = cluster.dir.join(format!("{second}-run.yaml"));
    std::fs::write(&second_app, &application).unwrap();
    cluster.kubectl_ok(&["apply", "-n", &second, "-f", second_app.to_str().unwrap()]);
    let second_ready = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "dcapp/demo",
        "-n",
        &second,
        "--timeout=60s",
    ]);
    assert!(
        second_ready.status.success(),
        "the second watched namespace's application is not Ready:\n{}\noperator output:\n{}",
        text(&second_ready),
        operator.logs()
    );

    let url = || {
        let out = cluster.kubectl(&[
            "get",
            "acqpauth/acme-cashier",
            "-n",
            &watched,
            "-o",
            "jsonpath={.status.authorizationUrl}",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(
        "the authorization URL",
        cluster,
        &watched,
        &operator,
        || !url().is_empty(),
    )
    .await;
    caller
        .sim_ok(
            &format!("/sim/acqp/{}/authorize", sim_support::ACME),
            &json!({"clientId": sim_support::DEMO}),
        )
        .await;

    let ready = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "acqpauth/acme-cashier",
        "-n",
        &watched,
        "--timeout=60s",
    ]);
    assert!(
        ready.status.success(),
        "not Ready:\n{}\n{}\noperator output:\n{}",
        text(&ready),
        cluster.kubectl_ok(&["get", "acqpauth/acme-cashier", "-n", &watched, "-o", "yaml"]),
        operator.logs()
    );
    let token = cluster.kubectl_ok(&[
        "get",
        "secret/acme-cashier-agent-token",
        "-n",
        &watched,
        "-o",
        "jsonpath={.data.agentToken}",
    ]);
    assert!(!token.is_empty(), "the token Secret holds the Agent-Token");
    let reasons = cluster.kubectl_ok(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &watched,
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(reasons.contains("Authorized"), "Events recorded: {reasons}");
    let holder = cluster.kubectl_ok(&[
        "get",
        "lease/run-acqp-operator",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert!(!holder.is_empty(), "the operator holds the chart's Lease");

    // Retain is what needs the chart's permissions at deletion: the finalizer (a patch of the
    // resource) and the Secret's release (a patch of the Secret).
    cluster.kubectl_ok(&[
        "patch",
        "acqpauth/acme-cashier",
        "-n",
        &watched,
        "--type=merge",
        "-p",
        r#"{"spec":{"tokenSecret":{"deletionPolicy":"Retain"}}}"#,
    ]);
    wait_for("the Retain finalizer", cluster, &watched, &operator, || {
        cluster
            .kubectl_ok(&[
                "get",
                "acqpauth/acme-cashier",
                "-n",
                &watched,
                "-o",
                "jsonpath={.metadata.finalizers}",
            ])
            .contains("acqp-operator.io/token-secret")
    })
    .await;
    cluster.kubectl_ok(&[
        "delete",
        "acqpauth/acme-cashier",
        "-n",
        &watched,
        "--timeout=60s",
    ]);
    let owners = cluster.kubectl_ok(&[
        "get",
        "secret/acme-cashier-agent-token",
        "-n",
        &watched,
        "-o",
        "jsonpath={.metadata.ownerReferences}",
    ]);
    assert!(
        owners.trim().is_empty(),
        "deletionPolicy Retain released the Secret: {owners}"
    );

    // The kubeconfig's `as` reached the API server: the operator's writes were authorized as
    // the ServiceAccount, not as the admin whose certificate carries them.
    let audit = std::fs::read_to_string(cluster.dir.join("audit.log")).unwrap();
    let impersonated_status_writes = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["impersonatedUser"]["username"] == sa.as_str()
                && event["objectRef"]["resource"] == "acqpauthorizations"
                && event["objectRef"]["subresource"] == "status"
                && event["verb"] == "patch"
                && event["responseStatus"]["code"] == 200
        })
        .count();
    assert!(
        impersonated_status_writes > 0,
        "no status write by the operator as {sa} in the audit log"
    );

    let logs = operator.logs();
    assert!(
        !logs.to_ascii_lowercase().contains("forbidden"),
        "the operator was refused something:\n{logs}"
    );
    drop(operator);
    sim.shutdown().await;
}

/// The chart's admission policy refuses the template keys the admin denies (besides the
/// replication keys the CRD itself refuses), and the user roles keep the two powers apart: an
/// authorization editor cannot edit applications nor read Secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_policy_and_user_roles_hold_once_installed() {
    let cluster = support::cluster().await;
    let namespace = support::namespace("chart-tenants").await;
    let team = support::namespace("chart-tenants-team").await;
    helm_ok(
        cluster,
        &[
            "install",
            "tenants",
            CHART,
            "--namespace",
            &namespace,
            "--set-json",
            r#"tokenSecretTemplate.deniedKeyPrefixes=["copy.example.com/"]"#,
        ],
    );
    let authorization = |annotation: &str| {
        format!(
            "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata: {{name: \
             copied}}\nspec:\n  applicationRef: {{name: demo}}\n  acqp: {{id: \"1\"}}\n  \
             products: [CashierPayment]\n  tokenSecret:\n    template:\n      annotations: \
             {{\"{annotation}\": everywhere}}\n"
        )
    };
    // The policy takes effect once the API server has loaded it: retried until refused.
    let file = cluster.dir.join(format!("{team}-copied.yaml"));
    std::fs::write(&file, authorization("copy.example.com/to")).unwrap();
    let path = file.to_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = cluster.kubectl_in(&team, &["apply", "--dry-run=server", "-f", path]);
        let said = text(&out);
        if !out.status.success() && said.contains("the cluster admin refuses") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the admission policy never refused copy.example.com/: {said}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::write(&file, authorization("reloader.stakater.com/auto")).unwrap();
    let out = cluster.kubectl_in(&team, &["apply", "--dry-run=server", "-f", path]);
    assert!(
        out.status.success(),
        "an ordinary annotation: {}",
        text(&out)
    );

    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "invites",
        "-n",
        &team,
        "--clusterrole=tenants-acqp-operator-edit-authorizations",
        "--user=alice",
    ]);
    assert_permissions(
        cluster,
        "alice",
        &[
            ("create", "acqpauthorizations.acqp-operator.io", &team, true),
            ("patch", "acqpauthorizations.acqp-operator.io", &team, true),
            (
                "get",
                "developercenterapplications.acqp-operator.io",
                &team,
                true,
            ),
            (
                "create",
                "developercenterapplications.acqp-operator.io",
                &team,
                false,
            ),
            (
                "patch",
                "developercenterapplications.acqp-operator.io",
                &team,
                false,
            ),
            ("get", "secrets", &team, false),
            (
                "create",
                "acqpauthorizations.acqp-operator.io",
                &namespace,
                false,
            ),
        ],
    );
    helm_ok(
        cluster,
        &["uninstall", "tenants", "--namespace", &namespace, "--wait"],
    );
}
