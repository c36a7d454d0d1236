//! The simulator's seed: applications, acquirers, keys and behaviour knobs, read from YAML.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::{
    api::Product,
    devcenter::wire::{Environment, Role},
};

use super::faults::FaultSettings;

/// The whole seed file (see `examples/simulator.yaml` for every field, documented).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The Developer Center's private key (PEM): signs responses and notifications.
    pub dev_center_private_key_file: PathBuf,
    /// The TSP applications that may call the API.
    pub applications: Vec<ApplicationConfig>,
    /// Acquirers listed one by one.
    #[serde(default)]
    pub acquirers: Vec<AcquirerConfig>,
    /// Generated ranges of acquirers, for scale runs.
    #[serde(default)]
    pub acquirer_ranges: Vec<AcquirerRange>,
    /// How long an authorization URL stays usable.
    #[serde(default = "default_url_ttl", with = "duration")]
    pub url_ttl: Duration,
    /// Grant every URL without a browser (benchmarks).
    #[serde(default)]
    pub auto_grant: AutoGrant,
    /// Notification delivery: attempts and backoff.
    #[serde(default)]
    pub notifications: NotificationSettings,
    /// Faults injected from the start (changeable at runtime through `/sim/faults`).
    #[serde(default)]
    pub faults: FaultSettings,
}

/// One TSP application in one environment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationConfig {
    /// The Client ID (`SANDBOX_...` in the sandbox).
    pub client_id: String,
    /// The application's display name.
    pub name: String,
    /// Sandbox or Production.
    pub environment: Environment,
    /// The role of the credentials' user; only `DeveloperAdmin` may work with authorizations.
    pub role: Role,
    /// The payment products integrated in the application.
    pub integrated_products: BTreeSet<Product>,
    /// The TSP public key (SPKI PEM): verifies requests and notification acknowledgements.
    pub tsp_public_key_file: PathBuf,
    /// Where status-change notifications go; none means no notifications.
    #[serde(default)]
    pub notify_url: Option<String>,
    /// Whether the application passed sandbox acceptance testing [default: true]; a Production
    /// application that has not may not invite ACQPs. `POST
    /// /sim/apps/{clientId}/sandbox-acceptance` changes it at runtime.
    #[serde(default = "passed")]
    pub sandbox_acceptance_passed: bool,
}

fn passed() -> bool {
    true
}

/// One acquirer (ACQP) and the products in its Alipay+ contract.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcquirerConfig {
    /// The ACQP ID.
    pub id: String,
    /// The ACQP's display name.
    pub name: String,
    /// Products the ACQP has contracted with Alipay+.
    pub contract_products: BTreeSet<Product>,
}

/// A generated range: IDs `prefix` + the index zero-padded to `digits`, names `namePrefix index`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcquirerRange {
    /// Leading digits shared by the range's IDs.
    pub prefix: String,
    /// How many acquirers, numbered from 1.
    pub count: u32,
    /// Width of the zero-padded index.
    #[serde(default = "default_digits")]
    pub digits: usize,
    /// Display names are `<namePrefix> <index>`.
    #[serde(default = "default_name_prefix")]
    pub name_prefix: String,
    /// Products in every generated acquirer's contract.
    pub contract_products: BTreeSet<Product>,
}

/// Automatic grants: every new URL is authorized after `delay`, as if the ACQP clicked.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoGrant {
    /// Whether URLs are granted automatically.
    #[serde(default)]
    pub enabled: bool,
    /// How long after issue the grant happens.
    #[serde(default, with = "duration")]
    pub delay: Duration,
}

/// Notification delivery: exponential backoff from `initialBackoff`, capped, bounded attempts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationSettings {
    /// Attempts before giving up (counted as failed in `/sim/stats`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles each time.
    #[serde(default = "default_initial_backoff", with = "duration")]
    pub initial_backoff: Duration,
    /// Upper bound of the wait between attempts.
    #[serde(default = "default_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// Per-attempt timeout.
    #[serde(default = "default_attempt_timeout", with = "duration")]
    pub attempt_timeout: Duration,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            attempt_timeout: default_attempt_timeout(),
        }
    }
}

