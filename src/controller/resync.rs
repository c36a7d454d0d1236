//! The paced resync: every AcqpAuthorization in the cache is reconciled again about once per
//! [`RESYNC_PERIOD`], one at a time at an even pace, like controller-runtime's SyncPeriod.
//!
//! Settled resources (Ready, Stalled, paused) have nothing due, and a watch event, a poll that
//! changed their remote record or an application change wakes them when something happens. The
//! resync is the safety net for what no event reports. One task walking the cache costs one
//! timer however many resources there are, where a requeue per resource kept a timer entry and
//! a queued key each (about 6 MiB at N = 10,000), and the pace spreads the reconciles evenly
//! instead of letting resources created together come due together.

use std::{sync::Arc, time::Duration};

use kube::runtime::reflector::ObjectRef;

use super::Context;
use crate::api::AcqpAuthorization;

/// How long one pass over every resource takes. A steady-state reconcile reads only caches and
/// writes nothing, so a pass costs no API request.
pub const RESYNC_PERIOD: Duration = Duration::from_secs(600);

/// Runs passes until the context stops. The first pass starts one period after the cache is
/// filled: the initial list has just reconciled everything.
pub async fn run(ctx: Arc<Context>) {
    let passes = async {
        if ctx.authorizations.wait_until_ready().await.is_err() {
            return;
        }
        tokio::time::sleep(RESYNC_PERIOD).await;
        loop {
            // Names only: a resource deleted during the pass is not kept alive by it.
            let due: Vec<ObjectRef<AcqpAuthorization>> = ctx
                .authorizations
                .state()
                .iter()
                .map(|object| ObjectRef::from_obj(object.as_ref()))
                .collect();
            if due.is_empty() {
                tokio::time::sleep(RESYNC_PERIOD).await;
                continue;
            }
            let gap = pace(RESYNC_PERIOD, due.len());
            let waker = ctx.waker();
            for object in due {
                if waker.send(object).is_err() {
                    return; // the controller has stopped
                }
                tokio::time::sleep(gap).await;
            }
        }
    };
    tokio::select! {
        () = passes => {}
        () = ctx.stopped() => {}
    }
}

/// The gap between two resources so that a pass over `count` of them takes `period`; passes
/// follow each other, so each resource is looked at once per period.
fn pace(period: Duration, count: usize) -> Duration {
    let count = u32::try_from(count).unwrap_or(u32::MAX).max(1);
    period / count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_spreads_a_pass_over_the_period() {
        assert_eq!(
            pace(Duration::from_secs(600), 10_000),
            Duration::from_millis(60)
        );
        assert_eq!(pace(Duration::from_secs(600), 1), Duration::from_secs(600));
    }
}
