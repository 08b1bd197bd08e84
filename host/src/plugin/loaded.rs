//! One loaded, validated plugin version and its pool of reusable instances.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::{Store, Trap, component::Component};

use super::{
    CallError, Engine, Error, Event, Limits, Outcome,
    admission::{AdmissionRequest, Verdict},
    contract::{Exports, ExportsPre},
    host::{GuestError, HostState, PluginContext, truncate},
    manifest::Manifest,
};
use crate::{
    action::Action,
    cache::Store as Cache,
    state::{self, Stores},
};

/// Longest error message kept from a guest.
const MAX_GUEST_ERROR: usize = 4096;
/// What kind of call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `handle`: may enqueue actions and write the store.
    Event,
    /// `review`: reads only.
    Admission,
}

/// What an admission call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The plugin's verdict.
    pub verdict: Verdict,
    /// The first cache read (or action, or store write) refused during the
    /// call, if any: the verdict then rests on what the plugin could not see.
    pub refused: Option<String>,
}

/// One run of a call: its value, its actions, its transaction (if the
/// plugin returned ok), and the first refusal of an admission call.
type Ran<T> = (T, Vec<Action>, Option<state::Transaction>, Option<String>);

/// How many times a call runs when other instances keep changing what it
/// read before it can commit; then it fails, and is retried like any
/// failed call.
const MAX_RUNS: u32 = 32;

/// How a plugin is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    limits: Limits,
    ceiling: Limits,
    settings: serde_json::Value,
    max_idle_instances: usize,
    /// The name it runs under, when not its manifest's.
    name: Option<String>,
    stores: Arc<Stores>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            ceiling: Limits::default()
                .memory_bytes(1024 << 20)
                .deadline(Duration::from_secs(10)),
            settings: serde_json::Value::Null,
            max_idle_instances: std::thread::available_parallelism().map_or(2, |n| n.get()),
            name: None,
            stores: Arc::new(Stores::default()),
        }
    }
}

impl LoadOptions {
    /// The plugin's limits, before its own requests.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The most a plugin may ask for in its manifest.
    #[must_use]
    pub fn ceiling(mut self, ceiling: Limits) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// The settings passed to `init`.
    #[must_use]
    pub fn settings(mut self, settings: serde_json::Value) -> Self {
        self.settings = settings;
        self
    }

    /// Run the plugin under this name rather than its manifest's: a Plugin
    /// object's own name, so that one component can run twice with other
    /// settings, and the name is what `kubectl get plugins` shows.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many idle instances to keep for reuse.
    #[must_use]
    pub fn max_idle_instances(mut self, n: usize) -> Self {
        self.max_idle_instances = n.max(1);
        self
    }

    /// Where the plugin's store comes from: by default a store of its own
    /// in memory; the running host's [`Stores`] keep it across reloads.
    #[must_use]
    pub fn stores(mut self, stores: Arc<Stores>) -> Self {
        self.stores = stores;
        self
    }
}

/// Counters of one plugin version's calls.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls that returned ok.
    pub(crate) ok: AtomicU64,
    /// Calls that returned an error.
    pub(crate) failed: AtomicU64,
    /// Calls stopped at their deadline.
    pub(crate) timed_out: AtomicU64,
    /// Calls that ran out of memory.
    pub(crate) out_of_memory: AtomicU64,
    /// Calls that trapped otherwise.
    pub(crate) trapped: AtomicU64,
    /// Instances created.
    pub(crate) instances: AtomicU64,
    /// Idle instances dropped to give memory back: a call had grown them
    /// far past their size after `init`.
    pub(crate) recycled: AtomicU64,
    /// Calls run again because another instance changed what they read
    /// from the store before they could commit.
    pub(crate) reruns: AtomicU64,
}

