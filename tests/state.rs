//! The state store end to end: the counter fixture (a real compiled plugin,
//! two instances at once) against the embedded API server or a real one,
//! in the memory tier and in the durable tier, whose objects live in the
//! cluster (the PluginState CRD, which every test cluster has).

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use informant::{
    config::Config,
    http, leader,
    runtime::Runtime,
    state::{Load, Op, OpOutcome, Store, object},
};
use informant_testkit::{
    LogCapture, TestCluster, create_cm, eventually, http_get, plugin_bytes, plugin_path,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::DynamicObject};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(120);

fn logs() -> LogCapture {
    LogCapture::global("info")
}

/// A host whose counter may patch ConfigMaps in `ns` only, runs two calls
/// at once, and keeps durable stores in `ns`; `extra` is more YAML for its
/// `state:` section.
fn host(cluster: &TestCluster, ns: &str, extra: &str) -> Arc<Runtime> {
    let yaml = format!(
        "allow:\n  counter:\n  - {{apiVersion: '*', kind: '*', verbs: [read]}}\n  - {{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{ns}]}}\n\
         dispatch: {{concurrency: 2}}\nstate:\n  namespace: {ns}\n{extra}"
    );
    let config = Config::parse(&yaml, "test config").unwrap();
    Arc::new(Runtime::start(cluster.client.clone(), config).unwrap())
}

/// Load a build of the counter under its own name, confined to `ns`.
async fn counter(runtime: &Runtime, build: &str, settings: Value) -> Arc<Store> {
    let path = plugin_path(build);
    let lane = runtime
        .load_bytes(&path, plugin_bytes(build), settings)
        .await
        .unwrap();
    assert_eq!(lane.concurrency(), 2, "two instances at once");
    lane.plugin().state().unwrap().clone()
}

fn int(store: &Store, key: &str) -> Option<i64> {
    let (value, _, _) = store.read(key)?;
    std::str::from_utf8(&value).ok()?.parse().ok()
}

fn text(store: &Store, key: &str) -> Option<String> {
    let (value, _, _) = store.read(key)?;
    serde_json::from_slice::<String>(&value).ok()
}

async fn until_int(store: &Store, key: &str, want: i64, timeout: Duration) {
    eventually(&format!("{key} = {want}"), timeout, || async {
        (int(store, key) == Some(want)).then_some(())
    })
    .await;
}

async fn create(api: &Api<ConfigMap>, name: &str, mode: &str) {
    create_cm(
        api,
        name,
        json!({"informant.test/counter": mode}),
        json!({}),
    )
    .await;
}

