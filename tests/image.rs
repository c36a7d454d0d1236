//! The container image `make image` builds (`hack/image`): a static binary that runs, the CA
//! bundle, nothing else (no shell), a non-root user, `acqp-operator run` as the default
//! command, and the name and tag the chart deploys by default.
//!
//! The image is built into `CARGO_TARGET_TMPDIR` with its own Cargo target directory, so the
//! nested `cargo build` never waits for the lock of the `cargo test` that runs this; the first
//! run compiles the operator for musl in release mode (minutes), later runs are incremental.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

const NAME: &str = "acqp-operator";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Generous: the image is one static binary plus the CA bundle. A jump past this means
/// something (debug info, a base image) slipped in.
const MAX_IMAGE_BYTES: u64 = 40 * 1024 * 1024;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// The blob file of `digest` ("sha256:...") in the OCI layout.
fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algorithm).join(hex)
}

#[test]
#[ignore = "a cold static release build takes 7-20 minutes on 2 cores; run with `make image-test`"]
fn make_image_builds_a_minimal_non_root_image_the_chart_deploys() {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-build");
    let output = run(Command::new(repo("hack/image")).env("CARGO_TARGET_DIR", &target_dir));
    let out = target_dir.join("image");
    let layout = out.join("oci");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));

    // The image's configuration: how a runtime starts it.
    let config = json(&run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:{VERSION}", layout.display()),
    ])));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let process = &config["config"];
    assert_eq!(
        process["Entrypoint"],
        serde_json::json!([format!("/{NAME}")])
    );
    assert_eq!(process["Cmd"], serde_json::json!(["run"]));
    assert_eq!(process["User"], "65532:65532", "runs as the non-root user");

    // Its content: one layer holding exactly the binary and the CA bundle — no shell.
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one image in the layout: {index}");
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        VERSION
    );
    let manifest_digest = manifests[0]["digest"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&layout, manifest_digest)).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let listing = run(Command::new("tar")
        .arg("-tzf")
        .arg(blob(&layout, layers[0]["digest"].as_str().unwrap())));
    let mut files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned())
        // The root directory entry says nothing about content.
        .filter(|l| !l.is_empty() && l != ".")
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            NAME,
            "etc",
            "etc/ssl",
            "etc/ssl/certs",
            "etc/ssl/certs/ca-certificates.crt"
        ],
        "nothing but the binary and the CA bundle (so no shell)"
    );

    // The binary is static and starts: it runs here, outside any image, without a loader.
    let binary = target_dir.join(format!("x86_64-unknown-linux-musl/release/{NAME}"));
    let headers = run(Command::new("readelf").arg("-l").arg(&binary));
    assert!(
        !String::from_utf8_lossy(&headers.stdout).contains("program interpreter"),
        "{} is dynamically linked",
        binary.display()
    );
    let help = run(Command::new(&binary).args(["run", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--leader-elect"));

    // Its size, as pulled: the compressed layer plus config and manifest.
    let size: u64 = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!(
        "image size: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    assert!(
        size < MAX_IMAGE_BYTES,
        "image is {size} bytes, over {MAX_IMAGE_BYTES}"
    );

    // The docker-archive carries the reference the chart deploys by default.
    let archive = out.join(format!("{NAME}-{VERSION}.tar"));
    let archive_manifest = run(Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json"));
    let tags = &json(&archive_manifest)[0]["RepoTags"];
    // Written fully qualified; `docker load` lists it as acqp-operator:<version>, and the
    // chart's `acqp-operator:<version>` means the same to every container runtime.
    let reference = format!("docker.io/library/{NAME}:{VERSION}");
    assert_eq!(tags, &serde_json::json!([reference]));
    let values = std::fs::read_to_string(repo("charts/acqp-operator/values.yaml")).unwrap();
    let chart = std::fs::read_to_string(repo("charts/acqp-operator/Chart.yaml")).unwrap();
    assert!(
        values.contains(&format!("\n  repository: {NAME}\n")) && values.contains("\n  tag: \"\"\n"),
        "values.yaml's default image is {NAME} with the chart's appVersion as tag"
    );
    assert!(
        chart.contains(&format!("\nappVersion: \"{VERSION}\"\n")),
        "Chart.yaml's appVersion is the crate version {VERSION}, the tag `make image` gives"
    );
}
