//! The indexed, in-memory cache of watched objects that plugins read.
//!
//! Objects are grouped by kind; each kind has its own lock, so a writer of
//! one kind never blocks readers of another. An update of an object and of
//! every index over it happens under one write lock, so readers never see a
//! half-applied update.

mod index;
mod object;
mod path;
mod projection;
mod view;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use parking_lot::RwLock;
use serde_json::Value;

pub use object::{CachedObject, strip};
pub use path::{FieldPath, PathError};
pub use projection::{ANNOTATION, HOST_FIELDS, Need, Projection};
pub(crate) use projection::{Text, members, push_key};
pub use view::View;

use crate::vocabulary::{KindKey, ObjectKey};
use index::Index;
use informant_k8s::selector::LabelSelector;

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object lacks a field the cache keys it by.
    #[error("object has no {0}; every cached object needs apiVersion, kind and metadata.name")]
    MissingField(&'static str),
    /// An index was asked for that nobody declared.
    #[error("no index named {0:?}")]
    UnknownIndex(String),
    /// An index was declared twice under one name for different kinds or paths.
    #[error("index {name:?} is already declared for {existing} with other field paths")]
    IndexConflict {
        /// The index's name.
        name: String,
        /// The kind the existing index covers.
        existing: KindKey,
    },
}

/// How the cache stores objects.
#[derive(Debug, Clone)]
pub struct Config {
    strip_managed_fields: bool,
    strip_last_applied: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strip_managed_fields: true,
            strip_last_applied: true,
        }
    }
}

impl Config {
    /// Remove `metadata.managedFields` from stored objects (default: yes).
    #[must_use]
    pub fn strip_managed_fields(mut self, strip: bool) -> Self {
        self.strip_managed_fields = strip;
        self
    }

    /// Remove the `kubectl.kubernetes.io/last-applied-configuration`
    /// annotation from stored objects (default: yes).
    #[must_use]
    pub fn strip_last_applied(mut self, strip: bool) -> Self {
        self.strip_last_applied = strip;
        self
    }
}

/// What an upsert changed.
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The object's kind.
    pub kind: KindKey,
    /// The object's key.
    pub key: Arc<ObjectKey>,
    /// The state before, if the object was cached.
    pub old: Option<Arc<CachedObject>>,
    /// The state now cached.
    pub new: Arc<CachedObject>,
}

/// An object the informers read as text (already minified, without
/// managedFields and last-applied), with the metadata the cache keys and
/// selects it by. The cache builds no tree from it unless the kind has
/// indexes to compute.
#[derive(Debug)]
pub struct RawParts<'a> {
    /// The object's JSON.
    pub json: String,
    /// `metadata.namespace`; none or empty for cluster-scoped objects.
    pub namespace: Option<&'a str>,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.resourceVersion`.
    pub resource_version: &'a str,
    /// `metadata.uid`.
    pub uid: &'a str,
    /// `metadata.labels`.
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

impl RawParts<'_> {
    fn key(&self) -> Arc<ObjectKey> {
        Arc::new(ObjectKey::new(
            self.namespace.filter(|n| !n.is_empty()),
            self.name,
        ))
    }

    fn object(self) -> CachedObject {
        CachedObject::from_parts(self.json, self.resource_version, self.uid, self.labels)
    }
}

/// Objects as the cache hands them out: shared keys and states, sorted by
/// key.
pub type Entries = Vec<(Arc<ObjectKey>, Arc<CachedObject>)>;

/// One listed object in compact form, from [`Store::prepare_listed`]: its
/// state is shared, so that a list streaming in can hand it to plugins and
/// to the cache without a copy.
#[derive(Debug)]
pub struct Listed {
    key: Arc<ObjectKey>,
    object: Arc<CachedObject>,
    index_values: Vec<(Arc<str>, Vec<String>)>,
}

impl Listed {
    /// The object's key.
    pub fn key(&self) -> &Arc<ObjectKey> {
        &self.key
    }

    /// The object's state.
    pub fn object(&self) -> &Arc<CachedObject> {
        &self.object
    }
}

