//! The action queue between plugins and the API: permission checks,
//! dedupe, one action at a time per plugin and object (in the order the
//! plugin asked), a global rate limit, per-item exponential backoff with
//! jitter, bounded retries and a dead-letter record.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Action, Allowlist, Done, Executor, Failure, Severity,
    retry::{Decision, GiveUp, Policy},
};
use crate::{
    shard::{Claim, Scope},
    vocabulary::ObjectRef,
};

/// How the queue behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sustained API requests per second, over all plugins.
    pub qps: NonZeroU32,
    /// Requests allowed in a burst above `qps`.
    pub burst: NonZeroU32,
    /// When and how long failed actions are retried.
    pub retry: Policy,
    /// Actions executed at once.
    pub workers: usize,
    /// Dead letters kept for the admin view; older ones are forgotten.
    pub dead_letters: usize,
    /// How often growing Event series are written.
    pub event_flush: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            qps: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            retry: Policy::default(),
            workers: 8,
            dead_letters: 1000,
            event_flush: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Set the rate limit; zero is raised to one.
    #[must_use]
    pub fn rate(mut self, qps: u32, burst: u32) -> Self {
        self.qps = NonZeroU32::new(qps).unwrap_or(NonZeroU32::MIN);
        self.burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        self
    }

    /// Set the number of retries of transient failures.
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }

    /// Set the backoff bounds of transient failures.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry.min_backoff = min;
        self.retry.max_backoff = max.max(min);
        self
    }

    /// Set how forbidden (403) actions are retried: the longest delay
    /// between tries, and how long before they are given up.
    #[must_use]
    pub fn forbidden(mut self, max_backoff: Duration, retry_for: Duration) -> Self {
        self.retry.forbidden_backoff = max_backoff;
        self.retry.forbidden_retry_for = retry_for;
        self
    }

    /// Set the number of concurrent executions.
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
}

/// Why an action ended in the dead-letter record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// It kept failing with retryable errors until the retries ran out.
    RetriesExhausted,
    /// It failed in a way no retry fixes (404, 422).
    Terminal,
    /// The API server refused it (403: RBAC) for longer than
    /// `actions.forbiddenRetrySeconds`.
    Forbidden,
    /// The plugin's declared permissions or the operator's allowlist refuse it.
    Refused,
    /// The host shut down before it could run.
    Shutdown,
}

/// An action that will not be executed, kept for the admin view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// When it was given up, RFC 3339.
    pub at: String,
    /// The plugin that asked for it.
    pub plugin: String,
    /// The action.
    pub action: Action,
    /// Why it was given up.
    pub reason: Reason,
    /// Attempts made.
    pub attempts: u32,
    /// The last HTTP status, 0 for a transport error or none.
    pub code: u16,
    /// The last error.
    pub message: String,
    /// What it was about, for the fence when it is queued again.
    #[serde(skip)]
    pub claim: Claim,
}

impl Stats {
    fn count(&self, counter: &AtomicU64, action: &'static str, outcome: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        *self.by_kind.lock().entry((action, outcome)).or_default() += 1;
    }

