//! One plugin's lane: its [`EventQueue`], the blocking workers that call the
//! plugin, and its circuit breaker. Pushing never waits, so a slow plugin
//! holds back nothing but itself.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::{runtime::Handle, sync::Notify};

use super::{
    Breaker, Circuit, CircuitState, Config,
    cursor::Cursor,
    durations::Durations,
    queue::{EventQueue, Job, Key, Pushed},
};
use crate::{
    action::{Action, ActionQueue},
    cache::{Store, View},
    informer::{Notification, Purpose, Snapshot, subscriptions::SubscriptionId},
    plugin::{
        CallError, Event, Outcome, Plugin,
        manifest::{Delivery, Subscription},
    },
    shard::{Claim, Scope, ShardKey},
    vocabulary::{EventType, KindKey, ObjectRef},
};

/// How long a streaming list's new entries gather before a worker is
/// started for them ([`Lane::follow`]). Each start wakes a timer, the
/// follower and a blocking thread, whose caches are cold by then: at 100,000
/// objects, 10 ms instead of 1 ms took a tenth off the host's CPU during the
/// list. A list's end is kicked at once, so only its middle waits.
const GATHER: Duration = Duration::from_millis(10);

/// Buckets of the call-duration histogram, seconds: 25 µs to about 1.6 s.
fn call_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(25e-6, 4.0, 9)
}

/// A lane's counters.
#[derive(Debug)]
pub struct LaneStats {
    /// Events for the plugin: live ones, and the entries of its initial
    /// lists and resyncs.
    pub(crate) received: AtomicU64,
    /// Calls that returned `ok`.
    pub(crate) handled: AtomicU64,
    /// Calls that failed.
    pub(crate) failed: AtomicU64,
    /// Failed events queued again.
    pub(crate) retried: AtomicU64,
    /// Events given up after their last attempt.
    pub(crate) given_up: AtomicU64,
    /// Events folded into a pending one of their object (latest-state).
    pub(crate) coalesced: AtomicU64,
    /// Events merged into others of their object because the plugin was
    /// further behind than its bound (every-event).
    pub(crate) merged: AtomicU64,
    /// Objects redelivered after `requeue-after`.
    pub(crate) requeued: AtomicU64,
    /// Total call time, microseconds.
    pub(crate) busy_micros: AtomicU64,
    /// Call durations, for `/metrics`.
    pub call_seconds: prometheus_client::metrics::histogram::Histogram,
    /// Call durations, for the admin API's quantiles.
    pub durations: Durations,
}

/// A snapshot of [`LaneStats`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneCounts {
    /// Events for the plugin: live ones, and the entries of its initial
    /// lists and resyncs.
    pub received: u64,
    /// Calls that returned `ok`.
    pub handled: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Failed events queued again.
    pub retried: u64,
    /// Events given up after their last attempt.
    pub given_up: u64,
    /// Events folded into a pending one of their object (latest-state).
    pub coalesced: u64,
    /// Events merged into others of their object because the plugin was
    /// further behind than its bound (every-event).
    pub merged: u64,
    /// Objects redelivered after `requeue-after`.
    pub requeued: u64,
    /// Total call time, microseconds.
    pub busy_micros: u64,
}

impl LaneStats {
    /// The counters, read once.
    pub fn counts(&self) -> LaneCounts {
        LaneCounts {
            received: self.received.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            given_up: self.given_up.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            merged: self.merged.load(Ordering::Relaxed),
            requeued: self.requeued.load(Ordering::Relaxed),
            busy_micros: self.busy_micros.load(Ordering::Relaxed),
        }
    }
}

impl Default for LaneStats {
    fn default() -> Self {
        Self {
            received: AtomicU64::default(),
            handled: AtomicU64::default(),
            failed: AtomicU64::default(),
            retried: AtomicU64::default(),
            given_up: AtomicU64::default(),
            coalesced: AtomicU64::default(),
            merged: AtomicU64::default(),
            requeued: AtomicU64::default(),
            busy_micros: AtomicU64::default(),
            call_seconds: prometheus_client::metrics::histogram::Histogram::new(call_buckets()),
            durations: Durations::default(),
        }
    }
}

