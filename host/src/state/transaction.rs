//! One call's transaction on its plugin's store: what the call read (and
//! which version of it), and what it wrote, kept aside until the call
//! returns `ok`. Then [`Transaction::commit`] checks that nothing the call
//! read has changed since (optimistic concurrency: another instance may
//! have committed meanwhile) and applies the writes at once; if something
//! changed, the call is run again. A call that fails, traps or times out
//! drops its transaction, and the store is as it was.

use std::collections::{BTreeMap, HashMap};

use super::{
    CommitError, Error,
    stats::{CommitOutcome, Op, OpOutcome},
    store::{Bytes, Store, Version, footprint, now_ms, page_of, start},
};
use std::sync::Arc;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Keys listed per page unless the plugin asks for fewer, and the most.
pub const DEFAULT_PAGE: usize = 1_000;
/// The most keys one `list-keys` returns.
pub const MAX_PAGE: usize = 10_000;

/// What a call may do with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write (`handle`).
    ReadWrite,
    /// Only read, and why writes are refused (admission reviews).
    ReadOnly(&'static str),
    /// Nothing, and why (`init`: it runs on every fresh instance, and
    /// before a durable store is loaded).
    Closed(&'static str),
}

/// When a written key expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Never.
    Never,
    /// This many milliseconds after the commit.
    After(u64),
    /// At this time (Unix milliseconds): an increment keeps the key's expiry.
    At(u64),
}

impl Expiry {
    /// The expiry time of a write committed at `now`.
    pub(crate) fn at(self, now: u64) -> Option<u64> {
        match self {
            Self::Never => None,
            Self::After(ms) => Some(now.saturating_add(ms)),
            Self::At(at) => Some(at),
        }
    }
}

/// One write, not yet committed.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// Set the key.
    Put { value: Bytes, expiry: Expiry },
    /// Remove it.
    Delete,
}

/// One call's reads and writes.
#[derive(Debug)]
pub struct Transaction {
    store: Arc<Store>,
    access: Access,
    /// Each key read from the store, with the version seen (none: absent),
    /// as first read. Checked at commit.
    pub(crate) reads: HashMap<String, Option<Version>>,
    /// The writes, by key; a later write of a key replaces an earlier one.
    pub(crate) writes: BTreeMap<String, Write>,
    /// What the writes add to the store's keys and bytes, as projected
    /// when they were made.
    delta: (i64, i64),
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "a key is 1-{MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

fn ttl(ttl_ms: Option<u64>) -> Result<Expiry, Error> {
    match ttl_ms {
        None => Ok(Expiry::Never),
        Some(0) => Err(Error::Invalid(
            "a time to live is at least 1 ms (none: the key never expires)".into(),
        )),
        Some(ms) => Ok(Expiry::After(ms)),
    }
}

/// The integer an `increment` finds in a value: decimal text, as JSON
/// writes a number.
fn integer(key: &str, value: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "increment: the value of {key:?} is not an integer ({} bytes)",
                value.len()
            ))
        })
}

impl Transaction {
    /// A transaction of one call on `store`.
    pub fn new(store: Arc<Store>, access: Access) -> Self {
        Self {
            store,
            access,
            reads: HashMap::new(),
            writes: BTreeMap::new(),
            delta: (0, 0),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether the call wrote anything.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    fn count<T>(&self, op: Op, result: Result<T, Error>) -> Result<T, Error> {
        let outcome = match &result {
            Ok(_) => OpOutcome::Ok,
            Err(Error::Invalid(_)) => OpOutcome::Invalid,
            Err(Error::Forbidden(_)) => OpOutcome::Forbidden,
            Err(Error::LimitExceeded(_)) => OpOutcome::LimitExceeded,
        };
        self.store.stats().op(op, outcome);
        result
    }

    fn writable(&self) -> Result<(), Error> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly(why) | Access::Closed(why) => Err(Error::Forbidden(format!(
                "the store cannot be written here: {why}"
            ))),
        }
    }

