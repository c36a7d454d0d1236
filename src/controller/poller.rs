//! The shared poller: one task per Ready application lists all its authorizations once per poll
//! interval and wakes only the AcqpAuthorizations whose remote record changed, so the Developer
//! Center sees O(pages) calls per interval however many resources there are. A notification
//! asks for the one acquirer it names; notifications that arrive while a call is under way are
//! served together by the next inquiry, filtered by their acquirer IDs.

use std::{collections::BTreeSet, num::NonZeroU32, sync::Arc, time::Duration};

use rand::Rng as _;
use tokio::{task::JoinHandle, time::Instant};

use super::{
    Context, backoff,
    registry::{AppKey, Application, Snapshot},
};
use crate::{
    api::duration,
    devcenter::{
        AuthorizationFilter, DevCenterClient, Error,
        wire::{AUTHORIZATION_INQUIRY_PATH, AuthorizationRecord},
    },
};

/// Records per `authorizations/inquiry` page, and acquirer IDs per filtered inquiry.
const PAGE_SIZE: NonZeroU32 = NonZeroU32::new(100).expect("100 is not zero");
/// The metrics label of this loop.
const CONTROLLER: &str = "poller";

/// Starts polling the application `key`; the task ends when the application is unregistered.
pub(crate) fn spawn(ctx: Arc<Context>, key: AppKey) -> JoinHandle<()> {
    tokio::spawn(run(ctx, key))
}

async fn run(ctx: Arc<Context>, key: AppKey) {
    let mut failures = 0;
    // The first list is due at once.
    let mut next_full_list = Instant::now();
    loop {
        let Some(app) = ctx.applications.get_key(&key) else {
            return;
        };
        let scope = tokio::select! {
            () = tokio::time::sleep_until(next_full_list) => Scope::All,
            () = app.refresh_requested() => Scope::Acquirers(app.take_notified()),
        };
        // Read again after the wait: the application's client or facts may have changed.
        let Some(app) = ctx.applications.get_key(&key) else {
            return;
        };
        // The application controller stops pollers of applications that are not Ready; this
        // covers a poll that was already due when that happened.
        let (true, Some(client)) = (app.is_ready(), app.client.clone()) else {
            return;
        };
        let scope = match scope {
            // Served already, by the inquiry that took them.
            Scope::Acquirers(ids) if ids.is_empty() => continue,
            // Until a full list has succeeded there is nothing to patch a partial answer into.
            Scope::Acquirers(_) if !app.snapshot_taken() => Scope::All,
            scope => scope,
        };
        // Every resource's override counts: computed only when the next full list is scheduled.
        let interval = || effective_interval(app.poll_interval, overrides(&ctx, &key));
        match poll(&ctx, &app, &client, &scope).await {
            Ok(()) => {
                failures = 0;
                if scope == Scope::All {
                    next_full_list =
                        Instant::now() + backoff::jittered(interval(), rand::rng().random());
                }
            }
            Err(error) => {
                failures += 1;
                ctx.metrics
                    .reconcile_failed(CONTROLLER, error.metric_label());
                tracing::warn!(
                    namespace = %key.namespace,
                    app = %key.name,
                    failures,
                    %error,
                    "listing authorizations failed; keeping the previous snapshot"
                );
                // A full list also covers the acquirers a failed inquiry was about. Retries
                // back off, but never wait longer than normal polling would.
                let retry = backoff::delay(failures).min(interval());
                next_full_list = next_full_list
                    .min(Instant::now() + backoff::jittered(retry, rand::rng().random()));
            }
        }
    }
}

/// Which records one poll asks for.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// Every record: the periodic list.
    All,
    /// The records of these acquirers, named by notifications.
    Acquirers(BTreeSet<String>),
}

