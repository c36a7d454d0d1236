//! The simulator's state machine: authorization URLs, grants, Agent-Tokens and revocations.
//!
//! Pure data and functions of `now`, so every rule of the contract is unit-tested here without
//! HTTP; the handlers only translate between the wire and these calls.

use std::collections::{BTreeMap, BTreeSet};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{
    api::Product,
    devcenter::wire::{AgentToken, AuthorizationStatus, Role},
};

use super::config::{AcquirerConfig, ApplicationConfig, Config, ConfigError};

/// Largest `pageSize` accepted by the authorization inquiry.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Largest `pageNumber`: the int32 range, so a gateway may store it in a 32-bit integer.
pub const MAX_PAGE_NUMBER: u32 = i32::MAX as u32;
/// Longest `authorizationRequestId`, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 64;
/// Longest ACQP ID, in characters; the same bound as `spec.acqp.id`.
pub const MAX_ACQUIRER_ID_CHARS: usize = 64;
/// Longest `acquirerName` filter, in characters; the same bound as `spec.acqp.name`.
pub const MAX_ACQUIRER_NAME_CHARS: usize = 256;
/// Most ACQP IDs in one `acquirerIds` filter: one page's worth.
pub const MAX_ACQUIRER_IDS: usize = MAX_PAGE_SIZE as usize;

/// The seed's immutable part: who may call and which acquirers exist.
#[derive(Clone, Debug)]
pub struct Catalog {
    applications: BTreeMap<String, ApplicationConfig>,
    acquirers: BTreeMap<String, AcquirerConfig>,
    url_ttl: SignedDuration,
}

impl Catalog {
    /// Indexes the applications and acquirers of a seed.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            applications: config
                .applications
                .iter()
                .map(|a| (a.client_id.clone(), a.clone()))
                .collect(),
            acquirers: config.acquirers()?,
            url_ttl: SignedDuration::try_from(config.url_ttl)
                .map_err(|e| ConfigError::Invalid(format!("urlTtl: {e}")))?,
        })
    }

    /// The application with this Client ID.
    pub fn application(&self, client_id: &str) -> Option<&ApplicationConfig> {
        self.applications.get(client_id)
    }

    /// The acquirer with this ID.
    pub fn acquirer(&self, id: &str) -> Option<&AcquirerConfig> {
        self.acquirers.get(id)
    }
}

/// One issued authorization URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRecord {
    /// The random path segment after `/consent/`.
    pub id: String,
    /// The application that asked for it.
    pub client_id: String,
    /// The ACQP invited.
    pub acquirer_id: String,
    /// The products the grant will cover.
    pub products: BTreeSet<Product>,
    /// The idempotency key it was issued under.
    pub request_id: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops being usable.
    pub expires_at: Timestamp,
    /// Open, completed or superseded.
    pub outcome: UrlOutcome,
}

/// What became of a URL; expiry is not stored, it follows from `expires_at` and `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum UrlOutcome {
    /// Not used yet (a skip leaves it open).
    Open,
    /// Authorized.
    Completed {
        /// When the ACQP authorized it.
        at: Timestamp,
    },
    /// A newer URL for the same application and ACQP replaced it.
    Superseded {
        /// The newer URL's ID.
        by: String,
    },
}

/// An application's authorization by one ACQP: the record `inquiry` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The ACQP.
    pub acquirer_id: String,
    /// Active or Inactive.
    pub status: AuthorizationStatus,
    /// The products of the last grant.
    pub products: BTreeSet<Product>,
    /// The last grant's token; valid only while the status is Active.
    pub agent_token: AgentToken,
    /// When the last grant happened.
    pub authorized_time: Timestamp,
    /// When the status or token last changed.
    pub update_time: Timestamp,
}

/// Everything that changes at runtime; this is what `--state` persists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateData {
    /// Every URL ever issued, by ID.
    pub urls: BTreeMap<String, UrlRecord>,
    /// clientId → authorizationRequestId → URL ID: the idempotency records.
    pub requests: BTreeMap<String, BTreeMap<String, String>>,
    /// clientId → acquirerId → the newest URL, which supersedes the ones before it.
    pub latest_urls: BTreeMap<String, BTreeMap<String, String>>,
    /// clientId → acquirerId → authorization.
    pub authorizations: BTreeMap<String, BTreeMap<String, Authorization>>,
    /// clientId → notify URL set at runtime, overriding the seed.
    pub notify_urls: BTreeMap<String, String>,
    /// clientId → sandbox acceptance set at runtime, overriding the seed.
    #[serde(default)]
    pub sandbox_acceptance: BTreeMap<String, bool>,
}