    fn readable(&self) -> Result<(), Error> {
        match self.access {
            Access::Closed(why) => Err(Error::Forbidden(format!(
                "the store cannot be used here: {why}"
            ))),
            _ => Ok(()),
        }
    }

    /// The value of `key` as this call sees it: its own write, else the
    /// store's, whose version is remembered for the commit.
    fn read(&mut self, key: &str) -> Result<Option<(Bytes, Option<Version>)>, Error> {
        self.readable()?;
        check_key(key)?;
        if let Some(w) = self.writes.get(key) {
            return Ok(match w {
                Write::Put { value, .. } => Some((value.clone(), None)),
                Write::Delete => None,
            });
        }
        let entry = self.store.lookup(key, now_ms());
        if self.access == Access::ReadWrite && !self.reads.contains_key(key) {
            self.reads
                .insert(key.to_string(), entry.as_ref().map(|e| e.version.clone()));
        }
        Ok(entry.map(|e| (e.value, Some(e.version))))
    }

    /// The expiry of the stored `key` (an increment keeps it).
    fn expiry_of(&self, key: &str) -> Expiry {
        match self.writes.get(key) {
            Some(Write::Put { expiry, .. }) => *expiry,
            Some(Write::Delete) => Expiry::Never,
            None => self
                .store
                .lookup(key, now_ms())
                .and_then(|e| e.expires_at)
                .map_or(Expiry::Never, Expiry::At),
        }
    }

    /// Record a write, if the quotas allow it.
    fn write(&mut self, key: String, write: Write) -> Result<(), Error> {
        self.writable()?;
        check_key(&key)?;
        let quota = self.store.quota();
        let new = match &write {
            Write::Put { value, .. } => {
                let len = value.len() as u64;
                if len > quota.max_value_bytes {
                    return Err(Error::LimitExceeded(format!(
                        "the value of {key:?} is {len} bytes, more than this store allows \
                         (state.maxValueBytes: {})",
                        quota.max_value_bytes
                    )));
                }
                Some(len)
            }
            Write::Delete => None,
        };
        let before = match self.writes.get(&key) {
            Some(Write::Put { value, .. }) => Some(value.len() as u64),
            Some(Write::Delete) => None,
            None => self.store.stored_size(&key),
        };
        let size = |v: Option<u64>| v.map_or(0, |n| (key.len() as u64 + n) as i64);
        let delta = (
            i64::from(new.is_some()) - i64::from(before.is_some()),
            size(new) - size(before),
        );
        let usage = self.store.usage();
        let keys = usage.keys as i64 + self.delta.0 + delta.0;
        let bytes = usage.bytes as i64 + self.delta.1 + delta.1;
        if delta.0 > 0 && keys > quota.max_keys as i64 {
            return Err(Error::LimitExceeded(format!(
                "the store would hold {keys} keys, more than it may (state.maxKeys: {})",
                quota.max_keys
            )));
        }
        if delta.1 > 0 && bytes > quota.max_total_bytes as i64 {
            return Err(Error::LimitExceeded(format!(
                "the store would hold {bytes} bytes of keys and values, more than it may \
                 (state.maxTotalBytes: {})",
                quota.max_total_bytes
            )));
        }
        if let (Some(durable), Write::Put { value, .. }) = (&self.store.durable, &write) {
            durable.check_room(&self.store, &key, value)?;
        }
        self.delta = (self.delta.0 + delta.0, self.delta.1 + delta.1);
        self.writes.insert(key, write);
        Ok(())
    }

    /// `get`.
    pub fn get(&mut self, key: &str) -> Result<Option<Bytes>, Error> {
        let result = self.read(key).map(|v| v.map(|(value, _)| value));
        self.count(Op::Get, result)
    }

    /// `get-versioned`: the value and its version. A value this call wrote
    /// has no version until it commits: its version is empty, and matches
    /// nothing.
    pub fn get_versioned(&mut self, key: &str) -> Result<Option<(Bytes, String)>, Error> {
        let result = self.read(key).map(|v| {
            v.map(|(value, version)| (value, version.map_or_else(String::new, |v| v.to_string())))
        });
        self.count(Op::GetVersioned, result)
    }

