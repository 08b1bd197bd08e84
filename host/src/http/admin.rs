//! The admin API: what runs, what it watches, what was given up.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::{
    action::DeadLetter,
    dispatch::{CallFailure, CircuitState, Distribution, LaneCounts},
    informer::{WatchState, subscriptions::State as SubscriptionState},
    state::{Load, Quota, Store, Tier, Usage},
    vocabulary::KindKey,
};

/// Where a plugin stands, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PluginStatus {
    /// Its circuit is open: its calls are held back after repeated failures.
    Paused,
    /// Its last calls failed; the circuit is not open (yet).
    Failing,
    /// It runs, but a newer version of its file failed to load.
    Degraded,
    /// It runs.
    Running,
    /// Its file never loaded.
    Failed,
}

/// One plugin, as `/api/v1/plugins` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// The WIT contract version it was built against.
    #[serde(skip_serializing_if = "Option::is_none")]
    contract: Option<&'static str>,
    file: Option<String>,
    /// Where it comes from: a file of the plugin directory, or a Plugin
    /// object.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    status: PluginStatus,
    /// The latest error that matters: of a call while calls fail, else of
    /// the file's last load, else of the last failed call.
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_call_error: Option<CallFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    circuit: Option<CircuitState>,
    /// Calls that may run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    indexes: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<QueueView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counters: Option<Counters>,
    /// How long its calls take (deadlines count wall-clock time).
    #[serde(skip_serializing_if = "Option::is_none")]
    call_durations: Option<Distribution>,
    /// Its store (plugins of contract 0.3.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<StoreView>,
}

/// What waits for a plugin.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueView {
    pending: usize,
    syncing: usize,
    oldest_seconds: f64,
    peak_pending: usize,
    running: usize,
}

/// What a plugin has done since its version went into service (calls) or
/// since its lane started (events).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counters {
    /// Events: received, handled, failed, retried, given up, coalesced,
    /// merged, requeued (and the time spent in calls).
    #[serde(flatten)]
    events: LaneCounts,
    /// Calls by outcome: ok, failed, timeout, out_of_memory, trap.
    calls: BTreeMap<&'static str, u64>,
    /// Reads and actions refused, by the code the plugin got.
    refused: BTreeMap<&'static str, u64>,
    instances: u64,
    recycled: u64,
    /// Calls run again because another instance changed what they read
    /// from the store before they could commit.
    reruns: u64,
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// `/api/v1/plugins`: every plugin in service, and every plugin file that
/// failed, with its error.
pub async fn plugins(State(state): State<AppState>) -> Json<Plugins> {
    let files = state
        .reloader
        .as_ref()
        .map(|r| r.statuses())
        .unwrap_or_default();
    let mut out = Vec::new();
    for lane in state.runtime.dispatcher().lanes() {
        let plugin = lane.plugin();
        let manifest = plugin.manifest();
        let file = files
            .iter()
            .find(|f| f.plugin.as_deref() == Some(lane.name()));
        let file_error = file.and_then(|f| f.error.clone());
        let status = lane.status();
        let stats = lane.stats();
        let counts = plugin.counts();
        let failing = status.consecutive_failures > 0;
        let plugin_status = if status.circuit != CircuitState::Closed {
            PluginStatus::Paused
        } else if failing {
            PluginStatus::Failing
        } else if file_error.is_some() {
            PluginStatus::Degraded
        } else {
            PluginStatus::Running
        };
        let call_error = status
            .last_call_error
            .as_ref()
            .map(|e| format!("{} on {}: {}", e.outcome, e.object, e.error));
        let last_error = if failing {
            call_error.clone()
        } else {
            file_error.clone().or(call_error.clone())
        };
        out.push(PluginView {
            name: Some(lane.name().to_string()),
            version: Some(manifest.version.clone()),
            digest: Some(plugin.digest().to_string()),
            contract: Some(plugin.contract_version()),
            file: file.map(|f| f.file.display().to_string()),
            source: state
                .runtime
                .sources()
                .holder(lane.name())
                .map(|s| s.to_string()),
            status: plugin_status,
            last_error,
            last_call_error: status.last_call_error.clone(),
            circuit: Some(status.circuit),
            concurrency: Some(status.concurrency),
            subscriptions: to_json(&manifest.subscriptions),
            indexes: to_json(&manifest.indexes),
            permissions: to_json(&Permissions {
                reads: &manifest.reads,
                writes: &manifest.writes,
            }),
            limits: to_json(plugin.limits()),
            queue: Some(QueueView {
                pending: status.pending,
                syncing: status.syncing,
                oldest_seconds: status.oldest_seconds,
                peak_pending: status.peak_pending,
                running: status.running,
            }),
            counters: Some(Counters {
                events: stats.counts(),
                calls: plugin
                    .calls_by_outcome()
                    .into_iter()
                    .map(|(o, n)| (o.as_str(), n))
                    .collect(),
                refused: plugin.refusals().into_iter().collect(),
                instances: counts.instances,
                recycled: counts.recycled,
                reruns: counts.reruns,
            }),
            call_durations: Some(stats.durations.distribution()),
            state: plugin.state().map(|s| StoreView::of(s)),
        });
    }
    // Files that never loaded have no lane; they are plugins too, broken ones.
    for f in files.iter().filter(|f| f.digest.is_none()) {
        out.push(PluginView {
            name: f.plugin.clone(),
            source: None,
            version: None,
            digest: None,
            contract: None,
            file: Some(f.file.display().to_string()),
            status: PluginStatus::Failed,
            last_error: f.error.clone(),
            last_call_error: None,
            circuit: None,
            concurrency: None,
            subscriptions: None,
            indexes: None,
            permissions: None,
            limits: None,
            queue: None,
            counters: None,
            call_durations: None,
            state: None,
        });
    }
    Json(Plugins { plugins: out })
}