/// Lists the records in `scope`, installs the new snapshot, then wakes the resources it
/// concerns.
async fn poll(
    ctx: &Context,
    app: &Application,
    client: &DevCenterClient,
    scope: &Scope,
) -> Result<(), Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let started = Instant::now();
    let listed = match scope {
        Scope::All => {
            client
                .list_all_authorizations(&AuthorizationFilter::default(), PAGE_SIZE)
                .await
        }
        Scope::Acquirers(ids) => inquire(client, ids).await,
    };
    let result = listed
        .as_ref()
        .map_or_else(Error::metric_label, |_| "success");
    ctx.metrics
        .observe_call(AUTHORIZATION_INQUIRY_PATH, result, started.elapsed());
    let listed: Snapshot = listed?
        .into_iter()
        .map(|record| (record.acquirer_id.clone(), record))
        .collect();
    // Installed before waking anyone, so a woken reconciler reads the new records.
    let (changed, records) = app.update_snapshot(|snapshot| match (scope, snapshot) {
        (Scope::Acquirers(ids), Some(snapshot)) => {
            let changed = patch(snapshot, ids, listed);
            (Some(changed), snapshot.len())
        }
        (_, snapshot) => {
            let changed = snapshot
                .as_ref()
                .map(|previous| changed_acquirers(previous, &listed));
            let records = listed.len();
            *snapshot = Some(listed);
            (changed, records)
        }
    });
    let woken: Vec<_> = match &changed {
        None => ctx.authorizations_of(&app.key),
        Some(changed) => changed
            .iter()
            .flat_map(|acqp_id| ctx.claimants(&app.key, acqp_id))
            .collect(),
    };
    match &changed {
        None => tracing::info!(
            namespace = %app.key.namespace, app = %app.key.name, records,
            woken = woken.len(), "first authorization snapshot"
        ),
        Some(changed) if !changed.is_empty() => tracing::info!(
            namespace = %app.key.namespace, app = %app.key.name, changed = changed.len(),
            woken = woken.len(), "authorizations changed"
        ),
        Some(_) => tracing::debug!(app = %app.key.name, records, "no change"),
    }
    tracing::debug!(app = %app.key.name, ?changed, "changed acquirers");
    ctx.wake(woken.iter().map(AsRef::as_ref));
    Ok(())
}

/// The records of `ids`, in inquiries of at most a page of IDs each.
async fn inquire(
    client: &DevCenterClient,
    ids: &BTreeSet<String>,
) -> Result<Vec<AuthorizationRecord>, Error> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let mut records = Vec::new();
    for chunk in ids.chunks(PAGE_SIZE.get() as usize) {
        let filter = AuthorizationFilter {
            acquirer_ids: Some(chunk.to_vec()),
            ..Default::default()
        };
        records.extend(client.list_all_authorizations(&filter, PAGE_SIZE).await?);
    }
    Ok(records)
}

/// The `spec.pollInterval` overrides of the application's AcqpAuthorizations.
fn overrides(ctx: &Context, key: &AppKey) -> Vec<Duration> {
    ctx.authorizations_of(key)
        .iter()
        .filter_map(|a| a.spec.poll_interval.as_deref())
        .filter_map(|text| duration::parse(text).ok())
        .collect()
}

/// The application's interval, or the shortest override asked for by one of its resources:
/// polling is shared, so the most impatient resource sets the pace.
fn effective_interval(application: Duration, overrides: Vec<Duration>) -> Duration {
    overrides.into_iter().fold(application, Duration::min)
}

/// Replaces the records of `ids` with those `listed` (removing those it lacks) and returns the
/// acquirers whose record changed.
fn patch(
    snapshot: &mut Snapshot,
    ids: &BTreeSet<String>,
    mut listed: Snapshot,
) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for id in ids {
        let record = listed.remove(id);
        if differs(snapshot.get(id), record.as_ref()) {
            changed.insert(id.clone());
        }
        match record {
            Some(record) => snapshot.insert(id.clone(), record),
            None => snapshot.remove(id),
        };
    }
    changed
}

/// Acquirers whose record appeared, disappeared, or changed between two snapshots.
fn changed_acquirers(old: &Snapshot, new: &Snapshot) -> BTreeSet<String> {
    let gone = old.keys().filter(|id| !new.contains_key(*id));
    let appeared_or_changed = new
        .iter()
        .filter(|(id, record)| differs(old.get(*id), Some(record)))
        .map(|(id, _)| id);
    gone.chain(appeared_or_changed).cloned().collect()
}

