//! The same plugin (the label enforcer) written in Rust, Python,
//! JavaScript and Go: component size, cold compile, warm load and calls per second
//! on a 1 KiB object, printed as a table.
//!
//! Run with `cargo bench -p informant --bench languages`. Figures go
//! into `docs/BENCHMARKS.md`; nothing here asserts a timing.

// Tests and benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use informant::{
    cache::Store,
    plugin::{Engine, Event, LoadOptions, Plugin},
    vocabulary::EventType,
};
use informant_testkit::{guest_plugin, plugin_path};
use serde_json::json;

/// A ConfigMap of about 1 KiB of JSON, missing the required `owner` label.
fn configmap() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "shop",
            "uid": "6f1c1b0e-8f7e-4a57-9a51-2b6f8d0c4e21",
            "resourceVersion": "123456",
            "creationTimestamp": "2026-11-23T10:00:00Z",
            "labels": {"app": "shop", "env": "prod"},
            "annotations": {"example.com/description": "a configuration object of about one kibibyte"},
        },
        "data": {
            "application.properties": "server.port=8080\nserver.shutdown=graceful\nlogging.level.root=INFO\n".repeat(8),
            "feature-flags": "checkout=true,search=false,recommendations=true",
        },
    })
}

struct Row {
    language: &'static str,
    size: usize,
    cold_compile: Duration,
    warm_load: Duration,
    reload: Duration,
    rate: f64,
    peak_memory: usize,
}

fn measure(language: &'static str, path: &std::path::Path, window: Duration) -> Row {
    let bytes = std::fs::read(path).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::default());
    store
        .upsert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();

    // Cold: a host that has never seen the component compiles it.
    let engine = Engine::new(Some(cache_dir.path())).unwrap();
    let started = Instant::now();
    drop(engine.compile(&bytes).unwrap());
    let cold_compile = started.elapsed();
    // Reload: the same host loads it again (a rollback, a settings change):
    // the compiled component is in memory; instantiate, describe and init.
    let started = Instant::now();
    drop(Plugin::load(&engine, &bytes, store.clone(), LoadOptions::default()).unwrap());
    let reload = started.elapsed();
    drop(engine);

    // Warm: a restarted host with the compile cache on disk.
    let engine = Engine::new(Some(cache_dir.path())).unwrap();
    let started = Instant::now();
    let plugin = Plugin::load(&engine, &bytes, store.clone(), LoadOptions::default()).unwrap();
    let warm_load = started.elapsed();

    let event = Event {
        event_type: EventType::Modified,
        subscription: 0,
        initial: false,
        final_state_unknown: false,
        object: Some(Arc::new(store.prepare(configmap()))),
        old_object: None,
        merged: 0,
    };
    // Warm up: the first calls touch every page and fill the runtimes' caches.
    for _ in 0..200 {
        assert_eq!(black_box(plugin.handle(&event).unwrap()).len(), 1);
    }
    let started = Instant::now();
    let mut calls = 0u32;
    while started.elapsed() < window {
        for _ in 0..100 {
            black_box(plugin.handle(&event).unwrap());
        }
        calls += 100;
    }
    Row {
        language,
        size: bytes.len(),
        cold_compile,
        warm_load,
        reload,
        rate: f64::from(calls) / started.elapsed().as_secs_f64(),
        peak_memory: plugin.peak_memory_bytes(),
    }
}

fn main() {
    let window = Duration::from_secs(3);
    let object = serde_json::to_string(&configmap()).unwrap().len();
    println!(
        "label-enforcer on a {object}-byte ConfigMap (a merge patch per call); compiles run on the host's compile pool of {} thread(s)",
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .max(1)
    );
    println!(
        "| language | component | cold compile | warm load (disk cache) | reload (in memory) | calls/s | µs/call | peak linear memory |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    /// A language, and where its label enforcer is built.
    type Built = (&'static str, fn() -> std::path::PathBuf);
    let plugins: [Built; 4] = [
        ("Rust", || plugin_path("label_enforcer")),
        ("Python", || guest_plugin("python", "label-enforcer")),
        ("JavaScript", || guest_plugin("js", "label-enforcer")),
        ("Go", || guest_plugin("go", "label-enforcer")),
    ];
    for (language, path) in plugins {
        // INFORMANT_BENCH_LANGUAGES=Rust,Go measures only those.
        if std::env::var("INFORMANT_BENCH_LANGUAGES")
            .is_ok_and(|only| !only.split(',').any(|l| l.eq_ignore_ascii_case(language)))
        {
            continue;
        }
        let r = measure(language, &path(), window);
        println!(
            "| {} | {:.2} MB | {:.2} s | {:.0} ms | {:.1} ms | {:.0} | {:.1} | {:.1} MiB |",
            r.language,
            r.size as f64 / 1e6,
            r.cold_compile.as_secs_f64(),
            r.warm_load.as_secs_f64() * 1e3,
            r.reload.as_secs_f64() * 1e3,
            r.rate,
            1e6 / r.rate,
            r.peak_memory as f64 / f64::from(1 << 20),
        );
    }
}
