//! The namespaces the operator acts in: all of them, or exactly the ones it was given.
//!
//! With several namespaces there is one watch per namespace (the operator has Roles there and
//! no cluster-wide rights), merged into one stream for one cache. A reflector's cache treats
//! each list as the whole truth, so the per-namespace lists are rewritten: the first lists of
//! all namespaces together fill the cache once, and a later re-list of one namespace (after
//! its watch broke) becomes updates of what it lists and deletions of what the cache holds in
//! that namespace and the list no longer has.

use std::{
    collections::{HashMap, HashSet},
    fmt::Debug,
};

use futures::{StreamExt as _, stream::BoxStream};
use kube::{
    Api, Resource, ResourceExt as _,
    runtime::{
        WatchStreamExt as _,
        reflector::{ObjectRef, Store},
        watcher::{self, Event},
    },
};
use serde::de::DeserializeOwned;

use super::backoff::WatchBackoff;

/// Where the operator acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (a ClusterRole).
    All,
    /// Exactly these namespaces (a Role in each), sorted and without duplicates.
    Only(Vec<String>),
}

impl Scope {
    /// All namespaces when `namespaces` is empty, otherwise exactly those.
    pub fn of(mut namespaces: Vec<String>) -> Self {
        namespaces.sort();
        namespaces.dedup();
        if namespaces.is_empty() {
            Scope::All
        } else {
            Scope::Only(namespaces)
        }
    }

    /// A watch of `K` in scope, with backoff, consistent for a reflector whose reader is
    /// `cache` (which must be the cache the stream is reflected into).
    pub fn watch<K>(
        &self,
        client: &kube::Client,
        config: watcher::Config,
        cache: Store<K>,
    ) -> BoxStream<'static, Result<Event<K>, watcher::Error>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        match self {
            Scope::All => watcher(Api::all(client.clone()), config),
            Scope::Only(namespaces) if namespaces.len() == 1 => {
                watcher(Api::namespaced(client.clone(), &namespaces[0]), config)
            }
            Scope::Only(namespaces) => {
                let streams = namespaces.iter().map(|namespace| {
                    let api = Api::namespaced(client.clone(), namespace);
                    let namespace = namespace.clone();
                    watcher::watcher(api, config.clone())
                        .backoff(WatchBackoff::default())
                        .map(move |event| (namespace.clone(), event))
                        .boxed()
                });
                let mut merger = Merger {
                    unlisted: namespaces.iter().cloned().collect(),
                    relisted: HashMap::new(),
                    cache,
                    started: false,
                };
                futures::stream::select_all(streams)
                    .map(move |(namespace, event)| {
                        futures::stream::iter(merger.rewrite(&namespace, event))
                    })
                    .flatten()
                    .boxed()
            }
        }
    }
}

fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, Result<Event<K>, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config)
        .backoff(WatchBackoff::default())
        .boxed()
}

/// Turns the events of per-namespace watches into the events of one watch of all of them.
struct Merger<K: Resource<DynamicType = ()> + 'static> {
    /// Namespaces whose first list has not ended: until none is left, everything goes into
    /// the cache's first list.
    unlisted: HashSet<String>,
    /// What each namespace re-listing after its first list has listed so far.
    relisted: HashMap<String, HashSet<ObjectRef<K>>>,
    /// The reader of the cache the merged stream fills.
    cache: Store<K>,
    started: bool,
}

impl<K> Merger<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    fn rewrite(
        &mut self,
        namespace: &str,
        event: Result<Event<K>, watcher::Error>,
    ) -> Vec<Result<Event<K>, watcher::Error>> {
        let event = match event {
            Ok(event) => event,
            Err(error) => return vec![Err(error)],
        };
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(Event::Init);
        }
        let filling = !self.unlisted.is_empty();
        match event {
            Event::Init if !self.unlisted.contains(namespace) => {
                self.relisted.insert(namespace.to_owned(), HashSet::new());
            }
            Event::Init => {}
            // While the first lists run, every object goes into the cache's first list (a
            // namespace listed already may see changes before the others are done).
            Event::InitApply(object) | Event::Apply(object) if filling => {
                out.push(Event::InitApply(object));
            }
            Event::InitApply(object) => {
                if let Some(listed) = self.relisted.get_mut(namespace) {
                    listed.insert(ObjectRef::from_obj(&object));
                }
                out.push(Event::Apply(object));
            }
            Event::InitDone if self.unlisted.remove(namespace) => {
                if self.unlisted.is_empty() {
                    out.push(Event::InitDone);
                }
            }
            Event::InitDone => {
                // What the cache holds in this namespace and the re-list no longer has was
                // deleted while the watch was down.
                let listed = self.relisted.remove(namespace).unwrap_or_default();
                out.extend(
                    self.cache
                        .state()
                        .into_iter()
                        .filter(|object| {
                            object.namespace().as_deref() == Some(namespace)
                                && !listed.contains(&ObjectRef::from_obj(&**object))
                        })
                        .map(|object| Event::Delete((*object).clone())),
                );
            }
            other => out.push(other),
        }
        out.into_iter().map(Ok).collect()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::{api::ObjectMeta, runtime::reflector};

    use super::*;

    fn object(namespace: &str, name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// What the cache holds, as `namespace/name`.
    fn held(cache: &Store<ConfigMap>) -> Vec<String> {
        let mut names: Vec<String> = cache
            .state()
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap(), o.name_any()))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn per_namespace_lists_fill_one_cache_and_relists_delete_what_is_gone() {
        let (cache, mut writer) = reflector::store::<ConfigMap>();
        let mut merger = Merger {
            unlisted: ["a".to_owned(), "b".to_owned()].into(),
            relisted: HashMap::new(),
            cache: cache.clone(),
            started: false,
        };
        let mut feed = |namespace: &str, event: Event<ConfigMap>| {
            for event in merger.rewrite(namespace, Ok(event)) {
                writer.apply_watcher_event(&event.unwrap());
            }
        };
        feed("a", Event::Init);
        feed("a", Event::InitApply(object("a", "one")));
        feed("a", Event::InitDone);
        // a is listed, b not yet: a's change joins the first list rather than being lost
        // when the cache takes it.
        feed("a", Event::Apply(object("a", "two")));
        feed("b", Event::Init);
        feed("b", Event::InitApply(object("b", "three")));
        assert!(
            held(&cache).is_empty(),
            "filled only once every namespace listed"
        );
        feed("b", Event::InitDone);
        assert_eq!(held(&cache), ["a/one", "a/two", "b/three"]);
        // a's watch broke; meanwhile a/one was deleted and a/four created.
        feed("a", Event::Init);
        feed("a", Event::InitApply(object("a", "two")));
        feed("a", Event::InitApply(object("a", "four")));
        feed("a", Event::InitDone);
        assert_eq!(held(&cache), ["a/four", "a/two", "b/three"]);
        feed("b", Event::Delete(object("b", "three")));
        assert_eq!(held(&cache), ["a/four", "a/two"]);
    }
}
