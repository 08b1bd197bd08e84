//! A watch's first list as it streams in, shared by the informer that reads
//! it and the plugins it is handed to while it still arrives.
//!
//! The informer appends each listed object as it comes; every subscriber
//! that takes the list this way holds a [`ListingSlot`], its place in it:
//! how many entries it has been handed. What the cache shows of the list
//! follows the slowest of them: an entry goes into the cache once every
//! slot has been handed it, so through the cache no plugin can read an
//! object of the list it has not been handed yet. When the list is
//! complete the informer finishes it: the rest goes into the cache, what
//! the list lacks leaves it, and from then on the cache holds the whole list
//! (as a list delivered whole would have it), before `synced`.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::{Purpose, Snapshot};
use crate::{
    cache::{CachedObject, Entries, Listed, Store},
    vocabulary::{KeySet, KindKey, ObjectKey},
};

/// Entries appended between two wake-ups of the subscribers, at most, while
/// the stream keeps arriving.
const PUBLISH_EVERY: usize = 256;

/// A first list, streaming in.
pub struct Listing {
    kind: KindKey,
    cache: Arc<Store>,
    state: Mutex<State>,
    /// Entries appended so far (`state.entries.len()`, readable without the
    /// lock).
    arrived: AtomicUsize,
    /// Bumped when subscribers should look for new entries.
    grown: watch::Sender<usize>,
    /// Each entry's position, for taking one out of order; built on first
    /// use, once the list is complete.
    positions: OnceLock<HashMap<Arc<ObjectKey>, usize>>,
}

struct State {
    entries: Vec<Listed>,
    /// Per slot, how many entries its subscriber has been handed; `None`
    /// once the slot is released.
    handed: Vec<Option<usize>>,
    /// The most entries any slot has been handed.
    most_handed: usize,
    /// Entries `0..inserted` are in the cache.
    inserted: usize,
    /// Complete and in the cache, or abandoned: nothing more goes into the
    /// cache through the slots.
    closed: bool,
    /// Published last at this many entries.
    published: usize,
}

impl std::fmt::Debug for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listing")
            .field("kind", &self.kind)
            .field("arrived", &self.arrived())
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}

impl Listing {
    /// An empty list of `kind`, filling `cache`.
    pub(crate) fn new(kind: KindKey, cache: Arc<Store>) -> Arc<Self> {
        Arc::new(Self {
            kind,
            cache,
            state: Mutex::new(State {
                entries: Vec::new(),
                handed: Vec::new(),
                most_handed: 0,
                inserted: 0,
                closed: false,
                published: 0,
            }),
            arrived: AtomicUsize::new(0),
            grown: watch::Sender::new(0),
            positions: OnceLock::new(),
        })
    }

    /// The kind of its objects.
    pub fn kind(&self) -> &KindKey {
        &self.kind
    }

