//! Dispatch: every event goes to the plugins whose subscriptions match it,
//! through one [`Lane`] per plugin.
//!
//! What a plugin is promised (the design is in `docs/delivery.md`):
//! no object's final state is ever lost; memory is bounded by objects, not
//! events; order per object, parallel across objects, never one object
//! twice at once; initial lists and resyncs are [`Cursor`]s over shared
//! snapshots; every-event is exact while the plugin keeps up, and past its
//! bound an object's pending events merge into its newest state (the plugin
//! is told how many); latest-state always merges. See [`EventQueue`].
//! Pushing into a lane never waits, so a slow plugin holds back nothing but
//! itself: not the informers, not the other plugins. A plugin that keeps
//! failing trips its [`Breaker`].
//!
//! A call's actions go to the [`ActionQueue`], except `requeue-after`, which
//! the lane keeps: after the delay the object comes back from the cache as
//! a `resync` event.

mod breaker;
mod cursor;
mod durations;
mod lane;
mod queue;
mod requeue;

pub use breaker::{Breaker, Circuit, CircuitState};
pub use cursor::Cursor;
pub use durations::{Distribution, Durations};
pub use lane::{CallFailure, Lane, LaneCounts, LaneStats, LaneStatus};
pub use queue::{Backlog, EventQueue, Job, Key, Pushed};

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use crate::{
    action::ActionQueue,
    cache::{Need, Store},
    informer::{
        FirstList, Notification,
        subscriptions::{Request, State, Subscriptions},
    },
    plugin::{Manifest, Plugin},
    shard::Scope,
    vocabulary::KindKey,
};

/// Why a plugin could not be added.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Plugin names are unique.
    #[error("a plugin named {0} is already loaded")]
    Duplicate(String),
}

/// How lanes behave.
#[derive(Debug, Clone)]
pub struct Config {
    /// Calls of one plugin at once.
    pub concurrency: usize,
    /// Pending events per plugin before the oldest are shed.
    pub queue_capacity: usize,
    /// Calls per event before it is given up.
    pub max_attempts: u32,
    /// Consecutive failed calls that open a plugin's circuit.
    pub breaker_threshold: u32,
    /// How long a circuit first stays open; doubles per failed trial.
    pub breaker_backoff: Duration,
    /// Longest a circuit stays open.
    pub breaker_max: Duration,
    /// Notifications buffered between an informer and a lane.
    pub intake_buffer: usize,
    /// Resync period for subscriptions that do not ask for one.
    pub default_resync: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            queue_capacity: 10_000,
            max_attempts: 3,
            breaker_threshold: 5,
            breaker_backoff: Duration::from_secs(1),
            breaker_max: Duration::from_secs(300),
            intake_buffer: 1024,
            default_resync: None,
        }
    }
}

impl Config {
    /// Set the calls of one plugin at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Set the pending events per plugin.
    #[must_use]
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }
}

