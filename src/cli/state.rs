//! The current state `plan` decides from, read-only: from the cluster (each resource's status,
//! its application's status, the token Secret's metadata) or from the Developer Center (the
//! application inquiry and the authorization list). Nothing here writes, and no URL is issued.

use super::cluster::{connect, unreachable};
use super::documents::Document;
use crate::api::{AcqpAuthorization, DeveloperCenterApplication};
use crate::devcenter::{
    AuthorizationFilter, ClientConfig, DevCenterClient,
    signing::{SigningKey, VerifyingKey},
    wire::AuthorizationRecord,
};
use crate::reconcile::{
    ApplicationView, Claim, Input, RemoteView,
    application::{ApplicationFacts, Readiness},
    observe::{self, Found, FoundApplication, FoundRemote, FoundSecret},
    secret::SecretView,
};
use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

/// Everything the decision needs for one resource, owned.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The spec from the files, with the cluster's metadata and status when it exists there.
    pub resource: AcqpAuthorization,
    /// The referenced application.
    pub application: ApplicationView,
    /// The Developer Center's record for the ACQP.
    pub remote: RemoteView,
    /// The token Secret.
    pub secret: SecretView,
    /// Other resources claiming the same ACQP for the same application.
    pub rivals: Vec<Claim>,
    /// The effective poll interval.
    pub poll_interval: Duration,
    /// What the plan had to assume for this resource.
    pub notes: Vec<String>,
}

impl Planned {
    /// What the decision takes from `found` for `resource`, with what the plan assumed.
    fn new(resource: AcqpAuthorization, found: &Found<'_>, notes: Vec<String>) -> Self {
        // The input's time is set by [`Planned::input`]: gathering does not depend on it.
        let input = observe::input(&resource, found, Timestamp::UNIX_EPOCH);
        let Input {
            application,
            remote,
            secret,
            rivals,
            poll_interval,
            ..
        } = input;
        Planned {
            resource,
            application,
            remote,
            secret,
            rivals,
            poll_interval,
            notes,
        }
    }

    /// The decision's input at `now`.
    pub fn input(&self, now: Timestamp) -> Input<'_> {
        Input {
            resource: &self.resource,
            application: self.application.clone(),
            remote: self.remote.clone(),
            secret: self.secret.clone(),
            rivals: self.rivals.clone(),
            poll_interval: self.poll_interval,
            now,
            answer: None,
        }
    }
}

/// The AcqpAuthorizations and DeveloperCenterApplications of the files, typed, with their
/// namespace filled in.
pub struct Desired {
    /// AcqpAuthorizations.
    pub authorizations: Vec<AcqpAuthorization>,
    /// DeveloperCenterApplications.
    pub applications: Vec<DeveloperCenterApplication>,
    /// Secrets (credentials for `--from-devcenter`).
    pub secrets: Vec<Secret>,
}

impl Desired {
    /// Types the documents (already validated) and puts those naming no namespace into
    /// `namespace`.
    pub fn new(docs: &[Document], namespace: &str) -> anyhow::Result<Self> {
        fn typed<K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>>(
            doc: &Document,
            namespace: &str,
        ) -> anyhow::Result<K> {
            let mut object: K = serde_json::from_value(doc.value.clone())
                .with_context(|| format!("{}: not a valid {}", doc.at(""), K::kind(&())))?;
            let meta = object.meta_mut();
            meta.namespace.get_or_insert_with(|| namespace.to_owned());
            Ok(object)
        }
        let mut desired = Desired {
            authorizations: vec![],
            applications: vec![],
            secrets: vec![],
        };
        for doc in docs {
            match (doc.top("apiVersion"), doc.top("kind")) {
                (Some("acqp-operator.io/v1alpha1"), Some("AcqpAuthorization")) => {
                    desired.authorizations.push(typed(doc, namespace)?)
                }
                (Some("acqp-operator.io/v1alpha1"), Some("DeveloperCenterApplication")) => {
                    desired.applications.push(typed(doc, namespace)?)
                }
                // Only a source of credentials: one that does not parse is simply not used.
                (Some("v1"), Some("Secret")) => desired.secrets.extend(typed(doc, namespace).ok()),
                _ => {}
            }
        }
        Ok(desired)
    }

    fn application(&self, namespace: &str, name: &str) -> Option<&DeveloperCenterApplication> {
        self.applications.iter().find(|a| {
            a.metadata.namespace.as_deref() == Some(namespace)
                && a.metadata.name.as_deref() == Some(name)
        })
    }
}

