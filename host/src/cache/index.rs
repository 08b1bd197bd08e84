//! One secondary index over the objects of a kind.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use serde_json::Value;

use super::path::FieldPath;
use crate::vocabulary::ObjectKey;

/// Maps every value found at the index's field paths to the objects holding it.
#[derive(Debug)]
pub(crate) struct Index {
    paths: Vec<FieldPath>,
    entries: BTreeMap<Box<str>, BTreeSet<Arc<ObjectKey>>>,
    /// The values each object is indexed under, so an update or delete can
    /// unindex it without parsing the old object again. Objects with no
    /// value are absent.
    reverse: HashMap<Arc<ObjectKey>, Box<[Box<str>]>>,
}

impl Index {
    pub(crate) fn new(paths: Vec<FieldPath>) -> Self {
        Self {
            paths,
            entries: BTreeMap::new(),
            reverse: HashMap::new(),
        }
    }

    pub(crate) fn paths(&self) -> &[FieldPath] {
        &self.paths
    }

    /// The index keys of an object, deduplicated.
    pub(crate) fn values_of(&self, object: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.paths {
            p.collect(object, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Index `key` under `values`, replacing whatever it was indexed under.
    pub(crate) fn set(&mut self, key: &Arc<ObjectKey>, values: Vec<String>) {
        self.unset(key);
        if values.is_empty() {
            return;
        }
        let values: Box<[Box<str>]> = values.into_iter().map(String::into_boxed_str).collect();
        for v in &values {
            self.entries
                .entry(v.clone())
                .or_default()
                .insert(key.clone());
        }
        self.reverse.insert(key.clone(), values);
    }

    /// Remove `key` from the index.
    pub(crate) fn unset(&mut self, key: &ObjectKey) {
        let Some(old) = self.reverse.remove(key) else {
            return;
        };
        for v in old.iter() {
            if let Some(set) = self.entries.get_mut(v) {
                set.remove(key);
                if set.is_empty() {
                    self.entries.remove(v);
                }
            }
        }
    }

    /// The keys indexed under `value`, in order.
    pub(crate) fn get(&self, value: &str) -> impl Iterator<Item = &Arc<ObjectKey>> {
        self.entries.get(value).into_iter().flatten()
    }

    /// Every value present, sorted.
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| &**k)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.reverse.clear();
    }
}