    /// Actions by (action name, outcome), for metrics.
    pub fn by_kind(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.by_kind.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Actions by (action name, outcome): the totals below, split by kind
    /// of action. Both parts are from small fixed sets.
    by_kind: Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
    /// Actions accepted into the queue.
    pub(crate) queued: AtomicU64,
    /// Actions dropped because an identical one was already pending.
    pub(crate) deduplicated: AtomicU64,
    /// Actions refused by permissions or the allowlist.
    pub(crate) refused: AtomicU64,
    /// Actions the API accepted.
    pub(crate) applied: AtomicU64,
    /// Actions that found their work done or no longer wanted: a delete of a
    /// missing object, a guarded JSON patch whose `test` no longer holds.
    pub(crate) already_done: AtomicU64,
    /// Events counted into an existing series.
    pub(crate) aggregated: AtomicU64,
    /// Retries scheduled.
    pub(crate) retries: AtomicU64,
    /// Of those, retries of actions the API server refused (403).
    pub(crate) forbidden_retries: AtomicU64,
    /// Actions that failed for good (terminal or retries exhausted).
    pub(crate) failed: AtomicU64,
    /// Actions recorded as dead letters.
    pub(crate) dead_lettered: AtomicU64,
    /// Actions not queued because this replica does not lead.
    pub(crate) standby: AtomicU64,
    /// Actions not written because this replica no longer holds the bucket
    /// of the object they came from (sharded mode); its new holder redoes
    /// the work from its own cache.
    pub(crate) fenced: AtomicU64,
}

/// A snapshot of the queue's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueCounts {
    /// Actions accepted into the queue.
    pub queued: u64,
    /// Actions dropped because an identical one was already pending.
    pub deduplicated: u64,
    /// Actions refused by permissions or the allowlist.
    pub refused: u64,
    /// Actions the API accepted.
    pub applied: u64,
    /// Actions that found their work done or no longer wanted: a delete of a
    /// missing object, a guarded JSON patch whose `test` no longer holds.
    pub already_done: u64,
    /// Events counted into an existing series.
    pub aggregated: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Of those, retries of actions the API server refused (403).
    pub forbidden_retries: u64,
    /// Actions that failed for good (terminal or retries exhausted).
    pub failed: u64,
    /// Actions recorded as dead letters.
    pub dead_lettered: u64,
    /// Actions not queued because this replica does not lead.
    pub standby: u64,
    /// Actions not written because this replica no longer held their bucket.
    pub fenced: u64,
}

impl Stats {
    /// The counters, read once.
    pub fn counts(&self) -> QueueCounts {
        QueueCounts {
            queued: self.queued.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            already_done: self.already_done.load(Ordering::Relaxed),
            aggregated: self.aggregated.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            forbidden_retries: self.forbidden_retries.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            standby: self.standby.load(Ordering::Relaxed),
            fenced: self.fenced.load(Ordering::Relaxed),
        }
    }
}

type Key = (Arc<str>, ObjectRef);

#[derive(Debug)]
struct Item {
    action: Action,
    /// Attempts made so far.
    attempts: u32,
    /// What it is about, for the fence.
    claim: Claim,
    /// When the API server first refused it (403), if it did.
    forbidden_since: Option<tokio::time::Instant>,
}

/// Pending actions per key. A key is in `busy` while one of its actions
/// runs or waits out its backoff, so actions on one object from one plugin
/// run one at a time and in order.
#[derive(Debug, Default)]
struct State {
    items: HashMap<Key, VecDeque<Item>>,
    ready: VecDeque<Key>,
    busy: HashSet<Key>,
    /// Pending plus in flight.
    outstanding: usize,
}

impl State {
    fn take(&mut self) -> Option<(Key, Item)> {
        while let Some(key) = self.ready.pop_front() {
            if self.busy.contains(&key) {
                continue;
            }
            let Some(item) = self.items.get_mut(&key).and_then(VecDeque::pop_front) else {
                continue;
            };
            self.busy.insert(key.clone());
            return Some((key, item));
        }
        None
    }

    /// The key is free again: its next action, if any, becomes ready.
    fn release(&mut self, key: &Key) -> bool {
        self.busy.remove(key);
        match self.items.get(key) {
            Some(q) if !q.is_empty() => {
                self.ready.push_back(key.clone());
                true
            }
            _ => {
                self.items.remove(key);
                false
            }
        }
    }
}

/// The queue and its workers.
pub struct ActionQueue {
    executor: Arc<Executor>,
    allowlist: Mutex<Allowlist>,
    config: Config,
    state: Mutex<State>,
    wake: Notify,
    /// Signalled whenever nothing is left pending or running.
    idle: Notify,
    limiter: DefaultDirectRateLimiter,
    dead: Mutex<VecDeque<DeadLetter>>,
    stats: Stats,
    closed: AtomicBool,
    stop: CancellationToken,
    /// Whether actions may run: false on a replica that does not lead.
    active: AtomicBool,
    /// Checked right before each write (sharded mode).
    scope: Scope,
}