    /// `exists`.
    pub fn exists(&mut self, key: &str) -> Result<bool, Error> {
        let result = self.read(key).map(|v| v.is_some());
        self.count(Op::Exists, result)
    }

    /// `set`.
    pub fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), Error> {
        let result = ttl(ttl_ms).and_then(|expiry| {
            self.write(
                key,
                Write::Put {
                    value: value.into(),
                    expiry,
                },
            )
        });
        self.count(Op::Set, result)
    }

    /// `delete`.
    pub fn delete(&mut self, key: String) -> Result<(), Error> {
        let result = self.write(key, Write::Delete);
        self.count(Op::Delete, result)
    }

    /// `compare-and-swap`.
    pub fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<&str>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, Error> {
        let result = self.cas(key, expected, value, ttl_ms);
        self.count(Op::CompareAndSwap, result)
    }

    fn cas(
        &mut self,
        key: String,
        expected: Option<&str>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, Error> {
        self.writable()?;
        let expiry = ttl(ttl_ms)?;
        let current = self.read(&key)?;
        let matches = match (&current, expected) {
            (None, None) => true,
            // A value this call wrote has no version yet: nothing names it.
            (Some((_, Some(version))), Some(expected)) => version.to_string() == expected,
            _ => false,
        };
        if !matches {
            return Ok(false);
        }
        self.write(
            key,
            Write::Put {
                value: value.into(),
                expiry,
            },
        )?;
        Ok(true)
    }

    /// `increment`.
    pub fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        let result = self.add(key, delta);
        self.count(Op::Increment, result)
    }

    fn add(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        self.writable()?;
        let current = match self.read(&key)? {
            Some((value, _)) => integer(&key, &value)?,
            None => 0,
        };
        let sum = current.checked_add(delta).ok_or_else(|| {
            Error::Invalid(format!(
                "increment: {current} + {delta} overflows a signed 64-bit integer ({key:?})"
            ))
        })?;
        let expiry = self.expiry_of(&key);
        self.write(
            key,
            Write::Put {
                value: sum.to_string().into_bytes().into(),
                expiry,
            },
        )?;
        Ok(sum)
    }

    /// `get-many`.
    pub fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Bytes>>, Error> {
        let result = keys
            .iter()
            .map(|k| self.read(k).map(|v| v.map(|(value, _)| value)))
            .collect();
        self.count(Op::GetMany, result)
    }

    /// `set-many`: every entry, or none if one is refused.
    pub fn set_many(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), Error> {
        let result = self.put_all(entries, ttl_ms);
        self.count(Op::SetMany, result)
    }

    fn put_all(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), Error> {
        let expiry = ttl(ttl_ms)?;
        let (writes, delta) = (self.writes.clone(), self.delta);
        for (key, value) in entries {
            let put = Write::Put {
                value: value.into(),
                expiry,
            };
            if let Err(e) = self.write(key, put) {
                (self.writes, self.delta) = (writes, delta);
                return Err(e);
            }
        }
        Ok(())
    }

    /// `delete-many`.
    pub fn delete_many(&mut self, keys: Vec<String>) -> Result<(), Error> {
        let result = self.writable().and_then(|()| {
            keys.iter().try_for_each(|k| check_key(k))?;
            keys.into_iter()
                .try_for_each(|k| self.write(k, Write::Delete))
        });
        self.count(Op::DeleteMany, result)
    }

    /// `list-keys`: the store's live keys with this call's writes over them.
    pub fn list_keys(
        &mut self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<String>), Error> {
        self.readable()?;
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n => (n as usize).min(MAX_PAGE),
        };
        let bounds = start(prefix, cursor);
        let own: Vec<(&String, &Write)> = self
            .writes
            .range::<str, _>(bounds)
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        let deleted = own
            .iter()
            .filter(|(_, w)| matches!(w, Write::Delete))
            .count();
        // Enough from each shard that, with this call's deletes taken out,
        // more than a page is left wherever more exists.
        let mut keys = self
            .store
            .keys_from(prefix, cursor, limit + 1 + deleted, now_ms());
        for (key, write) in own {
            match write {
                Write::Put { .. } => keys.insert(key.clone()),
                Write::Delete => keys.remove(key.as_str()),
            };
        }
        let result = Ok(page_of(keys.into_iter(), limit));
        self.count(Op::ListKeys, result)
    }

    /// Apply the call's writes, if nothing it read has changed since. A
    /// call that only read commits nothing and is never run again.
    ///
    /// # Errors
    /// [`CommitError::Conflict`]: run the call again;
    /// [`CommitError::Failed`]: the durable tier could not write.
    pub fn commit(self) -> Result<(), CommitError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let result = match &store.durable {
            Some(durable) => durable.commit(&store, self.reads, self.writes),
            None => {
                commit_memory(&store, &self.reads, self.writes).map(|()| CommitOutcome::Committed)
            }
        };
        let outcome = match &result {
            Ok(outcome) => *outcome,
            Err(CommitError::Conflict) => CommitOutcome::Conflict,
            Err(CommitError::Failed(_)) => CommitOutcome::Failed,
        };
        store.stats().commit(outcome);
        result.map(|_| ())
    }
}

