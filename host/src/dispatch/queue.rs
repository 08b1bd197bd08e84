//! One plugin's event queue: per-object order, coalescing for latest-state
//! subscriptions, a bound with oldest-first shedding, and `synced` barriers
//! that wait for the events before them.
//!
//! Synchronous and lock-free inside: the lane holds it under one short lock.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};

use crate::{
    cache::{KindKey, ObjectKey},
    plugin::{Event, EventType},
};

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
            seq: 0,
        }
    }
}

/// What pushing did.
#[derive(Debug)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Merged into a pending event of the same object and subscription.
    Coalesced,
    /// Queued, and the queue was full: this, the oldest pending event, was
    /// dropped to make room.
    Shed(Box<Job>),
}

/// The queue.
#[derive(Debug)]
pub struct EventQueue {
    keys: HashMap<Key, VecDeque<Job>>,
    /// Keys that may have a pending event and are not busy (checked on pop).
    ready: VecDeque<Key>,
    busy: HashSet<Key>,
    /// Pending object events by age, for shedding.
    by_age: BTreeMap<u64, Key>,
    /// (subscription, seq) of every object event pending or running, so a
    /// barrier knows when everything before it is done.
    outstanding: BTreeSet<(u32, u64)>,
    barriers: VecDeque<Job>,
    next_seq: u64,
    capacity: usize,
}

impl EventQueue {
    /// An empty queue holding at most `capacity` pending object events.
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: HashMap::new(),
            ready: VecDeque::new(),
            busy: HashSet::new(),
            by_age: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            barriers: VecDeque::new(),
            next_seq: 0,
            capacity: capacity.max(1),
        }
    }

    /// Pending events (not counting running ones).
    pub fn len(&self) -> usize {
        self.by_age.len() + self.barriers.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue an event. With `coalesce`, a pending event of the same object
    /// and subscription absorbs it instead (latest-state delivery).
    pub fn push(&mut self, mut job: Job, coalesce: bool) -> Pushed {
        self.next_seq += 1;
        job.seq = self.next_seq;
        if matches!(job.key, Key::Barrier(_)) {
            self.barriers.push_back(job);
            return Pushed::Queued;
        }
        if coalesce
            && let Some(pending) = self.keys.get_mut(&job.key).and_then(|q| {
                q.iter_mut()
                    .rev()
                    .find(|p| p.subscription == job.subscription)
            })
        {
            merge(&mut pending.event, job.event);
            return Pushed::Coalesced;
        }
        let shed = if self.by_age.len() >= self.capacity {
            self.shed_oldest()
        } else {
            None
        };
        let key = job.key.clone();
        self.by_age.insert(job.seq, key.clone());
        self.outstanding.insert((job.subscription, job.seq));
        let q = self.keys.entry(key.clone()).or_default();
        let was_empty = q.is_empty();
        q.push_back(job);
        if was_empty && !self.busy.contains(&key) {
            self.ready.push_back(key);
        }
        match shed {
            Some(job) => Pushed::Shed(Box::new(job)),
            None => Pushed::Queued,
        }
    }

    fn shed_oldest(&mut self) -> Option<Job> {
        let (seq, key) = self.by_age.pop_first()?;
        let q = self.keys.get_mut(&key)?;
        let at = q.iter().position(|j| j.seq == seq)?;
        let job = q.remove(at)?;
        if q.is_empty() && !self.busy.contains(&key) {
            self.keys.remove(&key);
        }
        self.outstanding.remove(&(job.subscription, job.seq));
        Some(job)
    }

    /// Whether [`Self::pop`] may find something.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty() || self.barriers.iter().any(|b| self.barrier_ready(b))
    }

    fn barrier_ready(&self, b: &Job) -> bool {
        !self
            .outstanding
            .range((b.subscription, 0)..(b.subscription, b.seq))
            .any(|_| true)
    }

    /// Take the next event whose object is not busy; its object is busy
    /// until [`Self::done`] or [`Self::retry`].
    pub fn pop(&mut self) -> Option<Job> {
        if let Some(at) = self.barriers.iter().position(|b| self.barrier_ready(b)) {
            return self.barriers.remove(at);
        }
        while let Some(key) = self.ready.pop_front() {
            if self.busy.contains(&key) {
                continue;
            }
            let Some(job) = self.keys.get_mut(&key).and_then(VecDeque::pop_front) else {
                self.keys.remove(&key);
                continue;
            };
            self.by_age.remove(&job.seq);
            self.busy.insert(key);
            return Some(job);
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
        self.by_age.insert(job.seq, key.clone());
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

    /// Drop everything pending; returns how many events that was.
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
        self.by_age.clear();
        self.barriers.clear();
        n
    }
}

