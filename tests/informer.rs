//! One informer against the embedded API server: initial sync, live events,
//! resume after a dropped watch without relisting, and the relist diff after
//! a 410.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use informant::transport::Transport;
use informant::{
    cache::Store,
    informer::{Informer, Notification, Purpose, Scope},
    vocabulary::{EventType, KindKey, ObjectKey},
};
use informant_k8s::selector::{FieldSelector, LabelSelector};
use informant_testkit::{Gate, LogCapture, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::sync::mpsc;

/// The label every object these tests create carries: a real cluster adds
/// objects of its own to every namespace (the `kube-root-ca.crt`
/// ConfigMap), and the tests watch only what they created.
const OWN: &str = "informant.test/own";

/// The ConfigMaps of `ns` that this test created, narrowed by `labels`.
fn scope(ns: &str, labels: &str) -> Scope {
    let selector = if labels.is_empty() {
        OWN.to_string()
    } else {
        format!("{OWN},{labels}")
    };
    Scope {
        resource: ApiResource::erase::<ConfigMap>(&()),
        namespaced: true,
        namespace: Some(ns.into()),
        labels: LabelSelector::parse(&selector).unwrap(),
        fields: FieldSelector::default(),
    }
}

fn cm(name: &str, mut labels: serde_json::Value) -> ConfigMap {
    labels[OWN] = json!("yes");
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

/// A subscriber's channel, read as the events a plugin would get from it: a
/// snapshot's objects as `added` (initial) then `synced`, or as `resync`.
struct Events {
    rx: mpsc::Receiver<Notification>,
    buffered: std::collections::VecDeque<(EventType, String, bool, bool)>,
}

/// A channel for a subscriber, and its events.
fn channel(capacity: usize) -> (mpsc::Sender<Notification>, Events) {
    let (tx, rx) = mpsc::channel(capacity);
    let events = Events {
        rx,
        buffered: std::collections::VecDeque::new(),
    };
    (tx, events)
}

/// The name an object's JSON gives, checked against its key.
fn name_of(key: &ObjectKey, object: &informant::cache::CachedObject) -> String {
    let name = object.to_value()["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(key.to_string().ends_with(&name), "{key} names {name}");
    name
}

impl Events {
    fn expand(&mut self, n: Notification) {
        match n {
            Notification::Change(c) => self.buffered.push_back((
                c.event_type,
                name_of(&c.key, &c.object),
                false,
                c.final_state_unknown,
            )),
            Notification::Snapshot(s) => {
                let (event_type, initial) = match s.purpose {
                    Purpose::Initial => (EventType::Added, true),
                    Purpose::Resync => (EventType::Resync, false),
                };
                for (key, object) in s.objects.iter() {
                    self.buffered
                        .push_back((event_type, name_of(key, object), initial, false));
                }
                if s.purpose == Purpose::Initial {
                    self.buffered
                        .push_back((EventType::Synced, String::new(), false, false));
                }
            }
            // These informers deliver first lists whole.
            other @ (Notification::Streaming(_)
            | Notification::Streamed(_)
            | Notification::Relisted(_)) => {
                panic!("a first list delivered as it streams: {other:?}")
            }
        }
    }
}

async fn next(rx: &mut Events) -> (EventType, String, bool, bool) {
    loop {
        if let Some(e) = rx.buffered.pop_front() {
            return e;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), rx.rx.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        rx.expand(n);
    }
}

/// The next event, however long it takes (callers bound the wait).
async fn next_any(rx: &mut Events) -> (EventType, String, bool, bool) {
    loop {
        if let Some(e) = rx.buffered.pop_front() {
            return e;
        }
        let n = rx.rx.recv().await.unwrap();
        rx.expand(n);
    }
}

async fn quiet(rx: &mut Events) {
    assert!(
        rx.buffered.is_empty(),
        "no further event expected, got {:?}",
        rx.buffered
    );
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.rx.recv()).await;
    assert!(
        extra.is_err(),
        "no further event expected, got {:?}",
        extra.unwrap()
    );
}

#[tokio::test]
async fn initial_sync_then_live_events_into_the_cache() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("inf").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for name in ["b", "a"] {
        api.create(&PostParams::default(), &cm(name, json!({"app": "web"})))
            .await
            .unwrap();
    }
    api.create(&PostParams::default(), &cm("other", json!({"app": "db"})))
        .await
        .unwrap();

    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(
        cluster.client.clone(),
        cache.clone(),
        scope(&ns, "app=web"),
        tx,
    );
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "a".into(), true, false)
    );
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "b".into(), true, false)
    );
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    assert!(informer.status().synced_once);
    let kind = KindKey::new("v1", "ConfigMap");
    assert_eq!(
        cache.kind_stats(&kind).objects,
        2,
        "only what the selector selects is cached"
    );

    api.create(&PostParams::default(), &cm("c", json!({"app": "web"})))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "c".into(), false, false)
    );
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventType::Modified, "a".into(), false, false)
    );
    api.delete("b", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventType::Deleted, "b".into(), false, false)
    );
    assert!(cache.get(&kind, &ObjectKey::new(Some(&ns), "b")).is_none());
    assert_eq!(
        cache
            .get(&kind, &ObjectKey::new(Some(&ns), "a"))
            .unwrap()
            .to_value()["data"]["k"],
        "w"
    );
    informer.stop().await;
}

