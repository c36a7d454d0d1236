//! Whether the caches already show the operator's own last writes: of each AcqpAuthorization
//! ([`LastWrites`]) and of the token Secrets ([`SecretWrites`]).
//!
//! A reconcile that acts (issues a URL, writes the Secret, publishes a transition's Event) must
//! not act on a copy older than the operator's last status write: it would repeat that
//! transition's side effects. The watch that fills the cache delivers a write a moment after the
//! API server answered it, so for that moment the cache is behind. [`LastWrites`] remembers, per
//! resource, the resourceVersion of the operator's last write (or fresh read) and, until the
//! watch delivers it, the object the API server returned for the write. So a reconcile woken in
//! that moment (a grant notified right after the URL was issued, say) acts on the written object
//! instead of reading it again:
//!
//! - a cached copy with the last version or a later one, or of a resource the operator never
//!   wrote, is [`Latest::Cached`];
//! - a cached copy with the version the write replaced is behind by exactly that write:
//!   [`Latest::Written`];
//! - an older copy is [`Latest::Behind`]: the watch is still delivering, so the reconcile waits
//!   for it instead of asking the API server (the expectations of Kubernetes' own controllers);
//! - versions that cannot be ordered are [`Latest::Unknown`], to be read again.
//!
//! Resource versions are ordered since Kubernetes 1.35 (KEP-5504, "Comparable Resource
//! Version"): decimal integers without leading zeros, of which the larger is the later. A server
//! that sends anything else (an aggregated API, an older storage) gets the safe answer, a read.
//!
//! Versions live until the resource is deleted (one short string per resource) instead of being
//! dropped once the watch delivers them. The watch hands each event to its observers and to the
//! cache one after the other, so a reconcile running between the two found the entry gone and
//! the cache still old: the race that once repeated an Authorized Event in CI. The written
//! object is dropped when the watch delivers its version; a reconcile in that gap finds the
//! cache behind and waits a moment for it, which risks nothing.

