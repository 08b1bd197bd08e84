//! Admission latency through a real API server: 20 concurrent clients
//! create ConfigMaps through kube-apiserver, which calls the host's
//! validating webhook (the `gatekeeper` fixture, reading two objects from
//! the cache per request: the namespace and a policy ConfigMap) over TLS on
//! loopback, with the real `informant run` binary serving it.
//!
//! Reported, for the same creates:
//! - end to end, as the clients saw each create (p50, p99, max), and the
//!   same creates with no webhook registered, for the difference;
//! - the host's own time per request, from its histogram
//!   (`informant_admission_duration_seconds`, p50 and p99 interpolated as
//!   Prometheus' `histogram_quantile` does);
//! - the API server's time per webhook call, from its own histogram
//!   (`apiserver_admission_webhook_admission_duration_seconds`), the same way.
//!
//! The server: the cluster of `INFORMANT_BENCH_KUBECONFIG` if set, else a
//! fresh kit from `../shared/realk8s` (or `INFORMANT_BENCH_KIT`) on ports of
//! its own, stopped afterwards; without the kit, the embedded server.
//!
//! `cargo bench -p informant --bench admission`; `INFORMANT_BENCH_CREATES`
//! (default 2,000 with the webhook, after 200 to warm up) and
//! `INFORMANT_BENCH_CLIENTS` (20) change the load.

// A benchmark fails loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use informant_testkit::{
    HostProcess, compile_cache, host_command, http_get, plugin_path, terminate,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

const NAMESPACE: &str = "bench-admission";
const CONFIGURATION: &str = "informant-bench";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// Where the benchmark runs, and what to stop afterwards.
struct Server {
    kubeconfig: PathBuf,
    description: String,
    kit: Option<PathBuf>,
    _embedded: Option<informant_apiserver::ApiServer>,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    if let Some(path) = std::env::var_os("INFORMANT_BENCH_KUBECONFIG") {
        return Server {
            kubeconfig: path.into(),
            description: "INFORMANT_BENCH_KUBECONFIG".into(),
            kit: None,
            _embedded: None,
            _dir: dir,
        };
    }
    let kit = std::env::var_os("INFORMANT_BENCH_KIT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realk8s"),
        PathBuf::from,
    );
    if kit.join("start.sh").is_file() {
        let _ = kit_command(&kit, "stop.sh").output();
        let out = kit_command(&kit, "start.sh")
            .arg("--fresh")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let kubeconfig = text
            .lines()
            .find_map(|l| l.strip_prefix("INFORMANT_TEST_KUBECONFIG="))
            .unwrap_or_else(|| {
                panic!(
                    "the kit did not start:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        return Server {
            kubeconfig: kubeconfig.into(),
            description: "a fresh real kube-apiserver v1.35 + etcd 3.6 (the kit)".into(),
            kit: Some(kit),
            _embedded: None,
            _dir: dir,
        };
    }
    let server = informant_apiserver::ApiServer::start(informant_apiserver::Config::default())
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    Server {
        kubeconfig,
        description: "the embedded server (no kit found)".into(),
        kit: None,
        _embedded: Some(server),
        _dir: dir,
    }
}

impl Drop for Server {
    /// Stop the kit this benchmark started, whether it finished or failed.
    fn drop(&mut self) {
        if let Some(kit) = &self.kit {
            let _ = kit_command(kit, "stop.sh").output();
        }
    }
}

/// A kit script on this benchmark's own state directory and ports.
fn kit_command(kit: &Path, script: &str) -> Command {
    let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/realk8s-bench-admission");
    let mut command = Command::new(kit.join(script));
    command
        .env("INFORMANT_REALK8S_STATE", state)
        .env("ETCD_PORT", "23379")
        .env("ETCD_PEER_PORT", "23380")
        .env("APISERVER_PORT", "27443")
        .env("KCM_PORT", "31257");
    command
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Create `n` ConfigMaps named `prefix-i` from `clients` tasks at once:
/// each create's latency, in seconds.
async fn create(api: &Api<ConfigMap>, prefix: &str, n: usize, clients: usize) -> Vec<f64> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (api, next, latencies, prefix) = (
            api.clone(),
            next.clone(),
            latencies.clone(),
            prefix.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("{prefix}-{i}"), "labels": {"gate": "bench"}},
                    "data": {"payload": "x".repeat(512)},
                }))
                .unwrap();
                let started = Instant::now();
                api.create(&PostParams::default(), &cm).await.unwrap();
                latencies
                    .lock()
                    .unwrap()
                    .push(started.elapsed().as_secs_f64());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut v = std::mem::take(&mut *latencies.lock().unwrap());
    v.sort_by(f64::total_cmp);
    v
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// `histogram_quantile(q, ...)` over the `_bucket` lines of `metric` whose
/// labels contain every one of `labels`, summed: linear interpolation
/// within the bucket the quantile falls in, as Prometheus does.
fn histogram_quantile(text: &str, metric: &str, labels: &[&str], q: f64) -> Option<(f64, u64)> {
    let prefix = format!("{metric}_bucket{{");
    let mut buckets: std::collections::BTreeMap<u64, (f64, u64)> = Default::default();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let (head, count) = line.rsplit_once(' ')?;
        if !labels.iter().all(|l| head.contains(l)) {
            continue;
        }
        let le = head.split("le=\"").nth(1)?.split('"').next()?;
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        let count: f64 = count.parse().ok()?;
        let e = buckets.entry(bound.to_bits()).or_insert((bound, 0));
        e.1 += count as u64;
    }
    let mut sorted: Vec<(f64, u64)> = buckets.into_values().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for (bound, count) in &sorted {
        if *count as f64 >= rank {
            if bound.is_infinite() {
                return Some((lower, total));
            }
            let within = (*count - below) as f64;
            let fraction = if within == 0.0 {
                1.0
            } else {
                (rank - below as f64) / within
            };
            return Some((lower + (bound - lower) * fraction, total));
        }
        lower = *bound;
        below = *count;
    }
    None
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}

