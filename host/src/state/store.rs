//! One plugin's store: what it holds (its view, in shards), how much of its
//! quota that is, and its counters. Both tiers keep their data here: the
//! memory tier in one shard that is the store itself; the durable tier in
//! one shard per object in the cluster, written through `durable` and
//! followed through the watch.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::{
    Tier,
    durable::Durable,
    object::entry_size,
    quota::{Quota, Usage},
    stats::Stats,
};

/// A value: bytes, shared between the view and the calls that read it.
pub(crate) type Bytes = Arc<[u8]>;

/// Identifies one value of a key: it changes whenever the key is written.
/// Plugins see it as an opaque string (`Display`), for compare-and-swap;
/// the host compares it to isolate calls from each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// The memory tier: the number of the store's commit that wrote it.
    Seq(u64),
    /// The durable tier: the resourceVersion of the shard's object that
    /// the write was made against. Every write of an object is made
    /// against a different one, so it identifies the write; it is stored
    /// with the key, so every replica, and a restarted host, has the same.
    Rv(Arc<str>),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seq(n) => write!(f, "{n}"),
            Self::Rv(rv) => f.write_str(rv),
        }
    }
}

/// One stored key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) version: Version,
    /// When it expires, in Unix milliseconds.
    pub(crate) expires_at: Option<u64>,
}

impl Entry {
    /// Whether it has not expired at `now` (Unix milliseconds).
    pub(crate) fn live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What one key and its value count against the quota.
pub(crate) fn footprint(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// The time now in Unix milliseconds, as expiries are kept.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The shard a key lives in, of `shards`: FNV-1a over its bytes, a hash
/// that never changes between builds or platforms (the key's place in the
/// cluster depends on it), written out because it is five lines.
pub(crate) fn shard_of(key: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    usize::try_from(hash % shards.max(1) as u64).unwrap_or(0)
}

/// One shard of a store's view: every key of a memory store, or the keys
/// of one object of a durable one.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) entries: BTreeMap<String, Entry>,
    /// Bytes of keys and values.
    pub(crate) bytes: u64,
    /// Durable: the object's resourceVersion as last seen; none while the
    /// object does not exist.
    pub(crate) rv: Option<String>,
    /// Durable: the object's uid, to tell a recreated object.
    pub(crate) uid: Option<String>,
    /// Durable: the leadership term in which this replica read the object
    /// afresh and has written it since. While the term lasts, the object
    /// changes only through this replica, and the watch (which may lag
    /// behind its own writes) does not overwrite the shard.
    pub(crate) owned: Option<u64>,
    /// About how large the durable object is (`object::entry_size`).
    pub(crate) object_bytes: u64,
    /// Entries with an expiry: none, and a sweep has nothing to look at.
    pub(crate) expiring: usize,
}

impl Shard {
    /// The live entry of `key`.
    pub(crate) fn live(&self, key: &str, now: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.live(now))
    }

    /// Put `entry` under `key`; returns the change in (keys, bytes).
    pub(crate) fn put(&mut self, key: String, entry: Entry) -> (i64, i64) {
        let key_len = key.len() as u64;
        let added = key_len + entry.value.len() as u64;
        self.object_bytes += entry_size(key.len(), &entry.value);
        self.expiring += usize::from(entry.expires_at.is_some());
        let (keys, removed) = match self.entries.insert(key, entry) {
            Some(old) => {
                self.object_bytes -= entry_size(key_len as usize, &old.value);
                self.expiring -= usize::from(old.expires_at.is_some());
                (0, key_len + old.value.len() as u64)
            }
            None => (1, 0),
        };
        self.bytes = self.bytes + added - removed;
        (keys, added as i64 - removed as i64)
    }

    /// Remove `key`; returns the change in (keys, bytes).
    pub(crate) fn remove(&mut self, key: &str) -> (i64, i64) {
        match self.entries.remove(key) {
            Some(old) => {
                let removed = footprint(key, &old.value);
                self.bytes -= removed;
                self.object_bytes -= entry_size(key.len(), &old.value);
                self.expiring -= usize::from(old.expires_at.is_some());
                (-1, -(removed as i64))
            }
            None => (0, 0),
        }
    }

    /// Replace every entry (from a fresh read of the durable object);
    /// returns the change in (keys, bytes).
    pub(crate) fn replace(&mut self, entries: BTreeMap<String, Entry>) -> (i64, i64) {
        let bytes = entries.iter().map(|(k, e)| footprint(k, &e.value)).sum();
        self.object_bytes = entries
            .iter()
            .map(|(k, e)| entry_size(k.len(), &e.value))
            .sum();
        self.expiring = entries.values().filter(|e| e.expires_at.is_some()).count();
        let delta = (
            entries.len() as i64 - self.entries.len() as i64,
            bytes as i64 - self.bytes as i64,
        );
        self.entries = entries;
        self.bytes = bytes;
        delta
    }
}