/// Every plugin's lane, wired to the informers and the action queue.
pub struct Dispatcher {
    config: Config,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    subscriptions: Arc<Subscriptions>,
    cache: Arc<Store>,
    actions: Arc<ActionQueue>,
    /// Bumped whenever the set of plugins in service changes (one added,
    /// replaced or removed) and when a plugin starts (its watches synced):
    /// what follows the plugins (the webhook registrar) waits on it.
    changes: Arc<watch::Sender<u64>>,
    /// What this replica works on (every object, unless sharded).
    scope: Scope,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("lanes", &self.lanes.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with no plugin yet.
    pub fn new(
        subscriptions: Arc<Subscriptions>,
        cache: Arc<Store>,
        actions: Arc<ActionQueue>,
        config: Config,
    ) -> Self {
        Self {
            config,
            lanes: Mutex::new(HashMap::new()),
            subscriptions,
            cache,
            actions,
            changes: Arc::new(watch::Sender::new(0)),
            scope: Scope::all(),
        }
    }

    /// A receiver that sees a new value whenever a plugin is added,
    /// replaced, removed or starts.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The same dispatcher, working only on what `scope` admits.
    #[must_use]
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// The action queue behind the lanes.
    pub fn actions(&self) -> &Arc<ActionQueue> {
        &self.actions
    }

    /// Put a loaded plugin in service: a lane, and a subscription per
    /// manifest entry. Kinds not served yet stay pending and start by
    /// themselves; kinds discovery cannot resolve yet (the API server is
    /// down) hold the plugin's calls back until they can be watched.
    ///
    /// # Errors
    /// [`Error::Duplicate`] for a name in use, with nothing left behind.
    pub async fn add(&self, plugin: Plugin) -> Result<Arc<Lane>, Error> {
        let name = plugin.name().to_string();
        if self.lanes.lock().contains_key(&name) {
            plugin.release_indexes();
            return Err(Error::Duplicate(name));
        }
        let lane = self.build(plugin).await;
        let taken = {
            let mut lanes = self.lanes.lock();
            let taken = lanes.contains_key(&name);
            if !taken {
                lanes.insert(name.clone(), lane.clone());
            }
            taken
        };
        if taken {
            self.discard(&lane).await;
            return Err(Error::Duplicate(name));
        }
        tracing::info!(plugin.name = %name, digest = %lane.plugin().digest(), subscriptions = lane.plugin().manifest().subscriptions.len(), "plugin in service");
        changed(&self.changes);
        Ok(lane)
    }

    /// A lane for `plugin` with its watches started, not yet in the map.
    async fn build(&self, plugin: Plugin) -> Arc<Lane> {
        let subs = plugin.manifest().subscriptions.clone();
        let reads = cached_kinds(plugin.manifest());
        let store = plugin.state().cloned();
        let lane = Arc::new(Lane::new(
            plugin,
            self.config.clone(),
            self.actions.clone(),
            self.cache.clone(),
            self.changes.clone(),
            self.scope.clone(),
        ));
        lane.state.lock().unsynced = (0..subs.len() + reads.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        wait_for_store(&lane, store);
        // A plugin's calls start once every kind it watches is in the cache.
        // With one watch, that can be the list it is handed as it streams
        // in (it reads only what it has been handed of it); with more, a
        // call for one kind would see the others half-listed, so first lists
        // come whole. Sharded, a list is taken whole too, and only the
        // objects of the buckets held are delivered (Scope::retain_held).
        let first_list = if subs.len() + reads.len() == 1 && self.scope.shards().is_none() {
            FirstList::Streamed
        } else {
            FirstList::Whole
        };
        for (index, s) in subs.iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.config.intake_buffer);
            let request = Request {
                api_version: s.api_version.clone(),
                kind: s.kind.clone(),
                namespace: s.namespace.clone(),
                labels: s.label_selector.clone(),
                fields: s.field_selector.clone(),
                resync: s.resync.or(self.config.default_resync),
                need: Need::of(s.fields.iter().cloned()),
            };
            let index32 = u32::try_from(index).unwrap_or(u32::MAX);
            tokio::spawn(lane.clone().intake(index32, rx));
            self.watch(&lane, index32, request, tx, first_list).await;
        }
        for (j, kind) in reads.iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.config.intake_buffer);
            let watch = u32::try_from(subs.len() + j).unwrap_or(u32::MAX);
            tokio::spawn(lane.clone().watch_reads(watch, rx));
            let request = Request {
                api_version: kind.api_version.to_string(),
                kind: kind.kind.to_string(),
                namespace: None,
                labels: Default::default(),
                fields: Default::default(),
                resync: None,
                // Read through the cache without a declaration: whole.
                need: Need::Whole,
            };
            self.watch(&lane, watch, request, tx, FirstList::Whole)
                .await;
        }
        lane
    }

    /// Release every watch of `lane`: its informers stop when no other
    /// lane shares them, and it gets no new event.
    async fn release_watches(&self, lane: &Lane) {
        let ids = std::mem::take(&mut *lane.subscriptions.lock());
        for id in ids {
            self.subscriptions.unsubscribe(id).await;
        }
    }

    /// Undo [`Self::build`] for a lane that never went into service.
    async fn discard(&self, lane: &Arc<Lane>) {
        self.release_watches(lane).await;
        lane.close(Duration::ZERO).await;
        lane.plugin().release_indexes();
    }

    /// Put a new version of a plugin in service in place of the running one
    /// (or add it, if none runs under its name).
    ///
    /// With the same watches (the common case: new code, or new settings),
    /// the lane stays: calls already running finish on the old version, and
    /// every queued event goes to whichever version takes it, so to exactly
    /// one. The new version then gets a fresh initial sync from the cache,
    /// like a handler added late. With different watches, a new lane starts
    /// with its own watches (and their initial sync), while the old lane
    /// stops taking events and finishes its queue on the old version.
    ///
    /// # Errors
    /// [`Error::Duplicate`] if another plugin took the name meanwhile.
    pub async fn replace(&self, plugin: Plugin) -> Result<Arc<Lane>, Error> {
        let Some(lane) = self.lane(plugin.name()) else {
            return self.add(plugin).await;
        };
        let old = lane.plugin();
        let name = old.name().to_string();
        if same_watches(old.manifest(), plugin.manifest()) {
            let digest = plugin.digest().to_string();
            let subs = plugin.manifest().subscriptions.clone();
            // A new version whose store is not loaded yet (it asks for the
            // durable tier now) waits for it, like a fresh lane.
            wait_for_store(&lane, plugin.state().cloned());
            *lane.plugin.write() = Arc::new(plugin);
            old.release_indexes();
            self.replay(&lane, &subs).await;
            tracing::info!(plugin.name = %name, old_digest = %old.digest(), digest = %digest, "plugin replaced in place; initial sync replayed");
            changed(&self.changes);
            return Ok(lane);
        }
        let new_lane = self.build(plugin).await;
        self.lanes.lock().insert(name.clone(), new_lane.clone());
        tracing::info!(plugin.name = %name, old_digest = %old.digest(), digest = %new_lane.plugin().digest(), "plugin replaced with new watches");
        changed(&self.changes);
        self.release_watches(&lane).await;
        tokio::spawn(async move {
            let left = lane.finish(Duration::from_secs(30)).await;
            if left > 0 {
                tracing::warn!(plugin.name = %name, events = left, "the replaced version did not finish its queue in 30 s; the rest is dropped");
            }
            lane.plugin().release_indexes();
        });
        Ok(new_lane)
    }

    /// Start one watch of a lane. A kind that is not served yet has nothing
    /// to sync, so it does not hold the plugin back; one whose discovery
    /// failed does, until it can be watched and has synced.
    async fn watch(
        &self,
        lane: &Arc<Lane>,
        watch: u32,
        request: Request,
        tx: mpsc::Sender<Notification>,
        first_list: FirstList,
    ) {
        let id = self
            .subscriptions
            .subscribe_as(request, tx, first_list)
            .await;
        lane.subscriptions.lock().push(id);
        let Some(mut state) = self.subscriptions.state_changes(id).await else {
            return;
        };
        // An active watch reports its own first sync; a kind that is not
        // served has nothing to sync. While discovery cannot answer, wait.
        let resolved = move |lane: &Arc<Lane>, state: &State| match state {
            State::Pending => {
                lane.synced(watch);
                true
            }
            State::Active { .. } => true,
            State::Unreachable { .. } => false,
        };
        if resolved(lane, &state.borrow_and_update()) {
            return;
        }
        let lane = lane.clone();
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                if resolved(&lane, &state.borrow_and_update()) {
                    return;
                }
            }
        });
    }

    /// Give every plugin a fresh initial sync from the cache: each object its
    /// subscriptions cover as `added`, then `synced`. A replica that just
    /// became leader does this, so that its plugins decide again on the
    /// current state of the cluster.
    pub async fn replay_all(&self) {
        for lane in self.lanes() {
            let subs = lane.plugin().manifest().subscriptions.clone();
            self.replay(&lane, &subs).await;
        }
    }

    /// Give every plugin the cached objects of `buckets`, which this replica
    /// just took, as `added` (no `synced`): they decide on the current state
    /// of what they now work on, including whatever happened while another
    /// replica held it.
    pub async fn replay_buckets(&self, buckets: &[u16]) {
        let wanted: std::collections::HashSet<u16> = buckets.iter().copied().collect();
        for lane in self.lanes() {
            let subs = lane.plugin().manifest().subscriptions.clone();
            let ids: Vec<_> = lane.subscriptions.lock().clone();
            let key = self.scope.key_for(lane.name());
            for (index, (id, spec)) in ids.iter().zip(&subs).enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                if let Some(snapshot) = self.subscriptions.replay(*id).await {
                    let part = self.scope.retain(key, snapshot, |b| wanted.contains(&b));
                    lane.replay_part(index, spec, part);
                }
            }
        }
    }

    /// A fresh initial sync of every subscription of `lane` from the cache.
    async fn replay(&self, lane: &Arc<Lane>, subs: &[crate::plugin::manifest::Subscription]) {
        let ids: Vec<_> = lane.subscriptions.lock().clone();
        for (index, (id, spec)) in ids.iter().zip(subs).enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if let Some(snapshot) = self.subscriptions.replay(*id).await {
                lane.accept(index, spec, Notification::Snapshot(snapshot));
            }
        }
    }

    /// Take a plugin out of service: release its watches, drop its pending
    /// events, let running calls finish and forget its indexes. Returns
    /// whether it was loaded.
    pub async fn remove(&self, name: &str) -> bool {
        let Some(lane) = self.lanes.lock().remove(name) else {
            return false;
        };
        self.release_watches(&lane).await;
        let (dropped, running) = lane.close(Duration::from_secs(5)).await;
        lane.plugin().release_indexes();
        tracing::info!(plugin.name = %name, pending_dropped = dropped, still_running = running, "plugin removed");
        changed(&self.changes);
        true
    }

    /// A plugin's lane.
    pub fn lane(&self, name: &str) -> Option<Arc<Lane>> {
        self.lanes.lock().get(name).cloned()
    }

    /// Every lane, by name.
    pub fn lanes(&self) -> Vec<Arc<Lane>> {
        let mut lanes: Vec<_> = self.lanes.lock().values().cloned().collect();
        lanes.sort_by(|a, b| a.name.cmp(&b.name));
        lanes
    }

    /// Wait until every lane is idle and the action queue drained, or
    /// `timeout` passes. Returns whether everything went quiet.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        // Lanes first, then the actions their calls committed; again if a
        // lane got work meanwhile.
        loop {
            for lane in self.lanes() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !lane.wait_idle(left).await {
                    return false;
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.actions.wait_idle(left).await {
                return false;
            }
            if self.lanes().iter().all(|l| l.is_idle()) {
                return true;
            }
        }
    }

    /// Stop every lane: no new events, running calls get `grace` to finish.
    /// Events still pending are dropped and reported. Returns how many.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let lanes: Vec<_> = self.lanes.lock().drain().map(|(_, l)| l).collect();
        changed(&self.changes);
        let mut dropped_total = 0;
        for lane in &lanes {
            self.release_watches(lane).await;
        }
        for lane in lanes {
            let (dropped, running) = lane.close(grace).await;
            dropped_total += dropped;
            if dropped > 0 || running > 0 {
                tracing::warn!(plugin.name = %lane.name, pending_dropped = dropped, still_running = running, "shutdown: events not handled");
            }
        }
        dropped_total
    }
}

