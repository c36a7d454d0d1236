//! Whether a cache already shows the operator's own last write of an object.
//!
//! A reconcile that acts (issues a URL, writes the Secret, publishes a transition's Event) must
//! not act on a copy older than the operator's last status write: it would repeat that
//! transition's side effects. Nor should it decide on a Secret cache that does not yet show the
//! Secret it just wrote: it would try to create it again, fail on the conflict and read it. The
//! watch that fills a cache delivers a write a moment after the API server answered it, so for
//! that moment the cache is behind. [`PendingWrites`] remembers the resourceVersion of each write
//! until the cache shows it, and tells a reconcile how the cached copy compares:
//!
//! - no write pending, or a cached copy with that version or a later one: [`Freshness::Current`];
//! - an older copy, or none: [`Freshness::Behind`]: the watch is still delivering, so the
//!   reconcile waits for it instead of asking the API server (the "expectations" of
//!   Kubernetes' own controllers);
//! - versions that cannot be ordered: [`Freshness::Unknown`], to be read again.
//!
//! Resource versions are ordered since Kubernetes 1.35 (KEP-5504, "Comparable Resource
//! Version"): decimal integers without leading zeros, of which the larger is the later. A server
//! that sends anything else (an aggregated API, an older storage) gets the safe answer.
//!
//! An entry goes only once the cache holds what it waits for: [`PendingWrites::observe`]
//! follows the watch *after* the reflector has stored each event (a reconcile between the two
//! would otherwise find no entry and the cache still old: the race that once repeated an
//! Authorized Event in CI), on deletion, and when a relist has replaced the whole cache. So
//! entries live only while the watch lags: a few per resource in flight, none in steady state.
//! For the same reason the copy to decide on is read from the cache after the lookup
//! ([`PendingWrites::freshness`]), never taken from before it: the copy a controller queued a
//! reconcile with can predate both the write and its entry's removal.

