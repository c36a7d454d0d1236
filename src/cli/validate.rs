//! `acqp-operator validate`: the checks the API server and the operator would make, offline,
//! for a pull request. Every `acqp-operator.io` document is checked against its CRD's schema
//! and CEL rules (the very CRDs `crd` prints, and kube's CEL engine), then the documents are
//! checked together: names defined twice, an `applicationRef` naming no application, and two
//! AcqpAuthorizations claiming one ACQP for one application.

use super::cluster::{connect, unreachable};
use super::documents::{self, Document};
use super::schema;
use crate::api::{AcqpAuthorization, DeveloperCenterApplication};
use kube::Api;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// The API group whose documents are checked; documents of other groups are ignored.
pub const GROUP: &str = "acqp-operator.io";

/// Arguments of `validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Files, directories (searched recursively for *.yaml and *.yml) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also look in the cluster of the current kubeconfig for applications and rival claims
    /// that the files do not hold.
    #[arg(long)]
    pub cluster: bool,
    /// The namespace of documents that name none, as with `kubectl apply -n`.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// Something to fix, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `file:line`.
    pub at: String,
    /// `AcqpAuthorization acme`, or empty for a file that could not be read.
    pub object: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.object.is_empty() {
            write!(f, "{}: {}", self.at, self.message)
        } else {
            write!(f, "{}: {}: {}", self.at, self.object, self.message)
        }
    }
}

/// Runs `validate`: prints each finding and a summary; exit 0 when valid, 1 when not.
pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let (docs, load_errors) = documents::load(&args.paths);
    let mut findings: Vec<Finding> = load_errors.iter().map(load_finding).collect();
    let ours: Vec<&Document> = docs.iter().filter(|d| is_ours(d)).collect();
    for doc in &ours {
        findings.extend(check_document(doc));
    }
    let cluster = if args.cluster {
        Some(ClusterFacts::read(&ours, args.namespace.as_deref()).await?)
    } else {
        None
    };
    findings.extend(check_together(&ours, cluster.as_ref()));
    for finding in &findings {
        println!("{finding}");
    }
    let ignored = docs.len() - ours.len();
    let verdict = if findings.is_empty() {
        "valid"
    } else {
        "not valid"
    };
    println!(
        "{} acqp-operator.io document{} checked ({ignored} other ignored): {verdict}, {} problem{}",
        ours.len(),
        plural(ours.len()),
        findings.len(),
        plural(findings.len())
    );
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether a document belongs to the `acqp-operator.io` API group.
pub fn is_ours(doc: &Document) -> bool {
    doc.top("apiVersion")
        .is_some_and(|v| v.split('/').next() == Some(GROUP))
}

/// A file that could not be read or parsed, as a finding.
pub fn load_finding(error: &documents::LoadError) -> Finding {
    Finding {
        at: match error.line {
            Some(line) => format!("{}:{line}", error.source),
            None => error.source.clone(),
        },
        object: String::new(),
        message: error.message.clone(),
    }
}

