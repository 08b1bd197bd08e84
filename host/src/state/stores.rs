//! Every plugin's store, by plugin name: a new version of a plugin (a hot
//! reload) finds the store its previous version used. The operator's
//! configuration decides each store's tier and quotas.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::{
    Request, Tier, WriteGate,
    durable::{self, Durable},
    gate::Leadership,
    quota::Quota,
    store::{Store, now_ms},
};
use crate::informer::subscriptions::Subscriptions;

/// How often expired entries are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One plugin's own settings in [`Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// The most this plugin gets (`memory` narrows it to memory).
    pub max_tier: Option<Tier>,
    /// Its default quotas.
    pub quota: Quota,
    /// The most its manifest may ask for (raised to its defaults).
    pub ceiling: Quota,
}

/// How the host keeps plugins' stores (`state:` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the durable tier's objects live; none: the host's namespace.
    pub namespace: Option<String>,
    /// The most any plugin gets: `memory` keeps every store in memory.
    pub max_tier: Tier,
    /// Every plugin's default quotas.
    pub quota: Quota,
    /// The most a manifest may ask for.
    pub ceiling: Quota,
    /// Settings for plugins by name.
    pub plugins: HashMap<String, PluginConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            max_tier: Tier::Durable,
            quota: Quota::default(),
            ceiling: Quota::ceiling(),
            plugins: HashMap::new(),
        }
    }
}

impl Config {
    /// The tier cap, default quotas and ceiling for plugin `name`.
    pub fn for_plugin(&self, name: &str) -> (Tier, Quota, Quota) {
        match self.plugins.get(name) {
            Some(p) => (
                p.max_tier.map_or(self.max_tier, |t| t.min(self.max_tier)),
                p.quota,
                p.ceiling,
            ),
            None => (self.max_tier, self.quota, self.ceiling),
        }
    }
}

/// What the durable tier needs of the cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The client its writes go through.
    pub client: kube::Client,
    /// The host's watches, which load and follow the objects.
    pub subscriptions: Arc<Subscriptions>,
    /// The namespace of the objects.
    pub namespace: String,
    /// The runtime the watches and writes run on.
    pub runtime: Handle,
}

/// A store opened for a version of a plugin being loaded, kept by
/// [`Stores::keep`] once the version has loaded: a version that fails to
/// load changes nothing.
#[derive(Debug)]
pub struct Opened {
    /// The store.
    pub store: Arc<Store>,
    quota: Quota,
    fresh: bool,
}

