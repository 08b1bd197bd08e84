//! Fault injection for tests: dropped and stalled watches, compaction,
//! failing requests, added latency, a watch cache that lags the store.
//! Reachable from Rust through [`Faults`] and over HTTP only when the server
//! is started with faults on.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::storage::Frozen;

/// A rule that fails matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailRule {
    /// Requests whose path starts with this fail.
    pub path_prefix: String,
    /// Only this method (`GET`, `PATCH`...); any if absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose query string contains this text (`watch=true`,
    /// `sendInitialEvents=true`); any if absent.
    #[serde(default)]
    pub query_contains: Option<String>,
    /// The status to answer: 500 or 429 (or any other code).
    pub code: u16,
    /// How many requests fail before the rule is spent.
    pub count: u32,
}

/// The fault switches of one server.
#[derive(Debug)]
pub struct Faults {
    drop_generation: watch::Sender<u64>,
    stall: AtomicBool,
    latency_ms: AtomicU64,
    rules: Mutex<Vec<FailRule>>,
    stale_cache: Mutex<Option<Arc<Frozen>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            drop_generation: watch::channel(0).0,
            stall: AtomicBool::new(false),
            latency_ms: AtomicU64::new(0),
            rules: Mutex::new(Vec::new()),
            stale_cache: Mutex::new(None),
        }
    }
}

impl Faults {
    /// Close every open watch now (clients see a normal end of stream).
    pub fn drop_watches(&self) {
        self.drop_generation.send_modify(|g| *g += 1);
    }

    /// A receiver that changes when watches are dropped.
    pub fn drops(&self) -> watch::Receiver<u64> {
        self.drop_generation.subscribe()
    }

    /// Stall open and new watches: they stay open and send nothing, like a
    /// half-open connection. `false` lets new watches flow again.
    pub fn set_stall(&self, stall: bool) {
        self.stall.store(stall, Ordering::SeqCst);
    }

    /// Whether watches are stalled.
    pub fn stalled(&self) -> bool {
        self.stall.load(Ordering::SeqCst)
    }

    /// Delay every request by this much.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// The delay in force.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::SeqCst))
    }

    /// Fail the next `count` requests to paths under `path_prefix` with `code`.
    pub fn fail(&self, rule: FailRule) {
        self.rules.lock().push(rule);
    }

    /// Whether this request should fail, and with what code; spends the rule.
    pub fn take_failure(&self, method: &str, path: &str, query: &str) -> Option<u16> {
        let mut rules = self.rules.lock();
        let i = rules.iter().position(|r| {
            r.count > 0
                && path.starts_with(&r.path_prefix)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.query_contains
                    .as_deref()
                    .is_none_or(|q| query.contains(q))
        })?;
        rules[i].count -= 1;
        let code = rules[i].code;
        rules.retain(|r| r.count > 0);
        Some(code)
    }

    /// Let watches that start at `resourceVersion=0` ("any version") see
    /// `frozen` first, as a real server's watch cache does while it lags
    /// etcd: those objects, the bookmark at their version, then the writes
    /// since. Watches at no version (a consistent read) still see the store
    /// as it is. `None` lets the cache catch up.
    pub fn set_stale_cache(&self, frozen: Option<Frozen>) {
        *self.stale_cache.lock() = frozen.map(Arc::new);
    }

    /// The lagging watch cache in force, if any.
    pub fn stale_cache(&self) -> Option<Arc<Frozen>> {
        self.stale_cache.lock().clone()
    }

    /// Clear every fault.
    pub fn reset(&self) {
        self.set_stale_cache(None);
        self.set_stall(false);
        self.set_latency(Duration::ZERO);
        self.rules.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rules_are_spent_in_order() {
        let f = Faults::default();
        f.fail(FailRule {
            path_prefix: "/api/v1/namespaces/default/configmaps".into(),
            method: Some("PATCH".into()),
            query_contains: None,
            code: 500,
            count: 2,
        });
        assert_eq!(
            f.take_failure("GET", "/api/v1/namespaces/default/configmaps/x", ""),
            None
        );
        assert_eq!(
            f.take_failure("PATCH", "/api/v1/namespaces/default/configmaps/x", ""),
            Some(500)
        );
        assert_eq!(
            f.take_failure("patch", "/api/v1/namespaces/default/configmaps/x", ""),
            Some(500)
        );
        assert_eq!(
            f.take_failure("PATCH", "/api/v1/namespaces/default/configmaps/x", ""),
            None
        );
    }
}
