//! A store's counters: operations by outcome, commits by outcome, and how
//! long the durable tier's writes take. Read at scrape time by `/metrics`
//! and by the admin API.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;

/// One operation of the `state` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `get`.
    Get,
    /// `get-versioned`.
    GetVersioned,
    /// `set`.
    Set,
    /// `delete`.
    Delete,
    /// `exists`.
    Exists,
    /// `compare-and-swap`.
    CompareAndSwap,
    /// `increment`.
    Increment,
    /// `get-many`.
    GetMany,
    /// `set-many`.
    SetMany,
    /// `delete-many`.
    DeleteMany,
    /// `list-keys`.
    ListKeys,
}

impl Op {
    /// Every operation, in a stable order.
    pub const ALL: [Op; 11] = [
        Self::Get,
        Self::GetVersioned,
        Self::Set,
        Self::Delete,
        Self::Exists,
        Self::CompareAndSwap,
        Self::Increment,
        Self::GetMany,
        Self::SetMany,
        Self::DeleteMany,
        Self::ListKeys,
    ];

    /// The name, as the contract and the metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::GetVersioned => "get-versioned",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Exists => "exists",
            Self::CompareAndSwap => "compare-and-swap",
            Self::Increment => "increment",
            Self::GetMany => "get-many",
            Self::SetMany => "set-many",
            Self::DeleteMany => "delete-many",
            Self::ListKeys => "list-keys",
        }
    }
}

/// How an operation ended: `ok`, or the error code the plugin got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    /// It did what was asked.
    Ok,
    /// Malformed: a bad key, a value that is not an integer (`invalid`).
    Invalid,
    /// Not allowed here: a write outside `handle` (`forbidden`).
    Forbidden,
    /// Past a quota (`limit-exceeded`).
    LimitExceeded,
}

impl OpOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [OpOutcome; 4] = [
        Self::Ok,
        Self::Invalid,
        Self::Forbidden,
        Self::LimitExceeded,
    ];

    /// The name, as metrics write it (error codes as the contract does).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Invalid => "invalid",
            Self::Forbidden => "forbidden",
            Self::LimitExceeded => "limit-exceeded",
        }
    }
}

/// How a call's writes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CommitOutcome {
    /// They took effect.
    Committed,
    /// Another instance's commit changed what the call read: the call runs again.
    Conflict,
    /// The durable tier could not write them (the API server refused or
    /// could not be reached): the call failed.
    Failed,
    /// This replica does not lead: its durable writes are dropped, like
    /// its actions.
    Standby,
}

impl CommitOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [CommitOutcome; 4] =
        [Self::Committed, Self::Conflict, Self::Failed, Self::Standby];

    /// The name, as metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
            Self::Standby => "standby",
        }
    }
}

/// Buckets of the durable write histogram, seconds: 1 ms to about 4 s.
fn write_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 13)
}

/// A store's counters.
#[derive(Debug)]
pub struct Stats {
    ops: [[AtomicU64; OpOutcome::ALL.len()]; Op::ALL.len()],
    commits: [AtomicU64; CommitOutcome::ALL.len()],
    /// Writes of the durable tier to the API server, from request to answer.
    pub write_seconds: Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            ops: Default::default(),
            commits: Default::default(),
            write_seconds: Histogram::new(write_buckets()),
        }
    }
}

impl Stats {
    /// Count one operation.
    pub(crate) fn op(&self, op: Op, outcome: OpOutcome) {
        self.ops[op as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Count one commit.
    pub(crate) fn commit(&self, outcome: CommitOutcome) {
        self.commits[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Operations by operation and outcome, where any happened.
    pub fn ops(&self) -> Vec<(Op, OpOutcome, u64)> {
        let mut out = Vec::new();
        for op in Op::ALL {
            for outcome in OpOutcome::ALL {
                let n = self.ops[op as usize][outcome as usize].load(Ordering::Relaxed);
                if n > 0 {
                    out.push((op, outcome, n));
                }
            }
        }
        out
    }

    /// Commits by outcome.
    pub fn commits(&self) -> [(CommitOutcome, u64); 4] {
        CommitOutcome::ALL.map(|o| (o, self.commits[o as usize].load(Ordering::Relaxed)))
    }
}