    /// Entries so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::Acquire)
    }

    /// Whether the list is complete and in the cache.
    pub fn is_complete(&self) -> bool {
        self.positions.get().is_some() || {
            let st = self.state.lock();
            st.closed && st.inserted == st.entries.len()
        }
    }

    /// Append one listed object. Subscribers are woken every
    /// [`PUBLISH_EVERY`] entries, and by [`Self::publish`].
    pub(crate) fn push(&self, listed: Listed) {
        let mut st = self.state.lock();
        st.entries.push(listed);
        let n = st.entries.len();
        self.arrived.store(n, Ordering::Release);
        if n - st.published >= PUBLISH_EVERY {
            st.published = n;
            drop(st);
            self.grown.send_replace(n);
        }
    }

    /// Wake the subscribers if entries came since the last time: the
    /// informer calls it whenever the stream has nothing more ready.
    pub(crate) fn publish(&self) {
        let mut st = self.state.lock();
        let n = st.entries.len();
        if n != st.published || st.closed {
            st.published = n;
            drop(st);
            self.grown.send_replace(n);
        }
    }

    /// A receiver told when entries arrive or the list completes.
    pub fn grown(&self) -> watch::Receiver<usize> {
        self.grown.subscribe()
    }

    /// A new subscriber's place, at the start.
    pub fn slot(self: &Arc<Self>) -> ListingSlot {
        let mut st = self.state.lock();
        st.handed.push(Some(0));
        ListingSlot {
            listing: self.clone(),
            slot: st.handed.len() - 1,
        }
    }

    /// Entry `at`, if it has arrived.
    pub fn entry(&self, at: usize) -> Option<(Arc<ObjectKey>, Arc<CachedObject>)> {
        let st = self.state.lock();
        st.entries
            .get(at)
            .map(|l| (l.key().clone(), l.object().clone()))
    }

    /// Where `key` is in the list, once it is complete (`None` before).
    pub fn position(&self, key: &ObjectKey) -> Option<usize> {
        if !self.is_complete() {
            return None;
        }
        let positions = self.positions.get_or_init(|| {
            let st = self.state.lock();
            st.entries
                .iter()
                .enumerate()
                .map(|(i, l)| (l.key().clone(), i))
                .collect()
        });
        positions.get(key).copied()
    }

    /// Entry `at` for a slot's subscriber, which has now been handed every
    /// entry up to it.
    fn hand(&self, slot: usize, at: usize) -> Option<(Arc<ObjectKey>, Arc<CachedObject>)> {
        let mut st = self.state.lock();
        let entry = st
            .entries
            .get(at)
            .map(|l| (l.key().clone(), l.object().clone()))?;
        self.handed_locked(&mut st, slot, at + 1);
        Some(entry)
    }

    /// A slot's subscriber has been handed the entries before `upto`. The
    /// cache gets every entry all live slots have been handed.
    fn handed(&self, slot: usize, upto: usize) {
        let mut st = self.state.lock();
        self.handed_locked(&mut st, slot, upto);
    }

    fn handed_locked(&self, st: &mut State, slot: usize, upto: usize) {
        if let Some(Some(h)) = st.handed.get_mut(slot) {
            *h = (*h).max(upto);
        }
        st.most_handed = st.most_handed.max(upto);
        if st.closed {
            return;
        }
        let least = st
            .handed
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(0)
            .min(st.entries.len());
        if least > st.inserted {
            // Under the lock: the end of the list (`finish`) and these
            // inserts never interleave.
            self.cache
                .insert_listed(&self.kind, &st.entries[st.inserted..least]);
            st.inserted = least;
        }
    }

    fn release(&self, slot: usize) {
        if let Some(h) = self.state.lock().handed.get_mut(slot) {
            *h = None;
        }
    }

    /// The list is complete: put what is not in the cache yet in it, remove
    /// the objects `in_scope` the list lacks, and wake the subscribers.
    /// Returns the keys listed.
    pub(crate) fn finish(&self, in_scope: impl Fn(&ObjectKey, &CachedObject) -> bool) -> KeySet {
        let mut st = self.state.lock();
        let from = st.inserted;
        self.cache.insert_listed(&self.kind, &st.entries[from..]);
        st.inserted = st.entries.len();
        st.closed = true;
        let mut keys = KeySet::with_capacity_and_hasher(st.entries.len(), Default::default());
        keys.extend(st.entries.iter().map(|l| l.key().clone()));
        self.cache.retain_listed(&self.kind, in_scope, &keys);
        drop(st);
        self.publish();
        keys
    }

    /// The list broke off before it was complete (the watch fails and lists
    /// again): nothing more of it goes into the cache. Returns the entries
    /// some subscriber had been handed, which the next list must account
    /// for.
    pub(crate) fn abandon(&self) -> Entries {
        let mut st = self.state.lock();
        st.closed = true;
        let handed = st.most_handed.min(st.entries.len());
        st.entries[..handed]
            .iter()
            .map(|l| (l.key().clone(), l.object().clone()))
            .collect()
    }

    /// The complete list as a snapshot, sorted by key: for a subscriber that
    /// did not take it as it came.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        let mut objects: Vec<_> = st
            .entries
            .iter()
            .map(|l| (l.key().clone(), l.object().clone()))
            .collect();
        drop(st);
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            kind: self.kind.clone(),
            purpose: Purpose::Initial,
            objects: objects.into(),
        }
    }
}

