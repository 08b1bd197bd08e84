//! The host at run time: the cache, the informers, the plugins, dispatch and
//! the action queue wired together, behind `informant run` and
//! `informant dev`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use crate::{
    action::{ActionQueue, Executor},
    cache::{self, Store},
    config::Config,
    dispatch::{self, Dispatcher, Lane},
    informer::subscriptions::Subscriptions,
    plugin::{self, Engine, LoadOptions, Plugin},
    settings::{self, SettingsError},
    shard::Scope,
};

/// Why a plugin file was not put in service. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read it")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The settings file beside the plugin is not valid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The plugin does not load.
    #[error("{path}: {source}")]
    Plugin {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: plugin::Error,
    },
    /// The plugin loaded but could not be put in service.
    #[error("{path}: {source}")]
    Dispatch {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dispatch::Error>,
    },
}

/// What shutting down left undone.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events queued for plugins and never handled.
    pub events_dropped: usize,
    /// Actions not executed within the grace period.
    pub actions_left: usize,
}

/// The running host.
pub struct Runtime {
    engine: Engine,
    cache: Arc<Store>,
    subscriptions: Arc<Subscriptions>,
    dispatcher: Arc<Dispatcher>,
    actions: Arc<ActionQueue>,
    config: Config,
    scope: Scope,
    /// The runtime the host runs on: where a replay goes, whichever thread
    /// asks for it.
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Start the host's parts against `client`; no plugin yet. With
    /// `config.dry_run`, actions are sent with `dryRun=All`.
    ///
    /// # Errors
    /// If the wasm engine cannot be set up.
    pub fn start(client: kube::Client, config: Config) -> Result<Self, plugin::Error> {
        Self::start_scoped(client, config, Scope::all())
    }

    /// [`Self::start`], working only on what `scope` admits: dispatch and
    /// the action queue pass through it (sharded mode).
    ///
    /// # Errors
    /// If the wasm engine cannot be set up.
    pub fn start_scoped(
        client: kube::Client,
        config: Config,
        scope: Scope,
    ) -> Result<Self, plugin::Error> {
        let engine = Engine::new(config.compile_cache_dir.as_deref())?;
        let cache = Arc::new(Store::new(cache::Config::default()));
        let subscriptions = Subscriptions::start(client.clone(), cache.clone());
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "informant".into());
        let executor = Executor::new(client, config.dry_run, instance);
        let actions = ActionQueue::start_fenced(
            executor,
            config.allowlist.clone(),
            config.actions.clone(),
            scope.clone(),
        );
        let dispatcher = Arc::new(
            Dispatcher::new(
                subscriptions.clone(),
                cache.clone(),
                actions.clone(),
                config.dispatch.clone(),
            )
            .scope(scope.clone()),
        );
        Ok(Self {
            engine,
            cache,
            subscriptions,
            dispatcher,
            actions,
            config,
            scope,
            handle: tokio::runtime::Handle::current(),
        })
    }

    /// What this replica works on: everything, or its buckets.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether it runs with leader election (unsharded).
    pub fn leader_election(&self) -> bool {
        self.config.leader.enabled && self.scope.shards().is_none()
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<Store> {
        &self.cache
    }

    /// The dispatcher and its lanes.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The action queue.
    pub fn actions(&self) -> &Arc<ActionQueue> {
        &self.actions
    }

    /// The subscriptions and their watches.
    pub fn subscriptions(&self) -> &Arc<Subscriptions> {
        &self.subscriptions
    }

    /// Load a plugin component with its settings and put it in service.
    /// Compiling happens on a blocking thread, off the event path.
    ///
    /// # Errors
    /// [`LoadError`], naming the file.
    pub async fn load_bytes(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        settings: serde_json::Value,
    ) -> Result<Arc<Lane>, LoadError> {
        let plugin = self.prepare(path, bytes, settings).await?;
        self.dispatcher
            .add(plugin)
            .await
            .map_err(|source| LoadError::Dispatch {
                path: path.to_path_buf(),
                source: Box::new(source),
            })
    }

    /// Compile, validate and initialise a plugin on a blocking thread,
    /// without putting it in service.
    ///
    /// # Errors
    /// [`LoadError`], naming the file.
    pub async fn prepare(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        settings: serde_json::Value,
    ) -> Result<Plugin, LoadError> {
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let config = self.config.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let options = load_options(&config, &engine, &bytes, settings);
            Plugin::load(&engine, &bytes, cache, options)
        })
        .await
        .map_err(|e| LoadError::Plugin {
            path: path.to_path_buf(),
            source: plugin::Error::Compile(format!("the loading task failed: {e}")),
        })?;
        loaded.map_err(|source| LoadError::Plugin {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Load `foo.wasm` and the settings beside it (`foo.json`, `foo.yaml`
    /// or `foo.toml`), and put it in service.
    ///
    /// # Errors
    /// [`LoadError`], naming the file.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<Lane>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let settings = settings::beside(path)?;
        self.load_bytes(path, bytes, settings).await
    }

    /// Whether every subscribed watch has completed its first list.
    pub async fn synced(&self) -> bool {
        self.subscriptions.informers().all_synced().await
    }

    /// Stop: no new events; running calls and pending actions get `grace`
    /// to finish; what is left is logged and reported.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let events_dropped = self.dispatcher.shutdown(grace).await;
        let left = self.actions.shutdown(grace).await;
        self.subscriptions.shutdown();
        ShutdownReport {
            events_dropped,
            actions_left: left.len(),
        }
    }
}

