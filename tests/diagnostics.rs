//! What an operator sees when a plugin misbehaves: log lines that name the
//! plugin, the object and the cause; the admin API's status, last error,
//! calls by outcome and refusals; the same outcomes and refusals in the
//! metrics. One vocabulary throughout: ok, failed, timeout, out_of_memory,
//! trap.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, sync::Arc, time::Duration};

use informant::{
    action::{Allowlist, Rule},
    config::Config,
    http,
    runtime::Runtime,
    vocabulary::Verb,
};
use informant_testkit::{LogCapture, TestCluster, create_cm, eventually, http_get, plugin_path};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_plugin_is_named_with_its_object_and_cause_everywhere() {
    let logs = LogCapture::global("info");
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("diag").await;
    let mut rules = informant_testkit::reads_everything();
    rules.push(Rule {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        verbs: vec![Verb::Patch],
        read: false,
        namespaces: Some(vec![ns.clone()]),
    });
    let mut config = Config {
        allowlist: Allowlist::new(HashMap::from([("hostile".to_string(), rules)])),
        ..Config::default()
    };
    // Four events fail three times each: the forbidden read, the flood and the panic
    // at once, the busy loop last (100 ms an attempt), so the twelfth failure,
    // which opens the circuit, is the loop's. Paused for long enough to look.
    config.dispatch.breaker_threshold = 12;
    config.dispatch.breaker_backoff = Duration::from_secs(30);
    let runtime = Arc::new(Runtime::start(cluster.client.clone(), config).unwrap());
    // Only the ConfigMaps this test labels for it: another test's
    // ConfigMap handled fine in between would reset the failure count.
    runtime
        .load_file(&plugin_path("hostile_labelled"))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let state = http::AppState::new(runtime.clone(), None);
    let health = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::health_router(state.clone()),
        stop.clone(),
    )
    .await
    .unwrap();
    let admin = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::admin_router(state),
        stop.clone(),
    )
    .await
    .unwrap();
    eventually("the watch to sync", Duration::from_secs(20), || async {
        runtime.synced().await.then_some(())
    })
    .await;

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    // A forbidden read, an action past the per-call limit, a panic, and a
    // busy loop until the circuit opens.
    let labelled = json!({"informant.dev/hostile": "yes"});
    create_cm(
        &api,
        "snoop",
        labelled.clone(),
        json!({"mode": "read-undeclared"}),
    )
    .await;
    create_cm(
        &api,
        "flood",
        labelled.clone(),
        json!({"mode": "too-many-actions"}),
    )
    .await;
    create_cm(&api, "boom", labelled.clone(), json!({"mode": "panic"})).await;
    create_cm(&api, "spin", labelled.clone(), json!({"mode": "loop"})).await;
    let hostile = |plugins: Value| {
        plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "hostile")
            .cloned()
            .unwrap()
    };
    let view = eventually("the circuit to open", Duration::from_secs(30), || async {
        let (_, body) = http_get(admin, "/api/v1/plugins").await;
        let view = hostile(serde_json::from_str(&body).unwrap());
        (view["status"] == "paused").then_some(view)
    })
    .await;
    // The admin API: why, and about what.
    let last = view["lastError"].as_str().unwrap();
    assert!(
        last.starts_with(&format!(
            "timeout on v1/ConfigMap {ns}/spin: the call ran past its 100ms deadline"
        )),
        "{view:#}"
    );
    assert_eq!(view["lastCallError"]["outcome"], "timeout");
    let calls = &view["counters"]["calls"];
    assert!(calls["timeout"].as_u64().unwrap() >= 1, "{view:#}");
    assert!(calls["trap"].as_u64().unwrap() >= 1, "{view:#}");
    assert!(
        view["counters"]["refused"]["forbidden"].as_u64().unwrap() >= 1,
        "{view:#}"
    );
    assert!(
        view["counters"]["refused"]["limit-exceeded"]
            .as_u64()
            .unwrap()
            >= 1,
        "{view:#}"
    );
    assert!(
        view["callDurations"]["count"].as_u64().unwrap() >= 3,
        "{view:#}"
    );
    assert!(
        view["callDurations"]["maxMs"].as_f64().unwrap() >= 100.0,
        "{view:#}"
    );

    // The log: every failed call names the plugin, the object and the cause;
    // the pause says why; the refused read is on the host's side too; the
    // panic's own words are the error.
    let text = logs.text();
    let line = |needle: &[&str]| {
        text.lines()
            .find(|l| needle.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{text}"))
            .to_string()
    };
    line(&[
        "plugin call failed",
        "plugin.name=hostile",
        &format!("object.ref=v1/ConfigMap {ns}/spin"),
        "outcome=timeout",
    ]);
    line(&[
        "plugin call failed",
        &format!("object.ref=v1/ConfigMap {ns}/boom"),
        "outcome=trap",
        "panicked at testing/hostile/src/lib.rs:",
        "panicking on purpose",
    ]);
    line(&[
        "calls paused",
        "plugin.name=hostile",
        "last_error=",
        "deadline",
    ]);
    line(&[
        "action refused",
        "plugin.name=hostile",
        "code=\"limit-exceeded\"",
    ]);
    line(&[
        "cache read refused",
        "plugin.name=hostile",
        "code=\"forbidden\"",
        "may not read v1/Secret",
    ]);

    // The metrics: the same outcomes, the refusals.
    let (_, metrics) = http_get(health, "/metrics").await;
    for expected in [
        "informant_plugin_calls_total{plugin=\"hostile\",outcome=\"timeout\"}",
        "informant_plugin_calls_total{plugin=\"hostile\",outcome=\"trap\"}",
        "informant_plugin_refusals_total{plugin=\"hostile\",code=\"forbidden\"} ",
        "informant_plugin_refusals_total{plugin=\"hostile\",code=\"limit-exceeded\"} ",
        "informant_plugin_circuit_open{plugin=\"hostile\"} 1",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    stop.cancel();
    runtime.shutdown(Duration::from_secs(2)).await;
}
