//! The durable tier: a plugin's store kept in the cluster, one `PluginState`
//! object per shard (`object`), keys spread over the shards by a fixed hash.
//!
//! - **Loading.** The objects are read through the host's own watch (the
//!   informers), like everything else the host follows; the store is
//!   loaded, and the plugin's calls start, once the watch's first list is
//!   in. Replicas that do not write follow the same watch.
//! - **Writing.** Only a replica the [`WriteGate`] lets write does; the
//!   others drop their writes (`standby`). A commit holds the commit locks
//!   of the shards it touches, reads each shard afresh the first time in a
//!   term (so a new leader starts from what the cluster holds, not from a
//!   watch that may lag), checks the call's reads, and writes each shard
//!   with a merge patch that carries the resourceVersion it was made
//!   against: the API server applies it only if the object is still at
//!   that version, and says 409 otherwise. On a 409 the shard is read again
//!   and the call's reads checked again: if they still hold the write is
//!   retried, else the call runs again. The call returns only after the API
//!   server has accepted every write: no write-behind.
//! - **Versions.** A key's version is the resourceVersion its last write
//!   was made against, stored with it: every write of an object is made
//!   against a different one, so it names the write, and every replica
//!   reads the same.
//! - **Several shards.** A call's writes to several shards are made one
//!   shard after the other; if a later one fails, the earlier ones are put
//!   back as they were (and if that fails too, it is logged as an error).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::{runtime::Handle, sync::watch};

use super::{
    CommitError, Error, WriteGate,
    object::{self, Decoded, entry_size},
    stats::CommitOutcome,
    store::{Entry, Load, Store, Version, now_ms, shard_of},
    transaction::Write,
};
use crate::informer::{
    Notification, Purpose,
    subscriptions::{Request, State, Subscriptions},
};
use crate::vocabulary::EventType;

/// Bytes of quota per shard: a store gets one shard per this much of its
/// `maxTotalBytes` (at least one, at most [`MAX_SHARDS`]).
pub const SHARD_QUOTA_BYTES: u64 = 256 * 1024;
/// The most shards a store has.
pub const MAX_SHARDS: usize = 256;
/// The most a shard's object may hold, by [`object::entry_size`]: far
/// below the API server's 1.5 MiB limit for one object, with room for the
/// uneven spread of keys.
pub const MAX_OBJECT_BYTES: u64 = 1024 * 1024;
/// The largest value the durable tier keeps.
pub const MAX_VALUE_BYTES: u64 = 256 * 1024;
/// The most bytes a durable store may hold in all.
pub const MAX_TOTAL_BYTES: u64 = SHARD_QUOTA_BYTES * MAX_SHARDS as u64;
/// Tries of one shard's write (409s, 5xx, timeouts) before the call fails.
const WRITE_ATTEMPTS: u32 = 6;

/// Why the objects cannot be read when the kind is not served.
const NO_CRD: &str = "the PluginState kind (pluginstates.informant.dev) is not served: \
                      install its CRD (deploy/base/crd-pluginstate.yaml), or narrow the plugin \
                      to the memory tier (state.maxTier: memory)";

/// What one shard's write replaced: each key with its entry before (none:
/// absent), to put back if a later shard's write fails.
type Replaced = Vec<(String, Option<Entry>)>;

/// The number of shards of a store with this much quota.
pub(crate) fn shards_for(max_total_bytes: u64) -> usize {
    usize::try_from(max_total_bytes.div_ceil(SHARD_QUOTA_BYTES))
        .unwrap_or(MAX_SHARDS)
        .clamp(1, MAX_SHARDS)
}

