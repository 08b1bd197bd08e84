//! Throughput of the embedded API server over real HTTP with the kube client:
//! creates/s and lists of 10k ConfigMaps, and watch events/s to one watcher.
//!
//! Run with `cargo bench -p informant --bench apiserver`; figures go
//! into `docs/BENCHMARKS.md`.

// Benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use informant_apiserver::{ApiServer, Config};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, PostParams, WatchEvent, WatchParams},
};
use serde_json::json;

const OBJECTS: usize = 10_000;
const CONCURRENCY: usize = 16;

fn configmap(i: usize) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": format!("cm-{i:05}"), "labels": {"app": format!("app-{}", i % 10)}},
        "data": {"payload": "x".repeat(700)},
    }))
    .unwrap()
}

#[tokio::main]
async fn main() {
    informant::tls::install_crypto_provider();
    let server = ApiServer::start(Config::default().history(50_000))
        .await
        .unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Watch everything from now on, counting events until all creates are seen.
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let watcher = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut stream = api
                .watch(&WatchParams::default().timeout(600), &rv)
                .await
                .unwrap()
                .boxed();
            let mut seen = 0usize;
            let mut first = None;
            while let Some(event) = stream.try_next().await.unwrap() {
                if let WatchEvent::Added(_) = event {
                    first.get_or_insert_with(Instant::now);
                    seen += 1;
                    if seen == OBJECTS {
                        break;
                    }
                }
            }
            first.map(|f| f.elapsed())
        })
    };

    let started = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &configmap(i))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| async {})
        .await;
    let create = started.elapsed();
    let watch = watcher.await.unwrap().unwrap();

    let started = Instant::now();
    let lists = 20;
    for _ in 0..lists {
        let all = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(all.items.len(), OBJECTS);
    }
    let list = started.elapsed() / lists;

    let started = Instant::now();
    let mut pages = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => break,
        }
    }
    let paged = started.elapsed();

    println!(
        "embedded API server, kube client over HTTP/1.1 on loopback, {OBJECTS} ConfigMaps of ~1 KiB"
    );
    println!(
        "create: {:.0} creates/s ({CONCURRENCY} concurrent clients, {:.2} s total)",
        OBJECTS as f64 / create.as_secs_f64(),
        create.as_secs_f64()
    );
    println!(
        "list all {OBJECTS} in one response: {:.1} ms/list ({:.0} objects/s)",
        list.as_secs_f64() * 1e3,
        OBJECTS as f64 / list.as_secs_f64()
    );
    println!(
        "list all in pages of 500: {pages} pages in {:.1} ms",
        paged.as_secs_f64() * 1e3
    );
    println!(
        "watch: {OBJECTS} ADDED events to one watcher in {:.2} s = {:.0} events/s (bounded by the create rate)",
        watch.as_secs_f64(),
        OBJECTS as f64 / watch.as_secs_f64()
    );

    // Watch replay throughput: a watch from the start replays the history as fast as it can.
    let started = Instant::now();
    let replayed: Vec<_> = api
        .watch(&WatchParams::default().timeout(2), "1")
        .await
        .unwrap()
        .take(OBJECTS)
        .try_collect()
        .await
        .unwrap();
    let replay = started.elapsed();
    println!(
        "watch from an old resourceVersion: {} events replayed in {:.2} s = {:.0} events/s",
        replayed.len(),
        replay.as_secs_f64(),
        replayed.len() as f64 / replay.as_secs_f64()
    );
    server.shutdown().await;
}