/// Where a durable store is: whether its objects have been read, so that
/// the plugin's calls may start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum Load {
    /// Reading the objects.
    Loading,
    /// Read: the view follows the objects from now on.
    Loaded,
    /// The objects cannot be read, and why (the CRD is not installed, the
    /// API server cannot be reached). Calls wait.
    Unavailable(String),
}

/// One plugin's store.
pub struct Store {
    plugin: Arc<str>,
    tier: Tier,
    quota: RwLock<Quota>,
    /// The memory tier's one shard, or the durable tier's shards once the
    /// number of them is known (when its objects have been read).
    shards: OnceLock<Box<[RwLock<Shard>]>>,
    keys: AtomicU64,
    bytes: AtomicU64,
    /// The memory tier's commit counter: the version of what it writes.
    seq: AtomicU64,
    /// Commits of the memory tier, one at a time.
    commit: Mutex<()>,
    pub(crate) durable: Option<Durable>,
    stats: Stats,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("plugin", &self.plugin)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// An empty memory store.
    pub(crate) fn memory(plugin: &str, quota: Quota) -> Self {
        let shards = OnceLock::new();
        let _ = shards.set(vec![RwLock::new(Shard::default())].into_boxed_slice());
        Self::new(plugin, Tier::Memory, quota, shards, None)
    }

    /// A durable store; its shards exist once its objects are read.
    pub(crate) fn durable(plugin: &str, quota: Quota, durable: Durable) -> Self {
        Self::new(plugin, Tier::Durable, quota, OnceLock::new(), Some(durable))
    }

    fn new(
        plugin: &str,
        tier: Tier,
        quota: Quota,
        shards: OnceLock<Box<[RwLock<Shard>]>>,
        durable: Option<Durable>,
    ) -> Self {
        Self {
            plugin: plugin.into(),
            tier,
            quota: RwLock::new(quota),
            shards,
            keys: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            commit: Mutex::new(()),
            durable,
            stats: Stats::default(),
        }
    }

    /// The plugin it belongs to.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Its tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Where a durable store's objects are.
    pub fn namespace(&self) -> Option<&str> {
        self.durable.as_ref().map(Durable::namespace)
    }

    /// How many shards it has (a durable store: objects; 0 until loaded).
    pub fn shard_count(&self) -> usize {
        self.shards().len()
    }

    /// Its quotas.
    pub fn quota(&self) -> Quota {
        *self.quota.read()
    }

    /// New quotas, from a new version of the plugin or its configuration.
    /// What is stored stays; writes past them are refused.
    pub(crate) fn set_quota(&self, quota: Quota) {
        *self.quota.write() = quota;
    }

    /// How much it holds.
    pub fn usage(&self) -> Usage {
        Usage {
            keys: self.keys.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Whether the plugin's calls may start: a memory store always, a
    /// durable one once its objects have been read.
    pub fn load(&self) -> Load {
        match &self.durable {
            None => Load::Loaded,
            Some(d) => d.load(),
        }
    }

    /// Wait until the store is loaded (at once for a memory store).
    pub async fn loaded(&self) {
        if let Some(d) = &self.durable {
            d.loaded().await;
        }
    }

    /// Its shards; none while a durable store has not been read.
    pub(crate) fn shards(&self) -> &[RwLock<Shard>] {
        self.shards.get().map_or(&[], |s| s)
    }

    /// Give a durable store its shards, once, when its objects are read.
    pub(crate) fn init_shards(&self, n: usize) -> &[RwLock<Shard>] {
        self.shards.get_or_init(|| {
            (0..n.max(1))
                .map(|_| RwLock::new(Shard::default()))
                .collect()
        })
    }

    /// The shard `key` lives in.
    pub(crate) fn shard_for(&self, key: &str) -> Option<(usize, &RwLock<Shard>)> {
        let shards = self.shards();
        if shards.is_empty() {
            return None;
        }
        let i = shard_of(key, shards.len());
        Some((i, &shards[i]))
    }

    /// Account for a change of one shard's entries.
    pub(crate) fn account(&self, (keys, bytes): (i64, i64)) {
        add(&self.keys, keys);
        add(&self.bytes, bytes);
    }

    /// The live entry of `key` now.
    pub(crate) fn lookup(&self, key: &str, now: u64) -> Option<Entry> {
        let (_, shard) = self.shard_for(key)?;
        shard.read().live(key, now).cloned()
    }

    /// Whether `key` is stored (live or not), and its value's size: what a
    /// write of it would replace, for the quota.
    pub(crate) fn stored_size(&self, key: &str) -> Option<u64> {
        let (_, shard) = self.shard_for(key)?;
        shard.read().entries.get(key).map(|e| e.value.len() as u64)
    }

    /// Live keys starting with `prefix`, in order, after `cursor` (or from
    /// the first), at most `take` of them from each shard.
    pub(crate) fn keys_from(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        take: usize,
        now: u64,
    ) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for shard in self.shards() {
            let shard = shard.read();
            keys.extend(
                shard
                    .entries
                    .range::<str, _>(start(prefix, cursor))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .filter(|(_, e)| e.live(now))
                    .take(take)
                    .map(|(k, _)| k.clone()),
            );
        }
        keys
    }

    /// One page of live keys, as the admin API and `informant state keys`
    /// list them: keys after `cursor`, and the cursor of the next page.
    pub fn page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, Option<String>) {
        let keys = self.keys_from(prefix, cursor, limit + 1, now_ms());
        page_of(keys.into_iter(), limit)
    }

