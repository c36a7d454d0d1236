//! What the operator knows about each DeveloperCenterApplication, shared by the application
//! controller (which writes it), the poller and notification endpoint (which refresh the
//! authorization snapshot) and the AcqpAuthorization reconciler (which reads it).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use tokio::{sync::Notify, task::JoinHandle};

use crate::{
    devcenter::{DevCenterClient, wire::AuthorizationRecord},
    reconcile::application::{ApplicationFacts, NotReadyReason, Readiness},
};

/// A DeveloperCenterApplication's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey {
    /// The application's namespace.
    pub namespace: String,
    /// The application's name.
    pub name: String,
}

impl ApplicationFacts {
    /// Whether the application's poller should run: while it is Ready, and while it is not
    /// Ready only because a list broke a bound (a later complete list is what clears that).
    pub(crate) fn polls(&self) -> bool {
        match &self.readiness {
            Readiness::Ready => true,
            Readiness::NotReady { reason, .. } => *reason == NotReadyReason::ContractViolation,
        }
    }

    /// These facts, but not Ready while the poller of `previous` (if it lists the same remote
    /// application as `source`) reports a contract violation: the violation outlives the
    /// application's own inquiry succeeding, until a complete list succeeds.
    pub(crate) fn with_poll_outcome(
        self,
        previous: Option<&Application>,
        source: &ClientSource,
    ) -> Self {
        let violation = previous
            .filter(|p| p.source.endpoint == source.endpoint && p.client_id == source.client_id)
            .and_then(Application::contract_violation);
        match (violation, &self.readiness) {
            (Some(violation), Readiness::Ready) => Self {
                readiness: Readiness::NotReady {
                    reason: NotReadyReason::ContractViolation,
                    message: format!(
                        "{violation}: the endpoint's answers exceed what the operator holds for \
                         one application; fix the server behind spec.endpoint (listing is \
                         retried with backoff, and this clears after a complete list)"
                    ),
                },
                ..self
            },
            _ => self,
        }
    }
}

/// Acquirers named by notifications and not yet served, at most [`MAX_NOTIFIED`] of them.
#[derive(Default)]
struct Notified {
    acquirers: BTreeSet<String>,
    /// More were named than fit: the next poll lists everything instead.
    overflowed: bool,
}

/// Acquirers remembered between two polls of one application; past this a full list serves
/// them all, which costs the same pages as asking for them by ID would.
pub(crate) const MAX_NOTIFIED: usize = 1000;

/// Every authorization record of one application, by acquirer ID.
pub(crate) type Snapshot = HashMap<String, AuthorizationRecord>;

/// The latest authorization snapshot and the poller's wake-up call; survives updates of the
/// application's facts, and is replaced only when the application points elsewhere.
#[derive(Default)]
struct PollState {
    snapshot: RwLock<Option<Snapshot>>,
    /// Acquirers named by notifications since the poller last looked.
    notified: Mutex<Notified>,
    wake: Notify,
    /// Why the latest list broke a bound of [`crate::devcenter::limits`], until a complete list.
    violation: Mutex<Option<String>>,
}

/// Where an application's client comes from: when it is unchanged, the client is reused, and
/// when the endpoint or Client ID is unchanged, so is the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientSource {
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    /// The credentials Secret's resourceVersion and key names.
    pub(crate) credentials: Option<(String, String, String)>,
}

/// One registered DeveloperCenterApplication.
pub struct Application {
    /// Its namespace and name.
    pub key: AppKey,
    /// Its Client ID.
    pub client_id: String,
    /// The signed client, when the credentials loaded (even if the application is not Ready).
    pub client: Option<DevCenterClient>,
    /// Readiness, role and integrated products.
    pub facts: ApplicationFacts,
    /// The application's own poll interval (AcqpAuthorizations may ask for a shorter one).
    pub poll_interval: Duration,
    /// Its SMTP server and TSP team (spec.notifications.email), if it has one.
    pub email: Option<crate::api::EmailSettings>,
    pub(crate) source: ClientSource,
    /// Consecutive checks that found it not Ready, for the application controller's backoff.
    pub(crate) failures: u32,
    /// When the Developer Center last answered the application controller's inquiry.
    pub(crate) last_answer: Option<jiff::Timestamp>,
    poll: Arc<PollState>,
}

impl Application {
    /// A new entry with no snapshot yet.
    pub(crate) fn new(
        key: AppKey,
        source: ClientSource,
        client: Option<DevCenterClient>,
        facts: ApplicationFacts,
        poll_interval: Duration,
    ) -> Self {
        Self {
            key,
            client_id: source.client_id.clone(),
            client,
            facts,
            poll_interval,
            email: None,
            source,
            failures: 0,
            last_answer: None,
            poll: Arc::default(),
        }
    }

    /// Whether the application is Ready.
    pub fn is_ready(&self) -> bool {
        self.facts.readiness == Readiness::Ready
    }

    /// Whether a full authorization list has succeeded; until then "no record" means "unknown",
    /// not "never granted", so no URL may be issued.
    pub fn snapshot_taken(&self) -> bool {
        self.read_snapshot().is_some()
    }

    /// The acquirer's record in the latest snapshot.
    pub fn record(&self, acquirer_id: &str) -> Option<AuthorizationRecord> {
        self.read_snapshot().as_ref()?.get(acquirer_id).cloned()
    }

