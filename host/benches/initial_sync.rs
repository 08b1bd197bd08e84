//! Initial sync at production sizes, the host against kube-rs, side by side
//! in one run on the same real API server:
//!
//! - **informant**: the host (the library, as `informant run` wires it) with
//!   the `reader` plugin, subscribed to Widgets with the SDK's defaults
//!   (every-event), reading one field of each; done when the plugin has
//!   handled every Widget and `synced`.
//! - **informant-labels**: the same with `reader-labels`, which declares
//!   that it reads labels only: the cache keeps a projection of each Widget.
//! - **kube-rs**: a `kube::runtime::reflector` on `DynamicObject` with
//!   streaming lists and managedFields stripped; done at `InitDone`.
//! - **raw stream**: the same streaming list (a watch with
//!   `sendInitialEvents`) read as bytes, line by line, until the bookmark
//!   that marks the end of the initial events: what the server alone takes.
//!   Twice: over kube's client (HTTP/1.1, as kube-rs reads), and over the
//!   host's transport (HTTP/2 where the server speaks it, as the host reads).
//!
//! Each measurement is a fresh child process of this benchmark: the time from
//! its start to done, and its peak resident memory (VmHWM). Five runs each,
//! alternating, at 10,000 and then 100,000 Widgets of about 1 KiB; the
//! medians are printed (time, peak RSS, the child's CPU seconds and the API
//! server's during the run), and each side's time over the raw stream's (HTTP/2)
//! in the same run.
//!
//! The server: the cluster of `INFORMANT_BENCH_KUBECONFIG` if set (it must
//! hold no other Widgets), else a fresh kit from `../shared/realk8s` (or the
//! kit directory `INFORMANT_BENCH_KIT`) on ports of its own and a state
//! directory of its own, stopped afterwards; without the kit, the embedded
//! server.
//!
//! `cargo bench -p informant --bench initial_sync`; `INFORMANT_BENCH_SIZES=100000` measures one
//! size, `INFORMANT_BENCH_MODES=raw-h2,informant` only those sides, `INFORMANT_BENCH_VERBOSE=1` shows
//! where the host's time went (the informer's sync, the stream's end, against the plugin's last call).

// A benchmark fails loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use futures::StreamExt;
use informant::{config::Config, runtime::Runtime};
use informant_testkit::{compile_cache, plugin_path, widgets};
use kube::{
    Api,
    api::DynamicObject,
    runtime::{WatchStreamExt, reflector, watcher},
};

const NAMESPACE: &str = "bench-sync";
/// Runs of each side, unless `INFORMANT_BENCH_RUNS` says otherwise.
const RUNS: usize = 5;
/// What each run measures, in the order the runs alternate.
const MODES: [&str; 6] = [
    "raw-h1",
    "kube-rs",
    "raw-h2",
    "informant",
    "informant-single",
    "informant-labels",
];

/// Sides measured only when `INFORMANT_BENCH_MODES` names them: the raw
/// stream read by a reader that spends CPU per object (`raw-h2-slow`), and
/// the host with hyper's default HTTP/2 windows (`informant-small-windows`).
const EXTRA_MODES: [&str; 2] = ["raw-h2-slow", "informant-small-windows"];

fn main() {
    // kube's TLS needs the process's rustls provider (host/src/tls.rs).
    informant::tls::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let mode = args[at + 1].clone();
        let kubeconfig = PathBuf::from(&args[at + 2]);
        let expect: usize = args[at + 3].parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(child(&mode, &kubeconfig, expect));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(parent());
}

/// Where the children connect, and what to stop afterwards.
struct Server {
    kubeconfig: PathBuf,
    description: String,
    kit: Option<PathBuf>,
    embedded: Option<informant_apiserver::ApiServer>,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    if let Some(path) = std::env::var_os("INFORMANT_BENCH_KUBECONFIG") {
        return Server {
            kubeconfig: path.into(),
            description: "INFORMANT_BENCH_KUBECONFIG".into(),
            kit: None,
            embedded: None,
            _dir: dir,
        };
    }
    let kit = std::env::var_os("INFORMANT_BENCH_KIT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realk8s"),
        PathBuf::from,
    );
    if kit.join("start.sh").is_file() {
        // One a failed run left behind would refuse a fresh start.
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
            embedded: None,
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
        embedded: Some(server),
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
    let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/realk8s-bench");
    let mut command = Command::new(kit.join(script));
    command
        .env("INFORMANT_REALK8S_STATE", state)
        .env("ETCD_PORT", "22379")
        .env("ETCD_PEER_PORT", "22380")
        .env("APISERVER_PORT", "26443")
        .env("KCM_PORT", "30257");
    command
}