/// A snapshot of [`CallStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCounts {
    /// Calls that returned ok.
    pub ok: u64,
    /// Calls that returned an error.
    pub failed: u64,
    /// Calls stopped at their deadline.
    pub timed_out: u64,
    /// Calls that ran out of memory.
    pub out_of_memory: u64,
    /// Calls that trapped otherwise.
    pub trapped: u64,
    /// Instances created.
    pub instances: u64,
    /// Idle instances dropped to give memory back.
    pub recycled: u64,
    /// Calls run again after a conflict on the store.
    pub reruns: u64,
}

struct Instance {
    store: Store<HostState>,
    exports: Exports,
    /// Its linear memory right after `init`: its size at rest.
    baseline: usize,
}

impl Instance {
    /// Whether it may wait idle for the next call. Linear memory never
    /// shrinks, so an instance that grew for one large call would hold that
    /// memory for as long as it is kept; past its size after `init` plus
    /// that much again (at least 8 MiB), it is dropped and the next call gets
    /// a fresh one.
    fn fit_to_keep(&self) -> bool {
        const SLACK: usize = 8 << 20;
        let now = self.store.data().limiter.linear_bytes;
        now <= self.baseline + self.baseline.max(SLACK)
    }
}

/// A loaded plugin version, ready to handle events from any thread.
pub struct Plugin {
    ctx: Arc<PluginContext>,
    digest: String,
    settings: String,
    pre: ExportsPre,
    engine: Engine,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    stats: CallStats,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.ctx.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Run `describe` on a component and validate what it returns, without
/// loading it: what `informant check` does.
///
/// # Errors
/// Any [`Error`] a load would report before `init`.
pub fn describe(engine: &Engine, bytes: &[u8]) -> Result<Manifest, Error> {
    let component = engine.compile(bytes)?;
    let pre = prepare(engine, &component)?;
    describe_with(engine, &pre, &Limits::default())
}

fn prepare(engine: &Engine, component: &Component) -> Result<ExportsPre, Error> {
    let instance_pre = engine
        .linker()
        .instantiate_pre(component)
        .map_err(|e| Error::Incompatible(format!("{e:#}")))?;
    ExportsPre::new(instance_pre).map_err(|e| Error::Incompatible(format!("{e:#}")))
}

fn describe_with(engine: &Engine, pre: &ExportsPre, limits: &Limits) -> Result<Manifest, Error> {
    let mut store = new_store(
        engine,
        HostState::new("<describe>".into(), None, limits),
        limits,
    );
    let exports = pre
        .instantiate(&mut store)
        .map_err(|e| Error::Instantiate(instantiation_error(&e, &store, limits)))?;
    let manifest = exports
        .describe(&mut store)
        .map_err(|e| Error::Describe(classify(&e, &store, &startup(limits)).to_string()))?;
    store.data_mut().end_call();
    let manifest = manifest?;
    check_admission(&manifest, pre)?;
    Ok(manifest)
}

/// A component serves admission when, and only when, its manifest declares
/// the webhook and it exports `admission`.
fn check_admission(manifest: &Manifest, pre: &ExportsPre) -> Result<(), Error> {
    match (manifest.admission.is_some(), pre.has_admission()) {
        (true, false) => Err(Error::Admission(format!(
            "the manifest declares an admission webhook (manifest.admission), but the component \
             does not export {}: build it for the plugin-with-admission world",
            super::contract::ADMISSION_EXPORT
        ))),
        (false, true) => Err(Error::Admission(format!(
            "the component exports {} but its manifest declares no webhook: declare it in \
             manifest.admission, or build for the plugin world",
            super::contract::ADMISSION_EXPORT
        ))),
        _ => Ok(()),
    }
}

/// How long instantiating a plugin and running `describe` or `init` may
/// take: load-time work, off the event path, that a language runtime
/// (Python, JavaScript) needs more than an event's deadline for on a busy
/// host. Each `handle` call then gets the plugin's own deadline.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// The limits for start-up: the plugin's, with [`STARTUP_DEADLINE`].
fn startup(limits: &Limits) -> Limits {
    let deadline = limits.deadline.max(STARTUP_DEADLINE);
    limits.clone().deadline(deadline)
}

/// A store for one instance, its deadline set for start-up.
fn new_store(engine: &Engine, state: HostState, limits: &Limits) -> Store<HostState> {
    let mut store = Store::new(engine.wasmtime(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(Engine::ticks_for(startup(limits).deadline));
    store.epoch_deadline_trap();
    store
}

/// Why a component could not be instantiated; a memory cap too small for
/// the runtime it carries (Python, JavaScript) says what to change.
fn instantiation_error(err: &wasmtime::Error, store: &Store<HostState>, limits: &Limits) -> String {
    let limiter = &store.data().limiter;
    if limiter.refused {
        const MIB: f64 = 1024.0 * 1024.0;
        format!(
            "it needs {:.1} MiB of linear memory to start, over its {:.0} MiB cap; raise the host's \
             limits.memoryMib, or have its manifest ask for more (resources.memory-mib), within the \
             operator's maximum ({err})",
            limiter.refused_bytes as f64 / MIB,
            limits.memory_bytes as f64 / MIB,
        )
    } else {
        format!("{err:#}")
    }
}

/// Turn a wasmtime error from a call into what the user needs to know.
fn classify(err: &wasmtime::Error, store: &Store<HostState>, limits: &Limits) -> CallError {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout {
            deadline: limits.deadline,
        },
        _ if store.data().limiter.refused => CallError::OutOfMemory {
            limit_bytes: limits.memory_bytes,
            trap: root_cause(err),
        },
        Some(Trap::StackOverflow) => {
            CallError::Trap("stack overflow (unbounded recursion?)".into())
        }
        _ => CallError::Trap(root_cause(err)),
    }
}

fn root_cause(err: &wasmtime::Error) -> String {
    // A trap's own text says what happened; the error's Display leads with
    // a multi-line wasm backtrace instead.
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    }
}

impl Plugin {
    /// Load a plugin: compile, link, describe, validate the manifest, apply
    /// its resource requests, declare its indexes in the cache and initialise
    /// a first instance with its settings. Any failure leaves nothing behind.
    ///
    /// # Errors
    /// Every way a plugin can be bad has its [`Error`] variant.
    pub fn load(
        engine: &Engine,
        bytes: &[u8],
        cache: Arc<Cache>,
        options: LoadOptions,
    ) -> Result<Self, Error> {
        let component = engine.compile(bytes)?;
        let pre = prepare(engine, &component)?;
        let manifest = describe_with(engine, &pre, &options.limits)?;
        let limits = options.limits.with_request(
            manifest.resources.memory_mib,
            manifest.resources.deadline_ms,
            &options.ceiling,
        )?;

        let mut indexes = HashMap::new();
        let mut added = Vec::new();
        for decl in &manifest.indexes {
            let cache_name = decl.cache_name();
            if let Err(e) = cache.add_index(&cache_name, &decl.kind, decl.field_paths.clone()) {
                added.iter().for_each(|n: &String| cache.remove_index(n));
                return Err(Error::Index(e.to_string()));
            }
            added.push(cache_name.clone());
            indexes.insert(decl.name.clone(), cache_name);
        }
        // Plugins of the contracts before 0.3.0 cannot reach a store.
        let opened = if pre.version() == super::contract::VERSIONS[0] {
            match options.stores.open(&manifest.name, &manifest.state) {
                Ok(opened) => Some(opened),
                Err(e) => {
                    added.iter().for_each(|n| cache.remove_index(n));
                    return Err(Error::State(e));
                }
            }
        } else {
            None
        };
        let state = opened.as_ref().map(|o| o.store.clone());
        let ctx = Arc::new(PluginContext {
            name: options
                .name
                .as_deref()
                .unwrap_or(manifest.name.as_str())
                .into(),
            manifest: Arc::new(manifest),
            cache,
            indexes,
            limits,
            refusals: super::host::Refusals::default(),
            state,
        });
        let plugin = Self {
            ctx,
            digest: hex(&Sha256::digest(bytes)),
            settings: options.settings.to_string(),
            pre,
            engine: engine.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle: options.max_idle_instances,
            stats: CallStats::default(),
        };
        // A plugin whose init fails is not loaded: better now than at the first event.
        let first = plugin.instance().map_err(|e| match e {
            CallError::Failed { code, message } => Error::Init(format!("({code}) {message}")),
            other => Error::Init(other.to_string()),
        });
        match first {
            Ok(instance) => plugin.idle.lock().push(instance),
            Err(e) => {
                added.iter().for_each(|n| plugin.ctx.cache.remove_index(n));
                return Err(e);
            }
        }
        if let Some(opened) = &opened {
            options.stores.keep(opened);
        }
        Ok(plugin)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.ctx.manifest
    }

