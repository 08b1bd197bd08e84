//! The commands of the `informant` binary: start-up wiring, where errors
//! become messages for the user and exit codes.

use std::{
    fs::File,
    io::{BufReader, IsTerminal, Write},
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use crate::{
    cache::{self, Store},
    cli::{
        CheckArgs, Cli, Command, ConfigCommand, DevArgs, HostArgs, LogFormat, ReplayArgs, RunArgs,
    },
    config::Config,
    http, informer, leader,
    plugin::{Engine, Limits, LoadOptions, Plugin},
    reload::Reloader,
    replay::{self, Outcome},
    runtime::Runtime,
};
use anyhow::{Context, bail};
use clap::Parser;
use informant_apiserver::{self as devserver, ApiServer};
use informant_k8s::manifests;
use tracing_subscriber::EnvFilter;

/// Parse the command line, set up logging, run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.log_format, &cli.log.log);
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Replay(args) => run_replay(&args),
        Command::Dev(args) => dev(&args),
        Command::Run(args) => run(&args),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    // wasmtime and cranelift are chatty at debug; keep them quiet unless asked.
    let filter = format!("wasmtime=warn,cranelift=warn,{filter}");
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter {filter:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn read_plugin(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))
}

/// Load a plugin as `informant run` would (the configuration's limits and
/// ceiling, the settings beside it, `init`), print its manifest, and say
/// what it asks for beyond the host's defaults.
fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path).context("invalid configuration")?,
        None => Config::default(),
    };
    let bytes = read_plugin(&args.plugin)?;
    let settings = match &args.settings {
        Some(arg) => settings(Some(arg))?,
        None => crate::runtime::settings_beside(&args.plugin)?,
    };
    let engine = engine(
        args.compile_cache
            .dir
            .as_deref()
            .or(config.compile_cache_dir.as_deref()),
    )?;
    let options = crate::runtime::load_options(&config, &engine, &bytes, settings);
    let cache = Arc::new(Store::new(cache::Config::default()));
    let plugin = Plugin::load(&engine, &bytes, cache, options).with_context(|| {
        format!(
            "{} is not a plugin this host would run",
            args.plugin.display()
        )
    })?;
    println!("{}", serde_json::to_string_pretty(plugin.manifest())?);
    let resources = &plugin.manifest().resources;
    let (defaults, _) = config.limits_for(plugin.name());
    let mut asks = Vec::new();
    if let Some(mib) = resources.memory_mib {
        asks.push(format!(
            "{mib} MiB of memory (host default {} MiB)",
            defaults.memory_bytes >> 20
        ));
    }
    if let Some(ms) = resources.deadline_ms {
        asks.push(format!(
            "a {ms} ms deadline (host default {} ms)",
            defaults.deadline.as_millis()
        ));
    }
    if let Some(n) = resources.instances {
        asks.push(format!("at most {n} instance(s) at a time"));
    }
    eprintln!(
        "{}: loads as informant run{} would load it: {} {} (informant:plugin@{}), {}",
        args.plugin.display(),
        if args.config.is_some() {
            " --config"
        } else {
            ""
        },
        plugin.name(),
        plugin.manifest().version,
        plugin.contract_version(),
        if asks.is_empty() {
            "asks for nothing beyond the host's defaults".to_string()
        } else {
            format!("asks for {}", asks.join(", "))
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn engine(compile_cache: Option<&Path>) -> anyhow::Result<Engine> {
    Ok(match compile_cache {
        Some(dir) => Engine::with_cache_dir(dir)?,
        None => Engine::new()?,
    })
}

/// Settings given on the command line: JSON text, or `@FILE` (JSON, YAML
/// or TOML, read as the settings file beside a plugin is).
fn settings(arg: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let Some(arg) = arg else {
        return Ok(serde_json::Value::Null);
    };
    if let Some(path) = arg.strip_prefix('@') {
        return Ok(crate::runtime::read_settings(Path::new(path))?);
    }
    serde_json::from_str(arg).context("--settings is not valid JSON (use @FILE to read a file)")
}

fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_plugin(&args.plugin)?;
    let settings = settings(args.settings.as_deref())?;
    let cache = Arc::new(Store::new(cache::Config::default()));
    for path in &args.objects {
        for object in manifests::read_objects(path)? {
            cache
                .upsert(object)
                .with_context(|| format!("seeding the cache from {}", path.display()))?;
        }
    }
    let engine = engine(args.compile_cache.dir.as_deref())?;
    let limits = Limits::default()
        .deadline(Duration::from_millis(args.deadline_ms))
        .memory_bytes(args.memory_mib << 20);
    let options = LoadOptions::default()
        .limits(limits.clone())
        .ceiling(limits)
        .settings(settings)
        .max_idle_instances(1);
    let plugin = Plugin::load(&engine, &bytes, cache.clone(), options)
        .with_context(|| format!("loading plugin {}", args.plugin.display()))?;

    let events: Box<dyn std::io::BufRead> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(&args.events)
            .with_context(|| format!("opening events file {}", args.events.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut stdout = std::io::stdout().lock();
    let (mut failed, mut committed) = (0usize, 0usize);
    let mut write_error = None;
    replay::replay(&plugin, &cache, events, |outcome| match outcome {
        Outcome::Committed { line, actions, .. } => {
            for action in &actions {
                committed += 1;
                if let Err(e) = writeln!(stdout, "{}", replay::action_line(line, action)) {
                    write_error.get_or_insert(e);
                }
            }
        }
        Outcome::Failed {
            line,
            object,
            error,
        } => {
            failed += 1;
            // The host's words: its log says `plugin call failed` with these.
            eprintln!(
                "{}:{line}: plugin call failed: {object} ({}): {error}",
                args.events.display(),
                error.outcome()
            );
        }
        Outcome::Unmatched { line, object } => {
            eprintln!(
                "{}:{line}: {object}: no subscription of {} matches; skipped",
                args.events.display(),
                plugin.name()
            );
        }
    })
    .with_context(|| format!("replaying {}", args.events.display()))?;
    if let Some(e) = write_error {
        bail!("writing actions to stdout: {e}");
    }
    if failed > 0 {
        eprintln!("{failed} call(s) failed; {committed} action(s) committed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn config_check(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    println!(
        "{}: valid ({} plugin allowlist entries, actions {} QPS burst {}, leader election {})",
        file.display(),
        config.allowlist.len(),
        config.actions.qps,
        config.actions.burst,
        if config.leader.enabled { "on" } else { "off" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Check the host arguments before anything starts: a bad config or a
/// missing plugin directory is an error now, not after a server is up.
fn host_config(args: &HostArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).context("invalid configuration")?,
        None => Config::default(),
    };
    if let Some(dir) = &args.plugins {
        config.plugin_dir = Some(dir.clone());
    }
    if let Some(dir) = &args.compile_cache.dir {
        config.compile_cache_dir = Some(dir.clone());
    }
    if let Some(dir) = config.plugin_dir.as_ref().filter(|d| !d.is_dir()) {
        bail!("plugin directory {}: not a directory", dir.display());
    }
    if config.compile_cache_dir.is_some() && config.compile_cache_dir == config.plugin_dir {
        bail!(
            "--compile-cache must not be the plugin directory: nothing precompiled is ever loaded from there"
        );
    }
    Ok(config)
}

/// Start the host's runtime, load the plugin directory and keep watching
/// it, and serve health, metrics and the admin API. Plugins that fail to
/// load are reported and skipped; the others run.
async fn start_host(
    client: kube::Client,
    config: Config,
    args: &HostArgs,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Host> {
    let dir = config.plugin_dir.clone();
    let leader_config = config.leader.clone();
    let http_addr = args
        .http_addr
        .or(config.http_addr)
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 8080)));
    let admin_addr = args
        .admin_addr
        .or(config.admin_addr)
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8081)));
    let runtime = Arc::new(
        Runtime::start(client.clone(), config, args.dry_run).context("starting the host")?,
    );
    let elect = args.leader_elect || leader_config.enabled;
    let elector = elect.then(|| {
        let lease_name = leader_config
            .lease_name
            .clone()
            .filter(|_| args.lease_name == "informant")
            .unwrap_or_else(|| args.lease_name.clone());
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| leader_config.lease_namespace.clone())
            .unwrap_or_else(own_namespace);
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            format!("informant-{}", uuid::Uuid::new_v4().simple())
        });
        // Nothing executes until the election says this replica leads.
        leader::Follower::set_leading(&*runtime, false);
        let token = tokio_util::sync::CancellationToken::new();
        let election = leader::Config::new(&lease_name, &namespace, &identity).timing(
            leader_config.lease_duration,
            leader_config.renew_deadline,
            leader_config.retry_period,
        );
        tracing::info!(lease = %lease_name, %namespace, %identity, "leader election: actions run only while this replica leads");
        let task = tokio::spawn(leader::run(client, election, runtime.clone(), token.clone()));
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
    if args.dry_run {
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
    Ok(Host { runtime, elector })
}

