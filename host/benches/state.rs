//! The state store's speed, printed as tables: the memory tier's gets and
//! sets from inside a call, what a plugin that never touches the store pays,
//! and the durable tier's write latency against the test cluster (the
//! embedded API server, or `INFORMANT_TEST_KUBECONFIG`'s, such as the kit).
//!
//! Run with `cargo bench -p informant --bench state`. Figures go into
//! `docs/BENCHMARKS.md`; nothing here asserts a timing.

// Benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use informant::{
    cache::Store,
    config::Config,
    plugin::{Engine, Event, Limits, LoadOptions, Plugin},
    runtime::Runtime,
    vocabulary::EventType,
};
use informant_testkit::{TestCluster, plugin_bytes, plugin_path};
use serde_json::{Value, json};

fn configmap() -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench", "namespace": "bench", "resourceVersion": "1",
                     "labels": {"informant.test/counter": "count"}},
        "data": {"k": "v"},
    })
}

fn event(cache: &Store) -> Event {
    Event {
        event_type: EventType::Added,
        subscription: 0,
        initial: false,
        final_state_unknown: false,
        object: Some(Arc::new(cache.prepare(configmap()))),
        old_object: None,
        merged: 0,
    }
}

/// Calls per second over `window`, after a warm-up.
fn rate(plugin: &Plugin, event: &Event, window: Duration) -> f64 {
    for _ in 0..200 {
        black_box(plugin.handle(event).unwrap());
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < window {
        for _ in 0..100 {
            black_box(plugin.handle(event).unwrap());
        }
        calls += 100;
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

/// Generous deadlines: this measures throughput on a shared machine, where
/// a call can wait for a core longer than the default 100 ms.
fn options() -> LoadOptions {
    let limits = Limits::default().deadline(Duration::from_secs(5));
    LoadOptions::default()
        .limits(limits.clone())
        .ceiling(limits)
}

fn memory_tier(window: Duration) {
    let engine = Engine::new(None).unwrap();
    let cache = Arc::new(Store::default());
    let event = event(&cache);
    println!("## memory tier, one thread, one instance, {window:?} windows");
    println!("| gets + sets per call | calls/s | store ops/s | ns per op (over the empty call) |");
    println!("|---|---|---|---|");
    let mut empty = 0.0;
    for ops in [0usize, 1, 10, 100, 1000] {
        let plugin = Plugin::load(
            &engine,
            &plugin_bytes("counter_bench"),
            cache.clone(),
            options()
                .settings(json!({"ops": ops}))
                .max_idle_instances(1),
        )
        .unwrap();
        let calls = rate(&plugin, &event, window);
        if ops == 0 {
            empty = calls;
        }
        let per_op = if ops == 0 {
            0.0
        } else {
            (1e9 / calls - 1e9 / empty) / (2 * ops) as f64
        };
        println!(
            "| {ops} + {ops} | {calls:.0} | {:.0} | {per_op:.0} |",
            calls * (2 * ops) as f64
        );
    }
    // What a plugin that never calls the store pays: the label enforcer's
    // calls, the benchmark of `plugin_calls` (parse, cache read, enqueue).
    cache
        .upsert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    let enforcer = Plugin::load(
        &engine,
        &plugin_bytes("label_enforcer"),
        cache.clone(),
        options(),
    )
    .unwrap();
    let mut object = configmap();
    object["metadata"]["namespace"] = json!("shop");
    object["metadata"]["labels"] = json!({"app": "shop"});
    let enforced = Event {
        object: Some(Arc::new(cache.prepare(object))),
        ..event.clone()
    };
    let calls = rate(&enforcer, &enforced, window);
    println!(
        "\nlabel-enforcer (never touches the store): {calls:.0} calls/s ({:.2} µs/call)",
        1e6 / calls
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn durable_tier(calls: usize) {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("bench-state").await;
    let config = Config::parse(
        &format!("state: {{namespace: {ns}}}\nlimits: {{deadlineMs: 5000}}\n"),
        "bench",
    )
    .unwrap();
    let runtime = Runtime::start(cluster.client.clone(), config).unwrap();
    println!(
        "\n## durable tier, against {}",
        if cluster.is_real() {
            "INFORMANT_TEST_KUBECONFIG"
        } else {
            "the embedded API server"
        }
    );
    println!("| keys written per call | calls | p50 | p90 | p99 | max | API writes p50 / p99 |");
    println!("|---|---|---|---|---|---|---|");
    for ops in [1usize, 10] {
        let path = plugin_path("counter_bench_durable");
        let plugin = runtime
            .prepare(
                &path,
                plugin_bytes("counter_bench_durable"),
                json!({"ops": ops}),
            )
            .await
            .unwrap();
        let store = plugin.state().unwrap().clone();
        store.loaded().await;
        let cache = runtime.cache().clone();
        let latencies = tokio::task::spawn_blocking(move || {
            let event = event(&cache);
            // Every shard's first write creates its object: not what is measured.
            for _ in 0..64 {
                plugin.handle(&event).unwrap();
            }
            let mut latencies = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = Instant::now();
                plugin.handle(&event).unwrap();
                latencies.push(started.elapsed());
            }
            latencies
        })
        .await
        .unwrap();
        let mut sorted = latencies;
        sorted.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        let mut metrics = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("w", "", store.stats().write_seconds.clone());
        prometheus_client::encoding::text::encode(&mut metrics, &registry).unwrap();
        println!(
            "| {ops} | {calls} | {} | {} | {} | {} | {} |",
            ms(percentile(&sorted, 0.5)),
            ms(percentile(&sorted, 0.9)),
            ms(percentile(&sorted, 0.99)),
            ms(*sorted.last().unwrap()),
            histogram_quantiles(&metrics),
        );
    }
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// p50 / p99 of the store's write histogram, from its buckets' upper bounds.
fn histogram_quantiles(text: &str) -> String {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("w_bucket")) {
        let le = line
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("+Inf");
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        buckets.push((le.parse().unwrap_or(f64::INFINITY), count));
    }
    let total = buckets.last().map_or(0.0, |b| b.1);
    let at = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= total * q)
            .map_or("?".to_string(), |(le, _)| format!("≤ {:.0} ms", le * 1e3))
    };
    format!("{} / {}", at(0.5), at(0.99))
}

fn main() {
    memory_tier(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(durable_tier(500));
}
