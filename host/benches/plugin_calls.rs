//! Plugin call throughput and cache memory, printed as a table.
//!
//! Run with `cargo bench -p informant --bench plugin_calls`. Figures go
//! into `docs/BENCHMARKS.md`; nothing here asserts a timing.

// Tests and benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only
// forwards to the system allocator.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use informant::{
    cache::{RawParts, Store},
    plugin::{Engine, Event, Limits, LoadOptions, Plugin},
    vocabulary::{EventType, KindKey},
};
use informant_testkit::plugin_bytes;
use serde_json::{Value, json};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Whether allocations are counted: only while the cache's memory is
/// measured. The call rates are measured without it, so that they do not
/// pay the counter's atomic operations on every host allocation (a cost of
/// this benchmark, not of the host).
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A ConfigMap of about 1 KiB of JSON, like the objects in the issue's figures.
fn configmap(namespace: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "6f1c1b0e-8f7e-4a57-9a51-2b6f8d0c4e21",
            "resourceVersion": "123456",
            "creationTimestamp": "2026-11-23T10:00:00Z",
            "labels": labels,
            "annotations": {"example.com/description": "a configuration object of about one kibibyte"},
        },
        "data": {
            "application.properties": "server.port=8080\nserver.shutdown=graceful\nlogging.level.root=INFO\n".repeat(8),
            "feature-flags": "checkout=true,search=false,recommendations=true",
        },
    })
}

/// The host's limits, with the longest deadline the default ceiling allows:
/// on a machine shared with other builds, a descheduled call can pass the
/// 100 ms default and trap, which would end the run; the deadline's cost
/// per call (the epoch check) is the same at any length.
fn options() -> LoadOptions {
    LoadOptions::default().limits(Limits::default().deadline(Duration::from_secs(10)))
}

/// Calls per second of one event, as the median of [`WINDOWS`] windows of
/// [`WINDOW`], after a warm-up of one window; with the slowest and fastest
/// windows, and the actions per call.
///
/// The warm-up is a whole window, not a few calls: the first second after
/// loading a plugin ran 10-20% slower than the next ones (caches, the
/// allocators' free lists, the machine's clock settling), and the median
/// keeps one descheduled window on a shared machine from moving the figure.
struct Rate {
    median: f64,
    low: f64,
    high: f64,
    actions: usize,
}

const WINDOW: Duration = Duration::from_secs(1);
const WINDOWS: usize = 5;

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} calls/s ({:.2} us/call; windows {:.0}-{:.0})",
            self.median,
            1e6 / self.median,
            self.low,
            self.high
        )
    }
}

fn calls_per_second(plugin: &Plugin, event: &Event) -> Rate {
    let window = |length: Duration| {
        let start = Instant::now();
        let mut calls = 0usize;
        let mut actions = 0usize;
        while start.elapsed() < length {
            for _ in 0..1000 {
                actions += black_box(plugin.handle(event).expect("the call succeeds")).len();
            }
            calls += 1000;
        }
        (
            calls as f64 / start.elapsed().as_secs_f64(),
            actions / calls,
        )
    };
    window(WINDOW);
    let mut rates = Vec::with_capacity(WINDOWS);
    let mut actions = 0;
    for _ in 0..WINDOWS {
        let (rate, per_call) = window(WINDOW);
        rates.push(rate);
        actions = per_call;
    }
    rates.sort_by(f64::total_cmp);
    Rate {
        median: rates[WINDOWS / 2],
        low: rates[0],
        high: rates[WINDOWS - 1],
        actions,
    }
}

