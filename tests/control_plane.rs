//! The CRDs against a real kube-apiserver: installation, examples, `kubectl` ergonomics,
//! admission (the catalog in `tests/admission/`) and server-side apply idempotence.

mod sim_support;
mod support;

use std::path::{Path, PathBuf};

use support::{Cluster, cluster, namespace, repo};

const CRDS: [&str; 2] = [
    "acqpauthorizations.acqp-operator.io",
    "developercenterapplications.acqp-operator.io",
];

/// The YAML files directly in `dir` (relative to the repository root), sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

/// The Kubernetes manifests under `examples/` (any depth): YAML files with a top-level
/// `apiVersion`. Other YAML there, like the simulator's seed, is not for the cluster.
fn example_manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
                && std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .any(|line| line.starts_with("apiVersion:"))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo("examples"), &mut found);
    found.sort();
    found
}

/// Applies every example manifest into `ns` (examples name no namespace, so users pick one).
fn apply_examples(cluster: &Cluster, ns: &str) {
    for file in example_manifests() {
        cluster.kubectl_ok(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
    }
}

#[tokio::test]
async fn crds_are_established() {
    let cluster = cluster().await;
    for crd in CRDS {
        let established = cluster.kubectl_ok(&[
            "get",
            "crd",
            crd,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
        ]);
        assert_eq!(established, "True", "{crd} is not Established");
    }
}

#[tokio::test]
async fn every_example_is_accepted() {
    let cluster = cluster().await;
    let ns = namespace("examples").await;
    assert!(
        !example_manifests().is_empty(),
        "examples/ holds no manifests"
    );
    apply_examples(cluster, &ns);
    // Both kinds were created for real, not just validated.
    for kind in ["acqpauthorizations", "developercenterapplications"] {
        let names = cluster.kubectl_ok(&["get", kind, "-n", &ns, "-o", "name"]);
        assert!(!names.trim().is_empty(), "no {kind} created from examples/");
    }
}

#[tokio::test]
async fn explain_shows_field_descriptions() {
    let cluster = cluster().await;
    let crd: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "crd", CRDS[0], "-o", "json"])).unwrap();
    let description = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["products"]["description"]
        .as_str()
        .expect("spec.products has a description in the CRD");
    let explained = cluster.kubectl_ok(&["explain", "acqpauthorization.spec.products"]);
    // kubectl wraps long lines, so compare word sequences.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&explained).contains(&words(description)),
        "`kubectl explain` does not show the description {description:?}:\n{explained}"
    );
}