/// A durable store's link to the cluster.
pub(crate) struct Durable {
    plugin: Arc<str>,
    namespace: String,
    api: Api<DynamicObject>,
    gate: Arc<dyn WriteGate>,
    runtime: Handle,
    load: watch::Sender<Load>,
    /// Shards of a store whose objects do not exist yet (from its quota).
    new_shards: usize,
    /// One commit at a time per shard; taken in shard order.
    locks: OnceLock<Box<[Mutex<()>]>>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("plugin", &self.plugin)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A write to the API server that did not go through.
enum Refused {
    /// 409: the object is not at the version the write was made against,
    /// or it exists already.
    Conflict,
    /// 404: the object is gone.
    Gone,
    /// Worth trying again: 429, 5xx, the connection.
    Transient(String),
    /// Not worth trying again: 400, 403, 422...
    Final(String),
}

fn refused(e: kube::Error) -> Refused {
    match e {
        kube::Error::Api(s) if s.code == 409 => Refused::Conflict,
        kube::Error::Api(s) if s.code == 404 => Refused::Gone,
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => {
            Refused::Transient(format!("{} ({})", s.message, s.code))
        }
        kube::Error::Api(s) => Refused::Final(format!("{} ({})", s.message, s.code)),
        other => Refused::Transient(other.to_string()),
    }
}

impl Durable {
    pub(crate) fn new(
        plugin: &str,
        namespace: &str,
        client: kube::Client,
        gate: Arc<dyn WriteGate>,
        runtime: Handle,
        max_total_bytes: u64,
    ) -> Self {
        Self {
            plugin: plugin.into(),
            namespace: namespace.into(),
            api: Api::namespaced_with(client, namespace, &object::api_resource()),
            gate,
            runtime,
            load: watch::Sender::new(Load::Loading),
            new_shards: shards_for(max_total_bytes),
            locks: OnceLock::new(),
        }
    }

    /// The namespace of its objects.
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn load(&self) -> Load {
        self.load.borrow().clone()
    }

    pub(crate) async fn loaded(&self) {
        let mut rx = self.load.subscribe();
        let _ = rx.wait_for(|l| *l == Load::Loaded).await;
    }

    fn set_load(&self, load: Load) {
        self.load.send_if_modified(|l| {
            // Once loaded, the view follows the watch whatever happens to it.
            let changed = *l != load && *l != Load::Loaded;
            if changed {
                match &load {
                    Load::Unavailable(why) => {
                        tracing::warn!(plugin.name = %self.plugin, reason = %why, "durable state cannot be loaded yet; the plugin's calls wait")
                    }
                    Load::Loaded => {
                        tracing::info!(plugin.name = %self.plugin, namespace = %self.namespace, "durable state loaded")
                    }
                    Load::Loading => {}
                }
                *l = load;
            }
            changed
        });
    }

    fn locks(&self, n: usize) -> &[Mutex<()>] {
        self.locks
            .get_or_init(|| (0..n).map(|_| Mutex::new(())).collect())
    }

    /// Whether this replica owns shard `owned` in the current term.
    fn owns(&self, owned: Option<u64>) -> bool {
        owned.is_some() && owned == self.gate.term()
    }

