//! The host side of the contract: what a plugin's imports do, per store.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use serde_json::Value;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder, component::ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{
    Limits,
    kinds::Kinds,
    manifest::Manifest,
    output::{Capture, CapturedOutput, Stream},
};
use crate::{
    action::{Action, JsonText, Severity, object_ref_of},
    cache::{self, CachedObject, Store},
    vocabulary::{KindKey, ObjectKey, ObjectRef},
};
use informant_k8s::selector::LabelSelector;

/// Longest log line kept from a guest.
const MAX_LOG_BYTES: usize = 16 * 1024;
/// The one variable of a plugin's environment: the most verbose level of
/// log line the host records (`trace` ... `error`, or `off`), so that a
/// plugin's SDK skips formatting lines nobody will read.
pub const LOG_LEVEL_VAR: &str = "INFORMANT_LOG_LEVEL";
/// Longest Event message kept, as the Kubernetes event recorder does.
const MAX_EVENT_MESSAGE: usize = 1024;

use cache::Entries as Listed;

/// What every instance of one loaded plugin version shares.
#[derive(Debug)]
pub(crate) struct PluginContext {
    pub(crate) name: Arc<str>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) cache: Arc<Store>,
    /// The plugin's index names -> the cache's names for them.
    pub(crate) indexes: HashMap<String, String>,
    pub(crate) limits: Limits,
    /// Reads and actions refused to the plugin, by the code it got back.
    pub(crate) refusals: Refusals,
    /// Its store (0.3.0 plugins): the same for every version of the
    /// plugin, so it survives reloads.
    pub(crate) state: Option<Arc<crate::state::Store>>,
}

/// Cache reads and actions the host refused a plugin, by the error code the
/// plugin got back: the host's side of what only the plugin's log showed.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Outside what its manifest declares (`forbidden`).
    pub(crate) forbidden: std::sync::atomic::AtomicU64,
    /// Past a per-call limit: actions, bytes read, list length (`limit-exceeded`).
    pub(crate) limit_exceeded: std::sync::atomic::AtomicU64,
    /// Malformed: bad JSON, a bad selector (`invalid`).
    pub(crate) invalid: std::sync::atomic::AtomicU64,
    /// Naming what does not exist: an undeclared index (`not-found`).
    pub(crate) not_found: std::sync::atomic::AtomicU64,
}

