//! Dispatch and actions: events/s through the in-process dispatch path into
//! a real plugin, events/s from the embedded server's watch stream through
//! dispatch, update-to-plugin-call latency at 500 updates/s, and actions/s
//! executed against the embedded server.
//!
//! Run with `cargo bench -p informant --bench dispatch`; figures go
//! into `docs/BENCHMARKS.md`.

// Benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use informant::{
    action::{Action, ActionQueue, Allowlist, Executor, QueueConfig},
    config::Config,
    runtime::Runtime,
    vocabulary::ObjectRef,
};
use informant_apiserver::{self as dev, ApiServer};
use informant_testkit::{LogCapture, SyntheticLoad, plugin_path};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn wait_handled(runtime: &Runtime, plugin: &str, n: u64) {
    let lane = runtime.dispatcher().lane(plugin).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lane.stats().counts().handled < n {
        let s = lane.stats();
        assert!(
            Instant::now() < deadline,
            "{plugin}: {} of {n} handled after 60 s (received {}, failed {}, coalesced {}, merged {}; {:?})",
            s.counts().handled,
            s.counts().received,
            s.counts().failed,
            s.counts().coalesced,
            s.counts().merged,
            lane.status(),
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn main() {
    informant::tls::install_crypto_provider();
    let capture = LogCapture::global("warn,informant::plugin=info");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(capture));
}

async fn run(capture: LogCapture) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let server = ApiServer::start(dev::Config::default().history(100_000))
        .await
        .unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let runtime = Runtime::start(client.clone(), Config::default()).unwrap();
    runtime
        .load_file(&plugin_path("label_enforcer"))
        .await
        .unwrap();
    runtime.load_file(&plugin_path("sequencer")).await.unwrap();
    while !runtime.synced().await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 1. The in-process dispatch path: events pushed into a lane as the
    // informers push them, 1,000 objects, every one handled by the
    // label-enforcer (labelled already, so no action).
    const EVENTS: u64 = 200_000;
    let lane = runtime.dispatcher().lane("label-enforcer").unwrap();
    let load = SyntheticLoad::new(1000, 900);
    let before = lane.stats().counts().handled;
    let started = Instant::now();
    for i in 0..EVENTS {
        load.push(&lane, i as usize);
        // Stay under the queue bound: this measures calls, not merging.
        if i % 5000 == 4999 {
            while lane.status().pending > 5000 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    }
    wait_handled(&runtime, "label-enforcer", before + EVENTS).await;
    let elapsed = started.elapsed();
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "in-process dispatch: {EVENTS} events in {:.2} s = {:.0} events/s on {cores} cores ({:.0}/s per core), {} merged",
        elapsed.as_secs_f64(),
        rate,
        rate / cores as f64,
        lane.stats().counts().merged
    );

    // 2. From the server's watch stream through dispatch: 5,000 updates of
    // every-event objects, as fast as 16 writers get them in.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    const OBJECTS: usize = 50;
    for i in 0..OBJECTS {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("e-{i}"),
            "labels": {"informant.test/sequence": "every", "owner": "me"}}, "data": {"seq": "0"}}))
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    const UPDATES: usize = 5_000;
    wait_handled(&runtime, "sequencer", OBJECTS as u64).await;
    let base = runtime
        .dispatcher()
        .lane("sequencer")
        .unwrap()
        .stats()
        .counts()
        .handled;
    let started = Instant::now();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                for u in (w..UPDATES).step_by(16) {
                    let name = format!("e-{}", u % OBJECTS);
                    let patch = json!({"data": {"seq": (u + 1).to_string()}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let written = started.elapsed();
    wait_handled(&runtime, "sequencer", base + UPDATES as u64).await;
    let elapsed = started.elapsed();
    println!(
        "watch stream -> dispatch -> plugin: {UPDATES} updates written in {:.2} s, all handled after {:.2} s = {:.0} events/s end to end",
        written.as_secs_f64(),
        elapsed.as_secs_f64(),
        UPDATES as f64 / elapsed.as_secs_f64()
    );

    // 3. Latency at 500 updates/s: from sending the update to the plugin's
    // report of it (server write, watch, informer, cache, dispatch, call).
    const PACED: usize = 2_500;
    capture.clear();
    let mut sent = Vec::with_capacity(PACED);
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    let mut pending = Vec::new();
    for u in 0..PACED {
        ticker.tick().await;
        let api = api.clone();
        let seq = 1_000_000 + u;
        sent.push(Instant::now());
        pending.push(tokio::spawn(async move {
            let patch = json!({"data": {"seq": seq.to_string()}});
            api.patch(
                &format!("e-{}", u % OBJECTS),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
        }));
    }
    for p in pending {
        p.await.unwrap();
    }
    wait_handled(&runtime, "sequencer", base + (UPDATES + PACED) as u64).await;
    let lines = capture.lines();
    let mut latencies: Vec<Duration> = lines
        .iter()
        .filter_map(|(at, line)| {
            let rest = line.split_once("sequence default/e-")?.1;
            let seq: usize = rest.split_whitespace().nth(1)?.parse().ok()?;
            let u = seq.checked_sub(1_000_000)?;
            Some(at.duration_since(sent[u]))
        })
        .collect();
    latencies.sort();
    println!(
        "update -> plugin call at 500 updates/s: {} samples, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    let manifest = lane.plugin().manifest().clone();
    runtime.shutdown(Duration::from_secs(5)).await;

    // 4. Actions/s: merge patches on 2,000 ConfigMaps through the queue
    // (rate limit lifted, 8 workers).
    const ACTIONS: usize = 2_000;
    for i in 0..ACTIONS {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("a-{i}")}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let executor = Executor::new(client.clone(), false, "bench");
    let queue = ActionQueue::start(
        executor,
        Allowlist::default(),
        QueueConfig::default().rate(1_000_000, 1_000_000),
    );
    let actions: Vec<Action> = (0..ACTIONS)
        .map(|i| Action::MergePatch {
            target: ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("default".into()),
                name: format!("a-{i}"),
            },
            patch: json!({"metadata": {"labels": {"owner": "bench"}}}).into(),
        })
        .collect();
    let started = Instant::now();
    queue.submit(&manifest.name, actions);
    assert!(queue.wait_idle(Duration::from_secs(120)).await);
    let elapsed = started.elapsed();
    println!(
        "actions: {ACTIONS} merge patches in {:.2} s = {:.0} actions/s ({} applied)",
        elapsed.as_secs_f64(),
        ACTIONS as f64 / elapsed.as_secs_f64(),
        queue.stats().counts().applied
    );
    queue.shutdown(Duration::from_secs(1)).await;
    server.shutdown().await;
}