    /// The version of the WIT contract the component was built against:
    /// `0.3.0`, `0.2.0` or `0.1.0`.
    pub fn contract_version(&self) -> &'static str {
        self.pre.version()
    }

    /// Whether the component exports `admission` (the
    /// `plugin-with-admission` world); its manifest then declares the
    /// webhook.
    pub fn serves_admission(&self) -> bool {
        self.pre.has_admission()
    }

    /// The SHA-256 of the component's bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits in force, after the manifest's requests.
    pub fn limits(&self) -> &Limits {
        &self.ctx.limits
    }

    /// Its store: none for plugins of contracts before 0.3.0.
    pub fn state(&self) -> Option<&Arc<state::Store>> {
        self.ctx.state.as_ref()
    }

    /// The call counters.
    pub fn counts(&self) -> CallCounts {
        let s = &self.stats;
        CallCounts {
            ok: s.ok.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            timed_out: s.timed_out.load(Ordering::Relaxed),
            out_of_memory: s.out_of_memory.load(Ordering::Relaxed),
            trapped: s.trapped.load(Ordering::Relaxed),
            instances: s.instances.load(Ordering::Relaxed),
            recycled: s.recycled.load(Ordering::Relaxed),
            reruns: s.reruns.load(Ordering::Relaxed),
        }
    }