fn main() {
    let engine = Engine::new(None).expect("engine");
    let cache = Arc::new(Store::default());
    cache
        .upsert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();

    let bytes = plugin_bytes("label_enforcer");
    let started = Instant::now();
    let component = engine.compile(&bytes).expect("compiles");
    let compile = started.elapsed();
    drop(component);
    let started = Instant::now();
    let plugin = Plugin::load(&engine, &bytes, cache.clone(), options()).expect("loads");
    let load = started.elapsed();

    let object = configmap("shop", "settings", json!({"app": "shop"}));
    let json_len = serde_json::to_string(&object).unwrap().len();
    let event = |object: Value| Event {
        event_type: EventType::Modified,
        subscription: 0,
        initial: false,
        final_state_unknown: false,
        object: Some(Arc::new(cache.prepare(object))),
        old_object: None,
        merged: 0,
    };
    let full = event(object);
    let full_rate = calls_per_second(&plugin, &full);
    // The same call while the host's log records info lines, as `informant
    // run` does by default: the plugin's line is formatted in the guest,
    // lifted and written by the log's formatter (to nowhere). An instance
    // learns the level when it starts, so this plugin loads under the log.
    let logged_rate = {
        let log = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(log, || {
            let logged = Plugin::load(&engine, &bytes, cache.clone(), options()).expect("loads");
            calls_per_second(&logged, &full)
        })
    };
    let skipped = event(configmap("kube-system", "settings", json!({"app": "shop"})));
    let parse_rate = calls_per_second(&plugin, &skipped);

    // The guest's head read by where the metadata is: a skipped event of a
    // ConfigMap with 16 KiB of data, with `kind`, `apiVersion` and
    // `metadata` first (as the API server and the host write objects), and
    // with its keys sorted (metadata last, after the data), which the guest
    // must scan to its end.
    let mut big = configmap("kube-system", "big", json!({"app": "shop"}));
    big["data"]["blob"] = json!("0123456789abcdef".repeat(1024));
    let sorted_text = serde_json::to_string(&big).unwrap();
    let big_len = sorted_text.len();
    let head_first = event(big.clone());
    let labels = std::collections::BTreeMap::from([("app".to_string(), "shop".to_string())]);
    let (_, sorted) = cache.prepare_raw(
        &KindKey::new("v1", "ConfigMap"),
        RawParts {
            json: sorted_text,
            namespace: Some("kube-system"),
            name: "big",
            resource_version: "123456",
            uid: "6f1c1b0e-8f7e-4a57-9a51-2b6f8d0c4e21",
            labels: &labels,
        },
    );
    assert!(sorted.json().starts_with(r#"{"apiVersion":"v1","data""#));
    let sorted = Event {
        object: Some(Arc::new(sorted)),
        ..event(big)
    };
    let head_first_rate = calls_per_second(&plugin, &head_first);
    let sorted_rate = calls_per_second(&plugin, &sorted);

    let hostile =
        Plugin::load(&engine, &plugin_bytes("hostile"), cache.clone(), options()).expect("loads");
    let mut ok = configmap("shop", "settings", json!({"app": "shop"}));
    ok["data"]["mode"] = json!("ok");
    let enqueue_rate = calls_per_second(&hostile, &event(ok));

    println!("component: label_enforcer.wasm, {} KiB", bytes.len() / 1024);
    println!(
        "cold compile: {:.0} ms; load (compile + describe + init): {:.0} ms",
        compile.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3
    );
    println!("object: ConfigMap, {json_len} bytes of JSON");
    println!(
        "parse + cache get + enqueue merge patch: {full_rate}, {} action/call",
        full_rate.actions
    );
    println!("the same, its info line recorded:       {logged_rate}");
    println!(
        "parse only (ignored namespace):          {parse_rate}, {} action/call",
        parse_rate.actions
    );
    println!("parse only, {big_len} bytes, metadata first:  {head_first_rate}");
    println!("parse only, {big_len} bytes, metadata last:   {sorted_rate}");
    println!("data.mode read by path + enqueue (hostile fixture, ok mode): {enqueue_rate}");

    // Cache memory: real heap growth, over the JSON the objects serialise to.
    // What is freed here was allocated here (the counter starts now), so
    // the difference is the growth.
    COUNTING.store(true, Ordering::Relaxed);
    for count in [10_000usize, 100_000] {
        let store = Store::default();
        let mut json_bytes = 0usize;
        let before = LIVE.load(Ordering::Relaxed);
        for i in 0..count {
            let mut o = configmap(
                &format!("ns-{}", i % 100),
                &format!("cm-{i}"),
                json!({"app": format!("app-{}", i % 10)}),
            );
            o["metadata"]["managedFields"] =
                json!([{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:data": {}}}]);
            let cached = store.prepare(o.clone());
            json_bytes += cached.json().len();
            drop(cached);
            store.upsert(o).unwrap();
        }
        let heap = LIVE.load(Ordering::Relaxed).wrapping_sub(before);
        println!(
            "cache, {count} ConfigMaps: {:.0} bytes/object on the heap for {:.0} bytes of JSON = {:.2}x (accounted: {:.0} bytes/object)",
            heap as f64 / count as f64,
            json_bytes as f64 / count as f64,
            heap as f64 / json_bytes as f64,
            store.stats().bytes as f64 / count as f64
        );
    }

    // Memory at rest: two instances each grow to about 33 MiB for one call
    // (the hostile fixture's `spike`: 32 MiB used, then freed). Linear
    // memory never shrinks; the host drops such instances instead of keeping
    // them idle, so RSS comes back.
    let spiky = Arc::new(
        Plugin::load(
            &engine,
            &plugin_bytes("hostile"),
            cache.clone(),
            LoadOptions::default().max_idle_instances(2),
        )
        .expect("loads"),
    );
    let mut spike = configmap("shop", "spike", json!({"app": "shop"}));
    spike["data"]["mode"] = json!("spike");
    let spike = event(spike);
    let before = rss_mib();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (plugin, spike) = (spiky.clone(), &spike);
            scope.spawn(move || plugin.handle(spike).expect("the spike call succeeds"));
        }
    });
    println!(
        "memory at rest: RSS {before:.0} MiB before two 32 MiB calls, {:.0} MiB after ({} instances dropped to give memory back, {} MiB idle)",
        rss_mib(),
        spiky.counts().recycled,
        spiky.peak_memory_bytes() >> 20,
    );
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
