//! Which AcqpAuthorizations claim each ACQP of each application, kept from the same watch events
//! that fill the cache. Finding a resource's rivals, or the resources a changed authorization
//! record concerns, is then a map lookup instead of a scan of every cached resource: with 10,000
//! resources the scan was most of the operator's CPU.
//!
//! The index only narrows the search: callers read the candidates from the cache and check them.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use kube::{ResourceExt as _, runtime::reflector::ObjectRef, runtime::watcher::Event};

use crate::api::AcqpAuthorization;

/// A resource's namespace and name: all the index keeps of it (an `ObjectRef` made from an object
/// also carries its UID and resourceVersion, which would double the index's size).
type Ref = (String, String);

fn ref_of(object: &AcqpAuthorization) -> Ref {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// What a resource claims: its namespace, its application and the ACQP ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClaimKey {
    pub(crate) namespace: String,
    pub(crate) application: String,
    pub(crate) acqp_id: String,
}

impl ClaimKey {
    fn of(object: &AcqpAuthorization) -> Self {
        Self {
            namespace: object.namespace().unwrap_or_default(),
            application: object.spec.application_ref.name.clone(),
            acqp_id: object.spec.acqp.id.clone(),
        }
    }
}

/// The index; updated by [`ClaimIndex::observe`] before the cache sees the same event.
#[derive(Debug, Default)]
pub(crate) struct ClaimIndex(RwLock<Index>);

#[derive(Debug, Default)]
struct Index {
    /// The names of the resources that claim each key: nearly always one, so a `Vec` (a
    /// `BTreeSet` would allocate a node of eleven for it).
    claimants: HashMap<Arc<ClaimKey>, Vec<String>>,
    claim_of: HashMap<Ref, Arc<ClaimKey>>,
    /// While the watch lists anew: what the list has returned so far.
    relisting: Option<Vec<(Ref, ClaimKey)>>,
}

impl ClaimIndex {
    /// Follows one watch event.
    pub(crate) fn observe(&self, event: &Event<AcqpAuthorization>) {
        let mut index = self.0.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Apply(object) => index.insert(ref_of(object), ClaimKey::of(object)),
            Event::Delete(object) => index.remove(&ref_of(object)),
            Event::Init => index.relisting = Some(Vec::new()),
            Event::InitApply(object) => {
                let entry = (ref_of(object), ClaimKey::of(object));
                index.relisting.get_or_insert_default().push(entry);
            }
            // The list is complete: whatever it did not return is gone.
            Event::InitDone => {
                let listed = index.relisting.take().unwrap_or_default();
                *index = Index::default();
                for (object, claim) in listed {
                    index.insert(object, claim);
                }
            }
        }
    }

    /// The resources that claim `claim`.
    pub(crate) fn claimants(&self, claim: &ClaimKey) -> Vec<ObjectRef<AcqpAuthorization>> {
        let index = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let names = index.claimants.get(claim).into_iter().flatten();
        names
            .map(|name| ObjectRef::new(name).within(&claim.namespace))
            .collect()
    }
}

impl Index {
    fn insert(&mut self, object: Ref, claim: ClaimKey) {
        if self
            .claim_of
            .get(&object)
            .is_some_and(|known| **known == claim)
        {
            return;
        }
        // A spec edit may move the resource to another claim.
        self.remove(&object);
        let claim = match self.claimants.get_key_value(&claim) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(claim),
        };
        let names = self.claimants.entry(claim.clone()).or_default();
        names.push(object.1.clone());
        self.claim_of.insert(object, claim);
    }

    fn remove(&mut self, object: &Ref) {
        let Some(claim) = self.claim_of.remove(object) else {
            return;
        };
        if let Some(names) = self.claimants.get_mut(&claim) {
            names.retain(|name| *name != object.1);
            if names.is_empty() {
                self.claimants.remove(&claim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(name: &str, acqp: &str) -> AcqpAuthorization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "acqp-operator.io/v1alpha1",
            "kind": "AcqpAuthorization",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {
                "applicationRef": {"name": "demo"},
                "acqp": {"id": acqp, "name": "Acme"},
                "products": ["CashierPayment"],
            },
        }))
        .unwrap()
    }

    fn names(index: &ClaimIndex, acqp: &str) -> Vec<String> {
        let claim = ClaimKey::of(&authorization("any", acqp));
        let mut names: Vec<String> = index
            .claimants(&claim)
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn follows_applies_edits_and_deletes() {
        let index = ClaimIndex::default();
        index.observe(&Event::Apply(authorization("a", "1")));
        index.observe(&Event::Apply(authorization("b", "1")));
        index.observe(&Event::Apply(authorization("c", "2")));
        assert_eq!(names(&index, "1"), ["a", "b"]);
        // b now claims ACQP 2.
        index.observe(&Event::Apply(authorization("b", "2")));
        assert_eq!(names(&index, "1"), ["a"]);
        assert_eq!(names(&index, "2"), ["b", "c"]);
        index.observe(&Event::Delete(authorization("c", "2")));
        assert_eq!(names(&index, "2"), ["b"]);
        assert!(names(&index, "3").is_empty());
    }

    #[test]
    fn a_relist_replaces_everything_once_complete() {
        let index = ClaimIndex::default();
        index.observe(&Event::Apply(authorization("gone", "1")));
        index.observe(&Event::Apply(authorization("kept", "1")));
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(authorization("kept", "1")));
        // Until the list is complete the old entries stay.
        assert_eq!(names(&index, "1"), ["gone", "kept"]);
        index.observe(&Event::InitApply(authorization("new", "2")));
        index.observe(&Event::InitDone);
        assert_eq!(names(&index, "1"), ["kept"]);
        assert_eq!(names(&index, "2"), ["new"]);
    }
}
