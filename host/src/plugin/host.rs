//! The host side of the contract: what a plugin's imports do, per store.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use serde_json::Value;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder, component::ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{
    Limits,
    bindings::{actions as wit_actions, cache as wit_cache, log as wit_log, types as wit},
    manifest::Manifest,
    output::{Capture, CapturedOutput, Stream},
};
use crate::{
    action::{Action, Severity, object_ref_of},
    cache::{self, CachedObject, KindKey, ObjectKey, ObjectRef, Store},
    selector::LabelSelector,
};

/// Longest log line kept from a guest.
const MAX_LOG_BYTES: usize = 16 * 1024;
/// Longest Event message kept, as the Kubernetes event recorder does.
const MAX_EVENT_MESSAGE: usize = 1024;

/// Objects as the cache returns them, with their keys.
type Listed = Vec<(ObjectKey, Arc<CachedObject>)>;

/// What every instance of one loaded plugin version shares.
#[derive(Debug)]
pub(crate) struct PluginContext {
    pub(crate) name: Arc<str>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) cache: Arc<Store>,
    /// The plugin's index names -> the cache's names for them.
    pub(crate) indexes: HashMap<String, String>,
    pub(crate) limits: Limits,
}

/// Memory limits that also remember whether a growth was refused, so that the
/// trap which usually follows can be reported as what it is.
pub(crate) struct MemoryLimiter {
    limits: StoreLimits,
    pub(crate) refused: bool,
    /// The size a refused growth asked for.
    pub(crate) refused_bytes: usize,
    pub(crate) peak_bytes: usize,
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
    ctx: Option<Arc<PluginContext>>,
    /// Actions enqueued by the current call, committed only if it returns ok.
    pending: Vec<Action>,
    /// Bytes the cache has returned during the current call.
    result_bytes: usize,
    stdout: Arc<Mutex<Capture>>,
    stderr: Arc<Mutex<Capture>>,
}

