//! Delivery at production sizes, end to end: every object reaches every
//! plugin subscribed to it, however many there are and however slow the
//! plugin is, with the host's memory bounded by objects, not events; and
//! plugins built against the previous contract keep working.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use informant::{
    action::{Allowlist, Rule},
    config::Config,
    runtime::Runtime,
    vocabulary::Verb,
};
use informant_testkit::{LogCapture, TestCluster, create_cm, eventually, plugin_path, widgets};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

/// Held by the tests that use the Widget CRD, one at a time: the one that
/// created it deletes it when done (on a real cluster), under the other.
static WIDGET_CRD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn logs() -> LogCapture {
    LogCapture::global("info")
}

/// Plugins that may write nothing at all, anywhere.
fn read_only() -> Config {
    let none = [
        "reader",
        "reader-latest",
        "reader-single",
        "reader-labels",
        "sequencer",
    ]
    .into_iter()
    .map(|p| (p.to_string(), informant_testkit::reads_everything()))
    .collect::<HashMap<_, _>>();
    Config {
        allowlist: Allowlist::new(none),
        ..Config::default()
    }
}

async fn load(runtime: &Runtime, name: &str, settings: serde_json::Value) {
    let path = plugin_path(name);
    let bytes = std::fs::read(&path).unwrap();
    runtime.load_bytes(&path, bytes, settings).await.unwrap();
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The initial list is never shed, however large: 200,000 Widgets (20,000
/// on a real cluster, where creating them takes the time) reach an
/// every-event plugin and a latest-state one, each as `added`, then
/// `synced`; the lanes queue no copy of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_of_a_large_initial_list_reaches_every_plugin() {
    let _crd = WIDGET_CRD.lock().await;
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("scale").await;
    if widgets::ensure_crd(&cluster.client).await {
        cluster.track("crd", "widgets.bench.informant.dev");
    }
    let n = if cluster.is_real() { 20_000 } else { 200_000 };
    let seeding = Instant::now();
    widgets::seed(&cluster.client, cluster.server.as_ref(), &ns, n).await;
    // Every Widget of the cluster, this test's and any others.
    let total = widgets::count_all(&cluster.client).await;
    assert!(total >= n);
    eprintln!(
        "{n} Widgets seeded in {:?}; {total} in the cluster",
        seeding.elapsed()
    );

    let before = resident_mib();
    let runtime = Runtime::start(cluster.client.clone(), read_only()).unwrap();
    let started = Instant::now();
    // Every-event on one instance (so its own count is the plugin's), and
    // latest-state on one per core.
    load(&runtime, "reader_single", json!(null)).await;
    load(&runtime, "reader_latest", json!(null)).await;
    let dispatcher = runtime.dispatcher().clone();
    for name in ["reader-single", "reader-latest"] {
        let lane = dispatcher.lane(name).unwrap();
        eventually(
            &format!("{name} to handle every Widget"),
            Duration::from_secs(600),
            || async { (lane.stats().counts().handled > total as u64).then_some(()) },
        )
        .await;
        let stats = lane.stats();
        // Every Widget once, then synced: nothing lost, nothing twice.
        assert_eq!(stats.counts().handled, total as u64 + 1, "{name}");
        assert_eq!(stats.counts().failed, 0, "{name}");
        assert_eq!(stats.counts().merged, 0, "{name}");
        let status = lane.status();
        // The list went through a cursor: no event was queued for it.
        assert_eq!(status.peak_pending, 0, "{name}: {status:?}");
        assert_eq!(status.pending, 0, "{name}: {status:?}");
    }
    let took = started.elapsed();
    let single = dispatcher.lane("reader-single").unwrap().status();
    assert_eq!(single.concurrency, 1);
    let needle = format!("reader reader-single synced: {total} objects in this instance, 0 merged");
    eventually(
        "the one instance's own count",
        Duration::from_secs(10),
        || async { logs.text().contains(&needle).then_some(()) },
    )
    .await;
    let cached = runtime.cache().stats();
    eprintln!(
        "{total} Widgets to two plugins in {took:?}; cache {} objects, {:.0} MiB; RSS {before:.0} -> {:.0} MiB",
        cached.objects,
        cached.bytes as f64 / 1048576.0,
        resident_mib()
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A list is handed to a plugin while it still streams in, and through the
/// cache the plugin reads exactly what it has been handed of it: never an
/// object still to come, always the one in hand. Its one instance lists the
/// Widgets of the namespace on every initial `added`: the first sees only
/// itself, the last sees them all, and none ever shows one not handed yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_through_the_cache_only_what_it_has_been_handed_of_a_streaming_list() {
    let _crd = WIDGET_CRD.lock().await;
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("handed").await;
    if widgets::ensure_crd(&cluster.client).await {
        cluster.track("crd", "widgets.bench.informant.dev");
    }
    let n = if cluster.is_real() { 300 } else { 1_000 };
    widgets::seed(&cluster.client, cluster.server.as_ref(), &ns, n).await;
    let total = widgets::count_all(&cluster.client).await;

    let runtime = Runtime::start(cluster.client.clone(), read_only()).unwrap();
    load(&runtime, "reader_single", json!({"checkCacheIn": ns})).await;
    let lane = runtime.dispatcher().lane("reader-single").unwrap();
    eventually(
        "reader-single to handle every Widget",
        Duration::from_secs(300),
        || async { (lane.stats().counts().handled > total as u64).then_some(()) },
    )
    .await;
    assert_eq!(lane.stats().counts().failed, 0);
    let needle = format!(
        "reader reader-single cache: 0 not handed yet, 0 own objects missing, lists showed 1 to {n}"
    );
    eventually("the plugin's report", Duration::from_secs(10), || async {
        logs.text().contains(&needle).then_some(())
    })
    .await;
    // Once synced, the cache holds the whole list.
    let kind = informant::vocabulary::KindKey::new("bench.informant.dev/v1", "Widget");
    assert_eq!(runtime.cache().kind_stats(&kind).objects, total);
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A plugin that declares it reads labels only is handed, and reads
/// through the cache, Widgets with their labels and metadata only, and says
/// so, and the cache keeps no more of them. A plugin loaded next that
/// declares nothing makes the host list the kind again, whole, before its
/// first event, and the first plugin gets no event from that. Once it is
/// gone, what the cache takes is projected again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_declares_its_fields_is_kept_only_those() {
    let _crd = WIDGET_CRD.lock().await;
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("fields").await;
    if widgets::ensure_crd(&cluster.client).await {
        cluster.track("crd", "widgets.bench.informant.dev");
    }
    widgets::seed(&cluster.client, cluster.server.as_ref(), &ns, 40).await;
    let total = widgets::count_all(&cluster.client).await;
    let kind = informant::vocabulary::KindKey::new("bench.informant.dev/v1", "Widget");
    let first = informant::vocabulary::ObjectKey::new(Some(&ns), "w-000000");

    let runtime = Runtime::start(cluster.client.clone(), read_only()).unwrap();
    load(&runtime, "reader_labels", json!(null)).await;
    let labels = runtime.dispatcher().lane("reader-labels").unwrap();
    eventually(
        "reader-labels to handle every Widget",
        Duration::from_secs(120),
        || async { (labels.stats().counts().handled > total as u64).then_some(()) },
    )
    .await;
    let needle = format!(
        "reader reader-labels kept: handed {total} projected, 0 whole; cache {total} projected, 0 whole"
    );
    eventually("reader-labels' report", Duration::from_secs(10), || async {
        logs.text().contains(&needle).then_some(())
    })
    .await;
    let cached = runtime.cache().get(&kind, &first).unwrap().to_value();
    assert_eq!(
        cached,
        json!({"apiVersion": "bench.informant.dev/v1", "kind": "Widget",
               "metadata": {"name": "w-000000", "namespace": ns,
                            "uid": cached["metadata"]["uid"],
                            "resourceVersion": cached["metadata"]["resourceVersion"],
                            "labels": {"app": "bench", "shard": "0"},
                            "annotations": {"informant.dev/projection": "metadata.labels"}}})
    );
    let projected = runtime.cache().kind_stats(&kind);

    // One that declares nothing: listed again, whole, before its first event.
    load(&runtime, "reader", json!(null)).await;
    let whole = runtime.dispatcher().lane("reader").unwrap();
    eventually(
        "reader to handle every Widget",
        Duration::from_secs(120),
        || async { (whole.stats().counts().handled > total as u64).then_some(()) },
    )
    .await;
    let cached = runtime.cache().get(&kind, &first).unwrap().to_value();
    assert_eq!(cached["spec"], widgets::widget(0)["spec"]);
    assert!(cached["metadata"].get("annotations").is_none(), "{cached}");
    let kept = runtime.cache().kind_stats(&kind);
    assert_eq!(kept.objects, projected.objects);
    assert!(
        kept.bytes > 3 * projected.bytes,
        "whole {kept:?}, projected {projected:?}"
    );
    assert_eq!(labels.stats().counts().handled, total as u64 + 1);
    assert!(
        logs.text()
            .contains("a subscriber needs more of this kind than the cache holds")
    );

    // Once it is gone, what comes is kept projected again.
    assert!(runtime.dispatcher().remove("reader").await);
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &ns, &widgets::resource());
    let patch = |body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.patch("w-000000", &PatchParams::default(), &Patch::Merge(body))
                .await
                .unwrap();
        }
    };
    patch(json!({"metadata": {"labels": {"touched": "yes"}}})).await;
    let cached = eventually("the touched Widget", Duration::from_secs(30), || async {
        let o = runtime.cache().get(&kind, &first)?.to_value();
        (o["metadata"]["labels"]["touched"] == "yes").then_some(o)
    })
    .await;
    assert!(cached.get("spec").is_none(), "{cached}");
    let handed = total as u64 + 2;
    eventually(
        "the label's change handed over",
        Duration::from_secs(30),
        || async { (labels.stats().counts().handled == handed).then_some(()) },
    )
    .await;

    // A change it cannot see (the spec) is not handed to it, though the
    // cache takes the new version; the next change it can see is.
    let version = |o: &serde_json::Value| o["metadata"]["resourceVersion"].clone();
    let before = version(&cached);
    patch(json!({"spec": {"size": 7}})).await;
    eventually(
        "the new version in the cache",
        Duration::from_secs(30),
        || async {
            (version(&runtime.cache().get(&kind, &first)?.to_value()) != before).then_some(())
        },
    )
    .await;
    patch(json!({"metadata": {"labels": {"touched": "again"}}})).await;
    eventually(
        "the second label's change handed over",
        Duration::from_secs(30),
        || async { (labels.stats().counts().handled > handed).then_some(()) },
    )
    .await;
    assert!(labels.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(
        labels.stats().counts().handled,
        handed + 1,
        "the spec's change was handed to a plugin that reads labels only"
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// The sequence numbers and merge counts the sequencer reported for
/// `ns/name`, in order.
fn reported(logs: &LogCapture, ns: &str, name: &str) -> Vec<(u64, u64)> {
    let needle = format!("sequence {ns}/{name} ");
    logs.text()
        .lines()
        .filter_map(|l| l.split_once(&needle))
        .filter_map(|(_, rest)| {
            let mut words = rest.split_whitespace();
            let seq = words.next()?.parse().ok()?;
            let merged = words
                .find_map(|w| w.strip_prefix("merged="))
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            Some((seq, merged))
        })
        .collect()
}

/// A plugin slower than the cluster, on every-event, with a small bound:
/// its objects' pending events merge into their newest state, it is told
/// how many each time, and the last state of every object arrives; every
/// event is either delivered or counted into one that is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_slower_than_the_cluster_gets_merged_events_and_every_final_state() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("merge").await;
    let mut config = read_only();
    config.dispatch = config.dispatch.queue_capacity(5).concurrency(1);
    let runtime = Runtime::start(cluster.client.clone(), config).unwrap();
    // A few milliseconds of work per call.
    load(
        &runtime,
        "sequencer",
        json!({"namespace": ns, "work": 10_000_000}),
    )
    .await;
    eventually(
        "the subscriptions to sync",
        Duration::from_secs(20),
        || async { runtime.synced().await.then_some(()) },
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    const OBJECTS: usize = 5;
    const UPDATES: u64 = 200;
    for i in 0..OBJECTS {
        create_cm(
            &api,
            &format!("m-{i}"),
            json!({"informant.test/sequence": "every"}),
            json!({"seq": "0"}),
        )
        .await;
    }
    let writers: Vec<_> = (0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                for seq in 1..=UPDATES {
                    let patch = json!({"data": {"seq": seq.to_string()}});
                    api.patch(
                        &format!("m-{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    for i in 0..OBJECTS {
        let name = format!("m-{i}");
        eventually("the final state", Duration::from_secs(60), || async {
            (reported(&logs, &ns, &name).last().map(|r| r.0) == Some(UPDATES)).then_some(())
        })
        .await;
    }
    let mut merged_total = 0;
    for i in 0..OBJECTS {
        let seen = reported(&logs, &ns, &format!("m-{i}"));
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "m-{i}: order violated: {seen:?}"
        );
        // Each event delivered, or merged into one delivered: the created
        // state and every update, no more, no less.
        let accounted: u64 = seen.iter().map(|(_, merged)| 1 + merged).sum();
        assert_eq!(accounted, UPDATES + 1, "m-{i}: {seen:?}");
        merged_total += seen.iter().map(|(_, m)| m).sum::<u64>();
    }
    let lane = runtime.dispatcher().lane("sequencer").unwrap();
    assert!(
        merged_total > 0,
        "the plugin was never behind: nothing to show"
    );
    assert_eq!(lane.stats().counts().merged, merged_total);
    eprintln!(
        "{} events, {} delivered, {merged_total} merged; peak pending {}",
        OBJECTS as u64 * (UPDATES + 1),
        OBJECTS as u64 * (UPDATES + 1) - merged_total,
        lane.status().peak_pending
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// Plugins built against informant:plugin@0.1.0 and 0.2.0 load and run
/// unchanged beside 0.3.0 ones.
#[tokio::test]
async fn plugins_built_against_previous_contracts_still_run() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("legacy").await;
    let patch_here = || {
        [
            informant_testkit::reads_everything(),
            vec![Rule {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                verbs: vec![Verb::Patch],
                read: false,
                namespaces: Some(vec![ns.clone()]),
            }],
        ]
        .concat()
    };
    let config = Config {
        allowlist: Allowlist::new(HashMap::from([
            ("legacy".to_string(), patch_here()),
            ("legacy-v2".to_string(), patch_here()),
        ])),
        ..Config::default()
    };
    let runtime = Runtime::start(cluster.client.clone(), config).unwrap();
    let v1 = runtime.load_file(&plugin_path("legacy")).await.unwrap();
    assert_eq!(v1.plugin().contract_version(), "0.1.0");
    let v2 = runtime.load_file(&plugin_path("legacy_v2")).await.unwrap();
    assert_eq!(v2.plugin().contract_version(), "0.2.0");
    assert!(!v2.plugin().serves_admission());
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(
        &api,
        "old",
        json!({"informant.test/legacy": "yes"}),
        json!({}),
    )
    .await;
    for label in ["legacy-seen", "legacy-v2-seen"] {
        eventually(
            &format!("the {label} label"),
            Duration::from_secs(20),
            || async {
                let cm = api.get("old").await.unwrap();
                cm.metadata.labels?.get(label).cloned()
            },
        )
        .await;
    }
    assert!(logs.text().contains("legacy saw old added"));
    assert!(logs.text().contains("legacy-v2 saw old added"));
    runtime.shutdown(Duration::from_secs(5)).await;
}
