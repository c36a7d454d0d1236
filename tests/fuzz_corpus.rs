//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through each target's oracle
//! (`fuzz/oracles/<target>.rs`, the very code the libFuzzer targets run), so every input a
//! fuzzing run found keeps being checked by `cargo test`, without the fuzzing toolchain.

#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

#[path = "../fuzz/oracles/notification.rs"]
mod notification;
#[path = "../fuzz/oracles/response.rs"]
mod response;
#[path = "../fuzz/oracles/signature_header.rs"]
mod signature_header;
#[path = "../fuzz/oracles/wire_json.rs"]
mod wire_json;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs every file of `fuzz/corpus/<target>` through `check`; fails naming each input that
/// panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{dir} holds only {} inputs", files.len());
    let findings: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let data = std::fs::read(file).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .err()
                .map(|_| file.display().to_string())
        })
        .collect();
    assert!(
        findings.is_empty(),
        "{} of {} {target} inputs fail their oracle (messages above): {findings:#?}",
        findings.len(),
        files.len()
    );
}

#[test]
fn the_response_corpus_passes_its_oracle() {
    replay("response", response::check);
}

#[test]
fn the_notification_corpus_passes_its_oracle() {
    replay("notification", notification::check);
}

#[test]
fn the_signature_header_corpus_passes_its_oracle() {
    replay("signature_header", signature_header::check);
}

#[test]
fn the_wire_json_corpus_passes_its_oracle() {
    replay("wire_json", wire_json::check);
}