impl std::fmt::Debug for ActionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionQueue")
            .field("config", &self.config)
            .field("outstanding", &self.state.lock().outstanding)
            .finish_non_exhaustive()
    }
}

impl ActionQueue {
    /// Start the queue's workers.
    pub fn start(executor: Arc<Executor>, allowlist: Allowlist, config: Config) -> Arc<Self> {
        Self::start_fenced(executor, allowlist, config, Scope::all())
    }

    /// Start the queue's workers, writing each action only while `scope`
    /// holds its claim, checked right before the write.
    pub fn start_fenced(
        executor: Arc<Executor>,
        allowlist: Allowlist,
        config: Config,
        scope: Scope,
    ) -> Arc<Self> {
        let quota = Quota::per_second(config.qps).allow_burst(config.burst);
        let this = Arc::new(Self {
            executor,
            allowlist: Mutex::new(allowlist),
            limiter: RateLimiter::direct(quota),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            idle: Notify::new(),
            dead: Mutex::new(VecDeque::new()),
            stats: Stats::default(),
            closed: AtomicBool::new(false),
            stop: CancellationToken::new(),
            active: AtomicBool::new(true),
            config,
            scope,
        });
        for _ in 0..this.config.workers {
            tokio::spawn(this.clone().work());
        }
        let flusher = this.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(flusher.config.event_flush);
            loop {
                tokio::select! {
                    () = flusher.stop.cancelled() => break,
                    _ = tick.tick() => flusher.executor.flush_event_series().await,
                }
            }
        });
        this
    }

    /// Replace the operator's allowlist.
    pub fn set_allowlist(&self, allowlist: Allowlist) {
        *self.allowlist.lock() = allowlist;
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> Allowlist {
        self.allowlist.lock().clone()
    }

    /// Give one plugin its rules (a Plugin object's), or none.
    pub fn set_rules(&self, plugin: &str, rules: Option<Vec<super::Rule>>) {
        self.allowlist.lock().set(plugin, rules);
    }

    /// Let actions run (the default), or not: a replica that does not hold
    /// the leader Lease executes nothing. Going inactive drops what is
    /// pending (the new leader reaches the same state from its own initial
    /// sync); actions already running finish. Inactive, the queue takes
    /// nothing.
    pub fn set_active(&self, active: bool) {
        let was = self.active.swap(active, Ordering::SeqCst);
        if active {
            self.wake.notify_waiters();
            return;
        }
        if was {
            let dropped = {
                let mut st = self.state.lock();
                let n: usize = st.items.values().map(VecDeque::len).sum();
                st.items.clear();
                st.ready.clear();
                st.outstanding = st.outstanding.saturating_sub(n);
                n
            };
            if self.outstanding() == 0 {
                self.idle.notify_waiters();
            }
            if dropped > 0 {
                tracing::warn!(dropped, "not leading: pending actions dropped");
            }
        }
    }

    /// Whether actions run here.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Actions pending or running.
    pub fn outstanding(&self) -> usize {
        self.state.lock().outstanding
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().iter().cloned().collect()
    }

    /// Queue the dead letters again (of one plugin, or all), as new
    /// actions with fresh retries: for an operator who fixed what made them
    /// fail (an RBAC rule, a webhook). Letters the operator's allowlist
    /// refused stay: only a configuration change can let them through.
    /// Returns how many were queued again and how many stayed.
    pub fn redrive(&self, plugin: Option<&str>) -> (usize, usize) {
        let taken: Vec<DeadLetter> = {
            let mut dead = self.dead.lock();
            let (take, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut *dead)
                .into_iter()
                .partition(|d| plugin.is_none_or(|p| d.plugin == p) && d.reason != Reason::Refused);
            *dead = keep;
            take.into_iter().collect()
        };
        let stayed = self.dead.lock().len();
        let mut queued = 0;
        for letter in taken {
            tracing::info!(plugin.name = %letter.plugin, action = letter.action.name(), object.ref = %letter.action.target(), reason = ?letter.reason, "dead letter queued again");
            queued += self.submit_claimed(&letter.plugin, letter.claim, vec![letter.action]);
        }
        (queued, stayed)
    }

    /// Queue the actions one call of `plugin` committed, after checking each
    /// against the operator's allowlist. (What the plugin declared was
    /// checked when it enqueued them: the guest got the refusal.) A refused
    /// action never reaches the API: it is logged, counted and kept as a
    /// dead letter. Returns how many were queued.
    pub fn submit(&self, plugin: &str, actions: Vec<Action>) -> usize {
        self.submit_claimed(plugin, Claim::Any, actions)
    }

    /// [`Self::submit`] for actions of work with `claim`: each is written
    /// only if the claim still holds right before the write.
    pub fn submit_claimed(&self, plugin: &str, claim: Claim, actions: Vec<Action>) -> usize {
        let plugin: Arc<str> = plugin.into();
        let mut queued = 0;
        for action in actions {
            if let Err(reason) = self.allowlist.lock().check(&plugin, &action) {
                self.stats
                    .count(&self.stats.refused, action.name(), "refused");
                tracing::warn!(plugin.name = %plugin, action = action.name(), object.ref = %action.target(), %reason, "action refused");
                self.bury(&plugin, claim, action, Reason::Refused, 0, 403, reason);
                continue;
            }
            if !self.active.load(Ordering::SeqCst) {
                self.stats.standby.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(plugin.name = %plugin, action = action.name(), object.ref = %action.target(), "action not queued: this replica does not lead");
                continue;
            }
            if !self.scope.holds(claim) {
                self.stats
                    .count(&self.stats.fenced, action.name(), "fenced");
                tracing::debug!(plugin.name = %plugin, action = action.name(), object.ref = %action.target(), ?claim, "action not queued: this replica no longer holds its bucket");
                continue;
            }
            if self.closed.load(Ordering::SeqCst) {
                tracing::warn!(plugin.name = %plugin, action = action.name(), object.ref = %action.target(), "action not queued: the host is shutting down");
                self.bury(
                    &plugin,
                    claim,
                    action,
                    Reason::Shutdown,
                    0,
                    0,
                    "the host was shutting down".into(),
                );
                continue;
            }
            let key = (plugin.clone(), action.target().clone());
            let mut st = self.state.lock();
            let pending = st.items.entry(key.clone()).or_default();
            if pending.iter().any(|i| i.action == action) {
                self.stats
                    .count(&self.stats.deduplicated, action.name(), "deduplicated");
                continue;
            }
            let first = pending.is_empty();
            pending.push_back(Item {
                action,
                attempts: 0,
                claim,
                forbidden_since: None,
            });
            st.outstanding += 1;
            if first && !st.busy.contains(&key) {
                st.ready.push_back(key);
            }
            drop(st);
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            queued += 1;
            self.wake.notify_one();
        }
        queued
    }

    async fn work(self: Arc<Self>) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let job = if self.active.load(Ordering::SeqCst) {
                self.state.lock().take()
            } else {
                None
            };
            let Some((key, item)) = job else {
                tokio::select! {
                    () = self.stop.cancelled() => return,
                    () = notified => continue,
                }
            };
            // More work may be ready for another worker.
            self.wake.notify_one();
            tokio::select! {
                () = self.stop.cancelled() => {
                    let mut st = self.state.lock();
                    st.items.entry(key.clone()).or_default().push_front(item);
                    st.busy.remove(&key);
                    return;
                }
                () = self.limiter.until_ready() => {}
            }
            let span = tracing::info_span!("action.execute", plugin.name = %key.0, action = item.action.name(), object.ref = %key.1, attempt = item.attempts + 1);
            self.run(key, item).instrument(span).await;
        }
    }

    async fn run(self: &Arc<Self>, key: Key, mut item: Item) {
        // The fence, right before the write: a bucket given up (or lapsed)
        // since the action was queued is another replica's now.
        if !self.scope.holds(item.claim) {
            self.stats
                .count(&self.stats.fenced, item.action.name(), "fenced");
            tracing::info!(claim = ?item.claim, "action fenced: this replica no longer holds its bucket; its new holder redoes the work");
            self.finish(&key);
            return;
        }
        item.attempts += 1;
        let result = self.executor.execute(&key.0, &item.action).await;
        let failure = match result {
            Ok(done) => {
                let (counter, outcome) = match done {
                    Done::Applied | Done::Requeue => (&self.stats.applied, "applied"),
                    Done::AlreadyDone => (&self.stats.already_done, "already_done"),
                    Done::Superseded => (&self.stats.already_done, "superseded"),
                    Done::Aggregated => (&self.stats.aggregated, "aggregated"),
                };
                self.stats.count(counter, item.action.name(), outcome);
                if self.executor.dry_run() {
                    tracing::info!(outcome = ?done, "dry run: the API server accepted the action; nothing was changed");
                } else if let Some(since) = item.forbidden_since {
                    tracing::info!(outcome = ?done, forbidden_s = since.elapsed().as_secs(), attempts = item.attempts, "action done: the permission it lacked has been granted");
                } else {
                    tracing::debug!(outcome = ?done, "action done");
                }
                self.finish(&key);
                return;
            }
            Err(failure) => failure,
        };
        let now = tokio::time::Instant::now();
        let forbidden_for = item
            .forbidden_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        let delay = match self
            .config
            .retry
            .decide(&failure, item.attempts, forbidden_for)
        {
            Decision::Retry(delay) => {
                tracing::debug!(error = %failure, delay_ms = delay.as_millis() as u64, "action failed; will retry");
                delay
            }
            Decision::RetryForbidden(delay) => {
                if item.forbidden_since.is_none() {
                    item.forbidden_since = Some(now);
                    tracing::warn!(
                        error = %failure,
                        retry_for_s = self.config.retry.forbidden_retry_for.as_secs(),
                        "action forbidden: the host's service account lacks an RBAC rule for it; retrying with backoff until the rule is granted (see deploy/base/clusterrole.yaml)"
                    );
                } else {
                    tracing::debug!(error = %failure, delay_ms = delay.as_millis() as u64, "action still forbidden; will retry");
                }
                self.stats.forbidden_retries.fetch_add(1, Ordering::Relaxed);
                delay
            }
            Decision::GiveUp(why) => return self.fail(&key, item, failure, why).await,
        };
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        self.state
            .lock()
            .items
            .entry(key.clone())
            .or_default()
            .push_front(item);
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = this.stop.cancelled() => {}
            }
            if this.state.lock().release(&key) {
                this.wake.notify_one();
            }
        });
    }

    async fn fail(&self, key: &Key, item: Item, failure: Failure, why: GiveUp) {
        self.stats
            .count(&self.stats.failed, item.action.name(), "failed");
        let reason = match why {
            GiveUp::RetriesExhausted => Reason::RetriesExhausted,
            GiveUp::Terminal => Reason::Terminal,
            GiveUp::Forbidden => Reason::Forbidden,
        };
        tracing::error!(error = %failure, attempts = item.attempts, reason = ?reason, "action failed; given up");
        // Tell whoever looks at the object, unless the failed action was
        // itself an Event (or the object is gone): one try, no retry.
        let tell = !(matches!(item.action, Action::EmitEvent { .. })
            || failure.code == 404
            || failure.code == 403)
            && self.scope.holds(item.claim);
        if tell {
            let event = Action::EmitEvent {
                regarding: key.1.clone(),
                severity: Severity::Warning,
                reason: "ActionFailed".into(),
                message: format!(
                    "plugin {}: {} failed after {} attempt(s): {}",
                    key.0,
                    item.action.name(),
                    item.attempts,
                    failure.message
                ),
                action: item.action.name().into(),
            };
            if let Err(e) = self.executor.execute("informant", &event).await {
                tracing::debug!(error = %e, "could not record the failure as an Event");
            }
        }
        self.bury(
            &key.0,
            item.claim,
            item.action,
            reason,
            item.attempts,
            failure.code,
            failure.message,
        );
        self.finish(key);
    }

    fn finish(&self, key: &Key) {
        let mut st = self.state.lock();
        st.outstanding = st.outstanding.saturating_sub(1);
        let idle = st.outstanding == 0;
        let next = st.release(key);
        drop(st);
        if next {
            self.wake.notify_one();
        }
        if idle {
            self.idle.notify_waiters();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn bury(
        &self,
        plugin: &str,
        claim: Claim,
        action: Action,
        reason: Reason,
        attempts: u32,
        code: u16,
        message: String,
    ) {
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let mut dead = self.dead.lock();
        if dead.len() >= self.config.dead_letters {
            dead.pop_front();
        }
        dead.push_back(DeadLetter {
            at: jiff::Timestamp::now().to_string(),
            plugin: plugin.to_string(),
            action,
            reason,
            attempts,
            code,
            message,
            claim,
        });
    }

    /// Wait until nothing is pending or running, or `timeout` passes.
    /// Returns whether the queue drained.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a drain in between is seen.
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.outstanding() == 0;
            }
        }
    }

    /// Stop taking actions, give the pending ones `grace` to finish, then
    /// stop the workers. Whatever is left is logged and kept as dead letters
    /// (never dropped silently) and returned.
    pub async fn shutdown(&self, grace: Duration) -> Vec<(String, Action)> {
        self.closed.store(true, Ordering::SeqCst);
        let drained = self.wait_idle(grace).await;
        self.stop.cancel();
        if drained {
            tracing::info!("action queue drained");
            return Vec::new();
        }
        let left: Vec<(String, Claim, Action)> = {
            let mut st = self.state.lock();
            let items = std::mem::take(&mut st.items);
            st.outstanding = 0;
            items
                .into_iter()
                .flat_map(|((plugin, _), q)| {
                    q.into_iter()
                        .map(move |i| (plugin.to_string(), i.claim, i.action))
                })
                .collect()
        };
        self.idle.notify_waiters();
        tracing::warn!(
            left = left.len(),
            grace_ms = grace.as_millis() as u64,
            "shutdown: actions not executed within the grace period"
        );
        for (plugin, claim, action) in &left {
            tracing::warn!(plugin.name = %plugin, action = action.name(), object.ref = %action.target(), "action not executed: shutdown");
            self.bury(
                plugin,
                *claim,
                action.clone(),
                Reason::Shutdown,
                0,
                0,
                "not executed before shutdown".into(),
            );
        }
        left.into_iter().map(|(p, _, a)| (p, a)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_runs_one_action_at_a_time_in_order() {
        let key: Key = (
            "p".into(),
            ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                name: "x".into(),
            },
        );
        let item = |n: u64| Item {
            action: Action::RequeueAfter {
                target: key.1.clone(),
                delay_ms: n,
            },
            attempts: 0,
            claim: Claim::Any,
            forbidden_since: None,
        };
        let mut st = State::default();
        st.items
            .entry(key.clone())
            .or_default()
            .extend([item(1), item(2)]);
        st.ready.push_back(key.clone());
        let (k, first) = st.take().unwrap();
        assert!(matches!(
            first.action,
            Action::RequeueAfter { delay_ms: 1, .. }
        ));
        // Busy: the second waits even if the key is marked ready again.
        st.ready.push_back(key.clone());
        assert!(st.take().is_none());
        assert!(st.release(&k));
        let (_, second) = st.take().unwrap();
        assert!(matches!(
            second.action,
            Action::RequeueAfter { delay_ms: 2, .. }
        ));
        assert!(!st.release(&k));
        assert!(st.items.is_empty());
    }
}
