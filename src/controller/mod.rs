//! `acqp-operator run`: the operator's runtime. Wires the Kubernetes client, the metrics and
//! notification servers, leader election, the DeveloperCenterApplication controller with its
//! pollers, and the AcqpAuthorization controller.

mod application;
pub mod authorization;
mod backoff;
mod claims;
mod context;
mod email;
mod freshness;
mod inventory;
mod invitation;
pub mod metrics;
mod namespaces;
mod notify;
mod poller;
pub mod registry;
mod resync;

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc, time::Duration};

use anyhow::Context as _;
use kube::runtime::reflector;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::{net::TcpListener, sync::watch};
use tracing_subscriber::EnvFilter;

pub use context::{Caches, Context, FIELD_MANAGER};
pub use metrics::Metrics;
pub use registry::{Application, Registry};

use crate::{
    api::AcqpAuthorization,
    devcenter::{
        RateLimit,
        policy::{AllowEntry, EndpointPolicy},
    },
};

/// How long stopping controllers may take before they are abandoned; below Kubernetes' default
/// 30 s termination grace period, so the lease is still released in time.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Command-line arguments of `acqp-operator run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Act only in these namespaces: repeat the flag or separate them with commas [default:
    /// all namespaces]. The operator watches exactly these, so it needs Roles only there.
    #[arg(long, value_name = "NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of the Developer Center notification endpoint (plain HTTP, path /notify).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8081")]
    pub notify_addr: SocketAddr,
    /// Run controllers only while holding a Lease, so several replicas never act at once.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader election Lease.
    #[arg(long, value_name = "NAME", default_value = "acqp-operator")]
    pub lease_name: String,
    /// Namespace of the leader election Lease [default: POD_NAMESPACE, then --namespace].
    #[arg(long, value_name = "NAMESPACE", env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Log format; the level comes from RUST_LOG [default: info].
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How many resources each controller reconciles at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: u16,
    /// Requests per second the operator sends to the Developer Center per application, at
    /// most (set it below the gateway's quota).
    #[arg(long, value_name = "RATE", default_value_t = RateLimit::default().requests_per_second)]
    pub devcenter_qps: NonZeroU32,
    /// Requests per application that may go at once after a quiet spell, above --devcenter-qps.
    #[arg(long, value_name = "N", default_value_t = RateLimit::default().burst)]
    pub devcenter_burst: NonZeroU32,
    /// What Developer Center endpoints and invitation webhooks may reach beyond public
    /// addresses (loopback, private, link-local and metadata addresses are refused otherwise):
    /// networks (127.0.0.0/8, fd00::/8), addresses, host names or *.domain; repeat the flag or
    /// separate entries with commas.
    #[arg(long, value_name = "ENTRY", value_delimiter = ',')]
    pub endpoint_allowlist: Vec<AllowEntry>,
}

impl RunArgs {
    fn rate_limit(&self) -> RateLimit {
        RateLimit {
            requests_per_second: self.devcenter_qps,
            burst: self.devcenter_burst,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines.
    Text,
}

/// Runs the operator until SIGTERM or SIGINT (a clean exit) or until it loses the leader lease
/// (an error, so the process restarts as a standby with fresh state).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format)?;
    let signal = shutdown_signal()?;
    let client = kube::Client::try_default()
        .await
        .context("cannot connect to the Kubernetes API")?;
    let metrics_listener = TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", args.metrics_addr))?;
    let notify_listener = TcpListener::bind(args.notify_addr)
        .await
        .with_context(|| format!("cannot listen on --notify-addr {}", args.notify_addr))?;

    // The caches are filled by the AcqpAuthorization controller's watches, which run only on
    // the leader: a standby holds no copy of the resources.
    let (authorizations, authorization_writer) = reflector::store();
    let (token_secrets, secret_writer) = reflector::store();
    let (mut ctx, wakes) = Context::new(
        client.clone(),
        namespaces::Scope::of(args.namespace.clone()),
        Caches {
            authorizations: authorizations.clone(),
            token_secrets,
        },
        args.concurrency,
        args.rate_limit(),
    );
    ctx.endpoint_policy = Arc::new(EndpointPolicy::allowing(args.endpoint_allowlist.clone()));
    let ctx = Arc::new(ctx);

    let (servers_stop, _) = watch::channel(false);
    let stopped = |stop: &watch::Sender<bool>| {
        let mut stop = stop.subscribe();
        async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        }
    };
    let (leading, leading_rx) = watch::channel(false);
    let health = metrics::HealthState {
        metrics: ctx.metrics.clone(),
        authorizations,
        applications: ctx.applications.clone(),
        leading: leading_rx.clone(),
    };
    let metrics_server = tokio::spawn(metrics::serve(
        metrics_listener,
        health,
        stopped(&servers_stop),
    ));
    let notify_state = notify::NotifyState {
        registry: ctx.applications.clone(),
        metrics: ctx.metrics.clone(),
        leading: leading_rx,
    };
    let notify_server = tokio::spawn(notify::serve(
        notify_listener,
        notify_state,
        stopped(&servers_stop),
    ));