/// A contract rule the request broke; each maps to one F result code.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The request is malformed.
    #[error("{0}")]
    ParamIllegal(String),
    /// The caller's role may not do this.
    #[error(
        "the credentials of application {client_id} belong to role {role:?}; only a Developer Admin may {action}: use a Developer Admin's key"
    )]
    AccessDenied {
        /// The caller.
        client_id: String,
        /// The caller's role.
        role: Role,
        /// What was refused.
        action: &'static str,
    },
    /// No such ACQP.
    #[error("acquirer {0} does not exist: check the ACQP ID")]
    AcquirerNotFound(String),
    /// Products missing from the application.
    #[error(
        "products not integrated in application {client_id}: {products}; add payment products to the application first"
    )]
    ProductNotIntegrated {
        /// The application.
        client_id: String,
        /// The offending products, comma-separated.
        products: String,
    },
    /// Products missing from the ACQP's contract.
    #[error(
        "products not in the contract of ACQP {acquirer_id} ({acquirer_name}): {products}; ask the ACQP to add them to its Alipay+ contract or remove them from the request"
    )]
    ProductNotInContract {
        /// The ACQP.
        acquirer_id: String,
        /// Its name.
        acquirer_name: String,
        /// The offending products, comma-separated.
        products: String,
    },
    /// The idempotency key was used before with another body.
    #[error(
        "authorizationRequestId {0} was already used with a different acquirerId or products; use a new request ID for a new request"
    )]
    RepeatReqInconsistent(String),
}

/// Why a consent page or a scripted grant cannot go ahead.
#[derive(Clone, Debug, PartialEq)]
pub enum Closed {
    /// No URL with that ID.
    NotFound,
    /// Already authorized.
    Completed,
    /// Past its expiry.
    Expired,
    /// A newer URL exists for the same application and ACQP.
    Superseded,
}

/// The result of a successful `generateUrl`.
#[derive(Clone, Debug, PartialEq)]
pub struct Issued {
    /// The URL (new, or the one this request ID already produced).
    pub url: UrlRecord,
    /// False when the idempotency record answered.
    pub new: bool,
}

/// A status change to notify: which application's authorization by which ACQP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The application.
    pub client_id: String,
    /// The ACQP.
    pub acquirer_id: String,
    /// The new status.
    pub status: AuthorizationStatus,
    /// When it changed.
    pub update_time: Timestamp,
}

/// Filters and page of an authorization inquiry.
#[derive(Clone, Debug, Default)]
pub struct InquiryQuery {
    /// Only these ACQPs (none: all).
    pub acquirer_ids: Option<Vec<String>>,
    /// Case-insensitive substring of the ACQP name.
    pub acquirer_name: Option<String>,
    /// Only this status.
    pub status: Option<AuthorizationStatus>,
    /// Records per page, 1..=`MAX_PAGE_SIZE`.
    pub page_size: u32,
    /// Page, from 1.
    pub page_number: u32,
}

/// One page of authorizations with the ACQP names joined in.
#[derive(Clone, Debug)]
pub struct InquiryPage {
    /// (ACQP name, record), ordered by ACQP ID.
    pub authorizations: Vec<(String, Authorization)>,
    /// Matching records over all pages.
    pub total_count: usize,
}

/// The catalog plus the mutable data.
#[derive(Clone, Debug)]
pub struct State {
    /// Applications and acquirers.
    pub catalog: Catalog,
    /// What persists.
    pub data: StateData,
}

impl State {
    /// A state with the given data (empty, or loaded from `--state`).
    pub fn new(catalog: Catalog, data: StateData) -> Self {
        Self { catalog, data }
    }

    fn admin(&self, client_id: &str, action: &'static str) -> Result<(), Refusal> {
        let app = self
            .catalog
            .application(client_id)
            .ok_or_else(|| Refusal::ParamIllegal(format!("unknown application {client_id}")))?;
        if app.role == Role::DeveloperAdmin {
            Ok(())
        } else {
            Err(Refusal::AccessDenied {
                client_id: client_id.to_owned(),
                role: app.role,
                action,
            })
        }
    }