/// The checks the API server makes on one document: kind and version, name, schema, CEL.
pub fn check_document(doc: &Document) -> Vec<Finding> {
    let kind = doc.top("kind").unwrap_or_default();
    let object = format!("{kind} {}", doc.name().unwrap_or("(no name)"));
    let finding = |path: &str, message: String| Finding {
        at: doc.at(path),
        object: object.clone(),
        message,
    };
    let api_version = doc.top("apiVersion").unwrap_or_default();
    let Some(schema) = schemas().remove(kind) else {
        let kinds = schemas().into_keys().collect::<Vec<_>>().join(" or ");
        let message = format!("kind {kind:?} does not exist in {GROUP}: use {kinds}");
        return vec![finding("kind", message)];
    };
    let version = format!("{GROUP}/v1alpha1");
    if api_version != version {
        let message = format!("apiVersion {api_version} is not served: use {version}");
        return vec![finding("apiVersion", message)];
    }
    let mut found = Vec::new();
    match doc.name() {
        Some(name) if is_dns_subdomain(name) => {}
        Some(name) => found.push(finding(
            "metadata.name",
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.'"
            ),
        )),
        None => found.push(finding("metadata", "metadata.name: Required value".into())),
    }
    let mut value = doc.value.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    let violations = schema::check_object(&schema, &value);
    // CEL rules assume a structurally valid object (a rule reading a missing required field
    // would only fail to evaluate), so they run once the schema checks pass.
    if !violations.is_empty() {
        found.extend(violations.into_iter().map(|v| finding(&v.path, v.message)));
        return found;
    }
    if let Err(errors) = kube::core::cel::Validator::new().validate(&schema, &value, None) {
        for error in errors.into_vec() {
            let path = error.field_path;
            // Like the API server, show the value only when the rule is the field's own.
            let own_rule = schema::at(&schema, &path)
                .and_then(|s| s.get("x-kubernetes-validations"))
                .and_then(Value::as_array)
                .is_some_and(|rules| rules.iter().any(|r| r["rule"] == error.rule.as_str()));
            let shown = match lookup(&value, &path) {
                Some(Value::String(text)) if own_rule => format!("{text:?}: "),
                _ => String::new(),
            };
            let message = format!("{path}: Invalid value: {shown}{}", error.message);
            found.push(finding(&path, message));
        }
    }
    found
}

/// Facts about the cluster that the files may not hold.
pub struct ClusterFacts {
    /// The namespace of documents that name none.
    pub default_namespace: String,
    /// DeveloperCenterApplications, by namespace, then name.
    pub applications: BTreeMap<String, Vec<String>>,
    /// AcqpAuthorizations: (namespace, name, application, ACQP ID).
    pub claims: Vec<(String, String, String, String)>,
}

impl ClusterFacts {
    /// Reads the applications and authorizations of the namespaces the documents use.
    pub async fn read(docs: &[&Document], namespace: Option<&str>) -> anyhow::Result<Self> {
        let client = connect().await?;
        let default_namespace =
            namespace.map_or_else(|| client.default_namespace().to_owned(), ToOwned::to_owned);
        let mut facts = ClusterFacts {
            applications: BTreeMap::new(),
            claims: Vec::new(),
            default_namespace,
        };
        let mut namespaces: Vec<String> = docs.iter().map(|d| facts.namespace_of(d)).collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            let lp = Default::default();
            let apps = Api::<DeveloperCenterApplication>::namespaced(client.clone(), &ns)
                .list_metadata(&lp)
                .await
                .map_err(|e| unreachable(&e))?;
            let names = apps.items.into_iter().filter_map(|a| a.metadata.name);
            facts.applications.insert(ns.clone(), names.collect());
            let auths = Api::<AcqpAuthorization>::namespaced(client.clone(), &ns)
                .list(&lp)
                .await
                .map_err(|e| unreachable(&e))?;
            for auth in auths {
                let name = auth.metadata.name.unwrap_or_default();
                let spec = auth.spec;
                facts
                    .claims
                    .push((ns.clone(), name, spec.application_ref.name, spec.acqp.id));
            }
        }
        Ok(facts)
    }

    fn namespace_of(&self, doc: &Document) -> String {
        doc.namespace()
            .unwrap_or(&self.default_namespace)
            .to_owned()
    }
}

/// The checks across documents: duplicates, dangling `applicationRef`s, rival claims.
pub fn check_together(docs: &[&Document], cluster: Option<&ClusterFacts>) -> Vec<Finding> {
    let mut found = duplicate_names(docs, cluster);
    found.extend(dangling_references(docs, cluster));
    found.extend(rival_claims(docs, cluster));
    found
}

/// The namespace a document lands in: its own, else the cluster's default (or "" offline,
/// which stands for "wherever the set is applied").
fn namespace_in(cluster: Option<&ClusterFacts>, doc: &Document) -> String {
    match cluster {
        Some(cluster) => cluster.namespace_of(doc),
        None => doc.namespace().unwrap_or_default().to_owned(),
    }
}