#[tokio::test]
async fn a_dropped_watch_resumes_without_listing_again() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("a_dropped_watch_resumes_without_listing_again") else {
        return;
    };
    let ns = cluster.namespace("resume").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(cluster.client.clone(), cache, scope(&ns, ""), tx);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    let collection = format!("/api/v1/namespaces/{ns}/configmaps");
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.is_initial_list_of(&collection))
        .count();

    server.faults().drop_watches();
    api.create(&PostParams::default(), &cm("during", json!({})))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "during".into(), false, false)
    );
    let lists_after = server
        .requests()
        .iter()
        .filter(|r| r.is_initial_list_of(&collection))
        .count();
    assert_eq!(
        lists_after, lists_before,
        "the watch resumed from its resourceVersion, with no new list"
    );
    informer.stop().await;
}

#[tokio::test]
async fn a_relist_after_410_delivers_missed_deletes_and_only_real_changes() {
    let logs = LogCapture::global("info");
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_relist_after_410_delivers_missed_deletes_and_only_real_changes")
    else {
        return;
    };
    let ns = cluster.namespace("relist").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for name in ["keep", "change", "gone"] {
        api.create(&PostParams::default(), &cm(name, json!({})))
            .await
            .unwrap();
    }
    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(cluster.client.clone(), cache.clone(), scope(&ns, ""), tx);
    for _ in 0..3 {
        assert_eq!(next(&mut rx).await.0, EventType::Added);
    }
    assert_eq!(next(&mut rx).await.0, EventType::Synced);

    // Hold the watcher off (every request is delayed), change things while it
    // is away, compact the history, and let it come back: its resume gets 410.
    server.faults().set_latency(Duration::from_millis(1500));
    server.faults().drop_watches();
    // The stream is closed and the watcher's resume request sits in the delay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = server.storage();
    let t = store.registry().get("", "v1", "configmaps").unwrap();
    store
        .delete(&t, Some(&ns), "gone", None, None, false)
        .unwrap();
    let opts = informant_apiserver::WriteOptions::default();
    store
        .update_with(&t, Some(&ns), "change", None, &opts, |c| {
            let mut v = c.clone();
            v["data"]["k"] = json!("changed");
            Ok(v)
        })
        .unwrap();
    store.compact();
    server.faults().set_latency(Duration::ZERO);

    let mut got = vec![next(&mut rx).await, next(&mut rx).await];
    got.sort();
    assert_eq!(
        got,
        [
            (EventType::Modified, "change".into(), false, false),
            (EventType::Deleted, "gone".into(), false, true)
        ]
    );
    quiet(&mut rx).await;
    let status = informer.status();
    assert_eq!(status.relists, 1);
    // Not silent: the interruption, the relist and how long it was blind.
    assert!(status.interruptions >= 1, "{status:?}");
    assert!(status.blind_seconds > 0.0, "{status:?}");
    let text = logs.text();
    for line in ["watch interrupted", "watch relisting", "watch relisted"] {
        assert!(
            text.lines()
                .any(|l| l.contains(line) && l.contains("v1/ConfigMap")),
            "no {line:?} line naming the resource in:\n{text}"
        );
    }
    let kind = KindKey::new("v1", "ConfigMap");
    assert_eq!(cache.kind_stats(&kind).objects, 2);
    informer.stop().await;
}