    /// `generateUrl`: checks role, ACQP, products, then answers idempotently or issues a URL
    /// that supersedes the previous one for the same application and ACQP.
    pub fn generate_url(
        &mut self,
        client_id: &str,
        request_id: &str,
        acquirer_id: &str,
        products: &[Product],
        now: Timestamp,
    ) -> Result<Issued, Refusal> {
        // The body first, then the role: a malformed request is malformed whoever sends it.
        check_request_id(request_id)?;
        check_acquirer_id("acquirerId", acquirer_id)?;
        let product_set: BTreeSet<Product> = products.iter().copied().collect();
        if product_set.is_empty() {
            return Err(Refusal::ParamIllegal("products is empty".into()));
        }
        if product_set.len() != products.len() {
            return Err(Refusal::ParamIllegal("products has duplicates".into()));
        }
        self.admin(client_id, "generate authorization URLs")?;
        if let Some(previous) = self.previous_answer(client_id, request_id, now) {
            if previous.acquirer_id == acquirer_id && previous.products == product_set {
                return Ok(Issued {
                    url: previous.clone(),
                    new: false,
                });
            }
            return Err(Refusal::RepeatReqInconsistent(request_id.to_owned()));
        }
        let acquirer = self
            .catalog
            .acquirer(acquirer_id)
            .ok_or_else(|| Refusal::AcquirerNotFound(acquirer_id.to_owned()))?;
        let app = &self.catalog.applications[client_id];
        let not_integrated = list(product_set.difference(&app.integrated_products));
        if !not_integrated.is_empty() {
            return Err(Refusal::ProductNotIntegrated {
                client_id: client_id.to_owned(),
                products: not_integrated,
            });
        }
        let not_in_contract = list(product_set.difference(&acquirer.contract_products));
        if !not_in_contract.is_empty() {
            return Err(Refusal::ProductNotInContract {
                acquirer_id: acquirer_id.to_owned(),
                acquirer_name: acquirer.name.clone(),
                products: not_in_contract,
            });
        }

        let url = UrlRecord {
            id: random_id(16),
            client_id: client_id.to_owned(),
            acquirer_id: acquirer_id.to_owned(),
            products: product_set,
            request_id: request_id.to_owned(),
            issued_at: now,
            expires_at: now + self.catalog.url_ttl,
            outcome: UrlOutcome::Open,
        };
        let latest = self
            .data
            .latest_urls
            .entry(client_id.to_owned())
            .or_default();
        if let Some(old_id) = latest.insert(acquirer_id.to_owned(), url.id.clone())
            && let Some(old) = self.data.urls.get_mut(&old_id)
            && old.outcome == UrlOutcome::Open
        {
            old.outcome = UrlOutcome::Superseded { by: url.id.clone() };
        }
        self.data
            .requests
            .entry(client_id.to_owned())
            .or_default()
            .insert(request_id.to_owned(), url.id.clone());
        self.data.urls.insert(url.id.clone(), url.clone());
        Ok(Issued { url, new: true })
    }

    /// The URL a request ID produced, while it is still usable. The idempotency window is the
    /// URL's lifetime: once it expired, the same ID asks for a fresh URL, so a client that
    /// derives its key from stable data is never stuck with a dead URL.
    fn previous_answer(
        &self,
        client_id: &str,
        request_id: &str,
        now: Timestamp,
    ) -> Option<&UrlRecord> {
        let url_id = self.data.requests.get(client_id)?.get(request_id)?;
        self.data.urls.get(url_id).filter(|u| u.expires_at > now)
    }

    /// The URL behind a consent page, or why it cannot be used any more.
    pub fn open_url(
        &self,
        url_id: &str,
        now: Timestamp,
    ) -> Result<&UrlRecord, (Closed, Option<&UrlRecord>)> {
        let Some(url) = self.data.urls.get(url_id) else {
            return Err((Closed::NotFound, None));
        };
        let closed = match url.outcome {
            UrlOutcome::Completed { .. } => Closed::Completed,
            UrlOutcome::Superseded { .. } => Closed::Superseded,
            UrlOutcome::Open if url.expires_at <= now => Closed::Expired,
            UrlOutcome::Open => return Ok(url),
        };
        Err((closed, Some(url)))
    }