impl Refusals {
    /// The counts, by code, as plugins know them.
    pub fn counts(&self) -> [(&'static str, u64); 4] {
        use std::sync::atomic::Ordering::Relaxed;
        [
            ("forbidden", self.forbidden.load(Relaxed)),
            ("limit-exceeded", self.limit_exceeded.load(Relaxed)),
            ("invalid", self.invalid.load(Relaxed)),
            ("not-found", self.not_found.load(Relaxed)),
        ]
    }
}

/// Memory limits that also remember whether a growth was refused, so that the
/// trap which usually follows can be reported as what it is.
pub(crate) struct MemoryLimiter {
    limits: StoreLimits,
    pub(crate) refused: bool,
    /// The size a refused growth asked for.
    pub(crate) refused_bytes: usize,
    pub(crate) peak_bytes: usize,
    /// Linear memory of every memory of the store, now. It never shrinks:
    /// WebAssembly memories only grow.
    pub(crate) linear_bytes: usize,
}

impl MemoryLimiter {
    fn new(memory_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            // Language runtimes (Python, JavaScript) need several of each.
            .instances(64)
            .tables(64)
            .memories(16)
            .table_elements(1_000_000)
            .build();
        Self {
            limits,
            refused: false,
            refused_bytes: 0,
            peak_bytes: 0,
            linear_bytes: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_bytes = self.peak_bytes.max(desired);
            self.linear_bytes = self
                .linear_bytes
                .saturating_add(desired.saturating_sub(current));
        } else {
            self.refused = true;
            self.refused_bytes = desired;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The data of one store: one live instance of a plugin.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// None while `describe` runs: the manifest is not known yet, so every
    /// import refuses.
    pub(crate) ctx: Option<Arc<PluginContext>>,
    /// The current call's transaction on the store, from its first store
    /// call; committed by the caller only if the call returns ok.
    pub(crate) txn: Option<crate::state::Transaction>,
    /// What the current call may do with the store.
    pub(crate) access: crate::state::Access,
    /// Actions enqueued by the current call, committed only if it returns ok.
    pending: Vec<Action>,
    /// Bytes the cache has returned during the current call.
    result_bytes: usize,
    /// What the current call may not see of the cache, if anything.
    view: Option<Arc<dyn cache::View>>,
    /// The kinds the instance names, kept so that a call builds no key.
    kinds: Kinds,
    stdout: Arc<Mutex<Capture>>,
    stderr: Arc<Mutex<Capture>>,
    /// The current call is an admission call: it may read the cache, never
    /// enqueue (an admission call has no side effects).
    admission: bool,
    /// The first read or action refused during the current admission call:
    /// a verdict that rests on what the plugin could not see is not used.
    refused_in_call: Option<String>,
}

/// The most verbose level of plugin log line the host's log records now:
/// the subscriber's own hint, so a line it could keep is never skipped.
fn recorded_level() -> &'static str {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE => "trace",
        LevelFilter::DEBUG => "debug",
        LevelFilter::INFO => "info",
        LevelFilter::WARN => "warn",
        LevelFilter::ERROR => "error",
        LevelFilter::OFF => "off",
    }
}

impl HostState {
    /// A store's data: no filesystem, no network, frozen clocks; stdout and
    /// stderr go to the host log. The environment holds only
    /// [`LOG_LEVEL_VAR`], as the host's log stands when the instance starts.
    pub(crate) fn new(name: Arc<str>, ctx: Option<Arc<PluginContext>>, limits: &Limits) -> Self {
        let stdout = Capture::new(
            name.clone(),
            Stream::Stdout,
            limits.max_output_bytes_per_call,
        );
        let stderr = Capture::new(name, Stream::Stderr, limits.max_output_bytes_per_call);
        let wasi = WasiCtx::builder()
            .stdout(CapturedOutput(stdout.clone()))
            .stderr(CapturedOutput(stderr.clone()))
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .env(LOG_LEVEL_VAR, recorded_level())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            ctx,
            txn: None,
            access: crate::state::Access::ReadWrite,
            pending: Vec::new(),
            result_bytes: 0,
            view: None,
            kinds: Kinds::default(),
            stdout,
            stderr,
            admission: false,
            refused_in_call: None,
        }
    }

    /// What the current call has written to stderr so far.
    pub(crate) fn stderr_recent(&self) -> String {
        self.stderr.lock().recent().to_string()
    }

    /// Reset per-call state before a call that may write the store.
    pub(crate) fn begin_call(&mut self) {
        self.begin_call_with(crate::state::Access::ReadWrite);
    }

    /// Reset per-call state before a call, saying what it may do with the
    /// store (`init` and admission reviews only read).
    pub(crate) fn begin_call_with(&mut self, access: crate::state::Access) {
        self.pending.clear();
        self.txn = None;
        self.access = access;
        self.result_bytes = 0;
        self.limiter.refused = false;
        self.admission = false;
        self.refused_in_call = None;
    }

    /// Reset per-call state before an admission call: it reads, and writes
    /// nothing (no actions, no store writes).
    pub(crate) fn begin_admission(&mut self) {
        self.begin_call_with(crate::state::Access::ReadOnly(
            "an admission review has no side effects; write from handle",
        ));
        self.admission = true;
    }

    /// What was refused first during the current admission call, if anything.
    pub(crate) fn refused_in_call(&self) -> Option<&str> {
        self.refused_in_call.as_deref()
    }

    /// Limit what the current call sees of the cache.
    pub(crate) fn set_view(&mut self, view: Option<Arc<dyn cache::View>>) {
        self.view = view;
    }

    /// Leave out of `objects` of `kind` what the call may not see.
    fn visible(&self, kind: &KindKey, objects: &mut Listed) {
        if let Some(view) = &self.view {
            objects.retain(|(k, _)| !view.hides(kind, k));
        }
    }

    /// Take the call's actions and flush its output.
    pub(crate) fn end_call(&mut self) -> Vec<Action> {
        self.view = None;
        self.stdout.lock().end_call();
        self.stderr.lock().end_call();
        std::mem::take(&mut self.pending)
    }

