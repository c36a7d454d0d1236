//! The conformance suite (`hack/conformance`: Schemathesis with the project's signing hook)
//! against the simulator on loopback: every answer to valid and invalid input alike must match
//! the document and be signed by the Developer Center. And against a simulator that breaks the
//! contract on purpose, to prove the suite notices.
//!
//! Needs Schemathesis in the cache: `hack/conformance ensure` (a prerequisite of `make test`).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use acqp_operator::simulator::{Config, FaultSettings, RunningSimulator, Simulator};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn simulator(faults: FaultSettings) -> RunningSimulator {
    let mut config = Config::load(&repo("examples/simulator.yaml")).unwrap();
    config.faults = faults;
    Simulator::new(config)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Runs `hack/conformance run` against the simulator, reading the document it serves.
async fn conformance(sim: &RunningSimulator, max_examples: u32, summary: &Path) -> Output {
    let endpoint = sim.endpoint();
    let mut command = Command::new(repo("hack/conformance"));
    command
        .args(["run", &endpoint, &format!("{endpoint}/openapi.json")])
        .env("ACQP_CONFORMANCE_MAX_EXAMPLES", max_examples.to_string())
        .env("ACQP_CONFORMANCE_SUMMARY", summary)
        .env("NO_COLOR", "1");
    // The suite is blocking; the simulator serves on this runtime's other worker meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("hack/conformance runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("is not installed"),
        "{stderr}\nInstall it with `hack/conformance ensure` (`make test` runs it first)."
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_simulator_conforming_for_valid_and_invalid_input() {
    let scratch = tempfile::tempdir().unwrap();
    let summary = scratch.path().join("summary.json");
    let sim = simulator(FaultSettings::default()).await;
    let started = std::time::Instant::now();
    let output = conformance(&sim, 100, &summary).await;
    let elapsed = started.elapsed();
    let report = text(&output);
    assert!(
        output.status.success(),
        "the conformance suite found problems:\n{report}"
    );
    eprintln!("conformance run: {:.1} s", elapsed.as_secs_f64());

    // What the hook saw: (path, tampering, mode) → resultCode → count. The run must have been
    // thorough: each operation answered valid input with SUCCESS and invalid bodies with
    // PARAM_ILLEGAL, and every tampering reached the simulator.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let summary = summary.as_object().unwrap();
    let count = |filter: &dyn Fn(&[&str]) -> bool, code: &str| -> u64 {
        summary
            .iter()
            .filter(|(key, _)| filter(&key.split(' ').collect::<Vec<_>>()))
            .map(|(_, codes)| codes[code].as_u64().unwrap_or(0))
            .sum()
    };
    for path in [
        "/devcenter/api/v1/application/inquiry",
        "/devcenter/api/v1/authorizations/generateUrl",
        "/devcenter/api/v1/authorizations/inquiry",
    ] {
        let valid = |k: &[&str]| k == [path, "none", "valid"];
        assert!(
            count(&valid, "SUCCESS") > 0,
            "{path}: no SUCCESS\n{summary:?}"
        );
        let negative = |k: &[&str]| k[0] == path && k[2] == "negative-body";
        assert!(
            count(&negative, "PARAM_ILLEGAL") > 0,
            "{path}: no invalid body refused\n{summary:?}"
        );
    }
    let tampers = [
        ("bad-signature", "INVALID_SIGNATURE"),
        ("signed-other-path", "INVALID_SIGNATURE"),
        ("body-changed-after-signing", "INVALID_SIGNATURE"),
        ("stale-request-time", "INVALID_SIGNATURE"),
        ("future-request-time", "INVALID_SIGNATURE"),
        ("unparsable-request-time", "INVALID_SIGNATURE"),
        ("no-signature", "INVALID_SIGNATURE"),
        ("no-request-time", "INVALID_SIGNATURE"),
        ("no-client-id", "INVALID_SIGNATURE"),
        ("unknown-client-id", "INVALID_CLIENT"),
        ("oversized-body", "PARAM_ILLEGAL"),
        ("malformed-json", "PARAM_ILLEGAL"),
        ("not-an-object", "PARAM_ILLEGAL"),
    ];
    for (tamper, code) in tampers {
        let tampered = |k: &[&str]| k[1] == tamper;
        assert!(
            count(&tampered, code) > 0,
            "tampering {tamper} never answered {code}\n{summary:?}"
        );
    }
    let unknown_field = |k: &[&str]| k[1] == "unknown-field" && k[2] == "valid";
    assert!(
        count(&unknown_field, "SUCCESS") > 0,
        "no request with an unknown field succeeded\n{summary:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_fails_a_gateway_that_answers_unsigned_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let summary = scratch.path().join("summary.json");
    // One call in three answered by "infrastructure": HTTP 503, unsigned, undocumented.
    let faults = FaultSettings {
        http5xx_rate: 0.3,
        seed: 7,
        ..Default::default()
    };
    let sim = simulator(faults).await;
    let output = conformance(&sim, 10, &summary).await;
    let report = text(&output);
    assert!(
        !output.status.success(),
        "the suite passed a gateway answering unsigned 503s:\n{report}"
    );
    for expected in ["503", "Signature"] {
        assert!(report.contains(expected), "no {expected:?} in:\n{report}");
    }
    sim.shutdown().await;
}
