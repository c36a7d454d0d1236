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