    let writers = authorization::CacheWriters {
        authorizations: authorization_writer,
        token_secrets: secret_writer,
    };
    let outcome = lead(&args, client, ctx, wakes, writers, &leading, signal).await;

    servers_stop.send_replace(true);
    for (name, server) in [("metrics", metrics_server), ("notification", notify_server)] {
        match tokio::time::timeout(STOP_GRACE, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(server = name, %error, "server failed"),
            Ok(Err(error)) => tracing::warn!(server = name, %error, "server task failed"),
            Err(_) => tracing::warn!(server = name, "server did not stop in time"),
        }
    }
    outcome
}

/// Waits for leadership (when elected), runs the controllers until a signal or the loss of the
/// lease, stops them gracefully, and releases the lease.
async fn lead(
    args: &RunArgs,
    client: kube::Client,
    ctx: Arc<Context>,
    wakes: futures::stream::BoxStream<
        'static,
        kube::runtime::reflector::ObjectRef<AcqpAuthorization>,
    >,
    writers: authorization::CacheWriters,
    leading: &watch::Sender<bool>,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut signal = std::pin::pin!(signal);
    let mut lease = None;
    if args.leader_elect {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| args.namespace.first().cloned())
            .context("--leader-elect needs --lease-namespace (or POD_NAMESPACE, or --namespace)")?;
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("acqp-operator-{:016x}", rand::random::<u64>()));
        let manager = LeaseManagerBuilder::new(client, &args.lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_field_manager(format!("{FIELD_MANAGER}-{identity}"))
            // controller-runtime's 15 s: a standby re-reads the Lease only when the holder's
            // term runs out, even after a clean release, so the duration bounds every takeover.
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .with_context(|| format!("cannot use Lease {namespace}/{}", args.lease_name))?;
        let (mut is_leader, task) = manager.watch().await;
        tracing::info!(%identity, lease = %args.lease_name, %namespace, "waiting for leadership");
        let elected = tokio::select! {
            held = is_leader.wait_for(|held| *held) => held.map(|_| true),
            () = &mut signal => Ok(false),
        };
        if !elected.context("leader election stopped")? {
            drop(is_leader);
            let _ = task.await;
            return Ok(());
        }
        lease = Some((is_leader, task));
    }

    tracing::info!("leading: starting controllers");
    leading.send_replace(true);
    let mut controllers = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            tokio::join!(
                application::run(ctx.clone()),
                resync::run(ctx.clone()),
                authorization::run(ctx, wakes, writers),
            );
        }
    });
    let lost = async {
        match &mut lease {
            // An error means the election task ended, which also ends our leadership.
            Some((is_leader, _)) => drop(is_leader.wait_for(|held| !*held).await),
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        () = &mut signal => {
            tracing::info!("stopping on signal");
            Ok(())
        }
        () = lost => Err(anyhow::anyhow!("lost the leader lease; exiting so a fresh process can stand by")),
        result = &mut controllers => Err(anyhow::anyhow!("the controllers stopped unexpectedly: {result:?}")),
    };
    leading.send_replace(false);
    ctx.stop();
    if !controllers.is_finished()
        && tokio::time::timeout(STOP_GRACE, &mut controllers)
            .await
            .is_err()
    {
        tracing::warn!("controllers did not stop in time");
        controllers.abort();
    }
    if let Some((is_leader, task)) = lease {
        // Closing the channel makes the election task release the lease; the standby takes it
        // when it next looks, at most one lease duration later.
        drop(is_leader);
        match tokio::time::timeout(STOP_GRACE, task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader lease released"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "cannot release the leader lease"),
            Ok(Err(error)) => tracing::warn!(%error, "leader election task failed"),
            Err(_) => tracing::warn!("releasing the leader lease timed out"),
        }
    }
    outcome
}

fn init_tracing(format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl+C).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