async fn config(kubeconfig: &Path) -> kube::Config {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap()
}

async fn client(kubeconfig: &Path) -> kube::Client {
    kube::Client::try_from(config(kubeconfig).await).unwrap()
}

/// The modes to run: `INFORMANT_BENCH_MODES` (comma-separated) or all.
fn modes() -> Vec<&'static str> {
    let Ok(only) = std::env::var("INFORMANT_BENCH_MODES") else {
        return MODES.to_vec();
    };
    MODES
        .into_iter()
        .chain(EXTRA_MODES)
        .filter(|m| only.split(',').any(|o| o.trim() == *m))
        .collect()
}

async fn parent() {
    let server = server().await;
    let client = client(&server.kubeconfig).await;
    println!("initial sync against {}", server.description);
    widgets::ensure_crd(&client).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    if namespaces.get_opt(NAMESPACE).await.unwrap().is_none() {
        let ns =
            serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
        namespaces.create(&Default::default(), &ns).await.unwrap();
    }
    // Compile the plugin once, into the cache the children use: a host's
    // restart loads it from there.
    let engine = informant::plugin::Engine::new(Some(&compile_cache())).unwrap();
    for plugin in ["reader", "reader_labels", "reader_single"] {
        informant::plugin::describe(&engine, &std::fs::read(plugin_path(plugin)).unwrap()).unwrap();
    }

    let sizes: Vec<usize> = std::env::var("INFORMANT_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    for n in sizes {
        let have = widgets::count_all(&client).await;
        assert!(have <= n, "the cluster holds {have} Widgets, more than {n}");
        if have < n {
            let started = Instant::now();
            seed_from(&client, server.embedded.as_ref(), have, n).await;
            println!(
                "  seeded {} Widgets in {:.1} s",
                n - have,
                started.elapsed().as_secs_f64()
            );
        }
        let mut results: Vec<(&str, Run)> = Vec::new();
        if let Some((server, client)) = pinning() {
            pin_server(&server);
            println!("  the server's processes on cores {server}, each side on cores {client}");
        }
        let runs_of_each = std::env::var("INFORMANT_BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(RUNS);
        for _ in 0..runs_of_each {
            for mode in modes() {
                results.push((mode, measure(mode, &server.kubeconfig, n)));
            }
        }
        let of = |mode: &str, field: fn(&Run) -> f64| {
            let mut values: Vec<f64> = results
                .iter()
                .filter(|r| r.0 == mode)
                .map(|r| field(&r.1))
                .collect();
            values.sort_by(f64::total_cmp);
            values
        };
        let raw = of("raw-h2", |r| r.seconds)
            .get(runs_of_each / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let runs = |values: &[f64], precision: usize| {
            values
                .iter()
                .map(|v| format!("{v:.precision$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for mode in modes() {
            let secs = of(mode, |r| r.seconds);
            let peaks = of(mode, |r| r.peak);
            let cpu = of(mode, |r| r.cpu);
            let server_cpu = of(mode, |r| r.server_cpu);
            println!(
                "  {n:>7} Widgets  {mode:<9}  median {:.2} s = {:.2}x the raw stream (runs {})  peak RSS median {:.0} MiB (runs {})  CPU median {:.2} s (runs {}), the server's {:.2} s (runs {})",
                secs[runs_of_each / 2],
                secs[runs_of_each / 2] / raw,
                runs(&secs, 2),
                peaks[runs_of_each / 2],
                runs(&peaks, 0),
                cpu[runs_of_each / 2],
                runs(&cpu, 2),
                server_cpu[runs_of_each / 2],
                runs(&server_cpu, 2),
            );
        }
    }
    if pinning().is_some() {
        // A kit this benchmark did not start goes on with every core.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        pin_server(&format!("0-{}", cores - 1));
    }
}

/// Widgets `from..to` into the benchmark's namespace.
async fn seed_from(
    client: &kube::Client,
    embedded: Option<&informant_apiserver::ApiServer>,
    from: usize,
    to: usize,
) {
    use kube::api::PostParams;
    if let Some(server) = embedded {
        let t = server
            .storage()
            .registry()
            .get("bench.informant.dev", "v1", "widgets")
            .unwrap();
        for i in from..to {
            server
                .storage()
                .create(&t, Some(NAMESPACE), widgets::widget(i), &Default::default())
                .unwrap();
        }
        return;
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &widgets::resource());
    futures::stream::iter(from..to)
        .map(|i| {
            let api = api.clone();
            async move {
                let w: DynamicObject = serde_json::from_value(widgets::widget(i)).unwrap();
                api.create(&PostParams::default(), &w).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
}

/// One child run: seconds from its start to done, peak RSS in MiB, and
/// the CPU seconds it and the API server's processes (kube-apiserver and
/// etcd, when they run on this machine) used meanwhile.
fn measure(mode: &str, kubeconfig: &Path, n: usize) -> Run {
    let verbose = std::env::var_os("INFORMANT_BENCH_VERBOSE").is_some();
    let server_before = server_cpu_seconds();
    let mut command = match pinning() {
        Some((_, client)) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &client])
                .arg(std::env::current_exe().unwrap());
            c
        }
        None => Command::new(std::env::current_exe().unwrap()),
    };
    let out = command
        .arg("--child")
        .arg(mode)
        .arg(kubeconfig)
        .arg(n.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if verbose {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("result "))
        .unwrap_or_else(|| {
            panic!(
                "{mode}: no result:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let mut words = line.split_whitespace().skip(1);
    let mut next = || -> f64 { words.next().unwrap().parse().unwrap() };
    Run {
        seconds: next(),
        peak: next(),
        cpu: next(),
        server_cpu: server_cpu_seconds() - server_before,
    }
}

/// What one child run measured.
struct Run {
    seconds: f64,
    peak: f64,
    cpu: f64,
    server_cpu: f64,
}

/// The CPU seconds (user and system) the process `pid` (or "self") used.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The CPU seconds every kube-apiserver and etcd process on this machine
/// used so far (0 for a server elsewhere, or the embedded one).
fn server_cpu_seconds() -> f64 {
    server_pids().iter().map(|pid| cpu_seconds(pid)).sum()
}

/// The processes of the API server on this machine: kube-apiserver and etcd.
fn server_pids() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| matches!(c.trim(), "kube-apiserver" | "etcd"))
        })
        .collect()
}

/// With `INFORMANT_BENCH_PIN=<server cores>/<client cores>` (e.g. `0/1`),
/// the API server's processes (every thread) run on the first cores and each
/// child on the second, so that no side's CPU comes out of the server's: what
/// the time then shows is the pipeline, not the sharing of the cores.
fn pinning() -> Option<(String, String)> {
    let pin = std::env::var("INFORMANT_BENCH_PIN").ok()?;
    let (server, client) = pin.split_once('/')?;
    Some((server.to_string(), client.to_string()))
}

/// Run the server's processes on `cores` (a `taskset` list).
fn pin_server(cores: &str) {
    for pid in server_pids() {
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c", cores, &pid])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "taskset {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn child(mode: &str, kubeconfig: &Path, expect: usize) {
    if let Ok(filter) = std::env::var("INFORMANT_BENCH_TRACE") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let started = Instant::now();
    let config = config(kubeconfig).await;
    let count = match mode {
        "kube-rs" => kube_rs(kube::Client::try_from(config).unwrap(), expect).await,
        "raw-h1" => raw_stream(kube::Client::try_from(config).unwrap(), expect, None).await,
        "raw-h2" => raw_stream(host_client(config), expect, None).await,
        // The same, spending `INFORMANT_BENCH_RAW_SPIN_US` (12) µs of CPU
        // per object on the reading task: does a slower reader cost the
        // server more?
        "raw-h2-slow" => {
            let spin = std::env::var("INFORMANT_BENCH_RAW_SPIN_US")
                .ok()
                .and_then(|us| us.parse().ok())
                .unwrap_or(12);
            raw_stream(
                host_client(config),
                expect,
                Some(Duration::from_micros(spin)),
            )
            .await
        }
        "informant" => host(host_client(config), expect, "reader").await,
        // The host with hyper's default HTTP/2 windows (2 MiB a stream, 5
        // MiB the connection), as before they were raised.
        "informant-small-windows" => {
            let transport = informant::transport::Transport {
                stream_window: 2 << 20,
                connection_window: 5 << 20,
                ..Default::default()
            };
            host(host_client_with(config, transport), expect, "reader").await
        }
        "informant-labels" => host(host_client(config), expect, "reader_labels").await,
        // The same plugin, asking for one instance: every call on one
        // thread, as the issue's "one-instance plugin".
        "informant-single" => host(host_client(config), expect, "reader_single").await,
        other => panic!("no mode {other}"),
    };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(count, expect, "{mode} saw {count} Widgets");
    println!(
        "result {seconds:.3} {:.1} {:.3}",
        peak_rss_mib(),
        cpu_seconds("self")
    );
}

/// The client `informant run` makes: the host's transport, with its idle
/// timeout.
fn host_client(config: kube::Config) -> kube::Client {
    host_client_with(config, informant::transport::Transport::default())
}

fn host_client_with(
    config: kube::Config,
    transport: informant::transport::Transport,
) -> kube::Client {
    let config = informant::informer::client_config(config, informant::informer::IDLE_TIMEOUT);
    informant::transport::client(config, transport).unwrap()
}

/// The server's streaming list of the Widgets, read as bytes until the
/// bookmark that ends the initial events (and, as the other sides, until
/// `expect` objects came: right after heavy writes the newest few may follow
/// it); returns how many objects came.
async fn raw_stream(client: kube::Client, expect: usize, spin: Option<Duration>) -> usize {
    use futures::AsyncBufReadExt;
    let scope = if std::env::var_os("INFORMANT_BENCH_CLUSTER").is_some() {
        String::new()
    } else {
        format!("namespaces/{NAMESPACE}/")
    };
    let path = format!(
        "/apis/bench.informant.dev/v1/{scope}widgets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true{}",
        std::env::var("INFORMANT_BENCH_RAW_QUERY").unwrap_or_default()
    );
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let mut body = std::pin::pin!(client.request_stream(request).await.unwrap());
    let mut line = Vec::with_capacity(4096);
    let mut objects = 0;
    let mut ended = false;
    loop {
        if ended && objects >= expect {
            return objects;
        }
        line.clear();
        let read = body.read_until(b'\n', &mut line).await.unwrap();
        assert!(read > 0, "the stream ended before its initial events did");
        if line.starts_with(br#"{"type":"ADDED""#) {
            objects += 1;
            if let Some(spin) = spin {
                let until = Instant::now() + spin;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
        } else if line.starts_with(br#"{"type":"BOOKMARK""#)
            && line
                .windows(END_MARK.len())
                .any(|w| w == END_MARK.as_bytes())
        {
            ended = true;
        }
    }
}

/// What the bookmark that ends a streaming list's initial events carries.
const END_MARK: &str = r#""k8s.io/initial-events-end":"true""#;

/// kube-rs's streaming reflector, until its store is ready.
async fn kube_rs(client: kube::Client, expect: usize) -> usize {
    let api: Api<DynamicObject> = Api::namespaced_with(client, NAMESPACE, &widgets::resource());
    let writer = reflector::store::Writer::new(widgets::resource());
    let store = writer.as_reader();
    let stream = watcher(api, watcher::Config::default().streaming_lists())
        .default_backoff()
        .modify(|o| {
            kube::ResourceExt::managed_fields_mut(o).clear();
        });
    let mut stream = std::pin::pin!(reflector(writer, stream));
    // Until the store is ready and holds every Widget: the initial list is
    // served from the API server's watch cache at resourceVersion 0, which
    // may not have the newest creates yet (they follow as watch events), as
    // the host's informer is, which is timed until it has handled them all.
    let mut ready = false;
    while let Some(event) = stream.next().await {
        ready |= matches!(event, Ok(watcher::Event::InitDone));
        if ready && store.state().len() >= expect {
            break;
        }
    }
    store.state().len()
}

/// The host with a reader plugin (from the compile cache, as a restarted
/// host loads it), until it has handled every Widget and `synced`.
async fn host(client: kube::Client, expect: usize, plugin: &str) -> usize {
    let config = Config {
        compile_cache_dir: Some(compile_cache()),
        ..Config::default()
    };
    let started = Instant::now();
    let rss_at_start = rss_mib();
    let runtime = Runtime::start(client, config).unwrap();
    let rss_runtime = rss_mib();
    let lane = runtime.load_file(&plugin_path(plugin)).await.unwrap();
    if std::env::var_os("INFORMANT_BENCH_VERBOSE").is_some() {
        eprintln!(
            "host: RSS {rss_at_start:.1} MiB at start, {rss_runtime:.1} with the runtime, {:.1} with the plugin",
            rss_mib()
        );
    }
    let loaded = started.elapsed();
    let rss_at_load = rss_mib();
    let mut listed = None;
    let mut synced = None;
    while lane.stats().counts().handled < expect as u64 + 1 {
        if listed.is_none() && lane.started() {
            listed = Some(started.elapsed());
        }
        if synced.is_none() && runtime.synced().await {
            synced = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Where the time went, for whoever profiles: on stderr.
    let cached = runtime.cache().stats();
    eprintln!(
        "host: plugin loaded {:.3} s (RSS {:.0} MiB), first delivery {:.3} s, informer synced {:.3} s, every object handled {:.3} s; cache {} objects, {:.0} MiB; RSS now {:.0} MiB",
        loaded.as_secs_f64(),
        rss_at_load,
        listed.unwrap_or_default().as_secs_f64(),
        synced.unwrap_or_default().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        cached.objects,
        cached.bytes as f64 / 1048576.0,
        rss_mib(),
    );
    lane.stats().counts().handled as usize - 1
}
