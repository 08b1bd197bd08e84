//! The webhooks this replica serves: every plugin in service whose manifest
//! declares one, as the operator's configuration has it, with counters and
//! last errors for the admin API and metrics.
//!
//! A review runs the plugin in place (the runtime moves the worker's other
//! tasks away meanwhile), bounded per plugin like its event calls, within a
//! budget of half the webhook's `timeoutSeconds`
//! (its own deadline, if shorter, bounds the call itself), so the host always
//! answers before the API server gives up on it. A plugin is asked only once
//! its subscriptions have synced. A plugin that was just unloaded (the API
//! server has not seen its webhook go yet) is answered for by the failure
//! policy it last had.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::{
    configuration::Settings,
    decision::{Answer, Decision, Failure, Judge},
    review::{self, MalformedReview},
};
use crate::{
    dispatch::{Dispatcher, Distribution, Durations},
    plugin::{
        CallError, Plugin,
        admission::AdmissionRequest,
        webhook::{Mode, Webhook},
    },
};

/// Why a review got no AdmissionReview back.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The body is not a review (400).
    #[error(transparent)]
    Malformed(#[from] MalformedReview),
    /// No plugin of that name has, or ever had, a webhook here (404).
    #[error("no such webhook")]
    NoWebhook,
}

/// Histogram buckets for admission durations: 25 µs to about 5 s, each
/// 1.5 times the last, fine enough to read a p99 near a millisecond.
fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(25e-6, 1.5, 31)
}

/// The last failure of a webhook, for the admin API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// When (RFC 3339).
    pub at: String,
    /// The cause: `trap`, `timeout`, `refused`, `bad_patch`, `unloaded`...
    pub cause: &'static str,
    /// What the API server was told.
    pub message: String,
    /// The request: operation, resource and object.
    pub request: String,
}

/// One plugin's webhook as served: kept after the plugin is unloaded, so
/// that a late request is answered by its failure policy.
pub(crate) struct Served {
    /// The effective webhook last seen for the plugin.
    pub(crate) webhook: RwLock<Webhook>,
    /// Concurrent calls, as many as the plugin's event calls.
    calls: Arc<Semaphore>,
    by_decision: [AtomicU64; 4],
    failures: Mutex<BTreeMap<&'static str, u64>>,
    last_error: Mutex<Option<LastError>>,
    pub(crate) seconds: prometheus_client::metrics::histogram::Histogram,
    durations: Durations,
}

impl Served {
    fn new(webhook: Webhook, concurrency: usize) -> Self {
        Self {
            webhook: RwLock::new(webhook),
            calls: Arc::new(Semaphore::new(concurrency.max(1))),
            by_decision: Default::default(),
            failures: Mutex::new(BTreeMap::new()),
            last_error: Mutex::new(None),
            seconds: prometheus_client::metrics::histogram::Histogram::new(duration_buckets()),
            durations: Durations::default(),
        }
    }

    /// Requests by decision, in [`Decision::ALL`] order.
    pub(crate) fn by_decision(&self) -> [(Decision, u64); 4] {
        Decision::ALL.map(|d| (d, self.by_decision[d as usize].load(Ordering::Relaxed)))
    }

    /// Failures by cause.
    pub(crate) fn failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures.lock().clone()
    }

    fn record(&self, answer: &Answer, request: &str, took: Duration) {
        self.by_decision[answer.decision as usize].fetch_add(1, Ordering::Relaxed);
        self.seconds.observe(took.as_secs_f64());
        self.durations.observe(took);
        if let Some(failure) = &answer.failure {
            *self.failures.lock().entry(failure.cause()).or_default() += 1;
            let message = answer
                .response
                .status
                .as_ref()
                .map(|s| s.message.clone())
                .or_else(|| answer.response.warnings.first().cloned())
                .unwrap_or_default();
            *self.last_error.lock() = Some(LastError {
                at: jiff::Timestamp::now().to_string(),
                cause: failure.cause(),
                message,
                request: request.to_string(),
            });
        }
    }
}

/// A plugin's webhook now.
#[derive(Debug, Clone)]
pub struct Current {
    /// The plugin.
    pub plugin: String,
    /// Its webhook, as the operator's configuration has it.
    pub webhook: Webhook,
    /// Whether its subscriptions have synced, so it can answer.
    pub ready: bool,
}