/// What replacing a scope with a fresh list changed.
#[derive(Debug, Default)]
pub struct Relisted {
    /// Objects that were not cached (key, new state).
    pub added: Vec<(Arc<ObjectKey>, Arc<CachedObject>)>,
    /// Objects whose resourceVersion changed (key, old, new).
    pub modified: Vec<(Arc<ObjectKey>, Arc<CachedObject>, Arc<CachedObject>)>,
    /// Objects cached in the scope but missing from the list (key, last state).
    pub deleted: Vec<(Arc<ObjectKey>, Arc<CachedObject>)>,
    /// Objects listed with the resourceVersion already cached.
    pub unchanged: Vec<(Arc<ObjectKey>, Arc<CachedObject>)>,
}

/// Size of the cache, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects cached.
    pub objects: usize,
    /// Heap bytes held by the cached objects (JSON, versions, labels).
    pub bytes: usize,
}

#[derive(Default)]
struct KindData {
    /// Keys are shared: the informers, snapshots and events that name an
    /// object hold this very key.
    objects: BTreeMap<Arc<ObjectKey>, Arc<CachedObject>>,
    indexes: HashMap<Arc<str>, Index>,
    bytes: usize,
    /// What the kind's readers declared they need (without the indexes).
    need: Need,
    /// What is kept of each object: none for whole objects.
    projection: Option<Arc<Projection>>,
}

impl KindData {
    /// The need and the indexes' paths together: what the kind keeps.
    fn kept(&self) -> Need {
        match &self.need {
            Need::Whole => Need::Whole,
            Need::Fields(fields) => {
                let mut fields = fields.clone();
                fields.extend(
                    self.indexes
                        .values()
                        .flat_map(|i| i.paths().iter().map(ToString::to_string)),
                );
                Need::Fields(fields)
            }
        }
    }

    /// Cache `object` under `key`, reindexed under `index_values` (index
    /// name, keys); returns the state it replaced.
    fn insert(
        &mut self,
        key: Arc<ObjectKey>,
        object: Arc<CachedObject>,
        index_values: Vec<(Arc<str>, Vec<String>)>,
    ) -> Option<Arc<CachedObject>> {
        for (name, values) in index_values {
            if let Some(index) = self.indexes.get_mut(&name) {
                index.set(&key, values);
            }
        }
        let key_bytes = key.namespace.len() + key.name.len();
        self.bytes += object.heap_bytes();
        let old = self.objects.insert(key, object);
        match &old {
            Some(old) => self.bytes -= old.heap_bytes(),
            None => self.bytes += key_bytes,
        }
        old
    }

    /// Cache a listed state, unless this very state is cached: one walk of
    /// the map, where a lookup and then [`Self::insert`] would take two (a
    /// list of 100,000 objects makes 100,000 of them).
    fn insert_listed(&mut self, entry: &Listed) {
        use std::collections::btree_map::Entry;
        let object = &entry.object;
        let old = match self.objects.entry(entry.key.clone()) {
            Entry::Occupied(mut cached) => {
                let old = cached.get();
                if !object.resource_version().is_empty()
                    && old.resource_version() == object.resource_version()
                    && old.json() == object.json()
                {
                    return;
                }
                Some(cached.insert(object.clone()))
            }
            Entry::Vacant(slot) => {
                slot.insert(object.clone());
                None
            }
        };
        self.bytes += object.heap_bytes();
        match &old {
            Some(old) => self.bytes -= old.heap_bytes(),
            None => self.bytes += entry.key.namespace.len() + entry.key.name.len(),
        }
        if !self.indexes.is_empty() {
            let mut index_values = entry.index_values.clone();
            refresh_index_values(self, object, &mut index_values);
            for (name, values) in index_values {
                if let Some(index) = self.indexes.get_mut(&name) {
                    index.set(&entry.key, values);
                }
            }
        }
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Arc<CachedObject>> {
        let old = self.objects.remove(key)?;
        for index in self.indexes.values_mut() {
            index.unset(key);
        }
        self.bytes -= old.heap_bytes() + key.namespace.len() + key.name.len();
        Some(old)
    }
}

/// An object's keys for the kind's indexes; its JSON is parsed only if the
/// kind has any.
fn index_values(data: &KindData, json: &str) -> Vec<(Arc<str>, Vec<String>)> {
    if data.indexes.is_empty() {
        return Vec::new();
    }
    let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    data.indexes
        .iter()
        .map(|(name, index)| (name.clone(), index.values_of(&value)))
        .collect()
}

/// Bring an object's index keys up to date with the kind's indexes: an
/// index declared since the object was prepared still covers it.
fn refresh_index_values(
    data: &KindData,
    object: &CachedObject,
    index_values: &mut Vec<(Arc<str>, Vec<String>)>,
) {
    if data
        .indexes
        .keys()
        .any(|n| !index_values.iter().any(|(m, _)| m == n))
    {
        let value = object.to_value();
        *index_values = data
            .indexes
            .iter()
            .map(|(n, i)| (n.clone(), i.values_of(&value)))
            .collect();
    }
}

/// The cache: objects by kind, namespace and name, with secondary indexes.
#[derive(Default)]
pub struct Store {
    config: Config,
    kinds: RwLock<HashMap<KindKey, Arc<RwLock<KindData>>>>,
    /// Index name -> the kind it covers.
    /// Each index's kind, and how many declarations hold it.
    index_kinds: RwLock<HashMap<Arc<str>, (KindKey, usize)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Store {
    /// An empty cache.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    fn kind(&self, kind: &KindKey) -> Option<Arc<RwLock<KindData>>> {
        self.kinds.read().get(kind).cloned()
    }

