//! One plugin's pending events, and the promise they keep: no object's
//! final state is ever lost, and memory is bounded by objects, not events.
//!
//! - Order per object; parallel across objects; never one object twice at
//!   once (a key is busy while its event runs).
//! - Live events queue per object. Latest-state subscriptions keep at most
//!   one pending event per object, holding its newest state (or its delete).
//!   Every-event subscriptions keep every event while the plugin keeps up;
//!   past the bound, a new event of an object that already has pending ones
//!   merges them into at most two (a delete stays a delete, with its last
//!   state), and the delivered event says how many it merged. Nothing is
//!   ever dropped.
//! - Initial lists and resyncs are [`Cursor`]s over shared snapshots, taken
//!   in a fair share with live events, so they progress under a steady
//!   stream of changes and cost a position, not a queued copy per object.
//! - A `synced` barrier waits for its initial list and for every event of
//!   its subscription queued before it.
//!
//! Synchronous and I/O-free: the lane holds it under one short lock.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};

use super::cursor::Cursor;
use crate::{
    informer::{Listing, Purpose},
    plugin::{Event, manifest::Delivery},
    vocabulary::{EventType, KindKey, ObjectKey},
};

/// Entries of initial lists and resyncs waiting per running worker before
/// the lane starts another ([`EventQueue::wants_worker`]): a few hundred
/// microseconds of calls for a quick plugin.
pub const ENTRIES_PER_WORKER: usize = 128;

/// What a queued event is ordered by. Cheap to clone: the queue keeps a
/// few copies of each key it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Events about one object: handled one at a time, in order.
    Object(KindKey, Arc<ObjectKey>),
    /// A subscription's `synced` barrier.
    Barrier(u32),
}

/// One queued event.
#[derive(Debug)]
pub struct Job {
    /// What it is ordered by.
    pub key: Key,
    /// The subscription (index in the manifest) it is delivered for.
    pub subscription: u32,
    /// The event.
    pub event: Event,
    /// Calls that failed on it so far.
    pub attempts: u32,
    /// When it was first queued.
    pub queued_at: Instant,
    /// Deliver the object as the cache holds it when the call starts, not
    /// `event.object`: entries of latest-state initial lists and resyncs.
    pub refresh: bool,
    seq: u64,
}

impl Job {
    /// A job to queue.
    pub fn new(key: Key, subscription: u32, event: Event) -> Self {
        Self {
            key,
            subscription,
            event,
            attempts: 0,
            queued_at: Instant::now(),
            refresh: false,
            seq: 0,
        }
    }
}

/// What pushing did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Folded into the object's pending event (latest-state).
    Coalesced,
    /// Past the bound, the object's pending events and this one were merged
    /// (every-event): this many events fewer are pending.
    Merged(usize),
}

/// A snapshot of the queue for the admin view and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Live events waiting, and entries of initial lists and resyncs not
    /// yet delivered.
    pub pending: usize,
    /// Of those, initial-list and resync entries.
    pub syncing: usize,
    /// When the oldest of them was queued.
    pub oldest: Option<Instant>,
    /// The most live events that were ever pending at once.
    pub peak: usize,
}

/// The queue.
#[derive(Debug)]
pub struct EventQueue {
    /// Hashed with foldhash, as `busy`: every event looks its key up in
    /// both a few times, and a key is four strings.
    keys: HashMap<Key, VecDeque<Job>, foldhash::fast::RandomState>,
    /// Keys that may have a pending event and are not busy (checked on pop).
    ready: VecDeque<Key>,
    busy: HashSet<Key, foldhash::fast::RandomState>,
    /// Live events pending in `keys`.
    pending: usize,
    peak: usize,
    /// When each pending event was queued, by sequence number.
    ages: BTreeMap<u64, Instant>,
    /// (subscription, seq) of every object event pending or running, so a
    /// barrier knows when everything before it is done.
    outstanding: BTreeSet<(u32, u64)>,
    barriers: VecDeque<Job>,
    /// Initial lists and resyncs being delivered, at most one per
    /// subscription, taken in turn.
    cursors: VecDeque<Cursor>,
    /// Whose turn is next: a cursor's or the live events'.
    cursor_turn: bool,
    next_seq: u64,
    capacity: usize,
}