fn default_url_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_digits() -> usize {
    9
}
fn default_name_prefix() -> String {
    "Generated Acquirer".to_owned()
}
fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_attempt_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Why a seed file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read simulator config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error("invalid simulator config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The YAML parses but makes no sense (duplicates, empty IDs...).
    #[error("invalid simulator config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a seed file; relative key paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses a seed from YAML text, resolving relative paths against `base`.
    pub fn from_yaml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.dev_center_private_key_file = base.join(&config.dev_center_private_key_file);
        for app in &mut config.applications {
            app.tsp_public_key_file = base.join(&app.tsp_public_key_file);
        }
        config.validate()?;
        Ok(config)
    }

    /// Every acquirer, listed and generated, by ID; duplicates are an error.
    pub fn acquirers(&self) -> Result<BTreeMap<String, AcquirerConfig>, ConfigError> {
        let mut all = BTreeMap::new();
        let generated = self.acquirer_ranges.iter().flat_map(|range| {
            (1..=range.count).map(move |i| AcquirerConfig {
                id: format!("{}{:0width$}", range.prefix, i, width = range.digits),
                name: format!("{} {i}", range.name_prefix),
                contract_products: range.contract_products.clone(),
            })
        });
        for acquirer in self.acquirers.iter().cloned().chain(generated) {
            if acquirer.id.is_empty() {
                return Err(ConfigError::Invalid("an acquirer has an empty id".into()));
            }
            if let Some(old) = all.insert(acquirer.id.clone(), acquirer) {
                return Err(ConfigError::Invalid(format!(
                    "acquirer id {} is defined twice",
                    old.id
                )));
            }
        }
        Ok(all)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for app in &self.applications {
            if app.client_id.is_empty() {
                return Err(ConfigError::Invalid(
                    "an application has an empty clientId".into(),
                ));
            }
            if !ids.insert(&app.client_id) {
                return Err(ConfigError::Invalid(format!(
                    "application {} is defined twice",
                    app.client_id
                )));
            }
        }
        if self.notifications.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "notifications.maxAttempts must be at least 1".into(),
            ));
        }
        self.acquirers().map(drop)
    }
}

/// Durations in YAML and JSON as friendly strings (`24h`, `500ms`) or ISO 8601 (`PT24H`).
pub(crate) mod duration {
    use super::*;
    use serde::{Deserializer, Serializer, de::Error as _, ser::Error as _};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let signed = SignedDuration::try_from(*d).map_err(S::Error::custom)?;
        s.collect_str(&format_args!("{signed:#}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let signed: SignedDuration = text.parse().map_err(D::Error::custom)?;
        Duration::try_from(signed).map_err(|_| D::Error::custom("duration must not be negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_seed_loads_with_resolved_paths_and_generated_acquirers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/simulator.yaml");
        let config = Config::load(&path).unwrap();
        assert!(config.dev_center_private_key_file.is_absolute());
        let demo = &config.applications[0];
        assert_eq!(demo.client_id, "SANDBOX_ACQP_OPERATOR_DEMO");
        assert_eq!(demo.role, Role::DeveloperAdmin);
        assert!(
            !demo
                .integrated_products
                .contains(&Product::MerchantPresentedModePayment)
        );
        let acquirers = config.acquirers().unwrap();
        assert_eq!(acquirers["1022188000000000002"].name, "Beta Pay");
        assert_eq!(config.url_ttl, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn ranges_generate_padded_ids_and_duplicates_are_rejected() {
        let yaml = r#"
devCenterPrivateKeyFile: k.pem
applications: []
acquirers: [{id: "X0002", name: Listed, contractProducts: [AutoDebit]}]
acquirerRanges: [{prefix: "X", count: 3, digits: 4, contractProducts: [CashierPayment]}]
urlTtl: 90s
"#;
        let err = Config::from_yaml(yaml, Path::new("/seed")).unwrap_err();
        assert!(err.to_string().contains("X0002 is defined twice"), "{err}");

        let ok = yaml.replace("X0002", "Y1");
        let config = Config::from_yaml(&ok, Path::new("/seed")).unwrap();
        let ids: Vec<_> = config.acquirers().unwrap().into_keys().collect();
        assert_eq!(ids, ["X0001", "X0002", "X0003", "Y1"]);
        assert_eq!(config.url_ttl, Duration::from_secs(90));
        assert_eq!(config.dev_center_private_key_file, Path::new("/seed/k.pem"));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let yaml = "devCenterPrivateKeyFile: k.pem\napplications: []\nurlTTL: 1h\n";
        let err = Config::from_yaml(yaml, Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("urlTTL"), "{err}");
    }
}