    fn kind_or_insert(&self, kind: &KindKey) -> Arc<RwLock<KindData>> {
        if let Some(k) = self.kind(kind) {
            return k;
        }
        self.kinds.write().entry(kind.clone()).or_default().clone()
    }

    /// The cached form of an object, stripped as the config says, without
    /// storing it: for states that are reported but not kept, such as the
    /// last state of a deleted object.
    pub fn prepare(&self, mut value: Value) -> CachedObject {
        strip(
            &mut value,
            self.config.strip_managed_fields,
            self.config.strip_last_applied,
        );
        CachedObject::from_value(&value)
    }

    /// Insert or replace an object, stripping what the config says to strip.
    ///
    /// # Errors
    /// [`Error::MissingField`] if the object lacks apiVersion, kind or name.
    pub fn upsert(&self, mut value: Value) -> Result<Upsert, Error> {
        strip(
            &mut value,
            self.config.strip_managed_fields,
            self.config.strip_last_applied,
        );
        let field = |ptr: &str| value.pointer(ptr).and_then(Value::as_str);
        let api_version = field("/apiVersion").ok_or(Error::MissingField("apiVersion"))?;
        let kind_name = field("/kind").ok_or(Error::MissingField("kind"))?;
        let name = field("/metadata/name").ok_or(Error::MissingField("metadata.name"))?;
        let kind = KindKey::new(api_version, kind_name);
        let key = Arc::new(ObjectKey::new(
            field("/metadata/namespace").filter(|n| !n.is_empty()),
            name,
        ));

        let store = self.kind_or_insert(&kind);
        let new = Arc::new(CachedObject::from_value(&value));
        let mut data = store.write();
        // Index values are computed from the parsed value under the lock, so
        // an index added concurrently is never skipped.
        let values = data
            .indexes
            .iter()
            .map(|(name, index)| (name.clone(), index.values_of(&value)))
            .collect();
        let old = data.insert(key.clone(), new.clone(), values);
        drop(data);
        Ok(Upsert {
            kind,
            key,
            old,
            new,
        })
    }

    /// The compact form of one listed object, ready for [`Self::replace_scope`]:
    /// stripped, minified, with its keys for the kind's current indexes. A
    /// relist keeps only these, never the decoded trees, so its peak memory
    /// stays close to the cache's own.
    ///
    /// # Errors
    /// [`Error::MissingField`] if the object has no name.
    pub fn prepare_listed(&self, kind: &KindKey, mut value: Value) -> Result<Listed, Error> {
        strip(
            &mut value,
            self.config.strip_managed_fields,
            self.config.strip_last_applied,
        );
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or(Error::MissingField("metadata.name"))?;
        let key = ObjectKey::new(
            value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty()),
            name,
        );
        let index_values = match self.kind(kind) {
            Some(store) => store
                .read()
                .indexes
                .iter()
                .map(|(n, i)| (n.clone(), i.values_of(&value)))
                .collect(),
            None => Vec::new(),
        };
        Ok(Listed {
            key: Arc::new(key),
            object: Arc::new(CachedObject::from_value(&value)),
            index_values,
        })
    }

    /// Like [`Self::prepare_listed`], for an object read as text: kept as
    /// the kind's projection says.
    pub fn prepare_listed_raw(&self, kind: &KindKey, mut raw: RawParts<'_>) -> Listed {
        let key = raw.key();
        let index_values = match self.kind(kind) {
            Some(store) => {
                let data = store.read();
                if let Some(p) = &data.projection {
                    raw.json = p.apply(raw.json);
                }
                index_values(&data, &raw.json)
            }
            None => Vec::new(),
        };
        Listed {
            key,
            object: Arc::new(raw.object()),
            index_values,
        }
    }

