//! A cursor over a snapshot: how an initial list or a resync reaches a
//! plugin without queueing a copy of anything. The snapshot is the informer's
//! shared, sorted list of (key, state) references; the cursor hands out one
//! entry at a time as the plugin's lane has room, so 200,000 objects cost a
//! position, not 200,000 queued events.
//!
//! A first list may also be delivered while it still streams in: then the
//! cursor walks the [`Listing`] as it grows, through its [`ListingSlot`], and
//! is done once the lane has been told the list is complete
//! ([`Cursor::complete`]) and every entry has been handed out.
//!
//! An object whose live event arrives before the cursor reaches it is taken
//! out of order ([`Cursor::take`]), so that its initial event still comes
//! first.

use std::{sync::Arc, time::Instant};

use crate::{
    cache::CachedObject,
    informer::{Listing, ListingSlot, Purpose, Snapshot},
    plugin::{Event, manifest::Delivery},
    vocabulary::{EventType, KindKey, ObjectKey},
};

/// What a cursor walks.
#[derive(Debug)]
enum Entries {
    /// A snapshot: every entry is there from the start.
    Fixed(Arc<[(Arc<ObjectKey>, Arc<CachedObject>)]>),
    /// A first list still streaming in.
    Streaming {
        slot: Arc<ListingSlot>,
        /// The lane has been told the list is complete.
        complete: bool,
    },
}

/// One subscription's snapshot being delivered.
#[derive(Debug)]
pub struct Cursor {
    /// The subscription (index in the manifest) it delivers for.
    pub subscription: u32,
    /// The kind of its objects.
    pub kind: KindKey,
    /// Initial list or resync.
    pub purpose: Purpose,
    /// Whether its subscription is latest-state: then an entry carries the
    /// object's newest state when it is delivered, not the listed one.
    pub delivery: Delivery,
    /// Queue a `synced` event once every entry has been handled.
    pub then_synced: bool,
    /// When it started, for the age of what waits.
    pub started: Instant,
    entries: Entries,
    next: usize,
    /// Entries delivered out of order, one bit per entry of the snapshot;
    /// empty until the first such entry.
    taken: Vec<u64>,
    /// How many entries after `next` are taken.
    taken_ahead: usize,
    /// Part of the subscription's objects (a bucket this replica just took):
    /// it runs beside the subscription's other cursors instead of replacing
    /// them.
    partial: bool,
}

impl Cursor {
    /// A cursor at the start of `snapshot`, for `subscription`.
    pub fn new(
        subscription: u32,
        snapshot: Snapshot,
        delivery: Delivery,
        then_synced: bool,
    ) -> Self {
        Self {
            subscription,
            kind: snapshot.kind,
            purpose: snapshot.purpose,
            delivery,
            then_synced,
            started: Instant::now(),
            entries: Entries::Fixed(snapshot.objects),
            next: 0,
            taken: Vec::new(),
            taken_ahead: 0,
            partial: false,
        }
    }

    /// The same cursor, over part of its subscription's objects only.
    #[must_use]
    pub fn partial(mut self) -> Self {
        self.partial = true;
        self
    }

    /// Whether it covers part of its subscription's objects only.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// A cursor over a first list still streaming in, from `slot`, its
    /// subscriber's place in it.
    pub fn streaming(
        subscription: u32,
        slot: Arc<ListingSlot>,
        delivery: Delivery,
        then_synced: bool,
    ) -> Self {
        Self {
            subscription,
            kind: slot.listing().kind().clone(),
            purpose: Purpose::Initial,
            delivery,
            then_synced,
            started: Instant::now(),
            entries: Entries::Streaming {
                slot,
                complete: false,
            },
            next: 0,
            taken: Vec::new(),
            taken_ahead: 0,
            partial: false,
        }
    }

    /// Entries there so far: all of a snapshot's, those of a streaming list
    /// that have arrived.
    fn len(&self) -> usize {
        match &self.entries {
            Entries::Fixed(objects) => objects.len(),
            Entries::Streaming { slot, .. } => slot.listing().arrived(),
        }
    }

    /// The list it walks, if it is a streaming one.
    pub fn listing(&self) -> Option<&Arc<Listing>> {
        match &self.entries {
            Entries::Fixed(_) => None,
            Entries::Streaming { slot, .. } => Some(slot.listing()),
        }
    }

    /// The lane was told that the streaming list `listing` is complete;
    /// returns whether this cursor walks it.
    pub fn complete(&mut self, listing: &Arc<Listing>) -> bool {
        match &mut self.entries {
            Entries::Streaming { slot, complete } if Arc::ptr_eq(slot.listing(), listing) => {
                *complete = true;
                true
            }
            _ => false,
        }
    }

    /// Whether it may have more to deliver: all entries may arrive.
    fn is_open(&self) -> bool {
        matches!(
            self.entries,
            Entries::Streaming {
                complete: false,
                ..
            }
        )
    }

    /// Entries not delivered yet (counting those taken out of order as
    /// delivered); of a streaming list, those that have arrived.
    pub fn remaining(&self) -> usize {
        self.len().saturating_sub(self.next + self.taken_ahead)
    }

    /// Whether every entry has been handed out, in order or not, and no
    /// more will come.
    pub fn is_done(&self) -> bool {
        !self.is_open() && self.remaining() == 0
    }

    /// Whether [`Self::next_entry`] may have something now, or the cursor
    /// is done and only its end is left to take.
    pub fn is_ready(&self) -> bool {
        self.remaining() > 0 || self.is_done()
    }