    /// Follow the store's objects through the host's watch until the host
    /// stops: load them, then keep the view as the cluster has it (but for
    /// the shards this replica writes).
    pub(crate) async fn follow(store: Arc<Store>, subscriptions: Arc<Subscriptions>) {
        let Some(durable) = &store.durable else {
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let labels = informant_k8s::selector::LabelSelector::parse(&format!(
            "{}={}",
            object::PLUGIN_LABEL,
            durable.plugin
        ));
        let Ok(labels) = labels else {
            durable.set_load(Load::Unavailable(format!(
                "{:?} cannot be a label value",
                durable.plugin
            )));
            return;
        };
        let request = Request {
            need: crate::cache::Need::Whole,
            api_version: object::API_VERSION.into(),
            kind: object::KIND.into(),
            namespace: Some(durable.namespace.clone()),
            labels,
            fields: Default::default(),
            resync: None,
        };
        let id = subscriptions.subscribe(request, tx).await;
        let mut state = subscriptions.state_changes(id).await;
        let now = state.as_mut().map(|s| s.borrow_and_update().clone());
        if let Some(now) = now {
            durable.follow_state(now);
        }
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(n) => durable.apply(&store, n),
                    None => break,
                },
                changed = async {
                    match state.as_mut() {
                        Some(s) => s.changed().await.map(|()| s.borrow_and_update().clone()),
                        None => std::future::pending().await,
                    }
                } => match changed {
                    Ok(now) => durable.follow_state(now),
                    Err(_) => state = None,
                },
            }
        }
    }

    /// Where the watch of the objects stands, as the store's load.
    fn follow_state(&self, state: State) {
        match state {
            State::Pending => self.set_load(Load::Unavailable(NO_CRD.into())),
            State::Unreachable { error } => self.set_load(Load::Unavailable(error)),
            State::Active { .. } => self.set_load(Load::Loading),
        }
    }

    /// One notification of the watch.
    fn apply(&self, store: &Store, n: Notification) {
        match n {
            Notification::Snapshot(s) if s.purpose == Purpose::Initial => {
                let decoded: Vec<Decoded> = s
                    .objects
                    .iter()
                    .filter_map(|(_, o)| self.decode(&o.to_value()))
                    .collect();
                let n = decoded.first().map_or(self.new_shards, |d| d.shards);
                if let Some(odd) = decoded.iter().find(|d| d.shards != n) {
                    self.set_load(Load::Unavailable(format!(
                        "its objects disagree on how many shards there are ({n} and {}): \
                         delete the stray ones",
                        odd.shards
                    )));
                    return;
                }
                let shards = store.init_shards(n);
                self.locks(shards.len());
                let mut present = BTreeSet::new();
                for d in decoded {
                    present.insert(d.shard);
                    self.adopt(store, d);
                }
                for i in (0..shards.len()).filter(|i| !present.contains(i)) {
                    self.forget(store, i);
                }
                self.set_load(Load::Loaded);
            }
            Notification::Snapshot(_) => {}
            // Its first lists come whole (it does not ask for streamed ones).
            Notification::Streaming(_) | Notification::Streamed(_) => {}
            // Never sent to subscribers.
            Notification::Relisted(_) => {}
            Notification::Change(c) => {
                let Some(d) = self.decode(&c.object.to_value()) else {
                    return;
                };
                if store.shards().len() != d.shards {
                    tracing::warn!(plugin.name = %self.plugin, object = %object::name(&self.plugin, d.shard), shards = d.shards, expected = store.shards().len(), "a state object with another number of shards is ignored");
                    return;
                }
                if c.event_type == EventType::Deleted {
                    self.forget(store, d.shard);
                } else {
                    self.adopt(store, d);
                }
            }
        }
    }

    fn decode(&self, value: &Value) -> Option<Decoded> {
        match object::decode(value) {
            Ok(d) if d.plugin == *self.plugin => Some(d),
            Ok(d) => {
                tracing::warn!(plugin.name = %self.plugin, other = %d.plugin, "a state object labelled for this plugin names another; ignored");
                None
            }
            Err(e) => {
                let name = value.pointer("/metadata/name").and_then(Value::as_str);
                tracing::warn!(plugin.name = %self.plugin, object = ?name, error = %e, "a state object cannot be read; ignored");
                None
            }
        }
    }

    /// Take an object's entries as the shard's, unless this replica owns it.
    fn adopt(&self, store: &Store, d: Decoded) {
        let Some(shard) = store.shards().get(d.shard) else {
            return;
        };
        let mut s = shard.write();
        if self.owns(s.owned) {
            return;
        }
        let delta = s.replace(d.entries);
        s.rv = Some(d.resource_version);
        s.uid = Some(d.uid);
        store.account(delta);
    }

    /// The shard's object is gone.
    fn forget(&self, store: &Store, i: usize) {
        let Some(shard) = store.shards().get(i) else {
            return;
        };
        let mut s = shard.write();
        if self.owns(s.owned) {
            return;
        }
        let delta = s.replace(BTreeMap::new());
        s.rv = None;
        s.uid = None;
        store.account(delta);
    }

    /// Whether one more value fits in its shard's object.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when it does not.
    pub(crate) fn check_room(&self, store: &Store, key: &str, value: &[u8]) -> Result<(), Error> {
        if value.len() as u64 > MAX_VALUE_BYTES {
            return Err(Error::LimitExceeded(format!(
                "the value of {key:?} is {} bytes, more than the durable tier keeps ({MAX_VALUE_BYTES})",
                value.len()
            )));
        }
        let Some((i, shard)) = store.shard_for(key) else {
            return Ok(());
        };
        let s = shard.read();
        let before = s
            .entries
            .get(key)
            .map_or(0, |e| entry_size(key.len(), &e.value));
        let after = s.object_bytes - before + entry_size(key.len(), value);
        if after > MAX_OBJECT_BYTES {
            return Err(Error::LimitExceeded(format!(
                "the object that holds {key:?} ({}) would be larger than {MAX_OBJECT_BYTES} bytes; \
                 the store has {} shards: ask for a larger state.maxTotalBytes when it is created, \
                 or keep smaller values",
                object::name(&self.plugin, i),
                store.shards().len()
            )));
        }
        Ok(())
    }

    /// Run an API call from a blocking thread (a plugin's call), on the
    /// host's runtime. None if the runtime is gone (the host is stopping).
    fn block<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(call.await);
        });
        rx.recv().ok()
    }

    fn get(&self, name: String) -> Result<Option<DynamicObject>, Refused> {
        let api = self.api.clone();
        self.block(async move { api.get_opt(&name).await })
            .ok_or_else(|| Refused::Final("the host is stopping".into()))?
            .map_err(refused)
    }

    /// Read shard `i` afresh and own it in `term`.
    fn refresh(&self, store: &Store, i: usize, term: u64) -> Result<(), CommitError> {
        let name = object::name(&self.plugin, i);
        let mut attempt = 0;
        let found = loop {
            match self.get(name.clone()) {
                Ok(found) => break found,
                Err(Refused::Transient(e)) if attempt + 1 < WRITE_ATTEMPTS => {
                    attempt += 1;
                    backoff(attempt, &e);
                }
                Err(Refused::Transient(e) | Refused::Final(e)) => {
                    return Err(CommitError::Failed(format!("reading {name}: {e}")));
                }
                Err(Refused::Conflict | Refused::Gone) => break None,
            }
        };
        let decoded = match found {
            Some(o) => {
                let value = serde_json::to_value(&o)
                    .map_err(|e| CommitError::Failed(format!("reading {name}: {e}")))?;
                let d = object::decode(&value)
                    .map_err(|e| CommitError::Failed(format!("reading {name}: {e}")))?;
                if d.shard != i || d.shards != store.shards().len() {
                    return Err(CommitError::Failed(format!(
                        "{name} says it is shard {} of {}, not {i} of {}",
                        d.shard,
                        d.shards,
                        store.shards().len()
                    )));
                }
                Some(d)
            }
            None => None,
        };
        let mut s = store.shards()[i].write();
        let delta = match decoded {
            Some(d) => {
                s.rv = Some(d.resource_version);
                s.uid = Some(d.uid);
                s.replace(d.entries)
            }
            None => {
                s.rv = None;
                s.uid = None;
                s.replace(BTreeMap::new())
            }
        };
        s.owned = Some(term);
        store.account(delta);
        Ok(())
    }

    /// Commit a call's writes: see the module's documentation.
    pub(crate) fn commit(
        &self,
        store: &Store,
        reads: HashMap<String, Option<Version>>,
        writes: BTreeMap<String, Write>,
    ) -> Result<CommitOutcome, CommitError> {
        let Some(term) = self.gate.term() else {
            return Ok(CommitOutcome::Standby);
        };
        let n = store.shards().len();
        if n == 0 {
            return Err(CommitError::Failed("the store is not loaded".into()));
        }
        let locks = self.locks(n);
        let involved: BTreeSet<usize> = reads
            .keys()
            .chain(writes.keys())
            .map(|k| shard_of(k, n))
            .collect();
        let _held: Vec<_> = involved.iter().map(|&i| locks[i].lock()).collect();
        for &i in &involved {
            if !self.owns(store.shards()[i].read().owned) {
                self.refresh(store, i, term)?;
            }
        }
        let now = now_ms();
        if !reads_hold(store, reads.iter(), now) {
            return Err(CommitError::Conflict);
        }
        if !super::transaction::within_quota(store, &writes) {
            return Err(CommitError::Conflict);
        }
        let mut by_shard: BTreeMap<usize, Vec<(&String, &Write)>> = BTreeMap::new();
        for (k, w) in &writes {
            by_shard.entry(shard_of(k, n)).or_default().push((k, w));
        }
        let mut done: Vec<(usize, Replaced)> = Vec::new();
        for (i, shard_writes) in by_shard {
            let shard_reads = reads.iter().filter(|(k, _)| shard_of(k, n) == i);
            match self.write_shard(store, i, &shard_writes, shard_reads, term, now) {
                Ok(undo) => done.push((i, undo)),
                Err(e) => {
                    self.undo(store, done, term);
                    return Err(e);
                }
            }
        }
        Ok(CommitOutcome::Committed)
    }

    /// Write one shard's part of a commit; returns what it replaced.
    fn write_shard<'a>(
        &self,
        store: &Store,
        i: usize,
        writes: &[(&String, &Write)],
        reads: impl Iterator<Item = (&'a String, &'a Option<Version>)> + Clone,
        term: u64,
        now: u64,
    ) -> Result<Replaced, CommitError> {
        let name = object::name(&self.plugin, i);
        let shard = &store.shards()[i];
        let mut last = String::new();
        for attempt in 1..=WRITE_ATTEMPTS {
            let (rv, before) = {
                let s = shard.read();
                let before: Replaced = writes
                    .iter()
                    .map(|(k, _)| ((*k).clone(), s.entries.get(*k).cloned()))
                    .collect();
                let mut size = s.object_bytes;
                for ((k, w), (_, old)) in writes.iter().zip(&before) {
                    size -= old.as_ref().map_or(0, |e| entry_size(k.len(), &e.value));
                    if let Write::Put { value, .. } = w {
                        size += entry_size(k.len(), value);
                    }
                }
                if size > MAX_OBJECT_BYTES {
                    return Err(CommitError::Failed(format!(
                        "{name} would be larger than {MAX_OBJECT_BYTES} bytes"
                    )));
                }
                (s.rv.clone(), before)
            };
            // A shard's first write creates its object, empty, so that
            // every write is made against a resourceVersion.
            let Some(rv) = rv else {
                match self.create(store, i) {
                    Ok(()) | Err(Refused::Conflict) => {}
                    Err(Refused::Transient(e)) => {
                        last = e;
                        backoff(attempt, &last);
                        continue;
                    }
                    Err(Refused::Gone) => {
                        return Err(CommitError::Failed(format!(
                            "creating {name}: the namespace {} does not exist",
                            self.namespace
                        )));
                    }
                    Err(Refused::Final(e)) => {
                        return Err(CommitError::Failed(format!("creating {name}: {e}")));
                    }
                }
                self.refresh(store, i, term)?;
                if !reads_hold(store, reads.clone(), now) {
                    return Err(CommitError::Conflict);
                }
                continue;
            };
            let mut entries = Map::new();
            for (k, w) in writes {
                let e = match w {
                    Write::Put { value, expiry } => {
                        object::encode(value, &rv, expiry.at(now), true)
                    }
                    Write::Delete => Value::Null,
                };
                entries.insert((*k).clone(), e);
            }
            let patch = object::patch(&rv, entries);
            let started = Instant::now();
            let result = self.patch(name.clone(), patch);
            store
                .stats()
                .write_seconds
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(new_rv) => {
                    let mut s = shard.write();
                    for (k, w) in writes {
                        let delta = match w {
                            Write::Put { value, expiry } => s.put(
                                (*k).clone(),
                                Entry {
                                    value: value.clone(),
                                    version: Version::Rv(rv.as_str().into()),
                                    expires_at: expiry.at(now),
                                },
                            ),
                            Write::Delete => s.remove(k),
                        };
                        store.account(delta);
                    }
                    s.rv = Some(new_rv);
                    s.owned = Some(term);
                    return Ok(before);
                }
                Err(Refused::Conflict | Refused::Gone) => {
                    // Someone else wrote (a replica that led before, a
                    // person): read it again; retry if the call's reads hold.
                    tracing::debug!(plugin.name = %self.plugin, object = %name, "state write conflicted; reading the object again");
                    self.refresh(store, i, term)?;
                    if !reads_hold(store, reads.clone(), now) {
                        return Err(CommitError::Conflict);
                    }
                    last = "409 Conflict".into();
                }
                Err(Refused::Transient(e)) => {
                    last = e;
                    backoff(attempt, &last);
                }
                Err(Refused::Final(e)) => {
                    return Err(CommitError::Failed(format!("writing {name}: {e}")));
                }
            }
        }
        Err(CommitError::Failed(format!(
            "writing {name}: gave up after {WRITE_ATTEMPTS} attempts ({last})"
        )))
    }

    fn create(&self, store: &Store, i: usize) -> Result<(), Refused> {
        let object = object::new_object(
            &self.plugin,
            &self.namespace,
            i,
            store.shards().len(),
            Map::new(),
        );
        let object: DynamicObject =
            serde_json::from_value(object).map_err(|e| Refused::Final(e.to_string()))?;
        let api = self.api.clone();
        self.block(async move {
            let params = PostParams {
                field_manager: Some(object::FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            api.create(&params, &object).await
        })
        .ok_or_else(|| Refused::Final("the host is stopping".into()))?
        .map(|_| ())
        .map_err(refused)
    }

    /// Patch an object; returns its new resourceVersion.
    fn patch(&self, name: String, patch: Value) -> Result<String, Refused> {
        let api = self.api.clone();
        self.block(async move {
            let params = PatchParams {
                field_manager: Some(object::FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            api.patch(&name, &params, &Patch::Merge(&patch)).await
        })
        .ok_or_else(|| Refused::Final("the host is stopping".into()))?
        .map(|o| o.metadata.resource_version.unwrap_or_default())
        .map_err(refused)
    }

    /// Put back what a failed commit had already written to other shards.
    fn undo(&self, store: &Store, done: Vec<(usize, Replaced)>, term: u64) {
        for (i, before) in done {
            let name = object::name(&self.plugin, i);
            let shard = &store.shards()[i];
            let Some(rv) = shard.read().rv.clone() else {
                continue;
            };
            let mut entries = Map::new();
            for (k, old) in &before {
                let e = match old {
                    Some(e) => object::encode(&e.value, &e.version.to_string(), e.expires_at, true),
                    None => Value::Null,
                };
                entries.insert(k.clone(), e);
            }
            match self.patch(name.clone(), object::patch(&rv, entries)) {
                Ok(new_rv) => {
                    let mut s = shard.write();
                    for (k, old) in before {
                        let delta = match old {
                            Some(e) => s.put(k, e),
                            None => s.remove(&k),
                        };
                        store.account(delta);
                    }
                    s.rv = Some(new_rv);
                    s.owned = Some(term);
                }
                Err(
                    Refused::Conflict | Refused::Gone | Refused::Transient(_) | Refused::Final(_),
                ) => {
                    tracing::error!(plugin.name = %self.plugin, object = %name, "a failed call's state writes to this object could not be put back: the store keeps them");
                    shard.write().owned = None;
                }
            }
        }
    }

    /// Remove the expired entries (while this replica writes): a commit
    /// that deletes each, if it has not been written since.
    pub(crate) fn sweep(&self, store: &Store) {
        if self.gate.term().is_none() {
            return;
        }
        let now = now_ms();
        let mut reads = HashMap::new();
        let mut writes = BTreeMap::new();
        for shard in store.shards() {
            let shard = shard.read();
            if shard.expiring == 0 {
                continue;
            }
            for (k, _) in shard.entries.iter().filter(|(_, e)| !e.live(now)) {
                reads.insert(k.clone(), None);
                writes.insert(k.clone(), Write::Delete);
            }
        }
        if writes.is_empty() {
            return;
        }
        // The reads say "absent": an expired key reads as absent, so the
        // commit goes through only if nobody wrote it again meanwhile.
        let removed = writes.len();
        match self.commit(store, reads, writes) {
            Ok(_) => {
                tracing::debug!(plugin.name = %self.plugin, removed, "expired state entries removed")
            }
            Err(e) => {
                tracing::debug!(plugin.name = %self.plugin, error = %e, "expired state entries not removed this time")
            }
        }
    }
}

/// Whether every read still sees the version it saw.
fn reads_hold<'a>(
    store: &Store,
    mut reads: impl Iterator<Item = (&'a String, &'a Option<Version>)>,
    now: u64,
) -> bool {
    reads.all(|(key, seen)| {
        let current = store.lookup(key, now).map(|e| e.version);
        current.as_ref() == seen.as_ref()
    })
}

/// Wait before trying a write again: 50 ms, doubling. A plugin's call is
/// waiting for the answer on a blocking thread; there is nothing to be
/// notified of, only time to let the API server recover.
fn backoff(attempt: u32, error: &str) {
    let wait = Duration::from_millis(50 << attempt.min(6));
    tracing::debug!(
        attempt,
        wait_ms = wait.as_millis() as u64,
        error,
        "state write failed; trying again"
    );
    std::thread::sleep(wait);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_has_one_shard_per_256_kib_of_quota() {
        assert_eq!(shards_for(1), 1);
        assert_eq!(shards_for(4 << 20), 16);
        assert_eq!(shards_for(u64::MAX), MAX_SHARDS);
    }
}