    /// Like [`Self::upsert`], for an object read as text: kept as the
    /// kind's projection says.
    pub fn upsert_raw(&self, kind: &KindKey, raw: RawParts<'_>) -> Upsert {
        let key = raw.key();
        let store = self.kind_or_insert(kind);
        let raw = self.project(&store, raw);
        let mut data = store.write();
        // Under the lock, so an index added concurrently is never skipped.
        let values = index_values(&data, &raw.json);
        let new = Arc::new(raw.object());
        let old = data.insert(key.clone(), new.clone(), values);
        drop(data);
        Upsert {
            kind: kind.clone(),
            key,
            old,
            new,
        }
    }

    /// Like [`Self::prepare`], for an object read as text: a state that is
    /// reported but not kept, such as the last state of a deleted object
    /// (projected like the kind's cached objects).
    pub fn prepare_raw(&self, kind: &KindKey, raw: RawParts<'_>) -> (Arc<ObjectKey>, CachedObject) {
        let raw = match self.kind(kind) {
            Some(store) => self.project(&store, raw),
            None => raw,
        };
        (raw.key(), raw.object())
    }

    /// `raw` as the kind's projection keeps it (projected outside the lock).
    fn project<'a>(&self, store: &RwLock<KindData>, mut raw: RawParts<'a>) -> RawParts<'a> {
        let projection = store.read().projection.clone();
        if let Some(p) = projection {
            raw.json = p.apply(raw.json);
        }
        raw
    }

    /// Say what the readers of `kind` need of its objects (the union of
    /// what each declared; [`Need::Whole`] if one declared nothing). The
    /// cache keeps that, the kind's indexes' paths and the host's fields
    /// of every object it takes from now on. Returns whether it now keeps
    /// more than before: the objects already cached lack what was added,
    /// and the kind's watches must list them again.
    pub fn set_need(&self, kind: &KindKey, need: Need) -> bool {
        let store = self.kind_or_insert(kind);
        let mut data = store.write();
        let before = data.kept();
        data.need = need;
        let after = data.kept();
        data.projection = Projection::new(&after).map(Arc::new);
        if before != after {
            tracing::info!(resource = %kind, kept = %after, "the cache keeps {} of this kind", if after == Need::Whole { "whole objects" } else { "a projection" });
        }
        !before.covers(&after)
    }

    /// What the cache keeps of `kind`'s objects: none for whole objects.
    pub fn projection(&self, kind: &KindKey) -> Option<Arc<Projection>> {
        self.kind(kind)?.read().projection.clone()
    }

    /// Make the cached objects of `kind` that are `in_scope` exactly `listed`,
    /// under one write lock, so readers see the old state or the new, never
    /// a mix. Objects whose resourceVersion did not change keep their cached
    /// copy and are reported as unchanged.
    pub fn replace_scope(
        &self,
        kind: &KindKey,
        in_scope: impl Fn(&ObjectKey, &CachedObject) -> bool,
        listed: Vec<Listed>,
    ) -> Relisted {
        let store = self.kind_or_insert(kind);
        let mut data = store.write();
        let mut out = Relisted::default();
        let mut seen = std::collections::HashSet::with_capacity(listed.len());
        for Listed {
            key,
            object,
            mut index_values,
        } in listed
        {
            seen.insert(key.clone());
            match data.objects.get(&key) {
                Some(old)
                    if !object.resource_version().is_empty()
                        && old.resource_version() == object.resource_version() =>
                {
                    // The same version, kept differently (the kind's
                    // projection changed): the fresh copy, silently.
                    if old.json() == object.json() {
                        out.unchanged.push((key, old.clone()));
                    } else {
                        refresh_index_values(&data, &object, &mut index_values);
                        data.insert(key.clone(), object.clone(), index_values);
                        out.unchanged.push((key, object));
                    }
                }
                existing => {
                    let old = existing.cloned();
                    refresh_index_values(&data, &object, &mut index_values);
                    let new = object;
                    data.insert(key.clone(), new.clone(), index_values);
                    match old {
                        Some(old) => out.modified.push((key, old, new)),
                        None => out.added.push((key, new)),
                    }
                }
            }
        }
        let gone: Vec<Arc<ObjectKey>> = data
            .objects
            .iter()
            .filter(|(k, o)| !seen.contains(*k) && in_scope(k, o))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(last) = data.remove(&key) {
                out.deleted.push((key, last));
            }
        }
        out
    }

    /// Put listed objects of `kind` in the cache as they are, one write lock
    /// for the batch: a list still streaming in fills the cache with what
    /// its subscribers have been handed. An object cached at the same
    /// resourceVersion keeps its cached copy.
    pub fn insert_listed(&self, kind: &KindKey, listed: &[Listed]) {
        if listed.is_empty() {
            return;
        }
        let store = self.kind_or_insert(kind);
        let mut data = store.write();
        for entry in listed {
            data.insert_listed(entry);
        }
    }

    /// Remove the cached objects of `kind` that are `in_scope` and not
    /// `listed`: the end of a list whose objects went into the cache as
    /// they came ([`Self::insert_listed`]). Returns what was removed, with
    /// its last state.
    pub fn retain_listed(
        &self,
        kind: &KindKey,
        in_scope: impl Fn(&ObjectKey, &CachedObject) -> bool,
        listed: &crate::vocabulary::KeySet,
    ) -> Entries {
        let Some(store) = self.kind(kind) else {
            return Vec::new();
        };
        let mut data = store.write();
        let gone: Vec<Arc<ObjectKey>> = data
            .objects
            .iter()
            .filter(|(k, o)| !listed.contains(*k) && in_scope(k, o))
            .map(|(k, _)| k.clone())
            .collect();
        gone.into_iter()
            .filter_map(|key| {
                let last = data.remove(&key)?;
                Some((key, last))
            })
            .collect()
    }

    /// Remove an object; returns its last cached state.
    pub fn remove(&self, kind: &KindKey, key: &ObjectKey) -> Option<Arc<CachedObject>> {
        self.kind(kind)?.write().remove(key)
    }

    /// Remove every object of a kind and its indexes' entries; returns what was cached.
    pub fn clear_kind(&self, kind: &KindKey) -> Entries {
        let Some(store) = self.kind(kind) else {
            return Vec::new();
        };
        let mut data = store.write();
        data.indexes.values_mut().for_each(Index::clear);
        data.bytes = 0;
        std::mem::take(&mut data.objects).into_iter().collect()
    }

    /// One object.
    pub fn get(&self, kind: &KindKey, key: &ObjectKey) -> Option<Arc<CachedObject>> {
        self.kind(kind)?.read().objects.get(key).cloned()
    }

    /// The objects of a kind, optionally in one namespace, matching a label
    /// selector, ordered by namespace and name.
    pub fn list(
        &self,
        kind: &KindKey,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Entries {
        let Some(store) = self.kind(kind) else {
            return Vec::new();
        };
        let data = store.read();
        let matches = |o: &CachedObject| {
            selector
                .requirements()
                .iter()
                .all(|r| r.matches(|k| o.label(k)))
        };
        let iter: Box<dyn Iterator<Item = (&Arc<ObjectKey>, &Arc<CachedObject>)>> = match namespace
        {
            Some(ns) => {
                let start = ObjectKey::new(Some(ns), "");
                Box::new(
                    data.objects
                        .range(start..)
                        .take_while(move |(k, _)| &*k.namespace == ns),
                )
            }
            None => Box::new(data.objects.iter()),
        };
        iter.filter(|(_, o)| matches(o))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect()
    }

    /// Declare an index over a kind. Objects already cached are indexed at
    /// once. Declaring the same index again shares it: it lives until every
    /// declaration is removed.
    ///
    /// # Errors
    /// [`Error::IndexConflict`] if the name is taken by a different index.
    pub fn add_index(
        &self,
        name: &str,
        kind: &KindKey,
        paths: Vec<FieldPath>,
    ) -> Result<(), Error> {
        let mut names = self.index_kinds.write();
        let store = self.kind_or_insert(kind);
        let mut data = store.write();
        if let Some((existing, holders)) = names.get_mut(name) {
            let same_paths = data
                .indexes
                .get(name)
                .is_some_and(|i| i.paths() == paths.as_slice());
            if existing == kind && same_paths {
                *holders += 1;
                return Ok(());
            }
            return Err(Error::IndexConflict {
                name: name.to_string(),
                existing: existing.clone(),
            });
        }
        let mut index = Index::new(paths);
        for (key, object) in &data.objects {
            index.set(key, index.values_of(&object.to_value()));
        }
        let name: Arc<str> = name.into();
        data.indexes.insert(name.clone(), index);
        // A projected kind keeps the index's paths from now on.
        data.projection = Projection::new(&data.kept()).map(Arc::new);
        names.insert(name, (kind.clone(), 1));
        Ok(())
    }

    /// Drop one declaration of an index; the last one drops the index.
    pub fn remove_index(&self, name: &str) {
        let kind = {
            let mut names = self.index_kinds.write();
            match names.get_mut(name) {
                Some((_, holders)) if *holders > 1 => {
                    *holders -= 1;
                    return;
                }
                Some(_) => names.remove(name).map(|(kind, _)| kind),
                None => None,
            }
        };
        let Some(kind) = kind else {
            return;
        };
        if let Some(store) = self.kind(&kind) {
            let mut data = store.write();
            data.indexes.remove(name);
            data.projection = Projection::new(&data.kept()).map(Arc::new);
        }
    }

    /// The kind an index covers.
    pub fn index_kind(&self, name: &str) -> Option<KindKey> {
        self.index_kinds.read().get(name).map(|(k, _)| k.clone())
    }

    /// The objects indexed under `value` in index `name`, ordered by namespace and name.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if no such index was declared.
    pub fn by_index(&self, name: &str, value: &str) -> Result<Entries, Error> {
        let kind = self
            .index_kind(name)
            .ok_or_else(|| Error::UnknownIndex(name.into()))?;
        let Some(store) = self.kind(&kind) else {
            return Ok(Vec::new());
        };
        let data = store.read();
        let index = data
            .indexes
            .get(name)
            .ok_or_else(|| Error::UnknownIndex(name.into()))?;
        Ok(index
            .get(value)
            .filter_map(|k| Some((k.clone(), data.objects.get(k)?.clone())))
            .collect())
    }

    /// Every value present in index `name`, sorted.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if no such index was declared.
    pub fn index_values(&self, name: &str) -> Result<Vec<String>, Error> {
        let kind = self
            .index_kind(name)
            .ok_or_else(|| Error::UnknownIndex(name.into()))?;
        let Some(store) = self.kind(&kind) else {
            return Ok(Vec::new());
        };
        let data = store.read();
        let index = data
            .indexes
            .get(name)
            .ok_or_else(|| Error::UnknownIndex(name.into()))?;
        Ok(index.values().map(str::to_string).collect())
    }

    /// Objects and bytes cached, over all kinds.
    pub fn stats(&self) -> Stats {
        let kinds: Vec<_> = self.kinds.read().values().cloned().collect();
        kinds.iter().fold(Stats::default(), |acc, k| {
            let d = k.read();
            Stats {
                objects: acc.objects + d.objects.len(),
                bytes: acc.bytes + d.bytes,
            }
        })
    }

    /// Objects and bytes cached for one kind.
    pub fn kind_stats(&self, kind: &KindKey) -> Stats {
        self.kind(kind).map_or_else(Stats::default, |k| {
            let d = k.read();
            Stats {
                objects: d.objects.len(),
                bytes: d.bytes,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str, labels: Value, rv: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"namespace": ns, "name": name, "labels": labels, "resourceVersion": rv}})
    }

    fn deploy(ns: &str, name: &str, cms: &[&str]) -> Value {
        let volumes: Vec<_> = cms
            .iter()
            .map(|c| json!({"name": c, "configMap": {"name": c}}))
            .collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"namespace": ns, "name": name},
               "spec": {"template": {"spec": {"volumes": volumes}}}})
    }

    fn names(v: Vec<(Arc<ObjectKey>, Arc<CachedObject>)>) -> Vec<String> {
        v.into_iter().map(|(k, _)| k.to_string()).collect()
    }

    fn cms() -> KindKey {
        KindKey::new("v1", "ConfigMap")
    }

    #[test]
    fn list_filters_by_namespace_and_label_selector_in_order() {
        let store = Store::default();
        store
            .upsert(cm("b", "x", json!({"app": "web"}), "1"))
            .unwrap();
        store
            .upsert(cm("a", "y", json!({"app": "db"}), "2"))
            .unwrap();
        store
            .upsert(cm("a", "x", json!({"app": "web"}), "3"))
            .unwrap();
        store.upsert(cm("ab", "z", json!({}), "4")).unwrap();
        let all = LabelSelector::default();
        assert_eq!(
            names(store.list(&cms(), None, &all)),
            ["a/x", "a/y", "ab/z", "b/x"]
        );
        assert_eq!(names(store.list(&cms(), Some("a"), &all)), ["a/x", "a/y"]);
        let web = LabelSelector::parse("app=web").unwrap();
        assert_eq!(names(store.list(&cms(), None, &web)), ["a/x", "b/x"]);
        assert_eq!(
            names(store.list(&KindKey::new("v1", "Secret"), None, &all)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn upsert_reports_the_previous_state() {
        let store = Store::default();
        let first = store.upsert(cm("a", "x", json!({}), "1")).unwrap();
        assert!(first.old.is_none());
        let second = store.upsert(cm("a", "x", json!({}), "2")).unwrap();
        assert_eq!(second.old.unwrap().resource_version(), "1");
        assert_eq!(
            store
                .get(&cms(), &ObjectKey::new(Some("a"), "x"))
                .unwrap()
                .resource_version(),
            "2"
        );
        assert_eq!(
            store
                .remove(&cms(), &ObjectKey::new(Some("a"), "x"))
                .unwrap()
                .resource_version(),
            "2"
        );
        assert!(store.get(&cms(), &ObjectKey::new(Some("a"), "x")).is_none());
        assert_eq!(store.stats(), Stats::default());
    }

    #[test]
    fn indexes_follow_inserts_updates_and_deletes() {
        let store = Store::default();
        let kind = KindKey::new("apps/v1", "Deployment");
        let path = FieldPath::parse("spec.template.spec.volumes[*].configMap.name").unwrap();
        store.add_index("by-cm", &kind, vec![path]).unwrap();
        store
            .upsert(deploy("a", "web", &["cfg", "shared"]))
            .unwrap();
        store.upsert(deploy("a", "api", &["shared"])).unwrap();
        assert_eq!(
            names(store.by_index("by-cm", "shared").unwrap()),
            ["a/api", "a/web"]
        );
        assert_eq!(store.index_values("by-cm").unwrap(), ["cfg", "shared"]);

        store.upsert(deploy("a", "web", &["other"])).unwrap();
        assert_eq!(names(store.by_index("by-cm", "shared").unwrap()), ["a/api"]);
        assert!(store.by_index("by-cm", "cfg").unwrap().is_empty());

        store.remove(&kind, &ObjectKey::new(Some("a"), "api"));
        assert_eq!(store.index_values("by-cm").unwrap(), ["other"]);
        assert!(matches!(
            store.by_index("nope", "x"),
            Err(Error::UnknownIndex(_))
        ));
    }

    #[test]
    fn an_index_added_later_covers_objects_already_cached() {
        let store = Store::default();
        store.upsert(deploy("a", "web", &["cfg"])).unwrap();
        let kind = KindKey::new("apps/v1", "Deployment");
        let path = FieldPath::parse("spec.template.spec.volumes[*].configMap.name").unwrap();
        store.add_index("by-cm", &kind, vec![path.clone()]).unwrap();
        assert_eq!(names(store.by_index("by-cm", "cfg").unwrap()), ["a/web"]);
        // Redeclaring the same index is fine; a different one under the name is not.
        store.add_index("by-cm", &kind, vec![path]).unwrap();
        let other = FieldPath::parse("spec.x").unwrap();
        assert!(matches!(
            store.add_index("by-cm", &kind, vec![other]),
            Err(Error::IndexConflict { .. })
        ));
        // Declared twice, it lives until both declarations are removed.
        store.remove_index("by-cm");
        assert_eq!(names(store.by_index("by-cm", "cfg").unwrap()), ["a/web"]);
        store.remove_index("by-cm");
        assert!(store.by_index("by-cm", "cfg").is_err());
    }

    #[test]
    fn objects_are_stored_stripped_and_compact() {
        let store = Store::default();
        let mut obj = cm("a", "x", json!({"k": "v"}), "1");
        obj["metadata"]["managedFields"] =
            json!([{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]);
        obj["data"] = json!({"payload": "x".repeat(1000)});
        store.upsert(obj.clone()).unwrap();
        let cached = store.get(&cms(), &ObjectKey::new(Some("a"), "x")).unwrap();
        assert!(cached.to_value()["metadata"].get("managedFields").is_none());
        let json_len = cached.json().len();
        let stats = store.stats();
        assert_eq!(stats.objects, 1);
        assert!(
            stats.bytes < json_len * 3 / 2,
            "{} bytes for {json_len} bytes of JSON",
            stats.bytes
        );
    }

    #[test]
    fn a_relist_reports_exactly_what_changed_and_leaves_other_scopes_alone() {
        let store = Store::default();
        store.upsert(cm("a", "keep", json!({}), "1")).unwrap();
        store.upsert(cm("a", "change", json!({}), "2")).unwrap();
        store.upsert(cm("a", "gone", json!({}), "3")).unwrap();
        store.upsert(cm("b", "other", json!({}), "4")).unwrap();
        let listed = [
            cm("a", "keep", json!({}), "1"),
            cm("a", "change", json!({}), "5"),
            cm("a", "new", json!({}), "6"),
        ]
        .into_iter()
        .map(|v| store.prepare_listed(&cms(), v).unwrap())
        .collect();
        let r = store.replace_scope(&cms(), |k, _| &*k.namespace == "a", listed);
        let names = |v: &[(Arc<ObjectKey>, Arc<CachedObject>)]| {
            v.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names(&r.added), ["a/new"]);
        assert_eq!(
            r.modified
                .iter()
                .map(|(k, o, n)| (
                    k.to_string(),
                    o.resource_version().to_string(),
                    n.resource_version().to_string()
                ))
                .collect::<Vec<_>>(),
            [("a/change".to_string(), "2".to_string(), "5".to_string())]
        );
        assert_eq!(names(&r.deleted), ["a/gone"]);
        assert_eq!(names(&r.unchanged), ["a/keep"]);
        assert!(
            store
                .get(&cms(), &ObjectKey::new(Some("b"), "other"))
                .is_some(),
            "out of scope, untouched"
        );
        assert!(
            store
                .get(&cms(), &ObjectKey::new(Some("a"), "gone"))
                .is_none()
        );
    }

    #[test]
    fn objects_without_identity_are_refused() {
        let store = Store::default();
        assert!(matches!(
            store.upsert(json!({"kind": "ConfigMap"})),
            Err(Error::MissingField("apiVersion"))
        ));
        assert!(matches!(
            store.upsert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})),
            Err(Error::MissingField("metadata.name"))
        ));
    }
    fn raw<'a>(json: &Value, labels: &'a BTreeMap<String, String>) -> RawParts<'a> {
        RawParts {
            json: json.to_string(),
            namespace: Some("a"),
            name: "x",
            resource_version: "1",
            uid: "u",
            labels,
        }
    }

    #[test]
    fn a_projected_kind_keeps_what_its_readers_and_indexes_need() {
        let store = Store::default();
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let mut object = cm("a", "x", json!({"app": "web"}), "1");
        object["data"] = json!({"big": "x".repeat(1000), "small": "y"});
        // Whole until a reader says otherwise.
        assert!(store.projection(&cms()).is_none());
        assert!(!store.set_need(&cms(), Need::of(["metadata.labels"])));
        let kept = store.upsert_raw(&cms(), raw(&object, &labels)).new;
        let value = kept.to_value();
        assert!(value.get("data").is_none(), "{value}");
        assert_eq!(value["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            value["metadata"]["annotations"][ANNOTATION],
            "metadata.labels"
        );
        assert_eq!(kept.label("app"), Some("web"));
        // An index's paths are kept too, and indexed.
        store
            .add_index(
                "small",
                &cms(),
                vec![FieldPath::parse("data.small").unwrap()],
            )
            .unwrap();
        store.upsert_raw(&cms(), raw(&object, &labels));
        let by_small = store.by_index("small", "y").unwrap();
        assert_eq!(by_small.len(), 1);
        assert!(by_small[0].1.to_value()["data"].get("big").is_none());
        // A reader that needs more widens it: the objects must be listed again,
        // and the same version listed again replaces the narrower copy
        // without counting as a change.
        assert!(store.set_need(&cms(), Need::Whole));
        let listed = store.prepare_listed_raw(&cms(), raw(&object, &labels));
        let relisted = store.replace_scope(&cms(), |_, _| true, vec![listed]);
        assert!(relisted.modified.is_empty() && relisted.added.is_empty());
        let now = store.get(&cms(), &ObjectKey::new(Some("a"), "x")).unwrap();
        assert_eq!(now.to_value()["data"]["big"], json!("x".repeat(1000)));
        // Narrowing needs no relist.
        assert!(!store.set_need(&cms(), Need::of(["data.small"])));
    }
}