/// Two instances of one plugin increment one counter 10,000 times in
/// total, each call a transaction that reads the counter and writes it
/// back; the store holds exactly 10,000, and every object's own count is
/// exactly its rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_increment_one_counter_exactly_ten_thousand_times() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-count").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(&runtime, "counter", json!({"namespace": ns, "rounds": 100})).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for i in 0..100 {
        create(&api, &format!("cm-{i:03}"), "count").await;
    }
    until_int(&store, "total", 10_000, Duration::from_secs(300)).await;
    assert!(runtime.dispatcher().wait_idle(LONG).await);
    assert_eq!(int(&store, "total"), Some(10_000), "no more, once idle");
    for i in 0..100 {
        assert_eq!(int(&store, &format!("per/{ns}/cm-{i:03}")), Some(100));
    }
    let lane = runtime.dispatcher().lane("counter").unwrap();
    let counts = lane.plugin().counts();
    eprintln!(
        "10,000 commits, {} calls run again after a conflict, {} instances",
        counts.reruns, counts.instances
    );
    assert!(counts.instances >= 2, "both instances ran");
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A call that fails, or traps, after writing leaves none of its writes;
/// its event is retried, and given up, with the store as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_trapped_calls_writes_are_absent() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-fail").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(&runtime, "counter", json!({"namespace": ns})).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "fine", "count").await;
    create(&api, "fails", "fail").await;
    create(&api, "traps", "trap").await;
    let lane = runtime.dispatcher().lane("counter").unwrap();
    eventually("both bad events given up", LONG, || async {
        (lane.stats().counts().given_up == 2).then_some(())
    })
    .await;
    assert!(runtime.dispatcher().wait_idle(LONG).await);
    assert_eq!(int(&store, "total"), Some(1), "the good call committed");
    for key in ["failed", "failed/fails", "failed/traps"] {
        assert_eq!(store.read(key), None, "{key} was written by a failed call");
    }
    let calls = lane.plugin().calls_by_outcome();
    assert_eq!(calls[1].1, 3, "three failed calls: {calls:?}");
    assert_eq!(calls[4].1, 3, "three trapped calls: {calls:?}");
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// Quotas from the configuration refuse writes past them with
/// `limit-exceeded`: the plugin gets the code, and the host counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_with_limit_exceeded() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-quota").await;
    let runtime = host(
        &cluster,
        &ns,
        "  plugins:\n    counter: {maxValueBytes: 1000, maxKeys: 3}\n",
    );
    let store = counter(&runtime, "counter", json!({"namespace": ns, "big": 2000})).await;
    assert_eq!(store.quota().max_value_bytes, 1000);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "big", "big").await;
    eventually("the plugin's record of the refusal", LONG, || async {
        let cm = api.get("big").await.ok()?;
        cm.metadata.labels?.get("informant.test/refused").cloned()
    })
    .await;
    let cm = api.get("big").await.unwrap();
    assert_eq!(
        cm.metadata.labels.unwrap()["informant.test/refused"],
        "limit-exceeded"
    );
    // Three keys (total, per/a, first/a) fill the store; the next object's
    // first key is refused, and the call fails with the code.
    create(&api, "a", "count").await;
    until_int(&store, "total", 1, LONG).await;
    create(&api, "b", "count").await;
    let lane = runtime.dispatcher().lane("counter").unwrap();
    let error = eventually("the call past the key quota to fail", LONG, || async {
        lane.status().last_call_error.map(|e| e.error)
    })
    .await;
    assert!(
        error.contains("limit-exceeded") && error.contains("state.maxKeys"),
        "{error}"
    );
    assert_eq!(store.usage().keys, 3);
    let refused = store
        .stats()
        .ops()
        .into_iter()
        .filter(|(_, outcome, _)| *outcome == OpOutcome::LimitExceeded)
        .map(|(op, _, n)| (op, n))
        .collect::<Vec<_>>();
    assert!(refused.iter().any(|(op, _)| *op == Op::Set), "{refused:?}");
    assert!(
        refused.iter().any(|(op, _)| *op == Op::Increment),
        "{refused:?}"
    );
    let by_code = lane.plugin().refusals();
    assert!(by_code[1].1 >= 2, "refusals are counted: {by_code:?}");
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A new version of the plugin (a hot reload) finds the store the old one
/// left, and goes on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_reload_keeps_the_state() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-reload").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(
        &runtime,
        "counter",
        json!({"namespace": ns, "replica": "v1"}),
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for name in ["x", "y", "z"] {
        create(&api, name, "count").await;
    }
    until_int(&store, "total", 3, LONG).await;
    let path = plugin_path("counter_v2");
    let v2 = runtime
        .prepare(
            &path,
            plugin_bytes("counter_v2"),
            json!({"namespace": ns, "replica": "v2"}),
        )
        .await
        .unwrap();
    let lane = runtime.dispatcher().replace(v2).await.unwrap();
    assert_eq!(lane.plugin().manifest().version, "0.2.0");
    assert!(
        Arc::ptr_eq(lane.plugin().state().unwrap(), &store),
        "the same store"
    );
    // The new version gets a fresh initial sync: three more calls, on top
    // of what the old version committed.
    until_int(&store, "total", 6, LONG).await;
    assert!(runtime.dispatcher().wait_idle(LONG).await);
    assert_eq!(int(&store, &format!("per/{ns}/x")), Some(2));
    assert_eq!(
        text(&store, &format!("first/{ns}/x")).as_deref(),
        Some("v1")
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// The PluginState objects of `plugin` in `ns`.
async fn objects(cluster: &TestCluster, ns: &str) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), ns, &object::api_resource());
    api.list(&Default::default()).await.unwrap().items
}