/// The plan's inputs from the cluster. The Developer Center's record is not read: it is
/// derived from each resource's status (acqpStatus, authorizedProducts, tokenFingerprint), so a
/// grant or revocation the operator has not seen yet does not show.
pub async fn from_cluster(desired: &Desired, client: &Client) -> anyhow::Result<Vec<Planned>> {
    let mut planned = Vec::new();
    let mut listed: BTreeMap<String, Vec<AcqpAuthorization>> = BTreeMap::new();
    for wanted in &desired.authorizations {
        let ns = wanted.metadata.namespace.clone().unwrap_or_default();
        let name = wanted.metadata.name.clone().unwrap_or_default();
        if !listed.contains_key(&ns) {
            let all = Api::<AcqpAuthorization>::namespaced(client.clone(), &ns)
                .list(&Default::default())
                .await
                .map_err(|e| unreachable(&e))?;
            listed.insert(ns.clone(), all.items);
        }
        let live = listed[&ns]
            .iter()
            .find(|a| a.metadata.name.as_deref() == Some(&name));
        let mut notes = Vec::new();
        let resource = merge(wanted, live, &mut notes);
        let app_name = &resource.spec.application_ref.name;
        let live_app = Api::<DeveloperCenterApplication>::namespaced(client.clone(), &ns)
            .get_opt(app_name)
            .await
            .map_err(|e| unreachable(&e))?;
        let app = live_app
            .as_ref()
            .or_else(|| desired.application(&ns, app_name));
        if let Some(app) = app.filter(|a| observe::never_checked(a)) {
            notes.push(format!(
                "application {} has no status yet (no operator has checked it): planned as \
                 Ready with every product integrated",
                app.metadata.name.as_deref().unwrap_or_default()
            ));
        }
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_metadata_opt(&resource.token_secret_name())
            .await
            .map_err(|e| unreachable(&e))?;
        let mut candidates: Vec<&AcqpAuthorization> = listed[&ns].iter().collect();
        candidates.extend(&desired.authorizations);
        let found = Found {
            application: app.map_or(FoundApplication::Missing, FoundApplication::Reported),
            remote: FoundRemote::Reported,
            secret: secret
                .as_ref()
                .map_or(FoundSecret::Missing, |s| FoundSecret::Metadata(&s.metadata)),
            candidates,
        };
        planned.push(Planned::new(resource, &found, notes));
    }
    Ok(planned)
}

/// The plan's inputs from the Developer Center: each application's inquiry and its
/// authorization list, signed with credentials from `credentials`, a Secret in the files, or
/// the application's Secret in the cluster. The cluster's status is not read: each resource is
/// planned as the operator would find it on a fresh start.
pub async fn from_devcenter(
    desired: &Desired,
    credentials: Option<&Path>,
) -> anyhow::Result<Vec<Planned>> {
    let mut seen: BTreeMap<(String, String), Answered> = BTreeMap::new();
    let mut planned = Vec::new();
    for resource in &desired.authorizations {
        let ns = resource.metadata.namespace.clone().unwrap_or_default();
        let app_name = resource.spec.application_ref.name.clone();
        let Some(app) = desired.application(&ns, &app_name) else {
            return Err(anyhow!(
                "AcqpAuthorization {ns}/{}: application {app_name} is not in the files; \
                 --from-devcenter needs its endpoint and clientId",
                resource.metadata.name.as_deref().unwrap_or_default()
            ));
        };
        let key = (ns.clone(), app_name.clone());
        if !seen.contains_key(&key) {
            let ids = desired
                .authorizations
                .iter()
                .filter(|a| a.metadata.namespace == resource.metadata.namespace)
                .filter(|a| a.spec.application_ref.name == app_name)
                .map(|a| a.spec.acqp.id.clone())
                .collect();
            seen.insert(
                key.clone(),
                ask_devcenter(app, desired, credentials, ids).await?,
            );
        }
        let answered = &seen[&key];
        let record = answered.records.get(&resource.spec.acqp.id);
        let found = Found {
            application: FoundApplication::Checked {
                readiness: &answered.facts.readiness,
                integrated_products: &answered.facts.integrated_products,
                poll_interval: app.spec.parsed_poll_interval(),
            },
            remote: FoundRemote::Listed(record),
            secret: FoundSecret::Missing,
            candidates: desired.authorizations.iter().collect(),
        };
        planned.push(Planned::new(resource.clone(), &found, vec![]));
    }
    Ok(planned)
}

