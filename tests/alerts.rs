//! The chart's alerts (`templates/prometheusrule.yaml`) and Grafana dashboard
//! (`dashboards/acqp-operator.json`) against the real things: promtool runs the rule unit tests
//! in `tests/alerts/` on the rules exactly as Helm renders them, the API server accepts the
//! PrometheusRule, ServiceMonitor and dashboard ConfigMap (server-side dry run, Prometheus
//! Operator CRDs installed), the dashboard is well-formed and tied to no data source, and every
//! metric and label the rules and the dashboard read shows up on the operator's `/metrics`
//! during an end-to-end run against the simulator.
//!
//! promtool and the CRDs come from pinned Go modules (`make monitoring`, i.e. `hack/promtool
//! ensure` and `hack/prometheus-operator-crds ensure`); missing, the tests fail and say so.

mod sim_support;
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

use acqp_operator::devcenter::wire::AUTHORIZATION_INQUIRY_PATH;
use serde_json::{Value, json};
use sim_support::{ACME, BETA, Caller, DEMO};
use support::{
    operator::{Operator, OperatorOptions},
    repo, text,
};

const CHART: &str = "charts/acqp-operator";
const DASHBOARD: &str = "charts/acqp-operator/dashboards/acqp-operator.json";
/// The release the rule unit tests are written for: its metrics job is `acqp-operator-metrics`.
const RELEASE: &str = "acqp-operator";
/// `helm template` cannot ask a server which version it is; render for the pinned one.
const KUBE_VERSION: &str = "1.36.3";
/// How long one step of the end-to-end run may take on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(60);
/// Labels Prometheus attaches to every scraped series (target labels), so they are never on
/// `/metrics` itself.
const TARGET_LABELS: [&str; 6] = ["job", "instance", "pod", "container", "endpoint", "service"];

// ---------------------------------------------------------------------------------------------
// Tools

