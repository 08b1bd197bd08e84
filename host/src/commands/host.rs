//! What `run` and `dev` share: the host started from a resolved
//! configuration, served over HTTP, and stopped within its grace period.

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;

use tokio_util::sync::CancellationToken;

use crate::{
    admission::{self, Admission},
    cli::HostArgs,
    config::{Config, own_namespace},
    http, leader,
    reload::Reloader,
    runtime::Runtime,
    shard::{self, Scope, Shards},
};

/// Check the host arguments before anything starts: a bad config or a
/// missing plugin directory is an error now, not after a server is up.
pub(super) fn host_config(args: &HostArgs) -> anyhow::Result<Config> {
    resolve(args, args.overrides())
}

/// The configuration from `args`' file and `overrides`.
pub(super) fn resolve(
    args: &HostArgs,
    overrides: crate::config::Overrides,
) -> anyhow::Result<Config> {
    Config::resolve(args.config.as_deref(), overrides).context("invalid configuration")
}

/// Start the host's runtime, load the plugin directory and keep watching
/// it, and serve health, metrics and the admin API. Plugins that fail to
/// load are reported and skipped; the others run.
pub(super) async fn start_host(
    kube_config: kube::Config,
    transport: crate::transport::Transport,
    config: Config,
    stop: &CancellationToken,
) -> anyhow::Result<Host> {
    let client = crate::transport::client(kube_config.clone(), transport)
        .context("building the Kubernetes client")?;
    let dir = config.plugin_dir.clone();
    let (dry_run, grace) = (config.dry_run, config.shutdown_grace);
    let leader_config = config.leader.clone();
    let (http_addr, admin_addr) = (config.http_addr, config.admin_addr);
    let admission_settings = config.admission.clone();
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
    // Who does the work that must happen once (registering webhooks,
    // writing durable plugin state): the leader Lease's holder, with leader
    // election or sharding; otherwise this replica, alone.
    let (singleton_tx, singleton) = tokio::sync::watch::channel(!leader_config.enabled);
    let singleton = match &shards {
        Some(shards) => {
            runtime.state_leadership().set_leading(false);
            follow_singleton(shards.singleton(), runtime.clone(), stop.clone());
            shards.singleton()
        }
        None => singleton,
    };
    // With --leader-elect (unsharded), only the leader executes actions.
    let elector = (shards.is_none() && leader_config.enabled).then(|| {
        // Nothing executes until the election says this replica leads.
        leader::Follower::set_leading(&*runtime, false);
        tracing::info!(lease = %leader_config.lease_name, %namespace, %identity, "leader election: actions run only while this replica leads");
        let token = CancellationToken::new();
        let task = tokio::spawn(leader::run(
            client.clone(),
            election.clone(),
            (runtime.clone(), singleton_tx),
            token.clone(),
        ));
        (task, token)
    });
    let plugin_objects = runtime.config().plugin_objects.enabled;
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
    if plugin_objects {
        crate::catalog::Catalog::start(
            runtime.clone(),
            client.clone(),
            own_namespace(),
            stop.clone(),
        )
        .await
        .context("watching Plugin objects (pluginObjects in the configuration)")?;
    }
    if dry_run {
        tracing::info!("dry run: actions are sent with dryRun=All and change nothing");
    }
    let webhooks = match admission_settings {
        Some(settings) => Some(start_admission(client, &runtime, settings, singleton).await?),
        None => None,
    };
    let state = http::AppState::with_admission(
        runtime.clone(),
        reloader,
        webhooks.as_ref().map(|w| w.admission.clone()),
    );
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
    if let Some(w) = &webhooks {
        say(&format!(
            "admission webhooks at https://{}/validate/PLUGIN and /mutate/PLUGIN",
            w.addr
        ));
    }
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
        webhooks,
    })
}

