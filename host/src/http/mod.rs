//! The host's HTTP side, with axum: health, readiness and metrics on one
//! address (`--http-addr`, for the kubelet and Prometheus), the admin API on
//! another (`--admin-addr`, localhost by default).
//!
//! Errors are JSON [`ApiError`]s that say what went wrong without internals.

mod admin;
mod metrics;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{admission::Admission, reload::Reloader, runtime::Runtime};

pub use metrics::HostCollector;

/// Why the HTTP side could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct Error {
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// An error as clients see it: a status and a JSON body.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// What went wrong.
    error: String,
}

impl ApiError {
    /// A 409: the request cannot be served by this replica now.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            error: what.into(),
        }
    }

    /// An error with this status.
    pub fn new(status: StatusCode, what: impl Into<String>) -> Self {
        Self {
            status,
            error: what.into(),
        }
    }

    /// A 404 for a path that does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            error: what.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The running host.
    pub runtime: Arc<Runtime>,
    /// The plugin directory watcher, if there is a directory.
    pub reloader: Option<Arc<Reloader>>,
    /// The metrics registry, rendered on `/metrics`.
    pub registry: Arc<prometheus_client::registry::Registry>,
    /// The host's collector in that registry, refreshed before a scrape.
    pub collector: Arc<HostCollector>,
    /// The webhooks served, if admission is on.
    pub admission: Option<Arc<Admission>>,
}

impl AppState {
    /// State for `runtime`, with a registry holding the host's metrics.
    pub fn new(runtime: Arc<Runtime>, reloader: Option<Arc<Reloader>>) -> Self {
        Self::with_admission(runtime, reloader, None)
    }

    /// State for `runtime` serving `admission` too: its metrics, its admin
    /// view and its readiness.
    pub fn with_admission(
        runtime: Arc<Runtime>,
        reloader: Option<Arc<Reloader>>,
        admission: Option<Arc<Admission>>,
    ) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let collector = Arc::new(HostCollector::new(runtime.clone(), reloader.clone()));
        registry.register_collector(Box::new(collector.clone()));
        if let Some(a) = &admission {
            registry.register_collector(Box::new(
                crate::admission::metrics::AdmissionCollector::new(a.clone()),
            ));
        }
        Self {
            runtime,
            reloader,
            registry: Arc::new(registry),
            collector,
            admission,
        }
    }
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .with_state(state)
}

/// The admin API: `/api/v1/plugins`, `/api/v1/subscriptions`,
/// `/api/v1/dead-letters` (and `POST /api/v1/dead-letters/retry`), `/api/v1/webhooks`,
/// `/api/v1/state` (every store's usage), `/api/v1/state/{plugin}/keys?prefix=&cursor=&limit=`
/// `/api/v1/state/{plugin}/value?key=` and `/api/v1/shards`.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/plugins", get(admin::plugins))
        .route("/api/v1/subscriptions", get(admin::subscriptions))
        .route("/api/v1/dead-letters", get(admin::dead_letters))
        .route(
            "/api/v1/dead-letters/retry",
            axum::routing::post(admin::retry_dead_letters),
        )
        .route("/api/v1/webhooks", get(admin::webhooks))
        .route("/api/v1/state", get(admin::stores))
        .route("/api/v1/state/{plugin}/keys", get(admin::state_keys))
        .route("/api/v1/state/{plugin}/value", get(admin::state_value))
        .route("/api/v1/shards", get(admin::shards))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

/// One readiness check and how it stands.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    reason: String,
}