impl HostState {
    /// A store's data: no filesystem, no network, no environment, frozen
    /// clocks; stdout and stderr go to the host log.
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
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            ctx,
            pending: Vec::new(),
            result_bytes: 0,
            stdout,
            stderr,
        }
    }

    /// Reset per-call state before a call.
    pub(crate) fn begin_call(&mut self) {
        self.pending.clear();
        self.result_bytes = 0;
        self.limiter.refused = false;
    }

    /// Take the call's actions and flush its output.
    pub(crate) fn end_call(&mut self) -> Vec<Action> {
        self.stdout.lock().end_call();
        self.stderr.lock().end_call();
        std::mem::take(&mut self.pending)
    }

    fn plugin_ctx(&self) -> Result<&Arc<PluginContext>, wit::Error> {
        self.ctx.as_ref().ok_or_else(|| {
            error(
                wit::ErrorCode::Forbidden,
                "the cache and actions are not available during describe",
            )
        })
    }

    fn readable(&self, kind: &KindKey) -> Result<&Arc<PluginContext>, wit::Error> {
        let ctx = self.plugin_ctx()?;
        if ctx.manifest.may_read(kind) {
            Ok(ctx)
        } else {
            Err(error(
                wit::ErrorCode::Forbidden,
                format!(
                    "plugin {} may not read {kind}: subscribe to it or declare it in permissions.reads",
                    ctx.name
                ),
            ))
        }
    }

    /// Account for `bytes` more returned to the guest in this call.
    fn charge(&mut self, bytes: usize, items: usize) -> Result<(), wit::Error> {
        let limits = &self.plugin_ctx()?.limits;
        let (max_bytes, max_items) = (limits.max_host_result_bytes, limits.max_list_items);
        if items > max_items {
            return Err(error(
                wit::ErrorCode::LimitExceeded,
                format!(
                    "the result has {items} items, more than the limit of {max_items}; narrow it with a namespace or selector"
                ),
            ));
        }
        self.result_bytes += bytes;
        if self.result_bytes > max_bytes {
            return Err(error(
                wit::ErrorCode::LimitExceeded,
                format!("this call has read more than {max_bytes} bytes from the cache"),
            ));
        }
        Ok(())
    }

    fn index_name(&self, index: &str) -> Result<String, wit::Error> {
        let ctx = self.plugin_ctx()?;
        ctx.indexes.get(index).cloned().ok_or_else(|| {
            error(
                wit::ErrorCode::NotFound,
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
    ) -> Result<Vec<(ObjectKey, Arc<CachedObject>)>, wit::Error> {
        let kind = KindKey::new(api_version, kind);
        let selector = LabelSelector::parse(label_selector.unwrap_or(""))
            .map_err(|e| error(wit::ErrorCode::Invalid, e.to_string()))?;
        let ctx = self.readable(&kind)?;
        Ok(ctx.cache.list(&kind, namespace, &selector))
    }

    fn by_index_objects(
        &mut self,
        index: &str,
        value: &str,
    ) -> Result<(KindKey, Listed), wit::Error> {
        let name = self.index_name(index)?;
        let ctx = self.plugin_ctx()?;
        let kind = ctx.cache.index_kind(&name).ok_or_else(|| {
            error(
                wit::ErrorCode::NotFound,
                format!("index {index:?} is not registered"),
            )
        })?;
        let objects = ctx.cache.by_index(&name, value).map_err(cache_error)?;
        Ok((kind, objects))
    }

    fn charge_objects(
        &mut self,
        objects: &[(ObjectKey, Arc<CachedObject>)],
    ) -> Result<Vec<String>, wit::Error> {
        let bytes = objects.iter().map(|(_, o)| o.json().len()).sum();
        self.charge(bytes, objects.len())?;
        Ok(objects.iter().map(|(_, o)| o.json().to_string()).collect())
    }

    fn charge_keys(
        &mut self,
        kind: &KindKey,
        objects: &[(ObjectKey, Arc<CachedObject>)],
    ) -> Result<Vec<wit::ObjectRef>, wit::Error> {
        let bytes = objects
            .iter()
            .map(|(k, _)| k.name.len() + k.namespace.len() + 32)
            .sum();
        self.charge(bytes, objects.len())?;
        Ok(objects
            .iter()
            .map(|(k, _)| ObjectRef::from_parts(kind, k).into())
            .collect())
    }

    fn check_string(&self, what: &str, s: &str) -> Result<(), wit::Error> {
        let max = self.plugin_ctx()?.limits.max_guest_string_bytes;
        if s.len() > max {
            return Err(error(
                wit::ErrorCode::LimitExceeded,
                format!("{what} is {} bytes, more than the limit of {max}", s.len()),
            ));
        }
        Ok(())
    }

    fn parse_json(&self, what: &str, s: &str) -> Result<Value, wit::Error> {
        self.check_string(what, s)?;
        serde_json::from_str(s).map_err(|e| {
            error(
                wit::ErrorCode::Invalid,
                format!("{what} is not valid JSON: {e}"),
            )
        })
    }

    fn validate(&self, action: wit_actions::Action) -> Result<Action, wit::Error> {
        use wit_actions::Action as A;
        let object_of = |json: &str, what: &str| -> Result<(ObjectRef, Value), wit::Error> {
            let object = self.parse_json(what, json)?;
            if !object.is_object() {
                return Err(error(
                    wit::ErrorCode::Invalid,
                    format!("{what} must be a JSON object"),
                ));
            }
            let target = object_ref_of(&object)
                .map_err(|e| error(wit::ErrorCode::Invalid, format!("{what}: {e}")))?;
            Ok((target, object))
        };
        let patch_of = |p: &wit_actions::PatchAction,
                        what: &str,
                        array: bool|
         -> Result<(ObjectRef, Value), wit::Error> {
            let patch = self.parse_json(what, &p.patch)?;
            if array && !patch.is_array() {
                return Err(error(
                    wit::ErrorCode::Invalid,
                    format!("{what} must be a JSON array of operations"),
                ));
            }
            if !array && !patch.is_object() {
                return Err(error(
                    wit::ErrorCode::Invalid,
                    format!("{what} must be a JSON object"),
                ));
            }
            Ok((ObjectRef::from(p.target.clone()), patch))
        };
        Ok(match action {
            A::Apply(a) => {
                let (target, object) = object_of(&a.object, "the applied object")?;
                Action::Apply {
                    target,
                    object,
                    force: a.force,
                }
            }
            A::Create(json) => {
                let (target, object) = object_of(&json, "the created object")?;
                Action::Create { target, object }
            }
            A::MergePatch(p) => {
                let (target, patch) = patch_of(&p, "the merge patch", false)?;
                Action::MergePatch { target, patch }
            }
            A::JsonPatch(p) => {
                let (target, patch) = patch_of(&p, "the JSON patch", true)?;
                Action::JsonPatch { target, patch }
            }
            A::PatchStatus(p) => {
                let (target, patch) = patch_of(&p, "the status patch", false)?;
                Action::PatchStatus { target, patch }
            }
            A::Delete(d) => Action::Delete {
                target: d.target.into(),
                uid: d.uid,
                resource_version: d.resource_version,
            },
            A::EmitEvent(e) => {
                if e.reason.is_empty() || e.reason.len() > 128 {
                    return Err(error(
                        wit::ErrorCode::Invalid,
                        "an event reason must be 1-128 characters",
                    ));
                }
                Action::EmitEvent {
                    regarding: e.regarding.into(),
                    severity: match e.severity {
                        wit_actions::EventSeverity::Normal => Severity::Normal,
                        wit_actions::EventSeverity::Warning => Severity::Warning,
                    },
                    reason: e.reason,
                    message: truncate(e.message, MAX_EVENT_MESSAGE),
                    action: truncate(e.action, 128),
                }
            }
            A::RequeueAfter(r) => Action::RequeueAfter {
                target: r.target.into(),
                delay_ms: r.delay_ms,
            },
        })
    }
}

/// A wall and monotonic clock stopped at zero: plugins get no clock beyond
/// the contract, which keeps them deterministic under `replay`.
struct FrozenClock;

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
        0
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

pub(crate) fn error(code: wit::ErrorCode, message: impl Into<String>) -> wit::Error {
    wit::Error {
        code,
        message: message.into(),
    }
}

fn cache_error(e: cache::Error) -> wit::Error {
    let code = match e {
        cache::Error::UnknownIndex(_) => wit::ErrorCode::NotFound,
        _ => wit::ErrorCode::Invalid,
    };
    error(code, e.to_string())
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

impl From<wit::ObjectRef> for ObjectRef {
    fn from(r: wit::ObjectRef) -> Self {
        Self {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace.filter(|n| !n.is_empty()),
            name: r.name,
        }
    }
}

impl From<ObjectRef> for wit::ObjectRef {
    fn from(r: ObjectRef) -> Self {
        Self {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
        }
    }
}

impl wit::Host for HostState {}

impl wit_cache::Host for HostState {
    fn get(&mut self, r: wit::ObjectRef) -> Result<Option<String>, wit::Error> {
        let r = ObjectRef::from(r);
        let kind = r.kind_key();
        let ctx = self.readable(&kind)?;
        let Some(object) = ctx.cache.get(&kind, &r.object_key()) else {
            return Ok(None);
        };
        self.charge(object.json().len(), 1)?;
        Ok(Some(object.json().to_string()))
    }

    fn list(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, wit::Error> {
        let objects = self.list_objects(
            &api_version,
            &kind,
            namespace.as_deref(),
            label_selector.as_deref(),
        )?;
        self.charge_objects(&objects)
    }

    fn list_keys(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<wit::ObjectRef>, wit::Error> {
        let objects = self.list_objects(
            &api_version,
            &kind,
            namespace.as_deref(),
            label_selector.as_deref(),
        )?;
        self.charge_keys(&KindKey::new(&api_version, &kind), &objects)
    }

    fn by_index(&mut self, index: String, value: String) -> Result<Vec<String>, wit::Error> {
        let (_, objects) = self.by_index_objects(&index, &value)?;
        self.charge_objects(&objects)
    }

    fn by_index_keys(
        &mut self,
        index: String,
        value: String,
    ) -> Result<Vec<wit::ObjectRef>, wit::Error> {
        let (kind, objects) = self.by_index_objects(&index, &value)?;
        self.charge_keys(&kind, &objects)
    }

    fn index_values(&mut self, index: String) -> Result<Vec<String>, wit::Error> {
        let name = self.index_name(&index)?;
        let values = self
            .plugin_ctx()?
            .cache
            .index_values(&name)
            .map_err(cache_error)?;
        self.charge(values.iter().map(String::len).sum(), values.len())?;
        Ok(values)
    }
}

impl wit_actions::Host for HostState {
    fn enqueue(&mut self, action: wit_actions::Action) -> Result<(), wit::Error> {
        let ctx = self.plugin_ctx()?.clone();
        let max = ctx.limits.max_actions_per_call;
        if self.pending.len() >= max {
            return Err(error(
                wit::ErrorCode::LimitExceeded,
                format!("a call may enqueue at most {max} actions"),
            ));
        }
        let action = self.validate(action)?;
        match action.required_grant() {
            Some((kind, verb)) if !ctx.manifest.may_write(&kind, verb) => {
                return Err(error(
                    wit::ErrorCode::Forbidden,
                    format!(
                        "plugin {} may not {} {kind} ({}): declare it in permissions.writes",
                        ctx.name,
                        serde_json::to_value(verb)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
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
                    wit::ErrorCode::Forbidden,
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
}

impl wit_log::Host for HostState {
    fn log(&mut self, level: wit_log::Level, message: String) {
        let plugin = self.ctx.as_ref().map(|c| c.name.clone());
        let plugin = plugin.as_deref().unwrap_or("<describe>");
        let message = truncate(message, MAX_LOG_BYTES);
        match level {
            wit_log::Level::Trace => tracing::trace!(plugin.name = plugin, "{message}"),
            wit_log::Level::Debug => tracing::debug!(plugin.name = plugin, "{message}"),
            wit_log::Level::Info => tracing::info!(plugin.name = plugin, "{message}"),
            wit_log::Level::Warn => tracing::warn!(plugin.name = plugin, "{message}"),
            wit_log::Level::Error => tracing::error!(plugin.name = plugin, "{message}"),
        }
    }
}