/// Fold a newer event into a pending one of the same object, so the plugin
/// sees the newest state (or the delete) once.
fn merge(pending: &mut Event, newer: Event) {
    use EventType::{Added, Modified, Resync};
    match (pending.event_type, newer.event_type) {
        // The pending event delivers the newest state anyway.
        (Added | Modified, Resync) => pending.object = newer.object,
        // Still new to the plugin, in its newest state.
        (Added, Modified) => pending.object = newer.object,
        // Keep the state the plugin last saw as the old object.
        (Modified, Modified) => pending.object = newer.object,
        _ => *pending = newer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Config, Store};
    use serde_json::json;

    fn event(event_type: EventType, name: &str, rv: &str) -> Event {
        let store = Store::new(Config::default());
        let object = store.prepare(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "a", "resourceVersion": rv}}));
        Event {
            event_type,
            subscription: 0,
            initial: false,
            final_state_unknown: false,
            object: Some(Arc::new(object)),
            old_object: None,
        }
    }

    fn key(name: &str) -> Key {
        Key::Object(
            KindKey::new("v1", "ConfigMap"),
            Arc::new(ObjectKey::new(Some("a"), name)),
        )
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

    #[test]
    fn events_of_one_object_come_out_in_order_one_at_a_time() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "x", "1"), false);
        q.push(job(EventType::Modified, "x", "2"), false);
        q.push(job(EventType::Added, "y", "3"), false);
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
    fn latest_state_coalesces_into_the_newest_state() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "x", "1"), true);
        for i in 2..1000 {
            assert!(matches!(
                q.push(job(EventType::Modified, "x", &i.to_string()), true),
                Pushed::Coalesced
            ));
        }
        assert_eq!(q.len(), 1);
        let j = q.pop().unwrap();
        assert_eq!(j.event.event_type, EventType::Added);
        assert_eq!(rv(&j), "999");
    }

    #[test]
    fn a_delete_replaces_pending_updates() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Modified, "x", "1"), true);
        q.push(job(EventType::Deleted, "x", "2"), true);
        let j = q.pop().unwrap();
        assert_eq!(j.event.event_type, EventType::Deleted);
    }

    #[test]
    fn a_full_queue_sheds_the_oldest_event() {
        let mut q = EventQueue::new(2);
        q.push(job(EventType::Added, "a", "1"), false);
        q.push(job(EventType::Added, "b", "2"), false);
        let Pushed::Shed(shed) = q.push(job(EventType::Added, "c", "3"), false) else {
            panic!("expected a shed event");
        };
        assert_eq!(rv(&shed), "1");
        assert_eq!(q.len(), 2);
        assert_eq!(rv(&q.pop().unwrap()), "2");
        assert_eq!(rv(&q.pop().unwrap()), "3");
    }

    #[test]
    fn synced_waits_for_the_events_before_it() {
        let mut q = EventQueue::new(100);
        q.push(job(EventType::Added, "a", "1"), false);
        q.push(
            Job::new(Key::Barrier(0), 0, event(EventType::Synced, "", "")),
            false,
        );
        q.push(job(EventType::Added, "b", "2"), false);
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
        q.push(job(EventType::Added, "x", "1"), false);
        q.push(job(EventType::Modified, "x", "2"), false);
        let first = q.pop().unwrap();
        q.retry(first);
        let again = q.pop().unwrap();
        assert_eq!(rv(&again), "1");
        assert_eq!(again.attempts, 1);
    }
}
