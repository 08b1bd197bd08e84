//! The host's HTTP side against a host that is not ready yet: `/readyz`
//! says 503 and, with `?verbose`, why; it turns ready once the watch syncs.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use informant::{config::Config, http, runtime::Runtime};
use informant_apiserver::FailRule;
use informant_testkit::{TestCluster, eventually, http_get as get, plugin_path};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn readiness_waits_for_the_watches_and_says_why() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("readiness_waits_for_the_watches_and_says_why") else {
        return;
    };
    // Lists of ConfigMaps fail for now: the label-enforcer's watch cannot sync.
    server.faults().fail(FailRule {
        path_prefix: "/api/v1/configmaps".into(),
        method: Some("GET".into()),
        query_contains: None,
        code: 500,
        count: 1_000_000,
    });
    let runtime = Arc::new(Runtime::start(cluster.client.clone(), Config::default()).unwrap());
    runtime
        .load_file(&plugin_path("label_enforcer"))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let state = http::AppState::new(runtime.clone(), None);
    let addr = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        http::health_router(state),
        stop.clone(),
    )
    .await
    .unwrap();
    let base = addr;

    assert_eq!(get(base, "/healthz").await, (200, "ok\n".into()));
    let (status, body) = get(base, "/readyz?verbose").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("[-] informers: not synced yet: v1/configmaps"),
        "{body}"
    );
    assert!(body.ends_with("not ready\n"), "{body}");

    server.faults().reset();
    eventually("readiness", Duration::from_secs(30), || async {
        (get(base, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let (_, body) = get(base, "/readyz?verbose").await;
    assert!(
        body.contains("[+] informers: every watch has synced"),
        "{body}"
    );
    stop.cancel();
    runtime.shutdown(Duration::from_secs(2)).await;
}