/// Tell whoever started the host where it listens, on stdout. A long-running
/// host outlives its reader: a closed stdout is not a reason to stop.
fn say(lines: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{lines}").and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "stdout is closed; the startup lines went to nobody");
    }
}

/// The running host and its leader election, if any.
struct Host {
    runtime: Arc<Runtime>,
    elector: Option<(
        tokio::task::JoinHandle<()>,
        tokio_util::sync::CancellationToken,
    )>,
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
async fn shutdown_signal() -> anyhow::Result<()> {
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
/// release the Lease, so another replica leads at once.
async fn stop_host(host: &mut Host, grace_secs: u64) {
    tracing::info!("shutting down");
    let report = host.runtime.shutdown(Duration::from_secs(grace_secs)).await;
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

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = host_config(&args.host)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let options = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let kube_config = match &args.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .with_context(|| format!("using kubeconfig {}", path.display()))?
            }
            None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("loading the kubeconfig")?,
            None => kube::Config::infer()
                .await
                .context("no kubeconfig found and not running in a cluster")?,
        };
        let client =
            kube::Client::try_from(informer::client_config(kube_config, informer::IDLE_TIMEOUT))
                .context("building the Kubernetes client")?;
        let stop = tokio_util::sync::CancellationToken::new();
        let mut host = start_host(client, config, &args.host, &stop).await?;
        shutdown_signal().await?;
        stop.cancel();
        stop_host(&mut host, args.host.shutdown_grace).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn dev(args: &DevArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if let Some(dir) = args.manifests.as_ref().filter(|d| !d.is_dir()) {
        bail!("--manifests {}: not a directory", dir.display());
    }
    let mut host_config = host_config(&args.host)?;
    if args.server_only {
        host_config.plugin_dir = None;
    } else if host_config.plugin_dir.is_none() && crate::examples::available() {
        let dir = std::env::temp_dir().join("informant-dev").join("plugins");
        let dir = crate::examples::write_to(&dir)
            .with_context(|| format!("writing the example plugins into {}", dir.display()))?;
        host_config.plugin_dir = Some(dir);
    }
    runtime.block_on(async {
        let config = devserver::Config::default()
            .port(args.port)
            .fault_endpoint(args.faults);
        let server = ApiServer::start(config)
            .await
            .context("starting the embedded API server")?;
        let path = match &args.kubeconfig {
            Some(p) => p.clone(),
            None => {
                let dir = std::env::temp_dir().join("informant-dev");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                dir.join("kubeconfig")
            }
        };
        server.write_kubeconfig(&path)?;
        let mut seeder = devserver::seed::Seeder::new(server.storage().clone());
        let stop = tokio_util::sync::CancellationToken::new();
        match &args.manifests {
            Some(dir) => {
                for e in seeder.sync_dir(dir) {
                    tracing::error!(error = %e, "manifest not applied");
                }
                let (dir, stop) = (dir.clone(), stop.clone());
                tokio::spawn(async move {
                    if let Err(e) = devserver::seed::watch_dir(seeder, dir.clone(), stop).await {
                        tracing::error!(error = %e, dir = %dir.display(), "cannot watch the manifests directory; edits will not be picked up");
                    }
                });
            }
            None => {
                let samples = std::path::Path::new("samples/demo.yaml");
                seeder.sync_text(samples, include_str!("../../samples/demo.yaml")).context("seeding the sample objects")?;
            }
        }
        say(&format!(
            "embedded API server at {}\nKUBECONFIG={} kubectl get ns",
            server.url(),
            path.display()
        ));
        let mut host = match host_config.plugin_dir {
            Some(_) => {
                let url = server.url().parse().context("the server's URL")?;
                let config = informer::client_config(kube::Config::new(url), informer::IDLE_TIMEOUT);
                let client = kube::Client::try_from(config).context("building the client")?;
                let host = start_host(client, host_config, &args.host, &stop).await?;
                Some(host)
            }
            None => None,
        };
        shutdown_signal().await?;
        if let Some(host) = &mut host {
            stop_host(host, args.host.shutdown_grace).await;
        }
        stop.cancel();
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