/// AcqpAuthorizations of the set, typed (those that do not type are reported elsewhere).
fn authorizations<'d>(docs: &[&'d Document]) -> Vec<(&'d Document, AcqpAuthorization)> {
    docs.iter()
        .filter(|d| d.top("kind") == Some("AcqpAuthorization"))
        .filter_map(|d| Some((*d, serde_json::from_value(d.value.clone()).ok()?)))
        .collect()
}

/// Objects defined twice: the second `kubectl apply` would overwrite the first.
pub fn duplicate_names(docs: &[&Document], cluster: Option<&ClusterFacts>) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut seen: BTreeMap<(String, String, String), &Document> = BTreeMap::new();
    for doc in docs {
        let (Some(kind), Some(name)) = (doc.top("kind"), doc.name()) else {
            continue;
        };
        let key = (kind.to_owned(), namespace_in(cluster, doc), name.to_owned());
        match seen.get(&key) {
            Some(first) => found.push(Finding {
                at: doc.at("metadata.name"),
                object: format!("{kind} {name}"),
                message: format!(
                    "defined twice (first at {}): the second would overwrite the first; \
                     rename or remove one",
                    first.at("metadata.name")
                ),
            }),
            None => {
                seen.insert(key, doc);
            }
        }
    }
    found
}

/// `applicationRef`s that name no DeveloperCenterApplication in the set (or the cluster).
fn dangling_references(docs: &[&Document], cluster: Option<&ClusterFacts>) -> Vec<Finding> {
    let mut found = Vec::new();
    for (doc, auth) in authorizations(docs) {
        let ns = namespace_in(cluster, doc);
        let app = &auth.spec.application_ref.name;
        let in_files = docs.iter().any(|d| {
            d.top("kind") == Some("DeveloperCenterApplication")
                && d.name() == Some(app)
                && namespace_in(cluster, d) == ns
        });
        let in_cluster = cluster
            .and_then(|c| c.applications.get(&ns))
            .is_some_and(|names| names.contains(app));
        if !in_files && !in_cluster {
            let where_ = if cluster.is_some() {
                "these files or the cluster"
            } else {
                "these files (pass --cluster to look in the cluster too)"
            };
            found.push(Finding {
                at: doc.at("spec.applicationRef.name"),
                object: format!("AcqpAuthorization {}", doc.name().unwrap_or_default()),
                message: format!(
                    "spec.applicationRef.name: no DeveloperCenterApplication {app:?} in {where_}: \
                     add it or fix the name; the operator would report ApplicationNotFound"
                ),
            });
        }
    }
    found
}

/// Two AcqpAuthorizations claiming one ACQP for one application: the operator stalls the newer.
pub fn rival_claims(docs: &[&Document], cluster: Option<&ClusterFacts>) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut claims: BTreeMap<(String, String, String), (&str, String)> = BTreeMap::new();
    for (doc, auth) in authorizations(docs) {
        let name = doc.name().unwrap_or_default();
        let app = &auth.spec.application_ref.name;
        let key = (
            namespace_in(cluster, doc),
            app.clone(),
            auth.spec.acqp.id.clone(),
        );
        let rival = claims.get(&key).cloned().or_else(|| {
            cluster?
                .claims
                .iter()
                .find(|(ns, other, other_app, id)| {
                    (ns, other_app, id) == (&key.0, &key.1, &key.2) && other != name
                })
                .map(|(_, other, _, _)| (other.as_str(), "the cluster".to_owned()))
        });
        match rival {
            Some((other, at)) => found.push(Finding {
                at: doc.at("spec.acqp.id"),
                object: format!("AcqpAuthorization {name}"),
                message: format!(
                    "spec.acqp.id: ACQP {} of application {app} is already claimed by \
                     AcqpAuthorization {other} ({at}): one ACQP holds one Agent-Token per \
                     application, so the operator would stall one of them as DuplicateAcqp; \
                     put all products into one resource",
                    auth.spec.acqp.id
                ),
            }),
            None => {
                claims.insert(key, (name, doc.at("metadata.name")));
            }
        }
    }
    found
}