/// Actions execute only while this replica leads. On becoming leader the
/// plugins get a fresh initial sync, so the new leader acts on the current
/// state, including whatever happened while another replica led.
impl crate::leader::Follower for Runtime {
    fn set_leading(&self, leading: bool) {
        let was = self.actions.is_active();
        self.actions.set_active(leading);
        if leading && !was {
            let dispatcher = self.dispatcher.clone();
            tokio::spawn(async move { dispatcher.replay_all().await });
        }
    }
}

/// Sharded mode: plugins are called only for the objects of the buckets
/// this replica holds. It joins once every plugin has started (its watches
/// synced), so that a bucket's replay sees the whole bucket; a bucket taken
/// is replayed to the plugins from the cache, like a new leader's initial
/// sync but for that bucket's objects only.
impl crate::shard::Follower for Runtime {
    fn ready(&self) -> bool {
        self.dispatcher.lanes().iter().all(|l| l.started())
    }

    fn gained(&self, buckets: &[u16]) {
        let dispatcher = self.dispatcher.clone();
        let buckets = buckets.to_vec();
        self.handle
            .spawn(async move { dispatcher.replay_buckets(&buckets).await });
    }

    fn lost(&self, buckets: &[u16]) {
        // The fence already keeps their events and actions out.
        tracing::debug!(?buckets, "sharding: no longer working on these buckets");
    }
}

/// How `config` has a plugin loaded: its limits and ceiling (its own, if the
/// configuration names it), and its settings. What `informant run` does, and
/// what `informant check --config` checks.
pub fn load_options(
    config: &Config,
    engine: &Engine,
    bytes: &[u8],
    settings: serde_json::Value,
) -> LoadOptions {
    // Limits given to one plugin by name need the name first.
    let (limits, ceiling) = if config.plugin_limits.is_empty() {
        (config.limits.clone(), config.ceiling.clone())
    } else {
        plugin::describe(engine, bytes)
            .map(|m| config.limits_for(&m.name))
            .unwrap_or_else(|_| (config.limits.clone(), config.ceiling.clone()))
    };
    LoadOptions::default()
        .limits(limits)
        .ceiling(ceiling)
        .settings(settings)
}

/// Whether a directory entry is a plugin: `*.wasm`, not a dotfile.
pub fn is_plugin_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && path.extension().is_some_and(|e| e == "wasm") && path.is_file()
}