#[tokio::test]
async fn get_shows_printer_columns_and_category() {
    let cluster = cluster().await;
    let ns = namespace("columns").await;
    apply_examples(cluster, &ns);

    let table = cluster.kubectl_ok(&["get", "acqpauth", "-n", &ns]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ACQP",
            "ACQP-NAME",
            "PRODUCTS",
            "PHASE",
            "READY",
            "AGE"
        ],
        "{table}"
    );

    let all = cluster.kubectl_ok(&["get", "acqp", "-n", &ns, "-o", "name"]);
    for kind in [
        "acqpauthorization.acqp-operator.io/",
        "developercenterapplication.acqp-operator.io/",
    ] {
        assert!(
            all.contains(kind),
            "`kubectl get acqp` does not list {kind}:\n{all}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_twice_is_a_no_op() {
    let cluster = cluster().await;
    let ns = namespace("ssa").await;
    for file in example_manifests() {
        let file = file.to_str().unwrap();
        let apply = [
            "apply",
            "--server-side",
            "--field-manager=acqp-test",
            "-n",
            &ns,
            "-f",
            file,
        ];
        let version = [
            "get",
            "-n",
            &ns,
            "-f",
            file,
            "-o",
            "jsonpath={..metadata.resourceVersion}",
        ];
        cluster.kubectl_ok(&apply);
        let before = cluster.kubectl_ok(&version);
        cluster.kubectl_ok(&apply);
        let after = cluster.kubectl_ok(&version);
        assert_eq!(before, after, "re-applying {file} changed resourceVersion");
    }
}

/// Each `tests/admission/*.yaml` starts with `# expect: <fragment>`; the API server must reject
/// it with a message containing the fragment.
#[tokio::test]
async fn admission_rejects_every_invalid_manifest() {
    let cluster = cluster().await;
    let ns = namespace("admission").await;
    let files = yaml_files("tests/admission");
    assert!(
        files.len() >= 20,
        "the admission catalog has only {} cases",
        files.len()
    );

    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect:"))
            .map(str::trim)
            .filter(|fragment| !fragment.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{} lacks a first line `# expect: <fragment>`",
                    file.display()
                )
            });
        let out = cluster.kubectl(&[
            "apply",
            "--server-side",
            "--validate=strict",
            "-n",
            &ns,
            "-f",
            file.to_str().unwrap(),
        ]);
        let got = support::text(&out);
        if out.status.success() {
            failures.push(format!(
                "{}: accepted, expected rejection with {expected:?}",
                file.display()
            ));
        } else if !got.contains(expected) {
            failures.push(format!(
                "{}: expected {expected:?} in:\n{got}",
                file.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// `kubectl get acqpauth --field-selector` searches as the console does: by ACQP ID, phase,
/// status in the Developer Center and application (the CRD's selectableFields).
#[tokio::test]
async fn field_selectors_search_as_the_console_does() {
    let cluster = cluster().await;
    let ns = namespace("selectors").await;
    let resource = |name: &str, acqp: &str, app: &str| {
        format!(
            "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata:\n  \
             name: {name}\nspec:\n  applicationRef: {{name: {app}}}\n  acqp: {{id: \"{acqp}\", \
             name: Acqp {name}}}\n  products: [CashierPayment]\n"
        )
    };
    cluster.apply_in(&ns, &resource("one", "1022188000000000001", "demo"));
    cluster.apply_in(&ns, &resource("two", "1022188000000000002", "demo"));
    cluster.apply_in(&ns, &resource("three", "1022188000000000003", "other"));
    // The operator is not running here: write the status it would write.
    for (name, phase, acqp_status) in [
        ("one", "Active", "Active"),
        ("two", "Revoked", "Inactive"),
        ("three", "AwaitingAuthorization", ""),
    ] {
        let mut status = serde_json::json!({"phase": phase});
        if !acqp_status.is_empty() {
            status["acqpStatus"] = acqp_status.into();
        }
        let patch = serde_json::json!({ "status": status }).to_string();
        cluster.kubectl_ok_in(
            &ns,
            &[
                "patch",
                "acqpauth",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ],
        );
    }
    let select = |selector: &str| -> Vec<String> {
        let out = cluster.kubectl_ok_in(
            &ns,
            &[
                "get",
                "acqpauth",
                "--field-selector",
                selector,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        );
        let mut names: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(select("spec.acqp.id=1022188000000000002"), ["two"]);
    assert_eq!(select("spec.acqp.name=Acqp three"), ["three"]);
    assert_eq!(select("status.phase=Revoked"), ["two"]);
    assert_eq!(select("status.acqpStatus=Active"), ["one"]);
    assert_eq!(select("status.acqpStatus=Inactive"), ["two"]);
    assert_eq!(select("spec.applicationRef.name=demo"), ["one", "two"]);
    assert_eq!(
        select("spec.applicationRef.name=demo,status.phase!=Revoked"),
        ["one"]
    );
    assert!(select("spec.acqp.id=9999").is_empty());
    // A field that is not selectable is refused, not silently ignored.
    let out = cluster.kubectl_in(
        &ns,
        &["get", "acqpauth", "--field-selector", "spec.products=x"],
    );
    assert!(
        !out.status.success(),
        "spec.products must not be selectable"
    );
}
