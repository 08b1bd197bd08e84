//! `informant run` and `informant dev --plugins` as a user runs them: the
//! real binary, a plugin directory with a settings file, a configuration
//! file, and a graceful shutdown on SIGTERM.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use informant_testkit::{
    Gate, HostProcess, TestCluster, host_command, http_get, plugin_path, terminate,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde_json::json;

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The URL in a line the host printed: `... at http://127.0.0.1:PORT/...`.
fn url_in(line: &str) -> String {
    let start = line.find("http://").unwrap();
    let rest = &line[start..];
    let end = rest[7..].find('/').map_or(rest.len(), |i| i + 7);
    rest[..end].to_string()
}

/// A plugin directory in `dir` with the label enforcer, and a configuration
/// that lets it patch ConfigMaps in `ns` only: (plugins, config file).
fn enforcer_in(dir: &Path, ns: &str) -> (PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        plugin_path("label_enforcer"),
        plugins.join("label-enforcer.wasm"),
    )
    .unwrap();
    let config = dir.join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "allow:\n  label-enforcer:\n{}  - apiVersion: v1\n    kind: ConfigMap\n    verbs: [patch]\n    namespaces: [{ns}]\n",
            informant_testkit::READS_EVERYTHING_YAML
        ),
    )
    .unwrap();
    (plugins, config)
}