/// A lane's state for the admin view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneStatus {
    /// The plugin.
    pub plugin: String,
    /// Its digest.
    pub digest: String,
    /// Events waiting: live ones, and initial-list and resync entries not
    /// delivered yet.
    pub pending: usize,
    /// Of those, initial-list and resync entries.
    pub syncing: usize,
    /// How long the oldest of them has waited, in seconds.
    pub oldest_seconds: f64,
    /// The most live events that were ever pending at once.
    pub peak_pending: usize,
    /// Calls running.
    pub running: usize,
    /// Calls that may run at once: the plugin's `instances`, at most the
    /// host's concurrency.
    pub concurrency: usize,
    /// Whether the plugin's calls flow.
    pub circuit: CircuitState,
    /// Consecutive failed calls.
    pub consecutive_failures: u32,
    /// The last call that failed, if any did.
    pub last_call_error: Option<CallFailure>,
}

/// A failed call, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFailure {
    /// When, RFC 3339.
    pub at: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The object of the event: `v1/ConfigMap shop/settings`.
    pub object: String,
    /// Why, in the host's words.
    pub error: String,
}

pub(super) struct LaneState {
    pub(super) queue: EventQueue,
    /// Blocking workers alive.
    workers: usize,
    /// Calls in flight.
    running: usize,
    breaker: Breaker,
    /// A timer will kick the lane when the circuit half-opens.
    wake_scheduled: bool,
    closed: bool,
    /// Watches (subscriptions, then read-only kinds) whose first list has
    /// not completed. Calls wait until it is empty, like a client-go
    /// controller waiting for its caches to sync, so the plugin never
    /// decides on a cache that is still filling.
    pub(super) unsynced: HashSet<u32>,
    last_error: Option<CallFailure>,
}

/// One plugin's queue and workers.
pub struct Lane {
    pub(super) name: Arc<str>,
    pub(super) plugin: RwLock<Arc<Plugin>>,
    config: Config,
    pub(super) state: Mutex<LaneState>,
    pub(super) stats: LaneStats,
    /// Told whenever the lane may have become idle.
    idle: Notify,
    /// The resolved kind behind each subscription, learnt from its events;
    /// requeues find their subscription through it.
    pub(super) kinds: Mutex<HashMap<u32, KindKey>>,
    pub(super) requeues: Mutex<HashMap<ObjectRef, Instant>>,
    actions: Arc<ActionQueue>,
    pub(super) cache: Arc<Store>,
    pub(super) runtime: Handle,
    pub(super) subscriptions: Mutex<Vec<SubscriptionId>>,
    /// The dispatcher's change counter: told when the plugin starts.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    /// What this replica works on: events of objects outside it are
    /// neither queued nor handled.
    scope: Scope,
    /// What the plugin's objects are bucketed by.
    shard_key: ShardKey,
    /// What the plugin may not see of the cache while lists stream in to
    /// it; made when the first one does.
    unhanded: std::sync::OnceLock<Arc<dyn View>>,
}

/// A lane's view of the cache while it delivers lists as they stream in:
/// the objects of those lists it has not handed out yet are hidden.
struct Unhanded(std::sync::Weak<Lane>);

impl View for Unhanded {
    fn hides(&self, kind: &KindKey, key: &crate::vocabulary::ObjectKey) -> bool {
        self.0
            .upgrade()
            .is_some_and(|lane| lane.state.lock().queue.hides(kind, key))
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Displays an object reference without building it unless a log line needs it.
pub(super) struct Ref<'a>(pub(super) &'a Key);

impl fmt::Display for Ref<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Key::Object(kind, key) => write!(f, "{kind} {key}"),
            Key::Barrier(sub) => write!(f, "subscription {sub}"),
        }
    }
}

impl Lane {
    pub(super) fn new(
        plugin: Plugin,
        config: Config,
        actions: Arc<ActionQueue>,
        cache: Arc<Store>,
        changes: Arc<tokio::sync::watch::Sender<u64>>,
        scope: Scope,
    ) -> Self {
        let breaker = Breaker::new(
            config.breaker_threshold,
            config.breaker_backoff,
            config.breaker_max,
        );
        let shard_key = scope.key_for(plugin.name());
        Self {
            name: plugin.name().into(),
            plugin: RwLock::new(Arc::new(plugin)),
            state: Mutex::new(LaneState {
                queue: EventQueue::new(config.queue_capacity),
                workers: 0,
                running: 0,
                breaker,
                wake_scheduled: false,
                closed: false,
                unsynced: HashSet::new(),
                last_error: None,
            }),
            config,
            stats: LaneStats::default(),
            idle: Notify::new(),
            kinds: Mutex::new(HashMap::new()),
            requeues: Mutex::new(HashMap::new()),
            actions,
            cache,
            runtime: Handle::current(),
            subscriptions: Mutex::new(Vec::new()),
            changes,
            scope,
            shard_key,
            unhanded: std::sync::OnceLock::new(),
        }
    }