    /// Reads and actions refused to this version, by code.
    pub fn refusals(&self) -> [(&'static str, u64); 4] {
        self.ctx.refusals.counts()
    }

    /// Calls by how they ended, in [`Outcome::ALL`] order.
    pub fn calls_by_outcome(&self) -> [(Outcome, u64); 5] {
        let c = self.counts();
        [
            (Outcome::Ok, c.ok),
            (Outcome::Failed, c.failed),
            (Outcome::Timeout, c.timed_out),
            (Outcome::OutOfMemory, c.out_of_memory),
            (Outcome::Trap, c.trapped),
        ]
    }

    /// Forget the plugin's indexes in the cache; call when unloading it.
    pub fn release_indexes(&self) {
        for name in self.ctx.indexes.values() {
            self.ctx.cache.remove_index(name);
        }
    }

    /// A fresh instance, initialised with the settings.
    fn instance(&self) -> Result<Instance, CallError> {
        let limits = &self.ctx.limits;
        let state = HostState::new(self.ctx.name.clone(), Some(self.ctx.clone()), limits);
        let mut store = new_store(&self.engine, state, limits);
        let exports = self.pre.instantiate(&mut store).map_err(|e| {
            CallError::Trap(format!(
                "instantiation failed: {}",
                instantiation_error(&e, &store, limits)
            ))
        })?;
        self.stats.instances.fetch_add(1, Ordering::Relaxed);
        store.data_mut().begin_call_with(super::store::INIT_CLOSED);
        let result = exports.init(&mut store, &self.settings);
        // Actions enqueued by init are never committed; it cannot use the store.
        store.data_mut().end_call();
        store.data_mut().take_transaction();
        match result {
            Ok(Ok(())) => {
                let baseline = store.data().limiter.linear_bytes;
                Ok(Instance {
                    store,
                    exports,
                    baseline,
                })
            }
            Ok(Err(e)) => Err(failed(e)),
            Err(e) => Err(classify(&e, &store, &startup(limits))),
        }
    }

    /// Handle one event on an idle instance (or a fresh one), commit what
    /// it wrote to its store, and return the actions the call committed.
    ///
    /// An instance that trapped is dropped, never reused. A call whose
    /// reads of the store another instance changed before it could commit
    /// runs again (up to 32 times), its first run's actions dropped. The
    /// durable tier's commit waits for the API server: call this from a
    /// blocking thread.
    ///
    /// # Errors
    /// [`CallError`] says how the call failed; its actions and its writes
    /// are discarded.
    pub fn handle(&self, event: &Event) -> Result<Vec<Action>, CallError> {
        self.handle_in(event, None)
    }

    /// Like [`Self::handle`], the call's cache reads limited to `view`.
    ///
    /// # Errors
    /// As [`Self::handle`].
    pub fn handle_in(
        &self,
        event: &Event,
        view: Option<Arc<dyn crate::cache::View>>,
    ) -> Result<Vec<Action>, CallError> {
        let mut runs = 0;
        loop {
            runs += 1;
            let limits = &self.ctx.limits;
            let ((), actions, txn, _) = self
                .run(limits, Mode::Event, view.clone(), |exports, store| {
                    exports.handle(store, event)
                })
                .inspect_err(|e| self.count(e))?;
            let committed = match txn {
                Some(txn) => txn.commit(),
                None => Ok(()),
            };
            match committed {
                Ok(()) => {
                    self.stats.ok.fetch_add(1, Ordering::Relaxed);
                    return Ok(actions);
                }
                Err(state::CommitError::Conflict) if runs < MAX_RUNS => {
                    self.stats.reruns.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let err = CallError::Failed {
                        code: super::host::Code::Failed.name().into(),
                        message: match e {
                            state::CommitError::Conflict => format!(
                                "other instances changed what the call read from the store before it could commit, {MAX_RUNS} runs in a row"
                            ),
                            state::CommitError::Failed(why) => why,
                        },
                    };
                    self.count(&err);
                    return Err(err);
                }
            }
        }
    }

    /// Ask the plugin about one admission request, under `deadline` (or
    /// its own deadline, if shorter). The call reads the cache (and the
    /// store) as `handle` does, and can neither enqueue actions nor write
    /// the store. Its outcome is not counted with the event calls:
    /// admission has its own counters.
    ///
    /// # Errors
    /// [`CallError`] says how the call failed.
    pub fn admit(
        &self,
        request: &AdmissionRequest,
        deadline: Duration,
    ) -> Result<Admitted, CallError> {
        let limits = self
            .ctx
            .limits
            .clone()
            .deadline(deadline.min(self.ctx.limits.deadline));
        self.run(&limits, Mode::Admission, None, |exports, store| {
            exports.admit(store, request)
        })
        .map(|(verdict, _, _, refused)| Admitted { verdict, refused })
    }

    /// One run of a call: its value, its actions, its transaction (if the
    /// plugin returned ok) and, for an admission call, its first refusal.
    /// Counts nothing but recycled instances.
    fn run<T>(
        &self,
        limits: &Limits,
        mode: Mode,
        view: Option<Arc<dyn crate::cache::View>>,
        call: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<Result<T, GuestError>>,
    ) -> Result<Ran<T>, CallError> {
        let pooled = self.idle.lock().pop();
        let mut instance = match pooled {
            Some(i) => i,
            None => self.instance()?,
        };
        match mode {
            Mode::Event => instance.store.data_mut().begin_call(),
            Mode::Admission => instance.store.data_mut().begin_admission(),
        }
        instance.store.data_mut().set_view(view);
        instance
            .store
            .set_epoch_deadline(Engine::ticks_for(limits.deadline));
        let result = call(&instance.exports, &mut instance.store);
        // Before the call's output is flushed: a panic's message is in it.
        let panic = result
            .as_ref()
            .err()
            .and_then(|_| panic_message(&instance.store.data().stderr_recent()));
        let refused = instance.store.data().refused_in_call().map(str::to_string);
        let actions = instance.store.data_mut().end_call();
        let txn = instance.store.data_mut().take_transaction();
        let outcome = match result {
            Ok(Ok(value)) => Ok((value, actions, txn, refused)),
            // A language runtime turns a refused growth into its own error
            // (Python's MemoryError) and returns it: still out of memory, and
            // an instance at its cap is not worth keeping.
            Ok(Err(e)) if instance.store.data().limiter.refused => {
                return Err(CallError::OutOfMemory {
                    limit_bytes: limits.memory_bytes,
                    trap: format!(
                        "the plugin returned an error ({}): {}",
                        e.code.name(),
                        truncate(e.message, MAX_GUEST_ERROR)
                    ),
                });
            }
            Ok(Err(e)) => Err(failed(e)),
            Err(e) => {
                // A trapped instance may be in any state: drop it.
                return Err(match (e.downcast_ref::<Trap>(), panic) {
                    (Some(Trap::UnreachableCodeReached), Some(panic)) => CallError::Trap(panic),
                    _ => classify(&e, &instance.store, limits),
                });
            }
        };
        if !instance.fit_to_keep() {
            self.stats.recycled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(plugin.name = %self.ctx.name, linear_mib = instance.store.data().limiter.linear_bytes >> 20, at_rest_mib = instance.baseline >> 20, "instance dropped to give memory back");
            return outcome;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
        outcome
    }

    fn count(&self, e: &CallError) {
        let counter = match e {
            CallError::Failed { .. } => &self.stats.failed,
            CallError::Timeout { .. } => &self.stats.timed_out,
            CallError::OutOfMemory { .. } => &self.stats.out_of_memory,
            CallError::Trap(_) => &self.stats.trapped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Linear memory of the largest idle instance, in bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.idle
            .lock()
            .iter()
            .map(|i| i.store.data().limiter.linear_bytes)
            .max()
            .unwrap_or(0)
    }
}

/// The panic a guest reported on stderr before it trapped, as one line:
/// `panicked at src/lib.rs:46:5: the message`. Rust writes it as
/// `thread '...' panicked at LOCATION:` and the message on the next lines (the
/// SDK's hook on one line); other languages write nothing like it.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    let (location, message) = match rest.split_once(":\n") {
        Some((location, message)) if !location.contains('\n') => (location, message),
        _ => rest.split_once(": ").unwrap_or((rest, "")),
    };
    let message = message
        .lines()
        .take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" ");
    Some(format!(
        "panicked at {}: {}",
        location.trim(),
        message.trim()
    ))
}

/// A plugin's own error, as a failed call.
fn failed(e: GuestError) -> CallError {
    CallError::Failed {
        code: e.code.name().into(),
        message: truncate(e.message, MAX_GUEST_ERROR),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn a_rust_panic_on_stderr_becomes_one_line() {
        let std_hook = "\nthread '<unnamed>' panicked at src/lib.rs:46:24:\npanicking on purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(std_hook).as_deref(),
            Some("panicked at src/lib.rs:46:24: panicking on purpose")
        );
        let sdk_hook = "panicked at src/lib.rs:46:24: panicking on purpose\n";
        assert_eq!(
            panic_message(sdk_hook).as_deref(),
            Some("panicked at src/lib.rs:46:24: panicking on purpose")
        );
        assert_eq!(panic_message("nothing of the kind"), None);
    }
}