    pub(crate) fn plugin_ctx(&self) -> Result<&Arc<PluginContext>, GuestError> {
        self.ctx.as_ref().ok_or_else(|| {
            error(
                Code::Forbidden,
                "the cache and actions are not available during describe",
            )
        })
    }

    fn readable(&self, kind: &KindKey) -> Result<&Arc<PluginContext>, GuestError> {
        let ctx = self.plugin_ctx()?;
        if ctx.manifest.may_read(kind) {
            Ok(ctx)
        } else {
            Err(error(
                Code::Forbidden,
                format!(
                    "plugin {} may not read {kind}: subscribe to it or declare it in permissions.reads",
                    ctx.name
                ),
            ))
        }
    }

    /// Account for `bytes` more returned to the guest in this call.
    pub(crate) fn charge(&mut self, bytes: usize, items: usize) -> Result<(), GuestError> {
        let limits = &self.plugin_ctx()?.limits;
        let (max_bytes, max_items) = (limits.max_host_result_bytes, limits.max_list_items);
        if items > max_items {
            return Err(error(
                Code::LimitExceeded,
                format!(
                    "the result has {items} items, more than the limit of {max_items}; narrow it with a namespace or selector"
                ),
            ));
        }
        self.result_bytes += bytes;
        if self.result_bytes > max_bytes {
            return Err(error(
                Code::LimitExceeded,
                format!("this call has read more than {max_bytes} bytes from the cache"),
            ));
        }
        Ok(())
    }

    fn index_name(&self, index: &str) -> Result<String, GuestError> {
        let ctx = self.plugin_ctx()?;
        ctx.indexes.get(index).cloned().ok_or_else(|| {
            error(
                Code::NotFound,
                format!("plugin {} declares no index named {index:?}", ctx.name),
            )
        })
    }