/// `/api/v1/subscriptions`: every watch, its state and its size.
pub async fn subscriptions(State(state): State<AppState>) -> Json<Subscriptions> {
    let cache = state.runtime.cache();
    let mut out = Vec::new();
    for (key, status, subscribers) in state.runtime.subscriptions().informers().statuses().await {
        let (state_name, error) = match &status.state {
            WatchState::Syncing => ("syncing", None),
            WatchState::Synced => ("synced", None),
            WatchState::Error(e) => ("error", Some(e.clone())),
        };
        let kind = KindKey::new(&key.api_version, &key.kind);
        let cached = cache.kind_stats(&kind);
        out.push(SubscriptionView {
            api_version: key.api_version.clone(),
            resource: Some(key.plural.clone()),
            kind: key.kind.clone(),
            namespace: Some(key.namespace.clone()),
            label_selector: Some(key.labels.clone()),
            field_selector: Some(key.fields.clone()),
            state: state_name,
            error,
            subscribers: Some(subscribers),
            relists: Some(status.relists),
            kind_objects: Some(cached.objects),
            kind_bytes: Some(cached.bytes),
            kind_projection: cache.projection(&kind).map(|p| p.need().to_string()),
        });
    }
    // Subscriptions without a watch: their kind is not served, or discovery
    // cannot say yet.
    for u in state.runtime.subscriptions().unresolved().await {
        let (state_name, error) = match u.state {
            SubscriptionState::Unreachable { error } => ("unreachable", Some(error)),
            _ => ("pending", None),
        };
        out.push(SubscriptionView {
            api_version: u.api_version,
            kind: u.kind,
            state: state_name,
            error,
            ..SubscriptionView::default()
        });
    }
    Json(Subscriptions { subscriptions: out })
}

/// `/api/v1/dead-letters`: actions given up, oldest first.
pub async fn dead_letters(State(state): State<AppState>) -> Json<DeadLetters> {
    Json(DeadLetters {
        dead_letters: state.runtime.actions().dead_letters(),
    })
}

/// `/api/v1/shards`: how the work is shared. Without sharding, this
/// replica works on everything (`mode: all`), or does while it leads
/// (`mode: leader`).
pub async fn shards(State(state): State<AppState>) -> Json<ShardsView> {
    let runtime = &state.runtime;
    let fenced = runtime.actions().stats().counts().fenced;
    let Some(shards) = runtime.scope().shards() else {
        let leading = runtime.actions().is_active();
        return Json(ShardsView {
            mode: if runtime.leader_election() {
                ShardMode::Leader
            } else {
                ShardMode::All
            },
            acting: leading,
            ..ShardsView::default()
        });
    };
    let now = std::time::Instant::now();
    let fence = shards.fence();
    let held = fence.held_at(now);
    let view = shards.view();
    Json(ShardsView {
        mode: ShardMode::Sharded,
        acting: !held.is_empty(),
        identity: Some(shards.identity().to_string()),
        buckets: Some(shards.config().buckets),
        keys: shards
            .config()
            .keys
            .iter()
            .map(|(plugin, key)| (plugin.clone(), key.as_str()))
            .collect(),
        held: Some(held),
        singleton: Some(fence.singleton()),
        joined: Some(view.joined),
        members: Some(view.members),
        holders: Some(view.holders),
        handoffs: Some(shards.handoffs().counts()),
        actions_fenced: Some(fenced),
    })
}