#[tokio::test]
async fn subscriptions_resolve_by_kind_plural_or_short_name_and_wait_for_their_crd() {
    use informant::discovery::resolve;
    let cluster = TestCluster::start().await;
    let c = &cluster.client;
    for (api_version, name) in [
        ("v1", "ConfigMap"),
        ("v1", "configmaps"),
        ("v1", "cm"),
        ("apps/v1", "deploy"),
        ("apps/v1", "Deployment"),
    ] {
        let r = resolve(c, api_version, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{api_version} {name} resolves"));
        assert!(r.namespaced);
        assert!(
            r.resource.kind == "ConfigMap" || r.resource.kind == "Deployment",
            "{r:?}"
        );
    }
    let ns = resolve(c, "v1", "ns").await.unwrap().unwrap();
    assert_eq!(
        (ns.resource.plural.as_str(), ns.namespaced),
        ("namespaces", false)
    );
    assert_eq!(resolve(c, "v1", "Nonexistent").await.unwrap(), None);

    // A CRD's kind is pending until the CRD exists.
    let group = format!("{}.example.com", TestCluster::unique_name("r"));
    cluster.track("crd", &format!("sprockets.{group}"));
    let api_version = format!("{group}/v1");
    assert_eq!(resolve(c, &api_version, "Sprocket").await.unwrap(), None);
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(c.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": format!("sprockets.{group}")},
        "spec": {"group": group, "scope": "Cluster", "names": {"plural": "sprockets", "kind": "Sprocket", "shortNames": ["spr"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let resolved = loop {
        if let Some(r) = resolve(c, &api_version, "spr").await.unwrap() {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRD's kind never resolved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (resolved.resource.kind.as_str(), resolved.namespaced),
        ("Sprocket", false)
    );
    crds.delete(&format!("sprockets.{group}"), &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn identical_subscriptions_share_one_watch_and_late_ones_replay_from_the_cache() {
    use informant::informer::SharedInformers;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shared").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("web-1", json!({"app": "web"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("db-1", json!({"app": "db"})))
        .await
        .unwrap();
    let cache = Arc::new(Store::default());
    let shared = SharedInformers::new(cluster.client.clone(), cache.clone());

    let (tx1, mut rx1) = channel(64);
    let first = shared.subscribe(scope(&ns, "app=web"), tx1).await;
    assert_eq!(
        next(&mut rx1).await,
        (EventType::Added, "web-1".into(), true, false)
    );
    assert_eq!(next(&mut rx1).await.0, EventType::Synced);
    assert!(shared.all_synced().await);

    // The same scope from a second subscriber: replayed, no second watch.
    let (tx2, mut rx2) = channel(64);
    let second = shared.subscribe(scope(&ns, "app=web"), tx2).await;
    assert_eq!(
        next(&mut rx2).await,
        (EventType::Added, "web-1".into(), true, false)
    );
    assert_eq!(next(&mut rx2).await.0, EventType::Synced);
    assert_eq!(shared.statuses().await.len(), 1);
    if let Some(server) = &cluster.server {
        let collection = format!("/api/v1/namespaces/{ns}/configmaps");
        let lists = server
            .requests()
            .iter()
            .filter(|r| r.is_initial_list_of(&collection) && r.query.contains("labelSelector"))
            .count();
        assert_eq!(lists, 1, "one list for two identical subscriptions");
    }
    // Both see live events.
    api.create(&PostParams::default(), &cm("web-2", json!({"app": "web"})))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx1).await,
        (EventType::Added, "web-2".into(), false, false)
    );
    assert_eq!(
        next(&mut rx2).await,
        (EventType::Added, "web-2".into(), false, false)
    );

    // Another selector is another watch.
    let (tx3, mut rx3) = channel(64);
    let third = shared.subscribe(scope(&ns, "app=db"), tx3).await;
    assert_eq!(
        next(&mut rx3).await,
        (EventType::Added, "db-1".into(), true, false)
    );
    assert_eq!(shared.statuses().await.len(), 2);

    // The last subscriber of a watch stops it and frees what only it cached.
    shared.unsubscribe(first).await;
    assert_eq!(
        shared.statuses().await.len(),
        2,
        "the web watch still has a subscriber"
    );
    shared.unsubscribe(second).await;
    assert_eq!(shared.statuses().await.len(), 1);
    let kind = KindKey::new("v1", "ConfigMap");
    assert!(
        cache
            .get(&kind, &ObjectKey::new(Some(&ns), "web-1"))
            .is_none()
    );
    assert!(
        cache
            .get(&kind, &ObjectKey::new(Some(&ns), "db-1"))
            .is_some(),
        "the db watch's objects stay"
    );
    shared.unsubscribe(third).await;
    assert_eq!(cache.kind_stats(&kind).objects, 0);
}

fn rule(path: &str, query: Option<&str>, code: u16) -> informant_apiserver::FailRule {
    informant_apiserver::FailRule {
        path_prefix: path.into(),
        method: Some("GET".into()),
        query_contains: query.map(Into::into),
        code,
        count: 1000,
    }
}

#[tokio::test]
async fn streaming_lists_are_used_and_refusal_falls_back_to_pages() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("streaming_lists_are_used_and_refusal_falls_back_to_pages")
    else {
        return;
    };
    let ns = cluster.namespace("stream").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();
    let collection = format!("/api/v1/namespaces/{ns}/configmaps");

    let (tx, mut rx) = channel(64);
    let streaming = Informer::start(
        cluster.client.clone(),
        Arc::new(Store::default()),
        scope(&ns, ""),
        tx,
    );
    assert_eq!(next(&mut rx).await.0, EventType::Added);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == collection && r.query.contains("sendInitialEvents=true"))
    );
    assert!(
        !requests.iter().any(|r| r.is_list_of(&collection)),
        "a streaming list needs no LIST"
    );
    streaming.stop().await;

    // A server that refuses streaming lists (as older ones do) gets paged lists.
    server.clear_requests();
    server
        .faults()
        .fail(rule(&collection, Some("sendInitialEvents=true"), 422));
    let (tx, mut rx) = channel(64);
    let paged = Informer::start(
        cluster.client.clone(),
        Arc::new(Store::default()),
        scope(&ns, ""),
        tx,
    );
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "one".into(), true, false)
    );
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.is_list_of(&collection) && r.query.contains("limit=500"))
    );
    paged.stop().await;
    server.faults().reset();
}

