//! Sharded mode with host processes (release builds of `informant run`):
//!
//! - **throughput**: the `sequencer` fixture spinning about 1 ms of CPU per
//!   event, `dispatch.concurrency: 1` (each replica one core, as a Pod with a
//!   one-core limit would be); 1, 2 and 3 replicas, sharing the buckets,
//!   handle 10,000 cached ConfigMaps at once (new settings replay them to the
//!   working version on every replica together, so the API server's write
//!   rate does not bound it); events handled per second from the settings
//!   change to the last call, and how the calls spread across the replicas;
//! - **hand-off**, with client-go's Lease timing (15 s, renew 10 s, retry
//!   2 s), three replicas, three times each: SIGKILL one, and the time until
//!   the others hold all 32 buckets, from the kill and from its last renewal
//!   (the Leases' renewTime and the new holders' acquireTime); SIGTERM one,
//!   and the time until the others hold its buckets.
//!
//! Against the cluster of `INFORMANT_TEST_KUBECONFIG` if set, else the
//! embedded server in this process.
//!
//! `cargo bench -p informant --bench shard`; `INFORMANT_BENCH_PARTS=throughput`
//! or `handoff` runs one part.

// A benchmark fails loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use futures::StreamExt;
use informant_testkit::{HostProcess, TestCluster, host_command, http_get, plugin_path, terminate};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::{Value, json};

/// Events per throughput run.
const EVENTS: usize = 10_000;
/// Trials per hand-off.
const TRIALS: usize = 3;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let cluster = TestCluster::start().await;
    println!(
        "sharded mode against {}",
        if cluster.is_real() {
            "INFORMANT_TEST_KUBECONFIG"
        } else {
            "the embedded server, in this process"
        }
    );
    let parts = std::env::var("INFORMANT_BENCH_PARTS").unwrap_or_default();
    if parts.is_empty() || parts.contains("throughput") {
        throughput(&cluster).await;
    }
    if parts.is_empty() || parts.contains("handoff") {
        handoffs(&cluster).await;
    }
}

struct Replica {
    process: HostProcess,
    admin: SocketAddr,
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
            .args(["--log", "warn"])
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
    let line = &printed[2];
    let start = line.find("http://").unwrap() + 7;
    let rest = &line[start..];
    Replica {
        process,
        admin: rest[..rest.find('/').unwrap()].parse().unwrap(),
    }
}

async fn admin(r: &Replica, path: &str) -> Value {
    let (status, body) = http_get(r.admin, path).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn held(r: &Replica) -> usize {
    admin(r, "/api/v1/shards").await["held"]
        .as_array()
        .map_or(0, Vec::len)
}

/// (calls handled, microseconds spent in calls) of the sequencer.
async fn calls(r: &Replica) -> (u64, u64) {
    let v = admin(r, "/api/v1/plugins").await;
    let p = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sequencer")
        .unwrap()
        .clone();
    (
        p["counters"]["handled"].as_u64().unwrap(),
        p["counters"]["busyMicros"].as_u64().unwrap(),
    )
}

async fn until(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Until `replicas` hold all 32 buckets, each its share.
async fn balanced(replicas: &[&Replica]) {
    let n = replicas.len();
    until(
        "the buckets balanced",
        Duration::from_secs(120),
        async || {
            let mut total = 0;
            for r in replicas {
                let h = held(r).await;
                if !(32 / n..=32_usize.div_ceil(n)).contains(&h) {
                    return false;
                }
                total += h;
            }
            total == 32
        },
    )
    .await;
}

/// A directory with the sequencer (confined to `ns`, spinning `work`
/// rounds per call) and a sharded configuration on Leases in `ns`.
fn setup(dir: &Path, ns: &str, work: u64, lease: (u64, u64, u64)) -> (PathBuf, PathBuf) {
    setup_in(dir, ns, ns, work, lease)
}

/// [`setup`], with the sequencer confined to `confined`.
fn setup_in(
    dir: &Path,
    ns: &str,
    confined: &str,
    work: u64,
    lease: (u64, u64, u64),
) -> (PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin_path("sequencer"), plugins.join("sequencer.wasm")).unwrap();
    std::fs::write(
        plugins.join("sequencer.json"),
        json!({"namespace": confined, "work": work}).to_string(),
    )
    .unwrap();
    let config = dir.join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "dispatch: {{concurrency: 1}}\n\
             limits: {{deadlineMs: 1000}}\n\
             leaderElection: {{leaseNamespace: {ns}, leaseDurationSeconds: {}, renewDeadlineSeconds: {}, retryPeriodSeconds: {}}}\n\
             sharding: {{buckets: 32}}\n",
            lease.0, lease.1, lease.2
        ),
    )
    .unwrap();
    (plugins, config)
}

