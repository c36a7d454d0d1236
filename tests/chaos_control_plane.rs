//! Control-plane faults (issue 9): kube-apiserver, then etcd, restart while authorizations
//! converge, and the operator, never restarted, must recover by itself.
//!
//! Its own test binary so that it gets its own control plane (`support::cluster()` is one per
//! binary): the restarts would disturb the other chaos runs if they shared one. 20 resources
//! under `make test`, 100 under `make chaos` (`ACQP_CHAOS_FULL=1`); see `tests/chaos.rs`.

#[path = "support/chaos.rs"]
mod chaos;
mod sim_support;
mod support;

use std::time::{Duration, Instant};

use chaos::{Sampler, World, calls, warnings};
use serde_json::json;
use support::{Component, Outage, operator::Operator};

/// Restarts `component` off the async runtime (the script blocks for seconds). kube-apiserver
/// does not exit on SIGTERM while the operator holds watches, so it gets SIGKILL after the
/// grace: 30 s as a kubelet's default in the full run, 5 s in the reduced one.
async fn restart(world: &World, component: Component) -> Outage {
    let cluster = world.cluster;
    let grace = Duration::from_secs(chaos::size(5, 30) as u64);
    tokio::task::spawn_blocking(move || cluster.restart_with_grace(component, grace))
        .await
        .unwrap()
}

/// Resources in three batches: the first converging when kube-apiserver restarts, the second
/// applied right after it (so the operator's watches must have recovered) and converging when
/// etcd restarts, the third applied after etcd is back. One operator process throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_restarts() {
    let n = chaos::size(20, 100);
    let (first, second) = (n / 2, n / 2 + n / 4);
    let world = World::new("chaos-control-plane", n).await;
    // Grants a second after each URL, so grants also land while the control plane is down.
    world
        .api
        .sim_ok(
            "/sim/auto-grant",
            &json!({"enabled": true, "delayMs": 1000}),
        )
        .await;
    let mut operator = Operator::start(world.cluster, world.options()).await;
    let pid = operator.pid();
    let sampler = Sampler::start(world.cluster, &world.ns);
    let start = Instant::now();
    world.apply_application("2s");
    world.apply_authorizations(0, first);

    // Mid-run: some URLs issued, not everything Ready.
    let urls_before = wait_urls(&world, 1, &operator).await;
    let ready_before = world.ready_count(0, first);
    let api = restart(&world, Component::KubeApiserver).await;
    assert!(
        operator.is_running(),
        "the operator exited when kube-apiserver restarted:\n{}",
        operator.logs()
    );
    let api_back = Instant::now();
    world.apply_authorizations(first, second);
    let urls_mid = wait_urls(&world, first + 1, &operator).await;
    // How soon the operator acts again once kube-apiserver serves: URL number first + 1 needs
    // a resource of the second batch, which only a re-listed watch shows.
    let resumed = api_back.elapsed();
    let ready_mid = world.ready_count(0, second);
    let etcd = restart(&world, Component::Etcd).await;
    assert!(
        operator.is_running(),
        "the operator exited when etcd restarted:\n{}",
        operator.logs()
    );
    let etcd_back = Instant::now();
    world.apply_authorizations(second, n);

    world
        .wait_ready_range(second, n, "applied after the etcd restart", || {
            operator.logs()
        })
        .await;
    let third_ready = etcd_back.elapsed();
    world
        .wait_all_ready(n, "after both restarts", || operator.logs())
        .await;
    let all_ready = start.elapsed();
    let since_api = api_back.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (samples, flips) = sampler.finish();
    assert!(
        operator.is_running(),
        "the operator exited after the restarts:\n{}",
        operator.logs()
    );
    assert_eq!(operator.pid(), pid);
    let stats = world.verify(n).await;
    let logs = operator.logs();
    let warned = warnings(&logs);
    println!(
        "CHAOS control plane: kube-apiserver restarted with {urls_before} URLs issued and \
         {ready_before}/{first} Ready, down {} ms (API ready again after {} ms), URL number {} \
         (more than the first batch holds) {} ms later; etcd restarted \
         with {urls_mid} URLs and {ready_mid}/{second} Ready, down {} ms (API ready again after \
         {} ms); resources applied after the etcd restart Ready {} ms after it; all {n} Ready \
         {} ms after apply ({} ms after kube-apiserver was back); operator pid {pid} throughout, \
         {} warnings logged; Ready samples {samples}, flips back {}; duplicate URLs 0; URLs \
         issued {}; calls {}",
        api.component.as_millis(),
        api.until_ready.as_millis(),
        first + 1,
        resumed.as_millis(),
        etcd.component.as_millis(),
        etcd.until_ready.as_millis(),
        third_ready.as_millis(),
        all_ready.as_millis(),
        since_api.as_millis(),
        warned.len(),
        flips.len(),
        stats["urlsIssued"],
        calls(&stats).1
    );
    assert!(flips.is_empty(), "Ready flipped back to False: {flips:?}");
    assert_eq!(stats["urlsIssued"], n, "{stats}");
}

/// Waits until the simulator has issued at least `at_least` URLs; returns how many it has.
async fn wait_urls(world: &World, at_least: usize, operator: &Operator) -> u64 {
    let start = Instant::now();
    loop {
        let urls = world.api.stats().await["urlsIssued"].as_u64().unwrap_or(0);
        if urls >= at_least as u64 {
            return urls;
        }
        assert!(
            start.elapsed() < world.converge,
            "only {urls} URLs issued after {:?} (waiting for {at_least}):\n{}\n----- operator \
             -----\n{}",
            world.converge,
            world.cluster.logs_tail(),
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
