//! The sandboxed WebAssembly plugin runtime.
//!
//! One [`Engine`] compiles components; each loaded [`Plugin`] version keeps a
//! pool of initialised instances that are reused across calls and dropped
//! after a trap. Every call runs under a CPU deadline (epoch interruption),
//! a memory cap and caps on what crosses the boundary.

pub mod admission;
pub(crate) mod bindings;
mod contract;
mod engine;
mod host;
mod kinds;
mod limits;
mod loaded;
pub mod manifest;
mod output;
mod store;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

pub use engine::{Binary, EPOCH_TICK, Engine};
pub use host::HostState;
pub use limits::Limits;
pub use loaded::{Admitted, CallCounts, LoadOptions, Plugin, describe};
pub use manifest::{Manifest, ManifestError, StateRequest};

use crate::{cache::CachedObject, vocabulary::EventType};

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be configured.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The file is not WebAssembly.
    #[error(
        "not a WebAssembly file (no \\0asm header); plugins are WebAssembly components built for wasm32-wasip2"
    )]
    NotWasm,
    /// The file is a core module, not a component.
    #[error(
        "a core WebAssembly module, not a component; build for the wasm32-wasip2 target, or wrap the module with `wasm-tools component new`"
    )]
    CoreModule,
    /// wasmtime could not compile the component.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component does not target the `informant:plugin/plugin` world.
    #[error(
        "the component does not match the informant:plugin@0.3.0 `plugin` world (nor 0.2.0's or 0.1.0's): {0}"
    )]
    Incompatible(String),
    /// The manifest's admission webhook and the component's exports disagree.
    #[error("{0}")]
    Admission(String),
    /// The manifest asks of its store what the operator does not allow.
    #[error("state: {0}")]
    State(String),
    /// The component could not be instantiated.
    #[error("the component could not be instantiated: {0}")]
    Instantiate(String),
    /// `describe` trapped or timed out.
    #[error("describe failed: {0}")]
    Describe(String),
    /// The manifest returned by `describe` is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The manifest asks for more than the operator allows.
    #[error("{0}")]
    LimitRequest(String),
    /// An index could not be declared in the cache.
    #[error("index: {0}")]
    Index(String),
    /// `init` returned an error or trapped.
    #[error("init failed: {0}")]
    Init(String),
}

/// Why one call into a plugin failed. Its actions were discarded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// The plugin returned an error.
    #[error("the plugin returned an error ({code}): {message}")]
    Failed {
        /// The plugin's error code.
        code: String,
        /// The plugin's message.
        message: String,
    },
    /// The call ran past its CPU deadline and was interrupted.
    #[error("the call ran past its {deadline:?} deadline and was stopped")]
    Timeout {
        /// The deadline in force.
        deadline: Duration,
    },
    /// The guest needed more memory than its cap.
    #[error("the plugin ran out of memory (its cap is {} MiB): {trap}", limit_bytes >> 20)]
    OutOfMemory {
        /// The cap in force.
        limit_bytes: usize,
        /// The trap that followed.
        trap: String,
    },
    /// The guest trapped: a panic, an out-of-bounds access, a stack overflow.
    #[error("the plugin trapped: {0}")]
    Trap(String),
}

impl CallError {
    /// How the call ended.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Failed { .. } => Outcome::Failed,
            Self::Timeout { .. } => Outcome::Timeout,
            Self::OutOfMemory { .. } => Outcome::OutOfMemory,
            Self::Trap(_) => Outcome::Trap,
        }
    }
}

/// How one plugin call ended: the one vocabulary of logs (`outcome=`),
/// metrics (the `outcome` label) and the admin API (`calls`, `lastCallError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The plugin returned `ok`; its actions were committed.
    Ok,
    /// The plugin returned an error.
    Failed,
    /// The call ran past its deadline (epoch interruption).
    Timeout,
    /// The plugin needed more memory than its cap.
    OutOfMemory,
    /// The plugin trapped: a panic, an out-of-bounds access, a stack overflow.
    Trap,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub const ALL: [Outcome; 5] = [
        Self::Ok,
        Self::Failed,
        Self::Timeout,
        Self::OutOfMemory,
        Self::Trap,
    ];

    /// The name, as logs, metrics and the admin API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::OutOfMemory => "out_of_memory",
            Self::Trap => "trap",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event for a plugin, as the host delivers it.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub event_type: EventType,
    /// Which of the plugin's subscriptions it is for.
    pub subscription: u32,
    /// Part of the initial list.
    pub initial: bool,
    /// A delete inferred by a relist.
    pub final_state_unknown: bool,
    /// The object; none for `synced`.
    pub object: Option<Arc<CachedObject>>,
    /// The previous state, for `modified` events when asked for.
    pub old_object: Option<Arc<CachedObject>>,
    /// How many earlier events of this object were merged into this one
    /// while it waited (0: none). The plugin sees the newest state, or the
    /// delete, once.
    pub merged: u32,
}