/// How the work is shared.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ShardMode {
    /// One replica does everything.
    #[default]
    All,
    /// `--leader-elect`: the leader executes the actions.
    Leader,
    /// Replicas share the work on bucket Leases.
    Sharded,
}

/// The body of `/api/v1/shards`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardsView {
    mode: ShardMode,
    /// Whether this replica executes anything now: it leads, or holds a
    /// bucket.
    acting: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    /// How many buckets there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    buckets: Option<u16>,
    /// Plugins bucketed by something else than the object.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    keys: BTreeMap<String, &'static str>,
    /// The buckets this replica holds now (its fence).
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<Vec<u16>>,
    /// Whether it does the cluster-wide work.
    #[serde(skip_serializing_if = "Option::is_none")]
    singleton: Option<bool>,
    /// Whether it has announced itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    joined: Option<bool>,
    /// The live replicas and how many buckets each holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<crate::shard::Member>>,
    /// Per bucket, its holder as this replica sees the Leases.
    #[serde(skip_serializing_if = "Option::is_none")]
    holders: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handoffs: Option<crate::shard::HandoffCounts>,
    /// Actions not written because their bucket had moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    actions_fenced: Option<u64>,
}

/// Which dead letters `POST /api/v1/dead-letters/retry` queues again.
#[derive(Debug, serde::Deserialize)]
pub struct RetryQuery {
    /// Only this plugin's; all without it.
    plugin: Option<String>,
}

/// `POST /api/v1/dead-letters/retry[?plugin=NAME]`: queue the dead letters
/// again with fresh retries, once what made them fail is fixed (an RBAC
/// rule granted, a webhook repaired). Letters the operator's allowlist
/// refused stay. Only where actions run: on a replica that does not lead,
/// a 409 says so.
///
/// # Errors
/// 409 on a replica that does not execute actions.
pub async fn retry_dead_letters(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<RetryQuery>,
) -> Result<Json<Retried>, super::ApiError> {
    let actions = state.runtime.actions();
    if !actions.is_active() {
        return Err(super::ApiError::conflict(
            "this replica does not lead, so it executes no actions and holds no dead letters to retry; ask the leader (the holder of the Lease)",
        ));
    }
    let (requeued, remaining) = actions.redrive(q.plugin.as_deref());
    Ok(Json(Retried {
        requeued,
        remaining,
    }))
}

/// The body of `POST /api/v1/dead-letters/retry`.
#[derive(Debug, Serialize)]
pub struct Retried {
    /// Dead letters queued again.
    requeued: usize,
    /// Dead letters left (other plugins', or refused by the allowlist).
    remaining: usize,
}

/// The body of `/api/v1/plugins`.
#[derive(Debug, Serialize)]
pub struct Plugins {
    plugins: Vec<PluginView>,
}

/// What a plugin may read and write, as its manifest declares.
#[derive(Debug, Serialize)]
struct Permissions<'a, R: Serialize, W: Serialize> {
    reads: &'a R,
    writes: &'a W,
}

/// The body of `/api/v1/subscriptions`.
#[derive(Debug, Serialize)]
pub struct Subscriptions {
    subscriptions: Vec<SubscriptionView>,
}

/// One watch, or one subscription that has none yet (only its kind, state
/// and error).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    api_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_selector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_selector: Option<String>,
    /// `syncing`, `synced`, `error`; `pending` (not served yet) or
    /// `unreachable` (discovery cannot say yet) without a watch.
    state: &'static str,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relists: Option<u64>,
    /// Objects and bytes cached for the kind, all watches of it together.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind_objects: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind_bytes: Option<usize>,
    /// The fields the cache keeps of the kind (its readers' declarations
    /// and its indexes' paths), if not whole objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind_projection: Option<String>,
}

/// The body of `/api/v1/dead-letters`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetters {
    dead_letters: Vec<DeadLetter>,
}

/// `/api/v1/webhooks`: every webhook this replica serves (and the ones of
/// plugins unloaded since), with its requests by decision, failures by
/// cause and last error, and what the registrar last did.
pub async fn webhooks(State(state): State<AppState>) -> Json<Webhooks> {
    Json(match &state.admission {
        Some(a) => Webhooks {
            enabled: true,
            webhooks: a.views(),
            registration: Some(a.registration()),
        },
        None => Webhooks {
            enabled: false,
            webhooks: Vec::new(),
            registration: None,
        },
    })
}

