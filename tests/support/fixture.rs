//! Manifests for the tests that run the operator against the simulator.

use super::repo;

/// `examples/application.yaml` pointed at a simulator's `endpoint` and polling every `poll`.
pub fn example_application(endpoint: &str, poll: &str) -> String {
    let manifest = std::fs::read_to_string(repo("examples/application.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8090", endpoint)
        .replace("pollInterval: 30s", &format!("pollInterval: {poll}"));
    assert!(manifest.contains(endpoint), "endpoint rewritten");
    manifest
}