    /// The ACQP authorizes a URL: a new random Agent-Token replaces any previous one.
    pub fn grant(&mut self, url_id: &str, now: Timestamp) -> Result<Change, Closed> {
        let url = self
            .open_url(url_id, now)
            .map_err(|(closed, _)| closed)?
            .clone();
        self.data
            .urls
            .get_mut(url_id)
            .expect("checked above")
            .outcome = UrlOutcome::Completed { at: now };
        let record = Authorization {
            acquirer_id: url.acquirer_id.clone(),
            status: AuthorizationStatus::Active,
            products: url.products,
            agent_token: AgentToken::new(random_id(32)),
            authorized_time: now,
            update_time: now,
        };
        self.data
            .authorizations
            .entry(url.client_id.clone())
            .or_default()
            .insert(url.acquirer_id.clone(), record);
        Ok(Change {
            client_id: url.client_id,
            acquirer_id: url.acquirer_id,
            status: AuthorizationStatus::Active,
            update_time: now,
        })
    }

    /// The newest URL of an application for an ACQP, if it can still be granted (for scripted
    /// grants without a browser).
    pub fn latest_open_url(
        &self,
        client_id: &str,
        acquirer_id: &str,
        now: Timestamp,
    ) -> Result<&str, Closed> {
        let id = self
            .data
            .latest_urls
            .get(client_id)
            .and_then(|m| m.get(acquirer_id))
            .ok_or(Closed::NotFound)?;
        self.open_url(id, now)
            .map(|u| u.id.as_str())
            .map_err(|(c, _)| c)
    }

    /// The ACQP cancels its authorization of one application, or of all applications: Active
    /// records become Inactive and their tokens stop being valid. Returns what changed.
    pub fn deauthorize(
        &mut self,
        acquirer_id: &str,
        client_id: Option<&str>,
        now: Timestamp,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (client, records) in &mut self.data.authorizations {
            if client_id.is_some_and(|c| c != client) {
                continue;
            }
            if let Some(record) = records.get_mut(acquirer_id)
                && record.status == AuthorizationStatus::Active
            {
                record.status = AuthorizationStatus::Inactive;
                record.update_time = now;
                changes.push(Change {
                    client_id: client.clone(),
                    acquirer_id: acquirer_id.to_owned(),
                    status: AuthorizationStatus::Inactive,
                    update_time: now,
                });
            }
        }
        changes
    }

