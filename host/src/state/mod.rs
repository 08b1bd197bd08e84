//! The state store: a key-value store the host keeps for each plugin
//! (contract 0.3.0, the `state` interface), shared by the plugin's
//! instances and committed with its calls.

use serde::{Deserialize, Serialize};

/// Where a plugin's store is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
