//! Sharded mode: replicas share the work on bucket Leases.
//!
//! In one process: the dispatch follows the buckets (a bucket taken is
//! replayed, one given up is left alone), every action is fenced right
//! before it is written, and two coordinators split the buckets and hand
//! them over on a clean stop. With host processes: three replicas share
//! 30,000 ConfigMaps about evenly, scale to five and back, lose one to
//! SIGKILL, and one cut off from the API server stops acting before its
//! Leases expire; every ConfigMap is labelled in the end.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use informant::{
    action::{Action, ActionQueue, Allowlist, Executor, QueueConfig, Rule},
    config::Config,
    leader,
    runtime::Runtime,
    shard::{self, Claim, Scope, Shards, coordinator},
    vocabulary::{ObjectRef, Verb},
};
use informant_testkit::{
    Gate, HostProcess, TestCluster, host_command, http_get, plugin_path, terminate,
};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The 30,000-object test loads the server and the machine; the tests
/// whose Leases are renewed every few seconds and whose counts are exact
/// run beside each other, never beside it (a renewal late under that load
/// lapses a bucket, which is then taken again).
static HEAVY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Wait for `f` to give something, up to `timeout`, checking every 50 ms.
async fn eventually<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// Create `names` concurrently (64 at a time), retrying what the server
/// pushes back on.
async fn create_all(api: &Api<ConfigMap>, names: Vec<String>) {
    futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                for attempt in 0.. {
                    match api.create(&PostParams::default(), &configmap(&name)).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(s)) if s.code == 409 => return,
                        Err(e) if attempt < 10 => {
                            tracing::debug!(error = %e, "create failed; retrying");
                            tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
                        }
                        Err(e) => panic!("creating {name}: {e}"),
                    }
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// Wait until no ConfigMap of `api` lacks the label-enforcer's `owner`.
async fn all_labelled(api: &Api<ConfigMap>, timeout: Duration) -> Duration {
    let started = Instant::now();
    eventually("every ConfigMap labelled", timeout, async || {
        let left = api
            .list(&ListParams::default().labels("!owner").limit(100))
            .await
            .ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    started.elapsed()
}

/// The label enforcer, allowed to patch ConfigMaps in `ns` only.
fn enforcer_config(ns: &str) -> Config {
    Config {
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
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_follows_the_buckets_and_a_bucket_taken_is_replayed() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard-dispatch").await;
    let shards = Shards::new(
        shard::Config {
            buckets: 4,
            ..shard::Config::default()
        },
        "replica-a",
    );
    let runtime = Runtime::start_scoped(
        cluster.client.clone(),
        enforcer_config(&ns),
        Scope::sharded(shards.clone()),
    )
    .unwrap();
    let lane = runtime
        .load_file(&plugin_path("label_enforcer"))
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let before = names("before", 40);
    create_all(&api, before.clone()).await;
    let kind = informant::vocabulary::KindKey::new("v1", "ConfigMap");
    eventually("the watches to sync", Duration::from_secs(20), async || {
        let cached = before.iter().all(|n| {
            runtime
                .cache()
                .get(&kind, &informant::vocabulary::ObjectKey::new(Some(&ns), n))
                .is_some()
        });
        (shard::Follower::ready(&runtime) && cached).then_some(())
    })
    .await;
    // Time for what would be handled (nothing should be).
    runtime.dispatcher().wait_idle(Duration::from_secs(5)).await;
    // No bucket held: no call at all, though the cache has everything.
    assert_eq!(lane.stats().counts().handled, 0);

    // Buckets 0 and 1 taken: their objects are replayed, the others not.
    let now = Instant::now();
    for b in [0, 1] {
        shards.fence().grant(b, now + Duration::from_secs(600), now);
    }
    shard::Follower::gained(&runtime, &[0, 1]);
    let ours = |name: &str| shard::bucket(4, &ns, name) < 2;
    let (mine, theirs): (Vec<_>, Vec<_>) = before.iter().partition(|n| ours(n));
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "40 names fill 4 buckets"
    );
    let labelled = async |name: &str| {
        api.get(name)
            .await
            .unwrap()
            .metadata
            .labels
            .is_some_and(|l| l.contains_key("owner"))
    };
    for name in &mine {
        eventually(
            "a replayed object labelled",
            Duration::from_secs(20),
            async || labelled(name).await.then_some(()),
        )
        .await;
    }
    runtime.dispatcher().wait_idle(Duration::from_secs(5)).await;
    for name in &theirs {
        assert!(!labelled(name).await, "{name} is not in a held bucket");
    }

    // Live events: those of held buckets are handled, the others not; a
    // bucket given up stops at once.
    shards.fence().revoke(1);
    let after = names("after", 40);
    create_all(&api, after.clone()).await;
    let in_bucket = |b: u16| {
        after
            .iter()
            .filter(|n| shard::bucket(4, &ns, n) == b)
            .cloned()
            .collect::<Vec<_>>()
    };
    for name in in_bucket(0) {
        eventually(
            "a live object of bucket 0 labelled",
            Duration::from_secs(20),
            async || labelled(&name).await.then_some(()),
        )
        .await;
    }
    runtime.dispatcher().wait_idle(Duration::from_secs(5)).await;
    for b in [1, 2, 3] {
        for name in in_bucket(b) {
            assert!(!labelled(&name).await, "{name} is in bucket {b}, not held");
        }
    }
    runtime.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_is_checked_against_its_bucket_right_before_it_is_written() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard-fence").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_all(&api, names("cm", 3)).await;
    let shards = Shards::new(
        shard::Config {
            buckets: 2,
            ..shard::Config::default()
        },
        "replica-a",
    );
    // One write per second: an action waits for its turn.
    let queue = ActionQueue::start_fenced(
        Executor::new(cluster.client.clone(), false, "test"),
        Allowlist::default(),
        QueueConfig::default().rate(1, 1),
        Scope::sharded(shards.clone()),
    );
    let patch = |name: &str| Action::MergePatch {
        target: ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(ns.clone()),
            name: name.into(),
        },
        patch: json!({"metadata": {"labels": {"fenced": "no"}}}).into(),
    };
    let label = async |name: &str| {
        api.get(name)
            .await
            .unwrap()
            .metadata
            .labels
            .and_then(|l| l.get("fenced").cloned())
    };

    // Not held: not even queued.
    assert_eq!(
        queue.submit_claimed("p", Claim::Bucket(1), vec![patch("cm-00000")]),
        0
    );
    assert_eq!(queue.stats().counts().fenced, 1);

    // Held: written, and the rate limiter's token spent.
    let now = Instant::now();
    for b in [0, 1] {
        shards.fence().grant(b, now + Duration::from_secs(600), now);
    }
    assert_eq!(
        queue.submit_claimed("p", Claim::Bucket(0), vec![patch("cm-00001")]),
        1
    );
    assert!(queue.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(label("cm-00001").await.as_deref(), Some("no"));
    // Queued while held, given up while it waits for its turn (a second):
    // checked again right before the write, and not written.
    assert_eq!(
        queue.submit_claimed("p", Claim::Bucket(1), vec![patch("cm-00002")]),
        1
    );
    shards.fence().revoke(1);
    assert!(queue.wait_idle(Duration::from_secs(10)).await);
    let counts = queue.stats().counts();
    assert_eq!((counts.applied, counts.fenced), (1, 2), "{counts:?}");
    assert_eq!(label("cm-00000").await, None);
    assert_eq!(label("cm-00002").await, None);
    // Cluster-wide work follows the singleton.
    assert_eq!(
        queue.submit_claimed("p", Claim::Singleton, vec![patch("cm-00000")]),
        0
    );
    shards.fence().set_singleton(true);
    assert_eq!(
        queue.submit_claimed("p", Claim::Singleton, vec![patch("cm-00000")]),
        1
    );
    assert!(queue.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(label("cm-00000").await.as_deref(), Some("no"));
    queue.shutdown(Duration::from_secs(1)).await;
}

/// A follower that records what it is told.
#[derive(Default)]
struct Probe {
    not_ready: AtomicBool,
    gained: Mutex<Vec<u16>>,
    lost: Mutex<Vec<u16>>,
}

impl shard::Follower for Probe {
    fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }
    fn gained(&self, buckets: &[u16]) {
        self.gained.lock().extend_from_slice(buckets);
    }
    fn lost(&self, buckets: &[u16]) {
        self.lost.lock().extend_from_slice(buckets);
    }
}

struct Member {
    shards: Arc<Shards>,
    probe: Arc<Probe>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn member(cluster: &TestCluster, ns: &str, identity: &str, buckets: u16, ready: bool) -> Member {
    let shards = Shards::new(
        shard::Config {
            buckets,
            ..shard::Config::default()
        },
        identity,
    );
    let probe = Arc::new(Probe::default());
    probe.not_ready.store(!ready, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let config = leader::Config::new("set", ns, identity).timing(
        Duration::from_secs(3),
        Duration::from_secs(2),
        Duration::from_millis(500),
    );
    let task = tokio::spawn(coordinator::run(
        cluster.client.clone(),
        config,
        shards.clone(),
        probe.clone(),
        stop.clone(),
    ));
    Member {
        shards,
        probe,
        stop,
        task,
    }
}

fn held(m: &Member) -> Vec<u16> {
    m.shards.fence().held_at(Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_split_the_buckets_and_a_clean_stop_hands_them_over_at_once() {
    let _timing = HEAVY.read().await;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard-leases").await;
    let a = member(&cluster, &ns, "replica-a", 8, true);
    eventually(
        "a to hold everything",
        Duration::from_secs(20),
        async || (held(&a).len() == 8).then_some(()),
    )
    .await;
    assert_eq!(a.probe.gained.lock().len(), 8, "each bucket replayed once");
    // b is not ready (its caches have not synced): it does not join.
    let b = member(&cluster, &ns, "replica-b", 8, false);
    eventually("b to see a", Duration::from_secs(20), async || {
        (b.shards.view().members.len() == 1).then_some(())
    })
    .await;
    assert!(held(&b).is_empty() && !b.shards.view().joined);
    // Ready: it joins and takes half, with hysteresis: a keeps four of
    // its own, and nothing else moves.
    b.probe.not_ready.store(false, Ordering::SeqCst);
    eventually("an even split", Duration::from_secs(20), async || {
        (held(&a).len() == 4 && held(&b).len() == 4).then_some(())
    })
    .await;
    let mut all: Vec<u16> = held(&a).into_iter().chain(held(&b)).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..8).collect::<Vec<_>>(),
        "each bucket on one replica"
    );
    assert_eq!(a.probe.lost.lock().len(), 4);
    assert_eq!(a.shards.handoffs().counts().released, 4);

    // A replica with another bucket count (a configuration being rolled
    // out) takes nothing while the others live.
    let c = member(&cluster, &ns, "replica-c", 16, true);
    eventually("c to see the others", Duration::from_secs(20), async || {
        let view = c.shards.view();
        (view.joined
            && view
                .members
                .iter()
                .filter(|m| m.other_bucket_count == Some(8))
                .count()
                == 2)
            .then_some(())
    })
    .await;
    assert!(held(&c).is_empty());
    c.stop.cancel();
    c.task.await.unwrap();

    // A clean stop hands over at once: b holds all before a's Leases
    // could have expired.
    let stopped = Instant::now();
    a.stop.cancel();
    a.task.await.unwrap();
    assert!(a.shards.fence().held_at(Instant::now()).is_empty());
    eventually(
        "b to take a's buckets",
        Duration::from_secs(20),
        async || (held(&b).len() == 8).then_some(()),
    )
    .await;
    let took = stopped.elapsed();
    eprintln!("hand-off on a clean stop: {took:?} (lease 3 s)");
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &ns);
    let names: Vec<String> = leases
        .list(&ListParams::default().labels("informant.dev/lease-set=set"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|l| l.metadata.name)
        .collect();
    assert!(
        !names.contains(&"set-member-replica-a".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"set-member-replica-b".to_string()),
        "{names:?}"
    );
    let bucket0 = leases.get("set-bucket-0").await.unwrap().spec.unwrap();
    assert_eq!(bucket0.holder_identity.as_deref(), Some("replica-b"));
    b.stop.cancel();
    b.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_leader_election_mode_holds_the_sharded_ones_back() {
    let _timing = HEAVY.read().await;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard-rollout").await;
    // A replica of the configuration being replaced: --leader-elect, on the
    // same Lease name, acting on every object while it leads.
    let (tx, leading) = tokio::sync::watch::channel(false);
    let stop_old = CancellationToken::new();
    let config = leader::Config::new("set", &ns, "old-leader").timing(
        Duration::from_secs(3),
        Duration::from_secs(2),
        Duration::from_millis(500),
    );
    let old = tokio::spawn(leader::run(
        cluster.client.clone(),
        config,
        tx,
        stop_old.clone(),
    ));
    eventually(
        "the old replica to lead",
        Duration::from_secs(20),
        async || leading.borrow().then_some(()),
    )
    .await;
    let new = member(&cluster, &ns, "replica-new", 8, true);
    let conflict = eventually(
        "the new replica to see it",
        Duration::from_secs(20),
        async || {
            let view = new.shards.view();
            view.joined.then_some(view.conflict).flatten()
        },
    )
    .await;
    assert!(conflict.contains("old-leader"), "{conflict}");
    assert!(held(&new).is_empty(), "no bucket while the old leader acts");
    // Gone (it releases the Lease): the new replica takes everything.
    stop_old.cancel();
    old.await.unwrap();
    eventually(
        "the new replica to take every bucket",
        Duration::from_secs(20),
        async || (held(&new).len() == 8).then_some(()),
    )
    .await;
    assert!(new.shards.view().conflict.is_none());
    new.stop.cancel();
    new.task.await.unwrap();
}

// ---------------------------------------------------------------------------
// Host processes.

/// Lease timing of the process tests: lease 8 s, renew deadline 6 s, retry
/// 2 s (client-go's 15/10/2, about halved). Tighter, a replica of the debug
/// build on a shared 2-core machine under load can miss its renew deadline:
/// it then stops acting, as it must, and replays its buckets when it renews.
const LEASE: Duration = Duration::from_secs(8);

/// The ConfigMaps the load test creates at once.
const LOAD: usize = 30_000;

/// A plugin directory with the label enforcer, and a configuration that
/// shards 32 buckets over whoever runs with it, on Leases in `ns`, and lets
/// the enforcer patch ConfigMaps in `ns` only: (plugins, config).
fn sharded_in(dir: &Path, ns: &str) -> (PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        plugin_path("label_enforcer"),
        plugins.join("label-enforcer.wasm"),
    )
    .unwrap();
    let config = dir.join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "allow:\n  label-enforcer:\n{}  - {{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{ns}]}}\n\
             actions: {{qps: 1000, burst: 1000, workers: 16}}\n\
             leaderElection: {{leaseNamespace: {ns}, leaseDurationSeconds: {}, renewDeadlineSeconds: 6, retryPeriodSeconds: 2}}\n\
             sharding: {{buckets: 32}}\n",
            informant_testkit::READS_EVERYTHING_YAML,
            LEASE.as_secs()
        ),
    )
    .unwrap();
    (plugins, config)
}

struct Replica {
    name: String,
    process: HostProcess,
    health: SocketAddr,
    admin: SocketAddr,
}

/// The address in a line the host printed: `... at http://ADDR/...`.
fn addr_in(line: &str) -> SocketAddr {
    let start = line.find("http://").unwrap() + 7;
    let rest = &line[start..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

async fn replica(name: &str, kubeconfig: &Path, plugins: &Path, config: &Path) -> Replica {
    let mut process = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--plugins")
            .arg(plugins)
            .arg("--config")
            .arg(config)
            .args(["--log", "warn,informant::shard=info"])
            .env("POD_NAME", name),
    );
    let stdout = process.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(3)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(printed.len(), 3, "{name} printed its addresses");
    Replica {
        name: name.to_string(),
        process,
        health: addr_in(&printed[1]),
        admin: addr_in(&printed[2]),
    }
}

async fn admin_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), http_get(addr, path))
        .await
        .ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The buckets a replica holds now, by its admin API.
async fn held_by(r: &Replica) -> Vec<u64> {
    admin_json(r.admin, "/api/v1/shards")
        .await
        .and_then(|v| {
            v["held"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
        })
        .unwrap_or_default()
}

/// The calls the label enforcer handled on a replica.
async fn handled(r: &Replica) -> u64 {
    let v = admin_json(r.admin, "/api/v1/plugins").await.unwrap();
    v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "label-enforcer")
        .map(|p| p["counters"]["handled"].as_u64().unwrap())
        .unwrap()
}

/// The label enforcer's patches a replica applied: one per ConfigMap of
/// the test's namespace it labelled (patches elsewhere are refused).
async fn patched(r: &Replica) -> u64 {
    let (status, text) = http_get(r.health, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .find(|l| {
            l.starts_with("informant_actions_total{")
                && l.contains("action=\"mergePatch\"")
                && l.contains("outcome=\"applied\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Wait until `replicas` hold every bucket between them, each its share
/// (32/n rounded down or up), each bucket once.
async fn balanced(replicas: &[&Replica], timeout: Duration) -> Duration {
    let started = Instant::now();
    let n = replicas.len();
    eventually(
        &format!("32 buckets balanced over {n} replicas"),
        timeout,
        async || {
            let mut all = Vec::new();
            for r in replicas {
                let held = held_by(r).await;
                if !(32 / n..=32_usize.div_ceil(n)).contains(&held.len()) {
                    return None;
                }
                all.extend(held);
            }
            all.sort_unstable();
            all.dedup();
            (all.len() == 32).then_some(())
        },
    )
    .await;
    started.elapsed()
}

/// Wait until `replicas` hold every bucket between them (balanced or not).
async fn covered(replicas: &[&Replica], timeout: Duration) -> Duration {
    let started = Instant::now();
    eventually("every bucket held", timeout, async || {
        let mut all = Vec::new();
        for r in replicas {
            all.extend(held_by(r).await);
        }
        all.sort_unstable();
        all.dedup();
        (all.len() == 32).then_some(())
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_30000_objects_scale_to_five_and_back_and_survive_a_kill() {
    let _load = HEAVY.write().await;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard").await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, config) = sharded_in(dir.path(), &ns);
    let kubeconfig = cluster.kubeconfig.clone();
    let start = async |name: &str| replica(name, &kubeconfig, &plugins, &config).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    let (a, b, c) = (
        start("replica-a").await,
        start("replica-b").await,
        start("replica-c").await,
    );
    let took = balanced(&[&a, &b, &c], Duration::from_secs(60)).await;
    eprintln!("3 replicas balanced {took:?} after starting");

    // 30,000 objects: each replica handles about a third of the calls.
    let replicas = [&a, &b, &c];
    let mut before = Vec::new();
    for r in replicas {
        before.push((handled(r).await, patched(r).await));
    }
    let created = Instant::now();
    create_all(&api, names("load", LOAD)).await;
    let creating = created.elapsed();
    let labelling = all_labelled(&api, Duration::from_secs(900)).await;
    eprintln!("{LOAD} ConfigMaps created in {creating:?}, all labelled {labelling:?} later");
    let (mut calls, mut patches) = (Vec::new(), Vec::new());
    for (r, (calls_before, patches_before)) in replicas.into_iter().zip(before) {
        // Calls still running settle first: the Modified events of the
        // last labels.
        let n = eventually("the calls to settle", Duration::from_secs(60), async || {
            let first = handled(r).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            (handled(r).await == first).then_some(first)
        })
        .await;
        calls.push(n - calls_before);
        patches.push(patched(r).await - patches_before);
    }
    let off_a_third = |counts: &[u64]| -> Vec<f64> {
        let third = counts.iter().sum::<u64>() as f64 / 3.0;
        counts.iter().map(|c| *c as f64 / third - 1.0).collect()
    };
    let (calls_off, patches_off) = (off_a_third(&calls), off_a_third(&patches));
    eprintln!(
        "calls per replica: {calls:?}, off a third by {calls_off:.3?}; patches: {patches:?}, off a third by {patches_off:.3?}"
    );
    // Every ConfigMap was patched once, by the replica holding its bucket.
    // Every ConfigMap was patched by the replica holding its bucket. A
    // replica whose renewal came late stopped meanwhile and replays the
    // bucket when it renews, so a rare one is patched twice.
    let total: u64 = patches.iter().sum();
    assert!(
        (LOAD as u64..LOAD as u64 * 21 / 20).contains(&total),
        "{total} patches for {LOAD} ConfigMaps: {patches:?}"
    );
    // On a shared cluster, the calls include other users' ConfigMaps (some
    // of them busier than others); the patches are only the test's.
    let spreads = if cluster.is_real() {
        vec![&patches_off]
    } else {
        vec![&calls_off, &patches_off]
    };
    for off in spreads {
        for (r, off) in replicas.iter().zip(off) {
            assert!(
                off.abs() < 0.2,
                "{} did {off:+.3} off a third: calls {calls:?}, patches {patches:?}",
                r.name
            );
        }
    }

    // Scale to five while objects come in, and back to three: nothing is
    // lost, and a clean stop hands its buckets over at once.
    let (d, e) = (start("replica-d").await, start("replica-e").await);
    create_all(&api, names("up", 1000)).await;
    let took = balanced(&[&a, &b, &c, &d, &e], Duration::from_secs(60)).await;
    eprintln!("5 replicas balanced {took:?} after the last two started");
    all_labelled(&api, Duration::from_secs(120)).await;
    let (d_exit, e_exit) = (
        tokio::spawn(terminate(d.process)),
        tokio::spawn(terminate(e.process)),
    );
    let graceful = covered(&[&a, &b, &c], LEASE * 3).await;
    eprintln!("hand-off on a graceful stop of 2 of 5 replicas: {graceful:?} (lease {LEASE:?})");
    for exit in [d_exit, e_exit] {
        let (status, stderr) = exit.await.unwrap();
        assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
        assert!(stderr.contains("buckets handed over"), "{stderr}");
    }
    create_all(&api, names("down", 1000)).await;
    balanced(&[&a, &b, &c], Duration::from_secs(60)).await;
    all_labelled(&api, Duration::from_secs(120)).await;

    // SIGKILL: the dead replica's buckets move within a lease duration of
    // its last renewal, and what came in meanwhile is labelled.
    let stderr = a.process.kill();
    let creating = tokio::spawn({
        let api = api.clone();
        async move { create_all(&api, names("orphan", 1000)).await }
    });
    let moved = covered(&[&b, &c], LEASE * 3).await;
    eprintln!("hand-off after SIGKILL: {moved:?} (lease {LEASE:?}, renewals every 2 s)");
    creating.await.unwrap();
    all_labelled(&api, Duration::from_secs(120)).await;
    assert!(stderr.contains("joined"), "{stderr}");
    for r in [b, c] {
        let (status, stderr) = terminate(r.process).await;
        assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("sharding")).collect();
        eprintln!("{}:\n{}", r.name, lines.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_the_api_server_stops_acting_before_its_leases_expire() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("shard-cut").await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, config) = sharded_in(dir.path(), &ns);
    let mut gate = Gate::closed(&cluster.kubeconfig);
    let gated = dir.path().join("gated-kubeconfig");
    gate.kubeconfig(&cluster.kubeconfig, &gated);
    gate.open().await;
    let a = replica("replica-a", &gated, &plugins, &config).await;
    let b = replica("replica-b", &cluster.kubeconfig, &plugins, &config).await;
    let c = replica("replica-c", &cluster.kubeconfig, &plugins, &config).await;
    balanced(&[&a, &b, &c], Duration::from_secs(60)).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_all(&api, names("before", 300)).await;
    all_labelled(&api, Duration::from_secs(60)).await;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &ns);
    let holders = async || -> BTreeMap<String, String> {
        leases
            .list(&ListParams::default().labels("informant.dev/lease-role=bucket"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|l| Some((l.metadata.name?, l.spec?.holder_identity?)))
            .collect()
    };
    let a_buckets: Vec<String> = holders()
        .await
        .into_iter()
        .filter(|(_, h)| h == "replica-a")
        .map(|(n, _)| n)
        .collect();
    assert!(!a_buckets.is_empty());

    // Cut off: a stops acting when its renew deadline passes, by its own
    // clock; the others take its buckets only once the Leases expire.
    gate.close().await;
    let cut = Instant::now();
    let (mut fenced, mut taken) = (None, None);
    while fenced.is_none() || taken.is_none() {
        assert!(
            cut.elapsed() < LEASE * 3,
            "fenced {fenced:?}, taken {taken:?}"
        );
        if fenced.is_none() && held_by(&a).await.is_empty() {
            fenced = Some(cut.elapsed());
        }
        if taken.is_none() {
            let now = holders().await;
            if a_buckets
                .iter()
                .all(|n| now.get(n).is_some_and(|h| h != "replica-a"))
            {
                taken = Some(cut.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (fenced, taken) = (fenced.unwrap(), taken.unwrap());
    eprintln!("cut off: a stopped acting after {fenced:?}; its buckets were taken after {taken:?}");
    assert!(
        fenced < taken,
        "a acted until {fenced:?}, its buckets moved at {taken:?}"
    );
    eventually(
        "a to count the lapse",
        Duration::from_secs(10),
        async || {
            let shards = admin_json(a.admin, "/api/v1/shards").await?;
            (shards["handoffs"]["lapsed"].as_u64()? >= 1).then_some(())
        },
    )
    .await;
    // Meanwhile the others do a's share.
    create_all(&api, names("during", 300)).await;
    all_labelled(&api, Duration::from_secs(60)).await;

    // Back: a rejoins and gets its share again; nothing is lost.
    gate.open().await;
    balanced(&[&a, &b, &c], Duration::from_secs(60)).await;
    create_all(&api, names("after", 300)).await;
    all_labelled(&api, Duration::from_secs(60)).await;
    for r in [a, b, c] {
        let (status, stderr) = terminate(r.process).await;
        assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    }
}

// ---------------------------------------------------------------------------
// deploy/overlays/sharded.

/// `kubectl kustomize deploy/DIR`, parsed into its documents.
fn render(dir: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy")
        .join(dir);
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn the_sharded_overlay_runs_three_replicas_sharded_and_changes_nothing_else() {
    let base = render(".");
    let sharded = render("overlays/sharded");
    assert_eq!(
        base.len(),
        sharded.len(),
        "the overlay adds or drops objects"
    );
    for (b, s) in base.iter().zip(&sharded) {
        assert_eq!(b["kind"], s["kind"]);
        match s["kind"].as_str().unwrap() {
            "Deployment" => {
                let d: k8s_openapi::api::apps::v1::Deployment =
                    serde_json::from_value(s.clone()).unwrap();
                assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
                let mut b = b.clone();
                b["spec"]["replicas"] = json!(3);
                assert_eq!(&b, s, "only the replicas change");
            }
            "ConfigMap" => {
                // The base's configuration, and sharding.
                let text = s["data"]["informant.yaml"].as_str().unwrap();
                let config = Config::parse(text, "overlays/sharded/configmap.yaml").unwrap();
                assert_eq!(config.sharding.unwrap().buckets, 32);
                let mut ours: Value = serde_norway::from_str(text).unwrap();
                let theirs: Value =
                    serde_norway::from_str(b["data"]["informant.yaml"].as_str().unwrap()).unwrap();
                ours.as_object_mut().unwrap().remove("sharding").unwrap();
                assert_eq!(ours, theirs, "the rest is the base's configuration");
            }
            "Role" if s["metadata"]["name"] == "informant-leader-election" => {
                let r: k8s_openapi::api::rbac::v1::Role =
                    serde_json::from_value(s.clone()).unwrap();
                let rules = r.rules.unwrap();
                assert_eq!(rules.len(), 1);
                assert_eq!(
                    rules[0].verbs,
                    [
                        "get", "list", "watch", "create", "update", "patch", "delete"
                    ]
                );
                assert_eq!(
                    rules[0].resources.as_deref(),
                    Some(&["leases".to_string()][..])
                );
            }
            _ => assert_eq!(b, s),
        }
    }
}