/// The webhooks this replica serves.
pub struct Admission {
    dispatcher: Arc<Dispatcher>,
    settings: Settings,
    served: Mutex<BTreeMap<String, Arc<Served>>>,
    registration: Mutex<super::registrar::Status>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How a request reads in logs and the admin API:
/// `CREATE apps/v1 deployments shop/web`.
pub fn describe(r: &AdmissionRequest) -> String {
    let gv = if r.resource.group.is_empty() {
        r.resource.version.clone()
    } else {
        format!("{}/{}", r.resource.group, r.resource.version)
    };
    let resource = match &r.sub_resource {
        Some(sub) => format!("{}/{sub}", r.resource.resource),
        None => r.resource.resource.clone(),
    };
    let name = if r.name.is_empty() {
        "(generated name)"
    } else {
        &r.name
    };
    match &r.namespace {
        Some(ns) => format!("{} {gv} {resource} {ns}/{name}", r.operation.as_str()),
        None => format!("{} {gv} {resource} {name}", r.operation.as_str()),
    }
}

impl Admission {
    /// The webhooks of the plugins `dispatcher` runs, as `settings` says.
    pub fn new(dispatcher: Arc<Dispatcher>, settings: Settings) -> Self {
        Self {
            dispatcher,
            settings,
            served: Mutex::new(BTreeMap::new()),
            registration: Mutex::new(super::registrar::Status::default()),
        }
    }

    /// How webhooks are served and registered.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The dispatcher whose plugins answer.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Every plugin in service with a webhook, by name.
    pub fn current(&self) -> Vec<Current> {
        self.dispatcher
            .lanes()
            .into_iter()
            .filter_map(|lane| {
                let plugin = lane.plugin();
                let declared = plugin.manifest().admission.as_ref()?;
                let webhook = self.settings.effective(lane.name(), declared)?;
                Some(Current {
                    plugin: lane.name().to_string(),
                    webhook,
                    ready: lane.started(),
                })
            })
            .collect()
    }

    /// Webhooks whose plugin is loaded but not ready yet: readiness waits.
    pub fn waiting(&self) -> Vec<String> {
        self.current()
            .into_iter()
            .filter(|c| !c.ready)
            .map(|c| c.plugin)
            .collect()
    }

    /// What the registrar last did.
    pub(crate) fn registration(&self) -> super::registrar::Status {
        self.registration.lock().clone()
    }

    pub(crate) fn set_registration(&self, update: impl FnOnce(&mut super::registrar::Status)) {
        update(&mut self.registration.lock());
    }

    /// Every webhook served so far, unloaded ones too.
    pub(crate) fn served(&self) -> Vec<(String, Arc<Served>)> {
        self.served
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The record of `plugin`'s webhook, updated to `webhook`.
    fn served_as(&self, plugin: &str, webhook: &Webhook, concurrency: usize) -> Arc<Served> {
        let mut served = self.served.lock();
        let entry = served
            .entry(plugin.to_string())
            .or_insert_with(|| Arc::new(Served::new(webhook.clone(), concurrency)));
        if *entry.webhook.read() != *webhook {
            *entry.webhook.write() = webhook.clone();
        }
        entry.clone()
    }

    /// Answer one AdmissionReview for `plugin`'s `called` webhook: the JSON
    /// of the AdmissionReview to send back.
    ///
    /// # Errors
    /// [`ReviewError`]: the body is not a review, or no such webhook exists.
    pub async fn review(
        &self,
        plugin: &str,
        called: Mode,
        body: &[u8],
    ) -> Result<Vec<u8>, ReviewError> {
        let started = Instant::now();
        let request = match review::parse(body) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::warn!(plugin.name = %plugin, webhook = %called, error = %e, "malformed AdmissionReview answered with 400");
                return Err(e.into());
            }
        };
        let what = describe(&request);
        let span = tracing::debug_span!("admission.review", plugin.name = %plugin, request.uid = %request.uid, request = %what);
        async {
            let lane = self.dispatcher.lane(plugin);
            let live = lane.and_then(|lane| {
                let p = lane.plugin();
                let webhook = self
                    .settings
                    .effective(plugin, p.manifest().admission.as_ref()?)?;
                Some((lane, p, webhook))
            });
            let (served, webhook, result) = match live {
                Some((lane, p, webhook)) => {
                    let served = self.served_as(plugin, &webhook, lane.concurrency());
                    let result = if webhook.mode != called {
                        Err(Failure::WrongKind { called })
                    } else if !lane.started() {
                        Err(Failure::NotReady)
                    } else {
                        call(&served, p, request.clone(), &webhook).await
                    };
                    (served, webhook, result)
                }
                None => {
                    let Some(served) = self.served.lock().get(plugin).cloned() else {
                        tracing::warn!(webhook = %called, "admission request for a plugin that never had a webhook here: 404");
                        return Err(ReviewError::NoWebhook);
                    };
                    let webhook = served.webhook.read().clone();
                    (served, webhook, Err(Failure::Unloaded))
                }
            };
            let judge = Judge {
                plugin,
                kind: called,
                failure_policy: webhook.failure_policy,
            };
            let answer = judge.answer(&request, result);
            let took = started.elapsed();
            served.record(&answer, &what, took);
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            match (&answer.failure, answer.decision) {
                (Some(failure), _) => {
                    let message = answer
                        .response
                        .status
                        .as_ref()
                        .map_or("allowed by failurePolicy Ignore", |s| s.message.as_str());
                    tracing::warn!(plugin.name = %plugin, request = %what, request.uid = %request.uid, cause = failure.cause(), failure_policy = webhook.failure_policy.as_str(), allowed = answer.response.allowed, "admission request answered by the failure policy: {message}");
                }
                (None, Decision::Denied) => {
                    let message = answer
                        .response
                        .status
                        .as_ref()
                        .map_or("", |s| s.message.as_str());
                    tracing::info!(plugin.name = %plugin, request = %what, took_us = micros, "admission request denied: {message}");
                }
                (None, decision) => {
                    tracing::debug!(decision = decision.as_str(), took_us = micros, "admission request answered");
                }
            }
            Ok(answer.response.to_json())
        }
        .instrument(span)
        .await
    }