/// The openAPIV3Schema of each kind, as generated from the Rust types.
fn schemas() -> BTreeMap<String, Value> {
    super::crd::all()
        .into_iter()
        .map(|(_, crd)| {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| serde_json::to_value(&s.open_api_v3_schema).ok())
                .unwrap_or_default();
            (crd.spec.names.kind, schema)
        })
        .collect()
}

/// The value at a path like `spec.products[1]`.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(value, |value, segment| {
            let mut parts = segment.split('[');
            let field = parts.next().unwrap_or_default();
            let mut value = if field.is_empty() {
                value
            } else {
                value.get(field)?
            };
            for index in parts {
                value = value.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
            }
            Some(value)
        })
}

/// An RFC 1123 subdomain, as Kubernetes requires of most names.
fn is_dns_subdomain(name: &str) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<String> {
        let docs = documents::parse("t.yaml", text).unwrap();
        let ours: Vec<&Document> = docs.iter().filter(|d| is_ours(d)).collect();
        let mut found: Vec<Finding> = ours.iter().flat_map(|d| check_document(d)).collect();
        found.extend(check_together(&ours, None));
        found.iter().map(ToString::to_string).collect()
    }

    const APP: &str = "apiVersion: acqp-operator.io/v1alpha1\nkind: DeveloperCenterApplication\n\
        metadata: {name: demo}\nspec:\n  environment: Sandbox\n  endpoint: https://dc.example.com\n\
        \x20 clientId: SANDBOX_X\n  credentialsSecretRef: {name: creds}\n";

    fn auth(name: &str, acqp: &str) -> String {
        format!(
            "---\napiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorization\nmetadata:\n  \
             name: {name}\nspec:\n  applicationRef: {{name: demo}}\n  acqp: {{id: \"{acqp}\"}}\n  \
             products: [CashierPayment]\n"
        )
    }

    #[test]
    fn a_consistent_set_is_valid_and_other_kinds_are_ignored() {
        let text = format!("{APP}{}---\napiVersion: v1\nkind: Secret\n", auth("a", "1"));
        assert_eq!(findings(&text), Vec::<String>::new());
    }

    #[test]
    fn cel_errors_name_the_line_and_the_value() {
        let text = auth("a", "1-2") + "---\n" + APP;
        assert_eq!(
            findings(&text),
            [
                "t.yaml:8: AcqpAuthorization a: spec.acqp.id: Invalid value: \"1-2\": acqp.id must \
              be the ACQP's ID from the Developer Center: letters and digits only, e.g. \
              1022188000000000001"
            ]
        );
    }

    #[test]
    fn finds_duplicates_rivals_and_dangling_references() {
        let text = auth("a", "1") + &auth("a", "2") + &auth("b", "1");
        let found = findings(&text);
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(
            found[0]
                .starts_with("t.yaml:14: AcqpAuthorization a: defined twice (first at t.yaml:5)")
        );
        assert!(found[1].contains("no DeveloperCenterApplication \"demo\""));
        assert!(found[4].starts_with("t.yaml:26: AcqpAuthorization b: spec.acqp.id: ACQP 1 of application demo is already claimed by AcqpAuthorization a (t.yaml:5)"), "{}", found[4]);
    }

    #[test]
    fn unknown_kinds_and_versions_of_our_group_are_errors() {
        let text = "apiVersion: acqp-operator.io/v1alpha1\nkind: AcqpAuthorisation\nmetadata: {name: a}\n\
                    ---\napiVersion: acqp-operator.io/v1\nkind: AcqpAuthorization\nmetadata: {name: a}\n";
        let found = findings(text);
        assert!(
            found[0].starts_with(
                "t.yaml:2: AcqpAuthorisation a: kind \"AcqpAuthorisation\" does not exist"
            ),
            "{found:?}"
        );
        assert!(found[1].contains(
            "apiVersion acqp-operator.io/v1 is not served: use acqp-operator.io/v1alpha1"
        ));
    }
}