    /// `authorizations/inquiry`: the caller's records, filtered, one page.
    pub fn inquiry(&self, client_id: &str, query: &InquiryQuery) -> Result<InquiryPage, Refusal> {
        if !(1..=MAX_PAGE_SIZE).contains(&query.page_size) {
            return Err(Refusal::ParamIllegal(format!(
                "pageSize must be between 1 and {MAX_PAGE_SIZE}, got {}",
                query.page_size
            )));
        }
        if !(1..=MAX_PAGE_NUMBER).contains(&query.page_number) {
            return Err(Refusal::ParamIllegal(format!(
                "pageNumber must be between 1 and {MAX_PAGE_NUMBER}, got {}",
                query.page_number
            )));
        }
        if let Some(ids) = &query.acquirer_ids {
            if !(1..=MAX_ACQUIRER_IDS).contains(&ids.len()) {
                return Err(Refusal::ParamIllegal(format!(
                    "acquirerIds must list 1 to {MAX_ACQUIRER_IDS} IDs (omit it for all ACQPs), got {}",
                    ids.len()
                )));
            }
            for id in ids {
                check_acquirer_id("acquirerIds", id)?;
            }
        }
        if let Some(name) = &query.acquirer_name
            && !(1..=MAX_ACQUIRER_NAME_CHARS).contains(&name.chars().count())
        {
            return Err(Refusal::ParamIllegal(format!(
                "acquirerName must be 1 to {MAX_ACQUIRER_NAME_CHARS} characters (omit it for any name)"
            )));
        }
        self.admin(client_id, "read authorizations")?;
        let needle = query.acquirer_name.as_deref().map(str::to_lowercase);
        let matching: Vec<(String, &Authorization)> = self
            .data
            .authorizations
            .get(client_id)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|r| query.status.is_none_or(|s| s == r.status))
            .filter(|r| {
                query
                    .acquirer_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&r.acquirer_id))
            })
            .map(|r| (self.acquirer_name(&r.acquirer_id), r))
            .filter(|(name, _)| {
                needle
                    .as_ref()
                    .is_none_or(|n| name.to_lowercase().contains(n.as_str()))
            })
            .collect();
        let size = query.page_size as usize;
        let skip = (query.page_number as usize - 1).saturating_mul(size);
        Ok(InquiryPage {
            total_count: matching.len(),
            authorizations: matching
                .into_iter()
                .skip(skip)
                .take(size)
                .map(|(name, r)| (name, r.clone()))
                .collect(),
        })
    }

    /// The ACQP's display name (its ID if the seed no longer lists it).
    pub fn acquirer_name(&self, acquirer_id: &str) -> String {
        self.catalog
            .acquirer(acquirer_id)
            .map_or_else(|| acquirer_id.to_owned(), |a| a.name.clone())
    }

    /// Where notifications for this application go: the runtime override, else the seed.
    pub fn notify_url(&self, client_id: &str) -> Option<String> {
        self.data
            .notify_urls
            .get(client_id)
            .cloned()
            .or_else(|| self.catalog.application(client_id)?.notify_url.clone())
    }

    /// Whether the application passed sandbox acceptance: set at runtime, else the seed's.
    pub fn sandbox_acceptance_passed(&self, client_id: &str) -> bool {
        self.data
            .sandbox_acceptance
            .get(client_id)
            .copied()
            .or_else(|| {
                Some(
                    self.catalog
                        .application(client_id)?
                        .sandbox_acceptance_passed,
                )
            })
            .unwrap_or(false)
    }

    /// Distinct URLs per (client, acquirer, product set): proof that nothing was issued twice.
    pub fn url_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for url in self.data.urls.values() {
            let key = format!(
                "{}/{}/{}",
                url.client_id,
                url.acquirer_id,
                list(url.products.iter())
            );
            *counts.entry(key).or_default() += 1;
        }
        counts
    }
}

/// An `authorizationRequestId`: 1 to 64 of `A-Z a-z 0-9 _ . : -`.
fn check_request_id(id: &str) -> Result<(), Refusal> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
    if id.is_empty() || id.chars().count() > MAX_REQUEST_ID_CHARS || !id.chars().all(allowed) {
        return Err(Refusal::ParamIllegal(format!(
            "authorizationRequestId must be 1 to {MAX_REQUEST_ID_CHARS} letters, digits, '_', '.', ':' or '-'"
        )));
    }
    Ok(())
}

/// An ACQP ID: 1 to 64 ASCII letters and digits, as `spec.acqp.id` allows.
fn check_acquirer_id(field: &str, id: &str) -> Result<(), Refusal> {
    if id.is_empty()
        || id.len() > MAX_ACQUIRER_ID_CHARS
        || !id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Refusal::ParamIllegal(format!(
            "{field}: an ACQP ID is 1 to {MAX_ACQUIRER_ID_CHARS} letters and digits, e.g. 1022188000000000001"
        )));
    }
    Ok(())
}

