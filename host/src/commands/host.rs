//! What `run` and `dev` share: the host started from a resolved
//! configuration, served over HTTP, and stopped within its grace period.

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;

use tokio_util::sync::CancellationToken;

use crate::{
    cli::HostArgs,
    config::Config,
    http, leader,
    reload::Reloader,
    runtime::Runtime,
    shard::{self, Scope, Shards},
};

/// Check the host arguments before anything starts: a bad config or a
/// missing plugin directory is an error now, not after a server is up.
pub(super) fn host_config(args: &HostArgs) -> anyhow::Result<Config> {
    Config::resolve(args.config.as_deref(), args.overrides()).context("invalid configuration")
}

/// Start the host's runtime, load the plugin directory and keep watching
/// it, and serve health, metrics and the admin API. Plugins that fail to
/// load are reported and skipped; the others run.
pub(super) async fn start_host(
    kube_config: kube::Config,
    config: Config,
    stop: &CancellationToken,
) -> anyhow::Result<Host> {
    let client =
        kube::Client::try_from(kube_config.clone()).context("building the Kubernetes client")?;
    let dir = config.plugin_dir.clone();
    let (dry_run, grace) = (config.dry_run, config.shutdown_grace);
    let leader_config = config.leader.clone();
    let (http_addr, admin_addr) = (config.http_addr, config.admin_addr);
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("informant-{}", uuid::Uuid::new_v4().simple()));
    let namespace = leader_config
        .lease_namespace
        .clone()
        .unwrap_or_else(own_namespace);
    let election = leader::Config::new(&leader_config.lease_name, &namespace, &identity).timing(
        leader_config.lease_duration,
        leader_config.renew_deadline,
        leader_config.retry_period,
    );
    let shards = config
        .sharding
        .clone()
        .map(|sharding| Shards::new(sharding, &identity));
    let scope = shards.clone().map_or_else(Scope::all, Scope::sharded);
    let runtime = Arc::new(
        Runtime::start_scoped(client.clone(), config, scope).context("starting the host")?,
    );
    // With --leader-elect (unsharded), only the leader executes actions.
    let elector = (shards.is_none() && leader_config.enabled).then(|| {
        // Nothing executes until the election says this replica leads.
        leader::Follower::set_leading(&*runtime, false);
        tracing::info!(lease = %leader_config.lease_name, %namespace, %identity, "leader election: actions run only while this replica leads");
        let token = CancellationToken::new();
        let task = tokio::spawn(leader::run(
            client.clone(),
            election.clone(),
            runtime.clone(),
            token.clone(),
        ));
        (task, token)
    });
    let mut reloader = None;
    if let Some(dir) = dir {
        let watcher = Reloader::start(runtime.clone(), dir.clone(), stop.clone())
            .await
            .with_context(|| format!("watching plugin directory {}", dir.display()))?;
        let statuses = watcher.statuses();
        let names: Vec<_> = statuses.iter().filter_map(|s| s.plugin.clone()).collect();
        let failed = statuses.iter().filter(|s| s.error.is_some()).count();
        tracing::info!(dir = %dir.display(), plugins = ?names, failed, "plugin directory loaded; watching it for changes");
        reloader = Some(watcher);
    }
    if dry_run {
        tracing::info!("dry run: actions are sent with dryRun=All and change nothing");
    }
    let state = http::AppState::new(runtime.clone(), reloader);
    let health = http::serve(http_addr, http::health_router(state.clone()), stop.clone())
        .await
        .context("serving health and metrics (--http-addr)")?;
    let admin = http::serve(admin_addr, http::admin_router(state), stop.clone())
        .await
        .context("serving the admin API (--admin-addr)")?;
    let names: Vec<_> = runtime
        .dispatcher()
        .lanes()
        .iter()
        .map(|l| l.name().to_string())
        .collect();
    say(&format!(
        "plugins: {}\nhealth and metrics at http://{health}/healthz /readyz /metrics\nadmin API at http://{admin}/api/v1/plugins",
        names.join(", ")
    ));
    // Sharded: the bucket coordinator joins once the plugins loaded above
    // have synced their watches; the leader Lease's holder is the singleton,
    // which does the cluster-wide work (`Shards::singleton`).
    let coordination = match shards {
        Some(shards) => {
            tracing::info!(lease = %leader_config.lease_name, %namespace, %identity, buckets = shards.config().buckets, "sharding: replicas share the work on bucket Leases; the leader Lease's holder does the cluster-wide work");
            Some(
                shard::Coordination::start(kube_config, election, shards, runtime.clone())
                    .context("starting sharded mode")?,
            )
        }
        None => None,
    };
    Ok(Host {
        runtime,
        elector,
        coordination,
        grace,
    })
}

/// A task of the host's and the token that stops it.
type Task = (tokio::task::JoinHandle<()>, CancellationToken);

/// Tell whoever started the host where it listens, on stdout. A long-running
/// host outlives its reader: a closed stdout is not a reason to stop.
pub(super) fn say(lines: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{lines}").and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "stdout is closed; the startup lines went to nobody");
    }
}

/// The running host, its leader election and its bucket coordinator, if any.
pub(super) struct Host {
    runtime: Arc<Runtime>,
    elector: Option<Task>,
    /// Sharded mode: the bucket and membership Leases, and the singleton.
    coordination: Option<shard::Coordination>,
    /// How long a shutdown may take.
    grace: Duration,
}

/// The namespace this Pod runs in, or `default` outside a cluster.
fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Wait for SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("listening for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")?;
    Ok(())
}

/// Shut the host down within the grace period and say what was left; then
/// hand the buckets over and release the Lease, so other replicas take over
/// at once.
pub(super) async fn stop_host(host: &mut Host) {
    tracing::info!("shutting down");
    let report = host.runtime.shutdown(host.grace).await;
    if let Some(coordination) = host.coordination.take() {
        coordination.stop().await;
    }
    if let Some((task, token)) = host.elector.take() {
        token.cancel();
        let _ = task.await;
    }
    if report.events_dropped > 0 || report.actions_left > 0 {
        tracing::warn!(
            events_not_handled = report.events_dropped,
            actions_not_executed = report.actions_left,
            "shutdown left work undone"
        );
    } else {
        tracing::info!("shutdown complete: nothing left undone");
    }
}