    /// A key's value, version and expiry, as the admin API shows them.
    pub fn read(&self, key: &str) -> Option<(Bytes, Version, Option<u64>)> {
        self.lookup(key, now_ms())
            .map(|e| (e.value, e.version, e.expires_at))
    }

    /// The next version of the memory tier.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hold while committing to the memory tier.
    pub(crate) fn commit_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.commit.lock()
    }

    /// Remove the entries of a memory store that expired; returns how many.
    /// (A durable store's are removed by its leader, through a commit.)
    pub(crate) fn sweep_memory(&self, now: u64) -> usize {
        if self.durable.is_some() {
            return 0;
        }
        let _commit = self.commit_lock();
        let mut removed = 0;
        for shard in self.shards() {
            if shard.read().expiring == 0 {
                continue;
            }
            let mut shard = shard.write();
            let expired: Vec<String> = shard
                .entries
                .iter()
                .filter(|(_, e)| !e.live(now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                let delta = shard.remove(&key);
                self.account(delta);
                removed += 1;
            }
        }
        removed
    }
}

fn add(counter: &AtomicU64, delta: i64) {
    if delta >= 0 {
        counter.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
    } else {
        counter.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
    }
}

/// Where listing starts: after the cursor, if it is within the prefix's
/// range, else at the prefix.
pub(crate) fn start<'a>(
    prefix: &'a str,
    cursor: Option<&'a str>,
) -> (Bound<&'a str>, Bound<&'a str>) {
    match cursor {
        Some(c) if c >= prefix => (Bound::Excluded(c), Bound::Unbounded),
        _ => (Bound::Included(prefix), Bound::Unbounded),
    }
}

/// The first `limit` keys, and the cursor of the next page if there are more.
pub(crate) fn page_of(
    mut keys: impl Iterator<Item = String>,
    limit: usize,
) -> (Vec<String>, Option<String>) {
    let page: Vec<String> = keys.by_ref().take(limit).collect();
    let more = keys.next().is_some();
    let cursor = if more { page.last().cloned() } else { None };
    (page, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_their_shard_on_every_build() {
        // Where a key lives in the cluster must never change: these are
        // FNV-1a values, fixed.
        assert_eq!(shard_of("", 16), (0xcbf2_9ce4_8422_2325_u64 % 16) as usize);
        assert_eq!(shard_of("a", 16), (0xaf63_dc4c_8601_ec8c_u64 % 16) as usize);
        assert_eq!(shard_of("a", 1), 0);
        let spread: BTreeSet<usize> = (0..200).map(|i| shard_of(&format!("k{i}"), 16)).collect();
        assert_eq!(spread.len(), 16, "200 keys reach every one of 16 shards");
    }

    #[test]
    fn a_shard_accounts_for_what_it_holds() {
        let mut shard = Shard::default();
        let entry = |v: &[u8]| Entry {
            value: v.into(),
            version: Version::Seq(1),
            expires_at: None,
        };
        assert_eq!(shard.put("ab".into(), entry(b"123")), (1, 5));
        assert_eq!(shard.put("ab".into(), entry(b"1")), (0, -2));
        assert_eq!(shard.bytes, 3);
        assert_eq!(shard.remove("ab"), (-1, -3));
        assert_eq!(shard.remove("ab"), (0, 0));
        assert_eq!(shard.bytes, 0);
    }

    #[test]
    fn pages_end_with_a_cursor_only_when_more_follow() {
        let keys = |n: usize| (0..n).map(|i| format!("k{i}"));
        assert_eq!(page_of(keys(3), 3), (keys(3).collect(), None));
        assert_eq!(
            page_of(keys(4), 3),
            (keys(3).collect(), Some("k2".to_string()))
        );
    }

    #[test]
    fn expired_entries_read_as_absent_and_are_swept() {
        let store = Store::memory("p", Quota::default());
        let shard = &store.shards()[0];
        let now = now_ms();
        for (key, expires_at) in [
            ("gone", Some(now - 1)),
            ("kept", Some(now + 60_000)),
            ("ever", None),
        ] {
            let delta = shard.write().put(
                key.into(),
                Entry {
                    value: b"v".as_slice().into(),
                    version: Version::Seq(1),
                    expires_at,
                },
            );
            store.account(delta);
        }
        assert!(store.lookup("gone", now).is_none());
        assert!(store.lookup("kept", now).is_some());
        assert_eq!(store.page("", None, 10).0, ["ever", "kept"]);
        assert_eq!(store.usage().keys, 3);
        assert_eq!(store.sweep_memory(now), 1);
        assert_eq!(store.usage(), Usage { keys: 2, bytes: 10 });
    }
}
