//! Leader election between two hosts against the same API server: one
//! leads and acts, the other keeps warm and acts on nothing; when the leader
//! dies, the other takes over within lease + retry; a leader that stops
//! cleanly hands the Lease over at once.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use informant::{
    action::{Allowlist, Rule},
    config::Config,
    leader,
    runtime::Runtime,
    vocabulary::Verb,
};
use informant_testkit::{TestCluster, plugin_path};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{Api, api::PostParams};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);

struct Replica {
    runtime: Arc<Runtime>,
    leading: watch::Receiver<bool>,
    elector: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

/// A host with the label-enforcer, confined to `ns`, not leading yet.
async fn host(cluster: &TestCluster, ns: &str) -> Arc<Runtime> {
    let config = Config {
        allowlist: Allowlist::new(HashMap::from([(
            "label-enforcer".to_string(),
            [
                informant_testkit::reads_everything(),
                vec![Rule {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    verbs: vec![Verb::Patch],
                    read: false,
                    namespaces: Some(vec![ns.to_string()]),
                }],
            ]
            .concat(),
        )])),
        ..Config::default()
    };
    let runtime = Arc::new(Runtime::start(cluster.client.clone(), config).unwrap());
    leader::Follower::set_leading(&*runtime, false);
    runtime
        .load_file(&plugin_path("label_enforcer"))
        .await
        .unwrap();
    runtime
}

/// Start `runtime`'s election for `lease`.
fn elect(
    cluster: &TestCluster,
    runtime: Arc<Runtime>,
    ns: &str,
    lease: &str,
    identity: &str,
) -> Replica {
    let (tx, rx) = watch::channel(false);
    let stop = CancellationToken::new();
    let election =
        leader::Config::new(lease, ns, identity).timing(LEASE, Duration::from_secs(2), RETRY);
    let elector = tokio::spawn(leader::run(
        cluster.client.clone(),
        election,
        (runtime.clone(), tx),
        stop.clone(),
    ));
    Replica {
        runtime,
        leading: rx,
        elector,
        stop,
    }
}

async fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn labelled(api: &Api<ConfigMap>, name: &str) {
    let started = Instant::now();
    loop {
        let cm = api.get(name).await.unwrap();
        if cm.metadata.labels.is_some_and(|l| l.contains_key("owner")) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{name} never labelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_the_other_takes_over_when_it_dies() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("leader").await;
    let lease = format!("informant-{ns}");
    let hosts = [host(&cluster, &ns).await, host(&cluster, &ns).await];

    // Before anyone leads, both see the object, and neither acts on it.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    api.create(&PostParams::default(), &cm("first"))
        .await
        .unwrap();
    for host in &hosts {
        until("each replica to see it", Duration::from_secs(10), || {
            host.actions().stats().counts().standby > 0
        })
        .await;
    }
    let [a, b] = hosts;
    let a = elect(&cluster, a, &ns, &lease, "replica-a");
    let b = elect(&cluster, b, &ns, &lease, "replica-b");
    until("a leader", Duration::from_secs(10), || {
        *a.leading.borrow() || *b.leading.borrow()
    })
    .await;
    tokio::time::sleep(RETRY * 3).await;
    assert!(
        *a.leading.borrow() != *b.leading.borrow(),
        "exactly one replica leads"
    );
    let (leader, follower) = if *a.leading.borrow() { (a, b) } else { (b, a) };

    // The new leader acts on what it saw before it led: it replays its cache.
    labelled(&api, "first").await;
    assert_eq!(follower.runtime.actions().stats().counts().applied, 0);

    // The leader dies without a word: no release.
    leader.elector.abort();
    leader.runtime.shutdown(Duration::ZERO).await;
    let took = until(
        "the follower to take over",
        LEASE + RETRY + Duration::from_secs(5),
        || *follower.leading.borrow(),
    )
    .await;
    eprintln!("takeover {took:?} after the leader died (lease {LEASE:?} + retry {RETRY:?})");
    api.create(&PostParams::default(), &cm("second"))
        .await
        .unwrap();
    labelled(&api, "second").await;

    // A clean stop releases the Lease at once.
    follower.stop.cancel();
    follower.elector.await.unwrap();
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &ns);
    let spec = leases.get(&lease).await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None);
    assert!(spec.lease_transitions.unwrap() >= 1);
    assert!(!follower.runtime.actions().is_active());
    follower.runtime.shutdown(Duration::from_secs(2)).await;
}
