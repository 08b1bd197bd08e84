//! Dispatch: every event goes to the plugins whose subscriptions match it,
//! through one lane per plugin.
//!
//! A lane is a bounded [`EventQueue`] and up to `concurrency` blocking
//! workers calling the plugin. Events of one object are handled in order,
//! never two at once; different objects run in parallel. Latest-state
//! subscriptions coalesce pending events per object; every-event ones keep
//! them all, and a lane that falls behind sheds its own oldest events
//! (counted and logged). Pushing into a lane never waits, so a slow plugin
//! holds back nothing but itself: not the informers, not the other plugins.
//! A plugin that keeps failing trips its [`Breaker`].
//!
//! A call's actions go to the [`ActionQueue`], except `requeue-after`, which
//! the lane keeps: after the delay the object comes back from the cache as
//! a `resync` event.

mod breaker;
mod queue;

pub use breaker::{Breaker, Circuit};
pub use queue::{EventQueue, Job, Key, Pushed};

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::{runtime::Handle, sync::mpsc};

use crate::{
    action::{Action, ActionQueue},
    cache::{KindKey, ObjectRef, Store},
    informer::{
        Notification,
        subscriptions::{Request, State, SubscriptionId, Subscriptions},
    },
    plugin::{
        CallError, Event, EventType, Manifest, Plugin,
        manifest::{Delivery, Subscription},
    },
};

/// Why a plugin could not be added.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Plugin names are unique.
    #[error("a plugin named {0} is already loaded")]
    Duplicate(String),
}

/// How lanes behave.
#[derive(Debug, Clone)]
pub struct Config {
    /// Calls of one plugin at once.
    pub concurrency: usize,
    /// Pending events per plugin before the oldest are shed.
    pub queue_capacity: usize,
    /// Calls per event before it is given up.
    pub max_attempts: u32,
    /// Consecutive failed calls that open a plugin's circuit.
    pub breaker_threshold: u32,
    /// How long a circuit first stays open; doubles per failed trial.
    pub breaker_backoff: Duration,
    /// Longest a circuit stays open.
    pub breaker_max: Duration,
    /// Notifications buffered between an informer and a lane.
    pub intake_buffer: usize,
    /// Resync period for subscriptions that do not ask for one.
    pub default_resync: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            queue_capacity: 10_000,
            max_attempts: 3,
            breaker_threshold: 5,
            breaker_backoff: Duration::from_secs(1),
            breaker_max: Duration::from_secs(300),
            intake_buffer: 1024,
            default_resync: None,
        }
    }
}

impl Config {
    /// Set the calls of one plugin at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Set the pending events per plugin.
    #[must_use]
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }
}

/// Buckets of the call-duration histogram, seconds: 25 µs to about 1.6 s.
fn call_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(25e-6, 4.0, 9)
}

/// A lane's counters.
#[derive(Debug)]
pub struct LaneStats {
    /// Events queued for the plugin.
    pub received: AtomicU64,
    /// Calls that returned `ok`.
    pub handled: AtomicU64,
    /// Calls that failed.
    pub failed: AtomicU64,
    /// Failed events queued again.
    pub retried: AtomicU64,
    /// Events given up after their last attempt.
    pub given_up: AtomicU64,
    /// Events merged into a pending one (latest-state).
    pub coalesced: AtomicU64,
    /// Events dropped because the queue was full.
    pub shed: AtomicU64,
    /// Objects redelivered after `requeue-after`.
    pub requeued: AtomicU64,
    /// Total call time, microseconds.
    pub busy_micros: AtomicU64,
    /// Call durations, for `/metrics`.
    pub call_seconds: prometheus_client::metrics::histogram::Histogram,
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
            shed: AtomicU64::default(),
            requeued: AtomicU64::default(),
            busy_micros: AtomicU64::default(),
            call_seconds: prometheus_client::metrics::histogram::Histogram::new(call_buckets()),
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
    /// Events waiting.
    pub pending: usize,
    /// Calls running.
    pub running: usize,
    /// `closed`, `open` or `halfOpen`.
    pub circuit: &'static str,
    /// Consecutive failed calls.
    pub consecutive_failures: u32,
}