/// The readiness latch: the first plugin scan is done, discovery has
/// answered for every subscription, every watch has completed its first list
/// and every plugin has started (its watches synced).
async fn checks(state: &AppState) -> Vec<Check> {
    use crate::informer::subscriptions::State;
    let scanned = state.reloader.as_ref().is_none_or(|r| r.scanned());
    let unreachable: Vec<String> = state
        .runtime
        .subscriptions()
        .unresolved()
        .await
        .into_iter()
        .filter_map(|u| match u.state {
            State::Unreachable { error } => Some(format!("{} {} ({error})", u.api_version, u.kind)),
            _ => None,
        })
        .collect();
    let waiting: Vec<String> = state
        .runtime
        .dispatcher()
        .lanes()
        .iter()
        .filter(|l| !l.started())
        .map(|l| l.name().to_string())
        .collect();
    // Durable stores of plugins in service that are not loaded yet.
    let in_service: Vec<String> = state
        .runtime
        .dispatcher()
        .lanes()
        .iter()
        .map(|l| l.name().to_string())
        .collect();
    let unloaded: Vec<String> = state
        .runtime
        .stores()
        .all()
        .iter()
        .filter(|s| in_service.iter().any(|n| n == s.plugin()))
        .filter_map(|s| match s.load() {
            crate::state::Load::Loaded => None,
            crate::state::Load::Loading => Some(format!("{} (loading)", s.plugin())),
            crate::state::Load::Unavailable(why) => Some(format!("{} ({why})", s.plugin())),
        })
        .collect();
    let mut unsynced: Vec<String> = state
        .runtime
        .subscriptions()
        .informers()
        .statuses()
        .await
        .into_iter()
        .filter(|(_, s, _)| !s.synced_once)
        .map(|(k, _, _)| format!("{}/{}", k.api_version, k.plural))
        .collect();
    unsynced.dedup();
    // A file that does not load leaves the replica ready: what ran before
    // it keeps running, and an unready replica would stop serving metrics
    // (and, behind a Service, everything else) for one bad file. It is said
    // here, beside the log line and the admin API's file status.
    let not_loaded: Vec<String> = state
        .reloader
        .as_ref()
        .map(|r| r.statuses())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            let error = f.error?;
            let file = f.file.file_name().map_or_else(
                || f.file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Some(match f.plugin {
                Some(plugin) => {
                    format!("{file} (plugin {plugin} keeps its running version): {error}")
                }
                None => format!("{file}: {error}"),
            })
        })
        .collect();
    let webhooks = state
        .admission
        .as_ref()
        .map(|a| a.waiting())
        .unwrap_or_default();
    vec![
        Check {
            name: "plugins",
            ok: scanned,
            reason: match (scanned, not_loaded.is_empty()) {
                (false, _) => "first scan of the plugin directory in progress".into(),
                (true, true) => "first scan of the plugin directory done".into(),
                (true, false) => format!(
                    "first scan of the plugin directory done; not loaded: {}",
                    not_loaded.join("; ")
                ),
            },
        },
        Check {
            name: "discovery",
            ok: unreachable.is_empty(),
            reason: if unreachable.is_empty() {
                "every subscription is resolved".into()
            } else {
                format!("cannot resolve yet: {}", unreachable.join(", "))
            },
        },
        Check {
            name: "informers",
            ok: unsynced.is_empty(),
            reason: if unsynced.is_empty() {
                "every watch has synced".into()
            } else {
                format!("not synced yet: {}", unsynced.join(", "))
            },
        },
        Check {
            name: "state",
            ok: unloaded.is_empty(),
            reason: if unloaded.is_empty() {
                "every durable store is loaded".into()
            } else {
                format!("durable stores not loaded yet: {}", unloaded.join(", "))
            },
        },
        Check {
            name: "dispatch",
            ok: waiting.is_empty(),
            reason: if waiting.is_empty() {
                "every plugin has started".into()
            } else {
                format!("waiting for their watches to sync: {}", waiting.join(", "))
            },
        },
        Check {
            name: "webhooks",
            ok: webhooks.is_empty(),
            reason: if webhooks.is_empty() {
                "every webhook answers".into()
            } else {
                format!(
                    "waiting for their plugins' subscriptions to sync: {}",
                    webhooks.join(", ")
                )
            },
        },
    ]
}

#[derive(serde::Deserialize)]
struct ReadyQuery {
    verbose: Option<String>,
}

async fn readyz(State(state): State<AppState>, Query(q): Query<ReadyQuery>) -> Response {
    let checks = checks(&state).await;
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if q.verbose.is_none() {
        return (status, if ready { "ok\n" } else { "not ready\n" }).into_response();
    }
    let mut text = String::new();
    for c in &checks {
        text.push_str(&format!(
            "[{}] {}: {}\n",
            if c.ok { "+" } else { "-" },
            c.name,
            c.reason
        ));
    }
    text.push_str(if ready { "ready\n" } else { "not ready\n" });
    (status, text).into_response()
}

/// Bind `addr` and serve `router` until `stop`; returns the bound address
/// (port 0 picks a free one).
///
/// # Errors
/// [`Error`] if the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    stop: CancellationToken,
) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error { addr, source })?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(addr = %bound, error = %e, "HTTP server stopped");
        }
    });
    Ok(bound)
}
