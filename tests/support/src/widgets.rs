//! Widgets (`bench.informant.dev/v1`, namespaced): the custom resource the
//! delivery tests and benchmarks fill a cluster with, about 1 KiB each, as
//! the issue that asked for them measured.

use std::time::Duration;

use futures::StreamExt;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, ListParams, PostParams},
};
use serde_json::json;

/// The resource.
pub fn resource() -> ApiResource {
    ApiResource {
        group: "bench.informant.dev".into(),
        version: "v1".into(),
        api_version: "bench.informant.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// Create the Widget CRD unless it exists, and wait until it is served.
/// Returns whether this call created it (then the caller may delete it).
///
/// # Panics
/// If the CRD cannot be created or is not served within 30 s.
pub async fn ensure_crd(client: &kube::Client) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = "widgets.bench.informant.dev";
    let existing = crds.get_opt(name).await.expect("the CRDs can be read");
    // One that another test is deleting serves no creates: wait until it is
    // gone, and make it again.
    let existing = match existing {
        Some(crd) if crd.metadata.deletion_timestamp.is_some() => {
            let uid = crd.metadata.uid.unwrap_or_default();
            let gone = kube::runtime::wait::await_condition(
                crds.clone(),
                name,
                kube::runtime::wait::conditions::is_deleted(&uid),
            );
            tokio::time::timeout(Duration::from_secs(120), gone)
                .await
                .expect("the terminating Widget CRD is gone within 120 s")
                .expect("the Widget CRD can be watched");
            None
        }
        other => other,
    };
    let created = match existing {
        Some(_) => false,
        None => {
            let crd: CustomResourceDefinition = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"group": "bench.informant.dev", "scope": "Namespaced",
                         "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                         "versions": [{"name": "v1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
            }))
            .expect("a CRD");
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("the Widget CRD is created");
            true
        }
    };
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &resource());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while widgets.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "Widgets are not served 30 s after their CRD"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    created
}

/// Widget number `i`: about 1 KiB of JSON, with a `spec.size` to read.
pub fn widget(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "bench.informant.dev/v1", "kind": "Widget",
        "metadata": {"name": format!("w-{i:06}"), "labels": {"app": "bench", "shard": (i % 16).to_string()}},
        "spec": {"size": i, "color": "blue", "owner": "team-a",
                 "notes": "x".repeat(760)},
    })
}

/// Put `n` Widgets in `namespace`: through the embedded server's store when
/// there is one (fast), else through the API, 16 at a time.
///
/// # Panics
/// If a Widget cannot be created.
pub async fn seed(
    client: &kube::Client,
    server: Option<&informant_apiserver::ApiServer>,
    namespace: &str,
    n: usize,
) {
    if let Some(server) = server {
        let t = server
            .storage()
            .registry()
            .get("bench.informant.dev", "v1", "widgets")
            .expect("the Widget CRD is served");
        let opts = informant_apiserver::WriteOptions::default();
        for i in 0..n {
            server
                .storage()
                .create(&t, Some(namespace), widget(i), &opts)
                .expect("a Widget is created");
        }
        return;
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource());
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let w: DynamicObject = serde_json::from_value(widget(i)).expect("a Widget");
                api.create(&PostParams::default(), &w)
                    .await
                    .expect("a Widget is created");
            }
        })
        .buffer_unordered(16)
        .collect::<()>()
        .await;
}

/// How many Widgets the cluster holds, in every namespace.
///
/// # Panics
/// If they cannot be listed.
pub async fn count_all(client: &kube::Client) -> usize {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource());
    let page = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .expect("Widgets can be listed");
    page.items.len() + page.metadata.remaining_item_count.map_or(0, |n| n as usize)
}