/// Every plugin's store.
pub struct Stores {
    config: Config,
    stores: Mutex<HashMap<String, Arc<Store>>>,
    cluster: Option<Cluster>,
    gate: Arc<dyn WriteGate>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("stores", &self.stores.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Stores {
    fn default() -> Self {
        Self::offline(Config::default())
    }
}

impl Stores {
    /// Stores without a cluster: every one in memory (`informant check`,
    /// `informant replay`).
    pub fn offline(config: Config) -> Self {
        Self {
            config,
            stores: Mutex::new(HashMap::new()),
            cluster: None,
            gate: Arc::new(Leadership::default()),
        }
    }

    /// Stores whose durable tier is kept in `cluster`, written while `gate`
    /// says so.
    pub fn new(config: Config, cluster: Cluster, gate: Arc<dyn WriteGate>) -> Self {
        Self {
            config,
            stores: Mutex::new(HashMap::new()),
            cluster: Some(cluster),
            gate,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store of plugin `name`, as a version of it being loaded asks
    /// for it: the one its previous version used (its quotas change when
    /// the version is kept), or a new one. A change of tier starts a new
    /// store (the old one's data stays where it was: in the cluster, or gone
    /// with memory).
    ///
    /// # Errors
    /// What the request asks beyond what the operator allows.
    pub fn open(&self, name: &str, request: &Request) -> Result<Opened, String> {
        let (max_tier, quota, ceiling) = self.config.for_plugin(name);
        let quota = quota.with_request(
            request.max_keys,
            request.max_value_bytes,
            request.max_total_bytes,
            &ceiling,
        )?;
        let mut tier = request.tier.min(max_tier);
        if tier < request.tier {
            tracing::info!(plugin.name = %name, asked = %request.tier, tier = %tier, "the configuration narrows the plugin's state tier");
        }
        if tier == Tier::Durable && self.cluster.is_none() {
            // Offline: the plugin runs as it would, with a store of its own.
            tier = Tier::Memory;
        }
        if tier == Tier::Durable {
            if quota.max_value_bytes > durable::MAX_VALUE_BYTES {
                return Err(format!(
                    "state.maxValueBytes is {} but the durable tier keeps values of at most {} bytes",
                    quota.max_value_bytes,
                    durable::MAX_VALUE_BYTES
                ));
            }
            if quota.max_total_bytes > durable::MAX_TOTAL_BYTES {
                return Err(format!(
                    "state.maxTotalBytes is {} but a durable store holds at most {} bytes",
                    quota.max_total_bytes,
                    durable::MAX_TOTAL_BYTES
                ));
            }
        }
        if let Some(store) = self.get(name).filter(|s| s.tier() == tier) {
            return Ok(Opened {
                store,
                quota,
                fresh: false,
            });
        }
        let store = match (tier, &self.cluster) {
            (Tier::Durable, Some(cluster)) => {
                let link = Durable::new(
                    name,
                    &self.namespace(cluster),
                    cluster.client.clone(),
                    self.gate.clone(),
                    cluster.runtime.clone(),
                    quota.max_total_bytes,
                );
                Store::durable(name, quota, link)
            }
            _ => Store::memory(name, quota),
        };
        Ok(Opened {
            store: Arc::new(store),
            quota,
            fresh: true,
        })
    }

    /// Keep a store opened for a version that has loaded: its quotas, and a
    /// new store in place of the old one (a durable one starts loading).
    pub fn keep(&self, opened: &Opened) {
        let store = &opened.store;
        store.set_quota(opened.quota);
        if !opened.fresh {
            return;
        }
        let old = self
            .stores
            .lock()
            .insert(store.plugin().to_string(), store.clone());
        if let Some(old) = old.filter(|o| !Arc::ptr_eq(o, store)) {
            tracing::warn!(plugin.name = %store.plugin(), from = %old.tier(), to = %store.tier(), "the plugin's state tier changed: it starts with the store of its new tier");
        }
        if let (Some(_), Some(cluster)) = (&store.durable, &self.cluster) {
            cluster.runtime.spawn(Durable::follow(
                store.clone(),
                cluster.subscriptions.clone(),
            ));
        }
    }

    fn namespace(&self, cluster: &Cluster) -> String {
        self.config
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.namespace.clone())
    }

    /// The store of plugin `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<Arc<Store>> {
        self.stores.lock().get(name).cloned()
    }

    /// Every store, by plugin name.
    pub fn all(&self) -> Vec<Arc<Store>> {
        let mut all: Vec<_> = self.stores.lock().values().cloned().collect();
        all.sort_by(|a, b| a.plugin().cmp(b.plugin()));
        all
    }

    /// Remove expired entries every few seconds until `stop`: from memory
    /// stores at once, from durable ones (while this replica writes)
    /// through a commit, on a blocking thread.
    pub async fn sweep(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            for store in self.all() {
                if store.durable.is_some() {
                    let swept = tokio::task::spawn_blocking(move || {
                        if let Some(d) = &store.durable {
                            d.sweep(&store);
                        }
                    });
                    let _ = swept.await;
                } else {
                    store.sweep_memory(now_ms());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_outlives_the_version_that_opened_it() {
        let stores = Stores::default();
        let a = stores.open("p", &Request::default()).unwrap();
        stores.keep(&a);
        let asks = Request {
            max_keys: Some(5),
            ..Request::default()
        };
        let b = stores.open("p", &asks).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store), "the same store");
        assert_ne!(
            a.store.quota().max_keys,
            5,
            "a version not kept changes nothing"
        );
        stores.keep(&b);
        assert_eq!(a.store.quota().max_keys, 5, "the kept version's quotas");
    }

    #[test]
    fn the_operator_narrows_tiers_and_caps_quotas() {
        let config = Config {
            plugins: HashMap::from([(
                "small".to_string(),
                PluginConfig {
                    max_tier: Some(Tier::Memory),
                    quota: Quota {
                        max_keys: 10,
                        ..Quota::default()
                    },
                    ceiling: Quota {
                        max_keys: 20,
                        ..Quota::ceiling()
                    },
                },
            )]),
            ..Config::default()
        };
        let (tier, quota, _) = config.for_plugin("small");
        assert_eq!((tier, quota.max_keys), (Tier::Memory, 10));
        let stores = Stores::offline(config);
        let err = stores
            .open(
                "small",
                &Request {
                    max_keys: Some(21),
                    ..Request::default()
                },
            )
            .unwrap_err();
        assert!(
            err.contains("state.maxKeys 21") && err.contains("at most 20"),
            "{err}"
        );
        let durable = Request {
            tier: Tier::Durable,
            ..Request::default()
        };
        assert_eq!(
            stores.open("small", &durable).unwrap().store.tier(),
            Tier::Memory
        );
    }
}