async fn create(api: &Api<ConfigMap>, prefix: &str, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i:05}");
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"informant.test/sequence": "latest"}},
                    "data": {"seq": "1"},
                }))
                .unwrap();
                for attempt in 0..10 {
                    match api.create(&PostParams::default(), &cm).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(s)) if s.code == 409 => return,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
                        }
                    }
                }
                panic!("could not create {name}");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

/// Delete the run's ConfigMaps and wait until they are gone: the next
/// run's replicas subscribe to every namespace, and must not spend their
/// calls on these.
async fn clear(api: &Api<ConfigMap>) {
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    until(
        "the run's ConfigMaps gone",
        Duration::from_secs(120),
        async || {
            api.list(
                &ListParams::default()
                    .labels("informant.test/sequence")
                    .limit(1),
            )
            .await
            .is_ok_and(|l| l.items.is_empty())
        },
    )
    .await;
}

/// Spin rounds for about a millisecond per call: measured on one replica.
async fn calibrate(cluster: &TestCluster) -> u64 {
    let mut work: u64 = 1_000_000;
    for _ in 0..3 {
        let ns = cluster.namespace("bench-calibrate").await;
        let dir = tempfile::tempdir().unwrap();
        let (plugins, config) = setup(dir.path(), &ns, work, (15, 10, 2));
        let r = replica("calibrate", &cluster.kubeconfig, &plugins, &config).await;
        balanced(&[&r]).await;
        let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
        create(&api, "cal", 300).await;
        until(
            "the calibration calls",
            Duration::from_secs(60),
            async || calls(&r).await.0 >= 300,
        )
        .await;
        let v = admin(&r, "/api/v1/plugins").await;
        let p50 = v["plugins"][0]["callDurations"]["p50Ms"].as_f64().unwrap();
        terminate(r.process).await;
        clear(&api).await;
        println!("  calibration: {work} rounds take {p50:.3} ms (median call)");
        if (0.9..1.1).contains(&p50) {
            break;
        }
        work = (work as f64 / p50.clamp(0.2, 5.0)) as u64;
    }
    work
}

async fn throughput(cluster: &TestCluster) {
    let work = calibrate(cluster).await;
    println!(
        "throughput: {EVENTS} events, about 1 ms of CPU each ({work} rounds), dispatch.concurrency 1"
    );
    println!("| replicas | events/s | calls per replica | off an even share | mean call |");
    println!("|---:|---:|---|---|---:|");
    let ns = cluster.namespace("bench-shard").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "load", EVENTS).await;
    for m in 1..=3usize {
        // The replicas start with the sequencer confined to a namespace
        // that holds nothing (each call returns at once); once they share
        // the buckets, new settings make each replay its buckets to the
        // working version at the same moment. The API server only serves
        // the reload: what is measured is the replicas' calls.
        let dir = tempfile::tempdir().unwrap();
        let idle = format!("{ns}-idle");
        let (plugins, config) = setup_in(dir.path(), &ns, &idle, 0, (15, 10, 2));
        let mut replicas = Vec::new();
        for i in 0..m {
            replicas.push(
                replica(
                    &format!("replica-{i}"),
                    &cluster.kubeconfig,
                    &plugins,
                    &config,
                )
                .await,
            );
        }
        balanced(&replicas.iter().collect::<Vec<_>>()).await;
        // Settled: every replica has handled what its buckets hold.
        until(
            "the replicas to settle",
            Duration::from_secs(120),
            async || {
                let mut first = Vec::new();
                for r in &replicas {
                    first.push(calls(r).await.0);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut again = Vec::new();
                for r in &replicas {
                    again.push(calls(r).await.0);
                }
                first == again
            },
        )
        .await;
        let mut before = Vec::new();
        for r in &replicas {
            before.push(calls(r).await);
        }
        let settings = plugins.join("sequencer.json");
        std::fs::write(
            &settings,
            json!({"namespace": ns, "work": work}).to_string(),
        )
        .unwrap();
        let elapsed = until(
            "every event handled",
            Duration::from_secs(600),
            async || {
                let mut n = 0;
                for (r, b) in replicas.iter().zip(&before) {
                    n += calls(r).await.0 - b.0;
                }
                n >= EVENTS as u64
            },
        )
        .await;
        let mut per = Vec::new();
        let (mut handled, mut busy) = (0, 0);
        for (r, b) in replicas.iter().zip(&before) {
            let (c, u) = calls(r).await;
            per.push(c - b.0);
            handled += c - b.0;
            busy += u - b.1;
        }
        let share = handled as f64 / m as f64;
        let off: Vec<String> = per
            .iter()
            .map(|c| format!("{:+.1}%", (*c as f64 / share - 1.0) * 100.0))
            .collect();
        println!(
            "| {m} | {:.0} | {per:?} | {} | {:.2} ms |",
            EVENTS as f64 / elapsed.as_secs_f64(),
            off.join(", "),
            busy as f64 / handled as f64 / 1000.0
        );
        for r in replicas {
            terminate(r.process).await;
        }
    }
    clear(&api).await;
}