/// Tell whoever follows the plugins that something changed.
pub(crate) fn changed(changes: &watch::Sender<u64>) {
    changes.send_modify(|n| *n = n.wrapping_add(1));
}

/// The lane's "watch" that stands for its store: a durable store must be
/// loaded before the plugin's first call.
const STORE_WATCH: u32 = u32::MAX;

/// Hold the lane's calls until `store` is loaded (a durable store reads its
/// objects first; a memory store is loaded from the start).
fn wait_for_store(lane: &Arc<Lane>, store: Option<Arc<crate::state::Store>>) {
    let Some(store) = store.filter(|s| s.load() != crate::state::Load::Loaded) else {
        return;
    };
    lane.state.lock().unsynced.insert(STORE_WATCH);
    let lane = lane.clone();
    tokio::spawn(async move {
        store.loaded().await;
        lane.synced(STORE_WATCH);
    });
}

/// Kinds a plugin reads from the cache without subscribing to all of them:
/// declared reads and indexed kinds, less those a subscription of its own
/// already watches in full.
fn cached_kinds(manifest: &Manifest) -> Vec<KindKey> {
    let watched_in_full = |kind: &KindKey| {
        manifest.subscriptions.iter().any(|s| {
            s.kind_key() == *kind
                && s.namespace.is_none()
                && s.label_selector.is_empty()
                && s.field_selector.requirements().is_empty()
        })
    };
    let mut kinds: Vec<KindKey> = manifest
        .reads
        .iter()
        .chain(manifest.indexes.iter().map(|i| &i.kind))
        .filter(|k| !watched_in_full(k))
        .cloned()
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Whether two versions of a plugin need the same watches: the same
/// subscriptions (with their delivery options), reads and indexed kinds.
fn same_watches(a: &Manifest, b: &Manifest) -> bool {
    // Fields and indexes too: they decide what the cache keeps.
    let subs = |m: &Manifest| serde_json::to_value((&m.subscriptions, &m.indexes)).ok();
    subs(a) == subs(b) && cached_kinds(a) == cached_kinds(b)
}
