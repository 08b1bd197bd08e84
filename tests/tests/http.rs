//! The host's HTTP side against a host that is not ready yet: `/readyz`
//! says 503 and, with `?verbose`, why; it turns ready once the watch syncs.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use informant::{config::Config, dev::FailRule, http, runtime::Runtime};
use informant_tests::{TestCluster, eventually, plugin_path};
use tokio_util::sync::CancellationToken;

/// A plain HTTP/1.0 GET: the server closes the connection after the
/// response. (kube's client retries 503s by itself, which would hide them.)
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: informant\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

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
    let runtime =
        Arc::new(Runtime::start(cluster.client.clone(), Config::default(), false).unwrap());
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
