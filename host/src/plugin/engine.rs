//! The one wasmtime engine of the host, its linker and its epoch ticker.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};

use super::{Error, contract, host::HostState};

/// How often the epoch advances; CPU deadlines are enforced to this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// A WebAssembly component.
    Component,
    /// A core WebAssembly module, not a component.
    CoreModule,
    /// Not WebAssembly at all.
    NotWasm,
}

impl Binary {
    /// Classify bytes by the WebAssembly header.
    pub fn of(bytes: &[u8]) -> Self {
        match bytes {
            [0, b'a', b's', b'm', _, _, 1, 0, ..] => Self::Component,
            [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Self::CoreModule,
            _ => Self::NotWasm,
        }
    }
}

/// Compiled components by the SHA-256 of their bytes, most recent last.
/// The engine's configuration is fixed for its life, so the digest of the
/// bytes is the whole key.
#[derive(Default)]
struct Compiled {
    components: HashMap<[u8; 32], Component>,
    order: VecDeque<[u8; 32]>,
}

/// Compiled components kept in memory, so that re-adding a known plugin
/// (a rollback, a settings change, a file touched again) skips cranelift.
const COMPILED_KEPT: usize = 32;

/// The shared engine: compiles components and links them against the host.
///
/// Cloning is cheap; every clone shares one wasmtime `Engine`, one linker
/// and one cache of compiled components.
#[derive(Clone)]
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Arc<Linker<HostState>>,
    compiled: Arc<Mutex<Compiled>>,
    /// Cranelift's parallel compilation runs here, never on every core:
    /// compiling a large plugin must leave a core to the running plugins.
    compilers: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Build the engine, its linker (the contract's imports plus WASI with
    /// nothing granted) and start the epoch ticker. With `cache_dir`,
    /// compiled artifacts are kept there too (wasmtime's own cache, keyed by
    /// the bytes and the engine's configuration), so a restarted host does
    /// not compile again; the directory is the host's own, never the plugin
    /// directory.
    ///
    /// # Errors
    /// [`Error::Engine`] if wasmtime rejects the configuration or the cache
    /// directory cannot be used.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, Error> {
        let mut config = wasmtime::Config::new();
        if let Some(dir) = cache_dir {
            // wasmtime wants an absolute path; users give relative ones.
            let dir = &std::path::absolute(dir)
                .map_err(|e| Error::Engine(format!("compile cache in {}: {e}", dir.display())))?;
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            let cache = wasmtime::Cache::new(cache_config)
                .map_err(|e| Error::Engine(format!("compile cache in {}: {e:#}", dir.display())))?;
            config.cache(Some(cache));
        }
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .max_wasm_stack(1 << 20);
        // `perf` names plugin code by function when the host writes a perf
        // map (/tmp/perf-PID.map): how docs/BENCHMARKS.md's profiles were
        // taken. Off by default: the map grows with every compiled plugin.
        if std::env::var_os("INFORMANT_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wasmtime::Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        contract::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;

        spawn_ticker(&engine);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let compilers = rayon::ThreadPoolBuilder::new()
            .num_threads(cores.saturating_sub(1).max(1))
            .thread_name(|i| format!("informant-compile-{i}"))
            .build()
            .map(Arc::new)
            .inspect_err(
                |e| tracing::warn!(error = %e, "no separate compile pool; compiling on every core"),
            )
            .ok();
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            compiled: Arc::new(Mutex::new(Compiled::default())),
            compilers,
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Compile a component, after checking that the bytes are one.
    ///
    /// # Errors
    /// [`Error::NotWasm`], [`Error::CoreModule`] or [`Error::Compile`].
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, Error> {
        match Binary::of(bytes) {
            Binary::Component => {}
            Binary::CoreModule => return Err(Error::CoreModule),
            Binary::NotWasm => return Err(Error::NotWasm),
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(component) = self.compiled.lock().components.get(&digest) {
            return Ok(component.clone());
        }
        // Compiled from the bytes, never deserialized: nothing precompiled
        // is ever trusted.
        let compile = || Component::new(&self.engine, bytes);
        let component = match &self.compilers {
            Some(pool) => pool.install(compile),
            None => compile(),
        }
        .map_err(|e| Error::Compile(format!("{e:#}")))?;
        let mut compiled = self.compiled.lock();
        if compiled
            .components
            .insert(digest, component.clone())
            .is_none()
        {
            compiled.order.push_back(digest);
        }
        while compiled.order.len() > COMPILED_KEPT {
            if let Some(old) = compiled.order.pop_front() {
                compiled.components.remove(&old);
            }
        }
        Ok(component)
    }

    /// Epoch ticks to allow for a deadline: one more than the deadline needs,
    /// because the current tick may be nearly over.
    pub fn ticks_for(deadline: Duration) -> u64 {
        let tick = EPOCH_TICK.as_nanos().max(1);
        u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX - 1) + 1
    }
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
/// The thread holds only a weak reference, so it never keeps the engine alive.
fn spawn_ticker(engine: &wasmtime::Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("informant-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        // Without the ticker deadlines would never fire; a host that cannot
        // spawn one thread is not going to run plugins anyway.
        tracing::error!(error = %e, "could not start the epoch ticker thread; plugin deadlines are not enforced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_garbage() {
        assert_eq!(
            Binary::of(&wat::parse_str("(component)").unwrap()),
            Binary::Component
        );
        assert_eq!(
            Binary::of(&wat::parse_str("(module)").unwrap()),
            Binary::CoreModule
        );
        assert_eq!(Binary::of(b"#!/bin/sh\necho hi"), Binary::NotWasm);
        assert_eq!(Binary::of(b""), Binary::NotWasm);
    }

    #[test]
    fn deadlines_get_one_spare_tick() {
        assert_eq!(Engine::ticks_for(Duration::from_millis(100)), 21);
        assert_eq!(Engine::ticks_for(Duration::from_millis(1)), 2);
    }
}