/// Whether the store, with `writes` applied, is within its quotas (a write
/// that only shrinks it always is). Checked at commit: another commit since
/// the writes were made may have used the room they counted on, and the
/// call then runs again, to be refused when it writes.
pub(crate) fn within_quota(store: &Store, writes: &BTreeMap<String, Write>) -> bool {
    let (mut keys, mut bytes) = (0i64, 0i64);
    for (key, write) in writes {
        let before = store.stored_size(key).map(|len| key.len() as u64 + len);
        let after = match write {
            Write::Put { value, .. } => Some(footprint(key, value)),
            Write::Delete => None,
        };
        keys += i64::from(after.is_some()) - i64::from(before.is_some());
        bytes += after.unwrap_or(0) as i64 - before.unwrap_or(0) as i64;
    }
    let usage = store.usage();
    let quota = store.quota();
    !((keys > 0 && usage.keys as i64 + keys > quota.max_keys as i64)
        || (bytes > 0 && usage.bytes as i64 + bytes > quota.max_total_bytes as i64))
}

/// Commit to a memory store: check the reads, the quotas, apply.
fn commit_memory(
    store: &Store,
    reads: &HashMap<String, Option<Version>>,
    writes: BTreeMap<String, Write>,
) -> Result<(), CommitError> {
    let _commit = store.commit_lock();
    let shard = &store.shards()[0];
    let now = now_ms();
    {
        let s = shard.read();
        for (key, seen) in reads {
            if s.live(key, now).map(|e| &e.version) != seen.as_ref() {
                return Err(CommitError::Conflict);
            }
        }
    }
    if !within_quota(store, &writes) {
        return Err(CommitError::Conflict);
    }
    let version = Version::Seq(store.next_seq());
    let mut s = shard.write();
    for (key, write) in writes {
        let delta = match write {
            Write::Put { value, expiry } => s.put(
                key,
                super::store::Entry {
                    value,
                    version: version.clone(),
                    expires_at: expiry.at(now),
                },
            ),
            Write::Delete => s.remove(&key),
        };
        store.account(delta);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::quota::Quota;

    fn store() -> Arc<Store> {
        Arc::new(Store::memory("p", Quota::default()))
    }

    fn txn(store: &Arc<Store>) -> Transaction {
        Transaction::new(store.clone(), Access::ReadWrite)
    }

    fn get(store: &Arc<Store>, key: &str) -> Option<String> {
        txn(store)
            .get(key)
            .unwrap()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn writes_take_effect_only_when_committed() {
        let store = store();
        let mut t = txn(&store);
        t.set("a".into(), b"1".to_vec(), None).unwrap();
        assert_eq!(t.get("a").unwrap().as_deref(), Some(b"1".as_slice()));
        assert_eq!(get(&store, "a"), None, "not visible before the commit");
        drop(t);
        assert_eq!(get(&store, "a"), None, "a dropped call leaves nothing");
        let mut t = txn(&store);
        t.set("a".into(), b"1".to_vec(), None).unwrap();
        t.commit().unwrap();
        assert_eq!(get(&store, "a").as_deref(), Some("1"));
        assert_eq!(store.usage().keys, 1);
    }

    #[test]
    fn a_call_whose_reads_changed_conflicts_and_one_that_only_read_does_not() {
        let store = store();
        let mut first = txn(&store);
        let mut second = txn(&store);
        assert_eq!(first.increment("n".into(), 1).unwrap(), 1);
        assert_eq!(second.increment("n".into(), 1).unwrap(), 1);
        let mut reader = txn(&store);
        reader.get("n").unwrap();
        first.commit().unwrap();
        assert!(matches!(second.commit(), Err(CommitError::Conflict)));
        reader.commit().unwrap();
        let mut again = txn(&store);
        assert_eq!(again.increment("n".into(), 1).unwrap(), 2);
        again.commit().unwrap();
        assert_eq!(get(&store, "n").as_deref(), Some("2"));
        let commits = store.stats().commits();
        assert_eq!(commits[0], (CommitOutcome::Committed, 2));
        assert_eq!(commits[1], (CommitOutcome::Conflict, 1));
    }

    #[test]
    fn compare_and_swap_follows_the_version() {
        let store = store();
        let mut t = txn(&store);
        assert!(
            t.compare_and_swap("k".into(), None, b"a".to_vec(), None)
                .unwrap()
        );
        t.commit().unwrap();
        let mut t = txn(&store);
        let (_, version) = t.get_versioned("k").unwrap().unwrap();
        assert!(
            !t.compare_and_swap("k".into(), None, b"x".to_vec(), None)
                .unwrap()
        );
        assert!(
            !t.compare_and_swap("k".into(), Some("nope"), b"x".to_vec(), None)
                .unwrap()
        );
        assert!(
            t.compare_and_swap("k".into(), Some(&version), b"b".to_vec(), None)
                .unwrap()
        );
        t.commit().unwrap();
        let mut t = txn(&store);
        assert!(
            !t.compare_and_swap("k".into(), Some(&version), b"c".to_vec(), None)
                .unwrap(),
            "the old version no longer matches"
        );
        assert_eq!(get(&store, "k").as_deref(), Some("b"));
    }

    #[test]
    fn increment_reads_integers_and_refuses_anything_else() {
        let store = store();
        let mut t = txn(&store);
        assert_eq!(t.increment("n".into(), -5).unwrap(), -5);
        assert_eq!(t.increment("n".into(), 7).unwrap(), 2);
        t.set("text".into(), b"\"a\"".to_vec(), None).unwrap();
        assert!(matches!(
            t.increment("text".into(), 1),
            Err(Error::Invalid(_))
        ));
        t.set("max".into(), i64::MAX.to_string().into_bytes(), None)
            .unwrap();
        assert!(matches!(
            t.increment("max".into(), 1),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn quotas_refuse_with_limit_exceeded() {
        let store = Arc::new(Store::memory(
            "p",
            Quota {
                max_keys: 2,
                max_value_bytes: 4,
                max_total_bytes: 6,
            },
        ));
        let mut t = txn(&store);
        assert!(matches!(
            t.set("k".into(), b"12345".to_vec(), None),
            Err(Error::LimitExceeded(m)) if m.contains("state.maxValueBytes")
        ));
        t.set("a".into(), b"1".to_vec(), None).unwrap();
        t.set("b".into(), b"1".to_vec(), None).unwrap();
        assert!(matches!(
            t.set("c".into(), b"1".to_vec(), None),
            Err(Error::LimitExceeded(m)) if m.contains("state.maxKeys")
        ));
        assert!(matches!(
            t.set("a".into(), b"1234".to_vec(), None),
            Err(Error::LimitExceeded(m)) if m.contains("state.maxTotalBytes")
        ));
        // Overwriting and deleting are always within the quota.
        t.set("a".into(), b"12".to_vec(), None).unwrap();
        t.delete("b".into()).unwrap();
        t.set("c".into(), b"1".to_vec(), None).unwrap();
        t.commit().unwrap();
        assert_eq!(store.usage().keys, 2);
        let limit = store
            .stats()
            .ops()
            .into_iter()
            .find(|(op, outcome, _)| *op == Op::Set && *outcome == OpOutcome::LimitExceeded);
        assert_eq!(limit.map(|(_, _, n)| n), Some(3));
    }

    #[test]
    fn a_set_many_that_is_refused_writes_nothing() {
        let store = Arc::new(Store::memory(
            "p",
            Quota {
                max_keys: 2,
                ..Quota::default()
            },
        ));
        let mut t = txn(&store);
        let entries = (0..3).map(|i| (format!("k{i}"), b"v".to_vec())).collect();
        assert!(t.set_many(entries, None).is_err());
        assert!(!t.has_writes());
    }

    #[test]
    fn a_closed_store_refuses_reads_too() {
        let store = store();
        let mut t = Transaction::new(store, Access::Closed("init runs on every instance"));
        assert!(matches!(t.get("a"), Err(Error::Forbidden(m)) if m.contains("init runs")));
        assert!(matches!(t.list_keys("", None, 0), Err(Error::Forbidden(_))));
    }

    #[test]
    fn read_only_calls_cannot_write() {
        let store = store();
        let mut t = Transaction::new(
            store.clone(),
            Access::ReadOnly("a review has no side effects"),
        );
        assert!(matches!(
            t.set("a".into(), vec![], None),
            Err(Error::Forbidden(m)) if m.contains("no side effects")
        ));
        assert!(t.get("a").unwrap().is_none());
        assert!(
            t.reads.is_empty(),
            "a read-only call is never checked, so keeps no reads"
        );
    }

    #[test]
    fn keys_are_listed_in_pages_with_the_calls_own_writes() {
        let store = store();
        let mut t = txn(&store);
        for i in 0..5 {
            t.set(format!("a/{i}"), vec![], None).unwrap();
        }
        t.set("b/0".into(), vec![], None).unwrap();
        t.commit().unwrap();
        let mut t = txn(&store);
        t.delete("a/1".into()).unwrap();
        t.set("a/9".into(), vec![], None).unwrap();
        let (page, cursor) = t.list_keys("a/", None, 2).unwrap();
        assert_eq!(page, ["a/0", "a/2"]);
        let (page, cursor) = t.list_keys("a/", cursor.as_deref(), 2).unwrap();
        assert_eq!(page, ["a/3", "a/4"]);
        let (page, cursor) = t.list_keys("a/", cursor.as_deref(), 2).unwrap();
        assert_eq!(page, ["a/9"]);
        assert_eq!(cursor, None);
        assert_eq!(t.list_keys("", None, 0).unwrap().0.len(), 6);
        assert!(matches!(t.get(""), Err(Error::Invalid(_))));
        assert!(matches!(t.get(&"x".repeat(513)), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_time_to_live_expires_the_key_and_increment_keeps_it() {
        let store = store();
        let mut t = txn(&store);
        t.set("short".into(), b"1".to_vec(), Some(60_000)).unwrap();
        t.commit().unwrap();
        let expires = store.read("short").unwrap().2.unwrap();
        let mut t = txn(&store);
        assert_eq!(t.increment("short".into(), 1).unwrap(), 2);
        t.commit().unwrap();
        assert_eq!(store.read("short").unwrap().2, Some(expires));
        assert!(matches!(
            txn(&store).set("z".into(), vec![], Some(0)),
            Err(Error::Invalid(_))
        ));
    }
}