#[tokio::test]
async fn a_forbidden_kind_is_reported_while_the_others_keep_working() {
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_forbidden_kind_is_reported_while_the_others_keep_working")
    else {
        return;
    };
    let ns = cluster.namespace("forbid").await;
    server
        .faults()
        .fail(rule(&format!("/api/v1/namespaces/{ns}/secrets"), None, 403));
    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(64);
    let secrets_scope = Scope {
        resource: ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        ..scope(&ns, "")
    };
    let secrets = Informer::start(
        cluster.client.clone(),
        cache.clone(),
        secrets_scope,
        tx.clone(),
    );
    let configmaps = Informer::start(cluster.client.clone(), cache, scope(&ns, ""), tx);
    assert_eq!(
        next(&mut rx).await.0,
        EventType::Synced,
        "configmaps sync despite the forbidden secrets"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let st = secrets.status();
        if let informant::informer::WatchState::Error(reason) = &st.state {
            assert!(
                reason.contains("403") || reason.to_lowercase().contains("forbidden"),
                "{reason}"
            );
            assert!(!st.synced_once);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the 403 was never reported: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retried with backoff, not in a tight loop.
    let before = server.requests().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let secret_requests = server.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/secrets"))
        .count();
    assert!(
        secret_requests <= 3,
        "{secret_requests} retries in one second"
    );
    secrets.stop().await;
    configmaps.stop().await;
    server.faults().reset();
}

#[tokio::test]
async fn resync_replays_the_cache_without_asking_the_server() {
    use informant::informer::SharedInformers;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("resync").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("r", json!({})))
        .await
        .unwrap();
    let shared = SharedInformers::new(cluster.client.clone(), Arc::new(Store::default()));
    let (tx, mut rx) = channel(64);
    let id = shared
        .subscribe_with_resync(
            scope(&ns, ""),
            tx,
            Duration::from_millis(400),
            informant::informer::FirstList::Whole,
            informant::cache::Need::Whole,
        )
        .await;
    assert_eq!(next(&mut rx).await.0, EventType::Added);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    let requests_before = cluster.server.as_ref().map(|s| s.requests().len());
    assert_eq!(
        next(&mut rx).await,
        (EventType::Resync, "r".into(), false, false)
    );
    assert_eq!(
        next(&mut rx).await,
        (EventType::Resync, "r".into(), false, false)
    );
    if let (Some(server), Some(before)) = (&cluster.server, requests_before) {
        assert_eq!(
            server.requests().len(),
            before,
            "a resync asks the server nothing"
        );
    }
    shared.unsubscribe(id).await;
}

#[tokio::test]
async fn ten_thousand_objects_sync_into_a_cache_equal_to_a_fresh_list() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("bulk").await;
    let count = 10_000usize;
    match &cluster.server {
        // Seed through the store: this test is about syncing, not creating.
        Some(server) => {
            let t = server
                .storage()
                .registry()
                .get("", "v1", "configmaps")
                .unwrap();
            let opts = informant_apiserver::WriteOptions::default();
            for i in 0..count {
                let body = json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"n": (i % 7).to_string(), OWN: "yes"}}, "data": {"i": i.to_string()}});
                server.storage().create(&t, Some(&ns), body, &opts).unwrap();
            }
        }
        None => {
            let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
            for i in 0..count {
                api.create(
                    &PostParams::default(),
                    &cm(&format!("cm-{i:05}"), json!({"n": (i % 7).to_string()})),
                )
                .await
                .unwrap();
            }
        }
    }
    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(1024);
    let informer = Informer::start(cluster.client.clone(), cache.clone(), scope(&ns, ""), tx);
    let mut added = std::collections::BTreeSet::new();
    loop {
        match next(&mut rx).await {
            (EventType::Added, name, ..) => added.insert(name),
            (EventType::Synced, ..) => break,
            other => panic!("unexpected {other:?}"),
        };
    }
    // Synced means every object created before the watch began is there.
    let missing: Vec<String> = (0..count)
        .map(|i| format!("cm-{i:05}"))
        .filter(|n| !added.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "synced without {} of the {count} objects: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(added.len(), count);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let fresh = api
        .list(&kube::api::ListParams::default().labels(OWN))
        .await
        .unwrap();
    let kind = KindKey::new("v1", "ConfigMap");
    assert_eq!(cache.kind_stats(&kind).objects, fresh.items.len());
    for item in &fresh.items {
        let key = ObjectKey::new(Some(&ns), item.metadata.name.as_deref().unwrap());
        let cached = cache.get(&kind, &key).unwrap();
        assert_eq!(
            Some(cached.resource_version()),
            item.metadata.resource_version.as_deref()
        );
    }
    informer.stop().await;
}

