//! The admin API: what runs, what it watches, what was given up.

use std::sync::atomic::Ordering;

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::AppState;

/// `/api/v1/plugins`: every plugin in service, and every plugin file that
/// failed, with its error.
pub async fn plugins(State(state): State<AppState>) -> Json<Value> {
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
        let status = lane.status();
        let stats = lane.stats();
        let calls = plugin.counts();
        out.push(json!({
            "name": manifest.name,
            "version": manifest.version,
            "digest": plugin.digest(),
            "contract": plugin.contract_version(),
            "file": file.map(|f| f.file.display().to_string()),
            "status": if file.is_some_and(|f| f.error.is_some()) { "degraded" } else { "running" },
            "lastError": file.and_then(|f| f.error.clone()),
            "circuit": status.circuit,
            "subscriptions": manifest.subscriptions,
            "indexes": manifest.indexes,
            "permissions": {"reads": manifest.reads, "writes": manifest.writes},
            "limits": plugin.limits(),
            "queue": {
                "pending": status.pending, "syncing": status.syncing,
                "oldestSeconds": status.oldest_seconds, "peakPending": status.peak_pending,
                "running": status.running,
            },
            "concurrency": status.concurrency,
            "counters": {
                "received": stats.received.load(Ordering::Relaxed),
                "handled": stats.handled.load(Ordering::Relaxed),
                "failed": stats.failed.load(Ordering::Relaxed),
                "retried": stats.retried.load(Ordering::Relaxed),
                "givenUp": stats.given_up.load(Ordering::Relaxed),
                "coalesced": stats.coalesced.load(Ordering::Relaxed),
                "merged": stats.merged.load(Ordering::Relaxed),
                "requeued": stats.requeued.load(Ordering::Relaxed),
                "calls": {
                    "ok": calls.ok, "failed": calls.failed, "timedOut": calls.timed_out,
                    "outOfMemory": calls.out_of_memory, "trapped": calls.trapped,
                    "instances": calls.instances, "recycled": calls.recycled,
                },
            },
        }));
    }
    // Files that never loaded have no lane; they are plugins too, broken ones.
    for f in files.iter().filter(|f| f.digest.is_none()) {
        out.push(json!({
            "name": f.plugin,
            "file": f.file.display().to_string(),
            "status": "failed",
            "lastError": f.error,
        }));
    }
    Json(json!({"plugins": out}))
}

/// `/api/v1/subscriptions`: every watch, its state and its size.
pub async fn subscriptions(State(state): State<AppState>) -> Json<Value> {
    let cache = state.runtime.cache();
    let mut out = Vec::new();
    for (key, status, subscribers) in state.runtime.subscriptions().informers().statuses().await {
        let state_name = match &status.state {
            crate::informer::WatchState::Synced => "synced".to_string(),
            crate::informer::WatchState::Error(_) => "error".to_string(),
            other => format!("{other:?}").to_lowercase(),
        };
        let error = match &status.state {
            crate::informer::WatchState::Error(e) => Some(e.clone()),
            _ => None,
        };
        let kind = crate::cache::KindKey::new(&key.api_version, &key.kind);
        let cached = cache.kind_stats(&kind);
        out.push(json!({
            "apiVersion": key.api_version,
            "resource": key.plural,
            "kind": key.kind,
            "namespace": key.namespace,
            "labelSelector": key.labels,
            "fieldSelector": key.fields,
            "state": state_name,
            "error": error,
            "subscribers": subscribers,
            "relists": status.relists,
            // Objects and bytes cached for the kind, all watches of it together.
            "kindObjects": cached.objects,
            "kindBytes": cached.bytes,
        }));
    }
    // Subscriptions without a watch: their kind is not served, or discovery
    // cannot say yet.
    for u in state.runtime.subscriptions().unresolved().await {
        let (state_name, error) = match u.state {
            crate::informer::subscriptions::State::Unreachable { error } => {
                ("unreachable", Some(error))
            }
            _ => ("pending", None),
        };
        out.push(json!({
            "apiVersion": u.api_version,
            "kind": u.kind,
            "state": state_name,
            "error": error,
        }));
    }
    Json(json!({"subscriptions": out}))
}

/// `/api/v1/dead-letters`: actions given up, oldest first.
pub async fn dead_letters(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"deadLetters": state.runtime.actions().dead_letters()}))
}