    /// The next entry, in key order (a streaming list's: in the order it
    /// arrived).
    pub fn next_entry(&mut self) -> Option<(Arc<ObjectKey>, Arc<CachedObject>)> {
        while self.next < self.len() {
            let at = self.next;
            if self.is_taken(at) {
                self.next += 1;
                self.taken_ahead -= 1;
                continue;
            }
            let entry = match &self.entries {
                Entries::Fixed(objects) => {
                    let (key, object) = &objects[at];
                    Some((key.clone(), object.clone()))
                }
                Entries::Streaming { slot, .. } => slot.hand(at),
            };
            self.next += 1;
            return entry;
        }
        None
    }

    /// Take `key`'s entry out of order, if the cursor has not reached it
    /// yet: its live event is about to be queued and must come after it.
    pub fn take(&mut self, key: &ObjectKey) -> Option<(Arc<ObjectKey>, Arc<CachedObject>)> {
        let (at, entry) = match &self.entries {
            Entries::Fixed(objects) => {
                let rest = &objects[self.next..];
                let at = self.next + rest.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
                let (k, o) = &objects[at];
                (at, (k.clone(), o.clone()))
            }
            // Live events of its watch come only once the list is complete.
            Entries::Streaming { slot, .. } => {
                let at = slot.listing().position(key)?;
                if at < self.next {
                    return None;
                }
                (at, slot.listing().entry(at)?)
            }
        };
        if self.is_taken(at) {
            return None;
        }
        if self.taken.is_empty() {
            self.taken = vec![0; self.len().div_ceil(64)];
        }
        self.taken[at / 64] |= 1 << (at % 64);
        self.taken_ahead += 1;
        Some(entry)
    }

    /// Whether `key` is an entry of a streaming list that the cursor has not
    /// handed out yet. Known once the list is complete: before, the cache
    /// holds only what every subscriber has been handed.
    pub fn hides(&self, key: &ObjectKey) -> bool {
        let Entries::Streaming { slot, .. } = &self.entries else {
            return false;
        };
        slot.listing()
            .position(key)
            .is_some_and(|at| at >= self.next && !self.is_taken(at))
    }

    fn is_taken(&self, at: usize) -> bool {
        self.taken
            .get(at / 64)
            .is_some_and(|w| w & (1 << (at % 64)) != 0)
    }

    /// The event an entry is delivered as.
    pub fn event(&self, object: Arc<CachedObject>) -> Event {
        let (event_type, initial) = match self.purpose {
            Purpose::Initial => (EventType::Added, true),
            Purpose::Resync => (EventType::Resync, false),
        };
        Event {
            event_type,
            subscription: self.subscription,
            initial,
            final_state_unknown: false,
            object: Some(object),
            old_object: None,
            merged: 0,
        }
    }

    /// Whether an entry's object is read again from the cache when it is
    /// delivered: for latest-state subscriptions, and for resyncs, which
    /// deliver the current state by definition; not while a streaming list
    /// is still arriving, when the cache may not hold its state yet.
    pub fn refreshes(&self) -> bool {
        !self.is_open()
            && (self.purpose == Purpose::Resync || self.delivery == Delivery::LatestState)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Config, Store};
    use serde_json::json;

    fn snapshot(names: &[&str]) -> Snapshot {
        let store = Store::new(Config::default());
        Snapshot {
            kind: KindKey::new("v1", "ConfigMap"),
            purpose: Purpose::Initial,
            objects: names
                .iter()
                .map(|n| {
                    let o = store.prepare(json!({"metadata": {"name": n, "namespace": "a"}}));
                    (Arc::new(ObjectKey::new(Some("a"), n)), Arc::new(o))
                })
                .collect(),
        }
    }

    fn names(cursor: &mut Cursor) -> Vec<String> {
        std::iter::from_fn(|| cursor.next_entry())
            .map(|(k, _)| k.name.to_string())
            .collect()
    }

    #[test]
    fn entries_come_in_key_order_and_taken_ones_are_skipped() {
        let mut c = Cursor::new(
            0,
            snapshot(&["a", "b", "c", "d"]),
            Delivery::EveryEvent,
            true,
        );
        assert_eq!(c.remaining(), 4);
        assert_eq!(c.next_entry().unwrap().0.name.as_ref(), "a");
        assert_eq!(
            c.take(&ObjectKey::new(Some("a"), "c"))
                .unwrap()
                .0
                .name
                .as_ref(),
            "c"
        );
        // Already delivered, or already passed: nothing to take.
        assert!(c.take(&ObjectKey::new(Some("a"), "c")).is_none());
        assert!(c.take(&ObjectKey::new(Some("a"), "a")).is_none());
        assert!(c.take(&ObjectKey::new(Some("a"), "zz")).is_none());
        assert_eq!(c.remaining(), 2);
        assert_eq!(names(&mut c), ["b", "d"]);
        assert_eq!(c.remaining(), 0);
        assert!(c.is_done());
    }

    #[test]
    fn an_initial_entry_is_an_initial_added_event() {
        let c = Cursor::new(3, snapshot(&["a"]), Delivery::LatestState, false);
        let e = c.event(snapshot(&["a"]).objects[0].1.clone());
        assert_eq!(
            (e.event_type, e.initial, e.subscription),
            (EventType::Added, true, 3)
        );
        assert!(c.refreshes());
    }
}