fn list<'a>(products: impl Iterator<Item = &'a Product>) -> String {
    products.map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

/// `bytes` random bytes, base64url without padding: URL IDs and Agent-Tokens.
fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Product::*;
    use std::path::Path;

    const DEMO: &str = "SANDBOX_ACQP_OPERATOR_DEMO";
    const VIEWER: &str = "SANDBOX_ACQP_OPERATOR_VIEWER";
    const ACME: &str = "1022188000000000001";
    const BETA: &str = "1022188000000000002";

    fn state() -> State {
        let yaml = r#"
devCenterPrivateKeyFile: k.pem
urlTtl: 1h
applications:
  - {clientId: SANDBOX_ACQP_OPERATOR_DEMO, name: Demo, environment: Sandbox, role: DeveloperAdmin,
     integratedProducts: [CashierPayment, AutoDebit, UserPresentedModePayment], tspPublicKeyFile: p.pem}
  - {clientId: SANDBOX_ACQP_OPERATOR_VIEWER, name: Viewer, environment: Sandbox, role: Developer,
     integratedProducts: [CashierPayment], tspPublicKeyFile: p.pem}
acquirers:
  - {id: "1022188000000000001", name: Acme Acquiring,
     contractProducts: [CashierPayment, AutoDebit, UserPresentedModePayment, MerchantPresentedModePayment]}
  - {id: "1022188000000000002", name: Beta Pay, contractProducts: [CashierPayment]}
acquirerRanges: [{prefix: "99", count: 250, digits: 3, namePrefix: Scale, contractProducts: [CashierPayment]}]
"#;
        let config = Config::from_yaml(yaml, Path::new("/")).unwrap();
        State::new(Catalog::new(&config).unwrap(), StateData::default())
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn issue(s: &mut State, req: &str, acq: &str, products: &[Product]) -> UrlRecord {
        s.generate_url(DEMO, req, acq, products, t(0)).unwrap().url
    }

    #[test]
    fn same_request_id_and_body_gives_the_same_url_different_body_is_refused() {
        let mut s = state();
        let first = issue(&mut s, "r1", ACME, &[CashierPayment, AutoDebit]);
        let again = s
            .generate_url(DEMO, "r1", ACME, &[AutoDebit, CashierPayment], t(5))
            .unwrap();
        assert_eq!((again.url.clone(), again.new), (first.clone(), false));
        assert_eq!(first.expires_at, t(3600));
        assert_eq!(
            s.generate_url(DEMO, "r1", ACME, &[CashierPayment], t(5)),
            Err(Refusal::RepeatReqInconsistent("r1".into()))
        );
        assert_eq!(
            s.generate_url(DEMO, "r1", BETA, &[CashierPayment, AutoDebit], t(5)),
            Err(Refusal::RepeatReqInconsistent("r1".into()))
        );
        assert_eq!(s.data.urls.len(), 1);
    }

    #[test]
    fn an_expired_request_id_issues_a_fresh_url() {
        let mut s = state();
        let first = issue(&mut s, "r1", ACME, &[CashierPayment]);
        assert_eq!(
            s.open_url(&first.id, t(3600)).unwrap_err().0,
            Closed::Expired
        );
        let second = s
            .generate_url(DEMO, "r1", ACME, &[CashierPayment], t(3600))
            .unwrap();
        assert!(second.new);
        assert_ne!(second.url.id, first.id);
        assert_eq!(
            s.grant(&second.url.id, t(3601)).unwrap().status,
            AuthorizationStatus::Active
        );
    }

    #[test]
    fn a_newer_url_supersedes_the_older_one_for_the_same_acqp_only() {
        let mut s = state();
        let old = issue(&mut s, "r1", ACME, &[CashierPayment]);
        let other_acqp = issue(&mut s, "r2", BETA, &[CashierPayment]);
        let new = issue(&mut s, "r3", ACME, &[CashierPayment, AutoDebit]);
        assert_eq!(s.open_url(&old.id, t(1)).unwrap_err().0, Closed::Superseded);
        assert_eq!(s.grant(&old.id, t(1)), Err(Closed::Superseded));
        assert!(s.open_url(&other_acqp.id, t(1)).is_ok());
        assert_eq!(s.latest_open_url(DEMO, ACME, t(1)), Ok(new.id.as_str()));
    }

    #[test]
    fn expired_and_unknown_urls_cannot_be_granted() {
        let mut s = state();
        let url = issue(&mut s, "r1", ACME, &[CashierPayment]);
        assert_eq!(s.grant(&url.id, t(3600)), Err(Closed::Expired));
        assert_eq!(s.grant("nope", t(1)), Err(Closed::NotFound));
        assert!(s.data.authorizations.is_empty());
    }

    #[test]
    fn each_grant_issues_a_new_token_and_completes_the_url() {
        let mut s = state();
        let first = issue(&mut s, "r1", ACME, &[CashierPayment]);
        s.grant(&first.id, t(10)).unwrap();
        assert_eq!(s.grant(&first.id, t(11)), Err(Closed::Completed));
        let token1 = s.data.authorizations[DEMO][ACME].agent_token.clone();
        assert_eq!(token1.expose().len(), 43, "32 random bytes in base64url");

        let second = issue(&mut s, "r2", ACME, &[CashierPayment, AutoDebit]);
        // A completed URL stays "completed", not "superseded", when a newer one comes.
        assert_eq!(
            s.open_url(&first.id, t(20)).unwrap_err().0,
            Closed::Completed
        );
        s.grant(&second.id, t(30)).unwrap();
        let record = &s.data.authorizations[DEMO][ACME];
        assert_ne!(record.agent_token, token1);
        assert_eq!(record.products, BTreeSet::from([CashierPayment, AutoDebit]));
        assert_eq!((record.authorized_time, record.update_time), (t(30), t(30)));
        assert!(!format!("{record:?}").contains(record.agent_token.expose()));
    }

    #[test]
    fn deauthorize_makes_records_inactive_for_one_or_all_applications() {
        let mut s = state();
        let url = issue(&mut s, "r1", ACME, &[CashierPayment]);
        s.grant(&url.id, t(1)).unwrap();
        assert!(s.deauthorize(ACME, Some(VIEWER), t(2)).is_empty());
        let changes = s.deauthorize(ACME, None, t(3));
        assert_eq!(
            changes,
            [Change {
                client_id: DEMO.into(),
                acquirer_id: ACME.into(),
                status: AuthorizationStatus::Inactive,
                update_time: t(3)
            }]
        );
        let record = &s.data.authorizations[DEMO][ACME];
        assert_eq!(record.status, AuthorizationStatus::Inactive);
        assert_eq!((record.authorized_time, record.update_time), (t(1), t(3)));
        assert!(
            s.deauthorize(ACME, None, t(4)).is_empty(),
            "no change, no notification"
        );
    }

    #[test]
    fn role_acquirer_and_product_checks_name_the_problem() {
        let mut s = state();
        let denied = s
            .generate_url(VIEWER, "r", ACME, &[CashierPayment], t(0))
            .unwrap_err();
        assert!(matches!(
            denied,
            Refusal::AccessDenied {
                role: Role::Developer,
                ..
            }
        ));
        assert!(denied.to_string().contains("only a Developer Admin"));
        let query = InquiryQuery {
            page_size: 10,
            page_number: 1,
            ..Default::default()
        };
        assert!(matches!(
            s.inquiry(VIEWER, &query),
            Err(Refusal::AccessDenied { .. })
        ));

        assert_eq!(
            s.generate_url(DEMO, "r", "404", &[CashierPayment], t(0)),
            Err(Refusal::AcquirerNotFound("404".into()))
        );
        let err = s
            .generate_url(
                DEMO,
                "r",
                ACME,
                &[CashierPayment, MerchantPresentedModePayment],
                t(0),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(": MerchantPresentedModePayment; add payment products"),
            "{err}"
        );
        let err = s
            .generate_url(
                DEMO,
                "r",
                BETA,
                &[AutoDebit, CashierPayment, UserPresentedModePayment],
                t(0),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("(Beta Pay): AutoDebit,UserPresentedModePayment;"),
            "{err}"
        );
        assert!(matches!(
            s.generate_url(DEMO, "r", ACME, &[], t(0)),
            Err(Refusal::ParamIllegal(_))
        ));
        assert!(matches!(
            s.generate_url(DEMO, "r", ACME, &[AutoDebit, AutoDebit], t(0)),
            Err(Refusal::ParamIllegal(_))
        ));
        assert!(s.data.urls.is_empty());
    }

    #[test]
    fn inquiry_filters_and_paginates() {
        let mut s = state();
        for i in 1..=250 {
            let acq = format!("99{i:03}");
            let url = issue(&mut s, &format!("r{i}"), &acq, &[CashierPayment]);
            s.grant(&url.id, t(1)).unwrap();
        }
        let url = issue(&mut s, "acme", ACME, &[CashierPayment]);
        s.grant(&url.id, t(1)).unwrap();
        s.deauthorize("99007", None, t(2));

        let page = |size, number| InquiryQuery {
            page_size: size,
            page_number: number,
            ..Default::default()
        };
        let p3 = s.inquiry(DEMO, &page(100, 3)).unwrap();
        assert_eq!((p3.total_count, p3.authorizations.len()), (251, 51));
        assert_eq!(p3.authorizations.last().unwrap().1.acquirer_id, "99250");
        assert!(
            s.inquiry(DEMO, &page(100, 4))
                .unwrap()
                .authorizations
                .is_empty()
        );
        assert!(s.inquiry(DEMO, &page(101, 1)).is_err());
        assert!(s.inquiry(DEMO, &page(0, 1)).is_err());
        assert!(s.inquiry(DEMO, &page(10, 0)).is_err());

        let inactive = s
            .inquiry(
                DEMO,
                &InquiryQuery {
                    status: Some(AuthorizationStatus::Inactive),
                    ..page(10, 1)
                },
            )
            .unwrap();
        assert_eq!(inactive.authorizations[0].1.acquirer_id, "99007");
        assert_eq!(inactive.total_count, 1);
        let by_name = s
            .inquiry(
                DEMO,
                &InquiryQuery {
                    acquirer_name: Some("acme".into()),
                    ..page(10, 1)
                },
            )
            .unwrap();
        assert_eq!(by_name.authorizations[0].0, "Acme Acquiring");
        assert_eq!(by_name.total_count, 1);
        let by_ids = s
            .inquiry(
                DEMO,
                &InquiryQuery {
                    acquirer_ids: Some(vec!["99001".into(), "99002".into(), "nope".into()]),
                    ..page(10, 1)
                },
            )
            .unwrap();
        assert_eq!(by_ids.total_count, 2);
    }

    #[test]
    fn bodies_outside_the_documented_limits_are_param_illegal_before_the_role_is_checked() {
        let mut s = state();
        let long_id = "r".repeat(MAX_REQUEST_ID_CHARS + 1);
        for (request_id, acquirer_id) in [
            ("", ACME),
            (long_id.as_str(), ACME),
            ("r 1", ACME),
            ("r1", ""),
            ("r1", "1022188-1"),
            ("r1", &"9".repeat(MAX_ACQUIRER_ID_CHARS + 1)),
        ] {
            let refused = s.generate_url(VIEWER, request_id, acquirer_id, &[CashierPayment], t(0));
            assert!(
                matches!(refused, Err(Refusal::ParamIllegal(_))),
                "{request_id:?} {acquirer_id:?}: {refused:?}"
            );
        }
        let longest = "a:b.c_d-".repeat(MAX_REQUEST_ID_CHARS / 8);
        assert!(
            s.generate_url(DEMO, &longest, ACME, &[CashierPayment], t(0))
                .is_ok()
        );

        let page = InquiryQuery {
            page_size: 10,
            page_number: 1,
            ..Default::default()
        };
        let too_many: Vec<String> = (0..=MAX_ACQUIRER_IDS)
            .map(|i| format!("99{i:03}"))
            .collect();
        for query in [
            InquiryQuery {
                page_number: MAX_PAGE_NUMBER + 1,
                ..page.clone()
            },
            InquiryQuery {
                acquirer_ids: Some(vec![]),
                ..page.clone()
            },
            InquiryQuery {
                acquirer_ids: Some(too_many),
                ..page.clone()
            },
            InquiryQuery {
                acquirer_ids: Some(vec!["not an id".into()]),
                ..page.clone()
            },
            InquiryQuery {
                acquirer_name: Some(String::new()),
                ..page.clone()
            },
            InquiryQuery {
                acquirer_name: Some("é".repeat(MAX_ACQUIRER_NAME_CHARS + 1)),
                ..page.clone()
            },
        ] {
            let refused = s.inquiry(VIEWER, &query);
            assert!(
                matches!(refused, Err(Refusal::ParamIllegal(_))),
                "{query:?}: {:?}",
                refused.map(|p| p.total_count)
            );
        }
        // The name bound counts characters, not bytes.
        let widest = InquiryQuery {
            acquirer_name: Some("é".repeat(MAX_ACQUIRER_NAME_CHARS)),
            page_number: MAX_PAGE_NUMBER,
            ..page
        };
        assert!(s.inquiry(DEMO, &widest).is_ok());
    }

    #[test]
    fn url_counts_are_per_client_acqp_and_product_set() {
        let mut s = state();
        issue(&mut s, "r1", ACME, &[CashierPayment]);
        issue(&mut s, "r1", ACME, &[CashierPayment]);
        issue(&mut s, "r2", ACME, &[CashierPayment]);
        let counts = s.url_counts();
        assert_eq!(counts[&format!("{DEMO}/{ACME}/CashierPayment")], 2);
    }
}