async fn run() {
    let server = server().await;
    let client = client(&server.kubeconfig).await;
    println!("admission against {}", server.description);
    let clients = env_number("INFORMANT_BENCH_CLIENTS", 20);
    let n = env_number("INFORMANT_BENCH_CREATES", 2_000);
    let warmup = 200;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(NAMESPACE).await.unwrap().is_some() {
        namespaces
            .delete(NAMESPACE, &DeleteParams::default())
            .await
            .unwrap();
        while namespaces.get_opt(NAMESPACE).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": NAMESPACE, "labels": {"team": "bench"}}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let policy: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "gate-policy"}, "data": {"deny": "false"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &policy).await.unwrap();

    // The same load with no webhook, for the difference.
    create(&api, "warm", warmup, clients).await;
    let plain = create(&api, "plain", n, clients).await;

    // The host, as an operator runs it, with the webhook narrowed to the
    // benchmark's namespace.
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(plugin_path("gatekeeper"), plugins.join("gatekeeper.wasm")).unwrap();
    let config = dir.path().join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "admission:\n  addr: '127.0.0.1:0'\n  generateCertificate: true\n  configurationName: {CONFIGURATION}\n  plugins:\n    gatekeeper:\n      namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {NAMESPACE}}}}}\n"
        ),
    )
    .unwrap();
    let mut host = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config)
            .arg("--compile-cache")
            .arg(compile_cache())
            .env("INFORMANT_LOG", "warn"),
    );
    let stdout = host.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(4)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    let health = printed[1]
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // In effect once a create the gatekeeper would deny is denied.
    let deny: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "probe", "labels": {"gate": "deny"}}}))
            .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let waited = Instant::now();
    while api.create(&dry, &deny).await.is_ok() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the webhook never took effect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create(&api, "warm-hook", warmup, clients).await;
    let (_, host_before) = http_get(health.parse().unwrap(), "/metrics").await;
    let apiserver_metrics = || async {
        client
            .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
            .await
            .unwrap_or_default()
    };
    let api_before = apiserver_metrics().await;
    let started = Instant::now();
    let hooked = create(&api, "hooked", n, clients).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (_, host_after) = http_get(health.parse().unwrap(), "/metrics").await;
    let api_after = apiserver_metrics().await;

    println!(
        "  {n} creates, {clients} clients, ConfigMaps of about 1 KiB; {:.0} creates/s with the webhook",
        n as f64 / elapsed
    );
    for (label, v) in [("no webhook", &plain), ("webhook", &hooked)] {
        println!(
            "  end to end ({label:<10}): p50 {}  p99 {}  max {}",
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }
    // Histograms are cumulative: the measured window is after minus before.
    let window = |before: &str, after: &str, metric: &str, labels: &[&str], q: f64| {
        let diff = difference(before, after, metric);
        histogram_quantile(&diff, metric, labels, q)
    };
    let host_metric = "informant_admission_duration_seconds";
    let host_labels = ["plugin=\"gatekeeper\""];
    if let (Some((p50, count)), Some((p99, _))) = (
        window(&host_before, &host_after, host_metric, &host_labels, 0.5),
        window(&host_before, &host_after, host_metric, &host_labels, 0.99),
    ) {
        println!(
            "  host histogram      : p50 {}  p99 {}  ({count} requests)",
            ms(p50),
            ms(p99)
        );
    }
    let api_metric = "apiserver_admission_webhook_admission_duration_seconds";
    let api_labels = [
        "name=\"gatekeeper.informant.dev\"",
        "operation=\"CREATE\"",
        "type=\"validating\"",
    ];
    match (
        window(&api_before, &api_after, api_metric, &api_labels, 0.5),
        window(&api_before, &api_after, api_metric, &api_labels, 0.99),
    ) {
        (Some((p50, count)), Some((p99, _))) => println!(
            "  API server histogram: p50 {}  p99 {}  ({count} calls; its buckets are 5, 25, 100 ms...)",
            ms(p50),
            ms(p99)
        ),
        _ => println!("  API server histogram: none (the embedded server has no webhook metrics)"),
    }
    let (_, stderr) = terminate(host).await;
    if stderr.contains("WARN") || stderr.contains("ERROR") {
        println!("  host log:\n{stderr}");
    }
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
}

/// `after` with each `metric` sample reduced by its value in `before`.
fn difference(before: &str, after: &str, metric: &str) -> String {
    let values = |text: &str| -> std::collections::HashMap<String, f64> {
        text.lines()
            .filter(|l| l.starts_with(metric))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    };
    let old = values(before);
    values(after)
        .into_iter()
        .map(|(k, v)| format!("{k} {}", v - old.get(&k).copied().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join("\n")
}
