//! Hot reload: from a plugin file being complete to its new version handling
//! an event, warm (compiled before) and cold; the cold compile of a 2 MiB
//! component; and the event throughput of another plugin while a large
//! component compiles.
//!
//! Run with `cargo bench -p informant --bench reload`; figures go
//! into `docs/BENCHMARKS.md`.

// Benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    fmt::Write as _,
    path::Path,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use informant::{config::Config, plugin::Engine, reload::Reloader, runtime::Runtime};
use informant_apiserver::{self as dev, ApiServer};
use informant_testkit::{LogCapture, SyntheticLoad, plugin_bytes, variant};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// A component of about `size` bytes of code shaped like compiled Rust:
/// a few thousand functions of a few hundred bytes, with locals, branches
/// and a loop; `seed` makes the bytes unique.
fn big_component(size: usize, seed: u32) -> Vec<u8> {
    let functions = size / 800;
    let mut wat = String::from("(component (core module (memory 1)\n");
    for i in 0..functions {
        let _ = write!(
            wat,
            "(func (export \"f{i}\") (param i32) (result i32) (local i32 i32) (loop $l "
        );
        for k in 0..24u32 {
            let _ = write!(
                wat,
                "local.get 0 i32.const {} i32.add local.tee 1 i32.const {} i32.and (if (then local.get 1 i32.load offset={} local.set 2)) local.get 2 local.get 1 i32.xor local.set 0 ",
                seed.wrapping_add(i as u32 * 31 + k),
                k + 1,
                (k * 4) % 64
            );
        }
        let _ = writeln!(
            wat,
            "local.get 0 i32.const 1000 i32.lt_u br_if $l) local.get 0)"
        );
    }
    wat.push_str("))");
    wat::parse_str(&wat).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
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
    let server = ApiServer::start(dev::Config::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let runtime = Arc::new(Runtime::start(client.clone(), Config::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let original = plugin_bytes("sequencer");
    put(dir.path(), "sequencer.wasm", &original);
    put(
        dir.path(),
        "label-enforcer.wasm",
        &plugin_bytes("label_enforcer"),
    );
    let stop = CancellationToken::new();
    let _reloader = Reloader::start(runtime.clone(), dir.path().to_path_buf(), stop.clone())
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "probe", "labels": {"informant.test/sequence": "every"}}, "data": {"seq": "7"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // From the rename that completes the file to the new version's first
    // call (its initial sync of the probe object).
    let reload = |bytes: Vec<u8>| {
        let capture = capture.clone();
        let dir = dir.path().to_path_buf();
        async move {
            capture.clear();
            let started = Instant::now();
            put(&dir, "sequencer.wasm", &bytes);
            loop {
                let seen = capture.lines().iter().find_map(|(at, line)| {
                    line.contains("sequence default/probe 7 every initial")
                        .then_some(*at)
                });
                if let Some(at) = seen {
                    return at.duration_since(started);
                }
                assert!(started.elapsed() < Duration::from_secs(30), "no reload");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
    };
    let mut cold = Vec::new();
    for i in 0..8 {
        cold.push(reload(variant(&original, &format!("cold-{i}"))).await);
    }
    // The same bytes again: compiled already, in memory.
    let mut warm = Vec::new();
    for i in 0..8 {
        warm.push(reload(variant(&original, &format!("cold-{}", i % 2))).await);
    }
    println!(
        "reload of the {} KiB sequencer, file complete -> new version handling an event: cold median {:.0} ms (min {:.0}), warm median {:.0} ms (min {:.0})",
        original.len() / 1024,
        median(cold.clone()).as_secs_f64() * 1e3,
        cold.iter().min().unwrap().as_secs_f64() * 1e3,
        median(warm.clone()).as_secs_f64() * 1e3,
        warm.iter().min().unwrap().as_secs_f64() * 1e3
    );

    // Cold compile of a 2 MiB component.
    let engine = Engine::new(None).unwrap();
    let mut compiles = Vec::new();
    let mut size = 0;
    for seed in 0..3 {
        let big = big_component(2 << 20, seed * 1_000_003);
        size = big.len();
        let started = Instant::now();
        engine.compile(&big).unwrap();
        compiles.push(started.elapsed());
    }
    println!(
        "cold compile of a {:.1} MiB component: median {:.2} s",
        size as f64 / (1 << 20) as f64,
        median(compiles).as_secs_f64()
    );

    // Another plugin's throughput, alone and while large components compile.
    let lane = runtime.dispatcher().lane("label-enforcer").unwrap();
    let load = Arc::new(SyntheticLoad::new(1000, 0));
    let throughput = |window: Duration| {
        let lane = lane.clone();
        let load = load.clone();
        async move {
            let before = lane.stats().counts().handled;
            let started = Instant::now();
            let mut i = 0usize;
            while started.elapsed() < window {
                for _ in 0..500 {
                    load.push(&lane, i);
                    i += 1;
                }
                while lane.status().pending > 2000 {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                }
            }
            let handled = lane.stats().counts().handled - before;
            handled as f64 / started.elapsed().as_secs_f64()
        }
    };
    let alone = throughput(Duration::from_secs(3)).await;
    let compiling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let compiler = {
        let compiling = compiling.clone();
        let engine = engine.clone();
        std::thread::spawn(move || {
            let mut seed = 77;
            let mut n = 0;
            while compiling.load(Ordering::Relaxed) {
                seed += 1;
                engine
                    .compile(&big_component(2 << 20, seed * 7919))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let during = throughput(Duration::from_secs(3)).await;
    compiling.store(false, Ordering::Relaxed);
    let compiled = compiler.join().unwrap();
    println!(
        "label-enforcer events/s: {alone:.0} alone, {during:.0} while 2 MiB components compile ({compiled} compiled), {:+.0}%",
        (during / alone - 1.0) * 100.0
    );
    stop.cancel();
    runtime.shutdown(Duration::from_secs(2)).await;
    server.shutdown().await;
}