async fn handoffs(cluster: &TestCluster) {
    println!(
        "hand-off: 3 replicas, lease 15 s, renew deadline 10 s, retry 2 s, {TRIALS} trials each"
    );
    let ns = cluster.namespace("bench-handoff").await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, config) = setup(dir.path(), &ns, 0, (15, 10, 2));
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create(&api, "objects", 3000).await;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &ns);
    let start = async |i: usize| {
        replica(
            &format!("replica-{i}"),
            &cluster.kubeconfig,
            &plugins,
            &config,
        )
        .await
    };
    let mut replicas = vec![start(0).await, start(1).await, start(2).await];
    let mut next = 3;
    balanced(&replicas.iter().collect::<Vec<_>>()).await;
    let covered = async |replicas: &[Replica]| {
        until(
            "the buckets covered",
            Duration::from_secs(120),
            async || {
                let mut total = 0;
                for r in replicas {
                    total += held(r).await;
                }
                total == 32
            },
        )
        .await
    };
    for trial in 0..TRIALS {
        // SIGKILL.
        let victim = replicas.remove(0);
        let identity = admin(&victim, "/api/v1/shards").await["identity"]
            .as_str()
            .unwrap()
            .to_string();
        victim.process.kill();
        let bucket_leases = ListParams::default().labels("informant.dev/lease-role=bucket");
        let last_renewal = leases
            .list(&bucket_leases)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|l| l.spec)
            .filter(|s| s.holder_identity.as_deref() == Some(identity.as_str()))
            .filter_map(|s| s.renew_time)
            .map(|t| t.0)
            .max()
            .unwrap();
        let from_kill = covered(&replicas).await;
        let taken = leases
            .list(&bucket_leases)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|l| l.spec)
            .filter_map(|s| s.acquire_time)
            .map(|t| t.0)
            .filter(|t| *t > last_renewal)
            .max()
            .unwrap();
        let from_renewal = taken.duration_since(last_renewal);
        println!(
            "  trial {trial}: SIGKILL: all buckets held again {:.2} s after the kill, {:.2} s after its last renewal",
            from_kill.as_secs_f64(),
            from_renewal.as_secs_f64()
        );
        replicas.push(start(next).await);
        next += 1;
        balanced(&replicas.iter().collect::<Vec<_>>()).await;
        // SIGTERM.
        let victim = replicas.remove(0);
        let stopped = Instant::now();
        let exit = tokio::spawn(terminate(victim.process));
        let handed = covered(&replicas).await;
        let (status, _) = exit.await.unwrap();
        assert!(status.success());
        println!(
            "  trial {trial}: SIGTERM: all buckets held again {:.3} s after the signal (exit after {:.2} s)",
            handed.as_secs_f64(),
            stopped.elapsed().as_secs_f64()
        );
        replicas.push(start(next).await);
        next += 1;
        balanced(&replicas.iter().collect::<Vec<_>>()).await;
    }
    for r in replicas {
        terminate(r.process).await;
    }
    clear(&api).await;
}