    fn list_objects(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Listed, GuestError> {
        let kind = self.kinds.key(api_version, kind);
        let selector = LabelSelector::parse(label_selector.unwrap_or(""))
            .map_err(|e| error(Code::Invalid, e.to_string()))?;
        let ctx = self.readable(&kind)?;
        let mut objects = ctx.cache.list(&kind, namespace, &selector);
        self.visible(&kind, &mut objects);
        Ok(objects)
    }

    fn by_index_objects(
        &mut self,
        index: &str,
        value: &str,
    ) -> Result<(KindKey, Listed), GuestError> {
        let name = self.index_name(index)?;
        let ctx = self.plugin_ctx()?;
        let kind = ctx
            .cache
            .index_kind(&name)
            .ok_or_else(|| error(Code::NotFound, format!("index {index:?} is not registered")))?;
        let mut objects = ctx.cache.by_index(&name, value).map_err(cache_error)?;
        self.visible(&kind, &mut objects);
        Ok((kind, objects))
    }

    fn charge_objects(
        &mut self,
        objects: &[(Arc<ObjectKey>, Arc<CachedObject>)],
    ) -> Result<Vec<String>, GuestError> {
        let bytes = objects.iter().map(|(_, o)| o.json().len()).sum();
        self.charge(bytes, objects.len())?;
        Ok(objects.iter().map(|(_, o)| o.json().to_string()).collect())
    }

    fn charge_keys(
        &mut self,
        kind: &KindKey,
        objects: &[(Arc<ObjectKey>, Arc<CachedObject>)],
    ) -> Result<Vec<ObjectRef>, GuestError> {
        let bytes = objects
            .iter()
            .map(|(k, _)| k.name.len() + k.namespace.len() + 32)
            .sum();
        self.charge(bytes, objects.len())?;
        Ok(objects
            .iter()
            .map(|(k, _)| ObjectRef::from_parts(kind, k))
            .collect())
    }

    fn check_string(&self, what: &str, s: &str) -> Result<(), GuestError> {
        let max = self.plugin_ctx()?.limits.max_guest_string_bytes;
        if s.len() > max {
            return Err(error(
                Code::LimitExceeded,
                format!("{what} is {} bytes, more than the limit of {max}", s.len()),
            ));
        }
        Ok(())
    }

    fn parse_json(&self, what: &str, s: &str) -> Result<Value, GuestError> {
        self.check_string(what, s)?;
        serde_json::from_str(s)
            .map_err(|e| error(Code::Invalid, format!("{what} is not valid JSON: {e}")))
    }

    fn validate(&self, action: ActionRequest) -> Result<Action, GuestError> {
        use ActionRequest as A;
        let object_of = |json: &str, what: &str| -> Result<(ObjectRef, Value), GuestError> {
            let object = self.parse_json(what, json)?;
            if !object.is_object() {
                return Err(error(
                    Code::Invalid,
                    format!("{what} must be a JSON object"),
                ));
            }
            let target =
                object_ref_of(&object).map_err(|e| error(Code::Invalid, format!("{what}: {e}")))?;
            Ok((target, object))
        };
        let patch_of = |target: ObjectRef,
                        patch: String,
                        what: &str,
                        array: bool|
         -> Result<(ObjectRef, JsonText), GuestError> {
            // Checked, not built: the patch goes to the API as written.
            self.check_string(what, &patch)?;
            let patch = JsonText::parse(patch)
                .map_err(|e| error(Code::Invalid, format!("{what} is not valid JSON: {e}")))?;
            if array && !patch.is_array() {
                return Err(error(
                    Code::Invalid,
                    format!("{what} must be a JSON array of operations"),
                ));
            }
            if !array && !patch.is_object() {
                return Err(error(
                    Code::Invalid,
                    format!("{what} must be a JSON object"),
                ));
            }
            Ok((target, patch))
        };
        Ok(match action {
            A::Apply { object, force } => {
                let (target, object) = object_of(&object, "the applied object")?;
                Action::Apply {
                    target,
                    object,
                    force,
                }
            }
            A::Create(json) => {
                let (target, object) = object_of(&json, "the created object")?;
                Action::Create { target, object }
            }
            A::MergePatch { target, patch } => {
                let (target, patch) = patch_of(target, patch, "the merge patch", false)?;
                Action::MergePatch { target, patch }
            }
            A::JsonPatch { target, patch } => {
                let (target, patch) = patch_of(target, patch, "the JSON patch", true)?;
                Action::JsonPatch { target, patch }
            }
            A::PatchStatus { target, patch } => {
                let (target, patch) = patch_of(target, patch, "the status patch", false)?;
                Action::PatchStatus { target, patch }
            }
            A::Delete {
                target,
                uid,
                resource_version,
            } => Action::Delete {
                target,
                uid,
                resource_version,
            },
            A::EmitEvent {
                regarding,
                severity,
                reason,
                message,
                action,
            } => {
                if reason.is_empty() || reason.len() > 128 {
                    return Err(error(
                        Code::Invalid,
                        "an event reason must be 1-128 characters",
                    ));
                }
                Action::EmitEvent {
                    regarding,
                    severity,
                    reason,
                    message: truncate(message, MAX_EVENT_MESSAGE),
                    action: truncate(action, 128),
                }
            }
            A::RequeueAfter { target, delay_ms } => Action::RequeueAfter { target, delay_ms },
        })
    }
}

/// A wall and monotonic clock that never move: plugins get no clock beyond
/// the contract, which keeps them deterministic under `replay`. The wall
/// clock reads the Unix epoch. The monotonic clock reads one second: its
/// origin is arbitrary (only differences mean anything, and they are all
/// zero), and Go's runtime refuses to start on a monotonic clock that reads
/// zero ("nanotime returning zero").
struct FrozenClock;

/// What the frozen monotonic clock reads, in nanoseconds: not zero.
const FROZEN_MONOTONIC_NS: u64 = 1_000_000_000;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        FROZEN_MONOTONIC_NS
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// 1, 10, 100...: when a repeated event is worth a log line.
pub(crate) fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

/// What went wrong in a host call, as the guest gets it back: a WIT
/// `error`, whichever version of the contract the plugin speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuestError {
    pub(crate) code: Code,
    pub(crate) message: String,
}

/// The WIT `error-code`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Invalid,
    Forbidden,
    LimitExceeded,
    NotFound,
    Failed,
}

