//! Whether a cached AcqpAuthorization already shows the operator's own last write.
//!
//! A reconcile that acts (issues a URL, writes the Secret, publishes a transition's Event) must
//! not act on a copy older than the operator's last status write: it would repeat that
//! transition's side effects. The watch that fills the cache delivers a write a moment after the
//! API server answered it, so for that moment the cache is behind. [`LastWrites`] remembers, per
//! resource, the resourceVersion of the operator's last write (or fresh read). A cached copy with
//! that version, or of a resource the operator never wrote, is fresh; any other version is read
//! again before acting.
//!
//! Entries live until the resource is deleted (one short string per resource) instead of being
//! dropped once the watch delivers the version. The watch hands each event to its observers and
//! to the cache one after the other, so a reconcile running between the two found the entry gone
//! and the cache still old: the race that once repeated an Authorized Event in CI.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use kube::{ResourceExt as _, runtime::watcher::Event};

use crate::api::AcqpAuthorization;

/// The resourceVersion of each AcqpAuthorization as the operator last wrote or read it, by UID.
#[derive(Default)]
pub(crate) struct LastWrites(Mutex<HashMap<String, String>>);

impl LastWrites {
    /// Whether `cached` is at least as new as what the operator last wrote or read of it.
    pub(crate) fn is_current(&self, cached: &AcqpAuthorization) -> bool {
        let Some(uid) = cached.metadata.uid.as_deref() else {
            return false;
        };
        self.versions()
            .get(uid)
            .is_none_or(|version| cached.metadata.resource_version.as_ref() == Some(version))
    }

    /// Records the version the API server just returned for a write or a read.
    pub(crate) fn saw(&self, object: &AcqpAuthorization) {
        if let (Some(uid), Some(version)) = (object.uid(), object.resource_version()) {
            self.versions().insert(uid, version);
        }
    }

    /// Follows the watch: a deleted resource is forgotten.
    pub(crate) fn observe(&self, event: &Event<AcqpAuthorization>) {
        if let Event::Delete(object) = event
            && let Some(uid) = object.metadata.uid.as_deref()
        {
            self.versions().remove(uid);
        }
    }

    /// How many resources have an entry.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.versions().len()
    }

    fn versions(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(LastWrites::default().is_current(&version("u", "1")));
    }

    #[test]
    fn the_cache_is_behind_until_it_holds_the_written_version() {
        let writes = LastWrites::default();
        writes.saw(&version("u", "2"));
        assert!(!writes.is_current(&version("u", "1")));
        assert!(writes.is_current(&version("u", "2")));
        // Someone else's later write: not provably fresh, so read again (and record that read).
        assert!(!writes.is_current(&version("u", "3")));
        writes.saw(&version("u", "3"));
        assert!(writes.is_current(&version("u", "3")));
        assert!(writes.is_current(&version("other", "1")));
    }

    /// The CI race: the watch delivers the written version to its observers just before the
    /// cache stores it. Observing that event must not make the old cached copy look current.
    #[test]
    fn observing_the_written_version_before_the_cache_stores_it_keeps_the_old_copy_stale() {
        let writes = LastWrites::default();
        writes.saw(&version("u", "2"));
        writes.observe(&Event::Apply(version("u", "2")));
        assert!(!writes.is_current(&version("u", "1")));
    }

    #[test]
    fn deleted_resources_are_forgotten() {
        let writes = LastWrites::default();
        writes.saw(&version("u", "2"));
        writes.observe(&Event::Delete(version("u", "2")));
        assert_eq!(writes.len(), 0);
    }
}