/// Whether a record appeared, disappeared, or changed in status, products, token or update
/// time (a renamed acquirer changes nothing the operator acts on).
fn differs(old: Option<&AuthorizationRecord>, new: Option<&AuthorizationRecord>) -> bool {
    let products = |r: &AuthorizationRecord| r.products.iter().copied().collect::<BTreeSet<_>>();
    match (old, new) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.status != b.status
                || products(a) != products(b)
                || a.agent_token != b.agent_token
                || a.update_time != b.update_time
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::Product,
        devcenter::wire::{AgentToken, AuthorizationStatus},
    };

    fn record(id: &str, token: &str, products: &[Product]) -> AuthorizationRecord {
        AuthorizationRecord {
            acquirer_id: id.into(),
            acquirer_name: format!("Acquirer {id}"),
            status: AuthorizationStatus::Active,
            products: products.to_vec(),
            agent_token: AgentToken::new(token),
            authorized_time: "2026-01-01T00:00:00Z".parse().unwrap(),
            update_time: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn snapshot(records: impl IntoIterator<Item = AuthorizationRecord>) -> Snapshot {
        records
            .into_iter()
            .map(|r| (r.acquirer_id.clone(), r))
            .collect()
    }

    fn ids(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn unchanged_snapshots_wake_nobody() {
        let a = snapshot([record("1", "t1", &[Product::CashierPayment])]);
        let mut renamed = a.clone();
        renamed.get_mut("1").unwrap().acquirer_name = "Renamed".into();
        assert_eq!(changed_acquirers(&a, &renamed), ids(&[]));
    }

    #[test]
    fn product_order_is_not_a_change() {
        let old = snapshot([record(
            "1",
            "t",
            &[Product::CashierPayment, Product::AutoDebit],
        )]);
        let new = snapshot([record(
            "1",
            "t",
            &[Product::AutoDebit, Product::CashierPayment],
        )]);
        assert_eq!(changed_acquirers(&old, &new), ids(&[]));
    }

    #[test]
    fn every_kind_of_change_is_seen() {
        let base = [
            record("status", "t", &[Product::CashierPayment]),
            record("products", "t", &[Product::CashierPayment]),
            record("token", "t", &[Product::CashierPayment]),
            record("updated", "t", &[Product::CashierPayment]),
            record("gone", "t", &[Product::CashierPayment]),
            record("same", "t", &[Product::CashierPayment]),
        ];
        let old = snapshot(base.clone());
        let mut new = snapshot(base);
        new.get_mut("status").unwrap().status = AuthorizationStatus::Inactive;
        new.get_mut("products")
            .unwrap()
            .products
            .push(Product::AutoDebit);
        new.get_mut("token").unwrap().agent_token = AgentToken::new("t2");
        new.get_mut("updated").unwrap().update_time = "2026-02-01T00:00:00Z".parse().unwrap();
        new.remove("gone");
        new.insert("new".into(), record("new", "t", &[Product::AutoDebit]));
        assert_eq!(
            changed_acquirers(&old, &new),
            ids(&["status", "products", "token", "updated", "gone", "new"])
        );
    }

    #[test]
    fn a_patch_replaces_only_the_asked_records() {
        let mut current = snapshot([
            record("granted", "t1", &[Product::CashierPayment]),
            record("revoked", "t1", &[Product::CashierPayment]),
            record("same", "t1", &[Product::CashierPayment]),
            record("untouched", "t1", &[Product::CashierPayment]),
        ]);
        let listed = snapshot([
            record("granted", "t2", &[Product::CashierPayment]),
            record("same", "t1", &[Product::CashierPayment]),
            record("new", "t1", &[Product::AutoDebit]),
        ]);
        let asked = ids(&["granted", "revoked", "same", "new"]);
        let changed = patch(&mut current, &asked, listed);
        assert_eq!(changed, ids(&["granted", "new", "revoked"]));
        assert_eq!(current["granted"].agent_token, AgentToken::new("t2"));
        assert!(!current.contains_key("revoked"));
        assert!(current.contains_key("untouched"));
        assert!(current.contains_key("new"));
    }

    #[test]
    fn the_shortest_override_sets_the_pace() {
        let minute = Duration::from_secs(60);
        assert_eq!(effective_interval(minute, vec![]), minute);
        let overrides = vec![Duration::from_secs(90), Duration::from_secs(15)];
        assert_eq!(
            effective_interval(minute, overrides),
            Duration::from_secs(15)
        );
        assert_eq!(
            effective_interval(minute, vec![Duration::from_secs(300)]),
            minute
        );
    }
}