/// The webhook server and its registrar.
pub(super) struct Webhooks {
    admission: Arc<Admission>,
    /// Where the server listens.
    pub(super) addr: std::net::SocketAddr,
    registrar: Option<(
        tokio::task::JoinHandle<()>,
        tokio_util::sync::CancellationToken,
    )>,
    /// Stops the server (and the certificate reloads): last, on shutdown.
    serving: tokio_util::sync::CancellationToken,
}

/// Serve the plugins' webhooks and, where this replica holds `singleton`,
/// register them.
async fn start_admission(
    client: kube::Client,
    runtime: &Arc<Runtime>,
    settings: admission::Settings,
    singleton: admission::Singleton,
) -> anyhow::Result<Webhooks> {
    use admission::{Endpoint, configuration::Client, server};
    let namespace = crate::config::own_namespace();
    let endpoint = settings.endpoint();
    let hosts: Vec<String> = match &endpoint {
        Endpoint::Service {
            name,
            namespace: ns,
            ..
        } => {
            let ns = ns.as_deref().unwrap_or(&namespace);
            vec![
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}.svc.cluster.local"),
            ]
        }
        Endpoint::Url(Some(url)) => url_host(url).into_iter().collect(),
        Endpoint::Url(None) => Vec::new(),
    };
    let serving = tokio_util::sync::CancellationToken::new();
    let certs = admission::certs::Certificates::start(&settings.certificates, &hosts, &serving)
        .context("the webhook server's certificate")?;
    let tls = certs
        .server_config()
        .context("the webhook server's TLS configuration")?;
    let admission = Arc::new(Admission::new(
        runtime.dispatcher().clone(),
        settings.clone(),
    ));
    let addr = server::serve(
        settings.addr,
        tls,
        server::router(admission.clone()),
        serving.clone(),
    )
    .await
    .context("serving admission webhooks")?;
    let target = match endpoint {
        Endpoint::Url(Some(url)) => Client::Url(url),
        Endpoint::Url(None) => {
            let ip = if addr.ip().is_unspecified() {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            } else {
                addr.ip()
            };
            Client::Url(format!(
                "https://{}",
                std::net::SocketAddr::new(ip, addr.port())
            ))
        }
        Endpoint::Service {
            name,
            namespace: ns,
            port,
        } => Client::Service {
            name,
            namespace: ns.unwrap_or_else(|| namespace.clone()),
            port,
        },
    };
    let registrar = settings.register.then(|| {
        let token = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(admission::registrar::run(
            admission.clone(),
            client,
            certs.ca_bundle(),
            singleton,
            target.clone(),
            namespace,
            token.clone(),
        ));
        (task, token)
    });
    tracing::info!(%addr, endpoint = ?target, configuration = %settings.configuration_name, registers = settings.register, "admission webhooks served");
    Ok(Webhooks {
        admission,
        addr,
        registrar,
        serving,
    })
}

/// The host of an `https://host:port` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_string())
}
/// Sharded mode: the durable state tier writes while this replica holds
/// the singleton, as it follows the leader in --leader-elect mode.
fn follow_singleton(
    mut singleton: admission::Singleton,
    runtime: Arc<Runtime>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let leading = *singleton.borrow_and_update();
            runtime.state_leadership().set_leading(leading);
            tokio::select! {
                () = stop.cancelled() => return,
                changed = singleton.changed() => if changed.is_err() { return },
            }
        }
    });
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
    /// The webhook server and its registrar, if admission is on.
    webhooks: Option<Webhooks>,
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
    // Webhooks that point at this process go first, while it still serves.
    if let Some((task, token)) = host.webhooks.as_mut().and_then(|w| w.registrar.take()) {
        token.cancel();
        let _ = task.await;
    }
    let report = host.runtime.shutdown(host.grace).await;
    if let Some(coordination) = host.coordination.take() {
        coordination.stop().await;
    }
    if let Some(w) = &host.webhooks {
        w.serving.cancel();
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