#[tokio::test]
async fn run_loads_the_plugin_directory_with_settings_and_stops_cleanly() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("run").await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, config) = enforcer_in(dir.path(), &ns);
    std::fs::write(
        plugins.join("label-enforcer.yaml"),
        "required:\n  team: platform\n",
    )
    .unwrap();
    // A broken file beside it is reported and skipped; the others run.
    std::fs::write(plugins.join("broken.wasm"), b"not wasm").unwrap();
    let mut child = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config)
            .env("INFORMANT_LOG_FORMAT", "json"),
    );
    // Read on another thread: the embedded server runs on this test's one.
    let stdout = child.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(3)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(printed[0], "plugins: label-enforcer");
    let health = url_in(&printed[1]);
    let admin = url_in(&printed[2]);

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    eventually("the label from the settings file", async || {
        let cm = api.get("app").await.unwrap();
        cm.metadata.labels?.get("team").cloned()
    })
    .await;

    // Health, readiness, metrics.
    informant::tls::install_crypto_provider();
    let http =
        |base: &str| kube::Client::try_from(kube::Config::new(base.parse().unwrap())).unwrap();
    let get = async |client: &kube::Client, path: &str| {
        client
            .request_text(http::Request::get(path).body(Vec::new()).unwrap())
            .await
    };
    let health = http(&health);
    assert_eq!(get(&health, "/healthz").await.unwrap(), "ok\n");
    let ready = get(&health, "/readyz?verbose").await.unwrap();
    // The broken file does not make the replica unready, but readiness
    // says it did not load.
    assert!(
        ready.contains("[+] plugins") && ready.ends_with("ready\n"),
        "{ready}"
    );
    assert!(
        ready.contains("not loaded: broken.wasm: ") && ready.contains("not a WebAssembly file"),
        "{ready}"
    );
    let metrics = get(&health, "/metrics").await.unwrap();
    for expected in [
        "informant_plugin_calls_total{plugin=\"label-enforcer\",outcome=\"ok\"}",
        "informant_plugin_call_duration_seconds_bucket{",
        "informant_actions_total{action=\"mergePatch\",outcome=\"applied\"}",
        "informant_reloads_total{outcome=\"failed\"} 1",
        "informant_cache_objects ",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    // The admin API: plugins with their state, the broken file with its error.
    let admin = http(&admin);
    let plugins: serde_json::Value =
        serde_json::from_str(&get(&admin, "/api/v1/plugins").await.unwrap()).unwrap();
    let list = plugins["plugins"].as_array().unwrap();
    let enforcer = list.iter().find(|p| p["name"] == "label-enforcer").unwrap();
    assert_eq!(enforcer["status"], "running");
    assert!(enforcer["counters"]["handled"].as_u64().unwrap() >= 1);
    assert_eq!(enforcer["permissions"]["writes"][0]["verbs"][0], "patch");
    let broken = list.iter().find(|p| p["status"] == "failed").unwrap();
    assert!(
        broken["lastError"]
            .as_str()
            .unwrap()
            .contains("broken.wasm")
    );
    let subs: serde_json::Value =
        serde_json::from_str(&get(&admin, "/api/v1/subscriptions").await.unwrap()).unwrap();
    assert!(
        subs["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "ConfigMap" && s["state"] == "synced"),
        "{subs}"
    );
    let dead: serde_json::Value =
        serde_json::from_str(&get(&admin, "/api/v1/dead-letters").await.unwrap()).unwrap();
    assert!(dead["deadLetters"].is_array());
    // Re-driving dead letters is a POST, answered with what it queued.
    let retried = admin
        .request_text(
            http::Request::post("/api/v1/dead-letters/retry?plugin=label-enforcer")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let retried: serde_json::Value = serde_json::from_str(&retried).unwrap();
    assert_eq!(retried["requeued"], 0, "{retried}");
    let missing = admin
        .send(
            http::Request::get("/api/v1/nothing")
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body = http_body_util::BodyExt::collect(missing.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "no such endpoint: /api/v1/nothing");

    let (status, stderr) = terminate(child).await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    // JSON log lines, one per line.
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(
        stderr.contains("broken.wasm"),
        "the broken plugin is named:\n{stderr}"
    );
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
    assert!(stderr.contains("shutdown complete"), "{stderr}");
}

/// Start-up does not depend on the API server: a host started while it is
/// down loads its plugins, says why it is not ready, and runs them once the
/// server answers (here after 10 s: a gate in front of the test cluster
/// refuses connections until then, on either backend).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_started_before_the_api_server_runs_its_plugins_once_it_is_up() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("late").await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::closed(&cluster.kubeconfig);
    let kubeconfig = dir.path().join("kubeconfig");
    gate.kubeconfig(&cluster.kubeconfig, &kubeconfig);
    let (plugins, config) = enforcer_in(dir.path(), &ns);
    let mut child = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config),
    );
    // Two of the three lines, then the pipe closes: a host outlives
    // whoever read its start-up lines.
    let stdout = child.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    let up = Instant::now();
    assert_eq!(
        printed[0], "plugins: label-enforcer",
        "loaded, server or not"
    );
    let health: std::net::SocketAddr = url_in(&printed[1])
        .trim_start_matches("http://")
        .parse()
        .unwrap();

    // Down: not ready, and why.
    let (status, body) = http_get(health, "/readyz?verbose").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("[-] discovery: cannot resolve yet: ")
            && body.contains("v1 ConfigMap (discovery of v1 failed"),
        "{body}"
    );
    assert!(
        body.contains("[-] dispatch: waiting for their watches to sync: label-enforcer"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(up.elapsed())).await;
    assert_eq!(http_get(health, "/readyz").await.0, 503);

    // Up: the plugin runs.
    gate.open().await;
    let opened = Instant::now();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    eventually("the label", async || {
        let cm = api.get("app").await.unwrap();
        cm.metadata.labels?.get("owner").cloned()
    })
    .await;
    eventually("readiness", async || {
        (http_get(health, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    eprintln!(
        "the plugin ran and the host was ready {:?} after the server came up",
        opened.elapsed()
    );
    let (status, stderr) = terminate(child).await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains("discovery failed"), "{stderr}");
}

#[test]
fn a_bad_configuration_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("informant.yaml");
    std::fs::write(&config, "actions:\n  qps: 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("informant.yaml: actions.qps: must be greater than 0"),
        "{stderr}"
    );

    // `informant config check` says the same without starting anything.
    let out = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["config", "check"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("actions.qps: must be greater than 0"));
    std::fs::write(
        &config,
        "actions:\n  qps: 5\nleaderElection: {enabled: true}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["config", "check"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let out = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["run", "--plugins"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing: not a directory"), "{stderr}");
}

#[tokio::test]
async fn the_demo_runs_the_example_plugins_against_the_sample_objects() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "dev")
            .args(["--port", "0", "--kubeconfig"])
            .arg(&kubeconfig),
    );
    let mut lines = BufReader::new(child.stdout()).lines();
    let url = lines.next().unwrap().unwrap();
    let url = url.rsplit(' ').next().unwrap().to_string();
    let _hint = lines.next().unwrap().unwrap();
    let plugins = lines.next().unwrap().unwrap();
    assert_eq!(
        plugins,
        "plugins: default-requests, label-enforcer, owner-required, replicator, restarter, tenant-namespaces"
    );
    informant::tls::install_crypto_provider();
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();

    // The label-enforcer labelled the sample ConfigMap; the tenant operator
    // made the tenant's namespace; the replicator copied the registry
    // Secret into it.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    eventually("the sample ConfigMap's owner label", async || {
        cms.get("settings")
            .await
            .ok()?
            .metadata
            .labels?
            .get("owner")
            .cloned()
    })
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "tenant-acme");
    eventually("the registry copy in the tenant's namespace", async || {
        secrets.get_opt("registry").await.ok()?
    })
    .await;

    let (status, stderr) = terminate(child).await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains("shutdown complete"), "{stderr}");
}