    /// What a job's work is about: its object's bucket, or cluster-wide
    /// work for a call about no object (`synced`).
    fn claim(&self, job: &Job) -> Claim {
        match &job.key {
            Key::Object(kind, key) => {
                self.scope
                    .claim(self.shard_key, kind, key, job.event.object.as_deref())
            }
            Key::Barrier(_) => self.scope.cluster_claim(),
        }
    }

    /// Whether this replica works on the job's object now. Calls about no
    /// object run on every replica; what they commit is fenced.
    fn in_scope(&self, job: &Job) -> bool {
        matches!(job.key, Key::Barrier(_)) || self.scope.holds(self.claim(job))
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin version in service.
    pub fn plugin(&self) -> Arc<Plugin> {
        self.plugin.read().clone()
    }

    /// The counters.
    pub fn stats(&self) -> &LaneStats {
        &self.stats
    }

    /// Calls that may run at once: what the plugin asked for (`instances`),
    /// at most the host's concurrency.
    pub fn concurrency(&self) -> usize {
        let asked = self.plugin.read().manifest().resources.instances;
        asked.map_or(self.config.concurrency, |n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .clamp(1, self.config.concurrency)
        })
    }

    /// The lane's state now.
    pub fn status(&self) -> LaneStatus {
        let concurrency = self.concurrency();
        let st = self.state.lock();
        let backlog = st.queue.backlog();
        LaneStatus {
            plugin: self.name.to_string(),
            digest: self.plugin.read().digest().to_string(),
            pending: backlog.pending,
            syncing: backlog.syncing,
            oldest_seconds: backlog.oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()),
            peak_pending: backlog.peak,
            running: st.running,
            concurrency,
            circuit: st.breaker.circuit(Instant::now()).state(),
            consecutive_failures: st.breaker.failures(),
            last_call_error: st.last_error.clone(),
        }
    }

    /// Whether the plugin's calls have started: every watch it needs has
    /// synced (or names a kind that is not served).
    pub fn started(&self) -> bool {
        self.state.lock().unsynced.is_empty()
    }

    /// Whether nothing is pending or running.
    pub fn is_idle(&self) -> bool {
        let st = self.state.lock();
        st.queue.is_empty() && st.running == 0
    }

    /// Wait until the lane is idle, or `timeout` passes; returns whether it
    /// is.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_idle() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_idle();
            }
        }
    }

    /// Queue an event; never waits. An event of an object outside this
    /// replica's buckets is not queued.
    pub fn push(self: &Arc<Self>, job: Job, delivery: Delivery) {
        if !self.in_scope(&job) {
            return;
        }
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        match st.queue.push(job, delivery) {
            Pushed::Queued => {}
            Pushed::Coalesced => {
                self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Merged(n) => {
                let before = self.stats.merged.fetch_add(n as u64, Ordering::Relaxed);
                // Say it at once, then about every ten thousand merges: it
                // happens in floods.
                if before == 0 || before / 10_000 != (before + n as u64) / 10_000 {
                    tracing::warn!(plugin.name = %self.name, merged_total = before + n as u64, bound = self.config.queue_capacity, "plugin is behind: pending events of an object merged into its newest state");
                }
            }
        }
        self.kick(&mut st);
    }

    /// Deliver a snapshot through a cursor.
    fn start(self: &Arc<Self>, cursor: Cursor) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        if cursor.listing().is_none() {
            self.stats
                .received
                .fetch_add(cursor.remaining() as u64, Ordering::Relaxed);
        }
        st.queue.start(cursor);
        self.kick(&mut st);
    }

    /// Start workers for ready events, up to the concurrency the circuit
    /// allows; a second and later one only when it would have work of its
    /// own ([`EventQueue::wants_worker`]).
    fn kick(self: &Arc<Self>, st: &mut LaneState) {
        let now = Instant::now();
        if !st.unsynced.is_empty() {
            return;
        }
        let concurrency = self.concurrency();
        while !st.closed && st.workers < concurrency && st.queue.wants_worker(st.workers) {
            if !st.breaker.allows(now, st.workers) {
                self.wake_later(st, now);
                break;
            }
            st.workers += 1;
            let lane = self.clone();
            self.runtime.spawn_blocking(move || lane.work());
        }
    }

    fn wake_later(self: &Arc<Self>, st: &mut LaneState, now: Instant) {
        let Circuit::Open(until) = st.breaker.circuit(now) else {
            return;
        };
        if std::mem::replace(&mut st.wake_scheduled, true) {
            return;
        }
        let lane = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep_until(until.into()).await;
            let mut st = lane.state.lock();
            st.wake_scheduled = false;
            lane.kick(&mut st);
        });
    }

    /// A blocking worker: handle ready events until there are none, or the
    /// circuit opens.
    fn work(self: Arc<Self>) {
        loop {
            let job = {
                let mut st = self.state.lock();
                let now = Instant::now();
                let job = if st.closed || !st.breaker.allows(now, st.running) {
                    self.wake_later(&mut st, now);
                    None
                } else {
                    st.queue.pop()
                };
                match job {
                    Some(job) => {
                        st.running += 1;
                        let view = st
                            .queue
                            .is_streaming()
                            .then(|| self.unhanded.get().cloned())
                            .flatten();
                        (job, view)
                    }
                    None => {
                        st.workers -= 1;
                        if st.running == 0 && st.queue.is_empty() {
                            self.idle.notify_waiters();
                        }
                        return;
                    }
                }
            };
            let (job, view) = job;
            // A bucket given up (or lapsed) since the event was queued: this
            // replica no longer works on it.
            if !self.in_scope(&job) {
                let mut st = self.state.lock();
                st.running -= 1;
                st.queue.done(&job);
                continue;
            }
            let Some(job) = self.refresh(job) else {
                continue;
            };
            let plugin = self.plugin();
            let started = Instant::now();
            let result = self.call(&plugin, &job, view);
            let elapsed = started.elapsed();
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.stats.busy_micros.fetch_add(micros, Ordering::Relaxed);
            self.stats.call_seconds.observe(elapsed.as_secs_f64());
            self.stats.durations.observe(elapsed);
            let mut st = self.state.lock();
            st.running -= 1;
            match result {
                Ok(actions) => {
                    if st.breaker.success() {
                        tracing::info!(plugin.name = %self.name, "plugin recovered: circuit closed");
                    }
                    st.queue.done(&job);
                    drop(st);
                    self.stats.handled.fetch_add(1, Ordering::Relaxed);
                    self.commit(&plugin, &job, actions);
                }
                Err(error) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    st.last_error = Some(CallFailure {
                        at: jiff::Timestamp::now().to_string(),
                        outcome: error.outcome(),
                        object: Ref(&job.key).to_string(),
                        error: error.to_string(),
                    });
                    if let Some(open) = st.breaker.failure(Instant::now()) {
                        tracing::warn!(plugin.name = %self.name, consecutive_failures = st.breaker.failures(), backoff_ms = open.as_millis() as u64, outcome = %error.outcome(), last_error = %error, "plugin keeps failing: calls paused");
                    }
                    if job.attempts + 1 < self.config.max_attempts {
                        self.stats.retried.fetch_add(1, Ordering::Relaxed);
                        st.queue.retry(job);
                    } else {
                        st.queue.done(&job);
                        self.stats.given_up.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(plugin.name = %self.name, object.ref = %Ref(&job.key), event.type = ?job.event.event_type, attempts = job.attempts + 1, error = %error, "event given up after its last failed call");
                    }
                }
            }
        }
    }

    /// A job that delivers the cache's state of its object gets it now. A
    /// resync of an object that is gone is done without a call: its delete
    /// is, or was, on its way.
    fn refresh(&self, mut job: Job) -> Option<Job> {
        if !job.refresh {
            return Some(job);
        }
        let Key::Object(kind, key) = &job.key else {
            return Some(job);
        };
        match self.cache.get(kind, key) {
            Some(object) => job.event.object = Some(object),
            None if job.event.event_type == EventType::Resync => {
                let mut st = self.state.lock();
                st.running -= 1;
                st.queue.done(&job);
                return None;
            }
            None => {}
        }
        Some(job)
    }

    fn call(
        &self,
        plugin: &Plugin,
        job: &Job,
        view: Option<Arc<dyn View>>,
    ) -> Result<Vec<Action>, CallError> {
        let span = tracing::debug_span!("dispatch.handle", plugin.name = %self.name, object.ref = %Ref(&job.key), event.type = ?job.event.event_type, subscription = job.subscription);
        let _entered = span.enter();
        let result = plugin.handle_in(&job.event, view);
        match &result {
            Ok(actions) => tracing::debug!(
                actions = actions.len(),
                merged = job.event.merged,
                waited_us = job.queued_at.elapsed().as_micros() as u64,
                "event handled"
            ),
            Err(e) => {
                tracing::warn!(plugin.name = %self.name, object.ref = %Ref(&job.key), event.type = ?job.event.event_type, outcome = %e.outcome(), attempt = job.attempts + 1, error = %e, "plugin call failed");
            }
        }
        result
    }

    fn commit(self: &Arc<Self>, plugin: &Plugin, job: &Job, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let mut writes = Vec::with_capacity(actions.len());
        for action in actions {
            match action {
                Action::RequeueAfter { target, delay_ms } => {
                    self.requeue_after(target, Duration::from_millis(delay_ms));
                }
                other => writes.push(other),
            }
        }
        if !writes.is_empty() {
            tracing::debug!(plugin.name = %self.name, object.ref = %Ref(&job.key), actions = writes.len(), "actions queued");
            self.actions
                .submit_claimed(plugin.name(), self.claim(job), writes);
        }
    }

    /// A watch of the plugin finished its first list (or will never have one).
    pub(super) fn synced(self: &Arc<Self>, watch: u32) {
        let mut st = self.state.lock();
        if st.unsynced.remove(&watch) && st.unsynced.is_empty() {
            tracing::debug!(plugin.name = %self.name, "every watch of the plugin has synced; calls start");
            self.kick(&mut st);
            drop(st);
            super::changed(&self.changes);
        }
    }

    /// Keep a read-only kind in the cache; only its first sync matters here.
    pub(super) async fn watch_reads(
        self: Arc<Self>,
        watch: u32,
        mut rx: tokio::sync::mpsc::Receiver<Notification>,
    ) {
        while let Some(n) = rx.recv().await {
            if matches!(&n, Notification::Snapshot(s) if s.purpose == Purpose::Initial) {
                self.synced(watch);
            }
        }
    }

    pub(super) fn delivery(&self, sub: u32) -> Delivery {
        self.plugin
            .read()
            .manifest()
            .subscriptions
            .get(sub as usize)
            .map_or(Delivery::EveryEvent, |s| s.delivery)
    }

    /// Feed one subscription's notifications into the lane.
    pub(super) async fn intake(
        self: Arc<Self>,
        index: u32,
        mut rx: tokio::sync::mpsc::Receiver<Notification>,
    ) {
        let spec = {
            let plugin = self.plugin.read();
            plugin.manifest().subscriptions[index as usize].clone()
        };
        while let Some(n) = rx.recv().await {
            self.accept(index, &spec, n);
        }
    }

    fn learn_kind(&self, index: u32, kind: &KindKey) {
        let mut kinds = self.kinds.lock();
        if kinds.get(&index) != Some(kind) {
            kinds.insert(index, kind.clone());
        }
    }

    /// One notification of subscription `index`: a change is queued if its
    /// type is wanted; a snapshot is delivered through a cursor.
    pub(super) fn accept(self: &Arc<Self>, index: u32, spec: &Subscription, n: Notification) {
        match n {
            Notification::Change(c) => {
                if !spec.event_types.contains(&c.event_type) {
                    return;
                }
                self.learn_kind(index, &c.kind);
                let event = Event {
                    event_type: c.event_type,
                    subscription: index,
                    initial: false,
                    final_state_unknown: c.final_state_unknown,
                    object: Some(c.object),
                    old_object: c.old.filter(|_| spec.old_object),
                    merged: 0,
                };
                self.push(
                    Job::new(Key::Object(c.kind, c.key), index, event),
                    spec.delivery,
                );
            }
            Notification::Streaming(slot) => {
                self.learn_kind(index, slot.listing().kind());
                if !spec.event_types.contains(&EventType::Added) {
                    // Nothing to hand out as it comes: the list is taken
                    // whole when it is complete, for its `synced`.
                    return;
                }
                let then_synced = spec.event_types.contains(&EventType::Synced);
                let grown = slot.listing().grown();
                let lane = Arc::downgrade(self);
                self.unhanded
                    .get_or_init(|| Arc::new(Unhanded(lane)) as Arc<dyn View>);
                self.start(Cursor::streaming(index, slot, spec.delivery, then_synced));
                self.follow(grown);
                // The list is handed over as it arrives: the plugin's calls
                // need not wait for its end.
                self.synced(index);
            }
            Notification::Streamed(listing) => {
                let mut st = self.state.lock();
                if st.queue.complete(index, &listing) {
                    // Counted once known: entries are handed out as they come.
                    self.stats
                        .received
                        .fetch_add(listing.arrived() as u64, Ordering::Relaxed);
                    self.kick(&mut st);
                    return;
                }
                drop(st);
                // Not delivered as it came (the subscription takes no
                // `added`, or a newer list replaced it): taken whole.
                let snapshot = if spec.event_types.contains(&EventType::Added) {
                    listing.snapshot()
                } else {
                    crate::informer::Snapshot {
                        kind: listing.kind().clone(),
                        purpose: Purpose::Initial,
                        objects: Arc::new([]),
                    }
                };
                self.accept(index, spec, Notification::Snapshot(snapshot));
            }
            // Never sent to subscribers.
            Notification::Relisted(_) => {}
            Notification::Snapshot(s) => {
                // Only the objects of the buckets held now; the others come
                // with their bucket, if this replica takes it.
                let mut s = self.scope.retain_held(self.shard_key, s);
                self.learn_kind(index, &s.kind);
                let wanted = match s.purpose {
                    Purpose::Initial => EventType::Added,
                    Purpose::Resync => EventType::Resync,
                };
                let then_synced =
                    s.purpose == Purpose::Initial && spec.event_types.contains(&EventType::Synced);
                if !spec.event_types.contains(&wanted) {
                    // Only the barrier, if wanted.
                    s.objects = Arc::new([]);
                }
                let initial = s.purpose == Purpose::Initial;
                self.start(Cursor::new(index, s, spec.delivery, then_synced));
                if initial {
                    self.synced(index);
                }
            }
        }
    }

    /// Deliver part of a subscription's objects (those of buckets this
    /// replica just took) as `added`, beside whatever else is delivered;
    /// no `synced` follows.
    pub(super) fn replay_part(self: &Arc<Self>, index: u32, spec: &Subscription, part: Snapshot) {
        if !spec.event_types.contains(&EventType::Added) || part.objects.is_empty() {
            return;
        }
        self.learn_kind(index, &part.kind);
        self.start(Cursor::new(index, part, spec.delivery, false).partial());
    }

    /// Kick the lane whenever a streaming list it delivers grows, until the
    /// list is complete or the lane is gone. Entries gather for
    /// [`GATHER`] first: the stream pauses between frames of a few objects
    /// each, and a worker started per frame costs more in thread wake-ups
    /// than its calls (the list's end is kicked at once, by `Streamed`).
    fn follow(self: &Arc<Self>, mut grown: tokio::sync::watch::Receiver<usize>) {
        let lane = Arc::downgrade(self);
        self.runtime.spawn(async move {
            while grown.changed().await.is_ok() {
                tokio::time::sleep(GATHER).await;
                let Some(lane) = lane.upgrade() else { return };
                let mut st = lane.state.lock();
                if st.closed {
                    return;
                }
                lane.kick(&mut st);
            }
        });
    }

    /// Stop taking new events but handle the queued ones; wait up to `grace`
    /// for the queue to empty, then close. Returns the events left undone.
    pub(super) async fn finish(&self, grace: Duration) -> usize {
        self.wait_idle(grace).await;
        self.close(Duration::from_secs(5)).await.0
    }

    /// Stop taking events, drop the pending ones and wait up to `grace` for
    /// running calls. Returns (events dropped, calls still running).
    pub(super) async fn close(&self, grace: Duration) -> (usize, usize) {
        let dropped = {
            let mut st = self.state.lock();
            st.closed = true;
            st.queue.clear()
        };
        self.wait_idle(grace).await;
        (dropped, self.state.lock().running)
    }
}
