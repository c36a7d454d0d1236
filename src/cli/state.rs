//! The current state `plan` decides from, read-only: from the cluster (each resource's status,
//! its application's status, the token Secret's metadata) or from the Developer Center (the
//! application inquiry and the authorization list). Nothing here writes, and no URL is issued.

use super::cluster::{connect, unreachable};
use super::documents::Document;
use crate::api::{
    AcqpAuthorization, AcqpAuthorizationStatus, DeveloperCenterApplication, Product, duration,
};
use crate::devcenter::{
    AuthorizationFilter, ClientConfig, DevCenterClient,
    signing::{SigningKey, VerifyingKey},
    wire::Role,
};
use crate::reconcile::{
    ApplicationView, Claim, Input, RemoteAuthorization, RemoteView, outcome, secret::SecretView,
};
use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

/// Poll interval when neither the resource nor its application names one (as the operator).
const DEFAULT_POLL: Duration = Duration::from_secs(60);

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
        let application = match app {
            None => ApplicationView::NotFound,
            Some(app) => application_from_status(app, &mut notes),
        };
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_metadata_opt(&resource.token_secret_name())
            .await
            .map_err(|e| unreachable(&e))?
            .map_or(SecretView::Missing, |s| {
                outcome::secret_view_from_metadata(&resource, &s.metadata)
            });
        let mut others: Vec<&AcqpAuthorization> = listed[&ns].iter().collect();
        others.extend(&desired.authorizations);
        planned.push(Planned {
            remote: remote_from_status(resource.status.as_ref()),
            rivals: rivals(&resource, &others),
            poll_interval: poll_interval(&resource, app),
            application,
            secret,
            notes,
            resource,
        });
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
    let mut seen: BTreeMap<(String, String), (ApplicationView, BTreeMap<String, RemoteView>)> =
        BTreeMap::new();
    let mut planned = Vec::new();
    for resource in &desired.authorizations {
        let ns = resource.metadata.namespace.clone().unwrap_or_default();
        let app_name = resource.spec.application_ref.name.clone();
        let app = desired.application(&ns, &app_name);
        let key = (ns.clone(), app_name.clone());
        if !seen.contains_key(&key) {
            let Some(app) = app else {
                return Err(anyhow!(
                    "AcqpAuthorization {ns}/{}: application {app_name} is not in the files; \
                     --from-devcenter needs its endpoint and clientId",
                    resource.metadata.name.as_deref().unwrap_or_default()
                ));
            };
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
        let (application, remote) = &seen[&key];
        let others: Vec<&AcqpAuthorization> = desired.authorizations.iter().collect();
        planned.push(Planned {
            resource: resource.clone(),
            application: application.clone(),
            remote: remote
                .get(&resource.spec.acqp.id)
                .cloned()
                .unwrap_or(RemoteView::Absent),
            secret: SecretView::Missing,
            rivals: rivals(resource, &others),
            poll_interval: poll_interval(resource, app),
            notes: vec![],
        });
    }
    Ok(planned)
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

/// What the application's status tells (the operator's view of it, as it last reported).
fn application_from_status(
    app: &DeveloperCenterApplication,
    notes: &mut Vec<String>,
) -> ApplicationView {
    let status = app.status.clone().unwrap_or_default();
    match status.conditions.iter().find(|c| c.type_ == "Ready") {
        Some(ready) if ready.status == "True" => ApplicationView::Ready {
            integrated_products: status.integrated_products,
        },
        Some(ready) if ready.reason == "PermissionDenied" => ApplicationView::PermissionDenied,
        Some(ready) => ApplicationView::NotReady {
            reason: ready.reason.clone(),
            message: ready.message.clone(),
        },
        None => {
            notes.push(format!(
                "application {} has no status yet (no operator has checked it): planned as \
                 Ready with every product integrated",
                app.metadata.name.as_deref().unwrap_or_default()
            ));
            ApplicationView::Ready {
                integrated_products: Product::ALL.to_vec(),
            }
        }
    }
}

/// The Developer Center's record as the resource's status last reported it.
fn remote_from_status(status: Option<&AcqpAuthorizationStatus>) -> RemoteView {
    let Some(status) = status else {
        return RemoteView::Absent;
    };
    match status.acqp_status {
        None => RemoteView::Absent,
        Some(acqp_status) => RemoteView::Present(RemoteAuthorization {
            status: acqp_status,
            products: status.authorized_products.clone(),
            token_fingerprint: status.token_fingerprint.clone().unwrap_or_default(),
            update_time: status
                .last_checked_time
                .as_ref()
                .or(status.token_rotated_at.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        }),
    }
}

/// The other resources claiming the same ACQP of the same application.
fn rivals(resource: &AcqpAuthorization, others: &[&AcqpAuthorization]) -> Vec<Claim> {
    let mut claims: Vec<Claim> = others
        .iter()
        .filter(|o| {
            o.metadata.namespace == resource.metadata.namespace
                && o.metadata.name != resource.metadata.name
                && o.metadata.deletion_timestamp.is_none()
                && o.spec.application_ref == resource.spec.application_ref
                && o.spec.acqp.id == resource.spec.acqp.id
        })
        .map(|o| Claim {
            name: o.metadata.name.clone().unwrap_or_default(),
            created: o
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::MAX, |t| t.0),
        })
        .collect();
    // A resource both in the files and in the cluster counts once, with its real age.
    claims.sort_by(|a, b| (&a.name, a.created).cmp(&(&b.name, b.created)));
    claims.dedup_by(|later, earlier| later.name == earlier.name);
    claims
}

fn poll_interval(
    resource: &AcqpAuthorization,
    app: Option<&DeveloperCenterApplication>,
) -> Duration {
    let parse = |d: &str| duration::parse(d).ok();
    resource
        .spec
        .poll_interval
        .as_deref()
        .and_then(parse)
        .or_else(|| app.and_then(|a| parse(&a.spec.poll_interval)))
        .unwrap_or(DEFAULT_POLL)
}

/// The application's view and every record of `ids`, read from the Developer Center.
async fn ask_devcenter(
    app: &DeveloperCenterApplication,
    desired: &Desired,
    credentials: Option<&Path>,
    ids: Vec<String>,
) -> anyhow::Result<(ApplicationView, BTreeMap<String, RemoteView>)> {
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
    if answer.role != Role::DeveloperAdmin {
        return Ok((ApplicationView::PermissionDenied, BTreeMap::new()));
    }
    if answer.sandbox_acceptance_pending() {
        let view = ApplicationView::NotReady {
            reason: "SandboxAcceptancePending".into(),
            message: "the Production application has not passed sandbox acceptance testing".into(),
        };
        return Ok((view, BTreeMap::new()));
    }
    let filter = AuthorizationFilter {
        acquirer_ids: Some(ids.clone()),
        ..Default::default()
    };
    let page = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
    let records = client
        .list_all_authorizations(&filter, page)
        .await
        .map_err(failed)?;
    let mut remote: BTreeMap<String, RemoteView> =
        ids.into_iter().map(|id| (id, RemoteView::Absent)).collect();
    for record in records {
        let view = RemoteView::Present(outcome::remote_record(&record));
        remote.insert(record.acquirer_id, view);
    }
    let application = ApplicationView::Ready {
        integrated_products: answer.integrated_products,
    };
    Ok((application, remote))
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