/// A real server answers a streaming list at `resourceVersion=0` from its
/// watch cache as it is, which may lag etcd: the embedded server's stale
/// cache fault does the same. The informer asks for the most recent state,
/// so its synced cache holds every object created before it started.
#[tokio::test]
async fn a_streaming_first_list_is_a_consistent_read_when_the_watch_cache_lags() {
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_streaming_first_list_is_a_consistent_read_when_the_watch_cache_lags")
    else {
        return;
    };
    let ns = cluster.namespace("lagging").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let create = |name: &'static str| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &cm(name, json!({})))
                .await
                .unwrap();
        }
    };
    create("a").await;
    create("b").await;
    // The watch cache stops here; the store goes on.
    server
        .faults()
        .set_stale_cache(Some(server.storage().freeze()));
    create("c").await;
    create("d").await;

    // The fault is real: a streaming list at any version ends its initial
    // events without c and d, and brings them only after.
    let params = kube::api::WatchParams::streaming_lists().labels(OWN);
    let mut stream = api.watch(&params, "0").await.unwrap().boxed();
    let mut before_end = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            kube::api::WatchEvent::Added(o) => before_end.push(o.metadata.name.unwrap()),
            kube::api::WatchEvent::Bookmark(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(before_end, ["a", "b"], "the stale cache's initial events");
    drop(stream);

    let cache = Arc::new(Store::default());
    let (tx, mut rx) = channel(16);
    let informer = Informer::start(cluster.client.clone(), cache.clone(), scope(&ns, ""), tx);
    let mut added = Vec::new();
    loop {
        match next(&mut rx).await {
            (EventType::Added, name, ..) => added.push(name),
            (EventType::Synced, ..) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, ["a", "b", "c", "d"], "synced with every object");
    let kind = KindKey::new("v1", "ConfigMap");
    assert_eq!(cache.kind_stats(&kind).objects, 4);
    // Nothing more comes for what the first list already had.
    quiet(&mut rx).await;
    server.faults().reset();
    informer.stop().await;
}

#[tokio::test]
async fn a_half_open_watch_is_detected_by_its_idle_timeout_and_resumed() {
    let logs = LogCapture::global("info");
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_half_open_watch_is_detected_by_its_idle_timeout_and_resumed")
    else {
        return;
    };
    let ns = cluster.namespace("halfopen").await;
    // Bookmarks come every second here, so a healthy watch is never idle for 3.
    let config = informant::informer::client_config(
        kube::Config::new(server.url().parse().unwrap()),
        Duration::from_secs(3),
    );
    informant::tls::install_crypto_provider();
    let client = kube::Client::try_from(config).unwrap();
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(client, Arc::new(Store::default()), scope(&ns, ""), tx);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);

    server.faults().set_stall(true);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("while-stalled", json!({})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New connections work again; the stalled one stays silent until the
    // client gives up on it.
    server.faults().set_stall(false);
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "while-stalled".into(), false, false)
    );
    let status = informer.status();
    assert_eq!(
        (status.interruptions, status.resumes, status.relists),
        (1, 1, 0),
        "{status:?}"
    );
    // From when the interruption was detected (the idle timeout) to the resume.
    assert!(status.blind_seconds > 0.0, "{status:?}");
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("watch resumed") && l.contains("blind_s=")),
        "{text}"
    );
    informer.stop().await;
}

