//! Initial sync of 10k and 100k ConfigMaps of about 1.3 KB of JSON through
//! one informer: time, peak and steady RSS of this process, cache bytes per
//! object. The API server is the `informant dev` binary in its own process,
//! so its memory does not count.
//!
//! Run with `cargo bench -p informant --bench informer_sync`; figures
//! go into `docs/BENCHMARKS.md`.

// Benchmarks fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use informant::{
    cache::Store,
    informer::{Informer, Notification, Scope},
    vocabulary::KindKey,
};
use informant_k8s::selector::{FieldSelector, LabelSelector};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{ApiResource, PostParams},
};
use serde_json::json;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// About 1,331 bytes of JSON once the server has added its metadata.
fn configmap(i: usize) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": format!("cm-{i:06}"), "labels": {"app": format!("app-{}", i % 10), "tier": "backend"},
                     "annotations": {"example.com/owner": "team-a"}},
        "data": {"config.yaml": "x".repeat(900)},
    }))
    .unwrap()
}

async fn sync(client: &kube::Client, ns: &str) -> (Duration, usize, Arc<Store>) {
    let cache = Arc::new(Store::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let scope = Scope {
        resource: ApiResource::erase::<ConfigMap>(&()),
        namespaced: true,
        namespace: Some(ns.into()),
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    let started = Instant::now();
    let informer = Informer::start(client.clone(), cache.clone(), scope, tx);
    let mut added = 0;
    while let Some(n) = rx.recv().await {
        if let Notification::Snapshot(s) = n {
            added = s.objects.len();
            break;
        }
    }
    let took = started.elapsed();
    informer.stop().await;
    (took, added, cache)
}

#[tokio::main]
async fn main() {
    informant::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let manifests = dir.path().join("empty");
    std::fs::create_dir(&manifests).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args([
            "dev",
            "--server-only",
            "--port",
            "0",
            "--log",
            "warn",
            "--manifests",
        ])
        .arg(&manifests)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();

    println!(
        "informer initial sync (streaming list), server in its own process, HTTP/1.1 loopback"
    );
    for count in [10_000usize, 100_000] {
        let ns = format!("bench-{count}");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        futures::stream::iter(0..count)
            .map(|i| {
                let api = api.clone();
                async move {
                    api.create(&PostParams::default(), &configmap(i))
                        .await
                        .unwrap()
                }
            })
            .buffer_unordered(16)
            .for_each(|_| async {})
            .await;
        let sample = api.get("cm-000000").await.unwrap();
        let mut sample_json = serde_json::to_value(&sample).unwrap();
        sample_json["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let json_bytes = serde_json::to_string(&sample_json).unwrap().len();

        let rss_before = status_kib("VmRSS:");
        let (took, added, cache) = sync(&client, &ns).await;
        let peak = status_kib("VmHWM:");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let steady = status_kib("VmRSS:");
        let stats = cache.kind_stats(&KindKey::new("v1", "ConfigMap"));
        println!(
            "{count:>7} objects ({json_bytes} B JSON each, managedFields stripped): synced {added} in {:.2} s; RSS before {} MiB, peak {} MiB, after {} MiB; cache {:.0} B/object = {:.2}x JSON",
            took.as_secs_f64(),
            rss_before / 1024,
            peak / 1024,
            steady / 1024,
            stats.bytes as f64 / stats.objects.max(1) as f64,
            stats.bytes as f64 / stats.objects.max(1) as f64 / json_bytes as f64,
        );
        drop(cache);
    }
    let _ = server.kill();
    let _ = server.wait();
}
