//! `/metrics`: the host's numbers in Prometheus text, read from the live
//! counters at scrape time. Labels stay bounded (plugin, resource, outcome),
//! never object names.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use super::AppState;
use crate::{
    dispatch::{CircuitState, LaneCounts},
    informer::{WatchKey, WatchStatus},
    reload::Reloader,
    runtime::Runtime,
};

/// Renders the registry.
pub async fn render(State(state): State<AppState>) -> Response {
    state.collector.refresh().await;
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be encoded");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics could not be encoded\n",
            )
                .into_response()
        }
    }
}

/// Collects the host's metrics on each scrape.
pub struct HostCollector {
    runtime: Arc<Runtime>,
    reloader: Option<Arc<Reloader>>,
    /// Watch statuses, read asynchronously before each scrape (the
    /// collector itself is synchronous).
    watches: parking_lot::Mutex<Vec<(WatchKey, WatchStatus, usize)>>,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector").finish_non_exhaustive()
    }
}

impl HostCollector {
    /// A collector over the running host.
    pub fn new(runtime: Arc<Runtime>, reloader: Option<Arc<Reloader>>) -> Self {
        Self {
            runtime,
            reloader,
            watches: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Read what needs an `.await` before a scrape.
    pub async fn refresh(&self) {
        let statuses = self.runtime.subscriptions().informers().statuses().await;
        *self.watches.lock() = statuses;
    }
}

type Labels = Vec<(&'static str, String)>;

impl HostCollector {
    /// The plugins' stores: operations, commits, usage, durable writes.
    fn encode_state(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stores = self.runtime.stores().all();
        let plugin = |s: &crate::state::Store| vec![("plugin", s.plugin().to_string())];
        let mut ops = Vec::new();
        let mut commits = Vec::new();
        for store in &stores {
            for (op, outcome, n) in store.stats().ops() {
                let mut labels = plugin(store);
                labels.push(("operation", op.as_str().to_string()));
                labels.push(("outcome", outcome.as_str().to_string()));
                ops.push((labels, counter(n)));
            }
            for (outcome, n) in store.stats().commits() {
                let mut labels = plugin(store);
                labels.push(("outcome", outcome.as_str().to_string()));
                commits.push((labels, counter(n)));
            }
        }
        family(
            encoder,
            "informant_state_operations",
            "Calls of plugins to their stores, by operation and outcome: ok, or the error code the plugin got (invalid, forbidden, limit-exceeded).",
            MetricType::Counter,
            ops,
        )?;
        family(
            encoder,
            "informant_state_commits",
            "Calls' writes to their stores by outcome: committed; conflict (another instance changed what the call read: it runs again); failed (the durable tier could not write); standby (durable writes of a replica that does not lead, dropped).",
            MetricType::Counter,
            commits,
        )?;
        let usage = |f: &dyn Fn(crate::state::Usage) -> u64| {
            stores
                .iter()
                .map(|s| {
                    (
                        plugin(s),
                        gauge(usize::try_from(f(s.usage())).unwrap_or(usize::MAX)),
                    )
                })
                .collect::<Vec<_>>()
        };
        family(
            encoder,
            "informant_state_keys",
            "Keys in a plugin's store.",
            MetricType::Gauge,
            usage(&|u| u.keys),
        )?;
        family(
            encoder,
            "informant_state_bytes",
            "Bytes of keys and values in a plugin's store.",
            MetricType::Gauge,
            usage(&|u| u.bytes),
        )?;
        let mut histograms = encoder.encode_descriptor(
            "informant_state_write_duration_seconds",
            "Writes of the durable tier to the API server, from request to answer.",
            None,
            MetricType::Histogram,
        )?;
        for store in stores
            .iter()
            .filter(|s| s.tier() == crate::state::Tier::Durable)
        {
            store
                .stats()
                .write_seconds
                .encode(histograms.encode_family(&plugin(store))?)?;
        }
        Ok(())
    }
}

/// One family of labelled values.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    values: Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, metric) in values {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: usize) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let lanes = self.runtime.dispatcher().lanes();
        let plugin = |name: &str| vec![("plugin", name.to_string())];
        let with = |name: &str, key: &'static str, value: &str| {
            vec![("plugin", name.to_string()), (key, value.to_string())]
        };
        let per_lane = |f: &dyn Fn(&LaneCounts) -> u64| {
            lanes
                .iter()
                .map(|l| (plugin(l.name()), counter(f(&l.stats().counts()))))
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "informant_events_received",
            "Events queued for a plugin.",
            MetricType::Counter,
            per_lane(&|s| s.received),
        )?;
        family(
            &mut encoder,
            "informant_events_coalesced",
            "Events merged into a pending one of the same object (latest-state).",
            MetricType::Counter,
            per_lane(&|s| s.coalesced),
        )?;
        family(
            &mut encoder,
            "informant_events_merged",
            "Events merged into others of their object because the plugin was further behind than its bound (every-event); none is ever dropped.",
            MetricType::Counter,
            per_lane(&|s| s.merged),
        )?;
        family(
            &mut encoder,
            "informant_events_given_up",
            "Events given up after their last failed call.",
            MetricType::Counter,
            per_lane(&|s| s.given_up),
        )?;
        family(
            &mut encoder,
            "informant_requeues",
            "Objects redelivered after requeue-after.",
            MetricType::Counter,
            per_lane(&|s| s.requeued),
        )?;

        let mut calls = Vec::new();
        let mut refusals = Vec::new();
        let mut recycled = Vec::new();
        for l in &lanes {
            let plugin = l.plugin();
            for (outcome, v) in plugin.calls_by_outcome() {
                calls.push((with(l.name(), "outcome", outcome.as_str()), counter(v)));
            }
            for (code, v) in plugin.refusals() {
                refusals.push((with(l.name(), "code", code), counter(v)));
            }
            recycled.push((
                vec![("plugin", l.name().to_string())],
                counter(plugin.counts().recycled),
            ));
        }
        family(
            &mut encoder,
            "informant_plugin_calls",
            "Plugin calls by outcome (the version in service): ok, failed, timeout (past the deadline), out_of_memory, trap.",
            MetricType::Counter,
            calls,
        )?;
        family(
            &mut encoder,
            "informant_plugin_refusals",
            "Cache reads and actions refused to a plugin, by the error code it got: forbidden, limit-exceeded, invalid, not-found (the codes of the contract).",
            MetricType::Counter,
            refusals,
        )?;
        family(
            &mut encoder,
            "informant_plugin_instances_recycled",
            "Idle instances dropped to give memory back after a call grew them.",
            MetricType::Counter,
            recycled,
        )?;
        {
            let mut histograms = encoder.encode_descriptor(
                "informant_plugin_call_duration_seconds",
                "Duration of plugin calls.",
                None,
                MetricType::Histogram,
            )?;
            for l in &lanes {
                let labels = plugin(l.name());
                l.stats()
                    .call_seconds
                    .encode(histograms.encode_family(&labels)?)?;
            }
        }
        family(
            &mut encoder,
            "informant_plugin_memory_bytes",
            "Linear memory of the plugin's largest idle instance.",
            MetricType::Gauge,
            lanes
                .iter()
                .map(|l| (plugin(l.name()), gauge(l.plugin().peak_memory_bytes())))
                .collect(),
        )?;
        let statuses: Vec<_> = lanes
            .iter()
            .map(|l| (plugin(l.name()), l.status()))
            .collect();
        family(
            &mut encoder,
            "informant_queue_depth",
            "Events waiting for the plugin: live ones, and initial-list and resync entries not delivered yet.",
            MetricType::Gauge,
            statuses
                .iter()
                .map(|(labels, s)| (labels.clone(), gauge(s.pending)))
                .collect(),
        )?;
        family(
            &mut encoder,
            "informant_queue_syncing",
            "Initial-list and resync entries not delivered to the plugin yet.",
            MetricType::Gauge,
            statuses
                .iter()
                .map(|(labels, s)| (labels.clone(), gauge(s.syncing)))
                .collect(),
        )?;
        family(
            &mut encoder,
            "informant_queue_oldest_seconds",
            "How long the oldest event waiting for the plugin has waited.",
            MetricType::Gauge,
            statuses
                .iter()
                .map(|(labels, s)| (labels.clone(), ConstGauge::new(s.oldest_seconds)))
                .collect(),
        )?;
        family(
            &mut encoder,
            "informant_plugin_circuit_open",
            "1 while the plugin's circuit breaker holds its calls.",
            MetricType::Gauge,
            lanes
                .iter()
                .map(|l| {
                    (
                        plugin(l.name()),
                        gauge(usize::from(l.status().circuit != CircuitState::Closed)),
                    )
                })
                .collect(),
        )?;

        let q = self.runtime.actions().stats();
        family(
            &mut encoder,
            "informant_actions",
            "Actions by kind of action and outcome.",
            MetricType::Counter,
            q.by_kind()
                .into_iter()
                .map(|((action, outcome), v)| {
                    let labels = vec![
                        ("action", action.to_string()),
                        ("outcome", outcome.to_string()),
                    ];
                    (labels, counter(v))
                })
                .collect(),
        )?;
        family(
            &mut encoder,
            "informant_action_retries",
            "Action retries scheduled.",
            MetricType::Counter,
            vec![(Vec::new(), counter(q.counts().retries))],
        )?;
        family(
            &mut encoder,
            "informant_action_forbidden_retries",
            "Retries of actions the API server refused (403): a missing RBAC rule.",
            MetricType::Counter,
            vec![(Vec::new(), counter(q.counts().forbidden_retries))],
        )?;
        family(
            &mut encoder,
            "informant_dead_letters",
            "Actions recorded as dead letters.",
            MetricType::Counter,
            vec![(Vec::new(), counter(q.counts().dead_lettered))],
        )?;
        family(
            &mut encoder,
            "informant_action_queue_depth",
            "Actions pending or running.",
            MetricType::Gauge,
            vec![(Vec::new(), gauge(self.runtime.actions().outstanding()))],
        )?;

        let shards = self.runtime.scope().shards();
        family(
            &mut encoder,
            "informant_leader",
            "1 while this replica executes actions (always, without leader election); sharded, while it holds the leader Lease and does the cluster-wide work.",
            MetricType::Gauge,
            vec![(
                Vec::new(),
                gauge(usize::from(shards.map_or_else(
                    || self.runtime.actions().is_active(),
                    |s| s.fence().singleton(),
                ))),
            )],
        )?;
        family(
            &mut encoder,
            "informant_actions_fenced",
            "Actions not written because this replica no longer held the bucket of the object they came from (sharded mode); its new holder redoes the work.",
            MetricType::Counter,
            vec![(Vec::new(), counter(q.counts().fenced))],
        )?;
        if let Some(shards) = shards {
            let held = shards.fence().held_at(std::time::Instant::now()).len();
            family(
                &mut encoder,
                "informant_shard_buckets_held",
                "Buckets this replica holds (sharded mode).",
                MetricType::Gauge,
                vec![(Vec::new(), gauge(held))],
            )?;
            family(
                &mut encoder,
                "informant_shard_buckets",
                "Buckets the objects fall into (sharded mode).",
                MetricType::Gauge,
                vec![(Vec::new(), gauge(usize::from(shards.config().buckets)))],
            )?;
            family(
                &mut encoder,
                "informant_shard_members",
                "Live replicas sharing the work, as this replica sees their membership Leases.",
                MetricType::Gauge,
                vec![(Vec::new(), gauge(shards.view().members.len()))],
            )?;
            let h = shards.handoffs().counts();
            family(
                &mut encoder,
                "informant_shard_handoffs",
                "Buckets changing hands here: acquired (taken), released (handed over on purpose), lost (taken by another replica after renewals failed), lapsed (no renewal within the renew deadline).",
                MetricType::Counter,
                [
                    ("acquired", h.acquired),
                    ("released", h.released),
                    ("lost", h.lost),
                    ("lapsed", h.lapsed),
                ]
                .into_iter()
                .map(|(d, v)| (vec![("direction", d.to_string())], counter(v)))
                .collect(),
            )?;
        }
        family(
            &mut encoder,
            "informant_actions_standby",
            "Actions not queued because this replica does not lead.",
            MetricType::Counter,
            vec![(Vec::new(), counter(q.counts().standby))],
        )?;

        let cache = self.runtime.cache().stats();
        family(
            &mut encoder,
            "informant_cache_objects",
            "Objects in the cache.",
            MetricType::Gauge,
            vec![(Vec::new(), gauge(cache.objects))],
        )?;
        family(
            &mut encoder,
            "informant_cache_bytes",
            "Heap bytes held by cached objects.",
            MetricType::Gauge,
            vec![(Vec::new(), gauge(cache.bytes))],
        )?;

        // Watches: one series per resource, summed over its selectors.
        let statuses = self.watches.lock().clone();
        /// Per resource: relists, interruptions, resumes, blind seconds, watches.
        #[derive(Default)]
        struct Sums(u64, u64, u64, f64, usize);
        let mut relists: std::collections::BTreeMap<String, Sums> = Default::default();
        for (key, status, _) in statuses {
            let e = relists
                .entry(format!("{}/{}", key.api_version, key.plural))
                .or_default();
            e.0 += status.relists;
            e.1 += status.interruptions;
            e.2 += status.resumes;
            e.3 += status.blind_seconds;
            e.4 += 1;
        }
        let per_resource = |f: &dyn Fn(&Sums) -> u64| {
            relists
                .iter()
                .map(|(r, sums)| (vec![("resource", r.clone())], counter(f(sums))))
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "informant_watch_relists",
            "Relists after the initial list (410 Gone, restarts).",
            MetricType::Counter,
            per_resource(&|s| s.0),
        )?;
        family(
            &mut encoder,
            "informant_watch_interruptions",
            "Watches cut off after they had synced: a dropped or silent connection, an error, 410 Gone.",
            MetricType::Counter,
            per_resource(&|s| s.1),
        )?;
        family(
            &mut encoder,
            "informant_watch_resumes",
            "Interrupted watches that resumed from their resourceVersion without a relist.",
            MetricType::Counter,
            per_resource(&|s| s.2),
        )?;
        family(
            &mut encoder,
            "informant_watch_blind_seconds",
            "Time watches could not see, between an interruption and the resume or relist that ended it.",
            MetricType::Counter,
            relists
                .iter()
                .map(|(r, sums)| {
                    (
                        vec![("resource", r.clone())],
                        prometheus_client::metrics::counter::ConstCounter::new(sums.3),
                    )
                })
                .collect(),
        )?;
        family(
            &mut encoder,
            "informant_watches",
            "Running watches.",
            MetricType::Gauge,
            relists
                .iter()
                .map(|(r, sums)| (vec![("resource", r.clone())], gauge(sums.4)))
                .collect(),
        )?;

        self.encode_state(&mut encoder)?;

        if let Some(reloader) = &self.reloader {
            let files = reloader.statuses();
            let loads: u64 = files.iter().map(|f| f.loads).sum();
            let failures: u64 = files.iter().map(|f| f.failures).sum();
            family(
                &mut encoder,
                "informant_reloads",
                "Plugin file loads by outcome.",
                MetricType::Counter,
                vec![
                    (vec![("outcome", "loaded".to_string())], counter(loads)),
                    (vec![("outcome", "failed".to_string())], counter(failures)),
                ],
            )?;
        }
        Ok(())
    }
}