/// A client for `cluster` through `gate`, as `informant run` (or, for the
/// embedded server, `informant dev`) connects: HTTP/2 with keep-alive
/// pings, and the host's idle timeout.
async fn gated_client(cluster: &TestCluster, gate: &Gate, dir: &std::path::Path) -> kube::Client {
    let path = dir.join("gated-kubeconfig");
    gate.kubeconfig(&cluster.kubeconfig, &path);
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let config = informant::informer::client_config(config, informant::informer::IDLE_TIMEOUT);
    let transport = if cluster.is_real() {
        Transport::default()
    } else {
        Transport::embedded()
    };
    informant::transport::client(config, transport).unwrap()
}

/// A watch whose connection goes silent (the network drops its packets,
/// here a proxy that stops forwarding and keeps it open) is noticed by the
/// client's HTTP/2 pings, not after the idle timeout, and resumed on a new
/// connection with nothing missed. On both servers: the fault is in the
/// network, not in the server.
#[tokio::test]
async fn a_black_holed_watch_connection_is_noticed_by_its_pings_and_resumed() {
    let logs = LogCapture::global("info");
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("blackhole").await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::closed(&cluster.kubeconfig);
    gate.open().await;
    let client = gated_client(&cluster, &gate, dir.path()).await;
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(client, Arc::new(Store::default()), scope(&ns, ""), tx);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);

    let cut = std::time::Instant::now();
    gate.black_hole();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &cm("behind-the-hole", json!({})))
        .await
        .unwrap();
    // Only the pings can notice it within this wait: the idle timeout (90 s)
    // would take longer. How long they take is measured, not asserted
    // (docs/BENCHMARKS.md).
    let event = tokio::time::timeout(Duration::from_secs(80), next_any(&mut rx))
        .await
        .expect("the black-holed watch is noticed and resumed before the idle timeout");
    assert_eq!(
        event,
        (EventType::Added, "behind-the-hole".into(), false, false)
    );
    let resumed = cut.elapsed();
    let noticed = logs
        .lines()
        .into_iter()
        .find(|(at, l)| *at > cut && l.contains("watch interrupted"));
    eprintln!(
        "black-holed watch: noticed after {:?}, its missed event delivered after {:.1} s: {noticed:?}",
        noticed.as_ref().map(|(at, _)| at.duration_since(cut)),
        resumed.as_secs_f64()
    );
    let status = informer.status();
    assert_eq!(
        (status.interruptions, status.relists),
        (1, 0),
        "resumed from where it was: {status:?}"
    );
    assert!(noticed.is_some(), "{}", logs.text());
    informer.stop().await;
}