    /// Asks the poller to look at one acquirer's record now (a notification named it). Calls
    /// made while the poller is busy coalesce into one inquiry for all of them; past
    /// [`MAX_NOTIFIED`] acquirers, into one full list.
    pub fn refresh_acquirer(&self, acquirer_id: &str) {
        {
            let mut notified = self.notified();
            if notified.acquirers.len() < MAX_NOTIFIED {
                notified.acquirers.insert(acquirer_id.to_owned());
            } else if !notified.acquirers.contains(acquirer_id) {
                notified.overflowed = true;
            }
        }
        self.poll.wake.notify_one();
    }

    /// Takes the acquirers named since the last call; `None` if more were named than are
    /// remembered, so everything must be listed.
    pub(crate) fn take_notified(&self) -> Option<BTreeSet<String>> {
        let Notified {
            acquirers,
            overflowed,
        } = std::mem::take(&mut *self.notified());
        (!overflowed).then_some(acquirers)
    }

    fn notified(&self) -> std::sync::MutexGuard<'_, Notified> {
        self.poll
            .notified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the latest list of this application broke a bound, if it did and no complete list
    /// has succeeded since.
    pub(crate) fn contract_violation(&self) -> Option<String> {
        self.violation().clone()
    }

    /// Records (`Some`) or clears (`None`) the poller's contract violation.
    pub(crate) fn set_contract_violation(&self, violation: Option<String>) {
        *self.violation() = violation;
    }

    fn violation(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.poll
            .violation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the snapshot (`None` until the first full list) under its lock, so readers see
    /// a change all at once; returns what `change` returns.
    pub(crate) fn update_snapshot<R>(&self, change: impl FnOnce(&mut Option<Snapshot>) -> R) -> R {
        let mut snapshot = self
            .poll
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut snapshot)
    }

    fn read_snapshot(&self) -> std::sync::RwLockReadGuard<'_, Option<Snapshot>> {
        self.poll
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves on the next [`Application::refresh_acquirer`] (or at once for one made
    /// meanwhile).
    pub(crate) async fn refresh_requested(&self) {
        self.poll.wake.notified().await;
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("key", &self.key)
            .field("client_id", &self.client_id)
            .field("facts", &self.facts)
            .field("snapshot_taken", &self.snapshot_taken())
            .finish_non_exhaustive()
    }
}

/// A poller task, stopped when its registry slot goes away.
struct PollerTask(JoinHandle<()>);

impl Drop for PollerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Slot {
    app: Arc<Application>,
    poller: Option<PollerTask>,
}

/// The registered applications; cheap to clone, clones share the map.
#[derive(Clone, Default)]
pub struct Registry {
    // A std lock: it is never held across an await.
    slots: Arc<RwLock<HashMap<AppKey, Slot>>>,
}

impl Registry {
    /// The application `namespace/name`, if the application controller has seen it.
    ///
    /// `None` means it does not exist or has not been loaded yet; the caller tells them apart by
    /// asking the API server.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Application>> {
        let key = AppKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        self.get_key(&key)
    }

    /// Every registered application, for the metrics computed at scrape time.
    pub(crate) fn applications(&self) -> Vec<Arc<Application>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.values().map(|slot| slot.app.clone()).collect()
    }

    pub(crate) fn get_key(&self, key: &AppKey) -> Option<Arc<Application>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).map(|slot| slot.app.clone())
    }

    /// The applications with this Client ID (several namespaces may share one).
    pub(crate) fn by_client_id(&self, client_id: &str) -> Vec<Arc<Application>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        let mut apps: Vec<_> = slots
            .values()
            .filter(|slot| slot.app.client_id == client_id)
            .map(|slot| slot.app.clone())
            .collect();
        apps.sort_by(|a, b| a.key.cmp(&b.key));
        apps
    }

    /// Registers `app`, keeping the previous entry's snapshot and poller if it has the same
    /// endpoint and Client ID; returns the previous entry.
    pub(crate) fn publish(&self, mut app: Application) -> Option<Arc<Application>> {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let key = app.key.clone();
        let mut poller = None;
        let previous = slots.remove(&key).map(|slot| {
            // Another endpoint or Client ID is another remote application: its snapshot and a
            // poller listing it would be wrong, so both start afresh.
            if slot.app.source.endpoint == app.source.endpoint
                && slot.app.client_id == app.client_id
            {
                app.poll = slot.app.poll.clone();
                poller = slot.poller;
            }
            slot.app
        });
        slots.insert(
            key,
            Slot {
                app: Arc::new(app),
                poller,
            },
        );
        previous
    }

    /// Starts a poller for `key` with `spawn` if `wanted` and none runs; stops it if not wanted.
    pub(crate) fn ensure_poller(
        &self,
        key: &AppKey,
        wanted: bool,
        spawn: impl FnOnce() -> JoinHandle<()>,
    ) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        let running = slot
            .poller
            .as_ref()
            .is_some_and(|task| !task.0.is_finished());
        if wanted && !running {
            slot.poller = Some(PollerTask(spawn()));
        } else if !wanted {
            slot.poller = None;
        }
    }

    /// Forgets an application (stopping its poller); returns whether it was registered.
    pub(crate) fn remove(&self, key: &AppKey) -> bool {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        slots.remove(key).is_some()
    }

    /// Forgets every application for which `keep` is false; returns their keys.
    pub(crate) fn retain(&self, keep: impl Fn(&AppKey) -> bool) -> Vec<AppKey> {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let gone: Vec<AppKey> = slots.keys().filter(|key| !keep(key)).cloned().collect();
        for key in &gone {
            slots.remove(key);
        }
        gone
    }
}