/// Runs `hack/<script> path` and returns what it prints, failing with its advice if the tool
/// is missing.
fn hack_path(script: &str) -> PathBuf {
    let out = Command::new(repo(&format!("hack/{script}")))
        .arg("path")
        .output()
        .unwrap_or_else(|e| panic!("hack/{script} runs: {e}"));
    assert!(
        out.status.success(),
        "hack/{script} path failed; run `make monitoring` (or `hack/{script} ensure`), then \
         rerun the tests:\n{}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn promtool() -> PathBuf {
    hack_path("promtool")
}

/// `helm template RELEASE` of the chart in namespace `acqp` with `set` (`--set` syntax),
/// caches and config kept in a temporary directory; `only` limits it to one template.
fn render(set: &str, only: Option<&str>) -> String {
    let out = helm_template(set, only);
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn helm_template(set: &str, only: Option<&str>) -> Output {
    let helm = hack_path("control-plane").join("helm");
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(helm);
    command
        .args(["template", RELEASE, CHART, "--namespace", "acqp"])
        .args(["--kube-version", KUBE_VERSION, "--set", set])
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .current_dir(repo(""));
    if let Some(template) = only {
        command.args(["--show-only", template]);
    }
    command.output().expect("run helm")
}

/// The rendered PrometheusRule (defaults, alerts on).
fn prometheus_rule() -> Value {
    let rendered = render(
        "prometheusRule.enabled=true",
        Some("templates/prometheusrule.yaml"),
    );
    serde_saphyr::from_str(&rendered)
        .unwrap_or_else(|e| panic!("the PrometheusRule is not YAML: {e}\n{rendered}"))
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Rules

/// Every alert of the rendered rules, by name.
fn alerts(rule: &Value) -> BTreeMap<String, Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("spec.groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").iter())
        .map(|rule| (rule["alert"].as_str().unwrap().to_owned(), rule.clone()))
        .collect()
}

/// What `promtool test rules` made of `tests/alerts/*.yaml` on the rules rendered with `set`.
struct RuleTests {
    rule: Value,
    outcome: Output,
    /// Alerts some test case expects firing, and alerts some case expects quiet.
    fires: BTreeSet<String>,
    quiet: BTreeSet<String>,
}

fn rule_tests(set: &str) -> RuleTests {
    let promtool = promtool();
    let rendered = render(set, Some("templates/prometheusrule.yaml"));
    let rule: Value = serde_saphyr::from_str(&rendered)
        .unwrap_or_else(|e| panic!("the PrometheusRule is not YAML: {e}\n{rendered}"));
    let dir = tempfile::tempdir().unwrap();
    // A rule file is the PrometheusRule's spec; JSON is YAML.
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string_pretty(&rule["spec"]).unwrap(),
    )
    .unwrap();
    let checked = run(Command::new(&promtool)
        .args(["check", "rules", "--lint=all", "--lint-fatal", "rules.yaml"])
        .current_dir(dir.path()));
    assert!(
        checked.status.success(),
        "promtool check rules:\n{}",
        text(&checked)
    );
    let mut tests: Vec<String> = std::fs::read_dir(repo("tests/alerts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    tests.sort();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for name in &tests {
        let source = std::fs::read_to_string(repo(&format!("tests/alerts/{name}"))).unwrap();
        std::fs::write(dir.path().join(name), &source).unwrap();
        let file: Value = serde_saphyr::from_str(&source).unwrap();
        for case in file["tests"].as_array().unwrap() {
            for check in case["alert_rule_test"].as_array().into_iter().flatten() {
                let alert = check["alertname"].as_str().unwrap().to_owned();
                match check["exp_alerts"].as_array() {
                    Some(expected) if !expected.is_empty() => fires.insert(alert),
                    _ => quiet.insert(alert),
                };
            }
        }
    }
    let outcome = run(Command::new(&promtool)
        .args(["test", "rules"])
        .args(&tests)
        .current_dir(dir.path()));
    RuleTests {
        rule,
        outcome,
        fires,
        quiet,
    }
}

#[test]
fn every_alert_fires_and_stays_quiet_in_promtool_unit_tests() {
    let tests = rule_tests("prometheusRule.enabled=true");
    eprintln!("{}", text(&tests.outcome));
    assert!(
        tests.outcome.status.success(),
        "promtool test rules failed:\n{}",
        text(&tests.outcome)
    );
    let alerts = alerts(&tests.rule);
    assert_eq!(alerts.len(), 10, "{:?}", alerts.keys());
    for alert in alerts.keys() {
        assert!(
            tests.fires.contains(alert),
            "no test in tests/alerts/ expects {alert} to fire"
        );
        assert!(
            tests.quiet.contains(alert),
            "no test in tests/alerts/ expects {alert} to stay quiet"
        );
    }
}

/// The unit tests hold the thresholds to their defaults: moved, the tests catch it.
#[test]
fn promtool_unit_tests_catch_a_moved_threshold() {
    let tests = rule_tests(
        "prometheusRule.enabled=true,prometheusRule.alerts.AcqpInvitationUnanswered.days=8,\
         prometheusRule.alerts.AcqpAuthorizationUrlExpiringUnused.hours=3",
    );
    let output = text(&tests.outcome);
    assert!(!tests.outcome.status.success(), "{output}");
    for alert in [
        "AcqpInvitationUnanswered",
        "AcqpAuthorizationUrlExpiringUnused",
    ] {
        assert!(
            output.contains(&format!("alertname: {alert}")),
            "{alert} in {output}"
        );
    }
}

/// Thresholds, labels and the runbook link come from values; an alert can be switched off.
#[test]
fn thresholds_and_labels_come_from_values() {
    let rendered = render(
        "prometheusRule.enabled=true,prometheusRule.labels.release=prometheus,\
         prometheusRule.alertLabels.team=payments,\
         prometheusRule.runbookUrl=https://docs.example.com/runbook,\
         prometheusRule.selector=job=\"acqp\",\
         prometheusRule.alerts.AcqpInvitationUnanswered.days=3,\
         prometheusRule.alerts.AcqpDevCenterErrorRatioHigh.window=30m,\
         prometheusRule.alerts.AcqpOperatorNoLeader.enabled=false",
        Some("templates/prometheusrule.yaml"),
    );
    let rule: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let alerts = alerts(&rule);
    assert!(!alerts.contains_key("AcqpOperatorNoLeader"), "{rendered}");
    assert_eq!(alerts.len(), 9);
    for (name, alert) in &alerts {
        assert_eq!(alert["labels"]["team"], "payments", "{name}");
        assert_eq!(
            alert["annotations"]["runbook_url"],
            format!("https://docs.example.com/runbook#{}", name.to_lowercase()),
        );
        assert!(
            alert["expr"].as_str().unwrap().contains(r#"{job="acqp""#),
            "{name}: {}",
            alert["expr"]
        );
    }
    let unanswered = alerts["AcqpInvitationUnanswered"]["expr"].as_str().unwrap();
    assert!(unanswered.contains("> 3 * 86400"), "{unanswered}");
    let errors = alerts["AcqpDevCenterErrorRatioHigh"]["expr"]
        .as_str()
        .unwrap();
    assert!(errors.contains("[30m]"), "{errors}");

    let off = render("prometheusRule.enabled=false,grafana.enabled=false", None);
    assert!(!off.contains("kind: PrometheusRule"), "{off}");
    assert!(!off.contains("grafana_dashboard"), "{off}");
}

/// values.schema.json turns a mistyped alert setting into a message naming it.
#[test]
fn bad_alert_values_fail_with_a_message_naming_the_value() {
    for (set, expected) in [
        (
            "prometheusRule.alerts.AcqpDevCenterErrorRatioHigh.ratio=2",
            "/prometheusRule/alerts/AcqpDevCenterErrorRatioHigh/ratio",
        ),
        (
            "prometheusRule.alerts.AcqpOperatorDown.for=5minutes",
            "/prometheusRule/alerts/AcqpOperatorDown/for",
        ),
        (
            "prometheusRule.alerts.AcqpOperatorGone.enabled=true",
            "'AcqpOperatorGone' not allowed",
        ),
        ("grafana.sidecarLabel=", "/grafana/sidecarLabel"),
    ] {
        let out = helm_template(&format!("prometheusRule.enabled=true,{set}"), None);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(text(&out).contains(expected), "{set}: {}", text(&out));
    }
}

/// The runbook has a section for every alert, under the anchor its runbook_url points to.
#[test]
fn every_alert_has_a_runbook_section() {
    let runbook = std::fs::read_to_string(repo("docs/runbook.md")).unwrap();
    let headings: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.trim().to_lowercase())
        .collect();
    for alert in alerts(&prometheus_rule()).keys() {
        assert!(
            headings.contains(&alert.to_lowercase()),
            "docs/runbook.md has no `## {alert}` section; headings: {headings:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboard

/// Every value under `key` anywhere in `value`, with its JSON path.
fn find_key<'a>(value: &'a Value, key: &str, path: String, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}/{k}");
                if k == key {
                    found.push((here.clone(), v));
                }
                find_key(v, key, here, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_key(v, key, format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo(DASHBOARD)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = vec![];
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

#[test]
fn dashboard_is_valid_and_tied_to_no_data_source() {
    let dashboard = dashboard();
    assert!(dashboard["title"].is_string());
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` template variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    // Every data source reference is the variable: no installation's UID is baked in.
    let mut references = vec![];
    find_key(&dashboard, "datasource", String::new(), &mut references);
    assert!(!references.is_empty());
    for (path, reference) in &references {
        assert_eq!(reference["uid"], "${datasource}", "{path}: {reference}");
        assert_eq!(reference["type"], "prometheus", "{path}: {reference}");
    }
    let mut uids = vec![];
    find_key(&dashboard, "uid", String::new(), &mut uids);
    for (path, uid) in uids {
        assert!(
            path == "/uid" || uid == "${datasource}",
            "{path} is a hard-coded UID: {uid}"
        );
    }

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "panel id of {title} repeats"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        let x = panel["gridPos"]["x"].as_u64().unwrap() + panel["gridPos"]["w"].as_u64().unwrap();
        assert!(x <= 24, "{title} is wider than the dashboard");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        let refs: BTreeSet<_> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds repeat");
        for target in targets {
            assert!(!target["expr"].as_str().unwrap().is_empty(), "{title}");
        }
    }
}

/// The ConfigMap carries the dashboard file unchanged, with the sidecar's label.
#[test]
fn dashboard_config_map_carries_the_dashboard_for_the_sidecar() {
    let rendered = render(
        "grafana.enabled=true,grafana.folder=Payments,grafana.namespace=monitoring",
        Some("templates/grafana-dashboard.yaml"),
    );
    let config_map: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(config_map["metadata"]["namespace"], "monitoring");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        config_map["metadata"]["annotations"]["grafana_folder"],
        "Payments"
    );
    let carried: Value =
        serde_json::from_str(config_map["data"]["acqp-operator.json"].as_str().unwrap()).unwrap();
    assert_eq!(carried, dashboard());
}

// ---------------------------------------------------------------------------------------------
// The API server

/// With the alerts, the dashboard and the ServiceMonitor on, the API server accepts every
/// object (Prometheus Operator CRDs installed, so the PrometheusRule is validated against its
/// schema, PromQL durations included).
#[tokio::test]
async fn chart_with_monitoring_on_is_accepted_by_the_api_server() {
    let cluster = support::cluster().await;
    let crds = hack_path("prometheus-operator-crds");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/prometheusrules.monitoring.coreos.com",
        "crd/servicemonitors.monitoring.coreos.com",
        "--timeout=60s",
    ]);
    let namespace = support::namespace("alerts-chart").await;
    let helm = cluster.bin_dir.join("helm");
    let out = run(Command::new(helm)
        .args(["template", RELEASE, CHART, "--namespace", &namespace])
        .args(["--kube-version", KUBE_VERSION])
        .args([
            "--set",
            "prometheusRule.enabled=true,grafana.enabled=true,serviceMonitor.enabled=true,\
             grafana.folder=Payments,prometheusRule.alertLabels.team=payments",
        ])
        .env("HELM_CACHE_HOME", cluster.dir.join("helm/cache"))
        .env("HELM_CONFIG_HOME", cluster.dir.join("helm/config"))
        .env("HELM_DATA_HOME", cluster.dir.join("helm/data"))
        .current_dir(repo("")));
    assert!(out.status.success(), "helm template:\n{}", text(&out));
    let file = cluster.dir.join("alerts-chart.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let applied = cluster.kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        file.to_str().unwrap(),
    ]);
    let applied: Value = serde_json::from_str(&applied).unwrap();
    let objects = applied["items"].as_array().unwrap();
    for (kind, name) in [
        ("PrometheusRule", "acqp-operator".to_owned()),
        ("ServiceMonitor", "acqp-operator".to_owned()),
        ("ConfigMap", "acqp-operator-dashboard".to_owned()),
    ] {
        let object = objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no {kind}/{name} accepted in {applied}"));
        assert_eq!(object["metadata"]["namespace"], namespace.as_str());
    }
    // The server kept every alert the chart rendered.
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .unwrap();
    assert_eq!(alerts(rule).len(), 10);

    // The CRD's schema is in force: a PrometheusRule with a malformed `for` is refused.
    let bad =
        std::fs::read_to_string(&file)
            .unwrap()
            .replacen("for: 15m", "for: fifteen minutes", 1);
    std::fs::write(&file, bad).unwrap();
    let refused = cluster.kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("for"), "{}", text(&refused));
}

// ---------------------------------------------------------------------------------------------
// What the rules and the dashboard read, against /metrics

/// The metric names and label names one PromQL expression reads.
#[derive(Debug, Default)]
struct Reads {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// A small PromQL scanner: enough to find selectors (`name{label="v"}`), bare metric names and
/// the label lists of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`.
/// Strings, ranges (`[5m]`), numbers and Grafana variables (`$job`) are skipped.
fn promql_reads(expr: &str) -> Reads {
    #[derive(Debug, PartialEq)]
    enum Token {
        Ident(String),
        Punct(char),
        Other,
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            tokens.push(Token::Other);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Other);
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    // Operators, and aggregations (which may put `by (...)` before their parenthesis).
    const KEYWORDS: [&str; 23] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "start",
        "end",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut reads = Reads::default();
    let mut t = 0;
    while t < tokens.len() {
        let next = tokens.get(t + 1);
        match &tokens[t] {
            Token::Ident(word)
                if LABEL_LISTS.contains(&word.as_str()) && next == Some(&Token::Punct('(')) =>
            {
                t += 2;
                while t < tokens.len() && tokens[t] != Token::Punct(')') {
                    if let Token::Ident(label) = &tokens[t] {
                        reads.labels.insert(label.clone());
                    }
                    t += 1;
                }
            }
            Token::Ident(word) if LABEL_LISTS.contains(&word.as_str()) => {}
            Token::Ident(_) if next == Some(&Token::Punct('(')) => {} // a function
            Token::Ident(word) if KEYWORDS.contains(&word.as_str()) => {}
            Token::Ident(name) => {
                reads.metrics.insert(name.clone());
            }
            Token::Punct('{') => {
                // Matchers: label, operator, string, comma.
                t += 1;
                while t < tokens.len() && tokens[t] != Token::Punct('}') {
                    if let Token::Ident(label) = &tokens[t]
                        && matches!(tokens.get(t + 1), Some(Token::Punct('=' | '!')))
                    {
                        reads.labels.insert(label.clone());
                    }
                    t += 1;
                }
            }
            _ => {}
        }
        t += 1;
    }
    reads
}

#[test]
fn the_promql_scanner_finds_metrics_and_labels() {
    let reads = promql_reads(
        r#"sum by (path, le) (rate(acqp_operator_x_bucket{job=~"$job", result!="a,b}"}[$__rate_interval]))
           / on (path) group_left (reason) acqp_operator_y > 0.2 * 86400 or vector(0)"#,
    );
    assert_eq!(
        reads.metrics.into_iter().collect::<Vec<_>>(),
        ["acqp_operator_x_bucket", "acqp_operator_y"]
    );
    assert_eq!(
        reads.labels.into_iter().collect::<Vec<_>>(),
        ["job", "le", "path", "reason", "result"]
    );
}

/// What the rules and the dashboard read: each expression with the labels its annotations or
/// legends name, and where it comes from.
fn expressions() -> Vec<(String, Reads)> {
    let mut all = vec![];
    let template_labels = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| {
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
                (end > 0).then(|| rest[..end].to_owned())
            })
            .collect()
    };
    for (name, alert) in alerts(&prometheus_rule()) {
        let mut reads = promql_reads(alert["expr"].as_str().unwrap());
        for annotation in alert["annotations"].as_object().unwrap().values() {
            reads
                .labels
                .extend(template_labels(annotation.as_str().unwrap(), "$labels."));
        }
        all.push((format!("alert {name}"), reads));
    }
    let dashboard = dashboard();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let mut reads = promql_reads(target["expr"].as_str().unwrap());
            if let Some(legend) = target["legendFormat"].as_str() {
                reads.labels.extend(template_labels(legend, "{{"));
            }
            all.push((format!("panel {:?}", panel["title"]), reads));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            // label_values(metric, label)
            let inner = query
                .trim_start_matches("label_values(")
                .trim_end_matches(')');
            let (metric, label) = inner.split_once(',').unwrap();
            let reads = Reads {
                metrics: [metric.trim().to_owned()].into(),
                labels: [label.trim().to_owned()].into(),
            };
            all.push((format!("variable {}", variable["name"]), reads));
        }
    }
    all
}

/// Series names and their label names in one `/metrics` text.
fn exposed(text: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = into.entry(line[..name_end].to_owned()).or_default();
        let Some(rest) = line[name_end..].strip_prefix('{') else {
            continue;
        };
        // key="value",...} with backslash escapes in values.
        let mut chars = rest.chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() || key.starts_with('}') {
                break;
            }
            labels.insert(key.trim_start_matches(',').to_owned());
            assert_eq!(chars.next(), Some('"'), "a label value in {line}");
            let mut escaped = false;
            for c in chars.by_ref() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => break,
                    _ => escaped = false,
                }
            }
            match chars.next() {
                Some(',') => {}
                _ => break,
            }
        }
    }
}