/// One subscriber's place in a [`Listing`]: dropping it releases the place,
/// so the cache no longer waits for this subscriber.
#[derive(Debug)]
pub struct ListingSlot {
    listing: Arc<Listing>,
    slot: usize,
}

impl ListingSlot {
    /// The list.
    pub fn listing(&self) -> &Arc<Listing> {
        &self.listing
    }

    /// The subscriber has been handed the entries before `upto`.
    pub fn handed(&self, upto: usize) {
        self.listing.handed(self.slot, upto);
    }

    /// Entry `at`, if it has arrived, handed to the subscriber: it has now
    /// been handed every entry up to it.
    pub fn hand(&self, at: usize) -> Option<(Arc<ObjectKey>, Arc<CachedObject>)> {
        self.listing.hand(self.slot, at)
    }
}

impl Drop for ListingSlot {
    fn drop(&mut self) {
        self.listing.release(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::RawParts;
    use std::collections::BTreeMap;

    fn kind() -> KindKey {
        KindKey::new("v1", "ConfigMap")
    }

    fn listed(cache: &Store, name: &str, rv: &str) -> Listed {
        let labels = BTreeMap::new();
        cache.prepare_listed_raw(
            &kind(),
            RawParts {
                json: format!(r#"{{"metadata":{{"name":"{name}","namespace":"a"}}}}"#),
                namespace: Some("a"),
                name,
                resource_version: rv,
                uid: "",
                labels: &labels,
            },
        )
    }

    fn cached(cache: &Store) -> Vec<String> {
        cache
            .list(&kind(), None, &Default::default())
            .into_iter()
            .map(|(k, _)| k.name.to_string())
            .collect()
    }

    #[test]
    fn the_cache_gets_what_every_subscriber_has_been_handed_then_the_whole_list() {
        let cache = Arc::new(Store::default());
        let listing = Listing::new(kind(), cache.clone());
        let fast = listing.slot();
        let slow = listing.slot();
        for (name, rv) in [("a", "1"), ("b", "2"), ("c", "3")] {
            listing.push(listed(&cache, name, rv));
        }
        fast.handed(3);
        assert!(
            cached(&cache).is_empty(),
            "the slow one has been handed none"
        );
        slow.handed(1);
        assert_eq!(cached(&cache), ["a"]);
        // A subscriber that leaves holds nothing back.
        drop(slow);
        fast.handed(3);
        assert_eq!(cached(&cache), ["a", "b", "c"]);
        assert!(!listing.is_complete());
        let keys = listing.finish(|_, _| true);
        assert_eq!(keys.len(), 3);
        assert!(listing.is_complete());
        assert_eq!(listing.position(&ObjectKey::new(Some("a"), "b")), Some(1));
    }

    #[test]
    fn the_end_of_the_list_removes_what_it_lacks_and_completes_the_cache() {
        let cache = Arc::new(Store::default());
        // Left over from before: not listed again, so gone.
        cache.insert_listed(&kind(), &[listed(&cache, "old", "1")]);
        let listing = Listing::new(kind(), cache.clone());
        let slot = listing.slot();
        listing.push(listed(&cache, "x", "5"));
        listing.push(listed(&cache, "y", "6"));
        assert_eq!(cached(&cache), ["old"]);
        listing.finish(|_, _| true);
        assert_eq!(cached(&cache), ["x", "y"]);
        // Nothing goes in through a slot after the end.
        slot.handed(2);
        assert_eq!(listing.snapshot().objects.len(), 2);
    }

    #[test]
    fn an_abandoned_list_says_what_was_handed_and_fills_the_cache_no_more() {
        let cache = Arc::new(Store::default());
        let listing = Listing::new(kind(), cache.clone());
        let slot = listing.slot();
        for (name, rv) in [("a", "1"), ("b", "2"), ("c", "3")] {
            listing.push(listed(&cache, name, rv));
        }
        slot.handed(2);
        let handed: Vec<_> = listing
            .abandon()
            .into_iter()
            .map(|(k, _)| k.name.to_string())
            .collect();
        assert_eq!(handed, ["a", "b"]);
        slot.handed(3);
        assert_eq!(cached(&cache), ["a", "b"]);
    }
}