/// What the Developer Center said about one application: who the credentials are, and the
/// records of the ACQPs asked about.
struct Answered {
    facts: ApplicationFacts,
    records: BTreeMap<String, AuthorizationRecord>,
}

/// The spec from the files on the cluster's object: its uid, creation time and status, and a
/// generation that moves when the spec does.
fn merge(
    wanted: &AcqpAuthorization,
    live: Option<&AcqpAuthorization>,
    notes: &mut Vec<String>,
) -> AcqpAuthorization {
    let mut resource = wanted.clone();
    match live {
        Some(live) => {
            let meta = &mut resource.metadata;
            meta.uid.clone_from(&live.metadata.uid);
            meta.creation_timestamp
                .clone_from(&live.metadata.creation_timestamp);
            let bump = i64::from(live.spec != wanted.spec);
            meta.generation = live.metadata.generation.map(|g| g + bump);
            resource.status.clone_from(&live.status);
            if bump == 1 {
                notes.push("the spec differs from the cluster's: planned as applied".into());
            }
        }
        None => {
            resource.metadata.generation = Some(1);
            notes.push("not in the cluster yet: planned as applied".into());
        }
    }
    resource
}

/// The application's facts and every record of `ids`, read from the Developer Center. The
/// records are listed only when the application may invite ACQPs.
async fn ask_devcenter(
    app: &DeveloperCenterApplication,
    desired: &Desired,
    credentials: Option<&Path>,
    ids: Vec<String>,
) -> anyhow::Result<Answered> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let refs = &app.spec.credentials_secret_ref;
    let keys = load_credentials(app, desired, credentials).await?;
    let pem = |key: &str| {
        keys.get(key)
            .ok_or_else(|| anyhow!("the credentials of application {name} have no key {key:?}"))
    };
    let signing_key = SigningKey::from_pem(&refs.private_key_key, pem(&refs.private_key_key)?)?;
    let devcenter_key = VerifyingKey::from_pem(
        &refs.dev_center_public_key_key,
        pem(&refs.dev_center_public_key_key)?,
    )?;
    let endpoint = reqwest::Url::parse(&app.spec.endpoint)
        .with_context(|| format!("application {name}: spec.endpoint"))?;
    let mut config = ClientConfig::new(endpoint, &app.spec.client_id, signing_key, devcenter_key);
    config.max_retries = 1;
    let client = DevCenterClient::new(config)?;
    let failed = |e| anyhow!("application {name}: the Developer Center did not answer: {e}");
    let answer = client.inquire_application().await.map_err(failed)?;
    let facts = ApplicationFacts::answered(answer);
    if facts.readiness != Readiness::Ready {
        return Ok(Answered {
            facts,
            records: BTreeMap::new(),
        });
    }
    let filter = AuthorizationFilter {
        acquirer_ids: Some(ids),
        ..Default::default()
    };
    let page = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
    let records = client
        .list_all_authorizations(&filter, page)
        .await
        .map_err(failed)?;
    let records = records
        .into_iter()
        .map(|record| (record.acquirer_id.clone(), record))
        .collect();
    Ok(Answered { facts, records })
}

/// PEMs by key name: from a file (a Secret manifest or a plain map of key to PEM), a Secret in
/// the files, or the application's Secret in the cluster.
async fn load_credentials(
    app: &DeveloperCenterApplication,
    desired: &Desired,
    file: Option<&Path>,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let refs = &app.spec.credentials_secret_ref;
    let secret = if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("{}: not valid YAML", file.display()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("Secret") {
            serde_json::from_value(value)?
        } else {
            Secret {
                string_data: Some(serde_json::from_value(value).with_context(|| {
                    format!("{}: expected a map of key name to PEM", file.display())
                })?),
                ..Default::default()
            }
        }
    } else if let Some(found) = desired.secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(&refs.name)
            && s.metadata.namespace == app.metadata.namespace
    }) {
        found.clone()
    } else {
        let ns = app.metadata.namespace.clone().unwrap_or_default();
        Api::<Secret>::namespaced(connect().await?, &ns)
            .get_opt(&refs.name)
            .await
            .map_err(|e| unreachable(&e))?
            .ok_or_else(|| {
                anyhow!(
                    "Secret {ns}/{} not found: pass --credentials FILE with the application's \
                     keys",
                    refs.name
                )
            })?
    };
    let mut keys: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        keys.insert(k, v.into_bytes());
    }
    Ok(keys)
}