/// The durable tier outlives the host: a second host starts from what the
/// first one committed to the cluster, and loads it before its first call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_tier_survives_a_host_restart() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-restart").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for name in ["x", "y", "z"] {
        create(&api, name, "count").await;
    }
    let first = host(&cluster, &ns, "");
    let store = counter(
        &first,
        "counter_durable",
        json!({"namespace": ns, "replica": "first", "rounds": 5}),
    )
    .await;
    until_int(&store, "total", 15, LONG).await;
    assert!(first.dispatcher().wait_idle(LONG).await);
    assert_eq!(store.load(), Load::Loaded);
    let objects_written = objects(&cluster, &ns).await;
    assert!(!objects_written.is_empty());
    assert!(objects_written.len() <= store.shard_count());
    let total = objects_written.iter().find_map(|o| {
        o.data["spec"]["entries"]["total"]["value"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(
        total.as_deref(),
        Some("15"),
        "the cluster holds what the store does"
    );
    first.shutdown(Duration::from_secs(5)).await;
    drop(first);

    let second = host(&cluster, &ns, "");
    let store = counter(
        &second,
        "counter_durable",
        json!({"namespace": ns, "replica": "second", "rounds": 5}),
    )
    .await;
    // Its initial sync calls each object once more, on top of what was there.
    until_int(&store, "total", 18, LONG).await;
    assert!(second.dispatcher().wait_idle(LONG).await);
    for name in ["x", "y", "z"] {
        assert_eq!(int(&store, &format!("per/{ns}/{name}")), Some(6));
        assert_eq!(
            text(&store, &format!("first/{ns}/{name}")).as_deref(),
            Some("first")
        );
    }
    second.shutdown(Duration::from_secs(5)).await;
}

/// The durable tier writes against the resourceVersion it read: when
/// someone else changed the object meanwhile (a replica that led before, a
/// person), the API server says 409, the store reads the object again, and
/// the call whose read no longer holds runs again on what the cluster holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_an_object_someone_else_changed_runs_the_call_again() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-409").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(
        &runtime,
        "counter_durable",
        json!({"namespace": ns, "rounds": 1}),
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "x", "count").await;
    until_int(&store, "total", 1, LONG).await;
    // Someone else sets total to 100 behind the host's back.
    let shards: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &ns, &object::api_resource());
    let holder = objects(&cluster, &ns)
        .await
        .into_iter()
        .find(|o| o.data["spec"]["entries"].get("total").is_some())
        .unwrap();
    let name = holder.metadata.name.clone().unwrap();
    let patch = json!({"spec": {"entries": {"total": {"value": "100", "version": "elsewhere"}}}});
    shards
        .patch(&name, &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    // The host's view of its own object still says 1; its next write is
    // refused, and the call runs again from 100.
    assert_eq!(int(&store, "total"), Some(1));
    create(&api, "y", "count").await;
    until_int(&store, "total", 101, LONG).await;
    assert!(runtime.dispatcher().wait_idle(LONG).await);
    let lane = runtime.dispatcher().lane("counter").unwrap();
    assert!(lane.plugin().counts().reruns >= 1, "the call ran again");
    let total = shards.get(&name).await.unwrap().data["spec"]["entries"]["total"]["value"].clone();
    assert_eq!(total, "101");
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A commit the API server refuses leaves the store as it was: the call
/// fails (and is retried, then given up), the shards it had already written
/// are put back, and the next call commits from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_api_server_refuses_leaves_the_store_as_it_was() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_commit_the_api_server_refuses_leaves_the_store_as_it_was")
    else {
        return;
    };
    let ns = cluster.namespace("state-refused").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(&runtime, "counter_durable", json!({"namespace": ns})).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "x", "count").await;
    until_int(&store, "total", 1, LONG).await;
    assert!(runtime.dispatcher().wait_idle(LONG).await);
    // The call for y writes total, per/<ns>/y and first/<ns>/y, shard after
    // shard: the last one's writes are refused (403, not retried).
    let shards = store.shard_count();
    let last = [
        "total".to_string(),
        format!("per/{ns}/y"),
        format!("first/{ns}/y"),
    ]
    .iter()
    .map(|k| object::shard_of_key(k, shards))
    .max()
    .unwrap();
    let refused = object::name("counter", last);
    server.faults().fail(informant_apiserver::FailRule {
        path_prefix: format!("/apis/informant.dev/v1alpha1/namespaces/{ns}/pluginstates/{refused}"),
        method: Some("PATCH".into()),
        query_contains: None,
        code: 403,
        count: 1_000,
    });
    create(&api, "y", "count").await;
    let lane = runtime.dispatcher().lane("counter").unwrap();
    eventually("the call for y to be given up", LONG, || async {
        (lane.stats().counts().given_up == 1).then_some(())
    })
    .await;
    assert_eq!(int(&store, "total"), Some(1), "the store is as it was");
    assert_eq!(store.read(&format!("per/{ns}/y")), None);
    let in_cluster = objects(&cluster, &ns).await.into_iter().find_map(|o| {
        o.data["spec"]["entries"]["total"]["value"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(in_cluster.as_deref(), Some("1"), "and so is the cluster");
    let error = lane.status().last_call_error.unwrap().error;
    assert!(error.contains(&refused) && error.contains("403"), "{error}");
    assert!(
        store.stats().commits()[2].1 >= 3,
        "failed commits are counted"
    );
    server.faults().reset();
    create(&api, "z", "count").await;
    until_int(&store, "total", 2, LONG).await;
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// A durable store whose kind is not served (the CRD is not installed)
/// holds its plugin's calls, and readiness says why; once the CRD appears,
/// the store loads and the calls start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_store_waits_for_its_crd_and_readiness_says_why() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let _logs = logs();
    let cluster = TestCluster::start().await;
    // Removing the CRD would break every other user of a shared cluster.
    if cluster
        .embedded("a_durable_store_waits_for_its_crd_and_readiness_says_why")
        .is_none()
    {
        return;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    crds.delete("pluginstates.informant.dev", &Default::default())
        .await
        .unwrap();
    let ns = cluster.namespace("state-crd").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(&runtime, "counter_durable", json!({"namespace": ns})).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "x", "count").await;
    let stop = CancellationToken::new();
    let health = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::health_router(http::AppState::new(runtime.clone(), None)),
        stop.clone(),
    )
    .await
    .unwrap();
    let (code, body) = eventually("readiness to name the missing CRD", LONG, || async {
        let (code, body) = http_get(health, "/readyz?verbose").await;
        body.contains("[-] state: durable stores not loaded yet: counter (the PluginState kind")
            .then_some((code, body))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        matches!(store.load(), Load::Unavailable(why) if why.contains("deploy/base/crd-pluginstate.yaml"))
    );
    assert_eq!(
        int(&store, "total"),
        None,
        "no call before the store is loaded"
    );
    assert_eq!(
        runtime
            .dispatcher()
            .lane("counter")
            .unwrap()
            .stats()
            .counts()
            .handled,
        0
    );

    cluster.install_state_crd().await;
    until_int(&store, "total", 1, LONG).await;
    let (_, body) = http_get(health, "/readyz?verbose").await;
    assert!(
        body.contains("[+] state: every durable store is loaded"),
        "{body}"
    );
    stop.cancel();
    runtime.shutdown(Duration::from_secs(5)).await;
}

struct Replica {
    identity: String,
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    leading: watch::Receiver<bool>,
    elector: tokio::task::JoinHandle<()>,
}

async fn replica(cluster: &TestCluster, ns: &str, identity: &str) -> Replica {
    let runtime = host(cluster, ns, "");
    leader::Follower::set_leading(&*runtime, false);
    let store = counter(
        &runtime,
        "counter_durable",
        json!({"namespace": ns, "replica": identity}),
    )
    .await;
    let (tx, rx) = watch::channel(false);
    let election = leader::Config::new(&format!("state-{ns}"), ns, identity).timing(
        Duration::from_secs(3),
        Duration::from_secs(2),
        Duration::from_millis(500),
    );
    let elector = tokio::spawn(leader::run(
        cluster.client.clone(),
        election,
        (runtime.clone(), tx),
        CancellationToken::new(),
    ));
    Replica {
        identity: identity.to_string(),
        runtime,
        store,
        leading: rx,
        elector,
    }
}

/// With leader election only the leader's writes reach the cluster; the
/// other replica's view follows them through its watch; when the leader
/// dies, the new leader continues from what the cluster holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_tier_follows_the_leader_and_survives_a_leader_change() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-leader").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let a = replica(&cluster, &ns, "a").await;
    let b = replica(&cluster, &ns, "b").await;
    eventually("a leader", Duration::from_secs(30), || async {
        (*a.leading.borrow() || *b.leading.borrow()).then_some(())
    })
    .await;
    let (leader, follower) = if *a.leading.borrow() { (a, b) } else { (b, a) };
    let (leader_id, follower_id) = (leader.identity.clone(), follower.identity.clone());
    create(&api, "x", "count").await;
    let key = format!("first/{ns}/x");
    eventually("the leader's write", LONG, || async {
        (text(&leader.store, &key).as_deref() == Some(leader_id.as_str())).then_some(())
    })
    .await;
    eventually("the follower's view to follow", LONG, || async {
        (text(&follower.store, &key).as_deref() == Some(leader_id.as_str())).then_some(())
    })
    .await;
    // The follower's view can follow the leader's write before its own call
    // for x has run; that call's writes are then dropped (standby).
    eventually(
        "the follower's own writes to be dropped (standby)",
        LONG,
        || async { (follower.store.stats().commits()[3].1 > 0).then_some(()) },
    )
    .await;
    assert_eq!(
        follower.store.stats().commits()[0].1,
        0,
        "a follower commits nothing"
    );

    // The leader dies without a word; the follower takes over, replays its
    // cache to the plugin, and finds x already recorded.
    leader.elector.abort();
    leader.runtime.shutdown(Duration::ZERO).await;
    eventually("the follower to lead", Duration::from_secs(30), || async {
        (*follower.leading.borrow()).then_some(())
    })
    .await;
    create(&api, "y", "count").await;
    let y = format!("first/{ns}/y");
    eventually("the new leader's write", LONG, || async {
        (text(&follower.store, &y).as_deref() == Some(follower_id.as_str())).then_some(())
    })
    .await;
    assert!(follower.runtime.dispatcher().wait_idle(LONG).await);
    assert_eq!(
        text(&follower.store, &key).as_deref(),
        Some(leader_id.as_str())
    );
    // The cluster holds both, as written by each leader.
    let mut entries = serde_json::Map::new();
    for o in objects(&cluster, &ns).await {
        if let Some(e) = o.data["spec"]["entries"].as_object() {
            entries.extend(e.clone());
        }
    }
    assert_eq!(entries[&key]["value"], json!(format!("\"{leader_id}\"")));
    assert_eq!(entries[&y]["value"], json!(format!("\"{follower_id}\"")));
    follower.elector.abort();
    follower.runtime.shutdown(Duration::from_secs(5)).await;
}

/// The admin API shows a store's usage and reads its keys, `informant
/// state` does the same from the command line, and `/metrics` counts the
/// store's operations and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_and_informant_state_show_a_store() {
    let _logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("state-admin").await;
    let runtime = host(&cluster, &ns, "");
    let store = counter(
        &runtime,
        "counter",
        json!({"namespace": ns, "replica": "r"}),
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "x", "count").await;
    until_int(&store, "total", 1, LONG).await;
    let stop = CancellationToken::new();
    let state = http::AppState::new(runtime.clone(), None);
    let admin = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::admin_router(state.clone()),
        stop.clone(),
    )
    .await
    .unwrap();
    let health = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::health_router(state),
        stop.clone(),
    )
    .await
    .unwrap();

    let (code, body) = http_get(admin, "/api/v1/state").await;
    assert_eq!(code, 200, "{body}");
    let stores: Value = serde_json::from_str(&body).unwrap();
    let counter = &stores["stores"][0];
    assert_eq!(counter["plugin"], "counter");
    assert_eq!(counter["tier"], "memory");
    assert_eq!(counter["keys"], 3);
    assert_eq!(counter["load"]["state"], "loaded");
    assert_eq!(counter["commits"]["committed"], 1);
    assert_eq!(counter["operations"]["increment"]["ok"], 2);
    let (_, body) = http_get(admin, "/api/v1/plugins").await;
    let plugins: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plugins["plugins"][0]["state"]["keys"], 3);
    let (code, body) = http_get(admin, "/api/v1/state/counter/keys?prefix=per/&limit=10").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["keys"],
        json!([format!("per/{ns}/x")])
    );
    let (code, _) = http_get(admin, "/api/v1/state/nobody/keys").await;
    assert_eq!(code, 404);

    let informant = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_informant"))
            .args(["state", "--admin-addr", &admin.to_string()])
            .args(args)
            .env_remove("INFORMANT_LOG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = informant(&["keys", "counter"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("first/{ns}/x"),
            format!("per/{ns}/x"),
            "total".to_string()
        ]
    );
    let (code, stdout, stderr) = informant(&["get", "counter", "total"]);
    assert_eq!(code, Some(0), "{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["value"], "1");
    assert!(value["version"].as_str().is_some_and(|v| !v.is_empty()));
    let (code, _, stderr) = informant(&["get", "counter", "missing"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("plugin counter has no key \"missing\""),
        "{stderr}"
    );

    let (_, metrics) = http_get(health, "/metrics").await;
    for line in [
        "informant_state_operations_total{plugin=\"counter\",operation=\"increment\",outcome=\"ok\"} 2",
        "informant_state_commits_total{plugin=\"counter\",outcome=\"committed\"} 1",
        "informant_state_keys{plugin=\"counter\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    stop.cancel();
    runtime.shutdown(Duration::from_secs(5)).await;
}