impl Code {
    /// The WIT name, as plugins and users know it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Forbidden => "forbidden",
            Self::LimitExceeded => "limit-exceeded",
            Self::NotFound => "not-found",
            Self::Failed => "failed",
        }
    }
}

pub(crate) fn error(code: Code, message: impl Into<String>) -> GuestError {
    GuestError {
        code,
        message: message.into(),
    }
}

fn cache_error(e: cache::Error) -> GuestError {
    let code = match e {
        cache::Error::UnknownIndex(_) => Code::NotFound,
        _ => Code::Invalid,
    };
    error(code, e.to_string())
}

/// An action as a plugin asked for it (the WIT `action`), before the host
/// checks it.
#[derive(Debug)]
pub(crate) enum ActionRequest {
    Apply {
        object: String,
        force: bool,
    },
    Create(String),
    MergePatch {
        target: ObjectRef,
        patch: String,
    },
    JsonPatch {
        target: ObjectRef,
        patch: String,
    },
    PatchStatus {
        target: ObjectRef,
        patch: String,
    },
    Delete {
        target: ObjectRef,
        uid: Option<String>,
        resource_version: Option<String>,
    },
    EmitEvent {
        regarding: ObjectRef,
        severity: Severity,
        reason: String,
        message: String,
        action: String,
    },
    RequeueAfter {
        target: ObjectRef,
        delay_ms: u64,
    },
}

/// The severity of a plugin's log line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Cut `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The imports, whichever contract version calls them (see `contract`).
impl HostState {
    /// Count and report a refusal, and hand it to the guest. Reported at the
    /// 1st, 10th, 100th... time per plugin and code, so a plugin that keeps
    /// asking does not flood the log.
    fn refused<T>(&mut self, what: &str, result: Result<T, GuestError>) -> Result<T, GuestError> {
        use std::sync::atomic::Ordering::Relaxed;
        let Err(e) = &result else {
            return result;
        };
        if self.admission && self.refused_in_call.is_none() && e.code != Code::Failed {
            self.refused_in_call =
                Some(format!("{what} refused ({}): {}", e.code.name(), e.message));
        }
        let Some(ctx) = &self.ctx else {
            return result;
        };
        let counter = match e.code {
            Code::Forbidden => &ctx.refusals.forbidden,
            Code::LimitExceeded => &ctx.refusals.limit_exceeded,
            Code::Invalid => &ctx.refusals.invalid,
            Code::NotFound => &ctx.refusals.not_found,
            Code::Failed => return result,
        };
        let n = counter.fetch_add(1, Relaxed) + 1;
        if is_power_of_ten(n) {
            tracing::warn!(plugin.name = %ctx.name, code = e.code.name(), refused_total = n, "{what} refused: {}", e.message);
        } else {
            tracing::debug!(plugin.name = %ctx.name, code = e.code.name(), refused_total = n, "{what} refused: {}", e.message);
        }
        result
    }

    /// Count and report a refused call to the store.
    pub(crate) fn refused_state<T>(
        &mut self,
        result: Result<T, GuestError>,
    ) -> Result<T, GuestError> {
        self.refused("state call", result)
    }

    pub(crate) fn get(&mut self, r: ObjectRef) -> Result<Option<String>, GuestError> {
        let result = self.get_inner(r);
        self.refused("cache read", result)
    }

    fn get_inner(&mut self, r: ObjectRef) -> Result<Option<String>, GuestError> {
        let kind = self.kinds.key(&r.api_version, &r.kind);
        let ctx = self.readable(&kind)?;
        let key = ObjectKey::from_owned(r.namespace, r.name);
        let Some(object) = ctx.cache.get(&kind, &key) else {
            return Ok(None);
        };
        if self.view.as_ref().is_some_and(|v| v.hides(&kind, &key)) {
            return Ok(None);
        }
        self.charge(object.json().len(), 1)?;
        Ok(Some(object.json().to_string()))
    }