/// An idle but healthy watch connection is left alone: nothing comes for
/// longer than the pings' patience (here 20 s, with a server whose bookmarks
/// come every minute), and the watch is never interrupted.
#[tokio::test]
async fn an_idle_healthy_watch_connection_is_not_taken_for_dead() {
    let cluster = TestCluster::start().await;
    // The test cluster's embedded server sends a bookmark every second;
    // one with a real server's minute keeps the connection quiet.
    let quiet = match cluster.server {
        Some(_) => Some(
            informant_apiserver::ApiServer::start(informant_apiserver::Config::default())
                .await
                .unwrap(),
        ),
        None => None,
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = match &quiet {
        Some(server) => {
            let path = dir.path().join("quiet-kubeconfig");
            server.write_kubeconfig(&path).unwrap();
            path
        }
        None => cluster.kubeconfig.clone(),
    };
    let ns = match &quiet {
        Some(server) => {
            let client =
                kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
            let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
            let ns = TestCluster::unique_name("idle");
            let object = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
            api.create(&PostParams::default(), &object).await.unwrap();
            ns
        }
        None => cluster.namespace("idle").await,
    };
    let mut gate = Gate::closed(&kubeconfig);
    gate.open().await;
    let path = dir.path().join("gated-kubeconfig");
    gate.kubeconfig(&kubeconfig, &path);
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let config = informant::informer::client_config(config, informant::informer::IDLE_TIMEOUT);
    let transport = if quiet.is_some() {
        Transport::embedded()
    } else {
        Transport::default()
    };
    let client = informant::transport::client(config, transport).unwrap();
    let (tx, mut rx) = channel(64);
    let informer = Informer::start(client, Arc::new(Store::default()), scope(&ns, ""), tx);
    assert_eq!(next(&mut rx).await.0, EventType::Synced);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let status = informer.status();
    assert_eq!(
        (status.interruptions, status.relists),
        (0, 0),
        "an idle watch stays as it is: {status:?}"
    );
    informer.stop().await;
    if let Some(server) = quiet {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_subscription_waits_for_its_crd_and_goes_pending_again_when_it_is_deleted() {
    use informant::informer::subscriptions::{Request, State, Subscriptions};
    let cluster = TestCluster::start().await;
    let group = format!("{}.example.com", TestCluster::unique_name("p"));
    cluster.track("crd", &format!("gizmos.{group}"));
    let subs = Subscriptions::start(cluster.client.clone(), Arc::new(Store::default()));
    let (tx, mut rx) = channel(64);
    let request = Request {
        api_version: format!("{group}/v1"),
        kind: "Gizmo".into(),
        namespace: None,
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
        resync: None,
        need: informant::cache::Need::Whole,
    };
    let id = subs.subscribe(request, tx).await;
    assert_eq!(subs.state(id).await, Some(State::Pending));

    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(cluster.client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": format!("gizmos.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "gizmos", "kind": "Gizmo"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    // A real server serves the kind a moment after the CRD is established,
    // later on a loaded machine: a liveness wait, not a figure.
    let started = tokio::time::timeout(Duration::from_secs(30), rx.rx.recv())
        .await
        .expect("the pending subscription starts within 30 s of its CRD")
        .unwrap();
    rx.expand(started);
    assert_eq!(
        next(&mut rx).await.0,
        EventType::Synced,
        "the pending subscription started by itself"
    );
    assert!(matches!(subs.state(id).await, Some(State::Active { .. })));

    let gvk = kube::api::GroupVersionKind::gvk(&group, "v1", "Gizmo");
    let gizmos: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &ApiResource::from_gvk(&gvk),
    );
    let g: kube::api::DynamicObject = serde_json::from_value(
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gizmo", "metadata": {"name": "g1"}}),
    )
    .unwrap();
    gizmos.create(&PostParams::default(), &g).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventType::Added, "g1".into(), false, false)
    );

    // Deleting the CRD deletes its objects (each delivered as a delete), stops
    // the watch and makes the subscription pending again.
    crds.delete(
        &format!("gizmos.{group}"),
        &kube::api::DeleteParams::default(),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut rx).await.0, EventType::Deleted);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while subs.state(id).await != Some(State::Pending) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription never went back to pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let watched: Vec<_> = subs
        .informers()
        .statuses()
        .await
        .into_iter()
        .map(|(k, _, _)| k.plural)
        .collect();
    assert_eq!(
        watched,
        ["customresourcedefinitions"],
        "only the host's own CRD watch is left"
    );
    subs.shutdown();
}
