//! A simulator of the Developer Center API and the ACQP consent page.
//!
//! Real HTTP with real signatures: the signed contract endpoints (`api`), the consent page the
//! ACQP opens (`consent`), test and ACQP-side controls under `/sim/` (`control`), fault injection
//! (`faults`), signed notifications (`notify`), `--state` persistence (`persist`) and the contract
//! document (`openapi`, `GET /openapi.json`), around a pure state machine (`state`) seeded from
//! YAML (`config`).

mod api;
mod checks;
mod config;
mod consent;
mod control;
mod faults;
mod notify;
pub mod openapi;
mod persist;
mod server;
mod state;

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use jiff::Timestamp;
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
    task::JoinHandle,
};

pub use config::{
    AcquirerConfig, AcquirerRange, ApplicationConfig, AutoGrant, Config, ConfigError,
    NotificationSettings,
};
pub use faults::FaultSettings;

use crate::devcenter::signing::{KeyError, SigningKey, VerifyingKey};

/// Command-line arguments of `acqp-operator simulator`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulatorArgs {
    /// The seed: applications, keys, acquirers and behaviour (see examples/simulator.yaml).
    #[arg(long, value_name = "FILE", default_value = "examples/simulator.yaml")]
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Keep URLs, authorizations and tokens in this JSON file across restarts.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Base URL of authorization URLs, as the ACQP's browser reaches this server
    /// [default: http://<listen>].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

/// Why the simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The seed is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file does not hold a usable key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The `--state` file exists but cannot be read or parsed.
    #[error("cannot load simulator state {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Waiting for a shutdown signal failed.
    #[error("cannot wait for a shutdown signal: {0}")]
    Signal(std::io::Error),
}

/// Runs the simulator until SIGINT or SIGTERM, then saves the state and returns.
pub async fn run(args: SimulatorArgs) -> Result<(), SimulatorError> {
    let config = Config::load(&args.config)?;
    let mut simulator = Simulator::new(config);
    if let Some(path) = args.state {
        simulator = simulator.with_state_file(path);
    }
    if let Some(url) = args.public_url {
        simulator = simulator.with_public_url(url);
    }
    let running = simulator.start(args.listen).await?;
    tracing::info!(addr = %running.addr(), public_url = running.public_url(), "simulator listening");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(SimulatorError::Signal)?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.map_err(SimulatorError::Signal)?,
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// A simulator about to start: the seed plus where to persist and how URLs are spelled.
pub struct Simulator {
    config: Config,
    state_file: Option<PathBuf>,
    public_url: Option<String>,
}

impl Simulator {
    /// A simulator of this seed, without persistence, with URLs based on the listen address.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state_file: None,
            public_url: None,
        }
    }

    /// Loads state from `path` at start (if it exists) and saves every change to it.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// The base of authorization URLs, e.g. `https://sim.example.com`.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Loads keys and state, binds `addr` (port 0 picks a free one) and serves in the background.
    pub async fn start(self, addr: SocketAddr) -> Result<RunningSimulator, SimulatorError> {
        // reqwest (notifications) is built without a crypto provider of its own; https notify
        // URLs need the process default, which may already be installed by the caller.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let keys = Keys::load(&self.config)?;
        let catalog = state::Catalog::new(&self.config)?;
        let data = match &self.state_file {
            Some(path) => persist::load(path)?.unwrap_or_default(),
            None => state::StateData::default(),
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimulatorError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind { addr, source })?;
        let public_url = self
            .public_url
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let (shutdown_tx, shutdown) = watch::channel(false);
        let dirty = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::new(catalog, data)),
            keys,
            faults: Mutex::new(faults::Faults::new(self.config.faults.clone())),
            stats: Mutex::new(control::Stats::default()),
            auto_grant: Mutex::new(self.config.auto_grant.clone()),
            public_url: public_url.clone(),
            notifier: notify::Notifier::new(self.config.notifications.clone()),
            dirty: dirty.clone(),
            shutdown: shutdown.clone(),
            config: self.config,
        });
        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            router(shared.clone()),
            shutdown.clone(),
        ))];
        if let Some(path) = self.state_file {
            tasks.push(tokio::spawn(persist::run(
                shared.clone(),
                path,
                dirty,
                shutdown,
            )));
        }
        Ok(RunningSimulator {
            addr,
            public_url,
            shutdown: shutdown_tx,
            tasks,
        })
    }
}

/// A simulator serving in the background. Dropping it stops it too, without waiting for the
/// final save.
pub struct RunningSimulator {
    addr: SocketAddr,
    public_url: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSimulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the endpoint to give the client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base of authorization URLs.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Stops serving (open connections and pending notifications are dropped) and saves the
    /// state one last time.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The keys: the Developer Center's signing key and each application's TSP public key.
struct Keys {
    dev_center: SigningKey,
    tsp: BTreeMap<String, VerifyingKey>,
}

impl Keys {
    fn load(config: &Config) -> Result<Self, SimulatorError> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| SimulatorError::KeyFile {
                path: path.clone(),
                source,
            })
        };
        let path = &config.dev_center_private_key_file;
        let dev_center = SigningKey::from_pem(&path.display().to_string(), &read(path)?)?;
        let mut tsp = BTreeMap::new();
        for app in &config.applications {
            let path = &app.tsp_public_key_file;
            let key = VerifyingKey::from_pem(&path.display().to_string(), &read(path)?)?;
            tsp.insert(app.client_id.clone(), key);
        }
        Ok(Self { dev_center, tsp })
    }
}

/// Everything the handlers share. Locks are std mutexes held for short, await-free sections.
pub(crate) struct Shared {
    config: Config,
    state: Mutex<state::State>,
    keys: Keys,
    faults: Mutex<faults::Faults>,
    stats: Mutex<control::Stats>,
    auto_grant: Mutex<AutoGrant>,
    public_url: String,
    notifier: notify::Notifier,
    /// Wakes the persister; notified on every state change.
    dirty: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn state(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> MutexGuard<'_, control::Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the state as changed so the persister saves it.
    fn changed(&self) {
        self.dirty.notify_one();
    }

    /// After grants or revocations: count them, persist, and notify each application.
    fn record_changes(self: &Arc<Self>, changes: Vec<state::Change>) {
        if changes.is_empty() {
            return;
        }
        self.changed();
        let mut stats = self.stats();
        for change in &changes {
            match change.status {
                crate::devcenter::wire::AuthorizationStatus::Active => stats.grants += 1,
                crate::devcenter::wire::AuthorizationStatus::Inactive => {
                    stats.deauthorizations += 1
                }
            }
        }
        drop(stats);
        for change in changes {
            notify::send(self, change);
        }
    }

    /// Runs a background task (auto-grant, notification) that ends with the simulator.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                () = stopped(shutdown) => {}
            }
        });
    }
}

/// Resolves when the simulator stops: `shutdown` was called or the `RunningSimulator` dropped.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop as well.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Every route of the simulator.
fn router(shared: Arc<Shared>) -> Router {
    let contract = openapi::CONTRACT_PATHS
        .iter()
        .fold(Router::new(), |routes, path| {
            routes.route(path, post(api::call))
        });
    Router::new()
        .merge(contract)
        .route("/consent/{id}", get(consent::show).post(consent::decide))
        .route("/openapi.json", get(openapi::json))
        .route("/openapi.yaml", get(openapi::yaml))
        .merge(control::routes())
        .layer(DefaultBodyLimit::max(server::MAX_BODY_BYTES))
        .with_state(shared)
}