impl EventQueue {
    /// An empty queue; every-event subscriptions merge past `capacity`
    /// pending events.
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: HashMap::default(),
            ready: VecDeque::new(),
            busy: HashSet::default(),
            pending: 0,
            peak: 0,
            ages: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            barriers: VecDeque::new(),
            cursors: VecDeque::new(),
            cursor_turn: true,
            next_seq: 0,
            capacity: capacity.max(1),
        }
    }

    /// Events waiting: live ones, barriers and undelivered snapshot entries.
    pub fn len(&self) -> usize {
        self.pending + self.barriers.len() + self.syncing()
    }

    /// Whether nothing is waiting, and no list is still streaming in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.cursors.is_empty()
    }

    fn syncing(&self) -> usize {
        self.cursors.iter().map(Cursor::remaining).sum()
    }

    /// How much waits, and since when.
    pub fn backlog(&self) -> Backlog {
        let oldest = self
            .ages
            .values()
            .next()
            .copied()
            .into_iter()
            .chain(self.cursors.iter().map(|c| c.started))
            .chain(self.barriers.iter().map(|b| b.queued_at))
            .min();
        let syncing = self.syncing();
        Backlog {
            pending: self.pending + self.barriers.len() + syncing,
            syncing,
            oldest,
            peak: self.peak,
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Queue a live event of an object, or a barrier.
    pub fn push(&mut self, mut job: Job, delivery: Delivery) -> Pushed {
        job.seq = self.seq();
        if matches!(job.key, Key::Barrier(_)) {
            self.barriers.push_back(job);
            return Pushed::Queued;
        }
        // The object's initial or resync entry, if a cursor has not reached
        // it yet, goes first.
        self.pull_forward(&job.key, job.subscription);
        let sub = job.subscription;
        let queued = self
            .keys
            .get(&job.key)
            .map_or(0, |q| q.iter().filter(|p| p.subscription == sub).count());
        if queued > 0 {
            if delivery == Delivery::LatestState {
                if let Some(pending) = self
                    .keys
                    .get_mut(&job.key)
                    .and_then(|q| q.iter_mut().rev().find(|p| p.subscription == sub))
                {
                    absorb(pending, job);
                }
                return Pushed::Coalesced;
            }
            if self.pending >= self.capacity {
                return Pushed::Merged(self.merge(job));
            }
        }
        self.append(job);
        Pushed::Queued
    }

    /// Append a job to its object's queue (its seq already set).
    fn append(&mut self, job: Job) {
        let key = job.key.clone();
        self.ages.insert(job.seq, job.queued_at);
        self.outstanding.insert((job.subscription, job.seq));
        self.pending += 1;
        self.peak = self.peak.max(self.pending);
        let q = self.keys.entry(key.clone()).or_default();
        let was_empty = q.is_empty();
        q.push_back(job);
        if was_empty && !self.busy.contains(&key) {
            self.ready.push_back(key);
        }
    }

    /// Merge `job` and its object's pending events of the same subscription
    /// into at most two. Returns how many fewer events are pending.
    fn merge(&mut self, job: Job) -> usize {
        let sub = job.subscription;
        let Some(q) = self.keys.get_mut(&job.key) else {
            return 0;
        };
        let at = q.iter().position(|p| p.subscription == sub).unwrap_or(0);
        let mut run: Vec<Job> = Vec::new();
        let mut rest = VecDeque::with_capacity(q.len());
        for p in q.drain(..) {
            if p.subscription == sub {
                run.push(p);
            } else {
                rest.push_back(p);
            }
        }
        let before = run.len();
        for p in &run {
            self.ages.remove(&p.seq);
            self.outstanding.remove(&(p.subscription, p.seq));
        }
        run.push(job);
        let merged = collapse(run);
        let removed = before + 1 - merged.len();
        for (i, m) in merged.into_iter().enumerate() {
            self.ages.insert(m.seq, m.queued_at);
            self.outstanding.insert((m.subscription, m.seq));
            rest.insert((at + i).min(rest.len()), m);
        }
        *q = rest;
        // One more event came in; `removed` went: the pending count moves by
        // the difference.
        self.pending = self.pending + 1 - removed;
        removed
    }

    /// If a cursor of `subscription` has not reached `key` yet, take the
    /// object's entry out of it and queue it now, so that it comes before
    /// the live event about to be queued.
    fn pull_forward(&mut self, key: &Key, subscription: u32) {
        let Key::Object(kind, object) = key else {
            return;
        };
        let mut taken = Vec::new();
        for cursor in self
            .cursors
            .iter_mut()
            .filter(|c| c.subscription == subscription && c.kind == *kind)
        {
            if let Some((_, state)) = cursor.take(object) {
                let mut job = Job::new(key.clone(), subscription, cursor.event(state));
                job.refresh = cursor.refreshes();
                taken.push(job);
            }
        }
        for mut job in taken {
            job.seq = self.seq();
            self.append(job);
        }
    }

    /// Deliver a snapshot through a cursor. An initial list replaces any
    /// cursor its subscription still has (the plugin starts over); a resync
    /// while its subscription is still being delivered to in full is
    /// dropped: the running cursor brings the objects soon enough. A
    /// partial cursor (the objects of a bucket just taken) runs beside the
    /// others.
    pub fn start(&mut self, cursor: Cursor) {
        if !cursor.is_partial() {
            let sub = cursor.subscription;
            match cursor.purpose {
                Purpose::Resync
                    if self
                        .cursors
                        .iter()
                        .any(|c| c.subscription == sub && !c.is_partial()) =>
                {
                    return;
                }
                Purpose::Resync => {}
                Purpose::Initial => self.cursors.retain(|c| c.subscription != sub),
            }
        }
        if cursor.is_done() {
            // Nothing to deliver: only the barrier, if wanted.
            self.finish(&cursor);
            return;
        }
        self.cursors.push_back(cursor);
    }

    /// The streaming list `listing` is complete: its cursor (if the lane
    /// still delivers it) is done once it has handed out what is left.
    /// Returns whether a cursor of `subscription` walks it.
    pub fn complete(&mut self, subscription: u32, listing: &Arc<Listing>) -> bool {
        let Some(at) = self
            .cursors
            .iter_mut()
            .position(|c| c.subscription == subscription && c.complete(listing))
        else {
            return false;
        };
        if self.cursors[at].is_done()
            && let Some(cursor) = self.cursors.remove(at)
        {
            self.finish(&cursor);
        }
        true
    }

    /// Whether a list streaming in is being delivered.
    pub fn is_streaming(&self) -> bool {
        self.cursors.iter().any(|c| c.listing().is_some())
    }

    /// Whether the object `key` of `kind` belongs to a streaming list and
    /// has not been handed out yet.
    pub fn hides(&self, kind: &KindKey, key: &ObjectKey) -> bool {
        self.cursors.iter().any(|c| c.kind == *kind && c.hides(key))
    }

    /// A cursor handed out its last entry: queue its `synced` barrier.
    fn finish(&mut self, cursor: &Cursor) {
        if cursor.then_synced {
            let event = Event {
                event_type: EventType::Synced,
                subscription: cursor.subscription,
                initial: false,
                final_state_unknown: false,
                object: None,
                old_object: None,
                merged: 0,
            };
            let mut barrier = Job::new(
                Key::Barrier(cursor.subscription),
                cursor.subscription,
                event,
            );
            barrier.seq = self.seq();
            self.barriers.push_back(barrier);
        }
    }

    /// Whether [`Self::pop`] may find something.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
            || self.cursors.iter().any(Cursor::is_ready)
            || self.barriers.iter().any(|b| self.barrier_ready(b))
    }

    /// Whether one more worker, beside `workers` running, would have work
    /// of its own: a live event or a due barrier is worth one at once; the
    /// entries of initial lists and resyncs alone, only past
    /// [`ENTRIES_PER_WORKER`] for each worker already running. A streaming
    /// list arrives a few objects at a time: one worker keeps up with it
    /// unless the plugin is slow, and a second one would take turns with it
    /// on the same locks and cost thread wake-ups, not add calls.
    pub fn wants_worker(&self, workers: usize) -> bool {
        if workers == 0 {
            return self.has_ready();
        }
        !self.ready.is_empty()
            || self.barriers.iter().any(|b| self.barrier_ready(b))
            || self.cursors.iter().map(Cursor::remaining).sum::<usize>()
                > workers.saturating_mul(ENTRIES_PER_WORKER)
    }

    fn barrier_ready(&self, b: &Job) -> bool {
        !self
            .outstanding
            .range((b.subscription, 0)..(b.subscription, b.seq))
            .any(|_| true)
    }

    /// Take the next event whose object is not busy; its object is busy
    /// until [`Self::done`] or [`Self::retry`]. Barriers that are due come
    /// first; then cursors and live events take turns.
    pub fn pop(&mut self) -> Option<Job> {
        if let Some(at) = self.barriers.iter().position(|b| self.barrier_ready(b)) {
            return self.barriers.remove(at);
        }
        let first_cursor = self.cursor_turn;
        for cursor_now in [first_cursor, !first_cursor] {
            let job = if cursor_now {
                self.pop_cursor()
            } else {
                self.pop_live()
            };
            if let Some(job) = job {
                self.cursor_turn = !cursor_now;
                return Some(job);
            }
        }
        None
    }

    fn pop_live(&mut self) -> Option<Job> {
        while let Some(key) = self.ready.pop_front() {
            if self.busy.contains(&key) {
                continue;
            }
            let Some(job) = self.keys.get_mut(&key).and_then(VecDeque::pop_front) else {
                self.keys.remove(&key);
                continue;
            };
            self.pending -= 1;
            self.ages.remove(&job.seq);
            self.busy.insert(key);
            return Some(job);
        }
        None
    }

    fn pop_cursor(&mut self) -> Option<Job> {
        for _ in 0..self.cursors.len() {
            let mut cursor = self.cursors.pop_front()?;
            let mut found = None;
            while let Some((object, state)) = cursor.next_entry() {
                let key = Key::Object(cursor.kind.clone(), object);
                let mut job = Job::new(key.clone(), cursor.subscription, cursor.event(state));
                job.refresh = cursor.refreshes();
                job.seq = self.seq();
                job.queued_at = cursor.started;
                if self.busy.contains(&key) || self.keys.get(&key).is_some_and(|q| !q.is_empty()) {
                    // Events of another subscription of this object are
                    // queued or running: this one waits behind them.
                    self.append(job);
                    continue;
                }
                self.outstanding.insert((job.subscription, job.seq));
                self.busy.insert(key);
                found = Some(job);
                break;
            }
            if cursor.is_done() {
                self.finish(&cursor);
            } else {
                // Round robin between the subscriptions being synced.
                self.cursors.push_back(cursor);
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The event was handled (or given up): its object is free again.
    pub fn done(&mut self, job: &Job) {
        if matches!(job.key, Key::Barrier(_)) {
            return;
        }
        self.outstanding.remove(&(job.subscription, job.seq));
        self.release(&job.key);
    }

    /// The call failed and the event should be tried again: it goes back in
    /// front of its object's other events, and the object to the back of
    /// the line.
    pub fn retry(&mut self, mut job: Job) {
        job.attempts += 1;
        if matches!(job.key, Key::Barrier(_)) {
            self.barriers.push_front(job);
            return;
        }
        let key = job.key.clone();
        self.ages.insert(job.seq, job.queued_at);
        self.pending += 1;
        self.keys.entry(key.clone()).or_default().push_front(job);
        self.release(&key);
    }

    fn release(&mut self, key: &Key) {
        self.busy.remove(key);
        match self.keys.get(key) {
            Some(q) if !q.is_empty() => self.ready.push_back(key.clone()),
            _ => {
                self.keys.remove(key);
            }
        }
    }

    /// Drop everything waiting; returns how many events that was.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        for q in self.keys.values_mut() {
            for job in q.drain(..) {
                self.outstanding.remove(&(job.subscription, job.seq));
            }
        }
        let busy = &self.busy;
        self.keys.retain(|k, _| busy.contains(k));
        self.ready.clear();
        self.ages.clear();
        self.pending = 0;
        self.barriers.clear();
        self.cursors.clear();
        n
    }
}

/// Fold a newer event of the same object and subscription into a pending
/// one, so the plugin sees the newest state (or the delete) once, told how
/// many events it stands for.
fn absorb(pending: &mut Job, newer: Job) {
    use EventType::{Added, Deleted, Modified, Resync};
    let (older, newer_type) = (pending.event.event_type, newer.event.event_type);
    pending.event.merged += 1 + newer.event.merged;
    pending.event.event_type = match (older, newer_type) {
        // A delete is never lost; it carries the last state.
        (_, Deleted) => Deleted,
        // Still new to the plugin (or new again), in its newest state.
        (Added | Deleted, _) => Added,
        // A change, from the state the plugin last saw.
        (Modified, _) | (Resync, Modified) => Modified,
        (Resync, _) => Resync,
        // Barriers are never merged.
        (EventType::Synced, _) => newer_type,
    };
    if newer_type == Deleted || older == Deleted {
        pending.event.old_object = None;
    }
    pending.event.initial &= pending.event.event_type == Added;
    pending.event.final_state_unknown = newer.event.final_state_unknown;
    pending.event.object = newer.event.object;
    pending.refresh &= newer.refresh;
}

/// Merge a run of one object's events (one subscription, oldest first) into
/// at most two: a delete the plugin has to see, then the newest state of the
/// object created again after it. Every other event folds into its
/// neighbour.
fn collapse(run: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(2);
    for job in run {
        match out.last_mut() {
            // The object came back after a delete: keep the delete.
            Some(last)
                if last.event.event_type == EventType::Deleted
                    && job.event.event_type != EventType::Deleted =>
            {
                out.push(job);
            }
            Some(last) => absorb(last, job),
            None => out.push(job),
        }
        // The object that came back is gone again: one delete, the last state.
        if let [first, second] = out.as_slice()
            && first.event.event_type == EventType::Deleted
            && second.event.event_type == EventType::Deleted
            && let Some(second) = out.pop()
            && let Some(first) = out.last_mut()
        {
            absorb(first, second);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cache::{Config, Store},
        informer::Snapshot,
    };
    use serde_json::json;

    fn object(name: &str, rv: &str) -> Arc<crate::cache::CachedObject> {
        let store = Store::new(Config::default());
        Arc::new(store.prepare(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "a", "resourceVersion": rv}})))
    }

    fn event(event_type: EventType, name: &str, rv: &str) -> Event {
        Event {
            event_type,
            subscription: 0,
            initial: false,
            final_state_unknown: false,
            object: Some(object(name, rv)),
            old_object: None,
            merged: 0,
        }
    }

    fn kind() -> KindKey {
        KindKey::new("v1", "ConfigMap")
    }

    fn key(name: &str) -> Key {
        Key::Object(kind(), Arc::new(ObjectKey::new(Some("a"), name)))
    }

    fn job(event_type: EventType, name: &str, rv: &str) -> Job {
        Job::new(key(name), 0, event(event_type, name, rv))
    }

    fn rv(job: &Job) -> String {
        job.event
            .object
            .as_ref()
            .unwrap()
            .resource_version()
            .to_string()
    }

    fn snapshot(purpose: Purpose, names: &[&str]) -> Snapshot {
        Snapshot {
            kind: kind(),
            purpose,
            objects: names
                .iter()
                .map(|n| (Arc::new(ObjectKey::new(Some("a"), n)), object(n, "1")))
                .collect(),
        }
    }

    /// Pop everything, marking each done at once: (type, name, rv, merged).
    fn drain(q: &mut EventQueue) -> Vec<(EventType, String, String, u32)> {
        std::iter::from_fn(|| {
            let j = q.pop()?;
            q.done(&j);
            let name = match &j.key {
                Key::Object(_, k) => k.name.to_string(),
                Key::Barrier(_) => String::new(),
            };
            let rv = j.event.object.as_ref().map(|_| rv(&j)).unwrap_or_default();
            Some((j.event.event_type, name, rv, j.event.merged))
        })
        .collect()
    }

    #[test]
    fn events_of_one_object_come_out_in_order_one_at_a_time() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "x", "1"), Delivery::EveryEvent);
        q.push(job(EventType::Modified, "x", "2"), Delivery::EveryEvent);
        q.push(job(EventType::Added, "y", "3"), Delivery::EveryEvent);
        let first = q.pop().unwrap();
        assert_eq!(rv(&first), "1");
        // x is busy: y comes next, then nothing until x is done.
        let y = q.pop().unwrap();
        assert_eq!(rv(&y), "3");
        assert!(q.pop().is_none());
        q.done(&first);
        assert_eq!(rv(&q.pop().unwrap()), "2");
    }

    #[test]
    fn latest_state_keeps_one_event_per_object_with_the_newest_state() {
        let mut q = EventQueue::new(1);
        q.push(job(EventType::Added, "x", "1"), Delivery::LatestState);
        for i in 2..1000 {
            let pushed = q.push(
                job(EventType::Modified, "x", &i.to_string()),
                Delivery::LatestState,
            );
            assert_eq!(pushed, Pushed::Coalesced);
        }
        // Past the bound of 1, other objects still queue: nothing is shed.
        for name in ["y", "z"] {
            assert_eq!(
                q.push(job(EventType::Added, name, "5"), Delivery::LatestState),
                Pushed::Queued
            );
        }
        assert_eq!(
            drain(&mut q),
            [
                (EventType::Added, "x".into(), "999".into(), 998),
                (EventType::Added, "y".into(), "5".into(), 0),
                (EventType::Added, "z".into(), "5".into(), 0),
            ]
        );
    }

    #[test]
    fn a_delete_replaces_pending_updates() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Modified, "x", "1"), Delivery::LatestState);
        q.push(job(EventType::Deleted, "x", "2"), Delivery::LatestState);
        let j = q.pop().unwrap();
        assert_eq!(
            (j.event.event_type, rv(&j)),
            (EventType::Deleted, "2".into())
        );
    }

    #[test]
    fn every_event_keeps_every_event_within_its_bound() {
        let mut q = EventQueue::new(10);
        for i in 1..=10 {
            q.push(
                job(EventType::Modified, "x", &i.to_string()),
                Delivery::EveryEvent,
            );
        }
        let rvs: Vec<_> = drain(&mut q)
            .into_iter()
            .map(|(_, _, rv, m)| (rv, m))
            .collect();
        assert_eq!(
            rvs,
            (1..=10).map(|i| (i.to_string(), 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn past_its_bound_every_event_merges_an_objects_events_and_says_how_many() {
        let mut q = EventQueue::new(3);
        q.push(job(EventType::Added, "x", "1"), Delivery::EveryEvent);
        q.push(job(EventType::Modified, "x", "2"), Delivery::EveryEvent);
        q.push(job(EventType::Modified, "y", "3"), Delivery::EveryEvent);
        // Full: x's events merge with its new one.
        assert_eq!(
            q.push(job(EventType::Modified, "x", "4"), Delivery::EveryEvent),
            Pushed::Merged(2)
        );
        // An object with nothing pending still gets its event queued.
        assert_eq!(
            q.push(job(EventType::Modified, "z", "5"), Delivery::EveryEvent),
            Pushed::Queued
        );
        assert_eq!(
            drain(&mut q),
            [
                (EventType::Added, "x".into(), "4".into(), 2),
                (EventType::Modified, "y".into(), "3".into(), 0),
                (EventType::Modified, "z".into(), "5".into(), 0),
            ]
        );
    }

    #[test]
    fn merging_never_loses_a_delete() {
        let types = [
            EventType::Modified,
            EventType::Deleted,
            EventType::Added,
            EventType::Modified,
            EventType::Deleted,
            EventType::Added,
        ];
        let mut q = EventQueue::new(1);
        q.push(job(EventType::Modified, "x", "0"), Delivery::EveryEvent);
        for (i, t) in types.into_iter().enumerate() {
            q.push(job(t, "x", &(i + 1).to_string()), Delivery::EveryEvent);
        }
        // The object the plugin knew was deleted (every incarnation since
        // with it), then created again: a delete with the last state of the
        // one deleted, then the newest.
        assert_eq!(
            drain(&mut q),
            [
                (EventType::Deleted, "x".into(), "5".into(), 5),
                (EventType::Added, "x".into(), "6".into(), 0),
            ]
        );
    }

    #[test]
    fn synced_waits_for_the_events_before_it() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "a", "1"), Delivery::EveryEvent);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &[]),
            Delivery::EveryEvent,
            true,
        ));
        q.push(job(EventType::Added, "b", "2"), Delivery::EveryEvent);
        let a = q.pop().unwrap();
        // `a` runs; the barrier must wait for it, so `b` comes first.
        let b = q.pop().unwrap();
        assert_eq!(rv(&b), "2");
        assert!(q.pop().is_none());
        q.done(&a);
        assert_eq!(q.pop().unwrap().key, Key::Barrier(0));
    }

    #[test]
    fn a_retried_event_comes_before_later_ones_of_its_object() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "x", "1"), Delivery::EveryEvent);
        q.push(job(EventType::Modified, "x", "2"), Delivery::EveryEvent);
        let first = q.pop().unwrap();
        q.retry(first);
        let again = q.pop().unwrap();
        assert_eq!(rv(&again), "1");
        assert_eq!(again.attempts, 1);
    }

    #[test]
    fn an_initial_list_is_delivered_in_full_however_long_then_synced() {
        let names: Vec<String> = (0..5000).map(|i| format!("o{i:05}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut q = EventQueue::new(10);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &refs),
            Delivery::EveryEvent,
            true,
        ));
        assert_eq!(q.len(), 5000);
        let out = drain(&mut q);
        assert_eq!(out.len(), 5001);
        assert!(out[..5000].iter().all(|(t, ..)| *t == EventType::Added));
        assert_eq!(out[5000].0, EventType::Synced);
        assert_eq!(q.backlog().peak, 0, "no event was queued for the list");
    }

    #[test]
    fn list_entries_want_a_second_worker_only_past_what_one_keeps_up_with() {
        let names: Vec<String> = (0..2 * ENTRIES_PER_WORKER)
            .map(|i| format!("o{i:05}"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut q = EventQueue::new(10);
        assert!(!q.wants_worker(0), "nothing to do");
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &refs[..ENTRIES_PER_WORKER]),
            Delivery::EveryEvent,
            true,
        ));
        assert!(q.wants_worker(0));
        assert!(!q.wants_worker(1), "one worker keeps up with a short list");
        let mut q = EventQueue::new(10);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &refs),
            Delivery::EveryEvent,
            true,
        ));
        assert!(q.wants_worker(1), "a long list is worth a second worker");
        assert!(!q.wants_worker(2), "but not a third");
        // A live event is worth a worker of its own at once.
        let mut q = EventQueue::new(10);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &refs[..1]),
            Delivery::EveryEvent,
            true,
        ));
        assert!(!q.wants_worker(1));
        q.push(job(EventType::Modified, "live", "2"), Delivery::EveryEvent);
        assert!(q.wants_worker(1));
    }

    #[test]
    fn a_live_event_before_the_cursor_reaches_its_object_comes_after_its_initial_one() {
        let mut q = EventQueue::new(100);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &["a", "b", "c"]),
            Delivery::EveryEvent,
            true,
        ));
        q.push(job(EventType::Modified, "c", "2"), Delivery::EveryEvent);
        let out = drain(&mut q);
        let c: Vec<_> = out.iter().filter(|(_, n, ..)| n == "c").collect();
        assert_eq!(
            c,
            [
                &(EventType::Added, "c".into(), "1".into(), 0),
                &(EventType::Modified, "c".into(), "2".into(), 0)
            ]
        );
        assert_eq!(out.len(), 5, "a, b, c, c's change, synced");
        assert_eq!(out[4].0, EventType::Synced);
    }

    #[test]
    fn latest_state_folds_a_live_change_into_the_initial_event() {
        let mut q = EventQueue::new(100);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &["a", "b"]),
            Delivery::LatestState,
            true,
        ));
        q.push(job(EventType::Modified, "b", "7"), Delivery::LatestState);
        let out = drain(&mut q);
        assert_eq!(
            out,
            [
                (EventType::Added, "a".into(), "1".into(), 0),
                (EventType::Added, "b".into(), "7".into(), 1),
                (EventType::Synced, String::new(), String::new(), 0),
            ]
        );
    }

    #[test]
    fn initial_lists_progress_under_a_steady_stream_of_live_events() {
        let names: Vec<String> = (0..100).map(|i| format!("o{i:03}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut q = EventQueue::new(1000);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &refs),
            Delivery::EveryEvent,
            false,
        ));
        let mut initial = 0;
        for i in 0..100 {
            // A live event of another subscription's object each time.
            let mut live = job(EventType::Modified, &format!("live{i}"), "1");
            live.subscription = 1;
            live.event.subscription = 1;
            q.push(live, Delivery::EveryEvent);
            let j = q.pop().unwrap();
            q.done(&j);
            initial += usize::from(j.event.initial);
        }
        assert_eq!(initial, 50, "one turn each");
    }

    #[test]
    fn a_resync_while_the_initial_list_runs_is_dropped_and_a_new_initial_list_restarts() {
        let mut q = EventQueue::new(100);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &["a", "b"]),
            Delivery::EveryEvent,
            true,
        ));
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Resync, &["a", "b"]),
            Delivery::EveryEvent,
            false,
        ));
        let first = q.pop().unwrap();
        q.done(&first);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &["a", "b", "c"]),
            Delivery::EveryEvent,
            true,
        ));
        let rest: Vec<_> = drain(&mut q).into_iter().map(|(t, n, ..)| (t, n)).collect();
        assert_eq!(
            rest,
            [
                (EventType::Added, "a".into()),
                (EventType::Added, "b".into()),
                (EventType::Added, "c".into()),
                (EventType::Synced, String::new()),
            ]
        );
    }

    #[test]
    fn a_buckets_replay_runs_beside_the_initial_list_and_a_live_event_still_comes_after_it() {
        let mut q = EventQueue::new(100);
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Initial, &["a", "b"]),
            Delivery::EveryEvent,
            true,
        ));
        // A bucket taken meanwhile: its objects, without a second `synced`.
        q.start(
            Cursor::new(
                0,
                snapshot(Purpose::Initial, &["c", "d"]),
                Delivery::EveryEvent,
                false,
            )
            .partial(),
        );
        // A live change of d before the replay reaches it comes after it.
        q.push(job(EventType::Modified, "d", "2"), Delivery::EveryEvent);
        let mut got: Vec<_> = drain(&mut q)
            .into_iter()
            .map(|(t, n, r, _)| (t, n, r))
            .collect();
        let synced = got.iter().filter(|(t, ..)| *t == EventType::Synced).count();
        assert_eq!(synced, 1);
        let d: Vec<_> = got.iter().filter(|(_, n, _)| n == "d").cloned().collect();
        assert_eq!(
            d,
            [
                (EventType::Added, "d".into(), "1".into()),
                (EventType::Modified, "d".into(), "2".into())
            ]
        );
        got.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<_> = got.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(names, ["", "a", "b", "c", "d", "d"]);
    }

    #[test]
    fn a_resync_while_only_a_bucket_is_replayed_is_delivered() {
        let mut q = EventQueue::new(100);
        q.start(
            Cursor::new(
                0,
                snapshot(Purpose::Initial, &["c"]),
                Delivery::EveryEvent,
                false,
            )
            .partial(),
        );
        q.start(Cursor::new(
            0,
            snapshot(Purpose::Resync, &["e"]),
            Delivery::EveryEvent,
            false,
        ));
        let mut got: Vec<_> = drain(&mut q).into_iter().map(|(t, n, ..)| (t, n)).collect();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            got,
            [
                (EventType::Added, "c".into()),
                (EventType::Resync, "e".into())
            ]
        );
    }
}