    pub(crate) fn list(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, GuestError> {
        let result = self
            .list_objects(api_version, kind, namespace, label_selector)
            .and_then(|objects| self.charge_objects(&objects));
        self.refused("cache list", result)
    }

    pub(crate) fn list_keys(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<ObjectRef>, GuestError> {
        let result = self
            .list_objects(api_version, kind, namespace, label_selector)
            .and_then(|objects| {
                let kind = self.kinds.key(api_version, kind);
                self.charge_keys(&kind, &objects)
            });
        self.refused("cache list", result)
    }

    pub(crate) fn by_index(&mut self, index: &str, value: &str) -> Result<Vec<String>, GuestError> {
        let result = self
            .by_index_objects(index, value)
            .and_then(|(_, objects)| self.charge_objects(&objects));
        self.refused("index lookup", result)
    }

    pub(crate) fn by_index_keys(
        &mut self,
        index: &str,
        value: &str,
    ) -> Result<Vec<ObjectRef>, GuestError> {
        let result = self
            .by_index_objects(index, value)
            .and_then(|(kind, objects)| self.charge_keys(&kind, &objects));
        self.refused("index lookup", result)
    }

    pub(crate) fn index_values(&mut self, index: &str) -> Result<Vec<String>, GuestError> {
        let result = self.index_values_inner(index);
        self.refused("index lookup", result)
    }

    fn index_values_inner(&mut self, index: &str) -> Result<Vec<String>, GuestError> {
        let name = self.index_name(index)?;
        let values = self
            .plugin_ctx()?
            .cache
            .index_values(&name)
            .map_err(cache_error)?;
        self.charge(values.iter().map(String::len).sum(), values.len())?;
        Ok(values)
    }

    pub(crate) fn enqueue(&mut self, action: ActionRequest) -> Result<(), GuestError> {
        let result = self.enqueue_inner(action);
        self.refused("action", result)
    }

    fn enqueue_inner(&mut self, action: ActionRequest) -> Result<(), GuestError> {
        let ctx = self.plugin_ctx()?.clone();
        if self.admission {
            return Err(error(
                Code::Forbidden,
                format!(
                    "plugin {}: an admission call cannot enqueue actions: it must have no side effects (react to the change in handle instead)",
                    ctx.name
                ),
            ));
        }
        let max = ctx.limits.max_actions_per_call;
        if self.pending.len() >= max {
            return Err(error(
                Code::LimitExceeded,
                format!("a call may enqueue at most {max} actions"),
            ));
        }
        let action = self.validate(action)?;
        let grant = action.required_grant_with(|t| self.kinds.key(&t.api_version, &t.kind));
        match grant {
            Some((kind, verb)) if !ctx.manifest.may_write(&kind, verb) => {
                return Err(error(
                    Code::Forbidden,
                    format!(
                        "plugin {} may not {verb} {kind} ({}): declare it in permissions.writes",
                        ctx.name,
                        action.target(),
                    ),
                ));
            }
            None if !ctx
                .manifest
                .subscriptions
                .iter()
                .any(|s| s.kind_key() == action.target().kind_key()) =>
            {
                return Err(error(
                    Code::Forbidden,
                    format!(
                        "plugin {} can only requeue kinds it subscribes to, not {}",
                        ctx.name,
                        action.target().kind_key()
                    ),
                ));
            }
            _ => {}
        }
        self.pending.push(action);
        Ok(())
    }

    pub(crate) fn log(&mut self, level: Level, message: String) {
        let plugin = self.ctx.as_ref().map_or("<describe>", |c| &*c.name);
        let message = truncate(message, MAX_LOG_BYTES);
        match level {
            Level::Trace => tracing::trace!(plugin.name = plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin.name = plugin, "{message}"),
            Level::Info => tracing::info!(plugin.name = plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin.name = plugin, "{message}"),
            Level::Error => tracing::error!(plugin.name = plugin, "{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

    /// Both clocks stand still, so replays are deterministic; the monotonic
    /// one is not at zero, which Go's runtime would refuse to start on.
    #[test]
    fn the_frozen_clocks_never_move_and_the_monotonic_one_is_not_zero() {
        let clock = FrozenClock;
        let first = HostMonotonicClock::now(&clock);
        assert_ne!(first, 0, "Go's runtime throws on a monotonic clock at zero");
        assert_eq!(HostMonotonicClock::now(&clock), first);
        assert_eq!(HostWallClock::now(&clock), std::time::Duration::ZERO);
        assert_eq!(HostWallClock::now(&clock), HostWallClock::now(&clock));
    }
}