use std::{
    cmp::Ordering,
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{ResourceExt as _, runtime::watcher::Event};

use crate::api::AcqpAuthorization;

/// The newest copy of a resource the operator can prove, for [`LastWrites::latest`].
#[derive(Clone, Debug)]
pub(crate) enum Latest {
    /// The cached copy shows the operator's last write or read.
    Cached,
    /// The cache is one write behind: this is what the API server returned for that write.
    Written(Arc<AcqpAuthorization>),
    /// The cache is older than the operator's last write, and the watch will bring it: decide
    /// again in a moment.
    Behind,
    /// The versions cannot be ordered: read it again.
    Unknown,
}

/// How two resourceVersions of one kind are ordered (KEP-5504): decimal integers without
/// leading zeros, the longer one being the larger. `None` when either is not of that form.
fn order(a: &str, b: &str) -> Option<Ordering> {
    let comparable = |v: &str| {
        !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) && (v == "0" || !v.starts_with('0'))
    };
    (comparable(a) && comparable(b)).then(|| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

/// What the operator last wrote or read of one resource.
struct Entry {
    version: String,
    /// Until the watch delivers `version`: the version the write replaced, and the written
    /// object.
    in_flight: Option<(String, Arc<AcqpAuthorization>)>,
}

/// The operator's last write or read of each AcqpAuthorization, by UID.
#[derive(Default)]
pub(crate) struct LastWrites(Mutex<HashMap<String, Entry>>);

impl LastWrites {
    /// How `cached` compares with what the operator last wrote or read of it.
    pub(crate) fn latest(&self, cached: &AcqpAuthorization) -> Latest {
        let Some(uid) = cached.metadata.uid.as_deref() else {
            return Latest::Unknown;
        };
        let entries = self.entries();
        let Some(entry) = entries.get(uid) else {
            return Latest::Cached;
        };
        let cached_version = cached
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default();
        match &entry.in_flight {
            Some((replaced, written)) if cached_version == replaced => {
                Latest::Written(written.clone())
            }
            _ => match order(cached_version, &entry.version) {
                Some(Ordering::Equal | Ordering::Greater) => Latest::Cached,
                Some(Ordering::Less) => Latest::Behind,
                None => Latest::Unknown,
            },
        }
    }

    /// Records a fresh read.
    pub(crate) fn saw(&self, object: &AcqpAuthorization) {
        self.record(object, None);
    }

    /// Records what the API server returned for a write made on `base`.
    pub(crate) fn wrote(&self, base: &AcqpAuthorization, mut written: AcqpAuthorization) {
        // The cache holds no managedFields either: a third of an object's size.
        written.managed_fields_mut().clear();
        let written = Arc::new(written);
        let in_flight = base
            .resource_version()
            .map(|replaced| (replaced, Arc::clone(&written)));
        self.record(&written, in_flight);
    }

    fn record(
        &self,
        object: &AcqpAuthorization,
        in_flight: Option<(String, Arc<AcqpAuthorization>)>,
    ) {
        if let (Some(uid), Some(version)) = (object.uid(), object.resource_version()) {
            self.entries().insert(uid, Entry { version, in_flight });
        }
    }

    /// Follows the watch: a delivered write's object is dropped, a deleted resource forgotten.
    pub(crate) fn observe(&self, event: &Event<AcqpAuthorization>) {
        let (Event::Apply(object) | Event::InitApply(object) | Event::Delete(object)) = event
        else {
            return;
        };
        let Some(uid) = object.metadata.uid.as_deref() else {
            return;
        };
        let mut entries = self.entries();
        if let Event::Delete(_) = event {
            entries.remove(uid);
        } else if let Some(entry) = entries.get_mut(uid)
            && object.metadata.resource_version.as_ref() == Some(&entry.version)
        {
            entry.in_flight = None;
        }
    }

    /// How many resources have an entry, and how many of those hold a written object.
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let entries = self.entries();
        let in_flight = entries.values().filter(|e| e.in_flight.is_some()).count();
        (entries.len(), in_flight)
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Token Secrets the operator wrote that its Secret cache does not show yet: the version
/// written, by namespace and name.
///
/// A reconcile woken again right after it wrote a Secret (a second notification of the same
/// grant) would otherwise find no Secret in the cache, try to create it, fail on the conflict
/// and read it: two requests for nothing. Entries go when the cache shows the write (this
/// follows the watch after the cache has stored each event), when the Secret is deleted, and on
/// a relist, so none outlives the moment the watch is behind.
#[derive(Default)]
pub(crate) struct SecretWrites(Mutex<HashMap<(String, String), String>>);

impl SecretWrites {
    /// Records a Secret as the API server returned it for the operator's write.
    pub(crate) fn wrote(&self, written: &Secret) {
        if let (Some(namespace), Some(version)) = (written.namespace(), written.resource_version())
        {
            self.entries()
                .insert((namespace, written.name_any()), version);
        }
    }

    /// Whether `cached`, the cache's copy of Secret `namespace/name`, is older than the
    /// operator's last write of it (or missing); versions that cannot be ordered are not.
    pub(crate) fn is_behind(&self, namespace: &str, name: &str, cached: Option<&Secret>) -> bool {
        let entries = self.entries();
        let Some(written) = entries.get(&(namespace.to_owned(), name.to_owned())) else {
            return false;
        };
        let Some(cached_version) = cached.and_then(|s| s.metadata.resource_version.as_deref())
        else {
            return true;
        };
        order(cached_version, written) == Some(Ordering::Less)
    }

    /// Follows the cache: an entry goes once the cache shows its version or a later one, or the
    /// Secret is gone; a relist starts afresh.
    pub(crate) fn observe(&self, event: &Event<Secret>) {
        let mut entries = self.entries();
        let object = match event {
            Event::Init => return entries.clear(),
            Event::Apply(object) | Event::InitApply(object) | Event::Delete(object) => object,
            Event::InitDone => return,
        };
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let shown = match (event, entries.get(&key), object.resource_version()) {
            (Event::Delete(_), _, _) => true,
            (_, Some(written), Some(version)) => order(&version, written) != Some(Ordering::Less),
            _ => false,
        };
        if shown {
            entries.remove(&key);
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<(String, String), String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`LastWrites::latest`] says of `cached`, as text: `cached`, `behind`, `unknown`, or
    /// `written <resourceVersion>`.
    fn latest(writes: &LastWrites, cached: &AcqpAuthorization) -> String {
        match writes.latest(cached) {
            Latest::Cached => "cached".into(),
            Latest::Behind => "behind".into(),
            Latest::Unknown => "unknown".into(),
            Latest::Written(object) => format!("written {}", object.resource_version().unwrap()),
        }
    }

    fn version(uid: &str, resource_version: &str) -> AcqpAuthorization {
        let mut object: AcqpAuthorization = serde_json::from_value(serde_json::json!({
            "apiVersion": "acqp-operator.io/v1alpha1",
            "kind": "AcqpAuthorization",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {
                "applicationRef": {"name": "demo"},
                "acqp": {"id": "ACQP_1"},
                "products": ["CashierPayment"],
            },
        }))
        .unwrap();
        object.metadata.uid = Some(uid.into());
        object.metadata.resource_version = Some(resource_version.into());
        object
    }

    #[test]
    fn a_resource_never_written_is_current() {
        assert_eq!(latest(&LastWrites::default(), &version("u", "1")), "cached");
    }

    #[test]
    fn the_cache_is_behind_until_it_holds_the_written_version() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "1"), version("u", "2"));
        assert_eq!(
            latest(&writes, &version("u", "1")),
            "written 2",
            "one write behind: the written object"
        );
        assert_eq!(latest(&writes, &version("u", "2")), "cached");
        // Someone else's later write: the cache shows ours and theirs.
        assert_eq!(latest(&writes, &version("u", "10")), "cached");
        writes.saw(&version("u", "10"));
        assert_eq!(latest(&writes, &version("u", "9")), "behind");
        assert_eq!(latest(&writes, &version("other", "1")), "cached");
    }

    #[test]
    fn a_copy_older_than_the_replaced_version_is_behind() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "2"), version("u", "3"));
        assert_eq!(latest(&writes, &version("u", "1")), "behind");
    }

    #[test]
    fn versions_that_cannot_be_ordered_are_read_again() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "1"), version("u", "2"));
        for odd in ["", "02", "2a", "-3"] {
            assert_eq!(latest(&writes, &version("u", odd)), "unknown", "{odd:?}");
        }
        writes.saw(&version("v", "abc"));
        assert_eq!(latest(&writes, &version("v", "abd")), "unknown");
    }

    #[test]
    fn resource_versions_order_as_numbers() {
        assert_eq!(order("9", "10"), Some(Ordering::Less));
        assert_eq!(order("100", "99"), Some(Ordering::Greater));
        assert_eq!(order("0", "0"), Some(Ordering::Equal));
        assert_eq!(order("007", "7"), None);
    }

    /// The CI race: the watch delivers the written version to its observers just before the
    /// cache stores it. Observing that event must not make the old cached copy look current;
    /// once the written object is dropped, that copy waits for the cache.
    #[test]
    fn observing_the_written_version_before_the_cache_stores_it_keeps_the_old_copy_stale() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "1"), version("u", "2"));
        writes.observe(&Event::Apply(version("u", "2")));
        assert_eq!(latest(&writes, &version("u", "1")), "behind");
        assert_eq!(latest(&writes, &version("u", "2")), "cached");
    }

    #[test]
    fn written_objects_are_held_only_until_the_watch_delivers_them() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "1"), version("u", "2"));
        writes.wrote(&version("v", "1"), version("v", "2"));
        assert_eq!(writes.len(), (2, 2));
        writes.observe(&Event::Apply(version("u", "2")));
        // An older event of v (a relist, say) does not drop v's newer write.
        writes.observe(&Event::InitApply(version("v", "1")));
        assert_eq!(writes.len(), (2, 1));
    }

    #[test]
    fn deleted_resources_are_forgotten() {
        let writes = LastWrites::default();
        writes.wrote(&version("u", "1"), version("u", "2"));
        writes.observe(&Event::Delete(version("u", "2")));
        assert_eq!(writes.len(), (0, 0));
    }

    fn secret(name: &str, version: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.namespace = Some("ns".into());
        secret.metadata.name = Some(name.into());
        secret.metadata.resource_version = Some(version.into());
        secret
    }

    #[test]
    fn a_secret_cache_without_the_operators_write_is_behind_until_the_watch_shows_it() {
        let writes = SecretWrites::default();
        assert!(
            !writes.is_behind("ns", "s", None),
            "never written: the cache decides"
        );
        writes.wrote(&secret("s", "12"));
        assert!(writes.is_behind("ns", "s", None));
        assert!(writes.is_behind("ns", "s", Some(&secret("s", "9"))));
        assert!(!writes.is_behind("ns", "s", Some(&secret("s", "12"))));
        assert!(!writes.is_behind("ns", "other", None));
        writes.observe(&Event::Apply(secret("s", "9")));
        assert!(
            writes.is_behind("ns", "s", None),
            "an older event keeps the entry"
        );
        writes.observe(&Event::Apply(secret("s", "13")));
        assert!(
            !writes.is_behind("ns", "s", None),
            "shown, then gone: the cache decides"
        );
    }

    #[test]
    fn a_deleted_or_relisted_secret_is_no_longer_waited_for() {
        let writes = SecretWrites::default();
        writes.wrote(&secret("s", "12"));
        writes.observe(&Event::Delete(secret("s", "12")));
        assert!(!writes.is_behind("ns", "s", None));
        writes.wrote(&secret("s", "14"));
        writes.observe(&Event::Init);
        assert!(!writes.is_behind("ns", "s", None));
    }
}