/// One namespace's simulator and operator, scraped along the way.
struct Run {
    cluster: &'static support::Cluster,
    ns: String,
    api: Caller,
    operator: Operator,
    _sim: acqp_operator::simulator::RunningSimulator,
    seen: BTreeMap<String, BTreeSet<String>>,
}

impl Run {
    fn kubectl_ok(&self, args: &[&str]) -> String {
        self.cluster.kubectl_ok_in(&self.ns, args)
    }

    fn get(&self, what: &str) -> Value {
        serde_json::from_str(&self.kubectl_ok(&["get", what, "-o", "json"])).unwrap()
    }

    /// Scrapes `/metrics`, adding what it exposes to `seen`, and returns the text.
    async fn scrape(&mut self) -> String {
        let text = self.operator.metrics().await;
        exposed(&text, &mut self.seen);
        text
    }

    /// Scrapes until a sample line contains every one of `parts`; returns that line.
    async fn wait_sample(&mut self, what: &str, parts: &[&str]) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let text = self.scrape().await;
            if let Some(line) = text
                .lines()
                .find(|line| parts.iter().all(|part| line.contains(part)))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no sample for {what} ({parts:?}) within {STEP:?} in\n{text}\noperator:\n{}",
                self.operator.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `acqpauth/name` has condition `type_` True with `reason`.
    async fn wait_condition(&self, name: &str, type_: &str, reason: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let object = self.get(&format!("acqpauth/{name}"));
            let matched = object["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == type_ && c["status"] == "True" && c["reason"] == reason);
            if matched {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "acqpauth/{name} never had {type_}=True ({reason}): {}\noperator:\n{}",
                object["status"],
                self.operator.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn sim(&self, path: &str, body: Value) {
        self.api.sim_ok(path, &body).await;
    }
}

/// Drives one authorization through invitation, grant and revocation (and a second into
/// SecretConflict), with a throttling Developer Center and rejected notifications on the way;
/// checks the per-resource series come and go with the state they report; and then that every
/// metric and label the alerts and the dashboard read was on `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_the_rules_and_dashboard_read_is_exposed() {
    let cluster = support::cluster().await;
    let ns = support::namespace("alerts-metrics").await;
    let sim = sim_support::start(sim_support::config()).await;
    let api = Caller::new(&sim);
    let operator = Operator::start(
        cluster,
        OperatorOptions {
            namespace: Some(ns.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut run = Run {
        cluster,
        ns,
        api,
        operator,
        _sim: sim,
        seen: BTreeMap::new(),
    };
    let who = |name: &str, acqp: &str| {
        format!(r#"authorization="{name}",application="demo",acqp_id="{acqp}""#)
    };
    run.sim(
        &format!("/sim/apps/{DEMO}/notify-url"),
        json!({"url": run.operator.notify_url()}),
    )
    .await;
    run.cluster.apply_in(
        &run.ns,
        &support::fixture::example_application(&run.api.endpoint, "2s"),
    );
    run.kubectl_ok(&["apply", "-f", "examples/acme-cashier.yaml"]);

    // Invited: the wait and the URL's expiry are named.
    run.wait_condition("acme-cashier", "Reconciling", "AwaitingAuthorization")
        .await;
    let since = run
        .wait_sample(
            "the invitation",
            &[
                "acqp_operator_authorization_awaiting_since_timestamp_seconds{",
                &who("acme-cashier", ACME),
            ],
        )
        .await;
    let since: f64 = since.rsplit(' ').next().unwrap().parse().unwrap();
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!(
        (now - 300.0..=now).contains(&since),
        "began waiting {since}, now {now}"
    );
    run.wait_sample(
        "the URL's expiry",
        &[
            "acqp_operator_authorization_url_expiry_timestamp_seconds{",
            &who("acme-cashier", ACME),
        ],
    )
    .await;
    run.wait_sample(
        "the Ready application",
        &[
            r#"acqp_operator_application_ready{namespace=""#,
            r#"application="demo",reason="Connected"} 1"#,
        ],
    )
    .await;

    // A foreign Secret where the second one's token would go: Stalled, and named.
    run.cluster.apply_in(
        &run.ns,
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: beta-agent-token
  labels:
    app.kubernetes.io/managed-by: acqp-operator
    team: someone-else
type: Opaque
stringData:
  agentToken: not-yours
"#,
    );
    run.cluster.apply_in(
        &run.ns,
        &format!(
            r#"
apiVersion: acqp-operator.io/v1alpha1
kind: AcqpAuthorization
metadata:
  name: beta
spec:
  applicationRef: {{name: demo}}
  acqp: {{id: "{BETA}"}}
  products: [CashierPayment]
"#
        ),
    );
    run.wait_condition("beta", "Stalled", "SecretConflict")
        .await;
    run.wait_sample(
        "the Stalled resource",
        &[
            "acqp_operator_authorization_stalled{",
            &format!(r#"{},reason="SecretConflict"}} 1"#, who("beta", BETA)),
        ],
    )
    .await;

    // Notifications: one without a Client-Id, one for an unknown client. Both get the one
    // refusal every unauthenticated notification gets, so both count as unauthenticated.
    let http = reqwest::Client::new();
    for client_id in [None, Some("SANDBOX_NOBODY")] {
        let mut request = http.post(run.operator.notify_url()).body("{}");
        if let Some(id) = client_id {
            request = request.header("Client-Id", id);
        }
        let answer = request.send().await.unwrap();
        assert!(answer.status().is_client_error(), "{answer:?}");
    }
    run.wait_sample(
        "the unauthenticated notifications",
        &[r#"acqp_operator_notifications_total{result="unauthenticated"} 2"#],
    )
    .await;

    // Granted: the wait's series go, the grant is counted, the signed notification accepted.
    run.sim(
        &format!("/sim/acqp/{ACME}/authorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    run.wait_condition("acme-cashier", "Ready", "Authorized")
        .await;
    run.wait_sample(
        "the grant",
        &["acqp_operator_grant_latency_seconds_count 1"],
    )
    .await;
    // The operator's cache follows the status it wrote a moment later.
    let deadline = Instant::now() + STEP;
    loop {
        let settled = run.scrape().await;
        if !settled.contains(&who("acme-cashier", ACME)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a granted authorization keeps per-resource series:\n{settled}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run.wait_sample(
        "the signed notification",
        &[r#"acqp_operator_notifications_total{result="accepted"} "#],
    )
    .await;

    // A Developer Center throttling the poller's list: the calls fail once their retries run
    // out, and so does the poll. Only the list path is throttled: were the application's
    // check throttled too, it could turn the application not Ready first and stop the poller.
    run.sim(
        "/sim/faults",
        json!({"throttleRate": 1.0, "paths": [AUTHORIZATION_INQUIRY_PATH]}),
    )
    .await;
    run.wait_sample(
        "a throttled call",
        &[
            r#"acqp_operator_devcenter_calls_total{namespace=""#,
            r#"application="demo""#,
            &format!(r#"path="{AUTHORIZATION_INQUIRY_PATH}",result="unavailable"}}"#),
        ],
    )
    .await;
    run.wait_sample(
        "a failed poll",
        &[r#"acqp_operator_reconcile_errors_total{controller="poller",reason="unavailable"}"#],
    )
    .await;
    run.sim("/sim/faults", json!({})).await;

    // Revoked: named again, as Stalled with reason Revoked.
    run.sim(
        &format!("/sim/acqp/{ACME}/deauthorize"),
        json!({"clientId": DEMO}),
    )
    .await;
    run.wait_condition("acme-cashier", "Stalled", "Revoked")
        .await;
    run.wait_sample(
        "the revocation",
        &[
            "acqp_operator_authorization_stalled{",
            &format!(r#"{},reason="Revoked"}} 1"#, who("acme-cashier", ACME)),
        ],
    )
    .await;
    run.wait_sample("leadership", &["acqp_operator_leader 1"])
        .await;

    let seen = &run.seen;
    let mut missing = vec![];
    for (source, reads) in expressions() {
        let ours: Vec<&String> = reads
            .metrics
            .iter()
            .filter(|m| m.starts_with("acqp_operator_"))
            .collect();
        let mut labels: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
        for metric in &ours {
            match seen.get(metric.as_str()) {
                Some(exposed) => labels.extend(exposed.iter().map(String::as_str)),
                None => missing.push(format!("{source}: metric {metric} was never exposed")),
            }
        }
        for label in &reads.labels {
            if !labels.contains(label.as_str()) {
                missing.push(format!(
                    "{source}: label {label} is on none of {ours:?} as exposed"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the rules and the dashboard read what /metrics never showed:\n{}\nexposed: {seen:#?}",
        missing.join("\n")
    );
}
