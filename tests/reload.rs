//! Hot reload end to end: a real plugin directory watched by the host, real
//! compiled plugins dropped in, replaced, broken, written in chunks, swapped
//! through a ConfigMap volume's `..data` symlink, and removed, against the
//! embedded API server (or `INFORMANT_TEST_KUBECONFIG`'s cluster).

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    io::Write,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use informant::{
    action::{Allowlist, Rule},
    config::Config,
    reload::{FileStatus, Reloader},
    runtime::Runtime,
    vocabulary::Verb,
};
use informant_testkit::{LogCapture, TestCluster, create_cm, eventually, plugin_bytes, variant};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Write a file the way `mv` delivers it: complete, in one rename.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Put the sequencer in `dir` with settings confining its reports to `ns`:
/// other tests' hosts on a shared cluster see these objects too.
fn put_sequencer(dir: &Path, ns: &str, bytes: &[u8]) {
    std::fs::write(
        dir.join("sequencer.json"),
        json!({"namespace": ns}).to_string(),
    )
    .unwrap();
    put(dir, "sequencer.wasm", bytes);
}

struct Host {
    runtime: Arc<Runtime>,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Host {
    fn status(&self, file: &str) -> Option<FileStatus> {
        self.reloader
            .statuses()
            .into_iter()
            .find(|s| s.file.file_name().and_then(|n| n.to_str()) == Some(file))
    }

    async fn stop(self) {
        self.stop.cancel();
        self.runtime.shutdown(Duration::from_secs(5)).await;
    }
}

/// A host watching a fresh plugin directory, with writes confined to `ns`.
async fn host(
    cluster: &TestCluster,
    ns: &str,
    prepare: impl FnOnce(&Path),
) -> (Host, std::path::PathBuf) {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    prepare(&plugins);
    let mut config = Config::default();
    let mut confine = informant_testkit::reads_everything();
    confine.push(Rule {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        verbs: vec![Verb::Patch],
        read: false,
        namespaces: Some(vec![ns.to_string()]),
    });
    config.allowlist = Allowlist::new(HashMap::from([
        ("label-enforcer".to_string(), confine.clone()),
        ("hostile".to_string(), confine),
    ]));
    let runtime = Arc::new(Runtime::start(cluster.client.clone(), config).unwrap());
    let stop = CancellationToken::new();
    let reloader = Reloader::start(runtime.clone(), plugins.clone(), stop.clone())
        .await
        .unwrap();
    assert!(reloader.scanned());
    (
        Host {
            runtime,
            reloader,
            stop,
            _dir: dir,
        },
        plugins,
    )
}

async fn label(api: &Api<ConfigMap>, name: &str, key: &str) -> Option<String> {
    api.get(name)
        .await
        .unwrap()
        .metadata
        .labels?
        .get(key)
        .cloned()
}

#[tokio::test]
async fn a_dropped_plugin_handles_the_next_event() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("add").await;
    let (host, dir) = host(&cluster, &ns, |_| {}).await;
    assert!(host.runtime.dispatcher().lanes().is_empty());

    let dropped = Instant::now();
    put(&dir, "label-enforcer.wasm", &plugin_bytes("label_enforcer"));
    let dispatcher = host.runtime.dispatcher().clone();
    eventually("the plugin in service", Duration::from_secs(10), || async {
        dispatcher.lane("label-enforcer")
    })
    .await;
    eprintln!(
        "plugin in service {:?} after the file was complete",
        dropped.elapsed()
    );
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(&api, "next", json!({}), json!({})).await;
    eventually("the label", Duration::from_secs(10), || async {
        label(&api, "next", "owner").await
    })
    .await;
    let status = host.status("label-enforcer.wasm").unwrap();
    assert_eq!((status.loads, status.failures), (1, 0));
    assert_eq!(status.plugin.as_deref(), Some("label-enforcer"));
    host.stop().await;
}