    /// Every webhook for the admin API, loaded or not.
    pub fn views(&self) -> Vec<WebhookView> {
        let current: BTreeMap<String, Current> = self
            .current()
            .into_iter()
            .map(|c| (c.plugin.clone(), c))
            .collect();
        let mut served = self.served.lock().clone();
        for c in current.values() {
            if !served.contains_key(&c.plugin) {
                served.insert(
                    c.plugin.clone(),
                    Arc::new(Served::new(c.webhook.clone(), 1)),
                );
            }
        }
        served
            .into_iter()
            .map(|(plugin, s)| {
                let live = current.get(&plugin);
                let webhook = live.map_or_else(|| s.webhook.read().clone(), |c| c.webhook.clone());
                WebhookView {
                    name: self.settings.webhook_name(&plugin),
                    path: super::configuration::path(webhook.mode, &plugin),
                    state: match live {
                        Some(c) if c.ready => WebhookState::Ready,
                        Some(_) => WebhookState::Syncing,
                        None => WebhookState::Unloaded,
                    },
                    plugin,
                    requests: s
                        .by_decision()
                        .into_iter()
                        .map(|(d, n)| (d.as_str(), n))
                        .collect(),
                    failures: s.failures(),
                    last_error: s.last_error.lock().clone(),
                    durations: s.durations.distribution(),
                    webhook,
                }
            })
            .collect()
    }
}

/// Ask the plugin, within the webhook's budget.
async fn call(
    served: &Served,
    plugin: Arc<Plugin>,
    request: Arc<AdmissionRequest>,
    webhook: &Webhook,
) -> Result<crate::plugin::admission::Verdict, Failure> {
    // Well below timeoutSeconds: the answer, even a failure policy's, must
    // reach the API server before it stops waiting.
    let budget = Duration::from_secs(u64::from(webhook.timeout_seconds)) / 2;
    let deadline = tokio::time::Instant::now() + budget;
    let permit = tokio::time::timeout_at(deadline, served.calls.clone().acquire_owned())
        .await
        .map_err(|_| Failure::Busy(budget))?
        .map_err(|_| Failure::Busy(budget))?;
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    // The call is short and bounded by its deadline: run it on this worker,
    // telling the runtime to hand the worker's other tasks to another one
    // meanwhile, rather than hop to the blocking pool and back (a thread
    // switch each way is most of the host's share on a busy machine). A
    // current-thread runtime cannot do that; there, the blocking pool.
    let admitted = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => {
            let _permit = permit;
            tokio::task::block_in_place(|| plugin.admit(&request, left))
        }
        _ => tokio::task::spawn_blocking(move || {
            let _permit = permit;
            plugin.admit(&request, left)
        })
        .await
        .map_err(|e| Failure::Call(CallError::Trap(format!("the call failed in the host: {e}"))))?,
    };
    match admitted {
        Ok(a) => match a.refused {
            Some(refused) => Err(Failure::Refused(refused)),
            None => Ok(a.verdict),
        },
        Err(e) => Err(Failure::Call(e)),
    }
}

/// Where a webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookState {
    /// Its plugin's subscriptions have synced: it answers.
    Ready,
    /// Its plugin is loaded, its subscriptions not synced yet: requests are
    /// answered by its failure policy, and readiness waits for it.
    Syncing,
    /// Its plugin is gone: late requests are answered by the failure policy
    /// it last had.
    Unloaded,
}

/// One webhook, as `/api/v1/webhooks` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    plugin: String,
    /// `<plugin>.<group>`, as registered.
    name: String,
    /// Where it is served.
    path: String,
    state: WebhookState,
    /// The effective declaration.
    webhook: Webhook,
    /// Requests by decision: allowed, mutated, denied, error.
    requests: BTreeMap<&'static str, u64>,
    /// Failures by cause.
    failures: BTreeMap<&'static str, u64>,
    last_error: Option<LastError>,
    /// How long the host took per request (parsing, the call, the answer).
    durations: Distribution,
}