struct LaneState {
    queue: EventQueue,
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
    unsynced: std::collections::HashSet<u32>,
}

/// One plugin's queue and workers.
pub struct Lane {
    name: Arc<str>,
    plugin: RwLock<Arc<Plugin>>,
    config: Config,
    state: Mutex<LaneState>,
    stats: LaneStats,
    /// The resolved kind behind each subscription, learnt from its events;
    /// requeues find their subscription through it.
    kinds: Mutex<HashMap<u32, KindKey>>,
    requeues: Mutex<HashMap<ObjectRef, Instant>>,
    actions: Arc<ActionQueue>,
    cache: Arc<Store>,
    runtime: Handle,
    subscriptions: Mutex<Vec<SubscriptionId>>,
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Displays an object reference without building it unless a log line needs it.
struct Ref<'a>(&'a Key);

impl fmt::Display for Ref<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Key::Object(kind, key) => write!(f, "{kind} {key}"),
            Key::Barrier(sub) => write!(f, "subscription {sub}"),
        }
    }
}

impl Lane {
    fn new(plugin: Plugin, config: Config, actions: Arc<ActionQueue>, cache: Arc<Store>) -> Self {
        let breaker = Breaker::new(
            config.breaker_threshold,
            config.breaker_backoff,
            config.breaker_max,
        );
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
                unsynced: std::collections::HashSet::new(),
            }),
            config,
            stats: LaneStats::default(),
            kinds: Mutex::new(HashMap::new()),
            requeues: Mutex::new(HashMap::new()),
            actions,
            cache,
            runtime: Handle::current(),
            subscriptions: Mutex::new(Vec::new()),
        }
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

    /// The lane's state now.
    pub fn status(&self) -> LaneStatus {
        let st = self.state.lock();
        LaneStatus {
            plugin: self.name.to_string(),
            digest: self.plugin.read().digest().to_string(),
            pending: st.queue.len(),
            running: st.running,
            circuit: match st.breaker.circuit(Instant::now()) {
                Circuit::Closed => "closed",
                Circuit::Open(_) => "open",
                Circuit::HalfOpen => "halfOpen",
            },
            consecutive_failures: st.breaker.failures(),
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

    /// Queue an event; never waits.
    pub fn push(self: &Arc<Self>, job: Job, coalesce: bool) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        match st.queue.push(job, coalesce) {
            Pushed::Queued => {}
            Pushed::Coalesced => {
                self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Shed(job) => {
                let n = self.stats.shed.fetch_add(1, Ordering::Relaxed) + 1;
                // Say it at once, then every thousandth time: shedding
                // happens in floods.
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(plugin.name = %self.name, object.ref = %Ref(&job.key), event.type = ?job.event.event_type, shed_total = n, capacity = self.config.queue_capacity, "plugin is behind: its queue is full, oldest event dropped");
                }
            }
        }
        self.kick(&mut st);
    }

    /// Start workers for ready events, up to the concurrency the circuit allows.
    fn kick(self: &Arc<Self>, st: &mut LaneState) {
        let now = Instant::now();
        if !st.unsynced.is_empty() {
            return;
        }
        while !st.closed && st.workers < self.config.concurrency && st.queue.has_ready() {
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
                        job
                    }
                    None => {
                        st.workers -= 1;
                        return;
                    }
                }
            };
            let plugin = self.plugin();
            let started = Instant::now();
            let result = self.call(&plugin, &job);
            let elapsed = started.elapsed();
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.stats.busy_micros.fetch_add(micros, Ordering::Relaxed);
            self.stats.call_seconds.observe(elapsed.as_secs_f64());
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
                    if let Some(open) = st.breaker.failure(Instant::now()) {
                        tracing::warn!(plugin.name = %self.name, consecutive_failures = st.breaker.failures(), backoff_ms = open.as_millis() as u64, "plugin keeps failing: calls paused");
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

    fn call(&self, plugin: &Plugin, job: &Job) -> Result<Vec<Action>, CallError> {
        let span = tracing::debug_span!("dispatch.handle", plugin.name = %self.name, object.ref = %Ref(&job.key), event.type = ?job.event.event_type, subscription = job.subscription);
        let _entered = span.enter();
        let result = plugin.handle(&job.event);
        match &result {
            Ok(actions) => tracing::debug!(
                actions = actions.len(),
                waited_us = job.queued_at.elapsed().as_micros() as u64,
                "event handled"
            ),
            Err(e) => {
                tracing::warn!(outcome = e.outcome(), attempt = job.attempts + 1, error = %e, "plugin call failed");
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
            self.actions.submit(plugin.manifest(), writes);
        }
    }

    /// Redeliver `target` after `delay`; of several requeues of one object,
    /// the earliest wins.
    fn requeue_after(self: &Arc<Self>, target: ObjectRef, delay: Duration) {
        let due = Instant::now() + delay;
        {
            let mut requeues = self.requeues.lock();
            if requeues.get(&target).is_some_and(|d| *d <= due) {
                return;
            }
            requeues.insert(target.clone(), due);
        }
        let lane = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            {
                let mut requeues = lane.requeues.lock();
                if requeues.get(&target) != Some(&due) {
                    return;
                }
                requeues.remove(&target);
            }
            lane.redeliver(&target);
        });
    }

    fn redeliver(self: &Arc<Self>, target: &ObjectRef) {
        let kind = target.kind_key();
        let sub = self
            .kinds
            .lock()
            .iter()
            .filter(|(_, k)| **k == kind)
            .map(|(i, _)| *i)
            .min();
        let Some(sub) = sub else {
            tracing::debug!(plugin.name = %self.name, object.ref = %target, "requeue dropped: no subscription delivers this kind");
            return;
        };
        let key = target.object_key();
        let Some(object) = self.cache.get(&kind, &key) else {
            tracing::debug!(plugin.name = %self.name, object.ref = %target, "requeue dropped: the object is gone");
            return;
        };
        let coalesce = self.delivery(sub) == Delivery::LatestState;
        let event = Event {
            event_type: EventType::Resync,
            subscription: sub,
            initial: false,
            final_state_unknown: false,
            object: Some(object),
            old_object: None,
        };
        self.stats.requeued.fetch_add(1, Ordering::Relaxed);
        self.push(
            Job::new(Key::Object(kind, Arc::new(key)), sub, event),
            coalesce,
        );
    }

    /// A watch of the plugin finished its first list (or will never have one).
    fn synced(self: &Arc<Self>, watch: u32) {
        let mut st = self.state.lock();
        if st.unsynced.remove(&watch) && st.unsynced.is_empty() {
            tracing::debug!(plugin.name = %self.name, "every watch of the plugin has synced; calls start");
            self.kick(&mut st);
        }
    }

    /// Keep a read-only kind in the cache; only its first sync matters here.
    async fn watch_reads(self: Arc<Self>, watch: u32, mut rx: mpsc::Receiver<Notification>) {
        while let Some(n) = rx.recv().await {
            if n.event_type == EventType::Synced {
                self.synced(watch);
            }
        }
    }

    fn delivery(&self, sub: u32) -> Delivery {
        self.plugin
            .read()
            .manifest()
            .subscriptions
            .get(sub as usize)
            .map_or(Delivery::EveryEvent, |s| s.delivery)
    }

    /// Feed one subscription's notifications into the lane.
    async fn intake(self: Arc<Self>, index: u32, mut rx: mpsc::Receiver<Notification>) {
        let spec = {
            let plugin = self.plugin.read();
            plugin.manifest().subscriptions[index as usize].clone()
        };
        while let Some(n) = rx.recv().await {
            self.accept(index, &spec, n);
        }
    }

    /// One notification of subscription `index`: queued if its type is wanted.
    fn accept(self: &Arc<Self>, index: u32, spec: &Subscription, n: Notification) {
        if n.event_type == EventType::Synced {
            self.synced(index);
        }
        if !spec.event_types.contains(&n.event_type) {
            return;
        }
        {
            let mut kinds = self.kinds.lock();
            if kinds.get(&index) != Some(&n.kind) {
                kinds.insert(index, n.kind.clone());
            }
        }
        let (key, object) = match n.object {
            Some((key, object)) => (Key::Object(n.kind, Arc::new(key)), Some(object)),
            None => (Key::Barrier(index), None),
        };
        let event = Event {
            event_type: n.event_type,
            subscription: index,
            initial: n.initial,
            final_state_unknown: n.final_state_unknown,
            object,
            old_object: n.old.filter(|_| spec.old_object),
        };
        self.push(
            Job::new(key, index, event),
            spec.delivery == Delivery::LatestState,
        );
    }

    /// Stop taking new events but handle the queued ones; wait up to `grace`
    /// for the queue to empty, then close. Returns the events left undone.
    async fn finish(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while !self.is_idle() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.close(Duration::from_secs(5)).await.0
    }

    /// Stop taking events, drop the pending ones and wait up to `grace` for
    /// running calls. Returns (events dropped, calls still running).
    async fn close(&self, grace: Duration) -> (usize, usize) {
        let dropped = {
            let mut st = self.state.lock();
            st.closed = true;
            st.queue.clear()
        };
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let running = self.state.lock().running;
            if running == 0 || tokio::time::Instant::now() >= deadline {
                return (dropped, running);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Every plugin's lane, wired to the informers and the action queue.
pub struct Dispatcher {
    config: Config,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    subscriptions: Arc<Subscriptions>,
    cache: Arc<Store>,
    actions: Arc<ActionQueue>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("lanes", &self.lanes.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with no plugin yet.
    pub fn new(
        subscriptions: Arc<Subscriptions>,
        cache: Arc<Store>,
        actions: Arc<ActionQueue>,
        config: Config,
    ) -> Self {
        Self {
            config,
            lanes: Mutex::new(HashMap::new()),
            subscriptions,
            cache,
            actions,
        }
    }

    /// The action queue behind the lanes.
    pub fn actions(&self) -> &Arc<ActionQueue> {
        &self.actions
    }

    /// Put a loaded plugin in service: a lane, and a subscription per
    /// manifest entry. Kinds not served yet stay pending and start by
    /// themselves; kinds discovery cannot resolve yet (the API server is
    /// down) hold the plugin's calls back until they can be watched.
    ///
    /// # Errors
    /// [`Error::Duplicate`] for a name in use, with nothing left behind.
    pub async fn add(&self, plugin: Plugin) -> Result<Arc<Lane>, Error> {
        let name = plugin.name().to_string();
        if self.lanes.lock().contains_key(&name) {
            plugin.release_indexes();
            return Err(Error::Duplicate(name));
        }
        let lane = self.build(plugin).await;
        let taken = {
            let mut lanes = self.lanes.lock();
            let taken = lanes.contains_key(&name);
            if !taken {
                lanes.insert(name.clone(), lane.clone());
            }
            taken
        };
        if taken {
            self.discard(&lane).await;
            return Err(Error::Duplicate(name));
        }
        tracing::info!(plugin.name = %name, digest = %lane.plugin().digest(), subscriptions = lane.plugin().manifest().subscriptions.len(), "plugin in service");
        Ok(lane)
    }

    /// A lane for `plugin` with its watches started, not yet in the map.
    async fn build(&self, plugin: Plugin) -> Arc<Lane> {
        let subs = plugin.manifest().subscriptions.clone();
        let reads = cached_kinds(plugin.manifest());
        let lane = Arc::new(Lane::new(
            plugin,
            self.config.clone(),
            self.actions.clone(),
            self.cache.clone(),
        ));
        lane.state.lock().unsynced = (0..subs.len() + reads.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        for (index, s) in subs.iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.config.intake_buffer);
            let request = Request {
                api_version: s.api_version.clone(),
                kind: s.kind.clone(),
                namespace: s.namespace.clone(),
                labels: s.label_selector.clone(),
                fields: s.field_selector.clone(),
                resync: s.resync.or(self.config.default_resync),
            };
            let index32 = u32::try_from(index).unwrap_or(u32::MAX);
            tokio::spawn(lane.clone().intake(index32, rx));
            self.watch(&lane, index32, request, tx).await;
        }
        for (j, kind) in reads.iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.config.intake_buffer);
            let watch = u32::try_from(subs.len() + j).unwrap_or(u32::MAX);
            tokio::spawn(lane.clone().watch_reads(watch, rx));
            let request = Request {
                api_version: kind.api_version.to_string(),
                kind: kind.kind.to_string(),
                namespace: None,
                labels: Default::default(),
                fields: Default::default(),
                resync: None,
            };
            self.watch(&lane, watch, request, tx).await;
        }
        lane
    }

    /// Undo [`Self::build`] for a lane that never went into service.
    async fn discard(&self, lane: &Arc<Lane>) {
        let ids = std::mem::take(&mut *lane.subscriptions.lock());
        for id in ids {
            self.subscriptions.unsubscribe(id).await;
        }
        lane.close(Duration::ZERO).await;
        lane.plugin().release_indexes();
    }

    /// Put a new version of a plugin in service in place of the running one
    /// (or add it, if none runs under its name).
    ///
    /// With the same watches (the common case: new code, or new settings),
    /// the lane stays: calls already running finish on the old version, and
    /// every queued event goes to whichever version takes it, so to exactly
    /// one. The new version then gets a fresh initial sync from the cache,
    /// like a handler added late. With different watches, a new lane starts
    /// with its own watches (and their initial sync), while the old lane
    /// stops taking events and finishes its queue on the old version.
    ///
    /// # Errors
    /// [`Error::Duplicate`] if another plugin took the name meanwhile.
    pub async fn replace(&self, plugin: Plugin) -> Result<Arc<Lane>, Error> {
        let Some(lane) = self.lane(plugin.name()) else {
            return self.add(plugin).await;
        };
        let old = lane.plugin();
        let name = old.name().to_string();
        if same_watches(old.manifest(), plugin.manifest()) {
            let digest = plugin.digest().to_string();
            let subs = plugin.manifest().subscriptions.clone();
            *lane.plugin.write() = Arc::new(plugin);
            old.release_indexes();
            let ids: Vec<_> = lane.subscriptions.lock().clone();
            for (index, (id, spec)) in ids.iter().zip(&subs).enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                for n in self.subscriptions.replay(*id).await {
                    lane.accept(index, spec, n);
                }
            }
            tracing::info!(plugin.name = %name, old_digest = %old.digest(), digest = %digest, "plugin replaced in place; initial sync replayed");
            return Ok(lane);
        }
        let new_lane = self.build(plugin).await;
        self.lanes.lock().insert(name.clone(), new_lane.clone());
        tracing::info!(plugin.name = %name, old_digest = %old.digest(), digest = %new_lane.plugin().digest(), "plugin replaced with new watches");
        let ids = std::mem::take(&mut *lane.subscriptions.lock());
        for id in ids {
            self.subscriptions.unsubscribe(id).await;
        }
        tokio::spawn(async move {
            let left = lane.finish(Duration::from_secs(30)).await;
            if left > 0 {
                tracing::warn!(plugin.name = %name, events = left, "the replaced version did not finish its queue in 30 s; the rest is dropped");
            }
            lane.plugin().release_indexes();
        });
        Ok(new_lane)
    }

    /// Start one watch of a lane. A kind that is not served yet has nothing
    /// to sync, so it does not hold the plugin back; one whose discovery
    /// failed does, until it can be watched and has synced.
    async fn watch(
        &self,
        lane: &Arc<Lane>,
        watch: u32,
        request: Request,
        tx: mpsc::Sender<Notification>,
    ) {
        let id = self.subscriptions.subscribe(request, tx).await;
        lane.subscriptions.lock().push(id);
        let Some(mut state) = self.subscriptions.state_changes(id).await else {
            return;
        };
        // An active watch reports its own first sync; a kind that is not
        // served has nothing to sync. While discovery cannot answer, wait.
        let resolved = move |lane: &Arc<Lane>, state: &State| match state {
            State::Pending => {
                lane.synced(watch);
                true
            }
            State::Active { .. } => true,
            State::Unreachable { .. } => false,
        };
        if resolved(lane, &state.borrow_and_update()) {
            return;
        }
        let lane = lane.clone();
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                if resolved(&lane, &state.borrow_and_update()) {
                    return;
                }
            }
        });
    }

    /// Give every plugin a fresh initial sync from the cache: each object its
    /// subscriptions cover as `added`, then `synced`. A replica that just
    /// became leader does this, so that its plugins decide again on the
    /// current state of the cluster.
    pub async fn replay_all(&self) {
        for lane in self.lanes() {
            let subs = lane.plugin().manifest().subscriptions.clone();
            let ids: Vec<_> = lane.subscriptions.lock().clone();
            for (index, (id, spec)) in ids.iter().zip(&subs).enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                for n in self.subscriptions.replay(*id).await {
                    lane.accept(index, spec, n);
                }
            }
        }
    }

    /// Take a plugin out of service: release its watches, drop its pending
    /// events, let running calls finish and forget its indexes. Returns
    /// whether it was loaded.
    pub async fn remove(&self, name: &str) -> bool {
        let Some(lane) = self.lanes.lock().remove(name) else {
            return false;
        };
        let ids = std::mem::take(&mut *lane.subscriptions.lock());
        for id in ids {
            self.subscriptions.unsubscribe(id).await;
        }
        let (dropped, running) = lane.close(Duration::from_secs(5)).await;
        lane.plugin().release_indexes();
        tracing::info!(plugin.name = %name, pending_dropped = dropped, still_running = running, "plugin removed");
        true
    }

    /// A plugin's lane.
    pub fn lane(&self, name: &str) -> Option<Arc<Lane>> {
        self.lanes.lock().get(name).cloned()
    }

    /// Every lane, by name.
    pub fn lanes(&self) -> Vec<Arc<Lane>> {
        let mut lanes: Vec<_> = self.lanes.lock().values().cloned().collect();
        lanes.sort_by(|a, b| a.name.cmp(&b.name));
        lanes
    }

    /// Wait until every lane is idle and the action queue drained, or
    /// `timeout` passes. Returns whether everything went quiet.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.lanes().iter().all(|l| l.is_idle());
            if idle && self.actions.outstanding() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stop every lane: no new events, running calls get `grace` to finish.
    /// Events still pending are dropped and reported. Returns how many.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let lanes: Vec<_> = self.lanes.lock().drain().map(|(_, l)| l).collect();
        let mut dropped_total = 0;
        for lane in &lanes {
            let ids = std::mem::take(&mut *lane.subscriptions.lock());
            for id in ids {
                self.subscriptions.unsubscribe(id).await;
            }
        }
        for lane in lanes {
            let (dropped, running) = lane.close(grace).await;
            dropped_total += dropped;
            if dropped > 0 || running > 0 {
                tracing::warn!(plugin.name = %lane.name, pending_dropped = dropped, still_running = running, "shutdown: events not handled");
            }
        }
        dropped_total
    }
}

/// Kinds a plugin reads from the cache without subscribing to all of them:
/// declared reads and indexed kinds, less those a subscription of its own
/// already watches in full.
fn cached_kinds(manifest: &Manifest) -> Vec<KindKey> {
    let watched_in_full = |kind: &KindKey| {
        manifest.subscriptions.iter().any(|s| {
            s.kind_key() == *kind
                && s.namespace.is_none()
                && s.label_selector.is_empty()
                && s.field_selector.requirements().is_empty()
        })
    };
    let mut kinds: Vec<KindKey> = manifest
        .reads
        .iter()
        .chain(manifest.indexes.iter().map(|i| &i.kind))
        .filter(|k| !watched_in_full(k))
        .cloned()
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Whether two versions of a plugin need the same watches: the same
/// subscriptions (with their delivery options), reads and indexed kinds.
fn same_watches(a: &Manifest, b: &Manifest) -> bool {
    let subs = |m: &Manifest| serde_json::to_value(&m.subscriptions).ok();
    subs(a) == subs(b) && cached_kinds(a) == cached_kinds(b)
}
