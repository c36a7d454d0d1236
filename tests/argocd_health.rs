//! The Argo CD health check shipped with the chart (`charts/acqp-operator/health/
//! acqpauthorization.lua`), run by a real Lua 5.1 interpreter (Debian's `lua5.1`, the language
//! version Argo CD embeds) against AcqpAuthorizations captured from a live operator run
//! (`tests/fixtures/status/`).
//!
//! The fixtures were captured with `kubectl get -o json` (managedFields, uid, resourceVersion
//! and creationTimestamp dropped) from the operator and simulator on the real control plane:
//! each is a state a user sees in Argo CD.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

const SCRIPT: &str = "charts/acqp-operator/health/acqpauthorization.lua";
const FIXTURES: &str = "tests/fixtures/status";

/// Fixture, expected Argo CD health status, and a part of the message it must show.
const CASES: &[(&str, &str, &str)] = &[
    (
        "not-yet-reconciled",
        "Progressing",
        "Waiting for acqp-operator to reconcile",
    ),
    (
        "awaiting-authorization",
        "Suspended",
        "AwaitingAuthorization: send the authorization URL to ACQP Acme Acquiring \
         (1022188000000000001) and wait for it to authorize (authorization URL: \
         http://127.0.0.1:18090/consent/APoZYZNBvVuWkktTidxUpg)",
    ),
    (
        "ready",
        "Healthy",
        "Authorized: ACQP Acme Acquiring (1022188000000000001) authorized product CashierPayment",
    ),
    // Still Ready=True from generation 1, but the spec is at generation 2: not Healthy.
    (
        "stale-generation",
        "Progressing",
        "Waiting for acqp-operator to reconcile generation 2",
    ),
    (
        "scope-change-pending",
        "Suspended",
        "ScopeChangePending: ACQP Acme Acquiring (1022188000000000001) must authorize the added \
         product AutoDebit",
    ),
    (
        "reinvited",
        "Suspended",
        "Reinvited: ACQP Beta Pay (1022188000000000002) cancelled its authorization",
    ),
    (
        "revoked",
        "Degraded",
        "Revoked: ACQP Acme Acquiring (1022188000000000001) cancelled its authorization",
    ),
    (
        "products-not-integrated",
        "Degraded",
        "ProductsNotIntegrated: product MerchantPresentedModePayment not integrated in \
         application demo",
    ),
    (
        "application-not-found",
        "Degraded",
        "ApplicationNotFound: DeveloperCenterApplication no-such-app not found",
    ),
    // The operator waits for the application, not for the ACQP: it will move on by itself.
    (
        "application-not-ready",
        "Progressing",
        "ApplicationNotReady: waiting for application keyless to become Ready",
    ),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Renders JSON as a Lua table constructor, as Argo CD hands the live object to the script
/// (JSON null becomes nil, which is what a missing field is in Lua).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A Lua 5.1 string literal: quotes, backslashes and control bytes escaped as `\ddd`.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the health script on `object`; returns (status, message).
fn health(object: &Value) -> (String, String) {
    let driver = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_literal(object),
        lua_string(&repo(SCRIPT).display().to_string()),
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run lua5.1 ({e}): install Debian's lua5.1 package (`hack/deps` does, and `make test` runs it)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(driver.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "lua5.1 failed on {SCRIPT}:\n{}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, message) = stdout
        .split_once('\n')
        .unwrap_or_else(|| panic!("the script printed no status and message: {stdout:?}"));
    (status.to_owned(), message.to_owned())
}

fn fixture(name: &str) -> Value {
    let path = repo(&format!("{FIXTURES}/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn every_captured_status_maps_to_the_expected_health() {
    let mut failures = Vec::new();
    for (name, want_status, want_message) in CASES {
        let (status, message) = health(&fixture(name));
        if status != *want_status || !message.contains(want_message) {
            failures.push(format!(
                "{name}.json: got {status}: {message:?}\n  want {want_status} with a message containing {want_message:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_fixture_has_an_expectation() {
    let mut names: Vec<String> = std::fs::read_dir(repo(FIXTURES))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut covered: Vec<String> = CASES.iter().map(|(name, ..)| name.to_string()).collect();
    covered.sort();
    assert_eq!(
        names, covered,
        "each file in {FIXTURES} needs a row in CASES, and each row a file"
    );
}

/// A Stalled resource whose spec moved on is Progressing, not Degraded: the operator has not
/// judged the new spec yet, and the fix may be exactly that change.
#[test]
fn a_spec_change_clears_degraded_until_the_operator_catches_up() {
    let mut revoked = fixture("revoked");
    revoked["metadata"]["generation"] =
        (revoked["status"]["observedGeneration"].as_i64().unwrap() + 1).into();
    let (status, message) = health(&revoked);
    assert_eq!(status, "Progressing", "{message}");
}

/// Control bytes and quotes in a message survive the trip into Lua unchanged.
#[test]
fn messages_are_passed_through_verbatim() {
    let mut stalled = fixture("application-not-found");
    let tricky = "quote \" backslash \\ newline\n tab\t end";
    for condition in stalled["status"]["conditions"].as_array_mut().unwrap() {
        condition["message"] = tricky.into();
    }
    let (status, message) = health(&stalled);
    assert_eq!(status, "Degraded");
    assert_eq!(message, format!("ApplicationNotFound: {tricky}"));
}
