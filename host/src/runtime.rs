//! The host at run time: the cache, the informers, the plugins, dispatch and
//! the action queue wired together, behind `informant run` and
//! `informant dev`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::{
    action::{ActionQueue, Executor},
    cache::{self, Store},
    config::Config,
    dispatch::{self, Dispatcher, Lane},
    informer::subscriptions::Subscriptions,
    plugin::{self, Engine, LoadOptions, Plugin},
    settings::{self, SettingsError},
    shard::Scope,
    source::Sources,
    state::{self, Leadership, Stores},
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
    /// The operator's allowlist does not grant what the plugin subscribes
    /// to or reads.
    #[error("{path}: {reason}")]
    Permission {
        /// The file (or reference).
        path: PathBuf,
        /// What is not granted.
        reason: String,
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
    sources: Sources,
    /// Every plugin's store, by name.
    stores: Arc<Stores>,
    /// Whether this replica writes the durable tier: fed by leader election
    /// (see `set_leading`).
    leadership: Arc<Leadership>,
    /// Stops the background work of the stores.
    stop: CancellationToken,
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
        let state_client = client.clone();
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
        // The durable tier writes while this replica leads (always, without
        // leader election): the gate is the one seam between the two.
        let leadership = Arc::new(Leadership::default());
        let stop = CancellationToken::new();
        let stores = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let cluster = state::Cluster {
                    client: state_client,
                    subscriptions: subscriptions.clone(),
                    namespace: crate::config::own_namespace(),
                    runtime: runtime.clone(),
                };
                let stores = Arc::new(Stores::new(
                    config.state.clone(),
                    cluster,
                    leadership.clone(),
                ));
                runtime.spawn(stores.clone().sweep(stop.clone()));
                stores
            }
            Err(_) => Arc::new(Stores::offline(config.state.clone())),
        };
        Ok(Self {
            engine,
            cache,
            subscriptions,
            dispatcher,
            actions,
            sources: Sources::default(),
            stores,
            leadership,
            stop,
            config,
            scope,
            handle: tokio::runtime::Handle::current(),
        })
    }

    /// Which source (a file, a Plugin object) runs each plugin name.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The compiling engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Every plugin's store.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    /// Whether this replica writes the durable state tier: set by leader
    /// election through [`crate::leader::Follower`], or in sharded mode by
    /// whoever holds the singleton.
    pub fn state_leadership(&self) -> &Arc<Leadership> {
        &self.leadership
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
        let options = {
            let (config, engine) = (self.config.clone(), self.engine.clone());
            move |bytes: &[u8]| load_options(&config, &engine, bytes, settings)
        };
        self.prepare_with(path, bytes, options, None).await
    }

    /// Compile, validate and initialise a plugin with the options `options`
    /// gives for its bytes, and check what it subscribes to and reads
    /// against `grants` (a Plugin object's) or else the operator's
    /// allowlist, without putting it in service.
    ///
    /// # Errors
    /// [`LoadError`], naming `path` (a file, or a reference).
    pub async fn prepare_with(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        options: impl FnOnce(&[u8]) -> LoadOptions + Send + 'static,
        grants: Option<&crate::action::Allowlist>,
    ) -> Result<Plugin, LoadError> {
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let stores = self.stores.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let options = options(&bytes).stores(stores);
            Plugin::load(&engine, &bytes, cache, options)
        })
        .await
        .map_err(|e| LoadError::Plugin {
            path: path.to_path_buf(),
            source: plugin::Error::Compile(format!("the loading task failed: {e}")),
        })?;
        let plugin = loaded.map_err(|source| LoadError::Plugin {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest = plugin.manifest().clone();
        let kinds = manifest
            .subscriptions
            .iter()
            .map(|s| (s.api_version.as_str(), s.kind.as_str()))
            .chain(
                manifest
                    .reads
                    .iter()
                    .chain(manifest.indexes.iter().map(|i| &i.kind))
                    .map(|k| (&*k.api_version, &*k.kind)),
            );
        let checked = match grants {
            Some(grants) => grants.check_reads(plugin.name(), kinds),
            None => self.actions.allowlist().check_reads(plugin.name(), kinds),
        };
        if let Err(reason) = checked {
            plugin.release_indexes();
            return Err(LoadError::Permission {
                path: path.to_path_buf(),
                reason,
            });
        }
        Ok(plugin)
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
        self.stop.cancel();
        self.subscriptions.shutdown();
        ShutdownReport {
            events_dropped,
            actions_left: left.len(),
        }
    }
}

/// Actions execute, and the durable state tier is written, only while this
/// replica leads. On becoming leader the plugins get a fresh initial sync,
/// so the new leader acts on the current state, including whatever happened
/// while another replica led; the store reads each of its objects afresh
/// before its first write in the new term.
impl crate::leader::Follower for Runtime {
    fn set_leading(&self, leading: bool) {
        let was = self.actions.is_active();
        self.leadership.set_leading(leading);
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