/// Every log line of the test process, for the sequencer's reports.
fn logs() -> LogCapture {
    LogCapture::global("info")
}

#[tokio::test]
async fn a_replacement_under_load_handles_every_event_exactly_once() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("swap").await;
    let original = plugin_bytes("sequencer");
    let (host, dir) = host(&cluster, &ns, |d| put_sequencer(d, &ns, &original)).await;
    // Once the first list is in, "e" comes as a live event: created before,
    // it would be part of that list (as initial).
    eventually(
        "the plugin's watches synced",
        Duration::from_secs(30),
        || async { host.runtime.synced().await.then_some(()) },
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(
        &api,
        "e",
        json!({"informant.test/sequence": "every"}),
        json!({"seq": "0"}),
    )
    .await;

    const UPDATES: u64 = 400;
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for seq in 1..=UPDATES {
                let patch = json!({"data": {"seq": seq.to_string()}});
                api.patch("e", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Replace the plugin twice while the stream runs.
    let lane_digest = || {
        host.runtime
            .dispatcher()
            .lane("sequencer")
            .unwrap()
            .plugin()
            .digest()
            .to_string()
    };
    let first = lane_digest();
    for tag in ["v2", "v3"] {
        tokio::time::sleep(Duration::from_millis(200)).await;
        put(&dir, "sequencer.wasm", &variant(&original, tag));
        let before = lane_digest();
        eventually(
            "the new version in service",
            Duration::from_secs(10),
            || async { (lane_digest() != before).then_some(()) },
        )
        .await;
    }
    assert_ne!(lane_digest(), first);
    writer.await.unwrap();

    let needle = format!("sequence {ns}/e ");
    let live = || -> Vec<u64> {
        logs.text()
            .lines()
            .filter_map(|l| l.split_once(&needle))
            .filter(|(_, rest)| !rest.contains("initial"))
            .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .collect()
    };
    eventually("the last update", Duration::from_secs(20), || async {
        (live().last() == Some(&UPDATES)).then_some(())
    })
    .await;
    let seen = live();
    let expected: Vec<u64> = (0..=UPDATES).collect();
    assert_eq!(
        seen, expected,
        "every update once, in order, across two swaps"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_broken_file_never_replaces_a_running_plugin() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("broken").await;
    let good = plugin_bytes("label_enforcer");
    let (host, dir) = host(&cluster, &ns, |d| put(d, "label-enforcer.wasm", &good)).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let running = host
        .runtime
        .dispatcher()
        .lane("label-enforcer")
        .unwrap()
        .plugin()
        .digest()
        .to_string();

    let other_world = wat::parse_str("(component)").unwrap();
    let broken: [(&str, Vec<u8>, &str); 3] = [
        (
            "garbage",
            b"#!/bin/sh\necho not a plugin\n".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "does not compile",
        ),
        ("another world", other_world, "does not match"),
    ];
    for (i, (what, bytes, reason)) in broken.iter().enumerate() {
        let failures = host.status("label-enforcer.wasm").unwrap().failures;
        put(&dir, "label-enforcer.wasm", bytes);
        let status = eventually(what, Duration::from_secs(10), || async {
            host.status("label-enforcer.wasm")
                .filter(|s| s.failures > failures)
        })
        .await;
        let error = status.error.unwrap();
        assert!(
            error.contains("label-enforcer.wasm") && error.contains(reason),
            "{what}: {error}"
        );
        // The old version still runs and still works.
        assert_eq!(status.digest.as_deref(), Some(running.as_str()));
        let name = format!("during-{i}");
        create_cm(&api, &name, json!({}), json!({})).await;
        eventually(
            "the running version's label",
            Duration::from_secs(10),
            || async { label(&api, &name, "owner").await },
        )
        .await;
    }
    // A good file recovers by itself.
    put(&dir, "label-enforcer.wasm", &variant(&good, "fixed"));
    let status = eventually("the recovery", Duration::from_secs(10), || async {
        host.status("label-enforcer.wasm")
            .filter(|s| s.error.is_none() && s.digest.as_deref() != Some(running.as_str()))
    })
    .await;
    assert_eq!(status.loads, 2);
    host.stop().await;
}

#[tokio::test]
async fn a_file_written_in_chunks_is_loaded_once_complete() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("chunks").await;
    let (host, dir) = host(&cluster, &ns, |_| {}).await;
    let bytes = plugin_bytes("label_enforcer");
    // Like `cp` or `kubectl cp`: the file exists, and grows, chunk by chunk.
    let mut file = std::fs::File::create(dir.join("label-enforcer.wasm")).unwrap();
    for chunk in bytes.chunks(bytes.len() / 5 + 1) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    drop(file);
    let status = eventually("the load", Duration::from_secs(10), || async {
        host.status("label-enforcer.wasm")
            .filter(|s| s.loads > 0 || s.failures > 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = host.status("label-enforcer.wasm").unwrap_or(status);
    assert_eq!((status.loads, status.failures), (1, 0), "{status:?}");
    host.stop().await;
}

#[tokio::test]
async fn a_configmap_volume_swap_is_picked_up() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("volume").await;
    let good = plugin_bytes("label_enforcer");
    // The layout kubelet writes: timestamped directories, `..data` pointing
    // at the current one, and each key a symlink through `..data`.
    let (host, dir) = host(&cluster, &ns, |d| {
        std::fs::create_dir(d.join("..2026_11_23_00_00_00.1")).unwrap();
        std::fs::write(d.join("..2026_11_23_00_00_00.1/label-enforcer.wasm"), &good).unwrap();
        std::os::unix::fs::symlink("..2026_11_23_00_00_00.1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/label-enforcer.wasm", d.join("label-enforcer.wasm"))
            .unwrap();
    })
    .await;
    let first = host.status("label-enforcer.wasm").unwrap().digest.unwrap();

    // An update: a new directory, a new `..data_tmp` link, renamed over `..data`.
    let next = dir.join("..2026_11_23_00_05_00.2");
    std::fs::create_dir(&next).unwrap();
    std::fs::write(next.join("label-enforcer.wasm"), variant(&good, "v2")).unwrap();
    std::fs::write(
        next.join("label-enforcer.yaml"),
        "required:\n  team: volume\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "..data/label-enforcer.yaml",
        dir.join("label-enforcer.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_11_23_00_05_00.2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_11_23_00_00_00.1")).unwrap();

    let status = eventually("the swapped version", Duration::from_secs(10), || async {
        host.status("label-enforcer.wasm")
            .filter(|s| s.digest.as_deref() != Some(first.as_str()))
    })
    .await;
    assert!(status.error.is_none(), "{status:?}");
    // Its settings came with it.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(&api, "after", json!({}), json!({})).await;
    eventually(
        "the new settings' label",
        Duration::from_secs(10),
        || async { label(&api, "after", "team").await },
    )
    .await;
    host.stop().await;
}

#[tokio::test]
async fn removing_the_file_unloads_the_plugin_and_stops_its_watch() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("remove").await;
    let (host, dir) = host(&cluster, &ns, |d| {
        put_sequencer(d, &ns, &plugin_bytes("sequencer"));
    })
    .await;
    let informers = host.runtime.subscriptions().informers().clone();
    let watches = |informers: Arc<informant::informer::SharedInformers>| async move {
        informers
            .statuses()
            .await
            .into_iter()
            .filter(|(k, _, _)| k.labels.contains("informant.test/sequence"))
            .count()
    };
    assert_eq!(watches(informers.clone()).await, 2);
    std::fs::remove_file(dir.join("sequencer.wasm")).unwrap();
    let dispatcher = host.runtime.dispatcher().clone();
    eventually("the plugin to go", Duration::from_secs(10), || async {
        dispatcher.lane("sequencer").is_none().then_some(())
    })
    .await;
    assert_eq!(watches(informers).await, 0, "its watches are released");
    assert!(host.status("sequencer.wasm").is_none());
    host.stop().await;
}

#[tokio::test]
async fn changing_the_settings_runs_init_again() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("settings").await;
    let (host, dir) = host(&cluster, &ns, |d| {
        put(d, "label-enforcer.wasm", &plugin_bytes("label_enforcer"));
        std::fs::write(
            d.join("label-enforcer.json"),
            r#"{"required": {"team": "one"}}"#,
        )
        .unwrap();
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(&api, "first", json!({}), json!({})).await;
    eventually("the first label", Duration::from_secs(10), || async {
        label(&api, "first", "team").await.filter(|v| v == "one")
    })
    .await;
    let lane = host.runtime.dispatcher().lane("label-enforcer").unwrap();
    let handled = lane.stats().counts().handled;

    put(
        &dir,
        "label-enforcer.json",
        br#"{"required": {"team": "one", "tier": "two"}}"#,
    );
    // The new settings apply to what exists (the initial sync) and to what comes.
    eventually(
        "the new label on the old object",
        Duration::from_secs(10),
        || async { label(&api, "first", "tier").await },
    )
    .await;
    assert!(lane.stats().counts().handled > handled);
    // Bad settings keep the running version.
    put(&dir, "label-enforcer.json", b"{not json");
    let status = eventually("the settings error", Duration::from_secs(10), || async {
        host.status("label-enforcer.wasm")
            .filter(|s| s.error.is_some())
    })
    .await;
    assert!(status.error.unwrap().contains("label-enforcer.json"));
    create_cm(&api, "second", json!({}), json!({})).await;
    eventually(
        "the running version's labels",
        Duration::from_secs(10),
        || async { label(&api, "second", "tier").await },
    )
    .await;
    host.stop().await;
}

#[tokio::test]
async fn a_new_version_with_other_watches_gets_a_lane_of_its_own() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wide").await;
    let (host, dir) = host(&cluster, &ns, |d| {
        put_sequencer(d, &ns, &plugin_bytes("sequencer"));
    })
    .await;
    let dispatcher = host.runtime.dispatcher().clone();
    let first = dispatcher.lane("sequencer").unwrap();
    assert_eq!(first.plugin().manifest().subscriptions.len(), 2);

    put(&dir, "sequencer.wasm", &plugin_bytes("sequencer_wide"));
    let lane = eventually(
        "the new version in service",
        Duration::from_secs(10),
        || async {
            dispatcher
                .lane("sequencer")
                .filter(|l| l.plugin().manifest().subscriptions.len() == 3)
        },
    )
    .await;
    assert!(!Arc::ptr_eq(&first, &lane), "other watches, another lane");
    // The new subscription works, and so do the old ones.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(
        &api,
        "w",
        json!({"informant.test/sequence": "wide"}),
        json!({"seq": "5"}),
    )
    .await;
    create_cm(
        &api,
        "e",
        json!({"informant.test/sequence": "every"}),
        json!({"seq": "6"}),
    )
    .await;
    for needle in [
        format!("sequence {ns}/w 5 wide"),
        format!("sequence {ns}/e 6 every"),
    ] {
        eventually(&needle, Duration::from_secs(10), || async {
            logs.text().contains(&needle).then_some(())
        })
        .await;
    }
    // One watch per selector: the old lane's watches were released, not doubled.
    let watches = host.runtime.subscriptions().informers().statuses().await;
    let ours: Vec<_> = watches
        .iter()
        .filter(|(k, _, _)| k.labels.contains("informant.test/sequence"))
        .map(|(k, _, subscribers)| (k.labels.clone(), *subscribers))
        .collect();
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(ours.iter().all(|(_, n)| *n == 1), "{ours:?}");
    host.stop().await;
}
