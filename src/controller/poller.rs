//! The shared poller: one task per Ready application lists all its authorizations once per poll
//! interval and wakes only the AcqpAuthorizations whose remote record changed, so the Developer
//! Center sees O(pages) calls per interval however many resources there are. A notification
//! asks for the one acquirer it names; notifications that arrive while a call is under way are
//! served together by the next inquiry, filtered by their acquirer IDs.

use std::{
    collections::{BTreeSet, HashSet},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use rand::Rng as _;
use tokio::{task::JoinHandle, time::Instant};

use super::{
    Context, backoff,
    registry::{AppKey, Application, Snapshot},
};
use crate::{
    api::duration,
    devcenter::{
        AuthorizationFilter, DevCenterClient, Error, limits,
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
            () = app.refresh_requested() => match app.take_notified() {
                Some(acquirers) => Scope::Acquirers(acquirers),
                // More acquirers were named than are remembered: a full list serves them all.
                None => Scope::All,
            },
        };
        // Read again after the wait: the application's client or facts may have changed.
        let Some(app) = ctx.applications.get_key(&key) else {
            return;
        };
        // The application controller stops pollers of applications that are not Ready (but for
        // a contract violation, which only a later complete list clears); this covers a poll
        // that was already due when that happened.
        let (true, Some(client)) = (app.facts.polls(), app.client.clone()) else {
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
                    app.set_contract_violation(None);
                    next_full_list =
                        Instant::now() + backoff::jittered(interval(), rand::rng().random());
                }
            }
            Err(error) => {
                failures += 1;
                if let Error::OverLimit { .. } = error {
                    // Forgotten rather than kept half-patched: what the endpoint sent is not
                    // held past the bound, and until a complete list the application's
                    // resources act on nothing (they keep their Secrets and status). The
                    // application's Ready condition reports it at its next check.
                    app.update_snapshot(|snapshot| *snapshot = None);
                    app.set_contract_violation(Some(error.to_string()));
                }
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

/// Lists the records in `scope` into the application's snapshot, then wakes the resources
/// whose record changed (every resource of the application after the first list).
async fn poll(
    ctx: &Context,
    app: &Application,
    client: &DevCenterClient,
    scope: &Scope,
) -> Result<(), Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let started = Instant::now();
    // Records are installed before anyone is woken, so a woken reconciler reads them.
    let (changed, listed) = if app.snapshot_taken() {
        let mut changed = BTreeSet::new();
        let listed = refresh(app, client, scope, &mut changed).await;
        (Some(changed), listed)
    } else {
        (None, first_list(app, client).await)
    };
    let result = listed
        .as_ref()
        .map_or_else(Error::metric_label, |_| "success");
    ctx.metrics.observe_call(
        &app.key,
        AUTHORIZATION_INQUIRY_PATH,
        result,
        started.elapsed(),
    );
    // Also after a failure: the pages read before it may have changed records.
    let woken: Vec<_> = match &changed {
        None if listed.is_ok() => ctx.authorizations_of(&app.key),
        None => vec![],
        Some(changed) => changed
            .iter()
            .flat_map(|acqp_id| ctx.claimants(&app.key, acqp_id))
            .collect(),
    };
    let records = listed.as_ref().copied().unwrap_or_default();
    match &changed {
        None if listed.is_ok() => tracing::info!(
            namespace = %app.key.namespace, app = %app.key.name, records,
            woken = woken.len(), "first authorization snapshot"
        ),
        Some(changed) if !changed.is_empty() => tracing::info!(
            namespace = %app.key.namespace, app = %app.key.name, changed = changed.len(),
            woken = woken.len(), "authorizations changed"
        ),
        _ => tracing::debug!(app = %app.key.name, records, "no change"),
    }
    tracing::debug!(app = %app.key.name, ?changed, "changed acquirers");
    ctx.wake(woken.iter().map(AsRef::as_ref));
    listed.map(|_| ())
}

/// The first full list, installed only once complete: until then "no record" means "unknown",
/// not "never granted". Returns how many records it holds.
async fn first_list(app: &Application, client: &DevCenterClient) -> Result<usize, Error> {
    let listed = client
        .list_all_authorizations(&AuthorizationFilter::default(), PAGE_SIZE)
        .await?;
    let snapshot: Snapshot = listed
        .into_iter()
        .map(|record| (record.acquirer_id.clone(), record))
        .collect();
    let records = snapshot.len();
    app.update_snapshot(|slot| *slot = Some(snapshot));
    Ok(records)
}

/// Patches the snapshot with the records in `scope` page by page, as they arrive (a full list
/// of 10,000 records is never held next to the snapshot), noting in `changed` the acquirers
/// whose record changed. Once the answer is complete, the asked-for records it lacks are gone.
/// Returns how many records the snapshot holds.
async fn refresh(
    app: &Application,
    client: &DevCenterClient,
    scope: &Scope,
    changed: &mut BTreeSet<String>,
) -> Result<usize, Error> {
    let mut listed = HashSet::new();
    let mut visit = |page: Vec<AuthorizationRecord>| {
        app.update_snapshot(|snapshot| match snapshot {
            Some(snapshot) => apply_page(snapshot, page, &mut listed, changed),
            None => Ok(()),
        })
    };
    match scope {
        Scope::All => {
            client
                .for_each_authorization_page(&AuthorizationFilter::default(), PAGE_SIZE, &mut visit)
                .await?;
        }
        Scope::Acquirers(ids) => {
            let ids: Vec<String> = ids.iter().cloned().collect();
            for chunk in ids.chunks(PAGE_SIZE.get() as usize) {
                let filter = AuthorizationFilter {
                    acquirer_ids: Some(chunk.to_vec()),
                    ..Default::default()
                };
                client
                    .for_each_authorization_page(&filter, PAGE_SIZE, &mut visit)
                    .await?;
            }
        }
    }
    let asked = |id: &str| match scope {
        Scope::All => true,
        Scope::Acquirers(ids) => ids.contains(id),
    };
    Ok(app.update_snapshot(|snapshot| {
        snapshot.as_mut().map_or(0, |snapshot| {
            remove_unlisted(snapshot, asked, &listed, changed);
            snapshot.len()
        })
    }))
}

/// Puts one page of records into `snapshot`, noting which acquirers were listed and which
/// records changed. The snapshot keeps the records not listed yet until the answer is
/// complete, so new acquirers could push it past the records bound of one list: those are
/// refused, and the snapshot stays within [`limits::MAX_RECORDS_PER_APPLICATION`].
fn apply_page(
    snapshot: &mut Snapshot,
    page: Vec<AuthorizationRecord>,
    listed: &mut HashSet<String>,
    changed: &mut BTreeSet<String>,
) -> Result<(), Error> {
    for record in page {
        let id = record.acquirer_id.clone();
        if snapshot.len() as u64 >= limits::MAX_RECORDS_PER_APPLICATION
            && !snapshot.contains_key(&id)
        {
            return Err(Error::OverLimit {
                path: AUTHORIZATION_INQUIRY_PATH,
                bound: format!(
                    "the snapshot would hold more than the {} records the operator holds for \
                     one application",
                    limits::MAX_RECORDS_PER_APPLICATION
                ),
            });
        }
        if differs(snapshot.get(&id), Some(&record)) {
            changed.insert(id.clone());
        }
        snapshot.insert(id.clone(), record);
        listed.insert(id);
    }
    Ok(())
}

/// After a complete answer: removes the records that were `asked` for but not `listed`.
fn remove_unlisted(
    snapshot: &mut Snapshot,
    asked: impl Fn(&str) -> bool,
    listed: &HashSet<String>,
    changed: &mut BTreeSet<String>,
) {
    snapshot.retain(|id, _| {
        let gone = asked(id) && !listed.contains(id);
        if gone {
            changed.insert(id.clone());
        }
        !gone
    });
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

    /// What a complete answer of `pages` does to `snapshot` when `asked` names the records
    /// asked for (every record for a full list); returns the changed acquirers.
    fn answer(
        snapshot: &mut Snapshot,
        pages: Vec<Vec<AuthorizationRecord>>,
        asked: impl Fn(&str) -> bool,
    ) -> BTreeSet<String> {
        let (mut listed, mut changed) = (HashSet::new(), BTreeSet::new());
        for page in pages {
            apply_page(snapshot, page, &mut listed, &mut changed).unwrap();
        }
        remove_unlisted(snapshot, asked, &listed, &mut changed);
        changed
    }

    /// The changes a full list of `new` makes to `old`.
    fn changed_acquirers(old: &Snapshot, new: &Snapshot) -> BTreeSet<String> {
        let mut current = old.clone();
        let page = new.values().cloned().collect();
        let changed = answer(&mut current, vec![page], |_| true);
        assert_eq!(&current, new, "after a full list the snapshot is the list");
        changed
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
    fn a_targeted_answer_replaces_only_the_asked_records() {
        let mut current = snapshot([
            record("granted", "t1", &[Product::CashierPayment]),
            record("revoked", "t1", &[Product::CashierPayment]),
            record("same", "t1", &[Product::CashierPayment]),
            record("untouched", "t1", &[Product::CashierPayment]),
        ]);
        let pages = vec![
            vec![
                record("granted", "t2", &[Product::CashierPayment]),
                record("same", "t1", &[Product::CashierPayment]),
            ],
            vec![record("new", "t1", &[Product::AutoDebit])],
        ];
        let asked = ids(&["granted", "revoked", "same", "new"]);
        let changed = answer(&mut current, pages, |id| asked.contains(id));
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