/// The body of `/api/v1/webhooks`.
#[derive(Debug, Serialize)]
pub struct Webhooks {
    /// Whether this host serves admission (`--webhook-addr`).
    enabled: bool,
    webhooks: Vec<crate::admission::webhooks::WebhookView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration: Option<crate::admission::registrar::Status>,
}

/// A plugin's store, as the admin API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreView {
    plugin: String,
    tier: Tier,
    /// Whether the plugin's calls may start: a durable store's objects
    /// have been read.
    load: Load,
    /// Keys and bytes held.
    #[serde(flatten)]
    usage: Usage,
    quota: Quota,
    /// Where a durable store's objects are.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// How many objects a durable store is spread over.
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<usize>,
    /// Operations by operation and outcome (`ok` or the error code).
    operations: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Calls' writes by outcome: committed, conflict, failed, standby.
    commits: BTreeMap<&'static str, u64>,
}

impl StoreView {
    fn of(store: &Store) -> Self {
        let mut operations: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for (op, outcome, n) in store.stats().ops() {
            operations
                .entry(op.as_str())
                .or_default()
                .insert(outcome.as_str(), n);
        }
        Self {
            plugin: store.plugin().to_string(),
            tier: store.tier(),
            load: store.load(),
            usage: store.usage(),
            quota: store.quota(),
            namespace: store.namespace().map(str::to_string),
            shards: (store.tier() == Tier::Durable).then(|| store.shard_count()),
            operations,
            commits: store
                .stats()
                .commits()
                .into_iter()
                .map(|(o, n)| (o.as_str(), n))
                .collect(),
        }
    }
}

/// The body of `/api/v1/state`.
#[derive(Debug, Serialize)]
pub struct Stores {
    stores: Vec<StoreView>,
}

/// `/api/v1/state`: every plugin's store, with its usage.
pub async fn stores(State(state): State<AppState>) -> Json<Stores> {
    let stores = state.runtime.stores().all();
    Json(Stores {
        stores: stores.iter().map(|s| StoreView::of(s)).collect(),
    })
}

fn store_of(state: &AppState, plugin: &str) -> Result<std::sync::Arc<Store>, ApiError> {
    state
        .runtime
        .stores()
        .get(plugin)
        .ok_or_else(|| ApiError::not_found(format!("plugin {plugin} has no store")))
}

/// `?prefix=&cursor=&limit=`.
#[derive(Debug, serde::Deserialize)]
pub struct KeysQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The body of `/api/v1/state/{plugin}/keys`.
#[derive(Debug, Serialize)]
pub struct Keys {
    plugin: String,
    keys: Vec<String>,
    /// Where the next page starts; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// `/api/v1/state/{plugin}/keys`: a page of a store's keys, in order.
pub async fn state_keys(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(q): Query<KeysQuery>,
) -> Result<Json<Keys>, ApiError> {
    let store = store_of(&state, &plugin)?;
    let limit = q.limit.unwrap_or(1_000).clamp(1, 10_000);
    let (keys, cursor) = store.page(&q.prefix, q.cursor.as_deref(), limit);
    Ok(Json(Keys {
        plugin,
        keys,
        cursor,
    }))
}

/// `?key=`.
#[derive(Debug, serde::Deserialize)]
pub struct ValueQuery {
    key: String,
}

/// The body of `/api/v1/state/{plugin}/value`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueView {
    plugin: String,
    key: String,
    /// The value, when it is UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// The value in base64, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    version: String,
    /// When it expires, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

/// `/api/v1/state/{plugin}/value?key=`: one key's value.
pub async fn state_value(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(q): Query<ValueQuery>,
) -> Result<Json<ValueView>, ApiError> {
    use base64::Engine as _;
    let store = store_of(&state, &plugin)?;
    let (value, version, expires_at) = store
        .read(&q.key)
        .ok_or_else(|| ApiError::not_found(format!("plugin {plugin} has no key {:?}", q.key)))?;
    let (text, encoded) = match std::str::from_utf8(&value) {
        Ok(t) => (Some(t.to_string()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&value)),
        ),
    };
    Ok(Json(ValueView {
        plugin,
        key: q.key,
        value: text,
        value_base64: encoded,
        version: version.to_string(),
        expires_at: expires_at.and_then(|ms| {
            jiff::Timestamp::from_millisecond(i64::try_from(ms).ok()?)
                .ok()
                .map(|t| t.to_string())
        }),
    }))
}
