//! The state store: a key-value store the host keeps for each plugin
//! (contract 0.3.0, the `state` interface), shared by the plugin's
//! instances, kept across instance recycling and hot reload, and committed
//! with its calls.
//!
//! - [`Stores`]: every plugin's store, by name, with the operator's
//!   configuration ([`Config`]): tiers and quotas.
//! - [`Store`]: one plugin's store: its view of the data, in shards, its
//!   usage and its counters.
//! - [`Transaction`]: one call's reads and writes, committed only if the
//!   call returns `ok`, and only if nothing it read changed meanwhile
//!   (optimistic concurrency; the call runs again otherwise).
//! - Tiers: `memory` (the store is the data), `durable` (`durable`: the
//!   data is kept in `PluginState` objects in the cluster, `object`), which
//!   only a replica the [`WriteGate`] lets write does.

mod durable;
mod gate;
pub mod object;
mod quota;
mod stats;
mod store;
mod stores;
mod transaction;

use serde::{Deserialize, Serialize};

pub use durable::{MAX_OBJECT_BYTES, MAX_SHARDS, MAX_TOTAL_BYTES, MAX_VALUE_BYTES};
pub use gate::{Leadership, WriteGate};
pub use quota::{Quota, Usage};
pub use stats::{CommitOutcome, Op, OpOutcome, Stats};
pub use store::{Load, Store, Version};
pub use stores::{Cluster, Config, Opened, PluginConfig, Stores};
pub use transaction::{Access, MAX_KEY_BYTES, Transaction};

/// Where a plugin's store is kept.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Tier {
    /// In the host's memory: lost when the host stops.
    #[default]
    Memory,
    /// In the cluster, in objects the host owns.
    Durable,
}

impl Tier {
    /// The name, as the manifest, the configuration and the admin API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Durable => "durable",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin asks of its store (`manifest.state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The tier it asks for; the operator may narrow it.
    pub tier: Tier,
    /// The most keys, if it asks for other than the host's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<u32>,
    /// The largest value in bytes, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value_bytes: Option<u32>,
    /// The most bytes of keys and values, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
}

/// Why a plugin's call to its store was refused: the contract's error
/// codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed: a bad key, a time to live of 0, a value that is not an
    /// integer (`invalid`).
    #[error("{0}")]
    Invalid(String),
    /// Not allowed here: a write outside `handle` (`forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// Past a quota (`limit-exceeded`).
    #[error("{0}")]
    LimitExceeded(String),
}

/// Why a call's writes were not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Another instance's commit changed what the call read: run it again.
    #[error("another instance changed what the call read before it could commit")]
    Conflict,
    /// The durable tier could not write them.
    #[error("the state store could not commit the call's writes: {0}")]
    Failed(String),
}