use std::{
    cmp::Ordering,
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use kube::{Resource, ResourceExt as _, runtime::watcher::Event};

/// How a cached copy compares with the operator's last write of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// It shows the operator's last write, or there is none pending.
    Current,
    /// It is older than the operator's last write (or missing), and the watch will bring it.
    Behind,
    /// The versions cannot be ordered.
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

/// How a cached copy at `version` compares with the operator's write at `written`.
fn compare(version: &str, written: &str) -> Freshness {
    match order(version, written) {
        Some(Ordering::Less) => Freshness::Behind,
        Some(_) => Freshness::Current,
        None if version == written => Freshness::Current,
        None => Freshness::Unknown,
    }
}

/// The resourceVersions of the operator's writes that the cache of one kind does not show yet,
/// by namespace and name.
pub(crate) struct PendingWrites<K> {
    versions: Mutex<HashMap<(String, String), String>>,
    kind: std::marker::PhantomData<fn(&K)>,
}

impl<K> Default for PendingWrites<K> {
    fn default() -> Self {
        Self {
            versions: Mutex::default(),
            kind: std::marker::PhantomData,
        }
    }
}

impl<K: Resource> PendingWrites<K> {
    /// Records an object as the API server returned it for the operator's write.
    pub(crate) fn wrote(&self, written: &K) {
        if let Some(version) = written.resource_version() {
            self.versions().insert(key(written), version);
        }
    }

    /// The cache's copy of `namespace/name`, as `read` returns it, and how it compares with the
    /// operator's last write of it.
    ///
    /// The pending write is looked up *before* the cache is read: an entry goes only after the
    /// cache shows its write, so a missing entry means any later read shows it. A copy read
    /// earlier (the one the controller queued the reconcile with, say) may predate both.
    pub(crate) fn freshness(
        &self,
        namespace: &str,
        name: &str,
        read: impl FnOnce() -> Option<Arc<K>>,
    ) -> (Freshness, Option<Arc<K>>) {
        let written = self
            .versions()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned();
        let cached = read();
        let Some(written) = written else {
            return (Freshness::Current, cached);
        };
        let freshness = cached
            .as_ref()
            .and_then(|c| c.meta().resource_version.as_deref())
            .map_or(Freshness::Behind, |version| compare(version, &written));
        (freshness, cached)
    }

    /// Follows the watch, after the cache has stored `event`: an entry goes once the cache shows
    /// its version or a later one, when the object is deleted, and when a relist has replaced the
    /// cache (its objects are only stored at `InitDone`).
    pub(crate) fn observe(&self, event: &Event<K>) {
        let mut versions = self.versions();
        match event {
            Event::Apply(object) => {
                let key = key(object);
                let version = object
                    .meta()
                    .resource_version
                    .as_deref()
                    .unwrap_or_default();
                let shown = versions
                    .get(&key)
                    .is_some_and(|written| compare(version, written) == Freshness::Current);
                if shown {
                    versions.remove(&key);
                }
            }
            Event::Delete(object) => {
                versions.remove(&key(object));
            }
            Event::InitDone => versions.clear(),
            Event::Init | Event::InitApply(_) => {}
        }
    }

    /// How many writes are pending.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.versions().len()
    }

    fn versions(&self) -> MutexGuard<'_, HashMap<(String, String), String>> {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key<K: Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;

    use super::*;

    fn secret(name: &str, version: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.namespace = Some("ns".into());
        secret.metadata.name = Some(name.into());
        secret.metadata.resource_version = Some(version.into());
        secret
    }

    fn freshness(writes: &PendingWrites<Secret>, cached: Option<&Secret>) -> Freshness {
        writes
            .freshness("ns", "s", || cached.cloned().map(Arc::new))
            .0
    }

    #[test]
    fn nothing_written_is_current() {
        let writes = PendingWrites::default();
        assert_eq!(freshness(&writes, None), Freshness::Current);
        assert_eq!(
            freshness(&writes, Some(&secret("s", "1"))),
            Freshness::Current
        );
    }

    #[test]
    fn the_cache_is_behind_until_it_shows_the_write() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "12"));
        assert_eq!(freshness(&writes, None), Freshness::Behind);
        assert_eq!(
            freshness(&writes, Some(&secret("s", "9"))),
            Freshness::Behind
        );
        assert_eq!(
            freshness(&writes, Some(&secret("s", "12"))),
            Freshness::Current
        );
        // Someone else's later write: the cache shows ours and theirs.
        assert_eq!(
            freshness(&writes, Some(&secret("s", "100"))),
            Freshness::Current
        );
        assert_eq!(
            writes.freshness("ns", "other", || None).0,
            Freshness::Current
        );
    }

    #[test]
    fn versions_that_cannot_be_ordered_are_unknown_unless_equal() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "2"));
        for odd in ["", "02", "2a", "-3"] {
            assert_eq!(
                freshness(&writes, Some(&secret("s", odd))),
                Freshness::Unknown,
                "{odd:?}"
            );
        }
        writes.wrote(&secret("s", "abc"));
        assert_eq!(
            freshness(&writes, Some(&secret("s", "abc"))),
            Freshness::Current
        );
    }

    #[test]
    fn resource_versions_order_as_numbers() {
        assert_eq!(order("9", "10"), Some(Ordering::Less));
        assert_eq!(order("100", "99"), Some(Ordering::Greater));
        assert_eq!(order("0", "0"), Some(Ordering::Equal));
        assert_eq!(order("007", "7"), None);
    }

    #[test]
    fn an_entry_goes_once_the_cache_shows_its_version_or_a_later_one() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "12"));
        writes.wrote(&secret("t", "12"));
        writes.observe(&Event::Apply(secret("s", "9")));
        assert_eq!(writes.len(), 2, "an older event keeps the entry");
        writes.observe(&Event::Apply(secret("s", "12")));
        writes.observe(&Event::Apply(secret("t", "13")));
        assert_eq!(writes.len(), 0);
    }

    /// The race a reconcile's own copy once lost: the watch stores the write, and its entry goes,
    /// right after the cache was read. Because the entry was looked up first, the old copy is
    /// still judged against the write (read first, it would have passed as current).
    #[test]
    fn the_entry_is_looked_up_before_the_cache_is_read() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "12"));
        let (freshness, _) = writes.freshness("ns", "s", || {
            let read = Some(Arc::new(secret("s", "9")));
            writes.observe(&Event::Apply(secret("s", "12")));
            read
        });
        assert_eq!(freshness, Freshness::Behind);
        assert_eq!(writes.len(), 0);
    }

    /// A relist's objects reach the cache only at `InitDone`: until then the old copies are
    /// still what a reconcile reads, and the entries must stay.
    #[test]
    fn a_relist_clears_the_entries_only_once_it_is_stored() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "12"));
        writes.observe(&Event::Init);
        writes.observe(&Event::InitApply(secret("s", "12")));
        assert_eq!(
            freshness(&writes, Some(&secret("s", "9"))),
            Freshness::Behind
        );
        writes.observe(&Event::InitDone);
        assert_eq!(writes.len(), 0);
    }

    #[test]
    fn deleted_objects_are_forgotten() {
        let writes = PendingWrites::default();
        writes.wrote(&secret("s", "12"));
        writes.observe(&Event::Delete(secret("s", "12")));
        assert_eq!(freshness(&writes, None), Freshness::Current);
    }
}
