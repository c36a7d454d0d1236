//! The CRDs, generated from the Rust types.

use crate::api::{AcqpAuthorization, DeveloperCenterApplication};
use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use std::path::Path;

/// Both CRDs with the file name each has in `crds/`.
pub fn all() -> [(&'static str, CustomResourceDefinition); 2] {
    [
        (
            "developercenterapplications.yaml",
            DeveloperCenterApplication::crd(),
        ),
        ("acqpauthorizations.yaml", AcqpAuthorization::crd()),
    ]
    .map(|(file, crd)| (file, reflow_descriptions(crd)))
}

/// Doc comments are wrapped at 100 columns; `kubectl explain` wraps by itself, so the lines of
/// a paragraph are joined and only paragraph breaks are kept.
fn reflow_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match value {
                        serde_json::Value::String(text) if key == "description" => {
                            *text = text
                                .split("\n\n")
                                .map(|paragraph| {
                                    paragraph.split_whitespace().collect::<Vec<_>>().join(" ")
                                })
                                .collect::<Vec<_>>()
                                .join("\n\n");
                        }
                        other => walk(other),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(crd).expect("a CRD serializes to JSON");
    walk(&mut value);
    serde_json::from_value(value).expect("reflowed descriptions keep the CRD valid")
}

/// One CRD as YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(crd)
}

/// Both CRDs as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for (_, crd) in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

/// Writes each CRD into `dir`, one file each.
pub fn write_all(dir: &Path) -> anyhow::Result<()> {
    for (file, crd) in all() {
        let path = dir.join(file);
        std::fs::write(&path, to_yaml(&crd)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
