//! `acqp-operator validate` as users run it: it rejects every case of the admission catalog
//! (`tests/admission/`, which `tests/control_plane.rs` proves the API server rejects) with the
//! API server's message, accepts every example, and answers bad input with a message, not a
//! panic. With `--cluster` it also looks up applications and rival claims on the real control
//! plane.

mod sim_support;
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{repo, text};

fn validate(args: &[&str]) -> Output {
    validate_with(args, None)
}

fn validate_with(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    support::acqp_operator("validate", args, kubeconfig)
}

#[test]
fn rejects_every_admission_case_like_the_api_server() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(repo("tests/admission"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the admission catalog shrank");
    for case in cases {
        let content = std::fs::read_to_string(&case).unwrap();
        let expected = content
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", case.display()));
        let relative = case.strip_prefix(repo("")).unwrap().to_str().unwrap();
        let out = validate(&[relative]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{relative} passed:\n{said}");
        assert!(
            said.contains(expected),
            "{relative}: expected {expected:?} in:\n{said}"
        );
        // The finding points at the file and a line inside it.
        assert!(
            said.lines().any(|l| l.starts_with(&format!("{relative}:"))),
            "{relative}: no file:line in:\n{said}"
        );
    }
}

#[test]
fn accepts_every_example() {
    let out = validate(&["examples/"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains(": valid, 0 problems"), "{said}");
}

#[test]
fn points_at_the_line_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(
        &file,
        "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata:\n  name: acme\n\
         spec:\n  applicationRef: {name: demo}\n  acqp: {id: \"1022188000000000001\"}\n  products:\n\
         \x20   - CashierPayment\n    - QuickPay\n",
    )
    .unwrap();
    let out = validate(&[file.to_str().unwrap(), "examples/application.yaml"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        said.contains(&format!(
            "{}:10: AcqpAuthorization acme: spec.products[1]: Unsupported value: \"QuickPay\"",
            file.display()
        )),
        "{said}"
    );
}

#[test]
fn finds_conflicts_between_documents() {
    let dir = tempfile::tempdir().unwrap();
    let acme = std::fs::read_to_string(repo("examples/acme-cashier.yaml")).unwrap();
    let rival = acme.replace("name: acme-cashier", "name: acme-cashier-again");
    let orphan = acme
        .replace("name: acme-cashier", "name: orphan")
        .replace("name: demo", "name: nowhere")
        .replace("0000000001", "0000000009");
    std::fs::write(
        dir.path().join("a.yaml"),
        format!("{acme}---\n{rival}---\n{orphan}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.yml"), &acme).unwrap();
    let out = validate(&[dir.path().to_str().unwrap(), "examples/application.yaml"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for expected in [
        "AcqpAuthorization acme-cashier-again: spec.acqp.id: ACQP 1022188000000000001 of \
         application demo is already claimed by AcqpAuthorization acme-cashier",
        "AcqpAuthorization orphan: spec.applicationRef.name: no DeveloperCenterApplication \
         \"nowhere\"",
        "b.yml:6: AcqpAuthorization acme-cashier: defined twice (first at ",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
}

#[test]
fn bad_input_gets_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apiVersion: acqp-operator.io/v1alpha1\nkind: [\n").unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = validate(&[broken.to_str().unwrap(), missing.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("broken.yaml:2: not valid YAML: line 2 column 7: unclosed bracket"),
        "{said}"
    );
    assert!(said.contains("missing.yaml: cannot read"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn reads_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_acqp-operator"))
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: acqp-operator.io/v1alpha1\nkind: DeveloperCenterApplication\nmetadata: {name: x}\nspec: {}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("<stdin>:4: DeveloperCenterApplication x: spec.clientId: Required value"),
        "{said}"
    );
}

#[tokio::test]
async fn looks_up_applications_and_claims_in_the_cluster() {
    let cluster = support::cluster().await;
    let ns = support::namespace("validate").await;
    for file in ["examples/application.yaml", "examples/acme-cashier.yaml"] {
        let out = cluster.kubectl(&["apply", "-n", &ns, "-f", file]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let kubeconfig = Some(cluster.kubeconfig.as_path());
    let alone = ["examples/beta-with-reloader.yaml"];
    let out = validate_with(&alone, kubeconfig);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = validate_with(&[alone[0], "--cluster", "-n", &ns], kubeconfig);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let rival = dir.path().join("rival.yaml");
    let acme = std::fs::read_to_string(repo("examples/acme-cashier.yaml")).unwrap();
    std::fs::write(
        &rival,
        acme.replace("name: acme-cashier", "name: acme-rival"),
    )
    .unwrap();
    let out = validate_with(
        &[rival.to_str().unwrap(), "--cluster", "-n", &ns],
        kubeconfig,
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("is already claimed by AcqpAuthorization acme-cashier (the cluster)"),
        "{said}"
    );
}
